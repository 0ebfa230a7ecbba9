// Terminology rules: CodeSystem and ValueSet resources themselves (validator_terminology.cpp), and the
// Coding checks of the base walk against the code systems a validator holds.
#include <doctest/doctest.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "fhir/validator.hpp"
#include "tests/support/paths.hpp"
#include "tests/support/r4.hpp"

namespace fhirgate::fhir {
namespace {

std::shared_ptr<const Terminology> shared_terminology() {
  return testing::r4_terminology();
}

Node parse(std::string_view json) {
  auto node = parse_json(json);
  REQUIRE(node.ok());
  return std::move(*node);
}

// "severity expression" of each error and warning (dom-6, the narrative warning, left out), joined by
// "; ", after loading `supporting` into a fresh validator.
std::string check(std::string_view json, const std::vector<std::string_view>& supporting = {}) {
  Validator validator(testing::r4_model(), shared_terminology());
  for (const std::string_view s : supporting) REQUIRE(validator.add_resource(parse(s)).ok());
  const ValidationResult result = validator.validate(parse(json));
  std::string out;
  for (const Issue& issue : result.issues) {
    if (issue.severity == "information" || issue.diagnostics.starts_with("dom-6:")) continue;
    if (!out.empty()) out += "; ";
    out += issue.severity + " " + issue.expression;
  }
  return out;
}

bool mentions(std::string_view json, std::string_view text,
              const std::vector<std::string_view>& supporting = {}) {
  Validator validator(testing::r4_model(), shared_terminology());
  for (const std::string_view s : supporting) REQUIRE(validator.add_resource(parse(s)).ok());
  for (const Issue& issue : validator.validate(parse(json)).issues) {
    if (issue.diagnostics.find(text) != std::string::npos) return true;
  }
  return false;
}

constexpr std::string_view kBase = R"({"resourceType": "CodeSystem", "url": "http://example.org/cs/base",
  "status": "active", "content": "complete", "caseSensitive": true,
  "property": [{"code": "ref", "type": "Coding"}],
  "concept": [{"code": "a", "display": "A"}, {"code": "b", "display": "B"}]})";

TEST_CASE("Terminology rules: CodeSystem property definitions keep the standard URIs' codes and types") {
  CHECK(check(R"({"resourceType": "CodeSystem", "url": "http://example.org/cs/p", "status": "active",
    "content": "complete", "caseSensitive": true,
    "property": [
      {"uri": "http://hl7.org/fhir/concept-properties#notSelectable", "code": "notSelectable", "type": "dateTime"},
      {"code": "notSelectable", "type": "boolean"},
      {"uri": "http://hl7.org/fhir/concept-properties#notSelectable", "code": "x", "type": "boolean"},
      {"uri": "http://hl7.org/fhir/concept-properties#deprecationDate", "code": "inactive", "type": "code"}]})") ==
        "error CodeSystem.property[0]; error CodeSystem.property[1]; warning CodeSystem.property[1]; "
        "error CodeSystem.property[2]; error CodeSystem.property[3]; error CodeSystem.property[3]");
}

TEST_CASE("Terminology rules: concept properties are declared and have the declared type") {
  CHECK(check(R"({"resourceType": "CodeSystem", "url": "http://example.org/cs/c", "status": "active",
    "content": "complete", "caseSensitive": true,
    "property": [{"code": "weight", "type": "decimal"}],
    "concept": [{"code": "a", "property": [{"code": "undeclared", "valueBoolean": true},
                                           {"code": "weight", "valueInteger": 2},
                                           {"code": "weight", "valueDecimal": 2.5}]}]})") ==
        "warning CodeSystem.concept[0].property[0]; error CodeSystem.concept[0].property[1]");
}

