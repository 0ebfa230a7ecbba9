#include <doctest/doctest.h>

#include <string>
#include <string_view>

#include "fhir/validator.hpp"
#include "tests/support/paths.hpp"
#include "tests/support/r4.hpp"

namespace fhirgate::fhir {
namespace {

const Validator& validator() {
  static const Validator v(testing::r4_model(), testing::r4_terminology());
  return v;
}

// "severity expression" of every error and warning, joined by "; " (dom-6, no narrative, left out).
std::string check(std::string_view json, const ValidationOptions& options = {}) {
  auto node = parse_json(json);
  REQUIRE(node.ok());
  std::string out;
  for (const Issue& issue : validator().validate(*node, options).issues) {
    // dom-6 (no narrative) and the code systems only a terminology server holds are beside the point here.
    if (issue.severity == "information" || issue.diagnostics.starts_with("dom-6:") ||
        issue.diagnostics.find("needs a terminology server") != std::string::npos)
      continue;
    if (!out.empty()) out += "; ";
    out += issue.severity + " " + issue.expression;
  }
  return out;
}

// A collection Bundle of the given entries.
std::string collection(std::string_view entries) {
  return R"({"resourceType":"Bundle","type":"collection","entry":[)" + std::string(entries) + "]}";
}

constexpr std::string_view kComposition =
    R"("resourceType":"Composition","status":"final","type":{"text":"x"},"date":"2024-01-01","title":"t")";

std::string document(std::string_view composition_more, std::string_view composition_url,
                     std::string_view other_entries) {
  return R"({"resourceType":"Bundle","type":"document","timestamp":"2024-01-01T00:00:00Z",
    "identifier":{"system":"urn:ietf:rfc:3986","value":"urn:uuid:0c3151bd-1cbf-4d64-b04d-cd9187a4c6e0"},
    "entry":[{"fullUrl":")" +
         std::string(composition_url) + R"(","resource":{)" + std::string(kComposition) +
         std::string(composition_more) + "}}" + std::string(other_entries) + "]}";
}

TEST_CASE("Bundle rules: a fullUrl is absolute and agrees with the resource's type and id") {
  CHECK(check(collection(
            R"({"fullUrl":"http://a.org/fhir/Patient/1","resource":{"resourceType":"Patient","id":"1"}},
    {"fullUrl":"urn:uuid:9d7b9e0b-f1c9-4a5e-8f4e-0e6a1b2c3d4e","resource":{"resourceType":"Patient"}})")) ==
        "");
  CHECK(check(collection(R"({"fullUrl":"Patient/1","resource":{"resourceType":"Patient","id":"1"}})")) ==
        "error Bundle.entry[0]");
  CHECK(check(collection(
            R"({"fullUrl":"http://a.org/fhir/Patient/1","resource":{"resourceType":"Patient"}})")) ==
        "error Bundle.entry[0]");
  CHECK(check(collection(
            R"({"fullUrl":"http://a.org/fhir/Patient/1","resource":{"resourceType":"Observation","id":"1",
              "status":"final","code":{"text":"x"}}})")) == "error Bundle.entry[0]");
  // A different id alone is a warning (R4's own examples do that).
  CHECK(check(collection(R"({"fullUrl":"http://a.org/fhir/Patient/x-1","resource":{"resourceType":"Patient",
    "id":"1"}})")) == "warning Bundle.entry[0]");
}

TEST_CASE("Bundle rules: search results have ids and match the searched type") {
  const std::string searchset = R"({"resourceType":"Bundle","type":"searchset",
    "link":[{"relation":"self","url":"http://a.org/fhir/Patient?name=x"}],"entry":[)";
  CHECK(check(searchset +
              R"({"fullUrl":"http://a.org/fhir/Patient/1","resource":{"resourceType":"Patient","id":"1"},
    "search":{"mode":"match"}},{"fullUrl":"http://a.org/fhir/Organization/2","resource":{"resourceType":"Organization",
    "id":"2","name":"o"},"search":{"mode":"include"}}]})") == "");
  CHECK(check(searchset + R"({"fullUrl":"urn:uuid:9d7b9e0b-f1c9-4a5e-8f4e-0e6a1b2c3d4e","resource":{
    "resourceType":"Organization","name":"o"},"search":{"mode":"match"}}]})") ==
        "error Bundle.entry[0].resource; error Bundle.entry[0].resource");
}

TEST_CASE("Bundle rules: references resolve inside the Bundle by the R4 rules") {
  // urn:uuid references resolve by fullUrl; the resolved type must be one the element allows.
  CHECK(check(collection(R"({"fullUrl":"urn:uuid:00000000-0000-0000-0000-000000000001","resource":{
      "resourceType":"Patient","managingOrganization":{"reference":"urn:uuid:00000000-0000-0000-0000-000000000002"}}},
    {"fullUrl":"urn:uuid:00000000-0000-0000-0000-000000000002","resource":{"resourceType":"Organization","name":"o"}})")) ==
        "");
  CHECK(check(collection(R"({"fullUrl":"urn:uuid:00000000-0000-0000-0000-000000000001","resource":{
      "resourceType":"Patient","managingOrganization":{"reference":"urn:uuid:00000000-0000-0000-0000-000000000002"}}},
    {"fullUrl":"urn:uuid:00000000-0000-0000-0000-000000000002","resource":{"resourceType":"Practitioner"}})")) ==
        "error Bundle.entry[0].resource.managingOrganization");
  // Reference.type must agree with what the reference resolves to.
  CHECK(check(collection(R"({"fullUrl":"urn:uuid:00000000-0000-0000-0000-000000000001","resource":{
      "resourceType":"Observation","status":"final","code":{"text":"x"},
      "subject":{"reference":"urn:uuid:00000000-0000-0000-0000-000000000002","type":"Group"}}},
    {"fullUrl":"urn:uuid:00000000-0000-0000-0000-000000000002","resource":{"resourceType":"Location"}})")) ==
        "error Bundle.entry[0].resource.subject");
  // Two entries with one fullUrl (different versions): an unversioned reference is ambiguous.
  CHECK(check(collection(R"({"fullUrl":"http://a.org/Patient/1","resource":{"resourceType":"Patient","id":"1",
      "managingOrganization":{"reference":"Organization/2"}}},
    {"fullUrl":"http://a.org/Organization/2","resource":{"resourceType":"Organization","id":"2",
      "name":"o","meta":{"versionId":"1"}}},
    {"fullUrl":"http://a.org/Organization/2","resource":{"resourceType":"Organization","id":"2",
      "name":"o","meta":{"versionId":"2"}}})")) == "error Bundle.entry[0].resource.managingOrganization");
  // Version-specific: resolved by meta.versionId.
  CHECK(check(collection(R"({"fullUrl":"http://a.org/Patient/1","resource":{"resourceType":"Patient","id":"1",
      "managingOrganization":{"reference":"Organization/2/_history/2"}}},
    {"fullUrl":"http://a.org/Organization/2","resource":{"resourceType":"Organization","id":"2",
      "name":"o","meta":{"versionId":"1"}}},
    {"fullUrl":"http://a.org/Organization/2","resource":{"resourceType":"Organization","id":"2",
      "name":"o","meta":{"versionId":"2"}}})")) == "");
}

