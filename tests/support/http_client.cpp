#include "tests/support/http_client.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <stdexcept>

namespace fhirgate::testing {

std::string Response::header(const std::string& name) const {
  for (const auto& [k, v] : headers) {
    if (strcasecmp(k.c_str(), name.c_str()) == 0) return v;
  }
  return {};
}

HttpClient::HttpClient(std::uint16_t port) : port_(port) {}

HttpClient::~HttpClient() {
  close();
}

void HttpClient::connect() {
  close();
  fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd_ < 0) throw std::runtime_error("socket failed");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port_);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close();
    throw std::runtime_error("connect failed");
  }
  int one = 1;
  setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

void HttpClient::close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  buffer_.clear();
}

void HttpClient::send_raw(const std::string& bytes) {
  if (fd_ < 0) connect();
  std::size_t sent = 0;
  while (sent < bytes.size()) {
    const ssize_t n = ::send(fd_, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) throw std::runtime_error("send failed");
    sent += static_cast<std::size_t>(n);
  }
}

namespace {

// Reads more bytes into buf; false on EOF/error/timeout.
bool fill(int fd, std::string& buf, std::chrono::steady_clock::time_point until) {
  const auto left =
      std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now());
  if (left.count() <= 0) return false;
  pollfd p{fd, POLLIN, 0};
  if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return false;
  char tmp[65536];
  const ssize_t n = ::recv(fd, tmp, sizeof tmp, 0);
  if (n <= 0) return false;
  buf.append(tmp, static_cast<std::size_t>(n));
  return true;
}

}  // namespace

std::optional<Response> HttpClient::read_response(std::chrono::milliseconds deadline) {
  const auto until = std::chrono::steady_clock::now() + deadline;
  std::size_t header_end;
  while ((header_end = buffer_.find("\r\n\r\n")) == std::string::npos) {
    if (!fill(fd_, buffer_, until)) return std::nullopt;
  }
  Response r;
  const std::string head = buffer_.substr(0, header_end);
  std::size_t line_end = head.find("\r\n");
  const std::string status_line = head.substr(0, line_end);
  r.status = std::stoi(status_line.substr(9, 3));
  std::size_t pos = line_end == std::string::npos ? head.size() : line_end + 2;
  while (pos < head.size()) {
    std::size_t end = head.find("\r\n", pos);
    if (end == std::string::npos) end = head.size();
    const std::string line = head.substr(pos, end - pos);
    const auto colon = line.find(':');
    std::string value = line.substr(colon + 1);
    while (!value.empty() && value.front() == ' ') value.erase(0, 1);
    r.headers.emplace_back(line.substr(0, colon), value);
    pos = end + 2;
  }
  const std::string length = r.header("Content-Length");
  const std::size_t body_len = length.empty() ? 0 : std::stoul(length);
  const std::size_t body_start = header_end + 4;
  while (buffer_.size() < body_start + body_len) {
    if (!fill(fd_, buffer_, until)) return std::nullopt;
  }
  r.body = buffer_.substr(body_start, body_len);
  buffer_.erase(0, body_start + body_len);
  if (strcasecmp(r.header("Connection").c_str(), "close") == 0) close();
  return r;
}

bool HttpClient::closed_by_peer(std::chrono::milliseconds deadline) {
  const auto until = std::chrono::steady_clock::now() + deadline;
  for (;;) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return false;
    char tmp[4096];
    const ssize_t n = ::recv(fd_, tmp, sizeof tmp, 0);
    if (n <= 0) return true;
  }
}

Response HttpClient::request(const std::string& method, const std::string& target, const std::string& body,
                             std::vector<std::pair<std::string, std::string>> headers) {
  std::string req = method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port_) + "\r\n";
  for (const auto& [k, v] : headers) req += k + ": " + v + "\r\n";
  for (const auto& header : default_headers_) {
    const bool overridden =
        std::any_of(headers.begin(), headers.end(), [&](const auto& h) { return h.first == header.first; });
    if (!overridden) req += header.first + ": " + header.second + "\r\n";
  }
  if (!body.empty() || method == "POST" || method == "PUT")
    req += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  req += "\r\n" + body;
  for (int attempt = 0; attempt < 2; ++attempt) {
    if (fd_ < 0) connect();
    try {
      send_raw(req);
    } catch (const std::runtime_error&) {
      close();
      continue;
    }
    if (auto r = read_response()) return *r;
    close();  // the server closed a kept-alive connection: retry once on a new one
  }
  throw std::runtime_error("no response to " + method + " " + target);
}

Response HttpClient::send_json(const std::string& method, const std::string& target, const std::string& body,
                               std::vector<std::pair<std::string, std::string>> headers) {
  bool has_type = false;
  for (const auto& [k, v] : headers) has_type |= strcasecmp(k.c_str(), "Content-Type") == 0;
  if (!has_type) headers.emplace_back("Content-Type", "application/fhir+json");
  return request(method, target, body, std::move(headers));
}

}  // namespace fhirgate::testing
