// Profile rules that come from extensions and conformance resources given to Validator::add_resource:
// minLength, valueAlternatives, the narrative controls, element profiles (a backbone element profiled
// from a section library), ImplementationGuide.global, constraints kept from a base profile, and the
// unresolved reference type switch.
#include <doctest/doctest.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "fhir/narrative.hpp"
#include "fhir/validator.hpp"
#include "tests/support/paths.hpp"
#include "tests/support/r4.hpp"

namespace fhirgate::fhir {
namespace {

std::shared_ptr<const Terminology> shared_terminology() {
  return testing::r4_terminology();
}

Node json(std::string_view text) {
  auto node = parse_json(text);
  REQUIRE_MESSAGE(node.ok(), text);
  return *node;
}

// A validator with `definitions` added, as the CLI's --load does.
std::unique_ptr<Validator> validator_with(const std::vector<std::string_view>& definitions) {
  auto made = std::make_unique<Validator>(testing::r4_model(), shared_terminology());
  for (const std::string_view definition : definitions) {
    const auto added = made->add_resource(json(definition));
    REQUIRE_MESSAGE(added.ok(), definition);
  }
  return made;
}

// "severity code expression" of every error and warning (dom-6 left out), joined by "; ".
std::string check(const Validator& validator, std::string_view resource, std::string_view profile = {},
                  ValidationOptions options = {}) {
  if (!profile.empty()) options.profiles.emplace_back(profile);
  std::string out;
  for (const Issue& issue : validator.validate(json(resource), options).issues) {
    // dom-6 (no narrative) and the code systems only a terminology server holds are beside the point here.
    if (issue.severity == "information" || issue.diagnostics.starts_with("dom-6:") ||
        issue.diagnostics.find("needs a terminology server") != std::string::npos)
      continue;
    if (!out.empty()) out += "; ";
    out += issue.severity + " " + issue.code + " " + issue.expression;
  }
  return out;
}

std::string patient_profile(std::string_view url, std::string_view elements) {
  return R"({"resourceType":"StructureDefinition","url":")" + std::string(url) +
         R"(","name":"P","status":"draft","kind":"resource","abstract":false,"type":"Patient",
  "derivation":"constraint","baseDefinition":"http://hl7.org/fhir/StructureDefinition/Patient",
  "differential":{"element":[)" +
         std::string(elements) + "]}}";
}

TEST_CASE("Profiles: the minLength extension sets a minimum length on a primitive") {
  const std::string profile = patient_profile("http://test.example/min-length", R"(
    {"id":"Patient.id","path":"Patient.id",
     "extension":[{"url":"http://hl7.org/fhir/StructureDefinition/minLength","valueInteger":20}]})");
  const auto v = validator_with({profile});
  CHECK(check(*v, R"({"resourceType":"Patient","id":"short"})", "http://test.example/min-length") ==
        "error value Patient.id");
  CHECK(check(*v, R"({"resourceType":"Patient","id":"a-rather-long-identifier"})",
              "http://test.example/min-length") == "");
}

TEST_CASE("Profiles: valueAlternatives lists the extensions that may stand in for a missing value") {
  const std::string profile = patient_profile("http://test.example/alternatives", R"(
    {"path":"Patient.active","min":1,"extension":[{
      "url":"http://hl7.org/fhir/5.0/StructureDefinition/extension-ElementDefinition.valueAlternatives",
      "valueCanonical":"http://hl7.org/fhir/StructureDefinition/data-absent-reason"}]})");
  const auto v = validator_with({profile});
  const std::string_view url = "http://test.example/alternatives";
  CHECK(check(*v, R"({"resourceType":"Patient","_active":{"extension":[
    {"url":"http://hl7.org/fhir/StructureDefinition/iso21090-nullFlavor","valueCode":"MSK"}]}})",
              url) == "error required Patient.active");
  CHECK(check(*v, R"({"resourceType":"Patient","_active":{"extension":[
    {"url":"http://hl7.org/fhir/StructureDefinition/data-absent-reason","valueCode":"masked"}]}})",
              url) == "");
  CHECK(check(*v, R"({"resourceType":"Patient","active":true})", url) == "");
}

