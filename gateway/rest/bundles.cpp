#include "gateway/rest/bundles.hpp"

#include "fhir/datetime.hpp"
#include "fhir/json.hpp"

namespace fhirgate::gateway::rest {
namespace {

using fhir::append_json_string;

void open_bundle(std::string& out, const std::string& id, std::int64_t now_ms, const char* type,
                 std::optional<std::int64_t> total, const std::vector<BundleLink>& links) {
  out += R"({"resourceType":"Bundle","id":)";
  append_json_string(out, id);
  out += R"(,"meta":{"lastUpdated":)";
  append_json_string(out, fhir::format_instant(now_ms));
  out += R"(},"type":")";
  out += type;
  out += '"';
  if (total) {
    out += R"(,"total":)";
    out += std::to_string(*total);
  }
  if (!links.empty()) {
    out += R"(,"link":[)";
    for (std::size_t i = 0; i < links.size(); ++i) {
      if (i) out += ',';
      out += R"({"relation":)";
      append_json_string(out, links[i].relation);
      out += R"(,"url":)";
      append_json_string(out, links[i].url);
      out += '}';
    }
    out += ']';
  }
}

}  // namespace

std::string searchset_bundle(const std::string& bundle_id, std::int64_t now_ms,
                             std::optional<std::int64_t> total, const std::vector<BundleLink>& links,
                             const std::vector<SearchEntry>& entries) {
  std::string out;
  std::size_t size = 256;
  for (const auto& e : entries) size += e.resource_json.size() + e.full_url.size() + 64;
  out.reserve(size);
  open_bundle(out, bundle_id, now_ms, "searchset", total, links);
  if (!entries.empty()) {
    out += R"(,"entry":[)";
    for (std::size_t i = 0; i < entries.size(); ++i) {
      if (i) out += ',';
      out += R"({"fullUrl":)";
      append_json_string(out, entries[i].full_url);
      out += R"(,"resource":)";
      out += entries[i].resource_json;
      out += R"(,"search":{"mode":"match"}})";
    }
    out += ']';
  }
  out += '}';
  return out;
}

std::string history_bundle(const std::string& bundle_id, std::int64_t now_ms,
                           std::optional<std::int64_t> total, const std::vector<BundleLink>& links,
                           const std::string& base_url, const std::vector<store::VersionRecord>& versions) {
  std::string out;
  open_bundle(out, bundle_id, now_ms, "history", total, links);
  if (!versions.empty()) {
    out += R"(,"entry":[)";
    for (std::size_t i = 0; i < versions.size(); ++i) {
      const auto& v = versions[i];
      if (i) out += ',';
      out += R"({"fullUrl":)";
      append_json_string(out, base_url + "/" + v.type + "/" + v.id);
      if (!v.deleted) {
        out += R"(,"resource":)";
        out += v.body;
      }
      const bool created = v.method == "POST";
      out += R"(,"request":{"method":)";
      append_json_string(out, v.method);
      out += R"(,"url":)";
      append_json_string(out, created ? v.type : v.type + "/" + v.id);
      out += R"(},"response":{"status":)";
      append_json_string(out, v.deleted ? "204 No Content" : (v.version == 1 ? "201 Created" : "200 OK"));
      out += R"(,"etag":)";
      append_json_string(out, "W/\"" + std::to_string(v.version) + "\"");
      out += R"(,"lastModified":)";
      append_json_string(out, fhir::format_instant(v.last_updated_ms));
      out += "}}";
    }
    out += ']';
  }
  out += '}';
  return out;
}

}  // namespace fhirgate::gateway::rest
