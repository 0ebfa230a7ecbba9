// Issue 17, rule 1: only the privacy officer and the partners named consent registrars may record,
// change, retire or delete a patient's privacy Consent, through any door. The acute trust holds Consent
// create/update/delete in its agreement but is no registrar: every way it tries is refused, stores
// nothing, and is audited against the patient.
#include "tests/security/common.hpp"

namespace fhirgate::testing::security {
namespace {

constexpr const char* kConsentScope = "http://terminology.hl7.org/CodeSystem/consentscope";

// A Consent of any shape: `scope_code` from consentscope, `category` a CodeableConcept as JSON.
std::string any_consent(const std::string& patient_id, const std::string& scope_code,
                        const std::string& category, const std::string& status, const std::string& provision,
                        const std::string& id = {}) {
  return R"({"resourceType":"Consent",)" + (id.empty() ? std::string() : R"("id":")" + id + R"(",)") +
         R"("status":")" + status + R"(","scope":{"coding":[{"system":")" + kConsentScope + R"(","code":")" +
         scope_code + R"("}]},"category":[)" + category + R"(],"patient":{"reference":"Patient/)" +
         patient_id +
         R"("},"dateTime":"2026-01-01T00:00:00Z",)"
         R"("policyRule":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"OPTIN"}]},)"
         R"("provision":)" +
         provision + "}";
}
const std::string kPrivacyCategory = R"({"coding":[{"system":"http://loinc.org","code":"59284-0"}]})";
const std::string kResearchCategory =
    R"({"coding":[{"system":"http://terminology.hl7.org/CodeSystem/consentcategorycodes","code":"research"}]})";

// A refusal as rule 1 words it: 403 with an OperationOutcome whose issue code is forbidden.
void check_forbidden(const std::string& what, const Response& r) {
  INFO(what << " answered " << r.status << ": " << r.body);
  CHECK(r.status == 403);
  if (r.status != 403) return;
  const auto oo = json(r.body);
  CHECK(text_at(oo, "resourceType") == "OperationOutcome");
  CHECK(text_at(oo, "issue[0].code") == "forbidden");
}

