#include "gateway/net/http_message.hpp"

#include <strings.h>

namespace fhirgate::gateway::net {

std::string_view find_header(const Headers& headers, std::string_view name) {
  for (const auto& [k, v] : headers) {
    if (k.size() == name.size() && strncasecmp(k.data(), name.data(), name.size()) == 0) return v;
  }
  return {};
}

}  // namespace fhirgate::gateway::net
