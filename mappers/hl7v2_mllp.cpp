#include "mappers/hl7v2_mllp.hpp"

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

Status MllpDeframer::feed(std::string_view bytes) {
  std::optional<Error> first;
  auto report = [&](Error e) {
    if (!first) first = std::move(e);
  };
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    char c = bytes[i];
    switch (state_) {
      case State::between:
        if (c == kMllpStart) {
          state_ = State::in_frame;
        } else if (c != '\r' && c != '\n') {
          state_ = State::garbage;
          report(Error::make(ErrorCode::invalid_input,
                             "MLLP: bytes outside a frame (expected start block 0x0B)"));
        }
        break;
      case State::garbage:
        if (c == kMllpStart) state_ = State::in_frame;
        break;
      case State::in_frame:
        if (c == kMllpEnd) {
          state_ = State::after_end;
        } else if (c == kMllpStart) {
          buffer_.clear();
          report(Error::make(ErrorCode::invalid_input,
                             "MLLP: start block inside a frame; partial message dropped"));
        } else if (buffer_.size() >= max_size_) {
          buffer_.clear();
          state_ = State::oversize;
          report(Error::make(ErrorCode::payload_too_large,
                             "MLLP: message longer than " + std::to_string(max_size_) + " bytes; dropped"));
        } else {
          std::size_t end = bytes.find_first_of(std::string_view("\x0B\x1C", 2), i);
          std::size_t take = (end == std::string_view::npos ? bytes.size() : end) - i;
          if (take > max_size_ - buffer_.size()) take = max_size_ - buffer_.size();
          buffer_.append(bytes.substr(i, take));
          i += take - 1;
        }
        break;
      case State::after_end:
        if (c == kMllpTrailer) {
          ready_.push_back(std::move(buffer_));
          buffer_.clear();
          state_ = State::between;
        } else {
          buffer_.clear();
          state_ = c == kMllpStart ? State::in_frame : State::garbage;
          report(Error::make(ErrorCode::invalid_input,
                             "MLLP: end block 0x1C not followed by 0x0D; message dropped"));
        }
        break;
      case State::oversize:
        if (c == kMllpEnd) state_ = State::between;
        if (c == kMllpStart) state_ = State::in_frame;
        break;
    }
  }
  if (first) return std::move(*first);
  return Ok{};
}

std::optional<std::string> MllpDeframer::pop() {
  if (ready_.empty()) return std::nullopt;
  std::string out = std::move(ready_.front());
  ready_.pop_front();
  return out;
}

}  // namespace fhirgate::mappers
