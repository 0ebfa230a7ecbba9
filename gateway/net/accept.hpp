#pragma once
// The accept loop shared by the HTTP and MLLP listeners: each accepted socket gets its own strand and
// TCP_NODELAY and goes to `on_socket`; transient failures (out of descriptors) back off briefly instead
// of spinning; the loop ends when the acceptor is closed or `stopping` is set. Asio-only.
#include <atomic>
#include <boost/asio.hpp>
#include <chrono>

namespace fhirgate::gateway {

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
