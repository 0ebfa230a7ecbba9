#pragma once
// Lexical rules of the R4 primitive types, hand-written from the regexes of their StructureDefinitions
// (the `regex` extension on each `value` element) because a regex engine is far too slow for the write
// path. tests/fhir/validator_test.cpp checks these against the definitions' regexes on sample values.
#include <optional>
#include <string_view>

namespace fhirgate::fhir {

// Is `text` a lexically valid value of the primitive `type` ("date", "code", "integer", ...)? nullopt
// when `type` is not one of the R4 primitive types known here. Dates with impossible days (Feb 30)
// are invalid.
std::optional<bool> valid_primitive(std::string_view type, std::string_view text);

}  // namespace fhirgate::fhir
