#pragma once
// Identity: which held record a partner's record is about, by its business identifiers. The partnership
// keeps at most one Patient per identifier (system|value; the NHS number first): every entry point asks
// the same questions, here, so a patient sent by REST, HL7 v2 and a feed is one Patient.
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "fhir/json.hpp"
#include "fhir/search_params.hpp"
#include "fhir/search_query.hpp"
#include "gateway/store/store.hpp"

namespace fhirgate::gateway::stages {

// One `identifier=system|value` search per Identifier of `type` that has a value; the NHS number first,
// then the others in their order.
std::vector<fhir::SearchQuery> identity_queries(const fhir::SearchParamRegistry& registry,
                                                std::string_view type,
                                                const std::vector<fhir::Node>& identifiers);

// The ids of the held resources the first matching query names (empty: none; two: ambiguous).
std::vector<std::string> find_by_identity(store::WriteTxn& txn,
                                          const std::vector<fhir::SearchQuery>& queries);

// One search for the resources of `type` holding any of these identifiers (system and value both given),
// or nullopt when there is none to look for: the one identity rule's question of a new version.
std::optional<fhir::SearchQuery> any_identifier_query(const fhir::SearchParamRegistry& registry,
                                                      std::string_view type,
                                                      const std::vector<fhir::Node>& identifiers);

// The identifiers of a resource (its `identifier` array), empty when none.
std::vector<fhir::Node> identifiers_of(const fhir::Node& resource);

}  // namespace fhirgate::gateway::stages
