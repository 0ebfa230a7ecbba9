#pragma once
// Outbound HTTP/1.1 for deliveries to partners: one request per connection, every step (resolve, connect,
// write, read) bounded by one deadline. Blocking; call from a worker thread. Beast stays in this file's
// .cpp.
#include <string>

namespace fhirgate::gateway {

struct OutboundReply {
  int status = 0;     // 0 when no response came (see error)
  std::string error;  // why there is no response: "timed out", "connection refused", ...
  std::string body;
};

// `url` is http://host[:port]/path. Never throws.
OutboundReply http_send(const std::string& method, const std::string& url, const std::string& content_type,
                        const std::string& body, unsigned timeout_ms);

}  // namespace fhirgate::gateway