TEST_CASE("Profiles: narrative controls ask for source classes and language sections") {
  const std::string source = patient_profile("http://test.example/source", R"(
    {"id":"Patient.text","path":"Patient.text","extension":[
      {"url":"http://hl7.org/fhir/StructureDefinition/narrative-source-control","valueCode":"error"}]})");
  const std::string language = patient_profile("http://test.example/language", R"(
    {"id":"Patient.text","path":"Patient.text","extension":[
      {"url":"http://hl7.org/fhir/StructureDefinition/narrative-language-control","valueCode":"_resource"}]})");
  const auto v = validator_with({source, language});
  const auto patient = [](std::string_view div) {
    return R"({"resourceType":"Patient","language":"en","text":{"status":"additional","div":")" +
           std::string(div) + R"("}})";
  };
  CHECK(check(*v,
              patient(
                  R"(<div xmlns=\"http://www.w3.org/1999/xhtml\">loose text<h1 class=\"boilerplate\">H</h1>)"
                  R"(<p>no source</p><p class=\"x generated\">g</p></div>)"),
              "http://test.example/source") ==
        "error business-rule Patient.text; error business-rule Patient.text");
  CHECK(check(*v,
              patient(R"(<div xmlns=\"http://www.w3.org/1999/xhtml\"> <p class=\"original\">o</p> </div>)"),
              "http://test.example/source") == "");
  CHECK(check(*v,
              patient(R"(<div xmlns=\"http://www.w3.org/1999/xhtml\"><div lang=\"pt\">a</div>)"
                      R"(<div xml:lang=\"de\" lang=\"de\">b</div></div>)"),
              "http://test.example/language") == "error business-rule Patient.text");
  CHECK(check(*v,
              patient(R"(<div xmlns=\"http://www.w3.org/1999/xhtml\"><div lang=\"en-AU\">a</div>)"
                      R"(<div lang=\"de\">b</div></div>)"),
              "http://test.example/language") == "");
}

TEST_CASE("Narrative: the parts directly inside the root div") {
  const auto parts = narrative_parts(
      "<div xmlns=\"http://www.w3.org/1999/xhtml\">\n  Some  text\n <!-- c --><p class=\"generated\" "
      "title=\"a>b\">In <b>bold</b></p><br/><div xml:lang=\"de\"><div>x</div></div></div>");
  REQUIRE(parts.size() == 4);
  CHECK_FALSE(parts[0].element);
  CHECK(parts[0].excerpt == "Some text");
  CHECK(parts[1].element);
  CHECK(parts[1].css_class == "generated");
  CHECK(parts[1].excerpt == "In bold");
  CHECK(parts[2].element);
  CHECK(parts[3].lang == "de");
}

constexpr std::string_view kSectionLibrary =
    R"({"resourceType":"StructureDefinition","url":"http://test.example/sections","name":"Sections",
  "status":"draft","kind":"complex-type","abstract":true,"type":"Composition","derivation":"constraint",
  "baseDefinition":"http://hl7.org/fhir/StructureDefinition/Composition","differential":{"element":[
  {"path":"Composition.section","slicing":{"discriminator":[{"type":"pattern","path":"code"}],"rules":"closed"}},
  {"path":"Composition.section","sliceName":"a"},
  {"path":"Composition.section.code","min":1,"patternCodeableConcept":{"coding":[{"system":"http://test.example/cs","code":"a"}]}},
  {"path":"Composition.section.focus","min":1},
  {"path":"Composition.section","sliceName":"b"},
  {"path":"Composition.section.code","min":1,"patternCodeableConcept":{"coding":[{"system":"http://test.example/cs","code":"b"}]}},
  {"path":"Composition.section.title","min":1}]}})";

