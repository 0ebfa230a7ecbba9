#pragma once
// Outbound HTTP/1.1 for deliveries to partners. An HttpOut keeps one connection to one host open
// (keep-alive) and sends requests on it one at a time. Each step (resolve and connect, then write and
// read) is bounded by the timeout; a step that runs out drops the connection, and a handler that completes
// late (a slow name lookup) writes only into its own abandoned step. A connection the partner closed is
// reopened once. Blocking:
// call from a worker thread. Not thread-safe: one per worker and destination. Beast stays in the .cpp.
#include <memory>
#include <string>

namespace fhirgate::gateway {

struct OutboundReply {
  int status = 0;     // 0 when no response came (see error)
  std::string error;  // why there is no response: "timed out after 500 ms", "Connection refused", ...
  std::string body;
};

class HttpOut {
 public:
  HttpOut();
  ~HttpOut();
  HttpOut(const HttpOut&) = delete;
  HttpOut& operator=(const HttpOut&) = delete;

  // `url` is http://host[:port]/path. Never throws.
  OutboundReply send(const std::string& method, const std::string& url, const std::string& content_type,
                     const std::string& body, unsigned timeout_ms);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace fhirgate::gateway
