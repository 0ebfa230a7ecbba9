#pragma once
// Outbound MLLP (HL7 v2 over TCP) for deliveries to partners, the counterpart of HttpOut. An MllpOut keeps
// one connection to one host:port open (keep-alive) and exchanges messages on it one at a time: it writes
// the framed message, then reads until one complete framed reply has arrived. Each step (resolve and
// connect, then write and read) is bounded by the call's timeout; a step that runs out drops the
// connection, so a late reply can never be taken for the answer to the next message. A kept connection the
// partner closed (seen when writing, or as end of stream before any byte of the reply) is reopened once and
// the message sent again: a partner that read the message and then closed without answering may see it
// twice, which MLLP receivers handle by MSH-10. Blocking: call from a worker thread. Not thread-safe: one
// per worker and destination. Asio stays in the .cpp.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace fhirgate::gateway {

struct MllpReply {
  std::string ack;    // the reply message, unframed; empty when none came (see error)
  std::string error;  // why none came: "timed out after 500 ms", "Connection refused", "connection closed"
};

class MllpOut {
 public:
  static constexpr std::size_t kMaxReplyBytes = 1024 * 1024;

  MllpOut();
  ~MllpOut();
  MllpOut(const MllpOut&) = delete;
  MllpOut& operator=(const MllpOut&) = delete;

  // `message` is the HL7 v2 text, unframed. A reply longer than kMaxReplyBytes, or bytes outside an MLLP
  // frame, are an error (and drop the connection). Never throws.
  MllpReply send(const std::string& host, std::uint16_t port, const std::string& message,
                 unsigned timeout_ms);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace fhirgate::gateway
