// Issue 17, rule 8: the audit chain cannot be poisoned. Whatever bytes a client sends (NUL, control
// characters, bytes that are not UTF-8, a truncated sequence, a noncharacter) in HL7 v2 control ids, in
// search values (AuditEvent searches included) and in ids, `fhirgate audit verify` afterwards says the
// chain is intact.
#include "tests/security/common.hpp"

namespace fhirgate::testing::security {
namespace {

// Percent-encoded: NUL, SOH, a byte that is never UTF-8, a two-byte lead with a bad continuation, U+FFFF.
const std::vector<std::string> kHostile = {"%00", "%01", "%FF", "%C3%28", "%EF%BF%BF"};

// What `fhirgate audit verify` says about the partnership's trail (for the failure message).
std::string verify_says(const Partnership& p) {
  return run_fhirgate("audit verify --config " + p.config + " --db " + p.db()).out;
}

TEST_CASE("rule 8: hostile bytes in HL7 v2 control ids, search values and ids leave the audit chain intact") {
  Partnership p;
  auto gp = p.client("gp-practice");
  auto trust = p.client("acute-trust");
  auto officer = p.client("privacy-officer");
  create_patient(*gp, "Chainkept", nhs_number(801));
  REQUIRE(audit_intact(p));

  // HL7 v2 MSH-10: hex escapes (\X01\ is SOH, \X00\ NUL, \XFF\ not UTF-8, \XC328\ a broken pair, \X0D\ a
  // segment end) and the same bytes raw; over MLLP and over POST /$ingest.
  const std::vector<std::string> control_bytes = {"\\X01\\",
                                                  "\\X00\\",
                                                  "\\XFF\\",
                                                  "\\XC328\\",
                                                  "\\X0D\\",
                                                  std::string("\x01"),
                                                  std::string("\xFF"),
                                                  std::string("\xC3\x28"),
                                                  std::string("\xEF\xBF\xBF"),
                                                  std::string(1, '\0')};
  unsigned n = 0;
  for (const auto& bytes : control_bytes) {
    CAPTURE(n);
    const std::string control = "R8" + std::to_string(n) + bytes + "Z";
    const std::string ack =
        send_v2(p.mllp_port(0), adt("A01", control, "GP1", nhs_number(810 + n), "Chainmllp"));
    CHECK_MESSAGE(ack.find("\rMSA|") != std::string::npos, ack);
    const auto r =
        gp->request("POST", "/$ingest", adt("A01", control + "H", "GP1", nhs_number(840 + n), "Chainhttp"),
                    {{"Content-Type", "x-application/hl7-v2+er7"}});
    CHECK_MESSAGE(r.status < 500, r.body);
    ++n;
  }
  CHECK_MESSAGE(audit_intact(p), verify_says(p));

  // REST: search values of every kind, AuditEvent searches by the privacy officer and by a partner, ids.
  for (const auto& h : kHostile) {
    CAPTURE(h);
    // Every answer is an answer (never a 5xx): the request and its audit were both taken.
    auto answered = [&](HttpClient& who, const std::string& target) {
      const auto r = who.get(target);
      CHECK_MESSAGE(r.status < 500, target, " -> ", r.status, " ", r.body);
    };
    answered(*officer, "/AuditEvent?patient=Patient/ab" + h);
    answered(*officer, "/AuditEvent?patient=" + h);
    answered(*officer, "/AuditEvent?agent=Organization/x" + h + "&entity=Patient/" + h + "y");
    answered(*trust, "/AuditEvent?patient=Patient/" + h);
    answered(*gp, "/Patient?identifier=" + std::string(kNhsSystem) + "|943" + h + "4765919");
    answered(*gp, "/Patient?family=" + h + "x");
    answered(*gp, "/Consent?patient=Patient/ab" + h);
    answered(*gp, "/Consent?patient=" + h);
    answered(*gp, "/Patient/ab" + h);
    answered(*trust, "/Patient/ab" + h + "/_history/1");
  }
  CHECK_MESSAGE(audit_intact(p), verify_says(p));
  // The privacy officer's report of all that is still served, in either format (rule 11's promise too).
  CHECK(officer->get("/AuditEvent?_count=500").status == 200);
  CHECK(officer->get("/AuditEvent?_count=500&_format=xml").status == 200);
}

}  // namespace
}  // namespace fhirgate::testing::security
