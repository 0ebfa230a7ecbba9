// The MLLP listeners and their sessions (all on one io thread).
//
// Each connection is one coroutine on its own strand and belongs to one listener, whose partner (or none:
// identify by MSH-4) goes with every message. Bytes go into a MllpDeframer; complete messages are handled
// strictly one at a time, in arrival order: each becomes a job of the HL7 v2 pipeline, driven here
// (async_commit.hpp drive) — mapped and validated on a worker, its write plan (which logs the message and
// applies it) handed to the store's Writer while the coroutine suspends until the commit is durable — and
// only then are its ACKs framed and written: an AA or CA means stored. Before every
// read the socket gets a deadline (idle_timeout_ms). A frame larger than max_message_bytes is skipped up to
// its end, keeping its MSH segment: it is journaled as rejected and answered AR (HL7 error 104), and the
// connection goes on. One still not ended kMaxSkippedBytes past the limit is journaled the same way and its
// connection closed, as is one whose bytes do not parse enough to find MSH-10.
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
// How far past max_message_bytes a frame is read (and dropped) to answer it at its end.
constexpr std::size_t kMaxSkippedBytes = 64 * 1024 * 1024;

struct Connection {
  Connection(tcp::socket s, const MllpListenerConfig& l)
      : socket(std::move(s)), deadline(socket.get_executor()), listener(l) {}
  tcp::socket socket;
  asio::steady_timer deadline;
  const MllpListenerConfig& listener;
};

struct Listener {
  Listener(asio::io_context& ioc, MllpListenerConfig c) : config(std::move(c)), acceptor(ioc) {}
  MllpListenerConfig config;
  tcp::acceptor acceptor;
};

}  // namespace

struct MllpServer::Impl {
  Impl(const MllpConfig& c, net::MllpHandler& h, store::Writer& w) : config(c), handler(h), writer(w) {
    for (const auto& l : config.listeners) listeners.push_back(std::make_unique<Listener>(ioc, l));
  }

  MllpConfig config;
  net::MllpHandler& handler;
  store::Writer& writer;
  asio::io_context ioc;
  asio::thread_pool workers{1};     // mapping and validation, off the io thread
  asio::thread_pool background{1};  // unused by HL7 v2 jobs; drive() takes one
  std::vector<std::unique_ptr<Listener>> listeners;
  std::thread thread;
  std::atomic<bool> stopping{false};
  std::mutex connections_mutex;
  std::list<std::weak_ptr<Connection>> connections;

  asio::awaitable<void> accept_loop(Listener& listener);
  asio::awaitable<void> serve(std::shared_ptr<Connection> conn);
  // Handles one message and, when `reply`, writes its ACKs; false when the connection should close.
  asio::awaitable<bool> answer(Connection& conn, const mappers::MllpFrame& frame, bool reply = true);
};

asio::awaitable<void> MllpServer::Impl::accept_loop(Listener& listener) {
  co_await accept_until_stopped(listener.acceptor, ioc, stopping, [this, &listener](tcp::socket socket) {
    auto conn = std::make_shared<Connection>(std::move(socket), listener.config);
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
  bool framing_told = false;
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
    // Bytes that break framing are skipped (and told once); a frame too long comes out incomplete, to be
    // answered.
    const Status fed = deframer.feed(std::string_view(buffer.data(), n));
    if (!fed && fed.error().code != ErrorCode::payload_too_large && !framing_told) {
      framing_told = true;
      boost::system::error_code peer_ec;
      const auto peer = conn->socket.remote_endpoint(peer_ec);
      const auto& issues = fed.error().issues;
      handler.framing_problem(conn->listener.partner, peer_ec ? "" : peer.address().to_string(),
                              conn->socket.local_endpoint(peer_ec).port(),
                              issues.empty() ? "MLLP framing" : issues.front().diagnostics);
    }
    while (auto frame = deframer.pop_frame()) {
      if (!co_await answer(*conn, *frame)) {
        open = false;
        break;
      }
    }
    if (open && deframer.frame_bytes() > config.max_message_bytes + kMaxSkippedBytes) {
      // Named, not a temporary in the co_await: GCC 12 destroys such temporaries twice.
      const mappers::MllpFrame unended{std::string(deframer.partial()), deframer.frame_bytes(), false};
      co_await answer(*conn, unended, false);
      open = false;
    }
  }
  boost::system::error_code ignored;
  conn->deadline.cancel();
  conn->socket.shutdown(tcp::socket::shutdown_send, ignored);
  conn->socket.close(ignored);
}

asio::awaitable<bool> MllpServer::Impl::answer(Connection& conn, const mappers::MllpFrame& frame,
                                               bool reply) {
  std::vector<std::string> acks;
  try {
    boost::system::error_code peer_ec;
    const auto peer = conn.socket.remote_endpoint(peer_ec);
    net::MllpMessage message;
    message.text = frame.message;
    message.size = frame.size;
    message.too_large = !frame.complete;
    message.limit = config.max_message_bytes;
    message.partner = conn.listener.partner;
    message.peer = peer_ec ? "" : peer.address().to_string();
    auto job = handler.start(std::move(message));
    co_await drive(*job, workers, background, writer);
    auto answer = job->take_acks();
    if (!reply || !answer) co_return false;
    acks = std::move(*answer);
  } catch (const std::exception&) {
    co_return false;
  }
  for (const auto& ack : acks) {
    const std::string framed = mappers::mllp_frame(ack);
    auto [ec, written] = co_await asio::async_write(conn.socket, asio::buffer(framed), kTuple);
    if (ec) co_return false;
  }
  co_return true;
}

MllpServer::MllpServer(const MllpConfig& config, net::MllpHandler& handler, store::Writer& writer)
    : impl_(std::make_unique<Impl>(config, handler, writer)) {}

MllpServer::~MllpServer() {
  stop();
}

std::vector<std::uint16_t> MllpServer::listen() {
  std::vector<std::uint16_t> ports;
  for (auto& l : impl_->listeners)
    ports.push_back(open_listener(l->acceptor, l->config.bind, l->config.port, "MLLP"));
  return ports;
}

void MllpServer::start() {
  auto& s = *impl_;
  for (auto& l : s.listeners) asio::co_spawn(s.ioc, s.accept_loop(*l), asio::detached);
  s.thread = std::thread([&s] { s.ioc.run(); });
}

void MllpServer::stop() {
  auto& s = *impl_;
  if (!s.stopping.exchange(true)) {
    asio::post(s.ioc, [&s] {
      boost::system::error_code ignored;
      for (auto& l : s.listeners) l->acceptor.close(ignored);
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
