#pragma once
// Shared by the harnesses: the repository's profiles (loaded once per process) and a check that aborts,
// so libFuzzer keeps the input that broke an invariant.
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "fhir/files.hpp"
#include "fhir/json.hpp"
#include "fhir/model.hpp"
#include "fhir/search_params.hpp"

namespace fhirgate::fuzz {

inline std::string source_path(const std::string& relative) {
  return std::string(FHIRGATE_SOURCE_DIR) + "/" + relative;
}

[[noreturn]] inline void fail(const char* what) {
  std::fprintf(stderr, "fuzz invariant broken: %s\n", what);
  std::abort();
}

#define FUZZ_CHECK(cond)                        \
  do {                                          \
    if (!(cond)) ::fhirgate::fuzz::fail(#cond); \
  } while (false)

inline const fhir::Model& model() {
  static const std::shared_ptr<const fhir::Model> loaded = [] {
    auto m = fhir::Model::load_from(source_path("profiles"));
    if (!m) fail("cannot load the R4 model from profiles/");
    return std::move(*m);
  }();
  return *loaded;
}

inline const fhir::SearchParamRegistry& registry() {
  static const fhir::SearchParamRegistry loaded = [] {
    auto bundle = fhir::read_json_file(source_path("profiles/r4/search-parameters.json.gz"));
    if (!bundle) fail("cannot read profiles/r4/search-parameters.json.gz");
    auto r = fhir::SearchParamRegistry::load(*bundle, {"Patient", "Consent", "AuditEvent"});
    if (!r) fail("cannot load the search parameters");
    return std::move(*r);
  }();
  return loaded;
}

}  // namespace fhirgate::fuzz
