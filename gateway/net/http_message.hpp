#pragma once
// Transport-neutral HTTP request and response: what the network layer hands to the API and back.
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace fhirgate::gateway::net {

using Headers = std::vector<std::pair<std::string, std::string>>;

// Case-insensitive header lookup; empty when absent.
std::string_view find_header(const Headers& headers, std::string_view name);

struct HttpRequest {
  std::string method;  // GET, POST, ...
  std::string target;  // origin-form: /Patient/1?x=y
  Headers headers;
  std::string body;
  std::string remote_address;  // the client's IP address, when known
  std::string_view header(std::string_view name) const { return find_header(headers, name); }
};

struct HttpResponse {
  int status = 200;
  Headers headers;
  std::string body;
  std::string cause;  // why a request failed inside (a storage error), for the request log; never sent
  std::string_view header(std::string_view name) const { return find_header(headers, name); }
  void set_header(std::string name, std::string value) {
    headers.emplace_back(std::move(name), std::move(value));
  }
};

}  // namespace fhirgate::gateway::net
