#include "fhir/json_locate.hpp"

#include <doctest/doctest.h>

#include <string>
#include <vector>

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
  std::vector<Issue> issues{at("Patient.gender"),         at("Patient.name[0].given[1]"),
                            at("Patient.name[0].family"), at("Patient.birthDate"),
                            at("Patient.name[0].suffix"), at("Observation.code")};
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

TEST_CASE("fuzz: json_locate: strings are read in place, never pushed onto RapidJSON's null stack (UBSan)") {
  // Found by http_fuzz (POST /Patient/$validate): parsing with copies made RapidJSON 1.1.0 add an offset
  // to its not yet allocated stack on the first string. Escapes, numbers and keys still locate exactly.
  const std::string text =
      "{\"resourceType\":\"Patient\",\"n\\u0061me\":[{\"given\":[\"\\\"A\\u00e9\",\n"
      "1.50e3, \"B\"]}],\"gender\":\"M\\/F\"}";
  std::vector<Issue> issues{at("Patient.name[0].given[2]"), at("Patient.name[0].given[1]"),
                            at("Patient.gender")};
  locate_issues(text, issues);
  CHECK(issues[0].line == 2);
  CHECK(issues[0].column == 9);  // at "B"
  CHECK(issues[1].line == 2);
  CHECK(issues[1].column == 1);  // at 1.50e3
  CHECK(issues[2].line == 2);
  CHECK(issues[2].column == 16);  // at "gender"
}

TEST_CASE("fuzz: json_locate: deep nesting is located down to a bounded depth, never exhausting the stack") {
  const std::string deep = "{\"resourceType\":\"Patient\",\"contained\":" + std::string(100000, '[');
  std::vector<Issue> issues{at("Patient.contained[0][0]"), at("Patient.contained")};
  locate_issues(deep, issues);
  CHECK(issues[0].line == 1);
  CHECK(issues[0].column == 42);  // just inside the third bracket
  CHECK(issues[1].line == 1);
  CHECK(issues[1].column == 27);  // at "contained"
}

}  // namespace
}  // namespace fhirgate::fhir