TEST_CASE("Terminology rules: a complete CodeSystem's count is its number of concepts") {
  const std::string_view counted = R"({"resourceType": "CodeSystem", "url": "http://example.org/cs/n",
    "status": "active", "content": "complete", "caseSensitive": true, "count": 3,
    "concept": [{"code": "a", "concept": [{"code": "a1"}]}, {"code": "b"}]})";
  CHECK(check(counted).empty());
  CHECK(check(R"({"resourceType": "CodeSystem", "url": "http://example.org/cs/n", "status": "active",
    "content": "complete", "caseSensitive": true, "count": 10, "concept": [{"code": "a"}]})") ==
        "error CodeSystem.count");
}

TEST_CASE("Terminology rules: a supplement has content 'supplement' and only codes of its base") {
  const std::string_view supplement = R"({"resourceType": "CodeSystem", "url": "http://example.org/cs/sup",
    "status": "active", "content": "complete", "supplements": "http://example.org/cs/base",
    "concept": [{"code": "a", "display": "A+"}, {"code": "z", "display": "Z"}]})";
  CHECK(check(supplement, {kBase}) == "error CodeSystem.content; error CodeSystem.concept[1]");
  // A base no local copy holds: nothing is guessed, a warning says it could not be checked.
  CHECK(check(R"({"resourceType": "CodeSystem", "url": "http://example.org/cs/sup2", "status": "active",
    "content": "supplement", "supplements": "http://example.org/cs/elsewhere",
    "concept": [{"code": "a", "display": "A+"}]})") == "warning CodeSystem.supplements");
  // LOINC codes have a syntax: 'test' cannot be one.
  CHECK(check(R"({"resourceType": "CodeSystem", "url": "http://example.org/cs/sup3", "status": "active",
    "content": "supplement", "supplements": "http://loinc.org",
    "concept": [{"code": "test"}, {"code": "8310-5"}]})") ==
        "error CodeSystem.concept[0]; warning CodeSystem.supplements");
}

TEST_CASE("Terminology rules: Coding.system is an absolute code system URL, not a value set or supplement") {
  const std::string_view supplement = R"({"resourceType": "CodeSystem", "url": "http://example.org/cs/sup",
    "status": "active", "content": "supplement", "supplements": "http://example.org/cs/base"})";
  auto observation = [](std::string_view system, std::string_view code) {
    return R"({"resourceType": "Observation", "status": "final", "code": {"coding": [{"system": ")" +
           std::string(system) + R"(", "code": ")" + std::string(code) + R"("}]}})";
  };
  CHECK(check(observation("http://example.org/cs/sup", "a"), {kBase, supplement}) ==
        "error Observation.code.coding[0].system");
  CHECK(check(observation("Location1", "a")) == "error Observation.code.coding[0].system");
  CHECK(check(observation("HTTPS://EXAMPLE.ORG/cs", "a")) == "warning Observation.code.coding[0].system");
  CHECK(check(observation("http://hl7.org/fhir/ValueSet/observation-status", "final")) ==
        "error Observation.code.coding[0].system");
  CHECK(check(observation("http://example.org/cs/base", "a"), {kBase}).empty());
  CHECK(check(observation("http://example.org/cs/base", "q"), {kBase}) ==
        "error Observation.code.coding[0].code");
  // SNOMED CT: a malformed identifier is not a code; a well formed one needs a terminology server.
  CHECK(check(observation("http://snomed.info/sct", "276885007x")) ==
        "error Observation.code.coding[0].code");
  CHECK(check(observation("http://snomed.info/sct", "276885008")) == "error Observation.code.coding[0].code");
  CHECK(check(observation("http://snomed.info/sct", "276885007")) ==
        "warning Observation.code.coding[0].system");
  CHECK(mentions(observation("http://snomed.info/sct", "276885007"), "needs a terminology server"));
  CHECK(check(observation("http://loinc.org", "8310-4")) == "error Observation.code.coding[0].code");
}

TEST_CASE("Terminology rules: a required code given only by extensions is missing") {
  CHECK(check(R"({"resourceType": "AllergyIntolerance", "patient": {"reference": "Patient/p"},
    "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical",
                                   "code": "active"}]},
    "_category": [{"extension": [{"url": "http://hl7.org/fhir/StructureDefinition/data-absent-reason",
                                  "valueCode": "unknown"}]}]})") == "error AllergyIntolerance.category[0]");
}