TEST_CASE("Bundle rules: a document's Composition finds what it references inside the Bundle") {
  const std::string patient =
      R"(,{"fullUrl":"http://a.org/Patient/1","resource":{"resourceType":"Patient","id":"1"}})";
  const std::string author = R"(,"author":[{"display":"x"}])";
  CHECK(check(document(R"(,"id":"c","subject":{"reference":"Patient/1"})" + author,
                       "http://a.org/Composition/c", patient)) == "");
  // A relative reference has no RESTful base in a urn:uuid entry, and a urn:uuid entry is no match for
  // Type/id: not found, and the Patient is then not reachable from the Composition.
  CHECK(check(document(R"(,"subject":{"reference":"Patient/1"})" + author,
                       "urn:uuid:00000000-0000-0000-0000-000000000009",
                       R"(,{"fullUrl":"urn:uuid:00000000-0000-0000-0000-000000000001","resource":{
                         "resourceType":"Patient","id":"1"}})")) ==
        "error Bundle.entry[0].resource.subject; error Bundle.entry[1]");
  // A Provenance that only points at the document's content is reachable backwards: no error.
  CHECK(check(document(
            R"(,"id":"c","subject":{"reference":"Patient/1"})" + author, "http://a.org/Composition/c",
            patient + R"(,{"fullUrl":"http://a.org/Provenance/p","resource":{"resourceType":"Provenance",
                         "id":"p","target":[{"reference":"Patient/1"}],"recorded":"2024-01-01T00:00:00Z",
                         "agent":[{"who":{"display":"x"}}]}})")) == "");
}

TEST_CASE("Bundle rules: relative fullUrls are errors, but references still resolve against agreeing ones") {
  const std::string author = R"(,"author":[{"display":"x"}])";
  const std::string patient = R"(,{"fullUrl":"Patient/1","resource":{"resourceType":"Patient","id":"1"}})";
  CHECK(check(document(R"(,"id":"c","subject":{"reference":"Patient/1"})" + author, "Composition/c",
                       patient)) == "error Bundle.entry[0]; error Bundle.entry[1]");
  // The Composition's fullUrl disagrees with its id: no base, so the Patient is not found.
  CHECK(check(document(R"(,"id":"c2","subject":{"reference":"Patient/1"})" + author, "Composition/c",
                       patient)) ==
        "error Bundle.entry[0]; error Bundle.entry[1]; error Bundle.entry[0].resource.subject; error "
        "Bundle.entry[1]");
}

TEST_CASE("Bundle rules: a message's focus is inside the Bundle") {
  const std::string message = R"({"resourceType":"Bundle","type":"message","timestamp":"2024-01-01T00:00:00Z",
    "entry":[{"fullUrl":"http://a.org/MessageHeader/m","resource":{"resourceType":"MessageHeader","id":"m",
      "eventCoding":{"system":"http://example.org/events","code":"x"},"source":{"endpoint":"http://a.org"},
      "focus":[{"reference":"Patient/)";
  const std::string rest = R"("}]}},{"fullUrl":"http://a.org/Patient/1","resource":{"resourceType":"Patient",
    "id":"1"}}]})";
  CHECK(check(message + "1" + rest) == "");
  CHECK(check(message + "2" + rest) == "error Bundle.entry[0].resource.focus[0]; warning Bundle.entry[1]");
}

