// Profiles: the partnership profiles, snapshot generation from differentials, and slicing.
#include <doctest/doctest.h>

#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "fhir/files.hpp"
#include "fhir/profiles.hpp"
#include "fhir/validator.hpp"
#include "tests/support/paths.hpp"
#include "tests/support/r4.hpp"

namespace fhirgate::fhir {
namespace {

constexpr std::string_view kPatientProfile =
    "https://fhir.partnership.example/StructureDefinition/partnership-patient";
constexpr std::string_view kConsentProfile =
    "https://fhir.partnership.example/StructureDefinition/partnership-consent";

std::shared_ptr<const Model> shared_model() {
  return testing::r4_model();
}

std::shared_ptr<const Terminology> shared_terminology() {
  return testing::r4_terminology();
}

Node json(std::string_view text) {
  auto node = parse_json(text);
  REQUIRE_MESSAGE(node.ok(), text);
  return *node;
}

// Small differential-only profiles for the slicing rules.
constexpr std::string_view kClosedPatient =
    R"({"resourceType":"StructureDefinition","url":"http://test.example/closed",
  "name":"Closed","status":"draft","kind":"resource","abstract":false,"type":"Patient","derivation":"constraint",
  "baseDefinition":"http://hl7.org/fhir/StructureDefinition/Patient","differential":{"element":[
  {"id":"Patient.identifier","path":"Patient.identifier","slicing":{"discriminator":[{"type":"value","path":"system"}],"rules":"closed"}},
  {"id":"Patient.identifier:a","path":"Patient.identifier","sliceName":"a","max":"1"},
  {"id":"Patient.identifier:a.system","path":"Patient.identifier.system","fixedUri":"http://a.example"},
  {"id":"Patient.identifier:b","path":"Patient.identifier","sliceName":"b"},
  {"id":"Patient.identifier:b.system","path":"Patient.identifier.system","fixedUri":"http://b.example"},
  {"id":"Patient.gender","path":"Patient.gender","min":1,"fixedCode":"female"}]}})";

constexpr std::string_view kTypedObservation =
    R"({"resourceType":"StructureDefinition","url":"http://test.example/typed",
  "name":"Typed","status":"draft","kind":"resource","abstract":false,"type":"Observation","derivation":"constraint",
  "baseDefinition":"http://hl7.org/fhir/StructureDefinition/Observation","differential":{"element":[
  {"id":"Observation.value[x]","path":"Observation.value[x]","slicing":{"discriminator":[{"type":"type","path":"$this"}],"rules":"closed"}},
  {"id":"Observation.value[x]:valueQuantity","path":"Observation.value[x]","sliceName":"valueQuantity","min":1,
   "type":[{"code":"Quantity"}]},
  {"id":"Observation.value[x]:valueQuantity.system","path":"Observation.value[x].system","min":1,"fixedUri":"http://unitsofmeasure.org"}]}})";

constexpr std::string_view kPatternObservation =
    R"({"resourceType":"StructureDefinition","url":"http://test.example/pattern",
  "name":"Pattern","status":"draft","kind":"resource","abstract":false,"type":"Observation","derivation":"constraint",
  "baseDefinition":"http://hl7.org/fhir/StructureDefinition/Observation","differential":{"element":[
  {"id":"Observation.category","path":"Observation.category","slicing":{"discriminator":[{"type":"pattern","path":"$this"}],"rules":"open"}},
  {"id":"Observation.category:vs","path":"Observation.category","sliceName":"vs","min":1,"max":"1",
   "patternCodeableConcept":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"vital-signs"}]}}]}})";

constexpr std::string_view kExtensionPatient =
    R"({"resourceType":"StructureDefinition","url":"http://test.example/ext-patient",
  "name":"ExtPatient","status":"draft","kind":"resource","abstract":false,"type":"Patient","derivation":"constraint",
  "baseDefinition":"http://hl7.org/fhir/StructureDefinition/Patient","differential":{"element":[
  {"id":"Patient.extension","path":"Patient.extension","slicing":{"discriminator":[{"type":"value","path":"url"}],"rules":"open"}},
  {"id":"Patient.extension:sport","path":"Patient.extension","sliceName":"sport","min":1,"max":"1",
   "type":[{"code":"Extension","profile":["http://test.example/sport"]}]}]}})";

constexpr std::string_view kSportExtension =
    R"({"resourceType":"StructureDefinition","url":"http://test.example/sport",
  "name":"Sport","status":"draft","kind":"complex-type","abstract":false,"type":"Extension","derivation":"constraint",
  "baseDefinition":"http://hl7.org/fhir/StructureDefinition/Extension","differential":{"element":[
  {"id":"Extension.url","path":"Extension.url","fixedUri":"http://test.example/sport"},
  {"id":"Extension.value[x]","path":"Extension.value[x]","min":1,"type":[{"code":"string"}]}]}})";

