// FHIR JSON: parse_json, the resource rules, and a write/parse round trip that must give the same tree;
// locate_issues on the same text, parseable or not.
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "fhir/json.hpp"
#include "fhir/json_locate.hpp"
#include "fuzz/common.hpp"

using namespace fhirgate;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  std::vector<Issue> issues(4);
  issues[0].expression = "Patient.name[0].given[1]";
  issues[1].expression = "Bundle.entry[1].resource.extension[0].valueString";
  issues[2].expression = "mapping.fields[2].path";
  issues[3].expression = "Patient";
  fhir::locate_issues(text, issues, "mapping");
  for (const Issue& issue : issues) FUZZ_CHECK(issue.line >= 0 && issue.column >= 0);
  fhir::JsonLimits limits;
  limits.max_depth = 64;
  Result<fhir::Node> node = fhir::parse_json(text, limits);
  if (!node) return 0;
  (void)fhir::check_resource_json(*node);
  for (const bool pretty : {false, true}) {
    const std::string written = fhir::write_json(*node, pretty);
    Result<fhir::Node> again = fhir::parse_json(written, limits);
    FUZZ_CHECK(again.ok());
    FUZZ_CHECK(*again == *node);
  }
  return 0;
}
