#pragma once
// What HttpOut and MllpOut share: one kept TCP connection to a partner, driven on a private io_context one
// step at a time (resolve and connect, then one exchange), each step bounded by a deadline. A step's
// handlers report into the step's own state, which they share, so a handler that completes after its step
// was abandoned (a name lookup outliving its deadline) writes only there, never into a later step; and
// running out of time drops the connection, so a late reply is never taken for the next one's.
// Asio: include only from net/*.cpp.
#include <boost/asio.hpp>
#include <chrono>
#include <memory>
#include <optional>
#include <string>

namespace fhirgate::gateway::net {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using boost::system::error_code;

// The state of one step; an exchange extends it with its buffers.
struct Step {
  bool done = false;       // its last handler ran
  bool abandoned = false;  // its deadline passed: late handlers do nothing
  error_code failure;

  void finish(error_code ec) {
    failure = ec;
    done = true;
  }
};

// How a kept connection the partner closed shows up when writing, or on the first read.
inline bool closed_by_peer(const error_code& ec) {
  return ec == asio::error::eof || ec == asio::error::connection_reset || ec == asio::error::broken_pipe;
}

inline std::string timed_out(std::chrono::milliseconds timeout) {
  return "timed out after " + std::to_string(timeout.count()) + " ms";
}

class OutboundConnection {
 public:
  asio::io_context ioc;
  std::optional<tcp::socket> socket;  // open while connected

  // Runs handlers until the step is done or `timeout` passes; false (the step abandoned and the connection
  // dropped) when it did not finish.
  bool run(Step& step, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    ioc.restart();
    while (!step.done && ioc.run_one_until(deadline) > 0) {
    }
    if (step.done) return true;
    step.abandoned = true;
    resolver_.cancel();
    drop();
    return false;
  }

  void drop() {
    if (socket) {
      error_code ignored;
      socket->shutdown(tcp::socket::shutdown_both, ignored);
      socket->close(ignored);
      // The operations the close cancelled complete now, while the socket they refer to still exists.
      ioc.restart();
      ioc.poll();
    }
    socket.reset();
    connected_to_.clear();
  }

  // Makes sure a connection to host:port is open: keeps the open one when it goes there (`reused` says
  // so), else resolves and connects within `timeout`. Empty, or why there is no connection.
  std::string connect(const std::string& host, const std::string& port, std::chrono::milliseconds timeout,
                      bool& reused) {
    const std::string target = host + ":" + port;
    reused = socket && connected_to_ == target;
    if (reused) return {};
    drop();
    auto step = std::make_shared<Step>();
    socket.emplace(ioc);
    resolver_.async_resolve(host, port,
                            [this, step](error_code ec, const tcp::resolver::results_type& found) {
                              if (step->abandoned) return;
                              if (ec) return step->finish(ec);
                              asio::async_connect(*socket, found, [step](error_code ec2, const auto&) {
                                if (!step->abandoned) step->finish(ec2);
                              });
                            });
    if (!run(*step, timeout)) return timed_out(timeout);
    if (step->failure) {
      drop();
      return step->failure.message();
    }
    error_code ignored;
    socket->set_option(tcp::no_delay(true), ignored);
    connected_to_ = target;
    return {};
  }

 private:
  tcp::resolver resolver_{ioc};
  std::string connected_to_;  // host:port of the open connection
};

}  // namespace fhirgate::gateway::net
