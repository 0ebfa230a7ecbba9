#include "fhir/json_locate.hpp"

#include <doctest/doctest.h>

namespace fhirgate::fhir {
namespace {

Issue at(std::string expression) {
  Issue i;
  i.expression = std::move(expression);
  return i;
}

TEST_CASE("issues on a JSON document get the line and column of the element they name") {
  const std::string text =
      "{\n"
      "  \"resourceType\": \"Patient\",\n"
      "  \"name\": [\n"
      "    {\"family\": \"Ng\", \"given\": [\"A\", \"B\"]}\n"
      "  ],\n"
      "  \"gender\": \"boy\"\n"
      "}";
  std::vector<Issue> issues{at("Patient.gender"), at("Patient.name[0].given[1]"), at("Patient.name[0].family"),
                            at("Patient.birthDate"), at("Patient.name[0].suffix"), at("Observation.code")};
  locate_issues(text, issues);
  CHECK(issues[0].line == 6);
  CHECK(issues[0].column == 3);  // at "gender"
  CHECK(issues[1].line == 4);
  CHECK(issues[1].column == 37);  // at "B"
  CHECK(issues[2].line == 4);
  // Absent elements point at their nearest present ancestor: the resource, or name[0].
  CHECK(issues[3].line == 1);
  CHECK(issues[4].line == 4);
  CHECK(issues[5].line == 0);  // not this document's resource
}

TEST_CASE("positions already set and unparseable text are left alone") {
  std::vector<Issue> issues{at("Patient.gender")};
  issues[0].line = 9;
  locate_issues("{\"resourceType\":\"Patient\",\"gender\":1}", issues);
  CHECK(issues[0].line == 9);
  std::vector<Issue> broken{at("Patient.gender")};
  locate_issues("{\"resourceType\":", broken);
  CHECK(broken[0].line == 0);
}

}  // namespace
}  // namespace fhirgate::fhir
