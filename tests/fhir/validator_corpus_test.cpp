// The validator against real data: every JSON example of the R4 specification
// (../shared/corpus/fhir-r4-spec-examples) validates with no errors. The official validator test cases
// are in validator_conformance_test.cpp.
#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "fhir/files.hpp"
#include "fhir/profiles.hpp"
#include "fhir/validator.hpp"
#include "fhir/xml.hpp"
#include "tests/support/paths.hpp"
#include "tests/support/r4.hpp"

namespace fhirgate::fhir {
namespace {

std::shared_ptr<const Model> corpus_model() {
  return testing::r4_model();
}

const Validator& corpus_validator() {
  static const Validator v(corpus_model(), testing::r4_terminology());
  return v;
}

TEST_CASE("Validator corpus: the R4 specification examples validate with no errors") {
  const std::string dir = fhirgate::testing::shared_path("corpus/fhir-r4-spec-examples");
  if (dir.empty()) return;
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() == ".json") files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  int clean = 0;
  for (const auto& file : files) {
    CAPTURE(file.filename().string());
    auto text = read_file(file.string());
    REQUIRE(text.ok());
    auto node = parse_json(*text);
    REQUIRE(node.ok());
    const ValidationResult result = corpus_validator().validate(*node);
    std::string errors;
    for (const Issue& issue : result.issues) {
      if (issue.severity != "error") continue;
      errors += issue.expression + ": " + issue.diagnostics + "\n";
    }
    CHECK_MESSAGE(errors.empty(), errors);
    if (errors.empty()) ++clean;
  }
  MESSAGE("spec examples with no errors: " << clean << "/" << files.size());
  CHECK(files.size() == 102);
}

}  // namespace
}  // namespace fhirgate::fhir
