#include "tests/support/fake_partner.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <string_view>
#include <system_error>

namespace fhirgate::testing {

std::string FakePartner::Request::header(const std::string& name) const {
  for (const auto& [k, v] : headers) {
    if (strcasecmp(k.c_str(), name.c_str()) == 0) return v;
  }
  return {};
}

namespace {

constexpr std::size_t kMaxHeadBytes = 64 * 1024;
constexpr std::size_t kMaxBodyBytes = 64 * 1024 * 1024;

std::string outcome(std::string_view severity, std::string_view code, std::string_view diagnostics) {
  std::string out = R"({"resourceType":"OperationOutcome","issue":[{"severity":")";
  out.append(severity).append(R"(","code":")").append(code);
  out.append(R"(","diagnostics":")").append(diagnostics).append(R"("}]})");
  return out;
}

// ---- Parsing: pure functions over the bytes received so far. ----

struct Parsed {
  enum class Status { need_more, complete, malformed, too_large };
  Status status = Status::need_more;
  FakePartner::Request request;  // when complete (without `at`)
  bool keep_alive = false;       // when complete
  std::size_t consumed = 0;      // when complete: bytes of the buffer this request took
};

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && strncasecmp(a.data(), b.data(), a.size()) == 0;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Whether a comma-separated header value (e.g. Connection) lists `token`, case-insensitively.
bool has_token(std::string_view value, std::string_view token) {
  while (!value.empty()) {
    const auto comma = value.find(',');
    if (iequals(trim(value.substr(0, comma)), token)) return true;
    if (comma == std::string_view::npos) break;
    value.remove_prefix(comma + 1);
  }
  return false;
}

template <typename T>
std::optional<T> parse_number(std::string_view text, int base) {
  T value{};
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value, base);
  if (text.empty() || error != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

// Decodes a chunked body starting at `pos`; sets status, body and consumed.
void parse_chunked(std::string_view buffer, std::size_t pos, Parsed& out) {
  using Status = Parsed::Status;
  std::string body;
  for (;;) {
    const auto line_end = buffer.find("\r\n", pos);
    if (line_end == std::string_view::npos) {
      out.status = buffer.size() - pos > kMaxHeadBytes ? Status::malformed : Status::need_more;
      return;
    }
    const auto line = buffer.substr(pos, line_end - pos);
    const auto size = parse_number<std::size_t>(trim(line.substr(0, line.find(';'))), 16);
    if (!size) {
      out.status = Status::malformed;
      return;
    }
    pos = line_end + 2;
    if (*size == 0) break;
    if (*size > kMaxBodyBytes - body.size()) {
      out.status = Status::too_large;
      return;
    }
    if (buffer.size() - pos < *size + 2) {
      out.status = Status::need_more;
      return;
    }
    if (buffer.substr(pos + *size, 2) != "\r\n") {
      out.status = Status::malformed;
      return;
    }
    body.append(buffer.substr(pos, *size));
    pos += *size + 2;
  }
  for (;;) {  // trailer fields, up to the empty line
    const auto line_end = buffer.find("\r\n", pos);
    if (line_end == std::string_view::npos) {
      out.status = buffer.size() - pos > kMaxHeadBytes ? Status::malformed : Status::need_more;
      return;
    }
    const bool last = line_end == pos;
    pos = line_end + 2;
    if (last) break;
  }
  out.request.body = std::move(body);
  out.consumed = pos;
  out.status = Status::complete;
}

Parsed parse_request(std::string_view buffer) {
  using Status = Parsed::Status;
  Parsed out;
  std::size_t start = 0;
  while (buffer.substr(start, 2) == "\r\n") start += 2;  // empty lines before a request are ignored
  const auto head_end = buffer.find("\r\n\r\n", start);
  if (head_end == std::string_view::npos) {
    out.status = buffer.size() - start > kMaxHeadBytes ? Status::malformed : Status::need_more;
    return out;
  }
  if (head_end - start > kMaxHeadBytes) {
    out.status = Status::malformed;
    return out;
  }
  const std::string_view head = buffer.substr(start, head_end + 2 - start);  // each line ends in CRLF

  auto line_end = head.find("\r\n");
  const std::string_view request_line = head.substr(0, line_end);
  const auto sp1 = request_line.find(' ');
  const auto sp2 = request_line.find(' ', sp1 == std::string_view::npos ? sp1 : sp1 + 1);
  if (sp1 == 0 || sp1 == std::string_view::npos || sp2 == std::string_view::npos || sp2 == sp1 + 1) {
    out.status = Status::malformed;
    return out;
  }
  const std::string_view version = request_line.substr(sp2 + 1);
  if (version != "HTTP/1.1" && version != "HTTP/1.0") {
    out.status = Status::malformed;
    return out;
  }
  out.request.method = std::string(request_line.substr(0, sp1));
  out.request.target = std::string(request_line.substr(sp1 + 1, sp2 - sp1 - 1));

  std::optional<std::size_t> content_length;
  bool chunked = false;
  bool close = false;
  bool keep_alive = false;
  for (std::size_t pos = line_end + 2; pos < head.size(); pos = line_end + 2) {
    line_end = head.find("\r\n", pos);
    const std::string_view line = head.substr(pos, line_end - pos);
    const auto colon = line.find(':');
    if (colon == 0 || colon == std::string_view::npos || trim(line.substr(0, colon)).size() != colon) {
      out.status = Status::malformed;
      return out;
    }
    const std::string_view name = line.substr(0, colon);
    const std::string_view value = trim(line.substr(colon + 1));
    out.request.headers.emplace_back(std::string(name), std::string(value));
    if (iequals(name, "Content-Length")) {
      const auto length = parse_number<std::size_t>(value, 10);
      if (!length || (content_length && *content_length != *length)) {
        out.status = Status::malformed;
        return out;
      }
      content_length = length;
    } else if (iequals(name, "Transfer-Encoding")) {
      if (!iequals(value, "chunked")) {
        out.status = Status::malformed;
        return out;
      }
      chunked = true;
    } else if (iequals(name, "Connection")) {
      close |= has_token(value, "close");
      keep_alive |= has_token(value, "keep-alive");
    }
  }
  out.keep_alive = version == "HTTP/1.1" ? !close : keep_alive && !close;

  const std::size_t body_start = head_end + 4;
  if (chunked) {
    parse_chunked(buffer, body_start, out);
    return out;
  }
  const std::size_t length = content_length.value_or(0);
  if (length > kMaxBodyBytes) {
    out.status = Status::too_large;
    return out;
  }
  if (buffer.size() - body_start < length) {
    out.status = Status::need_more;
    return out;
  }
  out.request.body = std::string(buffer.substr(body_start, length));
  out.consumed = body_start + length;
  out.status = Status::complete;
  return out;
}

// ---- Answers: pure functions. ----

std::string_view reason(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 400:
      return "Bad Request";
    case 413:
      return "Content Too Large";
    default:
      return "Internal Server Error";
  }
}

