// Declarative feed mappings: loading (with the mistakes a partner's mapping can hold, located by line)
// and mapping records through every transform.
#include "mappers/feed_mapping.hpp"

#include <doctest/doctest.h>

#include <memory>
#include <string>
#include <vector>

#include "fhir/json.hpp"
#include "tests/support/paths.hpp"
#include "tests/support/r4.hpp"

namespace fhirgate::mappers {
namespace {

using fhir::Node;

const fhir::Model& model() {
  return *testing::r4_model();
}

// A CSV Patient mapping with the given fields (JSON array text) over columns A, B, C.
std::string csv_mapping(const std::string& fields, const std::string& extra = "") {
  return R"({"resourceType": "Patient", "format": "csv",
  "csv": {"columns": ["A", "B", "C"]},)" +
         extra + R"(
  "fields": )" +
         fields + "}";
}

std::shared_ptr<const FeedMapping> load(const std::string& text) {
  auto m = load_feed_mapping(model(), text, "test.json");
  REQUIRE_MESSAGE(m, (m ? "" : m.error().issues.front().diagnostics));
  return *m;
}

std::string load_error(const std::string& text) {
  auto m = load_feed_mapping(model(), text, "test.json");
  REQUIRE_FALSE(m);
  return m.error().issues.front().diagnostics;
}

MappedRecord map_row(const FeedMapping& m, std::vector<std::string> row) {
  static const std::vector<std::string> header = {"A", "B", "C"};
  auto bound = CsvHeader::bind(m, header);
  REQUIRE(bound);
  CsvFeedRecord record(*bound, row);
  return map_record(m, record);
}

// The mapped value at a field of the resource, as JSON text.
std::string json_of(const MappedRecord& r) {
  return fhir::write_json(r.resource);
}

TEST_CASE("feed mapping: the NHS number transform normalises and applies the Modulus 11 check") {
  CHECK(valid_nhs_number("9434765919"));
  CHECK_FALSE(valid_nhs_number("9434765910"));  // wrong check digit
  CHECK_FALSE(valid_nhs_number("943476591"));   // nine digits
  CHECK_FALSE(valid_nhs_number("94347659AA"));
  auto m =
      load(csv_mapping(R"([{"path": "identifier[0].value", "column": "A", "transforms": ["nhs-number"]}])"));
  auto ok = map_row(*m, {"943 476 5919", "", ""});
  REQUIRE(ok.kind == MappedRecord::Kind::mapped);
  CHECK(json_of(ok) == R"({"resourceType":"Patient","identifier":[{"value":"9434765919"}]})");
  CHECK(map_row(*m, {"943-476-5919", "", ""}).kind == MappedRecord::Kind::mapped);
  auto bad = map_row(*m, {"943 476 5910", "", ""});
  CHECK(bad.kind == MappedRecord::Kind::rejected);
  CHECK(bad.reason.find("column 'A'") != std::string::npos);
  CHECK(bad.reason.find("Modulus 11") != std::string::npos);
}

TEST_CASE("feed mapping: date formats give FHIR dates, and impossible dates reject the row") {
  auto m = load(csv_mapping(
      R"([{"path": "birthDate", "column": "A", "transforms": [{"date": ["dd/mm/yyyy", "yyyymmdd", "d.m.yy"]}]}])"));
  CHECK(json_of(map_row(*m, {"14/02/1941", "", ""})).find(R"("birthDate":"1941-02-14")") !=
        std::string::npos);
  CHECK(json_of(map_row(*m, {"19800229", "", ""})).find(R"("birthDate":"1980-02-29")") != std::string::npos);
  CHECK(json_of(map_row(*m, {"3.7.99", "", ""})).find(R"("birthDate":"1999-07-03")") != std::string::npos);
  CHECK(map_row(*m, {"29/02/1981", "", ""}).kind == MappedRecord::Kind::rejected);  // not a leap year
  auto partial = load(csv_mapping(
      R"([{"path": "birthDate", "column": "A", "transforms": [{"date": ["mm/yyyy", "yyyy"]}]}])"));
  CHECK(json_of(map_row(*partial, {"07/1947", "", ""})).find(R"("birthDate":"1947-07")") !=
        std::string::npos);
  CHECK(json_of(map_row(*partial, {"1947", "", ""})).find(R"("birthDate":"1947")") != std::string::npos);
  CHECK(map_row(*partial, {"13/1947", "", ""}).kind == MappedRecord::Kind::rejected);
  CHECK(map_row(*m, {"14/13/1941", "", ""}).kind == MappedRecord::Kind::rejected);
  const auto wrong = map_row(*m, {"1941-02-14", "", ""});
  CHECK(wrong.kind == MappedRecord::Kind::rejected);
  CHECK(wrong.reason.find("dd/mm/yyyy or yyyymmdd or d.m.yy") != std::string::npos);
}

