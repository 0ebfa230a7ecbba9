// Measure rules (validator_measure.cpp): a Measure's libraries and CQL criteria, a MeasureReport
// against its Measure.
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

// "severity expression" of each issue (dom-6, the narrative warning, and the warnings about code systems
// only a terminology server holds left out), joined by "; ", after loading `supporting`.
std::string check(std::string_view json, const std::vector<std::string_view>& supporting = {}) {
  Validator validator(testing::r4_model(), shared_terminology());
  for (const std::string_view s : supporting) REQUIRE(validator.add_resource(parse(s)).ok());
  std::string out;
  for (const Issue& issue : validator.validate(parse(json)).issues) {
    if (issue.diagnostics.starts_with("dom-6:") || issue.code == "not-supported") continue;
    if (!out.empty()) out += "; ";
    out += issue.severity + " " + issue.expression;
  }
  return out;
}

constexpr std::string_view kPopulation =
    R"({"coding": [{"system": "http://terminology.hl7.org/CodeSystem/measure-population", "code": ")";

std::string population(std::string_view code) {
  return std::string(kPopulation) + std::string(code) + R"("}]})";
}

// A proportion measure with two groups (g1, g2); g1 has a stratifier by age.
std::string measure(std::string_view scoring = "proportion") {
  return R"({"resourceType": "Measure", "url": "http://example.org/Measure/m", "status": "active",
    "scoring": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/measure-scoring", "code": ")" +
         std::string(scoring) + R"("}]},
    "group": [
      {"code": {"coding": [{"system": "http://example.org/g", "code": "g1"}]},
       "population": [{"code": )" +
         population("initial-population") + R"(}, {"code": )" + population("numerator") + R"(},
                      {"code": )" +
         population("denominator") + R"(}],
       "stratifier": [{"code": {"text": "age"}}]},
      {"code": {"coding": [{"system": "http://example.org/g", "code": "g2"}]},
       "population": [{"code": )" +
         population("initial-population") + R"(}]}]})";
}

std::string report(std::string_view groups, std::string_view type = "summary") {
  return R"({"resourceType": "MeasureReport", "status": "complete", "type": ")" + std::string(type) +
         R"(", "measure": "http://example.org/Measure/m", "period": {"start": "2024-01-01", "end": "2024-12-31"},
    "group": )" +
         std::string(groups) + "}";
}

std::string group(std::string_view code, std::string_view populations, std::string_view rest = "") {
  return R"({"code": {"coding": [{"system": "http://example.org/g", "code": ")" + std::string(code) +
         R"("}]}, "population": )" + std::string(populations) + std::string(rest) + "}";
}

std::string counted(std::string_view code, int count) {
  return R"({"code": )" + population(code) + R"(, "count": )" + std::to_string(count) + "}";
}

TEST_CASE("Measure rules: a MeasureReport that matches its Measure has no issues") {
  const std::string g1 =
      group("g1",
            "[" + counted("initial-population", 10) + ", " + counted("numerator", 5) + ", " +
                counted("denominator", 10) + "]",
            R"(, "measureScore": {"value": 0.5}, "stratifier": [{"code": [{"text": "age"}]}])");
  const std::string g2 =
      group("g2", "[" + counted("initial-population", 3) + "]", R"(, "measureScore": {"value": 1})");
  CHECK(check(report("[" + g1 + ", " + g2 + "]"), {measure()}).empty());
}

TEST_CASE("Measure rules: groups, populations and stratifiers must match the Measure's") {
  const std::string g1 =
      group("g1", "[" + counted("initial-population", 10) + ", " + counted("numerator", 5) + "]",
            R"(, "measureScore": {"value": 0.5}, "stratifier": [{"code": [{"text": "sex"}]}])");
  const std::string unknown = group("g9", "[" + counted("initial-population", 3) + "]");
  CHECK(check(report("[" + g1 + ", " + unknown + "]"), {measure()}) ==
        "error MeasureReport.group[0]; error MeasureReport.group[0].stratifier[0]; "
        "error MeasureReport.group[0]; error MeasureReport.group[1]; error MeasureReport");
}

