#pragma once
// MLLP framing (HL7 v2 over TCP): a message travels as 0x0B <message> 0x1C 0x0D. Pure byte handling, no
// sockets; the gateway's MLLP listener feeds what it reads and writes what mllp_frame returns.
//
// MllpDeframer is incremental: feed() takes bytes as they arrive in any split and queues every complete
// message; pop() hands them out in order. CR and LF between frames are tolerated (some senders add them);
// any other byte outside a frame is garbage: it is skipped up to the next start block and reported. A
// frame growing past max_size is reported as payload_too_large and skipped up to its end block, keeping
// only its head (the first segment, at most kMllpHeadBytes): it is then queued as an incomplete frame, so
// that the receiver can still answer it by its MSH-10. feed() always consumes all its bytes, returns the
// first error met in them, and never loses queued messages. Not thread-safe: one deframer per connection.
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

inline constexpr std::size_t kMllpHeadBytes = 64 * 1024;

std::string mllp_frame(std::string_view message);

struct MllpFrame {
  std::string message;   // the whole message; of an incomplete frame, its head only
  std::size_t size = 0;  // bytes of the whole message
  bool complete = true;  // false: the message was longer than max_size
};

class MllpDeframer {
 public:
  explicit MllpDeframer(std::size_t max_size = 1024 * 1024) : max_size_(max_size) {}

  Status feed(std::string_view bytes);
  // The next frame, complete or not.
  std::optional<MllpFrame> pop_frame();
  // The next complete message; incomplete frames are passed over.
  std::optional<std::string> pop();

  // True while part of a frame (or bytes outside one) has been received.
  bool in_frame() const { return state_ != State::between; }
  // Bytes of the partial frame held, and what they are (of a frame past max_size, its head).
  std::size_t buffered() const { return buffer_.size(); }
  std::string_view partial() const { return buffer_; }
  // Bytes of the partial frame received, those skipped past max_size included.
  std::size_t frame_bytes() const { return frame_bytes_; }

 private:
  enum class State { between, in_frame, after_end, oversize, garbage };

  void start_frame();

  std::size_t max_size_;
  State state_ = State::between;
  std::string buffer_;
  std::size_t frame_bytes_ = 0;
  bool oversize_ = false;  // the frame went past max_size: buffer_ holds its head
  std::deque<MllpFrame> ready_;
};

}  // namespace fhirgate::mappers
