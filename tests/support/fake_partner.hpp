#pragma once
// A loopback stand-in for a partner's FHIR endpoint, for integration tests of outbound delivery: a minimal
// HTTP/1.1 server on 127.0.0.1 that records every request and answers as the test tells it to (2xx, 5xx,
// never, or by closing the connection). Plain POSIX sockets and std::thread, like HttpClient.
//
// Threads: one accepts; each connection is served on its own thread, request after request (keep-alive and
// pipelining work). Every public member may be called from any thread at any time (the destructor, as
// always, only once nothing else uses the object).
//
// HTTP: request line, headers, and a body by Content-Length or Transfer-Encoding: chunked (trailers are
// read and dropped; any other transfer coding is refused). HTTP/1.1 keeps the connection open unless the
// client sends Connection: close; HTTP/1.0 closes it unless the client sends Connection: keep-alive.
// A request the server cannot parse, or whose head exceeds 64 KiB or body 64 MiB, is not recorded: it gets
// 400 (413 for a body too large) with Connection: close, whatever the mode.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <list>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace fhirgate::testing {

class FakePartner {
 public:
  // How the requests that follow are answered:
  enum class Mode {
    ok,     // 200 (201 for POST) with an informational OperationOutcome, Content-Type application/fhir+json
    fail,   // 500 with an OperationOutcome (severity error, code exception)
    hang,   // read the request, then never answer; the connection stays open until the client or stop()
    close,  // read the request, then close the connection without answering
  };

  struct Request {
    std::string method, target;
    std::string body;                                          // decoded when it was sent chunked
    std::vector<std::pair<std::string, std::string>> headers;  // as sent, in order
    std::chrono::steady_clock::time_point at;                  // when the whole request had been read
    // The first header of that name, case-insensitive; empty when absent.
    std::string header(const std::string& name) const;
  };

  // Listens on 127.0.0.1:`port` (0: any free port) and serves in Mode::ok. Throws std::runtime_error when
  // the socket cannot be set up. SO_REUSEADDR is set, so a partner can come back on the port of one that
  // was stopped. The sockets are close-on-exec, so processes the tests spawn do not inherit them.
  explicit FakePartner(std::uint16_t port = 0);
  ~FakePartner();  // stop()
  FakePartner(const FakePartner&) = delete;
  FakePartner& operator=(const FakePartner&) = delete;

  std::uint16_t port() const { return port_; }
  std::string base_url() const { return "http://127.0.0.1:" + std::to_string(port_); }

  // The mode for the requests that arrive from now on.
  void set_mode(Mode mode);
  // The next `n` requests (of any connection) answer as Mode::fail, then the current mode applies again.
  // Replaces a count still running; n <= 0 cancels it.
  void fail_next(int n);

  // Every request received so far, in arrival order, including those answered 500, hung or closed.
  std::vector<Request> requests() const;
  // Waits until at least `n` requests were received or `timeout` passes; returns whether they were.
  bool wait_for_requests(std::size_t n, std::chrono::milliseconds timeout) const;

  // "Partner down": stops accepting, closes the listener (later connects are refused) and every open
  // connection, hung ones included, and joins all threads; returns promptly. Idempotent.
  void stop();

 private:
  struct Connection {
    std::thread thread;
    std::atomic<bool> done{false};
  };

  void accept_loop();
  void serve(int fd);
  Mode record(Request request);

  std::uint16_t port_ = 0;
  int listen_fd_ = -1;
  // stop() writes one byte to wake_write_ and never reads it: wake_read_ stays readable, so every poll()
  // that includes it, now or later, returns.
  int wake_read_ = -1;
  int wake_write_ = -1;
  std::thread accept_thread_;
  std::list<Connection> connections_;  // touched by the accept thread, then by stop() once it is joined
  std::mutex stop_mutex_;              // guards stopped_ and the teardown
  bool stopped_ = false;

  mutable std::mutex mutex_;  // guards what follows
  mutable std::condition_variable arrived_;
  Mode mode_ = Mode::ok;
  int fail_next_ = 0;
  std::vector<Request> requests_;
};

}  // namespace fhirgate::testing
