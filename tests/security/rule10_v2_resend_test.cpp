// Issue 17, rule 10: an HL7 v2 re-send is recognised by (partner, MSH-4, MSH-10) of an applied message AND
// its content without MSH-7 and MSH-10. The same content again (even with a new MSH-7) is AA and not
// applied; a different message under a used MSH-10 is refused (AE or AR with ERR-2 naming MSH-10),
// journaled rejected, and changes nothing. Over MLLP and over POST /$ingest.
#include "tests/security/common.hpp"

namespace fhirgate::testing::security {
namespace {

// The message with MSH-7 (its send time) replaced, all else as it was.
std::string with_msh7(const std::string& message, const std::string& timestamp) {
  std::size_t start = 0;
  for (int field = 0; field < 6; ++field) start = message.find('|', start) + 1;  // after MSH-6
  const std::size_t end = message.find('|', start);
  return message.substr(0, start) + timestamp + message.substr(end);
}

// ERR-2 (the error location) of an ACK; "<no ERR>" without an ERR segment.
std::string err_location(const std::string& ack) {
  const auto pos = ack.find("\rERR|");
  if (pos == std::string::npos) return "<no ERR>";
  const std::string segment = ack.substr(pos + 1, ack.find('\r', pos + 1) - pos - 1);
  std::vector<std::string> fields;
  for (std::size_t from = 0;;) {
    const auto bar = segment.find('|', from);
    fields.push_back(segment.substr(from, bar == std::string::npos ? std::string::npos : bar - from));
    if (bar == std::string::npos) break;
    from = bar + 1;
  }
  return fields.size() > 2 ? fields[2] : "<no ERR-2>";
}

bool names_msh10(const std::string& location) {
  return location == "MSH^1^10" || location.starts_with("MSH^1^10^");
}

// The Patient with this NHS number as `who` sees it; nullopt when there is none.
std::optional<fhir::Node> patient_by_nhs(HttpClient& who, const std::string& nhs) {
  const auto r = who.get("/Patient?identifier=" + std::string(kNhsSystem) + "|" + nhs);
  REQUIRE_MESSAGE(r.status == 200, r.body);
  const auto bundle = json(r.body);
  const auto* resource = at(bundle, "entry[0].resource");
  if (!resource) return std::nullopt;
  return *resource;
}

// The journal's rejected entries from the GP over `transport`, as JSON text.
std::vector<std::string> rejected_entries(HttpClient& ops, const std::string& transport) {
  const auto r = ops.get("/_ops/journal?status=rejected&partner=gp-practice&_count=100");
  REQUIRE_MESSAGE(r.status == 200, r.body);
  std::vector<std::string> out;
  const auto listed = json(r.body);
  for (const auto& e : listed.find("entries")->items())
    if (e.string_at("transport") == transport) out.push_back(fhir::write_json(e));
  return out;
}

TEST_CASE(
    "rule 10: over MLLP a re-send is AA and applied once; another message under a used MSH-10 is refused") {
  Partnership p;
  auto gp = p.client("gp-practice");
  auto ops = p.client("operator");
  const std::string nhs = nhs_number(1001);
  const std::string first = adt("A01", "R10M1", "GP1", nhs, "Resent");
  REQUIRE(msa(send_v2(p.mllp_port(0), first)) == "AA|R10M1");
  const auto stored = patient_by_nhs(*gp, nhs);
  REQUIRE(stored);
  CHECK(text_at(*stored, "meta.versionId") == "1");

  // The same message again, and with only its send time changed: acknowledged, not applied again.
  CHECK(msa(send_v2(p.mllp_port(0), first)) == "AA|R10M1");
  CHECK(msa(send_v2(p.mllp_port(0), with_msh7(first, "20260101124500"))) == "AA|R10M1");
  CHECK(text_at(*patient_by_nhs(*gp, nhs), "meta.versionId") == "1");

  // A different message under the used control id: the same patient renamed, then another patient.
  const std::size_t rejected_before = rejected_entries(*ops, "mllp").size();
  const auto refused = [&](const std::string& message) {
    const std::string ack = send_v2(p.mllp_port(0), message);
    CAPTURE(ack);
    const std::string code = msa(ack).substr(0, 2);
    CHECK((code == "AE" || code == "AR"));
    CHECK(names_msh10(err_location(ack)));
  };
  refused(adt("A08", "R10M1", "GP1", nhs, "Renamed"));
  const std::string other_nhs = nhs_number(1002);
  refused(adt("A01", "R10M1", "GP1", other_nhs, "Someoneelse"));
  const auto after = patient_by_nhs(*gp, nhs);
  REQUIRE(after);
  CHECK(text_at(*after, "meta.versionId") == "1");
  CHECK(text_at(*after, "name[0].family") == "Resent");
  CHECK_FALSE(patient_by_nhs(*gp, other_nhs));  // nothing created under the used control id
  CHECK(rejected_entries(*ops, "mllp").size() == rejected_before + 2);

  // The key is the partner's: the trust may use the same control id for its own message.
  const std::string trust_nhs = nhs_number(1003);
  CHECK(msa(send_v2(p.mllp_port(1), adt("A01", "R10M1", "RX1", trust_nhs, "Trustsent"))) == "AA|R10M1");
  auto trust = p.client("acute-trust");
  CHECK(patient_by_nhs(*trust, trust_nhs));
}

TEST_CASE(
    "rule 10: over POST /$ingest a re-send is answered as before; another message under a used MSH-10 is "
    "refused") {
  Partnership p;
  auto gp = p.client("gp-practice");
  auto ops = p.client("operator");
  auto ingest = [&](const std::string& message) {
    return gp->request("POST", "/$ingest", message, {{"Content-Type", "x-application/hl7-v2+er7"}});
  };
  const std::string nhs = nhs_number(1011);
  const std::string first = adt("A01", "R10H1", "GP1", nhs, "Resenthttp");
  const auto applied = ingest(first);
  REQUIRE_MESSAGE(applied.status == 200, applied.body);
  REQUIRE(text_at(*patient_by_nhs(*gp, nhs), "meta.versionId") == "1");

  const auto again = ingest(with_msh7(first, "20260102080000"));
  CHECK_MESSAGE(again.status == 200, again.body);
  CHECK(text_at(*patient_by_nhs(*gp, nhs), "meta.versionId") == "1");

  const std::size_t rejected_before = rejected_entries(*ops, "http").size();
  const auto renamed = ingest(adt("A08", "R10H1", "GP1", nhs, "Renamedhttp"));
  CHECK_MESSAGE((renamed.status == 400 || renamed.status == 422), renamed.status, " ", renamed.body);
  const std::string other_nhs = nhs_number(1012);
  const auto other = ingest(adt("A01", "R10H1", "GP1", other_nhs, "Someoneelse"));
  CHECK_MESSAGE((other.status == 400 || other.status == 422), other.status, " ", other.body);
  const auto after = patient_by_nhs(*gp, nhs);
  REQUIRE(after);
  CHECK(text_at(*after, "meta.versionId") == "1");
  CHECK(text_at(*after, "name[0].family") == "Resenthttp");
  CHECK_FALSE(patient_by_nhs(*gp, other_nhs));
  CHECK(rejected_entries(*ops, "http").size() == rejected_before + 2);
}

}  // namespace
}  // namespace fhirgate::testing::security
