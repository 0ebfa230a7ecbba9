#include "mappers/hl7v2_mllp.hpp"

#include <algorithm>

namespace fhirgate::mappers {

std::string mllp_frame(std::string_view message) {
  std::string out;
  out.reserve(message.size() + 3);
  out += kMllpStart;
  out += message;
  out += kMllpEnd;
  out += kMllpTrailer;
  return out;
}

void MllpDeframer::start_frame() {
  state_ = State::in_frame;
  buffer_.clear();
  frame_bytes_ = 0;
  oversize_ = false;
}

Status MllpDeframer::feed(std::string_view bytes) {
  std::optional<Error> first;
  auto report = [&](Error e) {
    if (!first) first = std::move(e);
  };
  constexpr std::string_view kBlocks("\x0B\x1C", 2);
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    char c = bytes[i];
    switch (state_) {
      case State::between:
        if (c == kMllpStart) {
          start_frame();
        } else if (c != '\r' && c != '\n') {
          state_ = State::garbage;
          report(Error::make(ErrorCode::invalid_input,
                             "MLLP: bytes outside a frame (expected start block 0x0B)"));
        }
        break;
      case State::garbage:
        if (c == kMllpStart) start_frame();
        break;
      case State::in_frame:
      case State::oversize:
        if (c == kMllpEnd) {
          state_ = State::after_end;
        } else if (c == kMllpStart) {
          start_frame();
          report(Error::make(ErrorCode::invalid_input,
                             "MLLP: start block inside a frame; partial message dropped"));
        } else {
          const std::size_t end = bytes.find_first_of(kBlocks, i);
          const std::size_t run = (end == std::string_view::npos ? bytes.size() : end) - i;
          frame_bytes_ += run;
          if (state_ == State::in_frame) {
            buffer_.append(bytes.substr(i, std::min(run, max_size_ - buffer_.size())));
            if (frame_bytes_ > max_size_) {
              // Keep the head, to answer by: up to the end of the first segment.
              const std::size_t segment_end = buffer_.find_first_of("\r\n");
              buffer_.resize(std::min({buffer_.size(), segment_end, kMllpHeadBytes}));
              oversize_ = true;
              state_ = State::oversize;
              report(Error::make(ErrorCode::payload_too_large,
                                 "MLLP: message longer than " + std::to_string(max_size_) + " bytes"));
            }
          }
          i += run - 1;
        }
        break;
      case State::after_end:
        if (c == kMllpTrailer) {
          ready_.push_back(MllpFrame{std::move(buffer_), frame_bytes_, !oversize_});
          buffer_.clear();
          frame_bytes_ = 0;
          oversize_ = false;
          state_ = State::between;
        } else {
          buffer_.clear();
          frame_bytes_ = 0;
          oversize_ = false;
          state_ = State::garbage;
          if (c == kMllpStart) start_frame();
          report(Error::make(ErrorCode::invalid_input,
                             "MLLP: end block 0x1C not followed by 0x0D; message dropped"));
        }
        break;
    }
  }
  if (first) return std::move(*first);
  return Ok{};
}

std::optional<MllpFrame> MllpDeframer::pop_frame() {
  if (ready_.empty()) return std::nullopt;
  MllpFrame out = std::move(ready_.front());
  ready_.pop_front();
  return out;
}

std::optional<std::string> MllpDeframer::pop() {
  while (auto frame = pop_frame())
    if (frame->complete) return std::move(frame->message);
  return std::nullopt;
}

}  // namespace fhirgate::mappers
