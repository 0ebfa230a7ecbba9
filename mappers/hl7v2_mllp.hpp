#pragma once
// MLLP framing (HL7 v2 over TCP): a message travels as 0x0B <message> 0x1C 0x0D. Pure byte handling, no
// sockets; the gateway's MLLP listener feeds what it reads and writes what mllp_frame returns.
//
// MllpDeframer is incremental: feed() takes bytes as they arrive in any split and queues every complete
// message; pop() hands them out in order. CR and LF between frames are tolerated (some senders add them);
// any other byte outside a frame is garbage: it is skipped up to the next start block and reported. A
// frame growing past max_size is dropped up to its end block and reported as payload_too_large. feed()
// always consumes all its bytes, returns the first error met in them, and never loses queued messages.
// Not thread-safe: one deframer per connection.
#include <cstddef>
#include <deque>
#include <optional>
#include <string>
#include <string_view>

#include "fhir/result.hpp"

namespace fhirgate::mappers {

inline constexpr char kMllpStart = '\x0B';
inline constexpr char kMllpEnd = '\x1C';
inline constexpr char kMllpTrailer = '\x0D';

std::string mllp_frame(std::string_view message);

class MllpDeframer {
 public:
  explicit MllpDeframer(std::size_t max_size = 1024 * 1024) : max_size_(max_size) {}

  Status feed(std::string_view bytes);
  std::optional<std::string> pop();

  // True while part of a frame has been received.
  bool in_frame() const { return state_ != State::between; }
  // Bytes of the partial frame held.
  std::size_t buffered() const { return buffer_.size(); }

 private:
  enum class State { between, in_frame, after_end, oversize, garbage };

  std::size_t max_size_;
  State state_ = State::between;
  std::string buffer_;
  std::deque<std::string> ready_;
};

}  // namespace fhirgate::mappers
