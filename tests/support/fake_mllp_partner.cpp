#include "tests/support/fake_mllp_partner.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <optional>
#include <stdexcept>

namespace fhirgate::testing {
namespace {

constexpr char kStartBlock = '\x0B';
constexpr std::string_view kEndBlock = "\x1C\r";
constexpr std::size_t kMaxFrameBytes = 64 * 1024 * 1024;

// ---- Framing and the ACK: pure functions. ----

// Removes the first complete frame from `buffer`, with any bytes before it, and returns the message in
// it; nullopt when no frame is complete yet (bytes before a start block are dropped meanwhile).
std::optional<std::string> take_frame(std::string& buffer) {
  const auto start = buffer.find(kStartBlock);
  if (start == std::string::npos) {
    buffer.clear();
    return std::nullopt;
  }
  buffer.erase(0, start);
  const auto end = buffer.find(kEndBlock, 1);
  if (end == std::string::npos) return std::nullopt;
  std::string message = buffer.substr(1, end - 1);
  buffer.erase(0, end + kEndBlock.size());
  return message;
}

std::vector<std::string_view> split(std::string_view text, char separator) {
  std::vector<std::string_view> parts;
  for (;;) {
    const auto at = text.find(separator);
    parts.push_back(text.substr(0, at));
    if (at == std::string_view::npos) return parts;
    text.remove_prefix(at + 1);
  }
}

std::string utc_timestamp() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  ::gmtime_r(&now, &tm);
  char text[32];
  std::strftime(text, sizeof text, "%Y%m%d%H%M%S", &tm);
  return text;
}

// ---- I/O: every wait also watches the wake pipe, so stop() ends it. ----

// True once `fd` is ready for `events`; false when stop() was called or the connection failed.
bool wait_for(int fd, short events, int wake_fd) {
  pollfd fds[2] = {{fd, events, 0}, {wake_fd, POLLIN, 0}};
  for (;;) {
    const int n = ::poll(fds, 2, -1);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 || fds[1].revents != 0) return false;
    if (fds[0].revents & events) return true;
    if (fds[0].revents != 0) return false;
  }
}

// Appends the bytes that arrive next to `buffer`; false at end of stream, on error or stop().
bool receive(int fd, std::string& buffer, int wake_fd) {
  if (!wait_for(fd, POLLIN, wake_fd)) return false;
  char chunk[16384];
  ssize_t n = -1;
  while ((n = ::recv(fd, chunk, sizeof chunk, 0)) < 0 && errno == EINTR) {
  }
  if (n <= 0) return false;
  buffer.append(chunk, static_cast<std::size_t>(n));
  return true;
}

bool send_bytes(int fd, std::string_view bytes, int wake_fd) {
  while (!bytes.empty()) {
    if (!wait_for(fd, POLLOUT, wake_fd)) return false;
    const ssize_t n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)) continue;
    if (n <= 0) return false;
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

}  // namespace

std::string FakeMllpPartner::make_ack(std::string_view received, std::string_view code,
                                      std::string_view control_id) {
  char separator = '|';
  std::string_view encoding = "^~\\&";
  std::vector<std::string_view> msh;  // msh[n - 1] is MSH-n, for n >= 2
  if (received.starts_with("MSH") && received.size() > 3) {
    separator = received[3];
    msh = split(received.substr(0, received.find_first_of("\r\n")), separator);
    if (!msh[1].empty()) encoding = msh[1];
  }
  auto msh_field = [&](std::size_t n) { return n - 1 < msh.size() ? msh[n - 1] : std::string_view(); };
  const char component = encoding.front();
  const auto type = split(msh_field(9), component);
  const std::string_view trigger = type.size() > 1 ? type[1] : std::string_view();

  std::string ack = "MSH";
  auto field = [&](std::string_view value) {
    ack += separator;
    ack += value;
  };
  field(encoding);
  field(msh_field(5));
  field(msh_field(6));
  field(msh_field(3));
  field(msh_field(4));
  field(utc_timestamp());
  field("");
  field("ACK");
  ack.append(1, component).append(trigger).append(1, component).append("ACK");
  field(control_id);
  field(msh_field(11));
  field(msh_field(12));
  ack += "\rMSA";
  field(code);
  field(msh_field(10));
  ack += '\r';
  return ack;
}