TEST_CASE("Measure rules: only subject-list reports list subjects, and other reports give counts") {
  const std::string g1 =
      group("g1",
            R"([{"code": )" + population("initial-population") +
                R"(, "subjectResults": {"reference": "List/l"}}, )" + counted("numerator", 5) + ", " +
                counted("denominator", 10) + "]",
            R"(, "measureScore": {"value": 0.5}, "stratifier": [{"code": [{"text": "age"}]}])");
  const std::string g2 =
      group("g2", "[" + counted("initial-population", 3) + "]", R"(, "measureScore": {"value": 1})");
  CHECK(check(report("[" + g1 + ", " + g2 + "]"), {measure()}) ==
        "error MeasureReport.group[0].population[0]; warning MeasureReport.group[0].population[0]");
}

TEST_CASE("Measure rules: the measureScore follows the Measure's scoring") {
  const std::string pops = "[" + counted("initial-population", 10) + ", " + counted("numerator", 5) + ", " +
                           counted("denominator", 10) + R"(], "stratifier": [{"code": [{"text": "age"}]}])";
  const std::string g2 =
      group("g2", "[" + counted("initial-population", 3) + "]", R"(, "measureScore": {"value": 1})");
  CHECK(check(report("[" + group("g1", pops, R"(, "measureScore": {"value": 1.5})") + ", " + g2 + "]"),
              {measure()}) == "error MeasureReport.group[0].measureScore.value");
  CHECK(check(report("[" + group("g1", pops) + ", " + g2 + "]"), {measure()}) ==
        "error MeasureReport.group[0]");
  CHECK(check(report("[" + group("g1", pops, R"(, "measureScore": {"value": 1})") + ", " + g2 + "]"),
              {measure("cohort")}) ==
        "error MeasureReport.group[0].measureScore; error MeasureReport.group[1].measureScore");
}

TEST_CASE("Measure rules: a report's improvementNotation is its Measure's") {
  std::string m = measure();
  m.insert(m.size() - 1, R"(, "improvementNotation": {"coding": [{"system":
    "http://terminology.hl7.org/CodeSystem/measure-improvement-notation", "code": "increase"}]})");
  const std::string pops = "[" + counted("initial-population", 10) + ", " + counted("numerator", 5) + ", " +
                           counted("denominator", 10) + R"(], "stratifier": [{"code": [{"text": "age"}]}])";
  const std::string g2 =
      group("g2", "[" + counted("initial-population", 3) + "]", R"(, "measureScore": {"value": 1})");
  std::string r = report("[" + group("g1", pops, R"(, "measureScore": {"value": 0.5})") + ", " + g2 + "]");
  r.insert(r.size() - 1, R"(, "improvementNotation": {"coding": [{"system":
    "http://terminology.hl7.org/CodeSystem/measure-improvement-notation", "code": "decrease"}]})");
  CHECK(check(r, {m}) == "warning MeasureReport.improvementNotation");
}

TEST_CASE("Measure rules: a MeasureReport whose Measure is not available is not checked against it") {
  CHECK(check(report("[" + group("g9", "[" + counted("initial-population", 1) + "]") + "]")) ==
        "warning MeasureReport.measure");
}

TEST_CASE("Measure rules: a Measure's libraries are absolute and its CQL criteria need one") {
  const std::string_view m =
      R"({"resourceType": "Measure", "url": "http://example.org/Measure/c", "status": "active",
    "library": ["Library/lib"],
    "group": [{"population": [{"code": {"text": "ip"}, "criteria": {"language": "text/cql", "expression": "IP"}}],
               "stratifier": [{"code": {"text": "age"}, "criteria": {"language": "text/cql", "expression": "Lib.Age"}}]}]})";
  CHECK(check(m) ==
        "error Measure.library[0]; information Measure; error Measure.group[0].stratifier[0].criteria");
  const std::string_view library =
      R"({"resourceType": "Library", "url": "http://example.org/Library/lib", "name": "Lib",
    "status": "active", "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/library-type",
    "code": "logic-library"}]}})";
  const std::string_view resolved =
      R"({"resourceType": "Measure", "url": "http://example.org/Measure/c", "status": "active",
    "library": ["http://example.org/Library/lib"],
    "group": [{"stratifier": [{"code": {"text": "a"}, "criteria": {"language": "text/cql", "expression": "Lib.Age"}},
                              {"code": {"text": "b"}, "criteria": {"language": "text/cql", "expression": "Other.Age"}}]}]})";
  CHECK(check(resolved, {library}) == "error Measure.group[0].stratifier[1].criteria");
}

}  // namespace
}  // namespace fhirgate::fhir