const Validator& validator() {
  static const std::unique_ptr<Validator> v = [] {
    auto made = std::make_unique<Validator>(shared_model(), shared_terminology());
    const auto status =
        load_profiles_dir(*made, *shared_model(), fhirgate::testing::source_path("profiles/partnership"));
    REQUIRE_MESSAGE(status.ok(), (status.ok() ? std::string() : status.error().issues.front().diagnostics));
    for (const std::string_view sd :
         {kClosedPatient, kTypedObservation, kPatternObservation, kSportExtension, kExtensionPatient}) {
      const auto added = made->add_profile(json(sd));
      REQUIRE_MESSAGE(added.ok(), (added.ok() ? std::string() : added.error().issues.front().diagnostics));
    }
    return made;
  }();
  return *v;
}

// "severity code expression" of every error and warning (dom-6 left out), joined by "; ".
std::string check(std::string_view resource, std::string_view profile) {
  ValidationOptions options;
  if (!profile.empty()) options.profiles.emplace_back(profile);
  const ValidationResult result = validator().validate(json(resource), options);
  std::string out;
  for (const Issue& issue : result.issues) {
    // dom-6 (no narrative) and the code systems only a terminology server holds are beside the point here.
    if (issue.severity == "information" || issue.diagnostics.starts_with("dom-6:") ||
        issue.diagnostics.find("needs a terminology server") != std::string::npos)
      continue;
    if (!out.empty()) out += "; ";
    out += issue.severity + " " + issue.code + " " + issue.expression;
  }
  return out;
}

std::string diagnostics(std::string_view resource, std::string_view profile) {
  ValidationOptions options;
  options.profiles.emplace_back(profile);
  std::string out;
  for (const Issue& issue : validator().validate(json(resource), options).issues) {
    if (issue.severity == "error") out += issue.diagnostics + "\n";
  }
  return out;
}

std::string patient(std::string_view identifiers, std::string_view rest = R"("birthDate":"1970-01-01",)") {
  return R"({"resourceType":"Patient",)" + std::string(rest) + R"("identifier":[)" +
         std::string(identifiers) + R"(],"name":[{"family":"Chalmers","given":["Peter"]}]})";
}

std::string nhs(std::string_view number) {
  return R"({"system":"https://fhir.nhs.uk/Id/nhs-number","value":")" + std::string(number) + R"("})";
}

TEST_CASE("Profiles: the partnership Patient accepts a valid NHS number") {
  CHECK(check(patient(nhs("9434765919")), kPatientProfile) == "");
  CHECK(validator().knows_profile(kPatientProfile));
  CHECK(validator().knows_profile(std::string(kPatientProfile) + "|1.0.0"));
}

TEST_CASE("Profiles: an identifier of another system is fine (open slicing)") {
  CHECK(check(patient(R"({"system":"http://hospital.example/mrn","value":"123"},)" + nhs("9434765919")),
              kPatientProfile) == "");
}

TEST_CASE("Profiles: the partnership Patient requires the NHS number slice") {
  const std::string no_nhs = patient(R"({"system":"http://hospital.example/mrn","value":"123"})");
  CHECK(check(no_nhs, kPatientProfile) == "error required Patient.identifier");
  CHECK(diagnostics(no_nhs, kPatientProfile) ==
        "Slice 'nhsNumber' requires at least 1 item(s), but found 0 (profile " +
            std::string(kPatientProfile) + ")\n");
  CHECK(check(R"({"resourceType":"Patient","birthDate":"1970-01-01","name":[{"family":"X"}]})",
              kPatientProfile) == "error required Patient.identifier; error required Patient.identifier");
  CHECK(check(patient(nhs("9434765919") + "," + nhs("9434765919")), kPatientProfile) ==
        "error structure Patient.identifier");
}

TEST_CASE("Profiles: nhs-1 checks ten digits and the Modulus 11 check digit") {
  CHECK(check(patient(nhs("9434765918")), kPatientProfile) == "error invariant Patient.identifier[0].value");
  CHECK(diagnostics(patient(nhs("9434765918")), kPatientProfile).starts_with("nhs-1: "));
  CHECK(check(patient(nhs("943476591")), kPatientProfile) == "error invariant Patient.identifier[0].value");
  CHECK(check(patient(nhs("94347659190")), kPatientProfile) == "error invariant Patient.identifier[0].value");
  CHECK(check(patient(nhs("943476591X")), kPatientProfile) == "error invariant Patient.identifier[0].value");
  CHECK(check(patient(nhs("4010232137")), kPatientProfile) == "");
  // Remainder 1 gives check digit 10, which no number can carry.
  CHECK(check(patient(nhs("1000000010")), kPatientProfile) == "error invariant Patient.identifier[0].value");
  CHECK(check(patient(R"({"system":"https://fhir.nhs.uk/Id/nhs-number"})"), kPatientProfile) ==
        "error required Patient.identifier[0].value");
}

TEST_CASE("Profiles: the partnership Patient requires a family name and a birth date") {
  CHECK(check(R"({"resourceType":"Patient","birthDate":"1970-01-01","identifier":[)" + nhs("9434765919") +
                  R"(],"name":[{"given":["Peter"]}]})",
              kPatientProfile) == "error required Patient.name[0].family");
  CHECK(check(patient(nhs("9434765919"), ""), kPatientProfile) == "error required Patient.birthDate");
  CHECK(
      check(R"({"resourceType":"Patient","birthDate":"1970-01-01","identifier":[)" + nhs("9434765919") + "]}",
            kPatientProfile) == "error required Patient.name");
}

TEST_CASE("Profiles: a meta.profile claim applies the profile; without it only the base rules apply") {
  const std::string claimed = R"({"resourceType":"Patient","meta":{"profile":[")" +
                              std::string(kPatientProfile) + R"("]},"name":[{"family":"X"}]})";
  CHECK(check(claimed, "") ==
        "error required Patient.identifier; error required Patient.identifier; "
        "error required Patient.birthDate");
  CHECK(check(R"({"resourceType":"Patient","name":[{"family":"X"}]})", "") == "");
  CHECK(check(R"({"resourceType":"Patient","meta":{"profile":["http://unknown.example/p"]}})", "") ==
        "warning not-supported Patient.meta.profile[0]");
  CHECK(check(R"({"resourceType":"Observation","status":"final","code":{"text":"x"}})", kPatientProfile) ==
        "error structure Observation");
}