TEST_CASE("References: a bare id is an error, a URI with any scheme is absolute") {
  const auto with = [](std::string_view reference) {
    return check(R"({"resourceType":"Patient","managingOrganization":{"reference":")" +
                 std::string(reference) + R"("}})");
  };
  CHECK(with("org-1") == "error Patient.managingOrganization.reference");
  CHECK(with("Thing/1") == "warning Patient.managingOrganization.reference");
  CHECK(with("resource:0") == "");
}

TEST_CASE("Parameters: references resolve against the parameters' resources by their fullUrl extension") {
  const auto with = [](std::string_view type) {
    return check(R"({"resourceType":"Parameters","parameter":[
      {"name":"r","resource":{"resourceType":"Observation","status":"final","code":{"text":"x"},
        "subject":{"reference":"urn:uuid:00000000-0000-0000-0000-000000000001"}}},
      {"name":"s","extension":[{"url":"http://hl7.org/fhir/StructureDefinition/parameters-fullUrl",
        "valueUri":"urn:uuid:00000000-0000-0000-0000-000000000001"}],"resource":{"resourceType":")" +
                 std::string(type) + R"(","name":"x"}}]})");
  };
  CHECK(with("Location") == "");
  CHECK(with("Organization") == "error Parameters.parameter[0].resource.subject");
}

TEST_CASE("Parameters: with resolve_references, a Type/id names a parameter's resource or is an error") {
  const auto with = [](std::string_view id) {
    ValidationOptions options;
    options.resolve_references = true;
    return check(R"({"resourceType":"Parameters","parameter":[
      {"name":"p","resource":{"resourceType":"Patient","id":"1"}},
      {"name":"c","resource":{"resourceType":"Coverage","status":"active","beneficiary":{"reference":"Patient/)" +
                     std::string(id) + R"("},"payor":[{"display":"x"}]}}]})",
                 options);
  };
  CHECK(with("1") == "");
  CHECK(with("2") == "error Parameters.parameter[1].resource.beneficiary");
}

TEST_CASE("Contained resources: dom-3 counts references from the narrative") {
  const std::string contained =
      R"({"resourceType":"Patient","contained":[{"resourceType":"Binary","id":"img","contentType":"image/png"}],)";
  CHECK(
      check(
          contained +
          R"("text":{"status":"generated","div":"<div xmlns=\"http://www.w3.org/1999/xhtml\"><img src=\"#img\"/></div>"}})") ==
      "");
  CHECK(check(contained + R"("photo":[{"url":"#img"}]})") == "");
  CHECK(check(contained + R"("active":true})") == "error Patient.contained[0]");
  // One that refers to its container is fine.
  CHECK(check(R"({"resourceType":"Patient","contained":[{"resourceType":"Organization","id":"o",
    "name":"y","partOf":{"reference":"#"}}]})") == "");
}

TEST_CASE("Element ids are unique within a resource") {
  CHECK(
      check(
          R"({"resourceType":"Patient","name":[{"id":"a","family":"x"}],"identifier":[{"id":"b","value":"1"}]})") ==
      "");
  CHECK(
      check(
          R"({"resourceType":"Patient","identifier":[{"id":"a","value":"1"}],"name":[{"id":"a","family":"x"}]})") ==
      "error Patient.name[0]");
  // A contained resource's ids are its own.
  CHECK(
      check(
          R"({"resourceType":"Patient","name":[{"id":"a","family":"x"}],"managingOrganization":{"reference":"#o"},
    "contained":[{"resourceType":"Organization","id":"o","name":"y","alias":["z"],"_alias":[{"id":"a"}]}]})") ==
      "");
}

TEST_CASE("Security checks: strings that look like HTML markup are errors when asked for") {
  const std::string patient = R"({"resourceType":"Patient","name":[{"text":"A <script>x</script>"}],
    "text":{"status":"generated","div":"<div xmlns=\"http://www.w3.org/1999/xhtml\"><b>A</b></div>"}})";
  CHECK(check(patient) == "");
  ValidationOptions options;
  options.security_checks = true;
  CHECK(check(patient, options) == "error Patient.name[0].text");
  CHECK(check(R"({"resourceType":"Patient","name":[{"text":"a < b and c > d"}]})", options) == "");
}

TEST_CASE("Example URLs are errors when they are not allowed") {
  const std::string patient =
      R"({"resourceType":"Patient","identifier":[{"system":"http://ids.example.org/mrn",
    "value":"1"}],"photo":[{"url":"https://notexample.org/p.png"}]})";
  CHECK(check(patient) == "");
  ValidationOptions options;
  options.allow_example_urls = false;
  CHECK(check(patient, options) == "error Patient.identifier[0].system");
}

}  // namespace
}  // namespace fhirgate::fhir
