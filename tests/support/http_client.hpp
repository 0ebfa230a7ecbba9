#pragma once
// A minimal blocking HTTP/1.1 client over POSIX sockets for integration tests: real sockets, no Beast,
// so tests also control the raw bytes (slow clients, malformed requests).
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace fhirgate::testing {

struct Response {
  int status = 0;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  std::string header(const std::string& name) const;  // case-insensitive; empty when absent
};

class HttpClient {
 public:
  explicit HttpClient(std::uint16_t port);
  // With headers sent on every request (see set_default_headers).
  HttpClient(std::uint16_t port, std::vector<std::pair<std::string, std::string>> default_headers)
      : HttpClient(port) {
    default_headers_ = std::move(default_headers);
  }
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Sends a request on the kept-alive connection (reconnecting when the server closed it).
  Response request(const std::string& method, const std::string& target, const std::string& body = {},
                   std::vector<std::pair<std::string, std::string>> headers = {});
  Response get(const std::string& target, std::vector<std::pair<std::string, std::string>> headers = {}) {
    return request("GET", target, {}, std::move(headers));
  }
  // POST/PUT with Content-Type application/fhir+json unless given.
  Response send_json(const std::string& method, const std::string& target, const std::string& body,
                     std::vector<std::pair<std::string, std::string>> headers = {});

  // Headers sent with every request unless the request gives the same header (e.g. Authorization).
  void set_default_headers(std::vector<std::pair<std::string, std::string>> headers) {
    default_headers_ = std::move(headers);
  }

  // Raw access for hostile-client tests.
  void connect();
  void send_raw(const std::string& bytes);
  // Reads one response; nullopt if the server closed the connection first or the deadline passed.
  std::optional<Response> read_response(std::chrono::milliseconds deadline = std::chrono::seconds(10));
  // True when the server closes the connection within the deadline.
  bool closed_by_peer(std::chrono::milliseconds deadline);
  void close();
  int fd() const { return fd_; }  // the connection's socket, -1 when not connected

 private:
  std::uint16_t port_;
  std::vector<std::pair<std::string, std::string>> default_headers_;
  int fd_ = -1;
  std::string buffer_;
};

}  // namespace fhirgate::testing