constexpr std::string_view kDocument =
    R"({"resourceType":"StructureDefinition","url":"http://test.example/document","name":"Document",
  "status":"draft","kind":"complex-type","abstract":false,"type":"Composition","derivation":"constraint",
  "baseDefinition":"http://hl7.org/fhir/StructureDefinition/Composition","differential":{"element":[
  {"path":"Composition.section","slicing":{"discriminator":[{"type":"pattern","path":"code"}],"rules":"closed"}},
  {"path":"Composition.section","sliceName":"A","min":1,"type":[{"code":"BackboneElement",
   "profile":["http://test.example/sections"],"_profile":[{"extension":[{
     "url":"http://hl7.org/fhir/StructureDefinition/elementdefinition-profile-element","valueString":"Composition.section:a"}]}]}]},
  {"path":"Composition.section","sliceName":"B","min":1,"type":[{"code":"BackboneElement",
   "profile":["http://test.example/sections"],"_profile":[{"extension":[{
     "url":"http://hl7.org/fhir/StructureDefinition/elementdefinition-profile-element","valueString":"Composition.section:b"}]}]}]}]}})";

std::string composition(std::string_view sections) {
  return R"({"resourceType":"Composition","status":"final","type":{"text":"t"},"date":"2024-01-01",
    "author":[{"display":"a"}],"title":"T","section":[)" +
         std::string(sections) + "]}";
}

TEST_CASE("Profiles: a slice typed by one element of a section library is matched and checked by it") {
  const auto v = validator_with({kSectionLibrary, kDocument});
  const std::string_view url = "http://test.example/document";
  const std::string a = R"({"code":{"coding":[{"system":"http://test.example/cs","code":"a"}]},"text":{
    "status":"additional","div":"<div xmlns=\"http://www.w3.org/1999/xhtml\">a</div>"}})";
  const std::string b = R"({"code":{"coding":[{"system":"http://test.example/cs","code":"b"}]},"text":{
    "status":"additional","div":"<div xmlns=\"http://www.w3.org/1999/xhtml\">b</div>"}})";
  CHECK(check(*v, composition(a + "," + b), url) ==
        "error required Composition.section[0].focus; error required Composition.section[1].title");
  const std::string good_a = R"({"code":{"coding":[{"system":"http://test.example/cs","code":"a"}]},
    "focus":{"display":"f"},"entry":[{"display":"e"}]})";
  const std::string good_b =
      R"({"title":"B","code":{"coding":[{"system":"http://test.example/cs","code":"b"}]},
    "entry":[{"display":"e"}]})";
  CHECK(check(*v, composition(good_a + "," + good_b), url) == "");
  CHECK(check(*v, composition(good_a), url) == "error required Composition.section");
}

TEST_CASE("Profiles: ImplementationGuide.global applies a profile to every resource of its type") {
  const std::string profile =
      patient_profile("http://test.example/global", R"({"path":"Patient.name","min":1})");
  const auto v =
      validator_with({profile, R"({"resourceType":"ImplementationGuide","url":"http://test.example/ig",
    "name":"IG","status":"draft","packageId":"test.ig","fhirVersion":["4.0.1"],
    "global":[{"type":"Patient","profile":"http://test.example/global"}]})"});
  CHECK(check(*v, R"({"resourceType":"Patient","active":true})") == "error required Patient.name");
  CHECK(check(*v, R"({"resourceType":"Patient","name":[{"family":"X"}]})") == "");
  CHECK(check(*v, R"({"resourceType":"Basic","code":{"text":"x"}})") == "");
}