TEST_CASE("Profiles: closed slicing and a differential-only profile get a snapshot and are enforced") {
  const auto with = [](std::string_view identifiers, std::string_view gender = "female") {
    return check(R"({"resourceType":"Patient","gender":")" + std::string(gender) + R"(","identifier":[)" +
                     std::string(identifiers) + "]}",
                 "http://test.example/closed");
  };
  CHECK(with(R"({"system":"http://a.example","value":"1"},{"system":"http://b.example","value":"2"})") == "");
  CHECK(with(R"({"system":"http://c.example","value":"1"})") == "error structure Patient.identifier[0]");
  CHECK(with(R"({"system":"http://a.example","value":"1"},{"system":"http://a.example","value":"2"})") ==
        "error structure Patient.identifier");
  CHECK(with(R"({"system":"http://a.example","value":"1"})", "male") == "error value Patient.gender");
  CHECK(check(R"({"resourceType":"Patient"})", "http://test.example/closed") ==
        "error required Patient.gender");
}

TEST_CASE("Profiles: type discriminator on a choice element") {
  const std::string base = R"({"resourceType":"Observation","status":"final","code":{"text":"x"},)";
  CHECK(check(base + R"("valueQuantity":{"value":1,"system":"http://unitsofmeasure.org","code":"mg"}})",
              "http://test.example/typed") == "");
  CHECK(
      check(base + R"("valueQuantity":{"value":1,"code":"mg"}})", "http://test.example/typed") ==
      "error invariant Observation.valueQuantity; error required Observation.valueQuantity.system");  // qty-3
                                                                                                      // too
  CHECK(check(base + R"("valueString":"x"})", "http://test.example/typed") ==
        "error structure Observation.valueString; error required Observation.value");
  CHECK(check(base + R"("valueInteger":1})", "http://test.example/typed") ==
        "error structure Observation.valueInteger; error required Observation.value");
}

TEST_CASE("Profiles: pattern discriminator") {
  const std::string base =
      R"({"resourceType":"Observation","status":"final","code":{"text":"x"},"category":[)";
  const std::string vs =
      R"({"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"vital-signs"}]})";
  const std::string lab =
      R"({"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"laboratory"}]})";
  CHECK(check(base + vs + "]}", "http://test.example/pattern") == "");
  CHECK(check(base + lab + "," + vs + "]}", "http://test.example/pattern") == "");
  CHECK(check(base + lab + "]}", "http://test.example/pattern") == "error required Observation.category");
  CHECK(check(base + vs + "," + vs + "]}", "http://test.example/pattern") ==
        "error structure Observation.category");
}

TEST_CASE("Profiles: extension slices by url and their extension profiles") {
  const std::string base = R"({"resourceType":"Patient","extension":[)";
  CHECK(check(base + R"({"url":"http://test.example/sport","valueString":"rowing"}]})",
              "http://test.example/ext-patient") == "");
  CHECK(check(base + R"({"url":"http://test.example/other","valueString":"x"}]})",
              "http://test.example/ext-patient") == "error required Patient.extension");
  CHECK(check(base + R"({"url":"http://test.example/sport","valueInteger":1}]})",
              "http://test.example/ext-patient") == "error structure Patient.extension[0].valueInteger");
}

