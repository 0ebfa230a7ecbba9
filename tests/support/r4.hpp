#pragma once
// The R4 model and terminology from profiles/, each loaded once per test binary (loading the model parses
// ~40 MB of definitions).
#include <memory>

#include "fhir/model.hpp"
#include "fhir/terminology.hpp"

namespace fhirgate::testing {

std::shared_ptr<const fhir::Model> r4_model();
std::shared_ptr<const fhir::Terminology> r4_terminology();

}  // namespace fhirgate::testing
