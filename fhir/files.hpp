#pragma once
#include <string>

#include "fhir/json.hpp"
#include "fhir/result.hpp"

namespace fhirgate::fhir {

// Reads a whole file; a name ending in `.gz` is gunzipped. Errors: not_found when it cannot be opened,
// invalid_input when the gzip stream is corrupt.
Result<std::string> read_file(const std::string& path);

// Reads and parses a JSON file (gunzipped when it ends in .gz). Errors: those of read_file, and
// parse errors with the path added to the internal message.
Result<Node> read_json_file(const std::string& path);

}  // namespace fhirgate::fhir
