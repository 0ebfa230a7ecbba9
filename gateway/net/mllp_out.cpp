#include "gateway/net/mllp_out.hpp"

#include <array>

#include "gateway/net/outbound_connection.hpp"
#include "mappers/hl7v2_mllp.hpp"

namespace fhirgate::gateway {
namespace {

using net::error_code;

// One message written and its reply read.
struct Exchange : net::Step {
  std::string frame;  // the bytes being written
  std::array<char, 16 * 1024> chunk;
  std::size_t received = 0;  // bytes of the reply read so far
  mappers::MllpDeframer deframer{MllpOut::kMaxReplyBytes};
  std::optional<std::string> ack;
  std::string protocol_error;  // the reply broke MLLP framing or was too long
};

std::string describe(const error_code& ec) {
  return ec == net::asio::error::eof ? "connection closed" : ec.message();
}

}  // namespace

struct MllpOut::Impl {
  net::OutboundConnection connection;

  std::shared_ptr<Exchange> exchange(const std::string& message) {
    auto step = std::make_shared<Exchange>();
    step->frame = mappers::mllp_frame(message);
    net::asio::async_write(*connection.socket, net::asio::buffer(step->frame),
                           [this, step](error_code ec, std::size_t) {
                             if (step->abandoned) return;
                             if (ec) return step->finish(ec);
                             read_reply(step);
                           });
    return step;
  }

  void read_reply(const std::shared_ptr<Exchange>& step) {
    connection.socket->async_read_some(
        net::asio::buffer(step->chunk), [this, step](error_code ec, std::size_t n) {
          if (step->abandoned) return;
          step->received += n;
          if (auto fed = step->deframer.feed(std::string_view(step->chunk.data(), n)); !fed) {
            const auto& issues = fed.error().issues;
            step->protocol_error = issues.empty() ? "malformed MLLP reply" : issues.front().diagnostics;
            return step->finish({});
          }
          if ((step->ack = step->deframer.pop())) {
            if (step->ack->empty()) step->protocol_error = "empty reply";
            return step->finish({});
          }
          if (ec) return step->finish(ec);
          read_reply(step);
        });
  }
};

MllpOut::MllpOut() : impl_(std::make_unique<Impl>()) {}
MllpOut::~MllpOut() = default;

MllpReply MllpOut::send(const std::string& host, std::uint16_t port, const std::string& message,
                        unsigned timeout_ms) {
  MllpReply reply;
  auto& c = impl_->connection;
  const auto timeout = std::chrono::milliseconds(timeout_ms);
  try {
    // A kept connection may have been closed by the partner since: then one fresh try.
    for (int round = 0; round < 2; ++round) {
      bool reused = false;
      if (reply.error = c.connect(host, std::to_string(port), timeout, reused); !reply.error.empty())
        return reply;
      const auto exchanged = impl_->exchange(message);
      if (!c.run(*exchanged, timeout)) {
        reply.error = net::timed_out(timeout);
        return reply;
      }
      if (!exchanged->protocol_error.empty()) {
        c.drop();
        reply.error = exchanged->protocol_error;
        return reply;
      }
      if (exchanged->ack) {
        // Anything after the reply means the connection is out of step with our messages: start afresh.
        if (exchanged->deframer.in_frame() || exchanged->deframer.pop()) c.drop();
        reply.ack = std::move(*exchanged->ack);
        return reply;
      }
      c.drop();
      if (reused && exchanged->received == 0 && net::closed_by_peer(exchanged->failure)) continue;
      reply.error = describe(exchanged->failure);
      return reply;
    }
  } catch (const std::exception& e) {
    c.drop();
    reply.error = e.what();
    return reply;
  }
  reply.error = "connection closed";
  return reply;
}

}  // namespace fhirgate::gateway