TEST_CASE("feed mapping: code maps, otherwise, default, trimming and case") {
  auto m = load(csv_mapping(R"([
    {"path": "gender", "column": "A", "transforms": ["trim", "lower", {"map": {"m": "male", "f": "female"}, "otherwise": "unknown"}]},
    {"path": "name[0].family", "column": "B", "transforms": ["trim", "title"]},
    {"path": "name[0].given[0]", "column": "C", "transforms": ["trim", "upper", {"default": "UNKNOWN"}]}])"));
  auto r = map_row(*m, {" M ", "  o'brien-SMITH ", ""});
  REQUIRE(r.kind == MappedRecord::Kind::mapped);
  CHECK(
      json_of(r) ==
      R"({"resourceType":"Patient","gender":"male","name":[{"family":"O'Brien-Smith","given":["UNKNOWN"]}]})");
  CHECK(json_of(map_row(*m, {"X", "a", "b"})).find(R"("gender":"unknown")") != std::string::npos);
  // Latin-1 letters change case too (UTF-8); ß and the multiplication sign stay.
  CHECK(
      json_of(map_row(*m, {"f",
                           "\xC3\x89LODIE STRA\xC3\x9F"
                           "E",
                           "\xC3\xA9mile \xC3\x97"})) ==
      "{\"resourceType\":\"Patient\",\"gender\":\"female\",\"name\":[{\"family\":\"\xC3\x89lodie Stra\xC3\x9F"
      "e\","
      "\"given\":[\"\xC3\x89MILE \xC3\x97\"]}]}");
  // "otherwise" may come before "map".
  auto reordered = load(csv_mapping(
      R"([{"path": "gender", "column": "A", "transforms": [{"otherwise": "other", "map": {"M": "male"}}]}])"));
  CHECK(json_of(map_row(*reordered, {"Q", "", ""})).find(R"("gender":"other")") != std::string::npos);
  auto strict =
      load(csv_mapping(R"([{"path": "gender", "column": "A", "transforms": [{"map": {"M": "male"}}]}])"));
  const auto unmapped = map_row(*strict, {"Male", "", ""});
  CHECK(unmapped.kind == MappedRecord::Kind::rejected);
  CHECK(unmapped.reason.find("'Male' is not one of the mapped values") != std::string::npos);
}

TEST_CASE("feed mapping: constants, booleans, skip conditions and required fields") {
  auto m = load(csv_mapping(R"([
    {"path": "identifier[0].system", "constant": "https://fhir.nhs.uk/Id/nhs-number"},
    {"path": "identifier[0].value", "column": "A"},
    {"path": "active", "constant": true},
    {"path": "name[0].family", "column": "B", "required": true}])",
                            R"("skipWhen": [{"column": "C", "equals": "Deceased"}],)"));
  auto r = map_row(*m, {"123", "Smith", ""});
  CHECK(
      json_of(r) ==
      R"({"resourceType":"Patient","identifier":[{"system":"https://fhir.nhs.uk/Id/nhs-number","value":"123"}],)"
      R"("active":true,"name":[{"family":"Smith"}]})");
  // No data reached identifier[0]: the constant system alone does not make an identifier.
  CHECK(json_of(map_row(*m, {"", "Smith", ""})) ==
        R"({"resourceType":"Patient","active":true,"name":[{"family":"Smith"}]})");
  const auto skipped = map_row(*m, {"1", "Smith", "Deceased"});
  CHECK(skipped.kind == MappedRecord::Kind::skipped);
  CHECK(skipped.reason == "column 'C' is 'Deceased'");
  const auto missing = map_row(*m, {"1", " ", ""});
  CHECK(missing.kind == MappedRecord::Kind::mapped);  // a space is a value until trimmed
  const auto empty = map_row(*m, {"1", "", ""});
  CHECK(empty.kind == MappedRecord::Kind::rejected);
  CHECK(empty.reason.find("is required but empty") != std::string::npos);
}

