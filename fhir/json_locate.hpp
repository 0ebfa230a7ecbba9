#pragma once
// Line and column for FHIRPath-style locations (Patient.name[0].given[1]) in a JSON document, so issues
// found on the parsed tree can point into the text the client sent.
#include <string_view>
#include <vector>

#include "fhir/result.hpp"

namespace fhirgate::fhir {

// Sets line/column on every issue whose expression names a member or array item of `json_text` (an
// issue about an absent element gets its nearest present ancestor's position). Issues that already have
// a position, or whose expression does not start at the document's resourceType, are left alone.
// `root` names the document for those without a resourceType (configuration files: "mapping" makes
// "mapping.fields[2].path" locatable).
void locate_issues(std::string_view json_text, std::vector<Issue>& issues, std::string_view root = {});

}  // namespace fhirgate::fhir
