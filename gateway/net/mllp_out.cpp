#include "gateway/net/mllp_out.hpp"

#include <array>
#include <boost/asio.hpp>
#include <chrono>
#include <optional>

#include "mappers/hl7v2_mllp.hpp"

namespace fhirgate::gateway {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using boost::system::error_code;

// What the handlers of one step (open, or exchange) report. They share it, so a handler that completes after
// its step was abandoned (a resolve outliving its deadline) writes here, never into a later step.
struct Step {
  bool done = false;       // the step's last handler ran
  bool abandoned = false;  // its deadline passed: late handlers do nothing
  error_code failure;
  std::string frame;  // the bytes being written
  std::array<char, 16 * 1024> chunk;
  std::size_t received = 0;  // bytes of the reply read so far
  mappers::MllpDeframer deframer{MllpOut::kMaxReplyBytes};
  std::optional<std::string> ack;
  std::string protocol_error;  // the reply broke MLLP framing or was too long
};

void finish(Step& step, error_code ec) {
  step.failure = ec;
  step.done = true;
}

// How a kept connection the partner closed shows up when writing, or on the first read.
bool closed_by_peer(const error_code& ec) {
  return ec == asio::error::eof || ec == asio::error::connection_reset || ec == asio::error::broken_pipe;
}

std::string describe(const error_code& ec) {
  return ec == asio::error::eof ? "connection closed" : ec.message();
}

}  // namespace

struct MllpOut::Impl {
  asio::io_context ioc;
  tcp::resolver resolver{ioc};
  std::optional<tcp::socket> socket;
  std::string connected_to;  // host:port of the open connection

  // Runs handlers until the step is done or `timeout` passes; false (the step abandoned and the connection
  // dropped) when it did not finish.
  bool run(Step& step, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    ioc.restart();
    while (!step.done && ioc.run_one_until(deadline) > 0) {
    }
    if (step.done) return true;
    step.abandoned = true;
    resolver.cancel();
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
    connected_to.clear();
  }

  std::shared_ptr<Step> open(const std::string& host, std::uint16_t port) {
    auto step = std::make_shared<Step>();
    socket.emplace(ioc);
    resolver.async_resolve(host, std::to_string(port),
                           [this, step](error_code ec, const tcp::resolver::results_type& endpoints) {
                             if (step->abandoned) return;
                             if (ec) return finish(*step, ec);
                             asio::async_connect(*socket, endpoints, [step](error_code ec2, const auto&) {
                               if (!step->abandoned) finish(*step, ec2);
                             });
                           });
    return step;
  }

  std::shared_ptr<Step> exchange(const std::string& message) {
    auto step = std::make_shared<Step>();
    step->frame = mappers::mllp_frame(message);
    asio::async_write(*socket, asio::buffer(step->frame), [this, step](error_code ec, std::size_t) {
      if (step->abandoned) return;
      if (ec) return finish(*step, ec);
      read_reply(step);
    });
    return step;
  }

  void read_reply(const std::shared_ptr<Step>& step) {
    socket->async_read_some(asio::buffer(step->chunk), [this, step](error_code ec, std::size_t n) {
      if (step->abandoned) return;
      step->received += n;
      if (auto fed = step->deframer.feed(std::string_view(step->chunk.data(), n)); !fed) {
        const auto& issues = fed.error().issues;
        step->protocol_error = issues.empty() ? "malformed MLLP reply" : issues.front().diagnostics;
        return finish(*step, {});
      }
      if ((step->ack = step->deframer.pop())) {
        if (step->ack->empty()) step->protocol_error = "empty reply";
        return finish(*step, {});
      }
      if (ec) return finish(*step, ec);
      read_reply(step);
    });
  }
};

MllpOut::MllpOut() : impl_(std::make_unique<Impl>()) {}
MllpOut::~MllpOut() = default;

MllpReply MllpOut::send(const std::string& host, std::uint16_t port, const std::string& message,
                        unsigned timeout_ms) {
  MllpReply reply;
  auto& s = *impl_;
  const auto timeout = std::chrono::milliseconds(timeout_ms);
  const std::string target = host + ":" + std::to_string(port);
  try {
    // A kept connection may have been closed by the partner since: then one fresh try.
    for (int round = 0; round < 2; ++round) {
      const bool reused = s.socket && s.connected_to == target;
      if (!reused) {
        s.drop();
        const auto opened = s.open(host, port);
        if (!s.run(*opened, timeout)) {
          reply.error = "timed out after " + std::to_string(timeout_ms) + " ms";
          return reply;
        }
        if (opened->failure) {
          s.drop();
          reply.error = describe(opened->failure);
          return reply;
        }
        error_code ignored;
        s.socket->set_option(tcp::no_delay(true), ignored);
        s.connected_to = target;
      }
      const auto exchanged = s.exchange(message);
      if (!s.run(*exchanged, timeout)) {
        reply.error = "timed out after " + std::to_string(timeout_ms) + " ms";
        return reply;
      }
      if (!exchanged->protocol_error.empty()) {
        s.drop();
        reply.error = exchanged->protocol_error;
        return reply;
      }
      if (exchanged->ack) {
        // Anything after the reply means the connection is out of step with our messages: start afresh.
        if (exchanged->deframer.in_frame() || exchanged->deframer.pop()) s.drop();
        reply.ack = std::move(*exchanged->ack);
        return reply;
      }
      s.drop();
      if (reused && exchanged->received == 0 && closed_by_peer(exchanged->failure)) continue;
      reply.error = describe(exchanged->failure);
      return reply;
    }
  } catch (const std::exception& e) {
    s.drop();
    reply.error = e.what();
    return reply;
  }
  reply.error = "connection closed";
  return reply;
}

}  // namespace fhirgate::gateway