TEST_CASE("Terminology rules: ValueSet canonicals are absolute") {
  CHECK(check(R"({"resourceType": "ValueSet", "url": "ValueSet/relative", "status": "active",
    "contained": [{"resourceType": "CodeSystem", "id": "c1", "url": "c1", "status": "active",
                   "content": "complete", "caseSensitive": true, "concept": [{"code": "x"}]}],
    "compose": {"include": [{"system": "#c1"}, {"valueSet": ["ValueSet/other"]}]}})") ==
        "error ValueSet.contained[0].url; error ValueSet.url; error ValueSet.compose.include[0]; "
        "error ValueSet.compose.include[1].valueSet[0]");
  CHECK(check(R"({"resourceType": "ValueSet", "url": "urn:uuid:6a2ee390-978e-42c6-8f88-c17dff3bd8a3",
    "status": "active", "compose": {"include": [{"system": "http://example.org/cs/base"}]}})")
            .empty());
}

TEST_CASE("Terminology rules: ValueSet filters name properties of the code system, with valid values") {
  const std::string_view filtered = R"({"resourceType": "CodeSystem", "url": "http://example.org/cs/f",
    "status": "active", "content": "complete", "caseSensitive": true,
    "property": [{"code": "ref", "type": "Coding"}], "concept": [{"code": "x"}]})";
  auto value_set = [](std::string_view property, std::string_view value) {
    return R"({"resourceType": "ValueSet", "url": "http://example.org/vs/f", "status": "active",
      "compose": {"include": [{"system": "http://example.org/cs/f", "filter": [{"property": ")" +
           std::string(property) + R"(", "op": "=", "value": ")" + std::string(value) + R"("}]}]}})";
  };
  CHECK(check(value_set("ref", "http://example.org/cs/base#a"), {kBase, filtered}).empty());
  CHECK(check(value_set("ref", "http://example.org/cs/base#zz"), {kBase, filtered}) ==
        "error ValueSet.compose.include[0].filter[0]");
  CHECK(check(value_set("nothing", "1"), {kBase, filtered}) ==
        "warning ValueSet.compose.include[0].filter[0]");
}

TEST_CASE("Terminology rules: SNOMED CT constraint filters are ECL; expressions are FHIRPath") {
  auto ecl = [](std::string_view constraint) {
    return R"({"resourceType": "ValueSet", "url": "http://example.org/vs/e", "status": "active",
      "compose": {"include": [{"system": "http://snomed.info/sct", "filter": [{"property": "constraint",
      "op": "=", "value": ")" +
           std::string(constraint) + R"("}]}]}})";
  };
  CHECK(check(ecl("234234 << 234234")) == "error ValueSet.compose.include[0].filter[0]");
  CHECK(check(ecl("<< 404684003 AND")) == "error ValueSet.compose.include[0].filter[0]");
  CHECK(check(ecl("<< 404684003 |Clinical finding|")).empty());
  CHECK(check(ecl("< 19829001 : 116676008 = << 79654002")).empty());
  CHECK(check(ecl("< 404684003 : { 363698007 = << 39057004, 116676008 = << 415582006 }")).empty());
  CHECK(check(ecl("(<< 19829001 OR << 301867009) MINUS ^ 700043003")).empty());
  CHECK(check(ecl("< 404684003 {{ term = 'heart' }}")).empty());
  // Too deep to decide here: left open, and no unbounded recursion.
  CHECK(check(ecl(std::string(20000, '(') + "404684003" + std::string(20000, ')'))).empty());
  CHECK(check(R"({"resourceType": "ValueSet", "url": "http://example.org/vs/p", "status": "active",
    "compose": {"include": [{"system": "http://snomed.info/sct", "filter": [{"property": "inactive", "op": "=",
    "_value": {"extension": [{"url": "http://hl7.org/fhir/StructureDefinition/cqf-expression",
    "valueExpression": {"language": "text/fhirpath", "expression": "$ and %p"}}]}}]}]}})") ==
        "error ValueSet.compose.include[0].filter[0].value.extension[0].value.ofType(Expression)");
}

