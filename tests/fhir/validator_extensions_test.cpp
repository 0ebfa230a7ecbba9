// Extension definitions and contexts (fhir/validator_extensions.cpp) and the rules on conformance
// resources (fhir/validator_conformance.cpp), with inline resources.
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

// "severity location" of every error, and of the issues whose diagnostics mention `also`.
std::string check(std::string_view json, const std::vector<std::string_view>& supporting = {},
                  std::string_view also = "\x01") {
  Validator validator(testing::r4_model(), shared_terminology());
  for (const std::string_view resource : supporting) {
    auto node = parse_json(resource);
    REQUIRE(node.ok());
    REQUIRE(validator.add_resource(*node).ok());
  }
  auto node = parse_json(json);
  REQUIRE(node.ok());
  std::string out;
  for (const Issue& issue : validator.validate(*node).issues) {
    if (issue.severity != "error" && issue.diagnostics.find(also) == std::string::npos) continue;
    if (!out.empty()) out += "; ";
    out += issue.severity + " " + issue.expression;
  }
  return out;
}

// A test extension usable on Patient, Patient.name, inside patient-interpreterRequired and on home
// addresses, with a boolean value.
constexpr std::string_view kContexts = R"j({"resourceType":"StructureDefinition",
  "url":"http://example.org/StructureDefinition/ctx","name":"Ctx","status":"draft","kind":"complex-type",
  "abstract":false,"type":"Extension","derivation":"constraint",
  "baseDefinition":"http://hl7.org/fhir/StructureDefinition/Extension",
  "context":[{"type":"element","expression":"Patient"},{"type":"element","expression":"Patient.name"},
    {"type":"extension","expression":"http://hl7.org/fhir/StructureDefinition/patient-interpreterRequired"},
    {"type":"fhirpath","expression":"Patient.address.where(use = 'home')"}],
  "differential":{"element":[{"id":"Extension.extension","path":"Extension.extension","max":"0"},
    {"id":"Extension.url","path":"Extension.url","fixedUri":"http://example.org/StructureDefinition/ctx"},
    {"id":"Extension.value[x]","path":"Extension.value[x]","min":1,"type":[{"code":"boolean"}]}]}})j";

constexpr std::string_view kCtx =
    R"({"url":"http://example.org/StructureDefinition/ctx","valueBoolean":true})";

std::string patient(std::string_view members) {
  return R"({"resourceType":"Patient","text":{"status":"generated","div":"<div xmlns=\"http://www.w3.org/1999/xhtml\">x</div>"},)" +
         std::string(members) + "}";
}

TEST_CASE("Extensions: element, extension and FHIRPath contexts decide where an extension may be used") {
  const std::vector<std::string_view> with{kContexts};
  CHECK(check(patient(R"("extension":[)" + std::string(kCtx) + "]"), with) == "");
  CHECK(check(patient(R"("name":[{"family":"x","extension":[)" + std::string(kCtx) + "]}]"), with) == "");
  CHECK(check(patient(R"("address":[{"use":"home","extension":[)" + std::string(kCtx) + "]}]"), with) == "");
  CHECK(check(patient(R"("address":[{"use":"work","extension":[)" + std::string(kCtx) + "]}]"), with) ==
        "error Patient.address[0]");
  CHECK(
      check(patient(R"("telecom":[{"system":"phone","value":"1","extension":[)" + std::string(kCtx) + "]}]"),
            with) == "error Patient.telecom[0]");
  const auto inside = [&](std::string_view url) {
    return check(patient(R"("extension":[{"url":")" + std::string(url) + R"(","valueBoolean":true,
        "_valueBoolean":{"extension":[)" +
                         std::string(kCtx) + "]}}]"),
                 with);
  };
  CHECK(inside("http://hl7.org/fhir/StructureDefinition/patient-interpreterRequired") == "");
  CHECK(inside("http://hl7.org/fhir/StructureDefinition/patient-cadavericDonor") ==
        "error Patient.extension[0].valueBoolean");
}

TEST_CASE("Extensions: the R4 core definitions give the contexts of core extensions") {
  const std::string mothers = R"({"url":"http://hl7.org/fhir/StructureDefinition/humanname-mothers-family",
    "valueString":"Garcia"})";
  CHECK(check(patient(R"("name":[{"family":"Lopez","_family":{"extension":[)" + mothers + "]}}]")) == "");
  CHECK(check(patient(R"("name":[{"family":"Lopez","extension":[)" + mothers + "]}]")) ==
        "error Patient.name[0]");
  // A backbone element reached through a contentReference is the element it refers to.
  CHECK(check(R"({"resourceType":"RequestGroup","status":"draft","intent":"plan","action":[{"action":[{
      "extension":[{"url":"http://hl7.org/fhir/StructureDefinition/timing-daysOfCycle",
                    "extension":[{"url":"day","valueInteger":1}]}]}]}]})") == "");
}

