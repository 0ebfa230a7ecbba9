// MLLP framing: MllpDeframer fed the input whole and in pieces of sizes taken from the input must hand out
// the same frames, none holding more than the limit or a block character (an incomplete one: its head
// only, of a message longer than the limit), and a message framed with mllp_frame must come back out
// unchanged. Input: one byte choosing the size limit, one byte seeding the piece sizes, then the bytes as
// received.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz/common.hpp"
#include "mappers/hl7v2_mllp.hpp"

using namespace fhirgate;
using mappers::MllpDeframer;

namespace {

// Each frame as "+message" (complete) or "-size:head" (too long).
std::vector<std::string> drain(MllpDeframer& deframer, std::size_t max_size) {
  std::vector<std::string> out;
  while (auto frame = deframer.pop_frame()) {
    FUZZ_CHECK(frame->message.size() <= max_size);
    FUZZ_CHECK(frame->message.find_first_of(std::string_view("\x0B\x1C", 2)) == std::string::npos);
    if (frame->complete) {
      FUZZ_CHECK(frame->size == frame->message.size());
      out.push_back("+" + frame->message);
    } else {
      FUZZ_CHECK(frame->size > max_size);
      FUZZ_CHECK(frame->message.size() <= mappers::kMllpHeadBytes);
      FUZZ_CHECK(frame->message.find_first_of("\r\n") == std::string::npos);
      out.push_back("-" + std::to_string(frame->size) + ":" + frame->message);
    }
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  const std::size_t max_size = data[0] < 128 ? 1 + data[0] : 1024 * 1024;
  std::uint32_t seed = data[1];
  const std::string_view bytes(reinterpret_cast<const char*>(data + 2), size - 2);

  MllpDeframer whole(max_size);
  const bool whole_ok = whole.feed(bytes).ok();
  const std::vector<std::string> expected = drain(whole, max_size);
  const bool whole_in_frame = whole.in_frame();
  const std::size_t whole_buffered = whole.buffered();

  MllpDeframer pieces(max_size);
  bool pieces_ok = true;
  std::vector<std::string> got;
  for (std::size_t at = 0; at < bytes.size();) {
    seed = seed * 1103515245u + 12345u;
    const std::size_t n = 1 + (seed >> 16) % 17;
    pieces_ok = pieces.feed(bytes.substr(at, n)).ok() && pieces_ok;
    at += n;
    for (auto& m : drain(pieces, max_size)) got.push_back(std::move(m));
  }
  FUZZ_CHECK(got == expected);
  FUZZ_CHECK(pieces_ok == whole_ok);
  FUZZ_CHECK(pieces.in_frame() == whole_in_frame);
  FUZZ_CHECK(pieces.buffered() == whole_buffered);
  FUZZ_CHECK(pieces.frame_bytes() == whole.frame_bytes());
  FUZZ_CHECK(pieces.buffered() <= max_size);

  if (bytes.size() <= max_size && bytes.find_first_of(std::string_view("\x0B\x1C", 2)) == std::string::npos) {
    MllpDeframer clean(max_size);
    FUZZ_CHECK(clean.feed(mappers::mllp_frame(bytes)).ok());
    auto message = clean.pop();
    FUZZ_CHECK(message && *message == bytes);
    FUZZ_CHECK(!clean.pop() && !clean.in_frame());
  }
  return 0;
}
