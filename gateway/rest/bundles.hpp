#pragma once
// Composes searchset and history Bundles around stored resource JSON without re-parsing it.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "gateway/store/store.hpp"

namespace fhirgate::gateway::rest {

struct BundleLink {
  std::string relation;  // self, next, previous
  std::string url;
};

struct SearchEntry {
  std::string full_url;
  std::string resource_json;  // raw JSON object text
};

std::string searchset_bundle(const std::string& bundle_id, std::int64_t now_ms,
                             std::optional<std::int64_t> total, const std::vector<BundleLink>& links,
                             const std::vector<SearchEntry>& entries);

// History entries carry request (method, url) and response (status, etag, lastModified); deletions have
// no resource.
std::string history_bundle(const std::string& bundle_id, std::int64_t now_ms,
                           std::optional<std::int64_t> total, const std::vector<BundleLink>& links,
                           const std::string& base_url, const std::vector<store::VersionRecord>& versions);

}  // namespace fhirgate::gateway::rest
