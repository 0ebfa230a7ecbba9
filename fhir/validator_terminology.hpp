#pragma once
// Helpers the terminology rules share with the other rule areas and the base walk.
#include <string_view>

#include "fhir/validator_rules.hpp"

namespace fhirgate::fhir {

// A URI with a scheme (`http:`, `urn:`, any RFC 3986 scheme) and no spaces: what a canonical
// URL, Coding.system and ValueSet.compose.include.system must be.
bool is_absolute_url(std::string_view url);
// The resource's `url` (a canonical resource's identity) is absolute; a contained one's too.
void check_canonical_url(RuleContext& context);

}  // namespace fhirgate::fhir
