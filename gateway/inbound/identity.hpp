#pragma once
// Finding the held resource a partner's record is about, by its business identifiers: the same search
// for HL7 v2 ADT messages and CSV/XML feed rows, so a patient sent both ways is one Patient.
#include <string>
#include <string_view>
#include <vector>

#include "fhir/json.hpp"
#include "fhir/search_params.hpp"
#include "fhir/search_query.hpp"
#include "gateway/store/store.hpp"

namespace fhirgate::gateway {

// One `identifier=system|value` search per Identifier of `type` that has a value; the NHS number first,
// then the others in their order.
std::vector<fhir::SearchQuery> identity_queries(const fhir::SearchParamRegistry& registry,
                                                std::string_view type,
                                                const std::vector<fhir::Node>& identifiers);

// The ids of the held resources the first matching query names (empty: none; two: ambiguous).
std::vector<std::string> find_by_identity(store::WriteTxn& txn,
                                          const std::vector<fhir::SearchQuery>& queries);

}  // namespace fhirgate::gateway
