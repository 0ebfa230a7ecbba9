// Issue 17, rule 5: the sharing agreement binds every entry point. An HL7 v2 message (MLLP or POST
// /$ingest) or a feed row may create a Patient only with `create` on Patient, and change one (A08/A31,
// an A40 merge, a row matching a held record) only with `update`. Refused: AR (CR in enhanced mode) with
// an ERR segment, journaled rejected, nothing stored; a feed row 403 Forbidden.
#include "tests/security/common.hpp"

namespace fhirgate::testing::security {
namespace {

// An application reject: AR for `control_id`, with an ERR segment.
void check_refused_ack(const std::string& what, const std::string& ack, const std::string& code,
                       const std::string& control_id) {
  INFO(what << ": " << replaced(ack, "\r", "\n"));
  CHECK(msa(ack) == code + "|" + control_id);
  CHECK(ack.find("\rERR|") != std::string::npos);
}

// The configuration with create and update granted apart: the trust may update Patients but not create
// them; the council may create them but not update them.
std::string split_grants(std::string config) {
  const std::string full =
      R"("Patient": ["read", "vread", "history-instance", "history-type", "search-type", "create", "update", "delete"])";
  const auto trust = config.find(R"("id": "acute-trust")");
  const auto at = config.find(full, trust);
  REQUIRE((trust != std::string::npos && at != std::string::npos));
  config.replace(
      at, full.size(),
      R"("Patient": ["read", "vread", "history-instance", "history-type", "search-type", "update", "delete"])");
  const std::string council = R"({"Patient": ["read", "search-type", "create", "update"],)";
  const auto c = config.find(council);
  REQUIRE(c != std::string::npos);
  config.replace(c, council.size(), R"({"Patient": ["read", "search-type", "create"],)");
  return config;
}

TEST_CASE(
    "rule 5: a partner whose agreement has no Patient create or update writes nothing by HL7 v2 or feed") {
  Partnership p;
  auto gp = p.client("gp-practice");
  auto mental = p.client("mental-health");
  // Two GP patients the mental health trust may see (so no identity rule is in the way).
  const std::string nhs_seen = nhs_number(501), nhs_other = nhs_number(502);
  const std::string seen = create_patient(*gp, "Seenbymh", nhs_seen);
  const std::string other = create_patient(*gp, "Seenbymh", nhs_other);
  record_consent(*gp, seen, permit("mental-health"));
  record_consent(*gp, other, permit("mental-health"));
  REQUIRE(mental->get("/Patient/" + seen).status == 200);
  const std::string seen_before = snapshot(*gp, "/Patient/" + seen);
  const std::string other_before = snapshot(*gp, "/Patient/" + other);

  // Over its own MLLP listener: creating (A01, and A08 for an unknown patient), updating, merging.
  check_refused_ack("A01", send_v2(p.mllp_port(2), adt("A01", "MH1", "MH1", nhs_number(503), "Mhcreated")),
                    "AR", "MH1");
  check_refused_ack(
      "A01 in enhanced mode",
      send_v2(p.mllp_port(2), enhanced_mode(adt("A01", "MH2", "MH1", nhs_number(504), "Mhcreated"))), "CR",
      "MH2");
  check_refused_ack("A08 creating",
                    send_v2(p.mllp_port(2), adt("A08", "MH3", "MH1", nhs_number(505), "Mhcreated")), "AR",
                    "MH3");
  check_refused_ack("A08 updating", send_v2(p.mllp_port(2), adt("A08", "MH4", "MH1", nhs_seen, "Mhchanged")),
                    "AR", "MH4");
  check_refused_ack("A40", send_v2(p.mllp_port(2), adt_merge("MH5", "MH1", nhs_seen, nhs_other)), "AR",
                    "MH5");
  // Over HTTP.
  const auto ingested = ingest_v2(p, "mental-health", adt("A01", "MH6", "MH1", nhs_number(506), "Mhcreated"));
  CHECK_MESSAGE((ingested.status >= 400 && ingested.status < 500), ingested.body);
  // As feed rows: one new client, one the gateway holds.
  const auto fed =
      ingest_feed(p, "mental-health", "clients",
                  std::string(kClientsHeader) + client_row("MH-7", nhs_number(507), "Mhcreated") +
                      client_row("MH-8", nhs_seen, "Mhchanged"));
  REQUIRE_MESSAGE(fed.status == 200, fed.body);
  CHECK(entry_statuses(json(fed.body)) == "403 Forbidden; 403 Forbidden");
  CHECK(fed.header("X-Ingest-Summary").find("rejected=2") != std::string::npos);

  // Nothing stored, nothing changed.
  CHECK(stored_with(p, "Patient", "Mhcreated") == 0);
  CHECK(stored_with(p, "Patient", "Mhchanged") == 0);
  for (unsigned n : {503u, 504u, 505u, 506u, 507u}) CHECK(stored_with(p, "Patient", nhs_number(n)) == 0);
  CHECK(snapshot(*gp, "/Patient/" + seen) == seen_before);
  CHECK(snapshot(*gp, "/Patient/" + other) == other_before);

  // Every refused message journaled rejected.
  int rejected_v2 = 0;
  for (const auto& e : journal_entries(p, "partner=mental-health&status=rejected"))
    rejected_v2 += e.string_at("format") == "hl7v2";
  CHECK(rejected_v2 == 6);

  // The partners that hold the grants still write the same way.
  CHECK(msa(send_v2(p.mllp_port(1), adt("A01", "RX9", "RX1", nhs_number(508), "Trustcreated"))) == "AA|RX9");
  const auto council =
      ingest_feed(p, "social-care", "clients",
                  std::string(kClientsHeader) + client_row("WSC-9", nhs_number(509), "Councilmade"));
  REQUIRE_MESSAGE(council.status == 200, council.body);
  CHECK(entry_statuses(json(council.body)) == "201 Created");
}

TEST_CASE("rule 5: create and update are separate grants at every entry point") {
  Partnership p(split_grants);
  auto gp = p.client("gp-practice");
  auto trust = p.client("acute-trust");
  const std::string nhs_seen = nhs_number(511);
  const std::string seen = create_patient(*gp, "Seenbyall", nhs_seen);
  record_consent(*gp, seen, permit("acute-trust"));
  record_consent(*gp, seen, permit("social-care"));

  // The trust (update, no create): every door that would create is refused.
  CHECK(trust->send_json("POST", "/Patient", patient_json("Trustrest", nhs_number(512))).status == 403);
  check_refused_ack("A01", send_v2(p.mllp_port(1), adt("A01", "SG1", "RX1", nhs_number(513), "Trustcreated")),
                    "AR", "SG1");
  check_refused_ack("A08 creating",
                    send_v2(p.mllp_port(1), adt("A08", "SG2", "RX1", nhs_number(514), "Trustcreated")), "AR",
                    "SG2");
  const auto ingested =
      ingest_v2(p, "acute-trust", adt("A01", "SG3", "RX1", nhs_number(515), "Trustcreated"));
  CHECK_MESSAGE((ingested.status >= 400 && ingested.status < 500), ingested.body);
  // ... while its updates are taken.
  CHECK(msa(send_v2(p.mllp_port(1), adt("A08", "SG4", "RX1", nhs_seen, "Trustchanged"))) == "AA|SG4");
  const auto trust_rows =
      ingest_feed(p, "acute-trust", "clients",
                  std::string(kClientsHeader) + client_row("SG-5", nhs_number(516), "Trustcreated") +
                      client_row("SG-6", nhs_seen, "Trustfedchange"));
  REQUIRE_MESSAGE(trust_rows.status == 200, trust_rows.body);
  CHECK(entry_statuses(json(trust_rows.body)) == "403 Forbidden; 200 OK");
  CHECK(stored_with(p, "Patient", "Trustcreated") == 0);
  for (unsigned n : {513u, 514u, 515u, 516u}) CHECK(stored_with(p, "Patient", nhs_number(n)) == 0);
  const std::string after_trust = snapshot(*gp, "/Patient/" + seen);
  CHECK(text_at(json(after_trust), "meta.versionId") == "3");
  CHECK(after_trust.find("Trustfedchange") != std::string::npos);

  // The council (create, no update): a new client is taken, a change to a held one refused.
  const auto council_rows =
      ingest_feed(p, "social-care", "clients",
                  std::string(kClientsHeader) + client_row("WSC-7", nhs_number(517), "Councilmade") +
                      client_row("WSC-8", nhs_seen, "Councilchange"));
  REQUIRE_MESSAGE(council_rows.status == 200, council_rows.body);
  CHECK(entry_statuses(json(council_rows.body)) == "201 Created; 403 Forbidden");
  CHECK(snapshot(*gp, "/Patient/" + seen) == after_trust);
  CHECK(stored_with(p, "Patient", "Councilchange") == 0);
}

}  // namespace
}  // namespace fhirgate::testing::security
