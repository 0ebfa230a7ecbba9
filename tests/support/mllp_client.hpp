#pragma once
// A blocking MLLP client for integration tests: sends frames to the gateway's MLLP listener and reads the
// ACK frames back. Plain POSIX sockets; REQUIREs that the connection and writes work.
#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <string>

namespace fhirgate::testing {

inline std::string frame(const std::string& message) {
  return "\x0b" + message + "\x1c\x0d";
}

class MllpClient {
 public:
  explicit MllpClient(std::uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  }
  ~MllpClient() { ::close(fd_); }
  MllpClient(const MllpClient&) = delete;
  MllpClient& operator=(const MllpClient&) = delete;

  // False when the connection is gone (for load threads, where a failed REQUIRE cannot be used).
  bool try_send(const std::string& bytes) {
    return ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(bytes.size());
  }
  void send_raw(const std::string& bytes) {
    REQUIRE(::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(bytes.size()));
  }
  // The next complete frame's message; empty on timeout or close.
  std::string read_frame() {
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    for (;;) {
      const auto start = buffer_.find('\x0b');
      if (start != std::string::npos) {
        const auto end = buffer_.find("\x1c\x0d", start);
        if (end != std::string::npos) {
          std::string message = buffer_.substr(start + 1, end - start - 1);
          buffer_.erase(0, end + 2);
          return message;
        }
      }
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now());
      pollfd p{fd_, POLLIN, 0};
      if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) <= 0) return {};
      char buf[4096];
      const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) return {};
      buffer_.append(buf, static_cast<std::size_t>(n));
    }
  }

 private:
  int fd_ = -1;
  std::string buffer_;
};

}  // namespace fhirgate::testing
