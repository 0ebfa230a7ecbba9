#pragma once
// The per-request state of the REST API, shared by the files that implement Api (api.cpp, audit_api.cpp,
// bundle_api.cpp).
// Internal to gateway/rest.
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "fhir/formats.hpp"
#include "fhir/search_query.hpp"
#include "gateway/audit/audit_event.hpp"
#include "gateway/config/config.hpp"
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
  // The message journal (docs/operators.md): the request's correlation id (X-Correlation-Id), when it
  // started, and how its journal entry names it. Handlers that journal in their own way (HL7 v2 and feeds
  // over $ingest) clear `journaled`.
  std::string correlation_id;
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
  bool journaled = true;
  std::string journal_type;    // default: "<interaction> <path>", e.g. create Patient
  std::string journal_format;  // default: fhir-rest
  // Why the data was refused though the exchange succeeded (a message answered fatal-error); "" if not.
  std::string journal_rejected;
};

// Milliseconds since `since`, for journal stages.
inline double elapsed_ms(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - since).count();
}

inline std::int64_t now_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

inline std::string etag(std::int64_t version) {
  return "W/\"" + std::to_string(version) + "\"";
}

// The version number in an ETag or If-Match value: W/"3", "3" or 3. nullopt when malformed.
inline std::optional<std::int64_t> parse_etag(std::string_view v) {
  if (v.substr(0, 2) == "W/") v.remove_prefix(2);
  if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
  if (v.empty() || v.size() > 18) return std::nullopt;
  std::int64_t n = 0;
  for (char c : v) {
    if (c < '0' || c > '9') return std::nullopt;
    n = n * 10 + (c - '0');
  }
  return n;
}

inline const std::string* param_value(const fhir::QueryParams& params, std::string_view name) {
  for (const auto& [k, v] : params) {
    if (k == name) return &v;
  }
  return nullptr;
}

}  // namespace fhirgate::gateway::rest
