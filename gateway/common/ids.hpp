#pragma once
#include <string>

namespace fhirgate::gateway {

// A new resource id: a UUID version 7 (time-ordered, so new rows land at the end of SQLite's B-trees),
// lower-case with dashes: a valid FHIR id. Thread-safe.
std::string new_resource_id();

}  // namespace fhirgate::gateway