TEST_CASE("Extensions: a context invariant must hold on the element the extension is on") {
  constexpr std::string_view kInvariant = R"j({"resourceType":"StructureDefinition",
    "url":"http://example.org/StructureDefinition/inv","name":"Inv","status":"draft","kind":"complex-type",
    "abstract":false,"type":"Extension","derivation":"constraint",
    "baseDefinition":"http://hl7.org/fhir/StructureDefinition/Extension",
    "context":[{"type":"element","expression":"Patient"}],"contextInvariant":["Patient.active.not()"],
    "differential":{"element":[{"id":"Extension.value[x]","path":"Extension.value[x]","type":[{"code":"boolean"}]}]}})j";
  const std::string ext =
      R"("extension":[{"url":"http://example.org/StructureDefinition/inv","valueBoolean":true}])";
  CHECK(check(patient(ext + R"(,"active":false)"), {kInvariant}) == "");
  CHECK(check(patient(ext + R"(,"active":true)"), {kInvariant}) == "error Patient");
}

TEST_CASE("Extensions: modifier extensions, value types and the sub-extensions of complex extensions") {
  CHECK(check(patient(
            R"("modifierExtension":[{"url":"http://hl7.org/fhir/StructureDefinition/patient-cadavericDonor",
                 "valueBoolean":true}])")) == "error Patient.modifierExtension[0]");
  CHECK(check(R"({"resourceType":"NutritionOrder","status":"draft","intent":"order","patient":{"display":"x"},
      "dateTime":"2020-01-01","extension":[{"url":"http://hl7.org/fhir/StructureDefinition/request-doNotPerform",
      "valueBoolean":true}]})") == "error NutritionOrder.extension[0]");
  CHECK(check(patient(R"("birthDate":"2020-01-01","_birthDate":{"extension":[{
      "url":"http://hl7.org/fhir/StructureDefinition/patient-birthTime","valueString":"ten"}]})")) ==
        "error Patient.birthDate.extension[0].valueString");
  const std::string species = R"({"url":"species","valueCodeableConcept":{"text":"dog"}})";
  CHECK(check(patient(R"("extension":[{"url":"http://hl7.org/fhir/StructureDefinition/patient-animal",
      "extension":[)" +
                      species + "]}]")) == "");
  CHECK(check(patient(R"("extension":[{"url":"http://hl7.org/fhir/StructureDefinition/patient-animal",
      "extension":[{"url":"breed","valueCodeableConcept":{"text":"poodle"}}]}])")) ==
        "error Patient.extension[0]");
  CHECK(check(patient(R"("extension":[{"url":"http://hl7.org/fhir/StructureDefinition/patient-animal",
      "extension":[)" +
                      species + R"(,{"url":"x-breed","valueString":"poodle"}]}])")) ==
        "error Patient.extension[0].extension[1]");
  CHECK(check(patient(R"("extension":[{"url":"http://hl7.org/fhir/StructureDefinition/patient-animal",
      "extension":[)" +
                      species + R"(,{"url":"http://example.org/colour","valueString":"brown"}]}])"),
              {}, "sub-extension") == "information Patient.extension[0].extension[1]");
}