TEST_CASE("Profiles: a derived profile keeps its base's constraint under a reused key") {
  const auto name_profile = [](std::string_view url, std::string_view base, std::string_view constraints) {
    return R"({"resourceType":"StructureDefinition","url":")" + std::string(url) +
           R"(","name":"N","status":"draft","kind":"complex-type","abstract":false,"type":"HumanName",
      "derivation":"constraint","baseDefinition":")" +
           std::string(base) +
           R"(","differential":{"element":[{"id":"HumanName.given","path":"HumanName.given",
      "constraint":[)" +
           std::string(constraints) + "]}]}}";
  };
  const std::string name1 =
      name_profile("http://test.example/name1", "http://hl7.org/fhir/StructureDefinition/HumanName",
                   R"({"key":"t1","severity":"error","human":"fails","expression":"false"},
       {"key":"t2","severity":"error","human":"fails","expression":"false or false"})");
  const std::string name2 =
      name_profile("http://test.example/name2", "http://test.example/name1",
                   R"({"key":"t2","severity":"error","human":"passes","expression":"true"})");
  // Labelled specialization, but of Patient into Patient: a profile all the same.
  const std::string patient = R"({"resourceType":"StructureDefinition","url":"http://test.example/names",
    "name":"Names","status":"draft","kind":"resource","abstract":false,"type":"Patient","derivation":"specialization",
    "baseDefinition":"http://hl7.org/fhir/StructureDefinition/Patient","differential":{"element":[
    {"id":"Patient.name","path":"Patient.name","type":[{"code":"HumanName",
      "profile":["http://test.example/name1","http://test.example/name2"]}]}]}})";
  const auto v = validator_with({name1, name2, patient});
  CHECK(v->knows_profile("http://test.example/names"));
  CHECK(check(*v, R"({"resourceType":"Patient","name":[{"given":["Jane"]}]})", "http://test.example/names") ==
        "error structure Patient.name[0]; error invariant Patient.name[0].given[0]; "
        "error invariant Patient.name[0].given[0]");
}

TEST_CASE("Profiles: the type a literal reference names is checked unless check_reference_types is off") {
  const auto v = validator_with({R"({"resourceType":"StructureDefinition","url":"http://test.example/subject",
    "name":"S","status":"draft","kind":"resource","abstract":false,"type":"Observation","derivation":"constraint",
    "baseDefinition":"http://hl7.org/fhir/StructureDefinition/Observation","differential":{"element":[
    {"id":"Observation.subject","path":"Observation.subject","type":[{"code":"Reference",
      "targetProfile":["http://hl7.org/fhir/StructureDefinition/Patient"]}]}]}})"});
  const std::string_view observation =
      R"({"resourceType":"Observation","status":"final","code":{"text":"x"},"subject":{"reference":"Group/1"}})";
  CHECK(check(*v, observation, "http://test.example/subject") ==
        "error structure Observation.subject.reference");
  ValidationOptions unchecked;
  unchecked.check_reference_types = false;
  CHECK(check(*v, observation, "http://test.example/subject", unchecked) == "");
}

TEST_CASE("Profiles: a new slice starts from the base element, not from the sliced element's constraints") {
  const auto v =
      validator_with({R"({"resourceType":"StructureDefinition","url":"http://test.example/effective",
    "name":"E","status":"draft","kind":"resource","abstract":false,"type":"Observation","derivation":"constraint",
    "baseDefinition":"http://hl7.org/fhir/StructureDefinition/Observation","differential":{"element":[
    {"id":"Observation.effective[x]","path":"Observation.effective[x]","min":1,
     "slicing":{"discriminator":[{"type":"type","path":"$this"}],"rules":"open"},
     "type":[{"code":"dateTime"},{"code":"Period"}]},
    {"id":"Observation.effective[x]:effectivePeriod","path":"Observation.effective[x]","sliceName":"effectivePeriod",
     "type":[{"code":"Period"}]},
    {"id":"Observation.effective[x]:effectivePeriod.start","path":"Observation.effective[x].start","min":1}]}})"});
  const std::string_view url = "http://test.example/effective";
  const std::string observation = R"({"resourceType":"Observation","status":"final","code":{"text":"x"},)";
  CHECK(check(*v, observation + R"("effectiveDateTime":"2020-09-10"})", url) == "");
  CHECK(check(*v, observation + R"("effectivePeriod":{"end":"2020-09-10"}})", url) ==
        "error required Observation.effectivePeriod.start");
  CHECK(check(*v, R"({"resourceType":"Observation","status":"final","code":{"text":"x"}})", url) ==
        "error required Observation.effective");
}

}  // namespace
}  // namespace fhirgate::fhir