TEST_CASE("Terminology rules: value sets filter the code systems a run brings by property and hierarchy") {
  const std::shared_ptr<Terminology> terminology = shared_terminology()->copy();
  REQUIRE(
      terminology
          ->add(parse(R"({"resourceType": "CodeSystem", "url": "http://example.org/cs/h", "status": "active",
    "content": "complete", "caseSensitive": true,
    "property": [{"code": "colour", "type": "code"}, {"code": "ref", "type": "Coding"}],
    "concept": [
      {"code": "root", "concept": [
        {"code": "mid", "property": [{"code": "colour", "valueCode": "red"}],
         "concept": [{"code": "leaf1", "property": [{"code": "colour", "valueCode": "blue"}]},
                     {"code": "leaf2", "property": [{"code": "ref", "valueCoding":
                        {"system": "http://example.org/cs/base", "code": "a"}}]}]}]},
      {"code": "other", "property": [{"code": "colour", "valueCode": "red"}]}]})"))
          .ok());
  auto value_set = [&](std::string_view url, std::string_view property, std::string_view op,
                       std::string_view value) {
    REQUIRE(terminology
                ->add(parse(
                    R"({"resourceType": "ValueSet", "url": ")" + std::string(url) +
                    R"(", "status": "active", "compose": {"include": [{"system": "http://example.org/cs/h",
      "filter": [{"property": ")" +
                    std::string(property) + R"(", "op": ")" + std::string(op) + R"(", "value": ")" +
                    std::string(value) + R"("}]}]}})"))
                .ok());
  };
  auto members = [&](std::string_view url) {
    std::string out;
    for (const char* code : {"root", "mid", "leaf1", "leaf2", "other"}) {
      const Terminology::Answer answer = terminology->contains(url, "http://example.org/cs/h", code);
      REQUIRE(answer != Terminology::Answer::unknown);
      if (answer == Terminology::Answer::member) out += std::string(out.empty() ? "" : " ") + code;
    }
    return out;
  };
  value_set("http://example.org/vs/red", "colour", "=", "red");
  CHECK(members("http://example.org/vs/red") == "mid other");
  value_set("http://example.org/vs/colours", "colour", "in", "red, blue");
  CHECK(members("http://example.org/vs/colours") == "mid leaf1 other");
  value_set("http://example.org/vs/coloured", "colour", "exists", "true");
  CHECK(members("http://example.org/vs/coloured") == "mid leaf1 other");
  value_set("http://example.org/vs/ref", "ref", "=", "http://example.org/cs/base#a");
  CHECK(members("http://example.org/vs/ref") == "leaf2");
  value_set("http://example.org/vs/children", "concept", "child-of", "mid");
  CHECK(members("http://example.org/vs/children") == "leaf1 leaf2");
  value_set("http://example.org/vs/leaves", "concept", "descendent-leaf", "root");
  CHECK(members("http://example.org/vs/leaves") == "leaf1 leaf2");
  value_set("http://example.org/vs/up", "concept", "generalizes", "leaf1");
  CHECK(members("http://example.org/vs/up") == "root mid leaf1");
  value_set("http://example.org/vs/some", "code", "in", "root,other");
  CHECK(members("http://example.org/vs/some") == "root other");
  value_set("http://example.org/vs/regex", "code", "regex", "leaf[0-9]");
  CHECK(members("http://example.org/vs/regex") == "leaf1 leaf2");
  value_set("http://example.org/vs/parent", "parent", "=", "mid");
  CHECK(members("http://example.org/vs/parent") == "leaf1 leaf2");
  // An operator the table cannot answer leaves the system open.
  value_set("http://example.org/vs/open", "colour", "is-a", "red");
  CHECK(terminology->contains("http://example.org/vs/open", "http://example.org/cs/h", "mid") ==
        Terminology::Answer::unknown);
}

}  // namespace
}  // namespace fhirgate::fhir
