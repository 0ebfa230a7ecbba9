// The MLLP session.
//
// Each connection is one coroutine on its own strand. Bytes go into a MllpDeframer; complete messages are
// handled strictly one at a time, in arrival order: handle_v2 builds the reply, a write plan (if any) is
// handed to the store's Writer and the coroutine suspends until the commit is durable, and only then is
// the ACK framed and written — an AA means stored. Before every read the socket gets a deadline
// (idle_timeout_ms); a frame larger than max_message_bytes is dropped by the deframer and the connection
// is closed, as is one whose bytes do not parse enough to find MSH-10.
//
// stop() closes the acceptor and cancels every connection's socket and timer; the coroutines see
// operation_aborted and finish, after which the io_context runs out of work and its thread is joined.
#include "gateway/net/mllp_server.hpp"

#include <atomic>
#include <boost/asio.hpp>
#include <chrono>
#include <list>
#include <mutex>
#include <stdexcept>
#include <thread>

#include "gateway/net/accept.hpp"
#include "gateway/net/async_commit.hpp"
#include "gateway/store/writer.hpp"
#include "mappers/hl7v2_mllp.hpp"

namespace fhirgate::gateway {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);

struct Connection {
  explicit Connection(tcp::socket s) : socket(std::move(s)), deadline(socket.get_executor()) {}
  tcp::socket socket;
  asio::steady_timer deadline;
};

}  // namespace

struct MllpServer::Impl {
  Impl(const MllpConfig& c, const V2InboundContext& ctx, store::Writer& w)
      : config(c), context(ctx), writer(w), acceptor(ioc) {}

  MllpConfig config;
  const V2InboundContext& context;
  store::Writer& writer;
  asio::io_context ioc;
  tcp::acceptor acceptor;
  std::thread thread;
  std::atomic<bool> stopping{false};
  std::mutex connections_mutex;
  std::list<std::weak_ptr<Connection>> connections;

  asio::awaitable<void> accept_loop();
  asio::awaitable<void> serve(std::shared_ptr<Connection> conn);
};

asio::awaitable<void> MllpServer::Impl::accept_loop() {
  co_await accept_until_stopped(acceptor, ioc, stopping, [this](tcp::socket socket) {
    auto conn = std::make_shared<Connection>(std::move(socket));
    {
      std::lock_guard lock(connections_mutex);
      connections.remove_if([](const auto& w) { return w.expired(); });
      connections.push_back(conn);
    }
    asio::co_spawn(conn->socket.get_executor(), serve(conn), asio::detached);
  });
}

asio::awaitable<void> MllpServer::Impl::serve(std::shared_ptr<Connection> conn) {
  mappers::MllpDeframer deframer(config.max_message_bytes);
  std::array<char, 16 * 1024> buffer{};
  bool open = true;
  while (open && !stopping) {
    conn->deadline.expires_after(std::chrono::milliseconds(config.idle_timeout_ms));
    conn->deadline.async_wait([weak = std::weak_ptr<Connection>(conn)](boost::system::error_code ec) {
      if (ec) return;
      if (auto c = weak.lock()) {
        boost::system::error_code ignored;
        c->socket.cancel(ignored);
      }
    });
    auto [ec, n] = co_await conn->socket.async_read_some(asio::buffer(buffer), kTuple);
    conn->deadline.cancel();
    if (ec) break;
    const Status fed = deframer.feed(std::string_view(buffer.data(), n));
    if (!fed && fed.error().code == ErrorCode::payload_too_large) open = false;
    while (auto message = deframer.pop()) {
      std::string ack;
      try {
        V2Reply reply = handle_v2(context, *message);
        if (reply.close) {
          open = false;
          break;
        }
        if (reply.plan) {
          Status committed = co_await async_commit(writer, std::move(reply.plan), asio::use_awaitable);
          ack = reply.after_commit(committed);
        } else {
          ack = std::move(reply.ack);
        }
      } catch (const std::exception&) {
        open = false;
        break;
      }
      const std::string framed = mappers::mllp_frame(ack);
      auto [wec, written] = co_await asio::async_write(conn->socket, asio::buffer(framed), kTuple);
      if (wec) {
        open = false;
        break;
      }
    }
  }
  boost::system::error_code ignored;
  conn->deadline.cancel();
  conn->socket.shutdown(tcp::socket::shutdown_send, ignored);
  conn->socket.close(ignored);
}

MllpServer::MllpServer(const MllpConfig& config, const V2InboundContext& context, store::Writer& writer)
    : impl_(std::make_unique<Impl>(config, context, writer)) {}

MllpServer::~MllpServer() {
  stop();
}

std::uint16_t MllpServer::listen() {
  return open_listener(impl_->acceptor, impl_->config.bind, impl_->config.port, "MLLP");
}

void MllpServer::start() {
  auto& s = *impl_;
  asio::co_spawn(s.ioc, s.accept_loop(), asio::detached);
  s.thread = std::thread([&s] { s.ioc.run(); });
}

void MllpServer::stop() {
  auto& s = *impl_;
  if (!s.stopping.exchange(true)) {
    asio::post(s.ioc, [&s] {
      boost::system::error_code ignored;
      s.acceptor.close(ignored);
      std::lock_guard lock(s.connections_mutex);
      for (auto& weak : s.connections) {
        if (auto conn = weak.lock()) {
          asio::post(conn->socket.get_executor(), [conn] {
            boost::system::error_code e;
            conn->deadline.cancel();
            conn->socket.cancel(e);
          });
        }
      }
    });
  }
  if (s.thread.joinable()) {
    // A commit still in the writer completes by posting here; a bounded wait then abandons the rest.
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (!s.ioc.stopped() && std::chrono::steady_clock::now() < until)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    s.ioc.stop();
    s.thread.join();
  }
}

}  // namespace fhirgate::gateway