TEST_CASE("feed mapping: a patient lookup leaves a reference to resolve when the row is written") {
  auto m = load(R"({"resourceType": "Consent", "format": "csv", "csv": {"columns": ["A", "B", "C"]},
    "fields": [{"path": "patient.reference", "column": "A",
                "transforms": ["nhs-number", {"patientByIdentifier": "https://fhir.nhs.uk/Id/nhs-number"}]}]})");
  auto r = map_row(*m, {"943 476 5919", "", ""});
  REQUIRE(r.lookups.size() == 1);
  CHECK(r.lookups[0].value == "9434765919");
  CHECK(r.lookups[0].system == "https://fhir.nhs.uk/Id/nhs-number");
  set_at(r.resource, r.lookups[0].steps, Node::string("Patient/p1"));
  CHECK(json_of(r) == R"({"resourceType":"Consent","patient":{"reference":"Patient/p1"}})");
}

TEST_CASE("feed mapping: mistakes are refused at load with the file, line and reason") {
  const std::string unknown_column = R"({"resourceType": "Patient", "format": "csv",
  "csv": {"columns": ["A", "B"]},
  "fields": [
    {"path": "gender", "column": "A"},
    {"path": "birthDate", "column": "DOB"}
  ]})";
  CHECK(load_error(unknown_column) == "test.json:5: unknown column 'DOB' (not in csv.columns)");
  CHECK(load_error(csv_mapping(R"([
    {"path": "name[0].surname", "column": "A"}])")) ==
        "test.json:4: unknown element 'surname' in Patient.name");
  CHECK(load_error(csv_mapping(R"([{"path": "name[0]", "column": "A"}])"))
            .find("Patient.name is not a primitive element") != std::string::npos);
  CHECK(load_error(csv_mapping(R"([{"path": "gender[0]", "column": "A"}])")).find("is not a list") !=
        std::string::npos);
  CHECK(load_error(csv_mapping(R"([
    {"path": "gender", "column": "A",
     "transfroms": ["trim"]}])")) == "test.json:5: unknown setting 'transfroms'");
  CHECK(load_error(R"({"resourceType": "Patient", "format": "csv",
  "csv": {"columns": ["A"], "delimter": ";"}, "fields": [{"path": "gender", "column": "A"}]})") ==
        "test.json:2: unknown setting 'delimter'");
  CHECK(
      load_error(
          csv_mapping(
              R"([{"path": "gender", "column": "A", "transforms": [{"map": {"M": "male"}, "date": "yyyy"}]}])"))
          .find("names one kind") != std::string::npos);
  CHECK(load_error(
            csv_mapping(R"([{"path": "birthDate", "column": "A", "transforms": [{"date": "dd/yyyy"}]}])"))
            .find("date format 'dd/yyyy'") != std::string::npos);
  CHECK(load_error(csv_mapping(R"([{"path": "gender", "column": "A", "transforms": ["shout"]}])"))
            .find("unknown transform 'shout'") != std::string::npos);
  CHECK(load_error(
            csv_mapping(R"([{"path": "birthDate", "column": "A", "transforms": [{"date": "dd/qq/yyyy"}]}])"))
            .find("date format 'dd/qq/yyyy'") != std::string::npos);
  const std::string bad_xpath = R"({"resourceType": "Patient", "format": "xml",
  "xml": {"namespaces": {"w": "urn:w"}, "record": "/w:Export/w:Client"},
  "fields": [
    {"path": "gender", "xpath": "w:Sex[@code="}
  ]})";
  const auto xpath_error = load_error(bad_xpath);
  CHECK(xpath_error.starts_with("test.json:4: XPath 'w:Sex[@code=' does not compile"));
  const std::string undeclared_prefix = R"({"resourceType": "Patient", "format": "xml",
  "xml": {"record": "/cda:ClinicalDocument"},
  "fields": [{"path": "gender", "xpath": "x:Sex"}]})";
  CHECK(load_error(undeclared_prefix)
            .starts_with("test.json:2: XPath '/cda:ClinicalDocument' cannot be evaluated"));
  CHECK(
      load_error("{\"resourceType\": \"Patient\",\n \"format\": csv}").starts_with("test.json:2: not JSON"));
  CHECK(load_error(R"({"resourceType": "Observation", "format": "csv"})").find("Patient or Consent") !=
        std::string::npos);
}