std::string http_response(int status, std::string_view method, std::string_view body, bool keep_alive) {
  std::string out = "HTTP/1.1 " + std::to_string(status) + " " + std::string(reason(status)) + "\r\n";
  out += "Content-Type: application/fhir+json\r\n";
  out += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  out += keep_alive ? "Connection: keep-alive\r\n" : "Connection: close\r\n";
  out += "\r\n";
  if (method != "HEAD") out += body;
  return out;
}

// The bytes answering a request in `mode`; nullopt when the mode sends nothing.
std::optional<std::string> answer(std::string_view method, FakePartner::Mode mode, bool keep_alive) {
  switch (mode) {
    case FakePartner::Mode::ok:
      return http_response(method == "POST" ? 201 : 200, method,
                           outcome("information", "informational", "ok"), keep_alive);
    case FakePartner::Mode::fail:
      return http_response(500, method, outcome("error", "exception", "fake partner failure"), keep_alive);
    case FakePartner::Mode::hang:
    case FakePartner::Mode::close:
      break;
  }
  return std::nullopt;
}

// ---- I/O: every wait also watches the wake pipe, so stop() ends it. ----

// Waits until `fd` is ready for `events` (true) or stop() was called or the peer hung up (false).
bool wait_ready(int fd, short events, int wake_fd) {
  for (;;) {
    pollfd fds[2] = {{fd, events, 0}, {wake_fd, POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    if (fds[1].revents != 0) return false;
    if (fds[0].revents & events) return true;
    if (fds[0].revents != 0) return false;  // POLLERR, POLLHUP, POLLNVAL without the wanted event
  }
}

// Appends what arrives to `buffer`; false on end of stream, error or stop().
bool read_more(int fd, std::string& buffer, int wake_fd) {
  if (!wait_ready(fd, POLLIN, wake_fd)) return false;
  char chunk[65536];
  ssize_t n;
  do {
    n = ::recv(fd, chunk, sizeof chunk, 0);
  } while (n < 0 && errno == EINTR);
  if (n <= 0) return false;
  buffer.append(chunk, static_cast<std::size_t>(n));
  return true;
}

bool send_all(int fd, std::string_view bytes, int wake_fd) {
  while (!bytes.empty()) {
    if (!wait_ready(fd, POLLOUT, wake_fd)) return false;
    const ssize_t n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)) continue;
    if (n <= 0) return false;
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

[[noreturn]] void fail_setup(const char* what, int saved_errno) {
  throw std::runtime_error(std::string("FakePartner: ") + what + ": " + std::strerror(saved_errno));
}

}  // namespace

FakePartner::FakePartner(std::uint16_t port) {
  int wake[2];
  if (::pipe2(wake, O_CLOEXEC) != 0) fail_setup("pipe", errno);
  wake_read_ = wake[0];
  wake_write_ = wake[1];
  auto give_up = [this](const char* what) {
    const int saved = errno;
    if (listen_fd_ >= 0) ::close(listen_fd_);
    ::close(wake_read_);
    ::close(wake_write_);
    fail_setup(what, saved);
  };
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0) give_up("socket");
  const int one = 1;
  if (::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0) give_up("SO_REUSEADDR");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) give_up("bind");
  if (::listen(listen_fd_, SOMAXCONN) != 0) give_up("listen");
  socklen_t len = sizeof addr;
  if (::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) give_up("getsockname");
  port_ = ntohs(addr.sin_port);
  accept_thread_ = std::thread([this] { accept_loop(); });
}

