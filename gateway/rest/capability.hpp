#pragma once
#include <cstdint>
#include <string_view>

#include "fhir/json.hpp"
#include "fhir/search_params.hpp"
#include "gateway/rest/rest_job.hpp"

namespace fhirgate::gateway::rest {

// Resource types that are append-only (no update, no delete): the audit trail.
bool is_append_only(std::string_view type);

// The CapabilityStatement, generated from what the API does: the served types, their interactions and
// the search parameter table.
fhir::Node capability_statement(const RestOptions& options, const fhir::SearchParamRegistry& registry,
                                std::int64_t now_ms);

}  // namespace fhirgate::gateway::rest
