#include "fhir/terminology.hpp"

#include <doctest/doctest.h>

#include <chrono>
#include <fstream>
#include <memory>
#include <set>
#include <string>

#include "fhir/files.hpp"
#include "fhir/json.hpp"
#include "tests/support/paths.hpp"
#include "tests/support/sanitizers.hpp"

namespace fhirgate::fhir {
namespace {

using Answer = Terminology::Answer;

constexpr const char* kV3ActCode = "http://terminology.hl7.org/CodeSystem/v3-ActCode";

long resident_kib() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return 0;
}

const Terminology& shipped() {
  static const std::shared_ptr<Terminology> terminology = [] {
    auto loaded = Terminology::load_from(testing::source_path("profiles"));
    REQUIRE(loaded.ok());
    return std::move(loaded).value();
  }();
  return *terminology;
}

Node json(const char* text) {
  auto parsed = parse_json(text);
  REQUIRE(parsed.ok());
  return std::move(parsed).value();
}

TEST_CASE("loading the shipped terminology is small (load time reported, not asserted)") {
  const long before = resident_kib();
  const auto start = std::chrono::steady_clock::now();
  auto loaded = Terminology::load_from(testing::source_path("profiles"));
  const auto elapsed = std::chrono::steady_clock::now() - start;
  REQUIRE(loaded.ok());
  const long growth_kib = resident_kib() - before;
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count();
  MESSAGE("terminology load: " << ms << " ms, RSS growth " << growth_kib / 1024 << " MiB");
  if (!testing::sanitizer().empty()) {
    // TSan's shadow memory and ASan's quarantine of freed blocks count as the process's RSS.
    MESSAGE("RSS bound not checked under a sanitizer: its shadow memory or quarantine counts as RSS");
  } else {
    CHECK(growth_kib < 64 * 1024);
  }
  CHECK((*loaded)->knows_value_set("http://hl7.org/fhir/ValueSet/administrative-gender"));
}

TEST_CASE("a missing terminology file is not_found") {
  auto loaded = Terminology::load_from(testing::temp_dir());
  REQUIRE_FALSE(loaded.ok());
  CHECK(loaded.error().code == ErrorCode::not_found);
}

TEST_CASE(
    "every ValueSet named by a required binding in R4 is known, except the external LOINC answer list") {
  auto text = read_file(testing::source_path("profiles/r4/profiles-resources.json.gz"));
  REQUIRE(text.ok());
  auto types = read_file(testing::source_path("profiles/r4/profiles-types.json.gz"));
  REQUIRE(types.ok());
  std::set<std::string> required;
  for (const std::string* source : {&*text, &*types}) {
    auto bundle = parse_json(*source);
    REQUIRE(bundle.ok());
    for (const Node& entry : bundle->find("entry")->items()) {
      const Node& sd = *entry.find("resource");
      const Node* snapshot = sd.find("snapshot");
      if (!snapshot) continue;
      for (const Node& element : snapshot->find("element")->items()) {
        const Node* binding = element.find("binding");
        if (binding && binding->string_at("strength") == "required" &&
            !binding->string_at("valueSet").empty()) {
          required.emplace(binding->string_at("valueSet"));
        }
      }
    }
  }
  CHECK(required.size() >= 220);
  std::set<std::string> unknown;
  for (const std::string& url : required) {
    if (!shipped().knows_value_set(url)) unknown.insert(url);
  }
  CHECK(unknown == std::set<std::string>{"http://loinc.org/vs/LL379-9|4.0.1"});
  CHECK(shipped().contains("http://loinc.org/vs/LL379-9", "http://loinc.org", "LA6576-8") == Answer::unknown);
}

TEST_CASE("AdministrativeGender is exact and case sensitive") {
  const auto& t = shipped();
  const std::string vs = "http://hl7.org/fhir/ValueSet/administrative-gender";
  const std::string system = "http://hl7.org/fhir/administrative-gender";
  for (const char* code : {"male", "female", "other", "unknown"}) {
    CHECK(t.contains(vs, system, code) == Answer::member);
    CHECK(t.contains(vs, "", code) == Answer::member);
  }
  CHECK(t.contains(vs, system, "Male") == Answer::not_member);
  CHECK(t.contains(vs, "", "Male") == Answer::not_member);
  CHECK(t.contains(vs, system, "m") == Answer::not_member);
  CHECK(t.contains(vs, "http://example.org/gender", "male") == Answer::not_member);
  CHECK(t.contains(vs + "|4.0.1", system, "female") == Answer::member);
  CHECK(t.contains(vs + "|4.0.1", system, "f") == Answer::not_member);
  CHECK(t.knows_value_set(vs + "|4.0.1"));
}

TEST_CASE("Consent status, ConsentScope and AuditEvent action") {
  const auto& t = shipped();
  const std::string status = "http://hl7.org/fhir/ValueSet/consent-state-codes";
  for (const char* code : {"draft", "proposed", "active", "rejected", "inactive", "entered-in-error"}) {
    CHECK(t.contains(status, "", code) == Answer::member);
  }
  CHECK(t.contains(status, "", "final") == Answer::not_member);

  const std::string scope = "http://hl7.org/fhir/ValueSet/consent-scope";
  const std::string scope_system = "http://terminology.hl7.org/CodeSystem/consentscope";
  CHECK(t.contains(scope, scope_system, "patient-privacy") == Answer::member);
  CHECK(t.contains(scope, scope_system, "research") == Answer::member);
  CHECK(t.contains(scope, scope_system, "privacy") == Answer::not_member);
  CHECK(t.contains(scope, "http://hl7.org/fhir/consentscope", "patient-privacy") == Answer::not_member);

  const std::string action = "http://hl7.org/fhir/ValueSet/audit-event-action";
  for (const char* code : {"C", "R", "U", "D", "E"}) {
    CHECK(t.contains(action, "http://hl7.org/fhir/audit-event-action", code) == Answer::member);
  }
  CHECK(t.contains(action, "http://hl7.org/fhir/audit-event-action", "c") == Answer::not_member);
  CHECK(t.contains(action, "http://hl7.org/fhir/audit-event-action", "X") == Answer::not_member);
}

TEST_CASE("a v3 ValueSet keeps selectable descendants and drops the abstract root") {
  const auto& t = shipped();
  const std::string vs = "http://terminology.hl7.org/ValueSet/v3-ActEncounterCode";
  for (const char* code : {"AMB", "EMER", "IMP", "HH", "VR"})
    CHECK(t.contains(vs, kV3ActCode, code) == Answer::member);
  CHECK(t.contains(vs, kV3ActCode, "_ActEncounterCode") == Answer::not_member);
  CHECK(t.contains(vs, kV3ActCode, "ACCM") == Answer::not_member);
  CHECK(t.contains(vs, kV3ActCode, "amb") == Answer::not_member);
}

TEST_CASE("a shipped ValueSet without an expansion is evaluated from its compose") {
  const auto& t = shipped();
  const std::string vs = "http://hl7.org/fhir/ValueSet/object-lifecycle-events";
  CHECK(t.contains(vs, "http://terminology.hl7.org/CodeSystem/dicom-audit-lifecycle", "1") == Answer::member);
  CHECK(t.contains(vs, "http://terminology.hl7.org/CodeSystem/iso-21089-lifecycle", "access") ==
        Answer::member);
  CHECK(t.contains(vs, "http://terminology.hl7.org/CodeSystem/iso-21089-lifecycle", "view") ==
        Answer::not_member);
  CHECK(t.contains(vs, "", "amend") == Answer::member);
}

TEST_CASE("filters is-a, descendent-of, is-not-a and regex on a hierarchical CodeSystem") {
  auto t = Terminology::load_from(testing::source_path("profiles"));
  REQUIRE(t.ok());
  REQUIRE((*t)->add(json(R"({"resourceType":"Bundle","type":"collection","entry":[
    {"resource":{"resourceType":"ValueSet","url":"http://example.org/vs/encounter-is-a","compose":{"include":[
      {"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode",
       "filter":[{"property":"concept","op":"is-a","value":"_ActEncounterCode"}]}]}}},
    {"resource":{"resourceType":"ValueSet","url":"http://example.org/vs/inpatient-below","compose":{"include":[
      {"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode",
       "filter":[{"property":"concept","op":"descendent-of","value":"IMP"}]}]}}},
    {"resource":{"resourceType":"ValueSet","url":"http://example.org/vs/encounter-not-inpatient","compose":{"include":[
      {"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode",
       "filter":[{"property":"concept","op":"is-a","value":"_ActEncounterCode"},
                 {"property":"concept","op":"is-not-a","value":"IMP"}]}]}}},
    {"resource":{"resourceType":"ValueSet","url":"http://example.org/vs/regex","compose":{"include":[
      {"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode",
       "filter":[{"property":"code","op":"regex","value":"A.*"}]}]}}}
  ]})"))
              .ok());
  const Terminology& term = **t;
  CHECK(term.contains("http://example.org/vs/encounter-is-a", kV3ActCode, "AMB") == Answer::member);
  CHECK(term.contains("http://example.org/vs/encounter-is-a", kV3ActCode, "ACUTE") == Answer::member);
  CHECK(term.contains("http://example.org/vs/encounter-is-a", kV3ActCode, "_ActEncounterCode") ==
        Answer::not_member);
  CHECK(term.contains("http://example.org/vs/encounter-is-a", kV3ActCode, "ACCM") == Answer::not_member);
  CHECK(term.contains("http://example.org/vs/inpatient-below", kV3ActCode, "ACUTE") == Answer::member);
  CHECK(term.contains("http://example.org/vs/inpatient-below", kV3ActCode, "IMP") == Answer::not_member);
  CHECK(term.contains("http://example.org/vs/inpatient-below", kV3ActCode, "AMB") == Answer::not_member);
  CHECK(term.contains("http://example.org/vs/encounter-not-inpatient", kV3ActCode, "AMB") == Answer::member);
  CHECK(term.contains("http://example.org/vs/encounter-not-inpatient", kV3ActCode, "IMP") ==
        Answer::not_member);
  CHECK(term.contains("http://example.org/vs/encounter-not-inpatient", kV3ActCode, "ACUTE") ==
        Answer::not_member);
  CHECK(term.contains("http://example.org/vs/regex", kV3ActCode, "AMB") == Answer::member);
  CHECK(term.contains("http://example.org/vs/regex", kV3ActCode, "IMP") == Answer::not_member);
  CHECK(term.contains("http://example.org/vs/regex", "http://example.org/other", "AMB") ==
        Answer::not_member);
}

