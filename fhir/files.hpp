#pragma once
#include <string>

#include "fhir/result.hpp"

namespace fhirgate::fhir {

// Reads a whole file; a name ending in `.gz` is gunzipped. Errors: not_found when it cannot be opened,
// invalid_input when the gzip stream is corrupt.
Result<std::string> read_file(const std::string& path);

}  // namespace fhirgate::fhir
