#pragma once
// The MLLP listener (HL7 v2 over TCP, on Asio). Everything it answers comes from a net::MllpHandler (the
// HL7 v2 pipeline). Bytes of a connection that break MLLP framing — outside a frame (a sender that does
// not frame its messages), a start block inside a frame, an end block without its CR — are skipped and
// never answered, so the operators' log is where such a sender shows up: the first of each connection is
// told to the handler.
#include <cstdint>
#include <memory>
#include <vector>

#include "gateway/config/config.hpp"
#include "gateway/net/job.hpp"

namespace fhirgate::gateway {

namespace store {
class Writer;
}

class MllpServer {
 public:
  // One port per configured listener. `handler` and `writer` must outlive the server.
  MllpServer(const MllpConfig& config, net::MllpHandler& handler, store::Writer& writer);
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