TEST_CASE("language tags are checked by BCP-47 shape where a set includes all of urn:ietf:bcp:47") {
  const auto& t = shipped();
  const std::string all = "http://hl7.org/fhir/ValueSet/all-languages";
  for (const char* code : {"en", "en-GB", "fr-CA", "zh-Hant-TW", "EN-gb", "x-klingon"}) {
    CHECK(t.contains(all, "urn:ietf:bcp:47", code) == Answer::member);
    CHECK(t.contains(all, "", code) == Answer::member);
  }
  for (const char* code : {"e", "en_GB", "english language", "en-", "-en", "en-toolongsubtag", "12"}) {
    CHECK(t.contains(all, "urn:ietf:bcp:47", code) == Answer::not_member);
    CHECK(t.contains(all, "", code) == Answer::not_member);
  }
  const std::string common = "http://hl7.org/fhir/ValueSet/languages";
  CHECK(t.contains(common, "urn:ietf:bcp:47", "en-GB") == Answer::member);
  CHECK(t.contains(common, "urn:ietf:bcp:47", "en-gb") == Answer::member);
  CHECK(t.contains(common, "urn:ietf:bcp:47", "en-ZA") == Answer::not_member);
}

TEST_CASE("mime types are checked by shape for urn:ietf:bcp:13") {
  const auto& t = shipped();
  const std::string vs = "http://hl7.org/fhir/ValueSet/mimetypes";
  for (const char* code : {"application/fhir+json", "text/plain", "image/png", "text/plain; charset=UTF-8",
                           "application/vnd.ms-excel", "Application/PDF", "xml", "json", "ttl"}) {
    CHECK(t.contains(vs, "urn:ietf:bcp:13", code) == Answer::member);
    CHECK(t.contains(vs, "", code) == Answer::member);
  }
  for (const char* code :
       {"fhir json", "text", "text/", "/plain", "text/pl ain", "text/plain;", "text/plain; charset"}) {
    CHECK(t.contains(vs, "urn:ietf:bcp:13", code) == Answer::not_member);
    CHECK(t.contains(vs, "", code) == Answer::not_member);
  }
}