TEST_CASE(
    "rule 1: a partner that is no registrar cannot record, retire, repurpose or delete a privacy Consent "
    "over REST") {
  Partnership p;
  auto gp = p.client("gp-practice");
  auto trust = p.client("acute-trust");
  auto officer = p.client("privacy-officer");
  const std::string shared = create_patient(*gp, "Registered", nhs_number(101));
  const std::string hidden = create_patient(*gp, "Unshared", nhs_number(102));
  const std::string consent = record_consent(*gp, shared, permit("acute-trust"));
  REQUIRE(trust->get("/Patient/" + shared).status == 200);  // so the trust may read the Consent it attacks
  REQUIRE(trust->get("/Patient/" + hidden).status == 404);
  const std::string consent_before = snapshot(*gp, "/Consent/" + consent);

  // Each refused attempt about the shared patient leaves one more refusal in the patient's audit trail.
  int refused_shared = refusals_audited(*officer, shared, "acute-trust");

  // Opening a hidden patient to itself: a Consent that permits the trust.
  check_forbidden("POST permit for a hidden patient",
                  trust->send_json("POST", "/Consent", consent_json(hidden, permit("acute-trust"))));
  CHECK(trust->get("/Patient/" + hidden).status == 404);
  CHECK(refusals_audited(*officer, hidden, "acute-trust") >= 1);

  // A privacy Consent is one by scope OR by category, of any status.
  check_forbidden(
      "POST a privacy Consent by category only",
      trust->send_json("POST", "/Consent",
                       any_consent(shared, "research", kPrivacyCategory, "active", permit("mental-health"))));
  CHECK(refusals_audited(*officer, shared, "acute-trust") > refused_shared);
  refused_shared = refusals_audited(*officer, shared, "acute-trust");
  check_forbidden("POST a privacy Consent by scope only, as a draft",
                  trust->send_json("POST", "/Consent",
                                   any_consent(shared, "patient-privacy", kResearchCategory, "draft",
                                               deny("gp-practice"))));
  CHECK(refusals_audited(*officer, shared, "acute-trust") > refused_shared);
  refused_shared = refusals_audited(*officer, shared, "acute-trust");
  check_forbidden("PUT creating a privacy Consent under a never-used id",
                  trust->send_json("PUT", "/Consent/trust-made-consent",
                                   consent_json(shared, permit("mental-health"), "trust-made-consent")));
  CHECK(refusals_audited(*officer, shared, "acute-trust") > refused_shared);
  refused_shared = refusals_audited(*officer, shared, "acute-trust");

  // Changing the patient's own decision: retiring it, repurposing it, moving it, deleting it.
  check_forbidden("PUT status inactive",
                  trust->send_json("PUT", "/Consent/" + consent,
                                   consent_json(shared, permit("acute-trust"), consent, "inactive")));
  CHECK(refusals_audited(*officer, shared, "acute-trust") > refused_shared);
  refused_shared = refusals_audited(*officer, shared, "acute-trust");
  check_forbidden("PUT turning it into a research Consent",
                  trust->send_json("PUT", "/Consent/" + consent,
                                   any_consent(shared, "research", kResearchCategory, "active",
                                               permit("acute-trust"), consent)));
  CHECK(refusals_audited(*officer, shared, "acute-trust") > refused_shared);
  refused_shared = refusals_audited(*officer, shared, "acute-trust");
  check_forbidden(
      "PUT moving it to the hidden patient",
      trust->send_json("PUT", "/Consent/" + consent, consent_json(hidden, permit("acute-trust"), consent)));
  CHECK(refusals_audited(*officer, shared, "acute-trust") > refused_shared);
  refused_shared = refusals_audited(*officer, shared, "acute-trust");
  check_forbidden("DELETE", trust->request("DELETE", "/Consent/" + consent));
  CHECK(refusals_audited(*officer, shared, "acute-trust") > refused_shared);

  // A research Consent is not a patient's sharing decision: the trust may record it. Turning it into a
  // privacy Consent is recording one.
  const auto research =
      trust->send_json("POST", "/Consent",
                       any_consent(shared, "research", kResearchCategory, "active", permit("acute-trust")));
  REQUIRE_MESSAGE(research.status == 201, research.body);
  const std::string research_id(json(research.body).string_at("id"));
  const std::string research_before = snapshot(*trust, "/Consent/" + research_id);
  check_forbidden("PUT turning a research Consent into a privacy one",
                  trust->send_json("PUT", "/Consent/" + research_id,
                                   consent_json(shared, permit("mental-health"), research_id)));
  CHECK(snapshot(*trust, "/Consent/" + research_id) == research_before);

  // Nothing the trust sent is stored: the patient's decision is as the GP recorded it, no Consent names
  // the hidden patient, and the shared patient has only the GP's Consent and the research one.
  CHECK(snapshot(*gp, "/Consent/" + consent) == consent_before);
  CHECK(stored_with(p, "Consent", "\"Patient/" + hidden + "\"") == 0);
  CHECK(stored_with(p, "Consent", "trust-made-consent") == 0);
  CHECK(stored_with(p, "Consent", "\"Patient/" + shared + "\"") == 2);  // the GP's and the research one
  CHECK(trust->get("/Patient/" + hidden).status == 404);
  CHECK(p.client("mental-health")->get("/Patient/" + shared).status == 404);
  CHECK(gp->get("/Patient/" + shared).status == 200);

  // The registrars are not refused, and each of their writes is audited against the patient (action C, U
  // or D, agent the registrar).
  const auto updated =
      gp->send_json("PUT", "/Consent/" + consent, consent_json(shared, deny("acute-trust"), consent));
  CHECK_MESSAGE(updated.status == 200, updated.body);
  CHECK(officer_events_with(*officer, shared,
                            {"\"Organization/gp-practice\"", "\"action\":\"U\"",
                             "\"Consent/" + consent + "/_history/2\""}) == 1);
  const auto by_officer = officer->send_json("POST", "/Consent", consent_json(shared, permit("social-care")));
  REQUIRE_MESSAGE(by_officer.status == 201, by_officer.body);
  const std::string officer_consent(json(by_officer.body).string_at("id"));
  CHECK(officer_events_with(*officer, shared,
                            {"\"privacy-officer\"", "\"action\":\"C\"",
                             "\"Consent/" + officer_consent + "/_history/1\""}) == 1);
  CHECK(officer->request("DELETE", "/Consent/" + officer_consent).status == 204);
  CHECK(officer_events_with(*officer, shared,
                            {"\"privacy-officer\"", "\"action\":\"D\"", "Consent/" + officer_consent}) == 1);
  CHECK(audit_intact(p));
}

