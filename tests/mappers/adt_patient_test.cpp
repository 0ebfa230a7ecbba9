#include "mappers/adt_patient.hpp"

#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "tests/support/paths.hpp"

namespace fhirgate::mappers {
namespace {

using fhir::Node;

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

PartnerMapping partner() {
  PartnerMapping m;
  m.local_identifier_system = "https://fhir.partnership.example/Id/gp-practice";
  return m;
}

Node map_text(const std::string& text) {
  auto message = Message::parse(text);
  REQUIRE(message.ok());
  auto patient = adt_to_patient(*message, partner());
  REQUIRE(patient.ok());
  return std::move(patient).value();
}

std::string pid_message(std::string_view pid, std::string_view charset = "UNICODE UTF-8") {
  return "MSH|^~\\&|PAS|RX1|GW|RX1|20240514092133||ADT^A31^ADT_A05|1|P|2.5.1||||||" + std::string(charset) +
         "\rEVN|A31|20240514092133\r" + std::string(pid) + "\r";
}

std::string text_at(const Node& n, std::initializer_list<std::string_view> path) {
  const Node* cur = &n;
  for (std::string_view step : path) {
    if (cur->is_array()) {
      std::size_t i = std::stoul(std::string(step));
      if (i >= cur->items().size()) return "<absent>";
      cur = &cur->items()[i];
    } else {
      cur = cur->find(step);
      if (!cur) return "<absent>";
    }
  }
  return cur->text();
}

TEST_CASE("adt_to_patient: tests/data/adt_a01.hl7") {
  Node p = map_text(read_file(testing::source_path("tests/data/adt_a01.hl7")));
  std::vector<std::string> keys;
  for (const auto& m : p.members()) keys.push_back(m.first);
  CHECK(keys == std::vector<std::string>{"resourceType", "identifier", "name", "telecom", "gender",
                                         "birthDate", "address", "maritalStatus", "generalPractitioner"});
  CHECK(text_at(p, {"identifier", "0", "system"}) == "https://fhir.nhs.uk/Id/nhs-number");
  CHECK(text_at(p, {"identifier", "0", "value"}) == "9434765919");
  CHECK(text_at(p, {"identifier", "0", "type", "coding", "0", "code"}) == "NH");
  CHECK(text_at(p, {"identifier", "1", "system"}) == "https://fhir.partnership.example/Id/gp-practice");
  CHECK(text_at(p, {"identifier", "1", "value"}) == "RX1-0042731");
  CHECK(text_at(p, {"identifier", "1", "type", "coding", "0", "system"}) ==
        "http://terminology.hl7.org/CodeSystem/v2-0203");
  CHECK(text_at(p, {"name", "0", "family"}) == "CHALMERS");
  CHECK(text_at(p, {"name", "0", "given", "0"}) == "PETER");
  CHECK(text_at(p, {"name", "0", "given", "1"}) == "JAMES");
  CHECK(text_at(p, {"name", "0", "prefix", "0"}) == "MR");
  CHECK(text_at(p, {"telecom", "0", "value"}) == "07700 900461");
  CHECK(text_at(p, {"telecom", "0", "system"}) == "phone");
  CHECK(text_at(p, {"telecom", "0", "use"}) == "mobile");
  CHECK(text_at(p, {"telecom", "1", "system"}) == "email");
  CHECK(text_at(p, {"telecom", "1", "value"}) == "peter.chalmers@example.org");
  CHECK(text_at(p, {"gender"}) == "male");
  CHECK(text_at(p, {"birthDate"}) == "1974-12-25");
  CHECK(text_at(p, {"deceasedBoolean"}) == "<absent>");
  CHECK(text_at(p, {"address", "0", "use"}) == "home");
  CHECK(text_at(p, {"address", "0", "line", "0"}) == "534 EREWHON ST");
  CHECK(text_at(p, {"address", "0", "line", "1"}) == "FLAT 2");
  CHECK(text_at(p, {"address", "0", "city"}) == "LEEDS");
  CHECK(text_at(p, {"address", "0", "state"}) == "WEST YORKSHIRE");
  CHECK(text_at(p, {"address", "0", "postalCode"}) == "LS1 4AP");
  CHECK(text_at(p, {"address", "0", "country"}) == "GBR");
  CHECK(text_at(p, {"maritalStatus", "coding", "0", "code"}) == "M");
  CHECK(text_at(p, {"generalPractitioner", "0", "reference"}) == "Organization/Y12345");
  CHECK(text_at(p, {"generalPractitioner", "0", "display"}) == "LEEDS GENERAL PRACTICE");
  CHECK(text_at(p, {"generalPractitioner", "1", "reference"}) == "Practitioner/G1234567");
  CHECK(text_at(p, {"generalPractitioner", "1", "display"}) == "DR JOHN SMITH");
  CHECK(fhir::check_resource_json(p).ok());
}

TEST_CASE("adt_to_patient: other message types are rejected naming MSH-9") {
  auto m = Message::parse("MSH|^~\\&|A|B|C|D|20240101||ADT^A02|1|P|2.5.1\rPID|1||123\r");
  REQUIRE(m.ok());
  auto p = adt_to_patient(*m, partner());
  REQUIRE(!p.ok());
  CHECK(p.error().code == ErrorCode::invalid_input);
  CHECK(p.error().issues.front().expression == "MSH-9");
}

TEST_CASE("adt_to_patient: partial birth dates and NHS number with spaces") {
  CHECK(text_at(map_text(pid_message("PID|1||943 476 5919^^^NHS||A^B||1974")), {"birthDate"}) == "1974");
  CHECK(text_at(map_text(pid_message("PID|1||1^^^X||A^B||197412")), {"birthDate"}) == "1974-12");
  CHECK(text_at(map_text(pid_message("PID|1||1^^^X||A^B||197412251030+0100")), {"birthDate"}) ==
        "1974-12-25");
  CHECK(text_at(map_text(pid_message("PID|1||943 476 5919^^^NHS||A^B")), {"identifier", "0", "value"}) ==
        "9434765919");
  CHECK(map_text(pid_message("PID|1||1^^^X||A^B||19741")).find("birthDate") == nullptr);
}

TEST_CASE("adt_to_patient: several names, name use table 0200, escapes") {
  Node p = map_text(pid_message("PID|1||1||O\\T\\BRIEN^MARY^^^MRS^^L~SMITH^MARY^^^^^M~MOLLY^^^^^^N"));
  REQUIRE(p.find("name")->items().size() == 3);
  CHECK(text_at(p, {"name", "0", "family"}) == "O&BRIEN");
  CHECK(text_at(p, {"name", "0", "use"}) == "official");
  CHECK(text_at(p, {"name", "1", "use"}) == "maiden");
  CHECK(text_at(p, {"name", "2", "use"}) == "nickname");
  CHECK(text_at(p, {"name", "2", "given"}) == "<absent>");
}

TEST_CASE("adt_to_patient: 8859/1 values become UTF-8") {
  std::string pid = "PID|1||1||M\xDCLLER^J\xD6RG";
  Node p = map_text(pid_message(pid, "8859/1"));
  CHECK(text_at(p, {"name", "0", "family"}) == "M\xC3\x9CLLER");
  CHECK(text_at(p, {"name", "0", "given", "0"}) == "J\xC3\x96RG");
}

TEST_CASE("adt_to_patient: deceased date/time and indicator") {
  Node a = map_text(pid_message("PID|1||1||A^B|||F|||||||||||||||||||||202405140921+0100|Y"));
  CHECK(text_at(a, {"deceasedDateTime"}) == "2024-05-14T09:21:00+01:00");
  CHECK(text_at(a, {"gender"}) == "female");
  Node b = map_text(pid_message("PID|1||1||A^B|||U|||||||||||||||||||||20240514|Y"));
  CHECK(text_at(b, {"deceasedDateTime"}) == "2024-05-14");
  Node c = map_text(pid_message("PID|1||1||A^B|||A||||||||||||||||||||||Y"));
  CHECK(text_at(c, {"deceasedBoolean"}) == "true");
  CHECK(text_at(c, {"gender"}) == "other");
}

TEST_CASE("adt_to_patient: telecom composed from area and local number; fax; work phone") {
  Node p = map_text(pid_message("PID|1||1||A^B||||||||^PRN^PH^^44^113^2430000~0113 1^PRN^FX|0113 2^WPN^PH"));
  CHECK(text_at(p, {"telecom", "0", "value"}) == "+44 113 2430000");
  CHECK(text_at(p, {"telecom", "0", "use"}) == "home");
  CHECK(text_at(p, {"telecom", "1", "system"}) == "fax");
  CHECK(text_at(p, {"telecom", "2", "use"}) == "work");
  CHECK(text_at(p, {"telecom", "2", "value"}) == "0113 2");
}

TEST_CASE("adt_to_patient: XTN.12, the unformatted number, is the value before the XTN.7 local number") {
  Node p = map_text(pid_message("PID|1||1||A^B||||||||^PRN^PH^^^^2430000^^^^^0113 243 0000"));
  CHECK(text_at(p, {"telecom", "0", "value"}) == "0113 243 0000");
}

TEST_CASE("adt_to_patient: a contact point without XTN.3 still has a system (R4 cpt-2)") {
  Node p = map_text(pid_message("PID|1||1||A^B||||||||0113 2430000~^NET^^a@example.org|0113 1^WPN^ZZ"));
  CHECK(text_at(p, {"telecom", "0", "system"}) == "phone");
  CHECK(text_at(p, {"telecom", "0", "use"}) == "home");
  CHECK(text_at(p, {"telecom", "1", "system"}) == "email");
  CHECK(text_at(p, {"telecom", "1", "value"}) == "a@example.org");
  CHECK(text_at(p, {"telecom", "2", "system"}) == "other");
  CHECK(text_at(p, {"telecom", "2", "use"}) == "work");
}

TEST_CASE("adt_to_patient: an Internet XTN with its address in XTN.1 is kept") {
  Node p = map_text(pid_message("PID|1||1||A^B||||||||a@example.org^NET^Internet"));
  CHECK(text_at(p, {"telecom", "0", "system"}) == "email");
  CHECK(text_at(p, {"telecom", "0", "value"}) == "a@example.org");
}

TEST_CASE("adt_to_patient: XTN.13/14 period and XTN.18 preference order") {
  const std::string ranked = "0113 1^PRN^PH^^^^^^^^^^20200101^20211231^^^^02";
  const std::string rank_zero = "0113 2^PRN^PH^^^^^^^^^^^^^^^0";
  Node p = map_text(pid_message("PID|1||1||A^B||||||||" + ranked + "~" + rank_zero));
  CHECK(text_at(p, {"telecom", "0", "period", "start"}) == "2020-01-01");
  CHECK(text_at(p, {"telecom", "0", "period", "end"}) == "2021-12-31");
  REQUIRE(p.find("telecom")->items()[0].find("rank") != nullptr);
  CHECK(p.find("telecom")->items()[0].find("rank")->is_number());
  CHECK(text_at(p, {"telecom", "0", "rank"}) == "2");
  CHECK(text_at(p, {"telecom", "1", "rank"}) == "<absent>");
}

TEST_CASE("adt_to_patient: XPN.14 professional suffix, XPN.15 called-by name, name validity period") {
  const std::string official = "JONES^ANN^^JR^DR^PHD^L^^^20100101&20191231^^^^FRCS^NANCY";
  const std::string maiden = "SMITH^ANN^^^^^M^^^^^20000101^20100101";
  Node p = map_text(pid_message("PID|1||1||" + official + "~" + maiden));
  REQUIRE(p.find("name")->items().size() == 3);
  CHECK(text_at(p, {"name", "0", "suffix", "0"}) == "JR");
  CHECK(text_at(p, {"name", "0", "suffix", "1"}) == "PHD");
  CHECK(text_at(p, {"name", "0", "suffix", "2"}) == "FRCS");
  CHECK(text_at(p, {"name", "0", "period", "start"}) == "2010-01-01");
  CHECK(text_at(p, {"name", "0", "period", "end"}) == "2019-12-31");
  CHECK(text_at(p, {"name", "1", "use"}) == "nickname");
  CHECK(text_at(p, {"name", "1", "given", "0"}) == "NANCY");
  CHECK(text_at(p, {"name", "1", "family"}) == "<absent>");
  CHECK(text_at(p, {"name", "2", "use"}) == "maiden");
  CHECK(text_at(p, {"name", "2", "period", "start"}) == "2000-01-01");
  CHECK(text_at(p, {"name", "2", "period", "end"}) == "2010-01-01");
}

TEST_CASE("adt_to_patient: XAD.19 addressee line, XAD.9 county as district, address validity") {
  const std::string bad =
      "1 HIGH ST^^LEEDS^^LS1 1AA^GBR^BA^^&West Yorkshire^^^^20100101^20151231^^^^^C/O MRS SMITH";
  const std::string home = "2 LOW RD^^YORK^^YO1 1AA^GBR^H^^N YORKS^^^20150101&20201231";
  Node p = map_text(pid_message("PID|1||1||A^B||||||" + bad + "~" + home));
  CHECK(text_at(p, {"address", "0", "use"}) == "old");
  CHECK(text_at(p, {"address", "0", "line", "1"}) == "C/O MRS SMITH");
  CHECK(text_at(p, {"address", "0", "district"}) == "West Yorkshire");
  CHECK(text_at(p, {"address", "0", "period", "start"}) == "2010-01-01");
  CHECK(text_at(p, {"address", "0", "period", "end"}) == "2015-12-31");
  CHECK(text_at(p, {"address", "1", "district"}) == "N YORKS");
  CHECK(text_at(p, {"address", "1", "period", "start"}) == "2015-01-01");
  CHECK(text_at(p, {"address", "1", "period", "end"}) == "2020-12-31");
}

TEST_CASE("adt_to_patient: CX.7/8 identifier period; a CX.5 outside table 0203 is type text, not a coding") {
  Node p = map_text(pid_message("PID|1||RX1-1^^^RX1^MRN^^20200101^20301231~9434765919^^^NHS^NH||A^B"));
  CHECK(text_at(p, {"identifier", "0", "type", "text"}) == "MRN");
  CHECK(text_at(p, {"identifier", "0", "type", "coding"}) == "<absent>");
  CHECK(text_at(p, {"identifier", "0", "period", "start"}) == "2020-01-01");
  CHECK(text_at(p, {"identifier", "0", "period", "end"}) == "2030-12-31");
  CHECK(text_at(p, {"identifier", "1", "type", "coding", "0", "code"}) == "NH");
}

TEST_CASE("adt_to_patient: a PID-16 outside table 0002 is maritalStatus text, not a v2-0002 coding") {
  Node p = map_text(pid_message("PID|1||1||A^B|||||||||||Single"));
  CHECK(text_at(p, {"maritalStatus", "text"}) == "Single");
  CHECK(text_at(p, {"maritalStatus", "coding"}) == "<absent>");
  AdtHeader header{"FHIRGW", "RX1", "PAS", "RX1", "CTRL1", "20240514092133"};
  auto text = patient_to_adt(p, "A31", header, partner());
  REQUIRE(text.ok());
  auto back = Message::parse(*text);
  REQUIRE(back.ok());
  CHECK(back->value("PID-16") == "Single");
}

TEST_CASE("adt_to_patient: dates that name no calendar day are dropped") {
  CHECK(map_text(pid_message("PID|1||1||A^B||19741332")).find("birthDate") == nullptr);
  CHECK(map_text(pid_message("PID|1||1||A^B||19740229")).find("birthDate") == nullptr);
  CHECK(text_at(map_text(pid_message("PID|1||1||A^B||19760229")), {"birthDate"}) == "1976-02-29");
  CHECK(v2_to_fhir_date_time("202402301200+0100").empty());
  CHECK(v2_to_fhir_date_time("202402291260+0100").empty());
}

TEST_CASE("adt_merge: A40 gives surviving and replaced identifiers") {
  auto m = Message::parse(
      "MSH|^~\\&|PAS|RX1|GW|RX1|20240514||ADT^A40^ADT_A39|9|P|2.5.1\rEVN|A40|20240514\r"
      "PID|1||9434765919^^^NHS^NH~RX1-1^^^RX1^MR||A^B\rMRG|RX1-2^^^RX1^MR~943 476 5927^^^NHS^NH\r");
  REQUIRE(m.ok());
  auto merge = adt_merge(*m, partner());
  REQUIRE(merge.ok());
  REQUIRE(merge->surviving_identifiers.size() == 2);
  REQUIRE(merge->replaced_identifiers.size() == 2);
  CHECK(merge->surviving_identifiers[0].string_at("value") == "9434765919");
  CHECK(merge->replaced_identifiers[0].string_at("value") == "RX1-2");
  CHECK(merge->replaced_identifiers[1].string_at("system") == "https://fhir.nhs.uk/Id/nhs-number");
  CHECK(merge->replaced_identifiers[1].string_at("value") == "9434765927");

  auto no_mrg = Message::parse("MSH|^~\\&|A|B|C|D|1||ADT^A40|1|P|2.5.1\rPID|1||1\r");
  REQUIRE(no_mrg.ok());
  CHECK(!adt_merge(*no_mrg, partner()).ok());
}

TEST_CASE("patient_to_adt: Patient -> A31 -> Patient keeps the mapped fields") {
  Node original = map_text(read_file(testing::source_path("tests/data/adt_a01.hl7")));
  original.find("name")->items()[0].set("family", Node::string("O'BRIEN|^~\\&"));
  original.set("deceasedDateTime", Node::string("2024-05-14T09:21:00+01:00"));
  Node expected = Node::object();
  for (const auto& [k, v] : original.members())
    if (k != "deceasedDateTime") expected.set(k, v);
  AdtHeader header{"FHIRGW", "RX1", "PAS", "RX1", "CTRL1", "20240514092133"};
  auto text = patient_to_adt(original, "A31", header, partner());
  REQUIRE(text.ok());
  auto message = Message::parse(*text);
  REQUIRE(message.ok());
  CHECK(message->message_type().trigger == "A31");
  CHECK(message->version() == "2.5.1");
  CHECK(message->value("PID-3[1].4") == "NHS");
  CHECK(message->value("PID-5[1].1") == "O'BRIEN|^~\\&");
  auto back = adt_to_patient(*message, partner());
  REQUIRE(back.ok());
  CHECK(text_at(*back, {"deceasedDateTime"}) == "2024-05-14T09:21:00+01:00");
  for (const auto& member : original.members()) {  // not a structured binding: clang 14 cannot capture one
    const auto& k = member.first;
    const auto& v = member.second;
    CAPTURE(k);
    const Node* got = back->find(k);
    REQUIRE(got != nullptr);
    CHECK(fhir::write_json(*got) == fhir::write_json(v));
  }
  CHECK(!patient_to_adt(original, "A01", header, partner()).ok());
}

}  // namespace
}  // namespace fhirgate::mappers
