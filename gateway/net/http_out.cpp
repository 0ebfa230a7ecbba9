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

}  // namespace

struct HttpOut::Impl {
  asio::io_context ioc;
  std::optional<beast::tcp_stream> stream;
  std::string connected_to;  // host:port of the open connection
  beast::flat_buffer buffer;

  // Runs the io_context for at most `deadline`; false (and the connection dropped) when it did not finish.
  bool run(std::chrono::milliseconds deadline) {
    ioc.restart();
    ioc.run_for(deadline + std::chrono::milliseconds(100));
    if (ioc.stopped()) return true;
    drop();
    ioc.run_for(std::chrono::milliseconds(100));  // let the cancelled handlers finish
    return false;
  }
  void drop() {
    if (stream) {
      beast::error_code ignored;
      stream->socket().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
      stream->close();
    }
    stream.reset();
    connected_to.clear();
    buffer.clear();
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
  const auto deadline = std::chrono::milliseconds(timeout_ms);
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
  // A kept connection may have been closed by the partner since: then one fresh try.
  for (int round = 0; round < 2; ++round) {
    const bool reused = s.stream && s.connected_to == authority;
    try {
      beast::error_code failure;
      if (!reused) {
        s.drop();
        s.stream.emplace(s.ioc);
        s.stream->expires_after(deadline);
        asio::ip::tcp::resolver resolver(s.ioc);
        resolver.async_resolve(
            u.host, u.port, [&](beast::error_code ec, asio::ip::tcp::resolver::results_type r) {
              if (ec) return void(failure = ec);
              s.stream->async_connect(r, [&](beast::error_code ec2, const auto&) { failure = ec2; });
            });
        if (!s.run(deadline)) {
          reply.error = timed_out;
          return reply;
        }
        if (failure) {
          reply.error = failure == beast::error::timeout ? timed_out : failure.message();
          s.drop();
          return reply;
        }
        s.connected_to = authority;
      }
      http::response_parser<http::string_body> parser;
      parser.body_limit(16 * 1024 * 1024);
      s.stream->expires_after(deadline);
      http::async_write(*s.stream, req, [&](beast::error_code ec, std::size_t) {
        if (ec) return void(failure = ec);
        http::async_read(*s.stream, s.buffer, parser,
                         [&](beast::error_code ec2, std::size_t) { failure = ec2; });
      });
      if (!s.run(deadline)) {
        reply.error = timed_out;
        return reply;
      }
      if (failure) {
        s.drop();
        // The partner closed the kept connection before answering: reconnect once.
        if (reused && (failure == http::error::end_of_stream || failure == asio::error::connection_reset ||
                       failure == asio::error::broken_pipe || failure == asio::error::eof))
          continue;
        reply.error = failure == beast::error::timeout ? timed_out : failure.message();
        return reply;
      }
      reply.status = static_cast<int>(parser.get().result_int());
      reply.body = parser.get().body();
      if (!parser.get().keep_alive()) s.drop();
      return reply;
    } catch (const std::exception& e) {
      s.drop();
      reply.error = e.what();
      return reply;
    }
  }
  reply.error = "the partner closed the connection";
  return reply;
}

}  // namespace fhirgate::gateway