FakeMllpPartner::FakeMllpPartner(std::uint16_t port) {
  auto fail = [this](const char* what) {
    const int saved = errno;
    for (const int fd : {listen_fd_, wake_read_, wake_write_}) {
      if (fd >= 0) ::close(fd);
    }
    throw std::runtime_error(std::string("FakeMllpPartner: ") + what + ": " + std::strerror(saved));
  };
  int wake[2];
  if (::pipe2(wake, O_CLOEXEC) != 0) fail("pipe");
  wake_read_ = wake[0];
  wake_write_ = wake[1];
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0) fail("socket");
  const int one = 1;
  if (::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0) fail("SO_REUSEADDR");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) fail("bind");
  if (::listen(listen_fd_, SOMAXCONN) != 0) fail("listen");
  socklen_t size = sizeof addr;
  if (::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &size) != 0) fail("getsockname");
  port_ = ntohs(addr.sin_port);
  accept_thread_ = std::thread([this] { accept_loop(); });
}

FakeMllpPartner::~FakeMllpPartner() {
  stop();
}

void FakeMllpPartner::stop() {
  std::lock_guard stop_lock(stop_mutex_);
  if (stopped_) return;
  stopped_ = true;
  const char byte = 1;
  while (::write(wake_write_, &byte, 1) < 0 && errno == EINTR) {
  }
  accept_thread_.join();
  ::close(listen_fd_);
  for (auto& connection : threads_) connection.thread.join();
  threads_.clear();
  ::close(wake_read_);
  ::close(wake_write_);
}

void FakeMllpPartner::drop_connections() {
  std::unique_lock lock(mutex_);
  const auto dropped = open_;
  for (const auto& [number, fd] : dropped) ::shutdown(fd, SHUT_RDWR);
  changed_.wait(lock, [&] {
    for (const auto& entry : dropped) {
      if (open_.contains(entry.first)) return false;
    }
    return true;
  });
}

void FakeMllpPartner::set_mode(Mode mode) {
  std::lock_guard lock(mutex_);
  mode_ = mode;
}

void FakeMllpPartner::fail_next(int n) {
  std::lock_guard lock(mutex_);
  fail_next_ = n > 0 ? n : 0;
}

std::vector<FakeMllpPartner::Message> FakeMllpPartner::messages() const {
  std::lock_guard lock(mutex_);
  return messages_;
}

bool FakeMllpPartner::wait_for_messages(std::size_t n, std::chrono::milliseconds timeout) const {
  std::unique_lock lock(mutex_);
  return changed_.wait_for(lock, timeout, [&] { return messages_.size() >= n; });
}

std::size_t FakeMllpPartner::connections() const {
  std::lock_guard lock(mutex_);
  return accepted_;
}

FakeMllpPartner::Mode FakeMllpPartner::record(Message message, std::string& control_id) {
  Mode mode;
  {
    std::lock_guard lock(mutex_);
    messages_.push_back(std::move(message));
    mode = mode_;
    if (fail_next_ > 0) {
      --fail_next_;
      mode = Mode::ae;
    }
    if (mode != Mode::hang && mode != Mode::close) control_id = "ACK" + std::to_string(++acks_sent_);
  }
  changed_.notify_all();
  return mode;
}

void FakeMllpPartner::accept_loop() {
  while (wait_for(listen_fd_, POLLIN, wake_read_)) {
    const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;  // the client gave up already (ECONNABORTED), or EINTR
    const int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    std::size_t number;
    {
      std::lock_guard lock(mutex_);
      number = ++accepted_;
      open_.emplace(number, fd);
    }
    std::erase_if(threads_, [](Connection& connection) {
      if (!connection.done.load()) return false;
      connection.thread.join();
      return true;
    });
    Connection& connection = threads_.emplace_back();
    connection.thread = std::thread([this, fd, number, &connection] {
      serve(fd);
      {
        // Under the lock, so drop_connections() never shuts down a descriptor number already reused.
        std::lock_guard lock(mutex_);
        open_.erase(number);
        ::close(fd);
      }
      changed_.notify_all();
      connection.done.store(true);
    });
  }
}

void FakeMllpPartner::serve(int fd) {
  std::string buffer;
  for (;;) {
    auto text = take_frame(buffer);
    if (!text) {
      if (buffer.size() > kMaxFrameBytes || !receive(fd, buffer, wake_read_)) return;
      continue;
    }
    std::string control_id;
    const Mode mode = record(Message{*text, std::chrono::steady_clock::now()}, control_id);
    switch (mode) {
      case Mode::hang:
        while (receive(fd, buffer, wake_read_)) buffer.clear();  // until the client leaves or stop()
        return;
      case Mode::close:
        return;
      case Mode::aa:
      case Mode::ae:
      case Mode::ar: {
        const std::string_view code = mode == Mode::aa ? "AA" : mode == Mode::ae ? "AE" : "AR";
        const std::string ack = make_ack(*text, code, control_id);
        const std::string frame = kStartBlock + ack + std::string(kEndBlock);
        if (!send_bytes(fd, frame, wake_read_)) return;
        break;
      }
    }
  }
}

}  // namespace fhirgate::testing