TEST_CASE("unknown and unenumerable value sets answer unknown") {
  const auto& t = shipped();
  CHECK_FALSE(t.knows_value_set("http://example.org/ValueSet/nope"));
  CHECK(t.contains("http://example.org/ValueSet/nope", "http://hl7.org/fhir/administrative-gender", "male") ==
        Answer::unknown);
  const std::string loinc_all = "http://hl7.org/fhir/ValueSet/observation-codes";
  CHECK(t.knows_value_set(loinc_all));
  CHECK(t.contains(loinc_all, "http://loinc.org", "1-8") == Answer::member);
  CHECK(t.contains(loinc_all, "http://loinc.org", "99999-9") == Answer::unknown);
  CHECK(t.contains(loinc_all, "", "99999-9") == Answer::unknown);
  CHECK(t.contains("http://hl7.org/fhir/ValueSet/ucum-units", "http://unitsofmeasure.org", "mg") ==
        Answer::member);
  CHECK(t.contains("http://hl7.org/fhir/ValueSet/ucum-units", "http://unitsofmeasure.org", "mg/(7.h)") ==
        Answer::unknown);
  CHECK(t.contains("http://hl7.org/fhir/ValueSet/consent-category", "http://loinc.org", "59284-0") ==
        Answer::member);
  CHECK(t.contains("http://hl7.org/fhir/ValueSet/consent-category", "http://loinc.org", "8867-4") ==
        Answer::not_member);
}

