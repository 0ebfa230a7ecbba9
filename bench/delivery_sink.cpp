// A partner endpoint for bench/delivery.sh: accepts HTTP/1.1 on 127.0.0.1:PORT, answers every request
// 200 with a tiny OperationOutcome (keep-alive honoured), and prints the number of requests received to
// stdout when it gets SIGTERM. A thread per connection; plain sockets, so it measures only the gateway.
//
//   delivery_sink PORT
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

namespace {

std::atomic<long> g_requests{0};

void serve(int fd) {
  std::string buffer;
  char chunk[65536];
  const std::string body =
      R"({"resourceType":"OperationOutcome","issue":[{"severity":"information","code":"informational"}]})";
  for (;;) {
    const auto head_end = buffer.find("\r\n\r\n");
    if (head_end == std::string::npos) {
      const ssize_t n = read(fd, chunk, sizeof chunk);
      if (n <= 0) break;
      buffer.append(chunk, static_cast<std::size_t>(n));
      continue;
    }
    std::size_t length = 0;
    std::string head = buffer.substr(0, head_end);
    for (char& c : head) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (const auto at = head.find("content-length:"); at != std::string::npos)
      length = std::strtoul(head.c_str() + at + 15, nullptr, 10);
    const bool close = head.find("connection: close") != std::string::npos;
    bool open = true;
    while (open && buffer.size() < head_end + 4 + length) {
      const ssize_t n = read(fd, chunk, sizeof chunk);
      if (n <= 0)
        open = false;
      else
        buffer.append(chunk, static_cast<std::size_t>(n));
    }
    if (!open) break;
    buffer.erase(0, head_end + 4 + length);
    ++g_requests;
    const std::string response =
        "HTTP/1.1 200 OK\r\nContent-Type: application/fhir+json\r\nContent-Length: " +
        std::to_string(body.size()) + (close ? "\r\nConnection: close" : "") + "\r\n\r\n" + body;
    if (write(fd, response.data(), response.size()) < 0 || close) break;
  }
  close(fd);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: delivery_sink PORT\n");
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);
  const int listener = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(std::atoi(argv[1])));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || listen(listener, 128) != 0) {
    std::perror("delivery_sink");
    return 1;
  }
  std::thread([listener] {
    for (;;) {
      const int fd = accept(listener, nullptr, nullptr);
      if (fd < 0) continue;
      std::thread(serve, fd).detach();
    }
  }).detach();
  int signal_number = 0;
  sigwait(&stop, &signal_number);
  std::printf("%ld\n", g_requests.load());
  return 0;
}
