#include "gateway/inbound/identity.hpp"

#include <optional>

#include "mappers/adt_patient.hpp"

namespace fhirgate::gateway {
namespace {

std::optional<fhir::SearchQuery> identifier_query(const fhir::SearchParamRegistry& registry,
                                                  std::string_view type, const fhir::Node& id) {
  const std::string system(id.string_at("system"));
  const std::string value(id.string_at("value"));
  if (value.empty()) return std::nullopt;
  const std::string token = system.empty() ? value : system + "|" + value;
  auto params = fhir::parse_query_string("identifier=" + fhir::url_encode(token));
  if (!params) return std::nullopt;
  auto query = fhir::parse_search(registry, std::string(type), *params, fhir::SearchOptions{true, 2, 2, 0});
  if (!query || query->clauses.empty()) return std::nullopt;
  return std::move(*query);
}

}  // namespace

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

}  // namespace fhirgate::gateway