TEST_CASE("feed mapping: XML records with namespaces, [*] lists and XPath string functions") {
  auto m = load(R"JSON({"resourceType": "Patient", "format": "xml",
    "xml": {"namespaces": {"w": "urn:w"}, "record": "/w:Export/w:Client"},
    "fields": [
      {"path": "identifier[0].value", "xpath": "@ref"},
      {"path": "name[0].given[*]", "xpath": "w:Given"},
      {"path": "birthDate", "xpath": "substring(w:Born/@value, 1, 8)", "transforms": [{"date": "yyyymmdd"}]}]})JSON");
  const std::string xml = R"(<?xml version="1.0"?>
<Export xmlns="urn:w">
  <Client ref="c1"><Given>Ann</Given><Given>Marie</Given><Born value="19430903120000"/></Client>
  <Client ref="c2"><Born value="bad"/></Client>
</Export>)";
  auto doc = XmlFeedDocument::parse(*m, xml);
  REQUIRE(doc);
  REQUIRE((*doc)->size() == 2);
  CHECK((*doc)->line(0) == 3);
  CHECK(
      json_of((*doc)->map(0)) ==
      R"({"resourceType":"Patient","identifier":[{"value":"c1"}],"name":[{"given":["Ann","Marie"]}],"birthDate":"1943-09-03"})");
  CHECK((*doc)->map(1).kind == MappedRecord::Kind::rejected);

  auto malformed = XmlFeedDocument::parse(*m, "<Export xmlns=\"urn:w\">\n<Client></Export>");
  REQUIRE_FALSE(malformed);
  CHECK(malformed.error().issues.front().line == 2);
  auto dtd = XmlFeedDocument::parse(
      *m, "<?xml version=\"1.0\"?>\n<!DOCTYPE x [<!ENTITY e SYSTEM \"file:///etc/passwd\">]><x>&e;</x>");
  REQUIRE_FALSE(dtd);
  CHECK(dtd.error().issues.front().diagnostics.find("DTD") != std::string::npos);
}

TEST_CASE("feed mapping: a header lacking a mapped column is refused, extra and reordered columns are fine") {
  auto m = load(csv_mapping(R"([{"path": "gender", "column": "B"}])"));
  CHECK(CsvHeader::bind(*m, {"C", "Extra", "B", "A"}));
  auto missing = CsvHeader::bind(*m, {"A", "C"});
  REQUIRE_FALSE(missing);
  CHECK(missing.error().issues.front().diagnostics.find("'B'") != std::string::npos);
}

TEST_CASE("feed mapping: the shipped sample mappings load") {
  for (const char* file :
       {"samples/feeds/social-care/clients.mapping.json", "samples/feeds/social-care/consents.mapping.json",
        "samples/feeds/social-care/clients-xml.mapping.json"}) {
    auto m = load_feed_mapping_file(model(), testing::source_path(file));
    CHECK_MESSAGE(m, file << ": " << (m ? "" : m.error().issues.front().diagnostics));
  }
}

}  // namespace
}  // namespace fhirgate::mappers