TEST_CASE("Profiles: the partnership Consent") {
  const std::string scope =
      R"("scope":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/consentscope","code":"patient-privacy"}]},)";
  const std::string category = R"("category":[{"coding":[{"system":"http://loinc.org","code":"59284-0"}]}],)";
  const std::string valid = R"({"resourceType":"Consent","status":"active",)" + scope + category +
                            R"("patient":{"reference":"Patient/1"},"dateTime":"2024-01-02T10:00:00Z",
    "policyRule":{"text":"partnership"},"provision":{"type":"deny"}})";
  CHECK(check(valid, kConsentProfile) == "");
  CHECK(
      check(
          R"({"resourceType":"Consent","status":"active",)" + scope + category +
              R"("patient":{"reference":"Patient/1"},"policyRule":{"text":"p"},"provision":{"period":{"start":"2024-01-01"}}})",
          kConsentProfile) == "error required Consent.dateTime; error required Consent.provision.type");
  CHECK(check(R"({"resourceType":"Consent","status":"active",
    "scope":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/consentscope","code":"research"}]},)" +
                  category +
                  R"("policyRule":{"text":"p"},"dateTime":"2024-01-02","provision":{"type":"permit"}})",
              kConsentProfile) == "error value Consent.scope; error required Consent.patient");
  CHECK(check(R"({"resourceType":"Consent","status":"active",)" + scope + category +
                  R"("patient":{"reference":"Group/1"},"dateTime":"2024-01-02","policyRule":{"text":"p"}})",
              kConsentProfile) ==
        "error structure Consent.patient.reference; error required Consent.provision");
}

TEST_CASE("Profiles: the project profiles validate cleanly as StructureDefinitions") {
  for (const char* file : {"profiles/partnership/StructureDefinition-partnership-patient.json",
                           "profiles/partnership/StructureDefinition-partnership-consent.json"}) {
    CAPTURE(file);
    auto text = read_file(fhirgate::testing::source_path(file));
    REQUIRE(text.ok());
    const Node sd = json(*text);
    std::string errors;
    for (const Issue& issue : validator().validate(sd).issues) {
      if (issue.severity == "error") errors += issue.expression + ": " + issue.diagnostics + "\n";
    }
    CHECK_MESSAGE(errors.empty(), errors);
    // The checked-in snapshot is what the snapshot generator makes of the differential.
    Node differential_only = sd;
    differential_only.erase("snapshot");
    auto generated = validator().generate_snapshot(differential_only);
    REQUIRE(generated.ok());
    CHECK(*generated->find("snapshot") == *sd.find("snapshot"));
  }
}

TEST_CASE("Profiles: concurrent validation against a profile gives the same issues on every thread") {
  const Node good = json(patient(nhs("9434765919")));
  const Node bad = json(patient(nhs("9434765918")));
  ValidationOptions options;
  options.profiles.emplace_back(kPatientProfile);
  const std::size_t expected_bad = validator().validate(bad, options).issues.size();
  std::vector<int> failures(4, 0);
  std::vector<std::thread> threads;
  for (std::size_t t = 0; t < failures.size(); ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 200; ++i) {
        if (validator().validate(good, options).has_errors()) ++failures[t];
        if (validator().validate(bad, options).issues.size() != expected_bad) ++failures[t];
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (const int f : failures) CHECK(f == 0);
}

TEST_CASE("Profiles: add_profile refuses what is not a constraint profile") {
  Validator v(shared_model(), shared_terminology());
  CHECK_FALSE(v.add_profile(json(R"({"resourceType":"Patient"})")).ok());
  CHECK_FALSE(
      v.add_profile(
           json(R"({"resourceType":"StructureDefinition","url":"http://x/y","derivation":"specialization"})"))
          .ok());
  CHECK_FALSE(v.add_profile(
                   json(R"({"resourceType":"StructureDefinition","url":"http://x/y","derivation":"constraint",
    "type":"Patient","baseDefinition":"http://hl7.org/fhir/StructureDefinition/Patient",
    "differential":{"element":[{"id":"Patient.nickname","path":"Patient.nickname","min":1}]}})"))
                  .ok());
  CHECK_FALSE(v.add_profile(
                   json(R"({"resourceType":"StructureDefinition","url":"http://x/y","derivation":"constraint",
    "type":"Patient","baseDefinition":"http://unknown.example/base","differential":{"element":[]}})"))
                  .ok());
}

}  // namespace
}  // namespace fhirgate::fhir
