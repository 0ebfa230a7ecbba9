#pragma once
#include <string>

#include "fhir/json.hpp"
#include "fhir/result.hpp"

namespace fhirgate::fhir {

// The OperationOutcome a client sees for an error: one issue per Error issue, with the issue type
// derived from the error code unless the issue names its own, the FHIRPath location in `expression`,
// and parse positions as the standard operationoutcome-issue-line/-col extensions.
Node operation_outcome(const Error& error);
// A single informational issue (e.g. for Prefer: return=OperationOutcome on success).
Node informational_outcome(const std::string& diagnostics);

}  // namespace fhirgate::fhir
