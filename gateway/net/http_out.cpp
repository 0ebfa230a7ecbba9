#include "gateway/net/http_out.hpp"

#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "gateway/net/outbound_connection.hpp"

namespace fhirgate::gateway {
namespace {

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

// One request written and its response read.
struct Exchange : net::Step {
  http::request<http::string_body> request;
  http::response_parser<http::string_body> parser;
};

}  // namespace

struct HttpOut::Impl {
  net::OutboundConnection connection;
  beast::flat_buffer buffer;  // what was read past a response; belongs to the open connection

  std::shared_ptr<Exchange> exchange(http::request<http::string_body> request) {
    auto step = std::make_shared<Exchange>();
    step->request = std::move(request);
    step->parser.body_limit(16 * 1024 * 1024);
    http::async_write(*connection.socket, step->request, [this, step](beast::error_code ec, std::size_t) {
      if (step->abandoned) return;
      if (ec) return step->finish(ec);
      http::async_read(*connection.socket, buffer, step->parser, [step](beast::error_code ec2, std::size_t) {
        if (!step->abandoned) step->finish(ec2);
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
  http::request<http::string_body> req{http::string_to_verb(method), u.target, 11};
  req.set(http::field::host, u.host + ":" + u.port);
  req.set(http::field::user_agent, "fhirgate");
  req.set(http::field::content_type, content_type);
  req.set(http::field::accept, "application/fhir+json");
  req.keep_alive(true);
  req.body() = body;
  req.prepare_payload();
  auto& c = impl_->connection;
  try {
    // A kept connection may have been closed by the partner since: then one fresh try.
    for (int round = 0; round < 2; ++round) {
      bool reused = false;
      if (reply.error = c.connect(u.host, u.port, timeout, reused); !reply.error.empty()) return reply;
      if (!reused) impl_->buffer.clear();
      const auto exchanged = impl_->exchange(req);
      if (!c.run(*exchanged, timeout)) {
        reply.error = net::timed_out(timeout);
        return reply;
      }
      const auto failure = exchanged->failure;
      if (failure) {
        c.drop();
        // The partner closed the kept connection before answering: reconnect once.
        if (reused && (failure == http::error::end_of_stream || net::closed_by_peer(failure))) continue;
        reply.error = failure.message();
        return reply;
      }
      auto& response = exchanged->parser.get();
      reply.status = static_cast<int>(response.result_int());
      reply.body = std::move(response.body());
      if (!response.keep_alive()) c.drop();
      return reply;
    }
  } catch (const std::exception& e) {
    c.drop();
    reply.error = e.what();
    return reply;
  }
  reply.error = "the partner closed the connection";
  return reply;
}

}  // namespace fhirgate::gateway
