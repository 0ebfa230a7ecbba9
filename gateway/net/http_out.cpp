#include "gateway/net/http_out.hpp"

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>

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

OutboundReply http_send(const std::string& method, const std::string& url, const std::string& content_type,
                        const std::string& body, unsigned timeout_ms) {
  OutboundReply reply;
  Url u;
  if (!parse_url(url, u)) {
    reply.error = "not an http:// URL: " + url;
    return reply;
  }
  try {
    asio::io_context ioc;
    beast::tcp_stream stream(ioc);
    const auto deadline = std::chrono::milliseconds(timeout_ms);
    asio::ip::tcp::resolver resolver(ioc);
    http::request<http::string_body> req{http::string_to_verb(method), u.target, 11};
    req.set(http::field::host, u.host + ":" + u.port);
    req.set(http::field::user_agent, "fhirgate");
    req.set(http::field::content_type, content_type);
    req.set(http::field::accept, "application/fhir+json");
    req.keep_alive(false);
    req.body() = body;
    req.prepare_payload();
    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.body_limit(16 * 1024 * 1024);
    beast::error_code failure;
    stream.expires_after(deadline);
    resolver.async_resolve(
        u.host, u.port, [&](beast::error_code ec, asio::ip::tcp::resolver::results_type results) {
          if (ec) return void(failure = ec);
          stream.async_connect(results, [&](beast::error_code ec2, const auto&) {
            if (ec2) return void(failure = ec2);
            http::async_write(stream, req, [&](beast::error_code ec3, std::size_t) {
              if (ec3) return void(failure = ec3);
              http::async_read(stream, buffer, parser, [&](beast::error_code ec4, std::size_t) {
                if (ec4) failure = ec4;
              });
            });
          });
        });
    ioc.run_for(deadline + std::chrono::milliseconds(100));
    if (!ioc.stopped()) {
      stream.close();
      reply.error = "timed out after " + std::to_string(timeout_ms) + " ms";
      return reply;
    }
    if (failure) {
      reply.error = failure == beast::error::timeout ? "timed out after " + std::to_string(timeout_ms) + " ms"
                                                     : failure.message();
      return reply;
    }
    reply.status = static_cast<int>(parser.get().result_int());
    reply.body = parser.get().body();
  } catch (const std::exception& e) {
    reply.error = e.what();
  }
  return reply;
}

}  // namespace fhirgate::gateway
