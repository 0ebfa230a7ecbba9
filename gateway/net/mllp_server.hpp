#pragma once
// The MLLP listener (HL7 v2 over TCP, on Asio). Everything it answers comes from handle_v2.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "gateway/config/config.hpp"
#include "gateway/inbound/v2_inbound.hpp"

namespace fhirgate::gateway {

namespace store {
class Writer;
}

// Bytes of a connection that broke MLLP framing: outside a frame (a sender that does not frame its
// messages), a start block inside a frame, an end block without its CR. They are skipped and never
// answered, so the operators' log is where such a sender shows up: the first of each connection is told.
struct MllpFramingProblem {
  std::string partner;     // the listener's, or "" (by MSH-4)
  std::string peer;        // the sender's address
  std::uint16_t port = 0;  // the listener's
  std::string error;
};

class MllpServer {
 public:
  // One port per configured listener. `context` and `writer` must outlive the server; `on_framing_problem`
  // (may be null) is called on the io thread.
  MllpServer(const MllpConfig& config, const V2InboundContext& context, store::Writer& writer,
             std::function<void(const MllpFramingProblem&)> on_framing_problem = nullptr);
  ~MllpServer();  // stops and joins the io thread
  MllpServer(const MllpServer&) = delete;
  MllpServer& operator=(const MllpServer&) = delete;

  // Binds and listens on every listener; returns the bound ports in configuration order (useful with
  // port 0). Throws std::runtime_error.
  std::vector<std::uint16_t> listen();
  // Starts accepting on its own io thread; returns at once.
  void start();
  // Closes the acceptor and every connection (a message waiting for its commit still gets its ACK
  // written if the connection is alive), then joins the io thread. Idempotent; any thread but the io one.
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace fhirgate::gateway
