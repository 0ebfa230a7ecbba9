#pragma once
// What other rule areas need of the extension definitions (fhir/validator_extensions.cpp).
#include <optional>
#include <string_view>

#include "fhir/validator_rules.hpp"

namespace fhirgate::fhir {

// Whether the extension defined at `url` is a modifier extension, from the supporting definitions or
// else the R4 core ones; nullopt when its definition is not known.
std::optional<bool> extension_is_modifier(const RuleContext& context, std::string_view url);

}  // namespace fhirgate::fhir
