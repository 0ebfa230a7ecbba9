// CDA document headers through the declarative XML feed mapping (mappers/feed_mapping.hpp):
// 1. samples/feeds/acute-trust/cda-patient.mapping.json maps the sample discharge summary to exactly the
//    expected Patient, which is valid R4; variants of its header (no NHS number, a bad one, nullFlavors,
//    a birthTime with a time) map as the mapping's description says.
// 2. tests/data/ccda-patient.mapping.json maps the header of every C-CDA document in
//    ../shared/corpus/ccda-microsoft-fhir-converter. Each Patient must be valid R4 with well-formed
//    identifiers, names and contact points; it is then compared element by element with the Patient in
//    FHIR-Converter's Bundle. The agreement per element is printed and held at a floor, so a regression
//    fails; docs/ccda-corpus.md explains every remaining difference. Agreement is never asserted where we
//    deliberately differ from the converter.
#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <functional>
#include <iomanip>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "fhir/files.hpp"
#include "fhir/json.hpp"
#include "fhir/validator.hpp"
#include "mappers/feed_mapping.hpp"
#include "tests/support/paths.hpp"
#include "tests/support/r4.hpp"

namespace fhirgate::mappers {
namespace {

using fhir::Node;

using testing::r4_model;

const fhir::Validator& r4_validator() {
  static const std::shared_ptr<const fhir::Terminology> terminology = [] {
    auto t = fhir::Terminology::load_from(fhirgate::testing::source_path("profiles"));
    REQUIRE(t.ok());
    return std::shared_ptr<const fhir::Terminology>(*t);
  }();
  static const fhir::Validator validator(r4_model(), terminology);
  return validator;
}

std::string read_text(const std::string& path) {
  auto text = fhir::read_file(path);
  REQUIRE_MESSAGE(text.ok(), path);
  return *text;
}

std::shared_ptr<const FeedMapping> load_mapping(const std::string& relative) {
  auto mapping = load_feed_mapping_file(*r4_model(), fhirgate::testing::source_path(relative));
  REQUIRE_MESSAGE(mapping.ok(), (mapping.ok() ? std::string() : mapping.error().issues.front().diagnostics));
  return *mapping;
}

// The one patientRole of a CDA document, mapped.
MappedRecord map_header(const FeedMapping& mapping, std::string_view xml) {
  auto document = XmlFeedDocument::parse(mapping, xml);
  REQUIRE_MESSAGE(document.ok(),
                  (document.ok() ? std::string() : document.error().issues.front().diagnostics));
  REQUIRE((*document)->size() == 1);
  return (*document)->map(0);
}

// Members sorted at every level, so that two resources compare by content, not by member order.
Node canonical(const Node& n) {
  if (n.is_array()) {
    Node out = Node::array();
    for (const Node& item : n.items()) out.push(canonical(item));
    return out;
  }
  if (!n.is_object()) return n;
  std::vector<Node::Member> members;
  for (const auto& [key, value] : n.members()) members.emplace_back(key, canonical(value));
  std::sort(members.begin(), members.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  Node out = Node::object();
  for (auto& [key, value] : members) out.set(key, std::move(value));
  return out;
}

std::string validation_errors(const Node& resource) {
  std::string out;
  if (auto shape = fhir::check_resource_json(resource); !shape.ok())
    out += shape.error().issues.front().expression + ": " + shape.error().issues.front().diagnostics + "\n";
  for (const auto& issue : r4_validator().validate(resource).issues)
    if (issue.severity == "error" || issue.severity == "fatal")
      out += issue.expression + ": " + issue.diagnostics + "\n";
  return out;
}

std::string replaced(std::string text, std::string_view from, std::string_view to) {
  const auto at = text.find(from);
  REQUIRE_MESSAGE(at != std::string::npos, from);
  return text.replace(at, from.size(), to);
}

// ---- 1. The acute trust's discharge summary ----

constexpr std::string_view kAcuteMapping = "samples/feeds/acute-trust/cda-patient.mapping.json";
constexpr std::string_view kDischargeSummary = "samples/feeds/acute-trust/discharge-summary.xml";

TEST_CASE("cda feed: the acute trust's discharge summary header maps to exactly its Patient") {
  const auto mapping = load_mapping(std::string(kAcuteMapping));
  const MappedRecord record =
      map_header(*mapping, read_text(fhirgate::testing::source_path(std::string(kDischargeSummary))));
  REQUIRE_MESSAGE(record.kind == MappedRecord::Kind::mapped, record.reason);
  auto expected = fhir::parse_json(R"({
    "resourceType": "Patient",
    "identifier": [
      { "system": "https://fhir.nhs.uk/Id/nhs-number", "value": "9999901158" },
      { "system": "urn:oid:2.16.840.1.113883.19.5.44.1", "value": "K0048213" } ],
    "name": [
      { "use": "official", "family": "O'Connell", "given": ["Margaret", "Anne"], "prefix": ["Mrs"] },
      { "use": "nickname", "family": "O'Connell", "given": ["Peggy"] } ],
    "gender": "female",
    "birthDate": "1947-08-23",
    "address": [
      { "use": "home", "line": ["Flat 3", "14 Riverside Court"], "city": "Leeds", "district": "West Yorkshire",
        "postalCode": "LS1 4AP", "country": "GB" } ],
    "telecom": [
      { "system": "phone", "value": "01632960123", "use": "home" },
      { "system": "phone", "value": "07700900461", "use": "mobile" },
      { "system": "email", "value": "peggy.oconnell@example.org", "use": "home" } ],
    "maritalStatus": { "coding": [ { "system": "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus", "code": "W" } ] }
  })");
  REQUIRE(expected.ok());
  CHECK(fhir::write_json(canonical(record.resource), true) == fhir::write_json(canonical(*expected), true));
  CHECK(validation_errors(record.resource) == "");
}

TEST_CASE("cda feed: header variants map as the acute trust's mapping describes") {
  const auto mapping = load_mapping(std::string(kAcuteMapping));
  const std::string xml = read_text(fhirgate::testing::source_path(std::string(kDischargeSummary)));
  const std::string nhs_id = R"(<id root="2.16.840.1.113883.2.1.4.1" extension="9999901158"/>)";

  SUBCASE("without an NHS number, the trust's PAS number is the only identifier") {
    const MappedRecord r = map_header(*mapping, replaced(xml, nhs_id, ""));
    REQUIRE_MESSAGE(r.kind == MappedRecord::Kind::mapped, r.reason);
    CHECK(fhir::write_json(*r.resource.find("identifier")) ==
          R"([{"system":"urn:oid:2.16.840.1.113883.19.5.44.1","value":"K0048213"}])");
  }
  SUBCASE("an NHS number failing the Modulus 11 check rejects the record") {
    const MappedRecord r = map_header(
        *mapping, replaced(xml, nhs_id, R"(<id root="2.16.840.1.113883.2.1.4.1" extension="9999901159"/>)"));
    CHECK(r.kind == MappedRecord::Kind::rejected);
    CHECK(r.reason.find("not a valid NHS number") != std::string::npos);
  }
  SUBCASE("a root-only local id (no extension) gives no identifier") {
    const MappedRecord r = map_header(
        *mapping,
        replaced(xml, R"(extension="K0048213" assigningAuthorityName="Example Acute NHS Trust PAS")", ""));
    REQUIRE_MESSAGE(r.kind == MappedRecord::Kind::mapped, r.reason);
    CHECK(fhir::write_json(*r.resource.find("identifier")) ==
          R"([{"system":"https://fhir.nhs.uk/Id/nhs-number","value":"9999901158"}])");
  }
  SUBCASE("a birthTime with a time and zone gives the date") {
    const MappedRecord r = map_header(*mapping, replaced(xml, R"(<birthTime value="19470823"/>)",
                                                         R"(<birthTime value="194708230615+0100"/>)"));
    REQUIRE_MESSAGE(r.kind == MappedRecord::Kind::mapped, r.reason);
    CHECK(r.resource.string_at("birthDate") == "1947-08-23");
  }
  SUBCASE("a birthTime of a month or a year gives a partial birthDate") {
    MappedRecord r = map_header(
        *mapping, replaced(xml, R"(<birthTime value="19470823"/>)", R"(<birthTime value="194708"/>)"));
    REQUIRE_MESSAGE(r.kind == MappedRecord::Kind::mapped, r.reason);
    CHECK(r.resource.string_at("birthDate") == "1947-08");
    r = map_header(*mapping,
                   replaced(xml, R"(<birthTime value="19470823"/>)", R"(<birthTime value="1947"/>)"));
    CHECK(r.resource.string_at("birthDate") == "1947");
  }
  SUBCASE("gender: UN is other, a nullFlavor is unknown, no element gives no gender") {
    const std::string code =
        R"(<administrativeGenderCode code="F" codeSystem="2.16.840.1.113883.5.1" displayName="Female"/>)";
    MappedRecord r = map_header(
        *mapping,
        replaced(xml, code, R"(<administrativeGenderCode code="UN" codeSystem="2.16.840.1.113883.5.1"/>)"));
    CHECK(r.resource.string_at("gender") == "other");
    r = map_header(*mapping, replaced(xml, code, R"(<administrativeGenderCode nullFlavor="UNK"/>)"));
    CHECK(r.resource.string_at("gender") == "unknown");
    r = map_header(*mapping, replaced(xml, code, ""));
    CHECK(r.resource.find("gender") == nullptr);
  }
  SUBCASE("a name use without a FHIR equivalent leaves use out; a name without parts is text") {
    const MappedRecord r = map_header(
        *mapping,
        replaced(replaced(xml, R"(<name use="L">)", R"(<name use="SRCH">)"),
                 "<name use=\"P\">\n          <given>Peggy</given>\n          <family>O'Connell</family>\n"
                 "        </name>",
                 "<name use=\"P\">  Peggy\n  O'Connell </name>"));
    REQUIRE_MESSAGE(r.kind == MappedRecord::Kind::mapped, r.reason);
    const auto& names = r.resource.find("name")->items();
    REQUIRE(names.size() == 2);
    CHECK(names[0].find("use") == nullptr);
    CHECK(names[0].string_at("family") == "O'Connell");
    CHECK(fhir::write_json(names[1]) == R"({"use":"nickname","text":"Peggy O'Connell"})");
    CHECK(validation_errors(r.resource) == "");
  }
  SUBCASE("telecoms without a tel:, fax: or mailto: value are left out; the rest keep their order") {
    std::string changed = replaced(xml, R"(<telecom use="HP" value="tel:01632960123"/>)",
                                   R"(<telecom use="HP" value="http://example.org/"/>)");
    changed = replaced(changed, R"(<telecom use="MC" value="tel:07700900461"/>)",
                       R"(<telecom use="EC" value="fax:01632960999"/>)");
    const MappedRecord r = map_header(*mapping, changed);
    REQUIRE_MESSAGE(r.kind == MappedRecord::Kind::mapped, r.reason);
    CHECK(fhir::write_json(*r.resource.find("telecom")) ==
          R"([{"system":"fax","value":"01632960999"},)"
          R"({"system":"email","value":"peggy.oconnell@example.org","use":"home"}])");
  }
  SUBCASE("a marital status outside the HL7 code system is left out") {
    const MappedRecord r = map_header(*mapping, replaced(xml, R"(codeSystem="2.16.840.1.113883.5.2")",
                                                         R"(codeSystem="2.16.840.1.113883.19.99")"));
    REQUIRE_MESSAGE(r.kind == MappedRecord::Kind::mapped, r.reason);
    CHECK(r.resource.find("maritalStatus") == nullptr);
  }
}

// ---- 2. The C-CDA corpus against FHIR-Converter ----

std::string joined(const Node* n) {
  if (n == nullptr) return "";
  if (!n->is_array()) return n->text();
  std::string out;
  for (const Node& item : n->items()) out += (out.empty() ? "" : " | ") + item.text();
  return out;
}

// One string per item of the list `list` (in order); none when the Patient has no such list.
std::vector<std::string> per_item(const Node& resource, std::string_view list,
                                  const std::function<std::string(const Node&)>& show) {
  std::vector<std::string> out;
  if (const Node* items = resource.find(list); items && items->is_array())
    for (const Node& item : items->items()) out.push_back(show(item));
  return out;
}

std::vector<std::string> part_of_each(const Node& resource, std::string_view list, std::string_view part) {
  return per_item(resource, list, [part](const Node& item) { return joined(item.find(part)); });
}

std::vector<std::string> scalar(const Node& resource, std::string_view name) {
  if (const Node* value = resource.find(name)) return {value->text()};
  return {};
}

struct Compared {
  std::string_view name;
  std::function<std::vector<std::string>(const Node&)> items;
};

const std::vector<Compared>& compared_elements() {
  static const std::vector<Compared> list = {
      {"identifier",
       [](const Node& p) {
         return per_item(p, "identifier", [](const Node& id) {
           return std::string(id.string_at("system")) + "|" + std::string(id.string_at("value"));
         });
       }},
      {"name.family", [](const Node& p) { return part_of_each(p, "name", "family"); }},
      {"name.given", [](const Node& p) { return part_of_each(p, "name", "given"); }},
      {"name.prefix", [](const Node& p) { return part_of_each(p, "name", "prefix"); }},
      {"name.use", [](const Node& p) { return part_of_each(p, "name", "use"); }},
      {"gender", [](const Node& p) { return scalar(p, "gender"); }},
      {"birthDate", [](const Node& p) { return scalar(p, "birthDate"); }},
      {"address.line", [](const Node& p) { return part_of_each(p, "address", "line"); }},
      {"address.city", [](const Node& p) { return part_of_each(p, "address", "city"); }},
      {"address.state", [](const Node& p) { return part_of_each(p, "address", "state"); }},
      {"address.postalCode", [](const Node& p) { return part_of_each(p, "address", "postalCode"); }},
      {"address.country", [](const Node& p) { return part_of_each(p, "address", "country"); }},
      {"address.use", [](const Node& p) { return part_of_each(p, "address", "use"); }},
      {"telecom.system", [](const Node& p) { return part_of_each(p, "telecom", "system"); }},
      {"telecom.value", [](const Node& p) { return part_of_each(p, "telecom", "value"); }},
      {"telecom.use", [](const Node& p) { return part_of_each(p, "telecom", "use"); }},
      {"maritalStatus.code",
       [](const Node& p) {
         const Node* status = p.find("maritalStatus");
         return status ? part_of_each(*status, "coding", "code") : std::vector<std::string>{};
       }},
  };
  return list;
}

// Documents (of 7) on which our Patient must agree with FHIR-Converter's, per element: what the mapping
// achieves, so a regression fails. Elements at 0 are deliberate differences (docs/ccda-corpus.md).
const std::map<std::string_view, int>& agreement_floor() {
  static const std::map<std::string_view, int> floor = {
      {"identifier", 7},         {"name.family", 7},    {"name.given", 7},         {"name.prefix", 7},
      {"name.use", 0},           {"gender", 7},         {"birthDate", 7},          {"address.line", 7},
      {"address.city", 7},       {"address.state", 7},  {"address.postalCode", 7}, {"address.country", 7},
      {"address.use", 7},        {"telecom.system", 7}, {"telecom.value", 7},      {"telecom.use", 7},
      {"maritalStatus.code", 0},
  };
  return floor;
}

struct Tally {
  int agree = 0;
  int ours = 0;       // documents where our Patient has a value for the element
  int reference = 0;  // documents where FHIR-Converter's has one
};

bool has_value(const std::vector<std::string>& items) {
  return std::any_of(items.begin(), items.end(), [](const std::string& item) { return !item.empty(); });
}

std::string listed(const std::vector<std::string>& items) {
  std::string out = "[";
  for (const auto& item : items) out += (out.size() > 1 ? ", " : "") + ("\"" + item + "\"");
  return out + "]";
}

const Node* bundle_patient(const Node& bundle) {
  const Node* found = nullptr;
  if (const Node* entries = bundle.find("entry"))
    for (const Node& entry : entries->items())
      if (const Node* resource = entry.find("resource");
          resource && resource->string_at("resourceType") == "Patient") {
        REQUIRE(found == nullptr);
        found = resource;
      }
  return found;
}

// What must hold for every Patient we map, whatever the converter does.
void check_patient(const std::string& name, const Node& patient) {
  CAPTURE(name);
  CHECK(validation_errors(patient) == "");
  if (const Node* ids = patient.find("identifier"))
    for (const Node& id : ids->items()) {
      const std::string_view system = id.string_at("system");
      CHECK_MESSAGE((system.starts_with("urn:oid:") || system == "http://hl7.org/fhir/sid/us-ssn"), system);
      CHECK(!id.string_at("value").empty());
    }
  if (const Node* names = patient.find("name"))
    for (const Node& n : names->items()) CHECK((n.find("family") || n.find("given") || n.find("text")));
  if (const Node* telecom = patient.find("telecom"))
    for (const Node& cp : telecom->items()) CHECK((cp.find("system") && cp.find("value")));
  CHECK(patient.string_at("birthDate").size() == 10);
}

TEST_CASE("cda corpus: C-CDA headers against FHIR-Converter's Patient") {
  const std::string dir = fhirgate::testing::shared_path("corpus/ccda-microsoft-fhir-converter");
  if (dir.empty()) {
    MESSAGE("../shared/corpus/ccda-microsoft-fhir-converter not present; skipped");
    return;
  }
  const auto mapping = load_mapping("tests/data/ccda-patient.mapping.json");
  std::vector<std::filesystem::path> documents;
  for (const auto& e : std::filesystem::directory_iterator(dir))
    if (e.is_regular_file() && e.path().extension() == ".ccda") documents.push_back(e.path());
  std::sort(documents.begin(), documents.end());
  REQUIRE(documents.size() == 7);

  std::map<std::string_view, Tally> tallies;
  std::ostringstream differences;
  int mapped = 0;
  for (const auto& path : documents) {
    const std::string name = path.stem().string();
    CAPTURE(name);
    const MappedRecord record = map_header(*mapping, read_text(path.string()));
    REQUIRE_MESSAGE(record.kind == MappedRecord::Kind::mapped, record.reason);
    ++mapped;
    check_patient(name, record.resource);

    auto bundle = fhir::read_json_file((path.parent_path() / (name + "-expected.json")).string());
    REQUIRE(bundle.ok());
    const Node* reference = bundle_patient(*bundle);
    REQUIRE(reference != nullptr);
    for (const auto& element : compared_elements()) {
      const auto ours = element.items(record.resource);
      const auto theirs = element.items(*reference);
      Tally& t = tallies[element.name];
      t.ours += has_value(ours);
      t.reference += has_value(theirs);
      if (ours == theirs) {
        ++t.agree;
      } else {
        differences << "\n  " << name << " " << element.name << ": ours " << listed(ours)
                    << ", FHIR-Converter " << listed(theirs);
      }
    }
  }

  std::ostringstream table;
  table << "C-CDA corpus: " << mapped << "/" << documents.size() << " headers mapped\n"
        << std::left << std::setw(20) << "element"
        << "agree  ours  FHIR-Converter";
  for (const auto& element : compared_elements()) {
    const Tally& t = tallies[element.name];
    table << "\n"
          << std::left << std::setw(20) << element.name << t.agree << "/" << documents.size() << "    "
          << t.ours << "     " << t.reference;
  }
  MESSAGE(table.str());
  MESSAGE("differences:" << differences.str());

  for (const auto& element : compared_elements()) {
    const int floor = agreement_floor().at(element.name);
    const int agree = tallies[element.name].agree;
    CHECK_MESSAGE(agree >= floor,
                  element.name << " agrees on " << agree << " documents, fewer than " << floor);
    if (agree > floor) MESSAGE(element.name << " now agrees on " << agree << ": raise its floor");
  }
  // Our side of the deliberate differences: every document's legal name and marital status are mapped.
  CHECK(tallies["name.use"].ours == 7);
  CHECK(tallies["maritalStatus.code"].ours == 7);
}

}  // namespace
}  // namespace fhirgate::mappers