TEST_CASE("display comes from the CodeSystem") {
  const auto& t = shipped();
  CHECK(t.display("http://hl7.org/fhir/administrative-gender", "male") == std::optional<std::string>("Male"));
  CHECK(t.display("http://terminology.hl7.org/CodeSystem/consentscope", "patient-privacy") ==
        std::optional<std::string>("Privacy Consent"));
  CHECK(t.display(kV3ActCode, "AMB") == std::optional<std::string>("ambulatory"));
  CHECK(t.display("http://terminology.hl7.org/CodeSystem/v2-0203", "MR") ==
        std::optional<std::string>("Medical record number"));
  CHECK(t.display("http://hl7.org/fhir/administrative-gender", "Male") == std::nullopt);
  CHECK(t.display("http://loinc.org", "8867-4") == std::nullopt);
}

TEST_CASE("display of a system without a CodeSystem comes from a ValueSet that lists the code") {
  const auto& t = shipped();
  CHECK(t.display("urn:iso:std:iso:3166", "BD") == std::optional<std::string>("Bangladesh"));
  CHECK(t.display("urn:iso:std:iso:3166", "XX") == std::nullopt);
  CHECK(t.display("http://unitsofmeasure.org", "min") == std::nullopt);
}

TEST_CASE("add() takes custom CodeSystems and ValueSets, alone or in a Bundle") {
  Terminology t;
  REQUIRE(
      t.add(json(R"({"resourceType":"CodeSystem","url":"http://example.org/cs/colour","caseSensitive":false,
    "content":"complete","concept":[
      {"code":"colour","display":"Any colour","property":[{"code":"notSelectable","valueBoolean":true}],"concept":[
        {"code":"red","display":"Red","concept":[{"code":"crimson","display":"Crimson"}]},
        {"code":"green","display":"Green"},
        {"code":"blue","display":"Blue"}]}]})"))
          .ok());
  REQUIRE(t.add(json(R"({"resourceType":"Bundle","type":"collection","entry":[
    {"resource":{"resourceType":"ValueSet","url":"http://example.org/vs/colours","compose":{"include":[
      {"system":"http://example.org/cs/colour"}],"exclude":[{"system":"http://example.org/cs/colour","concept":[{"code":"blue"}]}]}}},
    {"resource":{"resourceType":"ValueSet","url":"http://example.org/vs/reds","compose":{"include":[
      {"system":"http://example.org/cs/colour","filter":[{"property":"concept","op":"is-a","value":"red"}]}]}}},
    {"resource":{"resourceType":"ValueSet","url":"http://example.org/vs/union","compose":{"include":[
      {"valueSet":["http://example.org/vs/reds|1.0"]},{"valueSet":["http://example.org/vs/shapes"]}]}}},
    {"resource":{"resourceType":"ValueSet","url":"http://example.org/vs/expanded",
      "expansion":{"timestamp":"2024-01-01T00:00:00Z","contains":[
        {"system":"http://example.org/cs/colour","code":"colour","abstract":true,"contains":[
          {"system":"http://example.org/cs/colour","code":"green"}]}]}}}
  ]})"))
              .ok());
  const std::string colour = "http://example.org/cs/colour";
  CHECK(t.contains("http://example.org/vs/colours", colour, "red") == Answer::member);
  CHECK(t.contains("http://example.org/vs/colours", colour, "RED") == Answer::member);
  CHECK(t.contains("http://example.org/vs/colours", "", "Crimson") == Answer::member);
  CHECK(t.contains("http://example.org/vs/colours", colour, "blue") == Answer::not_member);
  CHECK(t.contains("http://example.org/vs/colours", colour, "colour") == Answer::not_member);
  CHECK(t.contains("http://example.org/vs/reds", colour, "crimson") == Answer::member);
  CHECK(t.contains("http://example.org/vs/reds", colour, "green") == Answer::not_member);
  CHECK(t.contains("http://example.org/vs/expanded", colour, "green") == Answer::member);
  CHECK(t.contains("http://example.org/vs/expanded", colour, "colour") == Answer::not_member);
  CHECK(t.contains("http://example.org/vs/expanded", colour, "red") == Answer::not_member);
  CHECK(t.display(colour, "CRIMSON") == std::optional<std::string>("Crimson"));

  CHECK(t.contains("http://example.org/vs/union", colour, "red") == Answer::member);
  CHECK(t.contains("http://example.org/vs/union", colour, "green") == Answer::unknown);
  REQUIRE(t.add(json(R"({"resourceType":"Bundle","type":"collection","entry":[
    {"resource":{"resourceType":"ValueSet","url":"http://example.org/vs/shapes","compose":{"include":[
      {"system":"http://example.org/cs/shape"}]}}},
    {"resource":{"resourceType":"CodeSystem","url":"http://example.org/cs/shape","content":"complete",
      "concept":[{"code":"circle"},{"code":"square"}]}}]})"))
              .ok());
  CHECK(t.contains("http://example.org/vs/union", colour, "green") == Answer::not_member);
  CHECK(t.contains("http://example.org/vs/union", "http://example.org/cs/shape", "circle") == Answer::member);
  CHECK(t.contains("http://example.org/vs/union", "http://example.org/cs/shape", "Circle") ==
        Answer::not_member);
}

TEST_CASE("a CodeSystem that is not complete leaves codes it lacks unknown") {
  Terminology t;
  REQUIRE(t.add(json(R"({"resourceType":"Bundle","type":"collection","entry":[
    {"resource":{"resourceType":"CodeSystem","url":"http://example.org/cs/frag","content":"fragment",
      "concept":[{"code":"a","display":"A"}]}},
    {"resource":{"resourceType":"ValueSet","url":"http://example.org/vs/frag","compose":{"include":[
      {"system":"http://example.org/cs/frag"}]}}}]})"))
              .ok());
  CHECK(t.contains("http://example.org/vs/frag", "http://example.org/cs/frag", "a") == Answer::member);
  CHECK(t.contains("http://example.org/vs/frag", "http://example.org/cs/frag", "b") == Answer::unknown);
  CHECK(t.display("http://example.org/cs/frag", "a") == std::optional<std::string>("A"));
}

TEST_CASE("add() rejects resources that are not terminology") {
  Terminology t;
  auto status = t.add(json(R"({"resourceType":"Patient","id":"p"})"));
  REQUIRE_FALSE(status.ok());
  CHECK(status.error().code == ErrorCode::invalid_input);
}

}  // namespace
}  // namespace fhirgate::fhir