FakePartner::~FakePartner() {
  stop();
}

void FakePartner::stop() {
  std::lock_guard stop_lock(stop_mutex_);
  if (stopped_) return;
  stopped_ = true;
  const char byte = 1;
  while (::write(wake_write_, &byte, 1) < 0 && errno == EINTR) {
  }
  accept_thread_.join();
  ::close(listen_fd_);
  for (auto& connection : connections_) connection.thread.join();
  connections_.clear();
  ::close(wake_read_);
  ::close(wake_write_);
}

void FakePartner::set_mode(Mode mode) {
  std::lock_guard lock(mutex_);
  mode_ = mode;
}

void FakePartner::fail_next(int n) {
  std::lock_guard lock(mutex_);
  fail_next_ = n > 0 ? n : 0;
}

std::vector<FakePartner::Request> FakePartner::requests() const {
  std::lock_guard lock(mutex_);
  return requests_;
}

bool FakePartner::wait_for_requests(std::size_t n, std::chrono::milliseconds timeout) const {
  std::unique_lock lock(mutex_);
  return arrived_.wait_for(lock, timeout, [&] { return requests_.size() >= n; });
}

FakePartner::Mode FakePartner::record(Request request) {
  Mode mode;
  {
    std::lock_guard lock(mutex_);
    requests_.push_back(std::move(request));
    mode = mode_;
    if (fail_next_ > 0) {
      --fail_next_;
      mode = Mode::fail;
    }
  }
  arrived_.notify_all();
  return mode;
}

void FakePartner::accept_loop() {
  for (;;) {
    if (!wait_ready(listen_fd_, POLLIN, wake_read_)) return;
    const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;  // the client gave up already (ECONNABORTED), or EINTR
    const int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    for (auto it = connections_.begin(); it != connections_.end();) {
      if (!it->done.load()) {
        ++it;
        continue;
      }
      it->thread.join();
      it = connections_.erase(it);
    }
    Connection& connection = connections_.emplace_back();
    connection.thread = std::thread([this, fd, &connection] {
      serve(fd);
      ::close(fd);
      connection.done.store(true);
    });
  }
}

void FakePartner::serve(int fd) {
  using Status = Parsed::Status;
  std::string buffer;
  for (;;) {
    Parsed parsed = parse_request(buffer);
    switch (parsed.status) {
      case Status::need_more:
        if (!read_more(fd, buffer, wake_read_)) return;
        continue;
      case Status::malformed:
        send_all(fd, http_response(400, "", outcome("error", "structure", "malformed HTTP request"), false),
                 wake_read_);
        return;
      case Status::too_large:
        send_all(fd, http_response(413, "", outcome("error", "too-costly", "request too large"), false),
                 wake_read_);
        return;
      case Status::complete:
        break;
    }
    buffer.erase(0, parsed.consumed);
    const std::string method = parsed.request.method;
    parsed.request.at = std::chrono::steady_clock::now();
    const Mode mode = record(std::move(parsed.request));
    if (mode == Mode::hang) {
      while (read_more(fd, buffer, wake_read_)) buffer.clear();  // until the client leaves or stop()
      return;
    }
    const auto response = answer(method, mode, parsed.keep_alive);
    if (!response || !send_all(fd, *response, wake_read_) || !parsed.keep_alive) return;
  }
}

}  // namespace fhirgate::testing
