#include "gateway/stages/identity.hpp"

#include "mappers/adt_patient.hpp"

namespace fhirgate::gateway::stages {
namespace {

// A token search value with FHIR search's escapes (\ before , $ | and \).
std::string escaped(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (c == ',' || c == '$' || c == '|' || c == '\\') out += '\\';
    out += c;
  }
  return out;
}

std::optional<fhir::SearchQuery> identifier_search(const fhir::SearchParamRegistry& registry,
                                                   std::string_view type, const std::string& value) {
  auto params = fhir::parse_query_string("identifier=" + fhir::url_encode(value));
  if (!params) return std::nullopt;
  auto query = fhir::parse_search(registry, std::string(type), *params, fhir::SearchOptions{true, 2, 2, 0});
  if (!query || query->clauses.empty()) return std::nullopt;
  return std::move(*query);
}

std::optional<fhir::SearchQuery> identifier_query(const fhir::SearchParamRegistry& registry,
                                                  std::string_view type, const fhir::Node& id) {
  const std::string system(id.string_at("system"));
  const std::string value(id.string_at("value"));
  if (value.empty()) return std::nullopt;
  return identifier_search(registry, type,
                           system.empty() ? escaped(value) : escaped(system) + "|" + escaped(value));
}

}  // namespace

std::vector<fhir::Node> identifiers_of(const fhir::Node& resource) {
  const fhir::Node* list = resource.find("identifier");
  return list && list->is_array() ? list->items() : std::vector<fhir::Node>();
}

std::vector<fhir::SearchQuery> identity_queries(const fhir::SearchParamRegistry& registry,
                                                std::string_view type,
                                                const std::vector<fhir::Node>& identifiers) {
  std::vector<fhir::SearchQuery> nhs, others;
  for (const auto& id : identifiers) {
    auto q = identifier_query(registry, type, id);
    if (!q) continue;
    (id.string_at("system") == mappers::kNhsNumberSystem ? nhs : others).push_back(std::move(*q));
  }
  for (auto& q : others) nhs.push_back(std::move(q));
  return nhs;
}

std::vector<std::string> find_by_identity(store::WriteTxn& txn,
                                          const std::vector<fhir::SearchQuery>& queries) {
  for (const auto& q : queries) {
    auto found = txn.matching_ids(q, 2);
    if (!found.empty()) return found;
  }
  return {};
}

std::optional<fhir::SearchQuery> any_identifier_query(const fhir::SearchParamRegistry& registry,
                                                      std::string_view type,
                                                      const std::vector<fhir::Node>& identifiers) {
  std::string values;
  for (const auto& id : identifiers) {
    const auto system = id.string_at("system");
    const auto value = id.string_at("value");
    if (system.empty() || value.empty()) continue;
    if (!values.empty()) values += ',';
    values += escaped(system) + "|" + escaped(value);
  }
  if (values.empty()) return std::nullopt;
  return identifier_search(registry, type, values);
}

}  // namespace fhirgate::gateway::stages
