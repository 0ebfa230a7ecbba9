#pragma once
// The per-request state of the REST API, shared by the files that implement Api (api.cpp, audit_api.cpp).
// Internal to gateway/rest.
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "fhir/formats.hpp"
#include "fhir/search_query.hpp"
#include "gateway/audit_event.hpp"
#include "gateway/config.hpp"
#include "gateway/rest/api.hpp"
#include "gateway/rest/negotiation.hpp"

namespace fhirgate::gateway::rest {

struct Api::Exchange {
  explicit Exchange(const HttpRequest& r) : request(r) {}
  const HttpRequest& request;
  std::string path;
  fhir::QueryParams query;
  fhir::Format format = fhir::Format::json;
  bool pretty = false;
  Prefer prefer;
  std::string base_url;
  std::int64_t now = 0;
  // With security on: who is asking and for which purpose, and the AuditEvent being filled in (null for
  // the open endpoints and with security off). Plans may fill it in too (the entity a create made).
  const PartnerConfig* who = nullptr;
  std::string purpose;
  std::shared_ptr<AuditInput> audit;
  std::vector<std::string> seen_patients;  // searches: the patients whose records were returned
};

inline std::int64_t now_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

inline std::string etag(std::int64_t version) {
  return "W/\"" + std::to_string(version) + "\"";
}

inline const std::string* param_value(const fhir::QueryParams& params, std::string_view name) {
  for (const auto& [k, v] : params) {
    if (k == name) return &v;
  }
  return nullptr;
}

}  // namespace fhirgate::gateway::rest
