#pragma once
// Listening and the accept loop shared by the HTTP and MLLP listeners. The loop: each accepted socket gets
// its own strand and TCP_NODELAY and goes to `on_socket`; transient failures (out of descriptors) back off
// briefly instead of spinning; the loop ends when the acceptor is closed or `stopping` is set. Asio-only.
#include <atomic>
#include <boost/asio.hpp>
#include <chrono>
#include <cstdint>
#include <stdexcept>
#include <string>

namespace fhirgate::gateway {

// Opens, binds and listens; returns the bound port (useful with port 0). Throws std::runtime_error naming
// `what` (e.g. "HTTP", "MLLP"), the address and the reason.
inline std::uint16_t open_listener(boost::asio::ip::tcp::acceptor& acceptor, const std::string& bind,
                                   std::uint16_t port, const std::string& what) {
  namespace asio = boost::asio;
  boost::system::error_code ec;
  const auto address = asio::ip::make_address(bind, ec);
  if (ec) throw std::runtime_error("invalid " + what + " bind address '" + bind + "'");
  const asio::ip::tcp::endpoint endpoint(address, port);
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    throw std::runtime_error("cannot listen for " + what + " on " + bind + ":" + std::to_string(port) + ": " +
                             ec.message());
  }
  return acceptor.local_endpoint().port();
}

template <class OnSocket>
boost::asio::awaitable<void> accept_until_stopped(boost::asio::ip::tcp::acceptor& acceptor,
                                                  boost::asio::io_context& ioc,
                                                  const std::atomic<bool>& stopping, OnSocket on_socket) {
  namespace asio = boost::asio;
  constexpr auto tuple = asio::as_tuple(asio::use_awaitable);
  for (;;) {
    auto [ec, socket] = co_await acceptor.async_accept(asio::make_strand(ioc), tuple);
    if (stopping) co_return;
    if (ec) {
      if (ec == asio::error::operation_aborted) co_return;
      asio::steady_timer pause(ioc, std::chrono::milliseconds(50));
      co_await pause.async_wait(tuple);
      continue;
    }
    socket.set_option(asio::ip::tcp::no_delay(true), ec);
    on_socket(std::move(socket));
  }
}

}  // namespace fhirgate::gateway
