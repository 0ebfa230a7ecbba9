// The HTTP session.
//
// Each connection is one coroutine on its own strand, so a connection needs no locks and handles one
// request at a time (responses leave in request order). Before every read the stream gets a deadline:
// the headers of a request (or the idle gap before it) must arrive within header_timeout, the body within
// body_timeout, so a client that trickles bytes (slowloris) is dropped. The parser enforces the header
// and body limits; a body over the limit gets 413 with an OperationOutcome and the connection is closed
// (the rest of the body is not read).
//
// Each request becomes a job of the REST pipeline (net::HttpHandler::start); the coroutine drives it
// (async_commit.hpp drive): io stages run here, validation on the worker pool, feed files on the background
// pool, and a write plan is handed to the store's Writer while the coroutine suspends; the Writer completes
// it after the group commit, posting back to this strand, and only then is the response built and
// written — acknowledged means durable. No io thread ever waits for a worker or SQLite's writer.
//
// Shutdown (SIGINT/SIGTERM or stop()): the acceptor closes, connections waiting idle for a request are
// cancelled, connections in the middle of a request finish it and close (no keep-alive), and after
// shutdown_grace_ms whatever is left is abandoned by stopping the io_context.
#include "gateway/net/http_server.hpp"

#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <list>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

#include "gateway/net/accept.hpp"
#include "gateway/net/async_commit.hpp"
#include "gateway/store/writer.hpp"

namespace fhirgate::gateway {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);

struct Connection {
  explicit Connection(tcp::socket socket) : stream(std::move(socket)) {}
  beast::tcp_stream stream;
  bool idle = true;  // waiting for the first byte of a request; only touched on the strand
};

net::HttpRequest to_request(http::request<http::string_body>&& req) {
  net::HttpRequest out;
  out.method = std::string(req.method_string());
  out.target = std::string(req.target());
  out.headers.reserve(8);
  for (const auto& field : req)
    out.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
  out.body = std::move(req.body());
  return out;
}

http::response<http::string_body> to_beast(net::HttpResponse&& res, unsigned version, bool keep_alive) {
  http::response<http::string_body> out{static_cast<http::status>(res.status), version};
  out.set(http::field::server, "fhirgate");
  for (auto& [name, value] : res.headers) out.set(name, value);
  out.body() = std::move(res.body);
  out.keep_alive(keep_alive);
  out.prepare_payload();
  return out;
}

}  // namespace

struct HttpServer::Impl {
  Impl(const ServerConfig& c, net::HttpHandler& h, store::Writer& w)
      : config(c),
        handler(h),
        writer(w),
        ioc(static_cast<int>(c.threads)),
        control(asio::make_strand(ioc)),
        acceptor(ioc),
        signals(ioc) {}

  ServerConfig config;
  net::HttpHandler& handler;
  store::Writer& writer;
  asio::io_context ioc;
  // The accept loop and begin_shutdown run here: the acceptor and the signal set are not thread-safe.
  asio::strand<asio::io_context::executor_type> control;
  tcp::acceptor acceptor;
  asio::signal_set signals;
  asio::thread_pool workers{static_cast<std::size_t>(std::max(1u, config.threads))};  // validation
  asio::thread_pool background{1};  // long requests (feed files), off the io threads and the workers
  std::atomic<bool> stopping{false};
  std::mutex connections_mutex;
  std::list<std::weak_ptr<Connection>> connections;

  asio::awaitable<void> accept_loop();
  asio::awaitable<void> serve(std::shared_ptr<Connection> conn);
  asio::awaitable<bool> send(Connection& conn, net::HttpResponse&& res, unsigned version, bool keep_alive);
  void begin_shutdown();
  void watch_drain(std::shared_ptr<asio::steady_timer> timer, std::chrono::steady_clock::time_point deadline);
  std::size_t live_connections();
};

asio::awaitable<void> HttpServer::Impl::accept_loop() {
  co_await accept_until_stopped(acceptor, ioc, stopping, [this](tcp::socket socket) {
    auto conn = std::make_shared<Connection>(std::move(socket));
    {
      std::lock_guard lock(connections_mutex);
      connections.remove_if([](const auto& w) { return w.expired(); });
      connections.push_back(conn);
    }
    asio::co_spawn(conn->stream.get_executor(), serve(conn), asio::detached);
  });
}

asio::awaitable<bool> HttpServer::Impl::send(Connection& conn, net::HttpResponse&& res, unsigned version,
                                             bool keep_alive) {
  auto out = to_beast(std::move(res), version, keep_alive);
  conn.stream.expires_after(std::chrono::milliseconds(config.body_timeout_ms));
  auto [ec, n] = co_await http::async_write(conn.stream, out, kTuple);
  co_return !ec;
}

