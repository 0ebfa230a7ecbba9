#include "gateway/net/http_out.hpp"

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <optional>

namespace fhirgate::gateway {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

struct Url {
  std::string host, port = "80", target = "/";
};

bool parse_url(const std::string& url, Url& out) {
  constexpr std::string_view scheme = "http://";
  if (!url.starts_with(scheme)) return false;
  const std::string rest = url.substr(scheme.size());
  const auto slash = rest.find('/');
  const std::string authority = rest.substr(0, slash);
  if (slash != std::string::npos) out.target = rest.substr(slash);
  const auto colon = authority.rfind(':');
  out.host = authority.substr(0, colon);
  if (colon != std::string::npos) out.port = authority.substr(colon + 1);
  return !out.host.empty() && !out.port.empty();
}

// What the handlers of one step (connect, or exchange) report. They share it, so a handler that completes
// after its step was abandoned (a resolve outliving its deadline) writes here, never into a later step.
struct Step {
  bool done = false;
  bool abandoned = false;  // its deadline passed: late handlers do nothing
  beast::error_code failure;
  http::request<http::string_body> request;
  http::response_parser<http::string_body> parser;
};

void finish(Step& step, beast::error_code ec) {
  step.failure = ec;
  step.done = true;
}

}  // namespace

struct HttpOut::Impl {
  asio::io_context ioc;
  asio::ip::tcp::resolver resolver{ioc};
  std::optional<beast::tcp_stream> stream;
  std::string connected_to;  // host:port of the open connection
  beast::flat_buffer buffer;

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
    if (stream) {
      beast::error_code ignored;
      stream->socket().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
      stream->close();
      // The operations the close cancelled complete now, while the stream they refer to still exists.
      ioc.restart();
      ioc.poll();
    }
    stream.reset();
    connected_to.clear();
    buffer.clear();
  }

  std::shared_ptr<Step> open(const Url& u) {
    auto step = std::make_shared<Step>();
    stream.emplace(ioc);
    resolver.async_resolve(u.host, u.port,
                           [this, step](beast::error_code ec, asio::ip::tcp::resolver::results_type r) {
                             if (step->abandoned) return;
                             if (ec) return finish(*step, ec);
                             stream->async_connect(r, [step](beast::error_code ec2, const auto&) {
                               if (!step->abandoned) finish(*step, ec2);
                             });
                           });
    return step;
  }

  std::shared_ptr<Step> exchange(http::request<http::string_body> request) {
    auto step = std::make_shared<Step>();
    step->request = std::move(request);
    step->parser.body_limit(16 * 1024 * 1024);
    http::async_write(*stream, step->request, [this, step](beast::error_code ec, std::size_t) {
      if (step->abandoned) return;
      if (ec) return finish(*step, ec);
      http::async_read(*stream, buffer, step->parser, [step](beast::error_code ec2, std::size_t) {
        if (!step->abandoned) finish(*step, ec2);
      });
    });
    return step;
  }
};

HttpOut::HttpOut() : impl_(std::make_unique<Impl>()) {}
HttpOut::~HttpOut() = default;

OutboundReply HttpOut::send(const std::string& method, const std::string& url,
                            const std::string& content_type, const std::string& body, unsigned timeout_ms) {
  OutboundReply reply;
  Url u;
  if (!parse_url(url, u)) {
    reply.error = "not an http:// URL: " + url;
    return reply;
  }
  const auto timeout = std::chrono::milliseconds(timeout_ms);
  const std::string timed_out = "timed out after " + std::to_string(timeout_ms) + " ms";
  http::request<http::string_body> req{http::string_to_verb(method), u.target, 11};
  req.set(http::field::host, u.host + ":" + u.port);
  req.set(http::field::user_agent, "fhirgate");
  req.set(http::field::content_type, content_type);
  req.set(http::field::accept, "application/fhir+json");
  req.keep_alive(true);
  req.body() = body;
  req.prepare_payload();
  auto& s = *impl_;
  const std::string authority = u.host + ":" + u.port;
  try {
    // A kept connection may have been closed by the partner since: then one fresh try.
    for (int round = 0; round < 2; ++round) {
      const bool reused = s.stream && s.connected_to == authority;
      if (!reused) {
        s.drop();
        const auto opened = s.open(u);
        if (!s.run(*opened, timeout)) {
          reply.error = timed_out;
          return reply;
        }
        if (opened->failure) {
          s.drop();
          reply.error = opened->failure.message();
          return reply;
        }
        s.connected_to = authority;
      }
      const auto exchanged = s.exchange(req);
      if (!s.run(*exchanged, timeout)) {
        reply.error = timed_out;
        return reply;
      }
      const auto failure = exchanged->failure;
      if (failure) {
        s.drop();
        // The partner closed the kept connection before answering: reconnect once.
        if (reused && (failure == http::error::end_of_stream || failure == asio::error::connection_reset ||
                       failure == asio::error::broken_pipe || failure == asio::error::eof))
          continue;
        reply.error = failure.message();
        return reply;
      }
      auto& response = exchanged->parser.get();
      reply.status = static_cast<int>(response.result_int());
      reply.body = std::move(response.body());
      if (!response.keep_alive()) s.drop();
      return reply;
    }
  } catch (const std::exception& e) {
    s.drop();
    reply.error = e.what();
    return reply;
  }
  reply.error = "the partner closed the connection";
  return reply;
}

}  // namespace fhirgate::gateway