TEST_CASE("Extensions: in fixed, pattern and example values of element definitions any context goes") {
  const std::string name = R"j({"family":"Lopez","extension":[{
      "url":"http://hl7.org/fhir/StructureDefinition/humanname-mothers-family","valueString":"Garcia"}]})j";
  const std::string sd = R"({"resourceType":"StructureDefinition","url":"http://example.org/sd","name":"Sd",
    "status":"draft","abstract":false,"kind":"resource","type":"Patient","derivation":"constraint",
    "baseDefinition":"http://hl7.org/fhir/StructureDefinition/Patient","differential":{"element":[
      {"id":"Patient.name","path":"Patient.name","patternHumanName":)" +
                         name + R"(,"example":[{"label":"x","valueHumanName":)" + name + "}]}]}}";
  CHECK(check(sd) == "");
}

TEST_CASE("Extensions: an unknown core extension is an error, another unknown one information") {
  CHECK(check(patient(R"("extension":[{"url":"http://hl7.org/fhir/StructureDefinition/no-such-thing",
      "valueBoolean":true}])")) == "error Patient.extension[0]");
  CHECK(check(patient(R"("extension":[{"url":"http://example.org/whatever","valueBoolean":true}])"), {},
              "Unknown extension") == "information Patient.extension[0]");
}

TEST_CASE("Conformance resources: SearchParameter composites and derived types") {
  const std::string base = R"({"resourceType":"SearchParameter","url":"http://example.org/sp","name":"x",
    "status":"active","description":"x","code":"name","base":["Organization"],"expression":"Organization.name",)";
  CHECK(check(base + R"("type":"composite"})") == "error SearchParameter");
  CHECK(check(base +
              R"("type":"token","derivedFrom":"http://hl7.org/fhir/SearchParameter/Organization-name"})") ==
        "error SearchParameter");
  CHECK(check(base +
              R"("type":"string","derivedFrom":"http://hl7.org/fhir/SearchParameter/Organization-name"})") ==
        "");
}

TEST_CASE("Conformance resources: StructureDefinition paths, type profiles and fixed values of the base") {
  const std::string head = R"({"resourceType":"StructureDefinition","url":"http://example.org/sd","name":"Sd",
    "status":"draft","abstract":false,)";
  CHECK(check(head + R"("kind":"resource","type":"Observation","derivation":"constraint",
      "baseDefinition":"http://hl7.org/fhir/StructureDefinition/Observation",
      "differential":{"element":[{"id":"Observation.valueQuantity","path":"Observation.valueQuantity",
        "type":[{"code":"Quantity","profile":["http://hl7.org/fhir/StructureDefinition/Count"]}]}]}})") ==
        "error StructureDefinition.differential.element[0].type[0].profile[0]");
  CHECK(check(head + R"("kind":"resource","type":"Bundle","derivation":"constraint",
      "baseDefinition":"http://hl7.org/fhir/StructureDefinition/Bundle",
      "differential":{"element":[{"id":"Bundle.entry.resource","path":"Bundle.entry.resource",
        "type":[{"code":"Resource","profile":["http://hl7.org/fhir/StructureDefinition/Observation"]}]}]}})") ==
        "");
  CHECK(check(head + R"("kind":"logical","type":"http://example.org/Foo","derivation":"specialization",
      "baseDefinition":"http://hl7.org/fhir/StructureDefinition/Base",
      "differential":{"element":[{"id":"Foo","path":"Foo"},
        {"id":"Boo.a","path":"Boo.a","min":1,"max":"1","type":[{"code":"string"}]}]}})") ==
        "error StructureDefinition.differential; error StructureDefinition.differential.element[1]");
  const auto slice = [&](std::string_view element, std::string_view url) {
    return check(head + R"("kind":"resource","type":"Patient","derivation":"constraint",
      "baseDefinition":"http://hl7.org/fhir/StructureDefinition/Patient",
      "differential":{"element":[{"id":"Patient.)" +
                 std::string(element) + R"(:x","path":"Patient.)" + std::string(element) +
                 R"(","sliceName":"x","type":[{"code":"Extension","profile":[")" + std::string(url) +
                 R"("]}]}]}})");
  };
  CHECK(slice("extension", "http://hl7.org/fhir/StructureDefinition/patient-birthTime") == "");
  CHECK(slice("extension", "http://hl7.org/fhir/StructureDefinition/request-doNotPerform") ==
        "error StructureDefinition.differential.element[0].type[0].profile[0]");
  CHECK(slice("modifierExtension", "http://hl7.org/fhir/StructureDefinition/patient-birthTime") ==
        "error StructureDefinition.differential.element[0].type[0].profile[0]");
  constexpr std::string_view kBase = R"({"resourceType":"StructureDefinition",
    "url":"http://example.org/StructureDefinition/base","name":"Base","status":"draft","kind":"complex-type",
    "abstract":false,"type":"Extension","derivation":"constraint",
    "baseDefinition":"http://hl7.org/fhir/StructureDefinition/Extension",
    "context":[{"type":"element","expression":"Patient"}],
    "differential":{"element":[
      {"id":"Extension.url","path":"Extension.url","fixedUri":"http://example.org/StructureDefinition/base"},
      {"id":"Extension.value[x]","path":"Extension.value[x]","type":[{"code":"string"}]}]}})";
  const std::string derived = R"({"resourceType":"StructureDefinition",
    "url":"http://example.org/StructureDefinition/derived","name":"Derived","status":"draft",
    "kind":"complex-type","abstract":false,"type":"Extension","derivation":"constraint",
    "baseDefinition":"http://example.org/StructureDefinition/base",
    "context":[{"type":"element","expression":"Patient"}],
    "differential":{"element":[{"id":"Extension.url","path":"Extension.url","fixedUri":"URL"}]}})";
  const auto with_url = [&](std::string_view url) {
    std::string out = derived;
    out.replace(out.find("URL"), 3, url);
    return out;
  };
  CHECK(check(with_url("http://example.org/StructureDefinition/derived"), {kBase}) ==
        "error StructureDefinition.differential.element[0].fixedUri");
  CHECK(check(with_url("http://example.org/StructureDefinition/base"), {kBase}) == "");
}

}  // namespace
}  // namespace fhirgate::fhir