asio::awaitable<void> HttpServer::Impl::serve(std::shared_ptr<Connection> conn) {
  beast::flat_buffer buffer;
  for (;;) {
    http::request_parser<http::string_body> parser;
    parser.header_limit(static_cast<std::uint32_t>(config.header_limit_bytes));
    parser.body_limit(config.body_limit_bytes);
    conn->idle = buffer.size() == 0;
    if (stopping && conn->idle) break;
    conn->stream.expires_after(std::chrono::milliseconds(config.header_timeout_ms));
    auto [ec, n] = co_await http::async_read_header(conn->stream, buffer, parser, kTuple);
    conn->idle = false;
    if (!ec && !parser.is_done()) {
      conn->stream.expires_after(std::chrono::milliseconds(config.body_timeout_ms));
      std::tie(ec, n) = co_await http::async_read(conn->stream, buffer, parser, kTuple);
    }
    if (ec == http::error::body_limit) {
      co_await send(
          *conn,
          handler.error_response(Error::make(ErrorCode::payload_too_large,
                                             "The request body is larger than the limit of " +
                                                 std::to_string(config.body_limit_bytes) + " bytes")),
          11, false);
      break;
    }
    if (ec == http::error::header_limit) {
      co_await send(
          *conn,
          handler.error_response(Error::make(ErrorCode::invalid_input, "The request headers are too large")),
          11, false);
      break;
    }
    if (ec) {
      // Timeouts, resets and cancellation just close; a malformed request gets a 400 first.
      if (ec.category() == beast::error_code(http::error::bad_target).category() &&
          ec != http::error::end_of_stream && ec != http::error::partial_message) {
        co_await send(*conn,
                      handler.error_response(
                          Error::make(ErrorCode::invalid_input, "Malformed HTTP request: " + ec.message())),
                      11, false);
      }
      break;
    }

    auto beast_request = parser.release();
    const unsigned version = beast_request.version();
    const bool keep_alive = beast_request.keep_alive();
    net::HttpRequest request = to_request(std::move(beast_request));
    {
      boost::system::error_code peer_ec;
      const auto peer = conn->stream.socket().remote_endpoint(peer_ec);
      if (!peer_ec) request.remote_address = peer.address().to_string();
    }
    net::HttpResponse response;
    try {
      auto job = handler.start(std::move(request));
      co_await drive(*job, workers, background, writer);
      response = job->take_response();
    } catch (const std::exception& e) {
      Error err = Error::make(ErrorCode::internal, "Internal server error");
      err.internal = e.what();
      response = handler.error_response(err);
    }
    const bool again = keep_alive && !stopping;
    if (!co_await send(*conn, std::move(response), version, again) || !again) break;
  }
  beast::error_code ignored;
  conn->stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
  conn->stream.close();
}

std::size_t HttpServer::open_connections() {
  return impl_->live_connections();
}

std::size_t HttpServer::Impl::live_connections() {
  std::lock_guard lock(connections_mutex);
  connections.remove_if([](const auto& w) { return w.expired(); });
  return connections.size();
}

void HttpServer::Impl::begin_shutdown() {
  if (stopping.exchange(true)) return;
  beast::error_code ignored;
  acceptor.close(ignored);
  signals.cancel(ignored);
  {
    std::lock_guard lock(connections_mutex);
    for (auto& weak : connections) {
      if (auto conn = weak.lock()) {
        asio::post(conn->stream.get_executor(), [conn] {
          if (conn->idle) conn->stream.cancel();
        });
      }
    }
  }
  auto timer = std::make_shared<asio::steady_timer>(ioc);
  watch_drain(timer, std::chrono::steady_clock::now() + std::chrono::milliseconds(config.shutdown_grace_ms));
}

void HttpServer::Impl::watch_drain(std::shared_ptr<asio::steady_timer> timer,
                                   std::chrono::steady_clock::time_point deadline) {
  if (live_connections() == 0) return;  // nothing left: run() returns once the io_context is out of work
  if (std::chrono::steady_clock::now() >= deadline) {
    ioc.stop();
    return;
  }
  timer->expires_after(std::chrono::milliseconds(20));
  timer->async_wait([this, timer, deadline](beast::error_code) { watch_drain(timer, deadline); });
}

HttpServer::HttpServer(const ServerConfig& config, net::HttpHandler& handler, store::Writer& writer)
    : impl_(std::make_unique<Impl>(config, handler, writer)) {}

HttpServer::~HttpServer() = default;

std::uint16_t HttpServer::listen() {
  const auto port = open_listener(impl_->acceptor, impl_->config.bind, impl_->config.port, "HTTP");
  // From here on SIGINT/SIGTERM are held for run(): one that arrives before it (right after the caller
  // announced the port) still drains instead of killing the process.
  impl_->signals.add(SIGINT);
  impl_->signals.add(SIGTERM);
  return port;
}

void HttpServer::run() {
  auto& s = *impl_;
  s.signals.async_wait(asio::bind_executor(s.control, [&s](beast::error_code ec, int) {
    if (!ec) s.begin_shutdown();
  }));
  asio::co_spawn(s.control, s.accept_loop(), asio::detached);
  std::vector<std::thread> threads;
  for (unsigned i = 1; i < s.config.threads; ++i) threads.emplace_back([&s] { s.ioc.run(); });
  s.ioc.run();
  for (auto& t : threads) t.join();
}

void HttpServer::stop() {
  asio::post(impl_->control, [this] { impl_->begin_shutdown(); });
}

}  // namespace fhirgate::gateway
