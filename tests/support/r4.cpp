#include "tests/support/r4.hpp"

#include <stdexcept>

#include "tests/support/paths.hpp"

namespace fhirgate::testing {

std::shared_ptr<const fhir::Model> r4_model() {
  static const std::shared_ptr<const fhir::Model> model = [] {
    auto loaded = fhir::Model::load_from(source_path("profiles"));
    if (!loaded) throw std::runtime_error("profiles: " + loaded.error().issues.front().diagnostics);
    return std::move(loaded).value();
  }();
  return model;
}

std::shared_ptr<const fhir::Terminology> r4_terminology() {
  static const std::shared_ptr<const fhir::Terminology> terminology = [] {
    auto loaded = fhir::Terminology::load_from(source_path("profiles"));
    if (!loaded) throw std::runtime_error("profiles: " + loaded.error().issues.front().diagnostics);
    return std::shared_ptr<const fhir::Terminology>(std::move(loaded).value());
  }();
  return terminology;
}

}  // namespace fhirgate::testing
