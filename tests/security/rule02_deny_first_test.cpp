// Issue 17, rule 2: within one Consent the deepest matching provision decides; across a patient's
// Consents any deny wins over any permit; a record's supplier holds only an implicit permit, which a deny
// naming it overrides; break-glass still overrides a deny, and says so in the audit trail.
#include "tests/security/common.hpp"

namespace fhirgate::testing::security {
namespace {

// A root deny for everyone with a nested permit for `partner`: within this one Consent, the partner is let
// in.
std::string deny_all_but(const std::string& partner) {
  return R"({"type":"deny","provision":[)" + permit(partner) + "]}";
}
// A root without a type whose nested provision permits `partner` (a permit one level deep).
std::string nested_permit(const std::string& partner) {
  return R"({"provision":[)" + permit(partner) + "]}";
}

// What `who` learns of Patient/<id> through every read door; `shown` says whether it should see it.
void check_reads(HttpClient& who, const std::string& id, bool shown,
                 const std::vector<std::pair<std::string, std::string>>& headers = {}) {
  const std::string label = "Patient/" + id + (shown ? " should be shown" : " should be hidden");
  INFO(label);
  const int expected = shown ? 200 : 404;
  const auto read = who.get("/Patient/" + id, headers);
  CHECK(read.status == expected);
  CHECK(who.get("/Patient/" + id + "/_history/1", headers).status == expected);
  CHECK(who.get("/Patient/" + id + "/_history", headers).status == expected);
  if (!shown) {
    // Exactly what an unknown id gets.
    CHECK(replaced(read.body, id, "nosuchid") == who.get("/Patient/nosuchid", headers).body);
  }
  const auto batch =
      who.send_json("POST", "/", bundle_json("batch", {bundle_entry("GET", "Patient/" + id)}), headers);
  REQUIRE_MESSAGE(batch.status == 200, batch.body);
  CHECK(text_at(json(batch.body), "entry[0].response.status").starts_with(shown ? "200" : "404"));
}

// The ids and total a search shows `who`.
std::pair<std::set<std::string>, std::string> search(HttpClient& who, const std::string& query) {
  const auto r = who.get(query);
  REQUIRE_MESSAGE(r.status == 200, r.body);
  const auto bundle = json(r.body);
  return {ids_in(bundle), text_at(bundle, "total")};
}

TEST_CASE(
    "rule 2: across a patient's Consents a deny wins over any permit however deep; within one the deepest "
    "decides") {
  Partnership p;
  auto gp = p.client("gp-practice");
  auto trust = p.client("acute-trust");
  auto officer = p.client("privacy-officer");

  // One Consent: a root deny with a nested permit for the trust. The nested permit decides: shown.
  const std::string within_one = create_patient(*gp, "Denyfirst", nhs_number(201));
  record_consent(*gp, within_one, deny_all_but("acute-trust"));
  // Two Consents, the permit one level deeper than the deny, recorded in either order: hidden.
  const std::string permit_then_deny = create_patient(*gp, "Denyfirst", nhs_number(202));
  record_consent(*gp, permit_then_deny, nested_permit("acute-trust"));
  record_consent(*gp, permit_then_deny, deny("acute-trust"));
  const std::string deny_then_permit = create_patient(*gp, "Denyfirst", nhs_number(203));
  record_consent(*gp, deny_then_permit, deny("acute-trust"));
  record_consent(*gp, deny_then_permit, deny_all_but("acute-trust"));
  // Two Consents at the same depth: hidden.
  const std::string same_depth = create_patient(*gp, "Denyfirst", nhs_number(204));
  record_consent(*gp, same_depth, permit("acute-trust"));
  record_consent(*gp, same_depth, deny("acute-trust"));

  check_reads(*trust, permit_then_deny, false);
  check_reads(*trust, deny_then_permit, false);
  check_reads(*trust, same_depth, false);
  check_reads(*trust, within_one, true);
  const auto [found, total] = search(*trust, "/Patient?family=Denyfirst&_total=accurate");
  CHECK(joined(found) == within_one);
  CHECK(total == "1");
  CHECK(
      search(*trust, std::string("/Patient?identifier=") + kNhsSystem + "|" + nhs_number(202)).first.empty());

  // Break-glass overrides the deny, and the audit trail names it.
  CHECK(trust->get("/Patient/" + permit_then_deny, {{"X-Purpose-Of-Use", "ETREAT"}}).status == 200);
  CHECK(officer_events_with(*officer, permit_then_deny, {"\"Organization/acute-trust\"", "\"BTG\""}) == 1);
  CHECK(audit_intact(p));
}

TEST_CASE(
    "rule 2: a Consent denying a record's own supplier hides the record from it through every door; "
    "break-glass overrides") {
  Partnership p;
  auto gp = p.client("gp-practice");
  auto trust = p.client("acute-trust");
  auto officer = p.client("privacy-officer");

  // Supplied by the GP over REST; the patient denies the GP.
  const std::string self_denied = create_patient(*gp, "Selfdenied", nhs_number(211));
  record_consent(*gp, self_denied, deny("gp-practice"));
  // A permit for another partner changes nothing for the supplier.
  const std::string kept = create_patient(*gp, "Selfdenied", nhs_number(212));
  record_consent(*gp, kept, permit("acute-trust"));
  // Supplied by the trust over HL7 v2 and as a feed row; those patients deny the trust.
  REQUIRE(msa(send_v2(p.mllp_port(1), adt("A01", "SD1", "RX1", nhs_number(213), "Selfdenied"))) == "AA|SD1");
  const std::string by_v2 =
      text_at(json(trust->get(std::string("/Patient?identifier=") + kNhsSystem + "|" + nhs_number(213)).body),
              "entry[0].resource.id");
  const auto fed =
      ingest_feed(p, "acute-trust", "clients",
                  std::string(kClientsHeader) + client_row("SD-4", nhs_number(214), "Selfdenied"));
  REQUIRE_MESSAGE(fed.status == 200, fed.body);
  const std::string location = text_at(json(fed.body), "entry[0].response.location");
  REQUIRE(location.starts_with("Patient/"));
  const std::string by_feed = location.substr(8, location.find("/_history") - 8);
  record_consent(*officer, by_v2, deny("acute-trust"));
  record_consent(*officer, by_feed, deny("acute-trust"));

  check_reads(*gp, self_denied, false);
  check_reads(*gp, kept, true);
  check_reads(*trust, by_v2, false);
  check_reads(*trust, by_feed, false);
  check_reads(*trust, kept, true);
  {
    const auto [found, total] = search(*gp, "/Patient?family=Selfdenied&_total=accurate");
    CHECK(joined(found) == kept);
    CHECK(total == "1");
  }
  {
    const auto [found, total] = search(*trust, "/Patient?family=Selfdenied&_total=accurate");
    CHECK(joined(found) == kept);
    CHECK(total == "1");
  }

  // Break-glass: the supplier gets in under ETREAT, and the event says BTG.
  check_reads(*gp, self_denied, true, {{"X-Purpose-Of-Use", "ETREAT"}});
  CHECK(officer_events_with(*officer, self_denied, {"\"Organization/gp-practice\"", "\"BTG\""}) >= 1);
  CHECK(trust->get("/Patient/" + by_v2, {{"X-Purpose-Of-Use", "ETREAT"}}).status == 200);
  CHECK(officer_events_with(*officer, by_v2, {"\"Organization/acute-trust\"", "\"BTG\""}) >= 1);
  CHECK(audit_intact(p));
}

}  // namespace
}  // namespace fhirgate::testing::security