TEST_CASE(
    "rule 1: a non-registrar's privacy Consent is refused in a transaction, in a batch and as a feed row") {
  Partnership p;
  auto gp = p.client("gp-practice");
  auto trust = p.client("acute-trust");
  auto officer = p.client("privacy-officer");
  const std::string shared_nhs = nhs_number(111);
  const std::string hidden_nhs = nhs_number(112);
  const std::string shared = create_patient(*gp, "Bundled", shared_nhs);
  const std::string hidden = create_patient(*gp, "Guarded", hidden_nhs);
  const std::string consent = record_consent(*gp, shared, permit("acute-trust"));
  const std::string consent_before = snapshot(*gp, "/Consent/" + consent);

  // A transaction: a harmless Patient, then the patient's decision retired. All or nothing: 403 naming
  // the Consent's entry, and the Patient is not stored either.
  int refused = refusals_audited(*officer, shared, "acute-trust");
  const auto transaction = trust->send_json(
      "POST", "/",
      bundle_json("transaction",
                  {bundle_entry("POST", "Patient", patient_json("Txnsidecar")),
                   bundle_entry("PUT", "Consent/" + consent,
                                consent_json(shared, permit("acute-trust"), consent, "inactive"))}));
  check_forbidden("a transaction retiring the Consent", transaction);
  if (transaction.status == 403) CHECK(transaction.body.find("Bundle.entry[1]") != std::string::npos);
  CHECK(stored_with(p, "Patient", "Txnsidecar") == 0);
  CHECK(refusals_audited(*officer, shared, "acute-trust") > refused);
  refused = refusals_audited(*officer, shared, "acute-trust");

  // A batch: each Consent entry refused on its own, the harmless entry taken.
  const auto batch = trust->send_json(
      "POST", "/",
      bundle_json("batch", {bundle_entry("POST", "Consent", consent_json(hidden, permit("acute-trust"))),
                            bundle_entry("DELETE", "Consent/" + consent),
                            bundle_entry("POST", "Patient", patient_json("Batchsidecar"))}));
  REQUIRE_MESSAGE(batch.status == 200, batch.body);
  const auto answers = json(batch.body);
  CHECK_MESSAGE(text_at(answers, "entry[0].response.status").starts_with("403"), batch.body);
  CHECK_MESSAGE(text_at(answers, "entry[1].response.status").starts_with("403"), batch.body);
  CHECK(text_at(answers, "entry[2].response.status") == "201 Created");
  CHECK(refusals_audited(*officer, shared, "acute-trust") > refused);
  CHECK(refusals_audited(*officer, hidden, "acute-trust") >= 1);

  // The consent register as a feed, sent by the trust: an opt-in for the hidden patient, an opt-out for
  // the shared one. Each row 403, counted as rejected.
  refused = refusals_audited(*officer, shared, "acute-trust");
  const int refused_hidden = refusals_audited(*officer, hidden, "acute-trust");
  const auto feed =
      ingest_feed(p, "acute-trust", "consents",
                  std::string(kConsentsHeader) + consent_row(hidden_nhs, "Y") + consent_row(shared_nhs, "N"));
  REQUIRE_MESSAGE(feed.status == 200, feed.body);
  CHECK(entry_statuses(json(feed.body)) == "403 Forbidden; 403 Forbidden");
  CHECK(feed.header("X-Ingest-Summary").find("rejected=2") != std::string::npos);
  CHECK(refusals_audited(*officer, hidden, "acute-trust") > refused_hidden);
  CHECK(refusals_audited(*officer, shared, "acute-trust") > refused);

  // Nothing of it stored: the GP's Consent as it was, no Consent about the hidden patient, and the
  // patient's sharing exactly as the patient decided.
  CHECK(snapshot(*gp, "/Consent/" + consent) == consent_before);
  CHECK(stored_with(p, "Consent", "\"Patient/" + hidden + "\"") == 0);
  CHECK(stored_with(p, "Consent", "https://fhir.westshire.gov.uk/Id/consent-register") == 0);
  CHECK(trust->get("/Patient/" + hidden).status == 404);
  CHECK(trust->get("/Patient/" + shared).status == 200);
  CHECK(stored_with(p, "Patient", "Batchsidecar") == 1);

  // The council's register is a registrar's: the same row from it is taken.
  const auto council =
      ingest_feed(p, "social-care", "consents", std::string(kConsentsHeader) + consent_row(hidden_nhs, "Y"));
  REQUIRE_MESSAGE(council.status == 200, council.body);
  CHECK(entry_statuses(json(council.body)) == "201 Created");
  CHECK(audit_intact(p));
}

}  // namespace
}  // namespace fhirgate::testing::security
