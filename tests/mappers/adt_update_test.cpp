#include "mappers/adt_update.hpp"

#include <doctest/doctest.h>

#include "mappers/adt_patient.hpp"

namespace fhirgate::mappers {
namespace {

using fhir::Node;

Node parse(const char* text) {
  auto doc = fhir::parse_json(text);
  REQUIRE(doc);
  return std::move(*doc);
}

Message message(const std::string& pid) {
  auto m = Message::parse("MSH|^~\\&|A|F|B|G|20240101||ADT^A08^ADT_A01|1|P|2.5.1\r" + pid + "\r");
  REQUIRE(m);
  return std::move(*m);
}

const char* kHeld = R"({"resourceType":"Patient","id":"p1","meta":{"versionId":"3"},
  "identifier":[{"system":"https://fhir.nhs.uk/Id/nhs-number","value":"9434765919"},
                {"system":"https://other.example/id","value":"X9"}],
  "active":false,"name":[{"family":"OLD"}],"telecom":[{"system":"phone","value":"1"}],"gender":"male",
  "maritalStatus":{"text":"M"},"link":[{"other":{"reference":"Patient/p2"},"type":"replaced-by"}]})";

TEST_CASE("an ADT update replaces what the message carries, keeps what it leaves empty, deletes \"\"") {
  const Message adt = message("PID|1||9434765919^^^NHS^NH~L1^^^GP^MR||NEW^ANN|||F||||||||\"\"");
  auto mapped = adt_to_patient(adt, PartnerMapping{"NHS", "https://gp.example/id"});
  REQUIRE(mapped);
  const Node held = parse(kHeld);
  const Node out = apply_adt_update(held, std::move(*mapped), adt);

  CHECK(out.string_at("id") == "p1");
  CHECK(out.find("meta"));
  CHECK(out.find("name")->items()[0].string_at("family") == "NEW");
  CHECK(out.string_at("gender") == "female");
  CHECK(out.find("telecom"));              // PID-13/14 empty: kept
  CHECK_FALSE(out.find("maritalStatus"));  // PID-16 "": deleted
  CHECK(out.find("link"));                 // never touched by an update
  CHECK(out.find("active")->text() == "false");
  // Identifiers: the message's (NHS number, GP local id), then the other system's.
  const auto& ids = out.find("identifier")->items();
  REQUIRE(ids.size() == 3);
  CHECK(ids[1].string_at("system") == "https://gp.example/id");
  CHECK(ids[2].string_at("system") == "https://other.example/id");
  // R4 element order survives: identifier, active, name, telecom, gender, ..., link last.
  std::vector<std::string> keys;
  for (const auto& m : out.members()) keys.push_back(m.first);
  CHECK(keys == std::vector<std::string>{"resourceType", "id", "meta", "identifier", "active", "name",
                                         "telecom", "gender", "link"});
}

TEST_CASE("applying the same update twice gives back the held Patient unchanged") {
  const Message adt = message("PID|1||9434765919^^^NHS^NH||SAME^SAM|||M|||1 HIGH ST^^LEEDS");
  auto mapped = adt_to_patient(adt, PartnerMapping{});
  REQUIRE(mapped);
  const Node once = apply_adt_update(parse(kHeld), *mapped, adt);
  CHECK(once != parse(kHeld));
  CHECK(apply_adt_update(once, std::move(*mapped), adt) == once);
}

TEST_CASE("a new Patient drops the elements sent as \"\"; set_patient_element keeps R4 order") {
  const Message adt = message("PID|1||9434765919^^^NHS^NH||SAME|||M|||\"\"");
  auto mapped = adt_to_patient(adt, PartnerMapping{});
  REQUIRE(mapped);
  Node patient = drop_v2_nulls(std::move(*mapped), adt);
  CHECK_FALSE(patient.find("address"));
  set_patient_element(patient, "active", Node::boolean(true));
  set_patient_element(patient, "link", Node::array());
  std::vector<std::string> keys;
  for (const auto& m : patient.members()) keys.push_back(m.first);
  CHECK(keys == std::vector<std::string>{"resourceType", "identifier", "active", "name", "gender", "link"});
}

}  // namespace
}  // namespace fhirgate::mappers
