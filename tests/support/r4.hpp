#pragma once
// The R4 model from profiles/, loaded once per test binary (loading it parses ~40 MB of definitions).
#include <memory>

#include "fhir/model.hpp"

namespace fhirgate::testing {

std::shared_ptr<const fhir::Model> r4_model();

}  // namespace fhirgate::testing
