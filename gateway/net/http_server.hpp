#pragma once
// The HTTP/1.1 server (Boost.Beast on Asio). With the MLLP listener, the only place that sees Beast or
// Asio: everything it serves comes from a net::HttpHandler (the REST pipeline).
#include <cstdint>
#include <memory>

#include "gateway/config/config.hpp"
#include "gateway/net/job.hpp"

namespace fhirgate::gateway {
namespace store {
class Writer;
}

class HttpServer {
 public:
  // `handler` and `writer` must outlive it.
  HttpServer(const ServerConfig& config, net::HttpHandler& handler, store::Writer& writer);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds and listens; returns the bound port (useful with port 0). Throws std::runtime_error. From
  // here on SIGINT/SIGTERM start run()'s drain, also one that arrives before run() is called.
  std::uint16_t listen();
  // Serves on config.threads io threads until SIGINT/SIGTERM or stop(), then drains: stops accepting,
  // lets in-flight requests finish (up to shutdown_grace_ms), closes idle connections. Blocks.
  void run();
  // Starts the same drain from any thread.
  void stop();
  // Connections open now (for /metrics); any thread.
  std::size_t open_connections();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace fhirgate::gateway
