// Issue 17, rule 7: every patient that leaves the gateway is audited against that patient, as the one who
// looked: a Bundle's GET entries (also under break-glass), FHIR messages, deliveries, an operator opening a
// journal entry's payload or retrying a message. And a partner reading its own AuditEvents learns nothing
// from the events of what it was refused or what was held from it.
#include <filesystem>

#include "tests/security/common.hpp"

namespace fhirgate::testing::security {
namespace {

namespace fs = std::filesystem;

// A batch or transaction of GET entries.
std::string get_bundle(const std::string& kind, const std::vector<std::string>& urls) {
  std::string entries;
  for (const auto& url : urls)
    entries +=
        (entries.empty() ? "" : ",") + std::string(R"({"request":{"method":"GET","url":")") + url + "\"}}";
  return R"({"resourceType":"Bundle","type":")" + kind + R"(","entry":[)" + entries + "]}";
}

// How many of the officer's events on Patient/<id> were asked for by `requestor` and satisfy `also`.
template <class Also>
int events_by(HttpClient& officer, const std::string& patient_id, const std::string& requestor, Also also) {
  int n = 0;
  for (const auto& e : patient_events(officer, patient_id)) n += requested_by(e, requestor) && also(e);
  return n;
}
int events_by(HttpClient& officer, const std::string& patient_id, const std::string& requestor) {
  return events_by(officer, patient_id, requestor, [](const fhir::Node&) { return true; });
}

bool successful_read(const fhir::Node& e) {
  return e.string_at("action") == "R" && e.string_at("outcome") == "0";
}

TEST_CASE(
    "rule 7: a Bundle's GET entry is audited against its patient as the caller, with BTG under break-glass") {
  Partnership p;
  auto gp = p.client("gp-practice");
  auto trust = p.client("acute-trust");
  auto officer = p.client("privacy-officer");
  const std::string shared = create_patient(*gp, "Bundleread", nhs_number(701));
  record_consent(*gp, shared, permit("acute-trust"));
  const std::string denied = create_patient(*gp, "Glassread", nhs_number(702));
  record_consent(*gp, denied, deny("acute-trust"));
  const std::string trust_org = "Organization/acute-trust";
  REQUIRE(events_by(*officer, shared, trust_org, successful_read) == 0);

  // Each GET entry that returns the patient leaves a read (R) by the trust against that patient.
  for (const std::string& kind : std::vector<std::string>{"batch", "transaction"}) {
    CAPTURE(kind);
    const int before = events_by(*officer, shared, trust_org, successful_read);
    const auto r = trust->send_json("POST", "/", get_bundle(kind, {"Patient/" + shared}));
    REQUIRE_MESSAGE(r.status == 200, r.body);
    REQUIRE(text_at(json(r.body), "entry[0].response.status").starts_with("200"));
    CHECK(events_by(*officer, shared, trust_org, successful_read) > before);
  }

  // Break-glass opens the denied patient through a GET entry: audited as a read with BTG.
  for (const std::string& kind : std::vector<std::string>{"batch", "transaction"}) {
    CAPTURE(kind);
    const auto glass_reads = [&] {
      return events_by(*officer, denied, trust_org,
                       [](const fhir::Node& e) { return successful_read(e) && has_purpose(e, "BTG"); });
    };
    const int before = glass_reads();
    const auto r = trust->send_json("POST", "/", get_bundle(kind, {"Patient/" + denied}),
                                    {{"X-Purpose-Of-Use", "ETREAT"}});
    REQUIRE_MESSAGE(r.status == 200, r.body);
    REQUIRE(text_at(json(r.body), "entry[0].response.status").starts_with("200"));
    CHECK(glass_reads() > before);
  }
}

// A message about two patients: a Patient entry (the focus) and an Encounter whose subject is the other.
std::string message_about(const std::string& message_id, const std::string& patient_a,
                          const std::string& patient_b) {
  return R"({"resourceType":"Bundle","id":")" + message_id +
         R"(","type":"message","timestamp":"2026-01-01T00:00:00Z","entry":[)"
         R"({"fullUrl":"urn:uuid:7a7a7a7a-0000-4000-8000-000000000001","resource":{"resourceType":"MessageHeader",)"
         R"("eventCoding":{"system":"http://example.org/fhir/message-events","code":"admit-notification"},)"
         R"("source":{"endpoint":"http://gp.example/fhir"},)"
         R"("focus":[{"reference":"urn:uuid:7a7a7a7a-0000-4000-8000-000000000002"}]}},)"
         R"({"fullUrl":"urn:uuid:7a7a7a7a-0000-4000-8000-000000000002","resource":{"resourceType":"Patient","id":")" +
         patient_a +
         R"(","name":[{"family":"Messaged"}],"gender":"female"}},)"
         R"({"fullUrl":"urn:uuid:7a7a7a7a-0000-4000-8000-000000000003","resource":{"resourceType":"Encounter",)"
         R"("status":"finished","class":{"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"AMB"},)"
         R"("subject":{"reference":"Patient/)" +
         patient_b + R"("}}}]})";
}

TEST_CASE(
    "rule 7: a FHIR message is audited against every patient it is about, with its sender as the agent") {
  Partnership p;
  auto gp = p.client("gp-practice");
  auto officer = p.client("privacy-officer");
  const std::string a = create_patient(*gp, "Messagefocus", nhs_number(703));
  const std::string b = create_patient(*gp, "Messagesubject", nhs_number(704));
  const std::string gp_org = "Organization/gp-practice";
  const int before_a = events_by(*officer, a, gp_org);
  const int before_b = events_by(*officer, b, gp_org);

  const auto r = gp->send_json("POST", "/$process-message", message_about(unique_name("m"), a, b));
  REQUIRE_MESSAGE(r.status == 200, r.body);
  REQUIRE(text_at(json(r.body), "entry[0].resource.response.code") == "ok");
  CHECK(events_by(*officer, a, gp_org) > before_a);  // the Patient in the message
  CHECK(events_by(*officer, b, gp_org) > before_b);  // the Encounter's subject
}

TEST_CASE("rule 7: a delivery is audited against its patient with the receiving partner as the agent") {
  Partnership p;
  auto gp = p.client("gp-practice");
  auto officer = p.client("privacy-officer");
  // The Patient and its Consent (letting the council see it) in one commit, so the route's delivery is
  // decided with the consent in place.
  const std::string full_url = "urn:uuid:5d5d5d5d-0000-4000-8000-000000000001";
  std::string consent = consent_json("placeholder", permit("social-care"));
  consent.replace(consent.find("Patient/placeholder"), 19, full_url);  // the Patient of this transaction
  const auto r =
      gp->send_json("POST", "/",
                    R"({"resourceType":"Bundle","type":"transaction","entry":[{"fullUrl":")" + full_url +
                        R"(","resource":)" + patient_json("Delivered", nhs_number(705)) +
                        R"(,"request":{"method":"POST","url":"Patient"}},)" + R"({"resource":)" + consent +
                        R"(,"request":{"method":"POST","url":"Consent"}}]})");
  REQUIRE_MESSAGE(r.status == 200, r.body);
  const std::string location = text_at(json(r.body), "entry[0].response.location");
  const std::string id = location.substr(8, location.find("/_history") - 8);

  const bool dropped = poll_until(
      [&] {
        for (const auto& f : fs::directory_iterator(p.dir + "/drop"))
          if (f.is_regular_file() && !f.path().string().ends_with(".part")) return true;
        return false;
      },
      std::chrono::seconds(10));
  REQUIRE_MESSAGE(dropped, "the GP's Patient never reached the council's drop folder");
  // The council received the patient: the report names the council as the one it was disclosed to.
  const bool audited = poll_until([&] { return events_by(*officer, id, "Organization/social-care") > 0; },
                                  std::chrono::seconds(3));
  std::set<std::string> requestors;
  for (const auto& e : patient_events(*officer, id)) requestors.insert(requestor_of(e));
  std::string listed;
  for (const auto& requestor : requestors) listed += requestor + " ";
  CHECK_MESSAGE(audited, "requestors of the patient's events: " << listed);
}

// An ADT^A40 from the GP: MRG-1 `retired` is merged into PID-3 `surviving` (NHS numbers).
std::string merge(const std::string& control_id, const std::string& surviving, const std::string& retired) {
  return "MSH|^~\\&|PAS|GP1|FHIRGW|PARTNERSHIP|20260101120000||ADT^A40^ADT_A39|" + control_id +
         "|P|2.5.1\rEVN|A40|20260101120000\rPID|1||" + surviving +
         "^^^NHS^NH||Survivor^Ada^^^Ms||19700101|F\r" + "MRG|" + retired + "^^^NHS^NH\r";
}

TEST_CASE(
    "rule 7: an operator who opens a journal entry or retries a message is the agent of its AuditEvents") {
  Partnership p;
  auto gp = p.client("gp-practice");
  auto ops = p.client("operator");
  auto officer = p.client("privacy-officer");
  auto journal_list = [&](const std::string& query) {
    const auto r = ops->get("/_ops/journal?" + query);
    REQUIRE_MESSAGE(r.status == 200, r.body);
    return json(r.body);
  };

  // A REST write: its journal entry shows the payload, so opening it is a look at the patient.
  const std::string correlation = unique_name("rule7rest");
  const auto created = gp->send_json("POST", "/Patient", patient_json("Journalled", nhs_number(706)),
                                     {{"X-Correlation-Id", correlation}});
  REQUIRE(created.status == 201);
  const std::string rest_patient(json(created.body).string_at("id"));
  const auto rest_entry = journal_list("correlation=" + correlation);
  REQUIRE(at(rest_entry, "entries[0].id"));
  REQUIRE(events_by(*officer, rest_patient, "operator") == 0);
  const auto opened = ops->get("/_ops/journal/" + at(rest_entry, "entries[0].id")->text());
  REQUIRE(opened.status == 200);
  REQUIRE(opened.body.find("Journalled") != std::string::npos);  // the payload was shown
  CHECK(events_by(*officer, rest_patient, "operator") > 0);

  // An HL7 v2 message's entry likewise.
  const std::string surviving = nhs_number(707);
  REQUIRE(msa(send_v2(p.mllp_port(0), adt("A01", "R7A01", "GP1", surviving, "Survivor"))) == "AA|R7A01");
  const std::string v2_patient =
      text_at(json(gp->get("/Patient?identifier=" + std::string(kNhsSystem) + "|" + surviving).body),
              "entry[0].resource.id");
  REQUIRE(v2_patient != "<absent>");
  std::string v2_entry;
  const auto gp_entries = journal_list("partner=gp-practice&_count=100");
  for (const auto& e : gp_entries.find("entries")->items())
    if (e.string_at("transport") == "mllp" &&
        fhir::write_json(e).find("Patient/" + v2_patient) != std::string::npos)
      v2_entry = e.find("id")->text();
  REQUIRE_FALSE(v2_entry.empty());
  REQUIRE(ops->get("/_ops/journal/" + v2_entry).status == 200);
  CHECK(events_by(*officer, v2_patient, "operator") > 0);

  // A merge refused for want of its MRG-1 patient, retried by the operator once that patient exists: the
  // merge it then applies is the operator's doing, not the GP's.
  const std::string retired = nhs_number(708);
  const std::string ack = send_v2(p.mllp_port(0), merge("R7A40", surviving, retired));
  REQUIRE(msa(ack).starts_with("AE|"));
  const auto rejected = journal_list("status=rejected&partner=gp-practice");
  REQUIRE(at(rejected, "entries[0].id"));
  const std::string retired_patient = create_patient(*gp, "Retired", retired);
  const auto retried =
      ops->request("POST", "/_ops/journal/" + at(rejected, "entries[0].id")->text() + "/$retry");
  REQUIRE_MESSAGE(retried.status == 200, retried.body);
  const auto outcome = json(retried.body);
  REQUIRE_MESSAGE(outcome.string_at("status") != "rejected", retried.body);  // applied this time
  const std::string retry_correlation(outcome.string_at("correlationId"));
  int merges = 0;  // the retry's events on the retired patient: its merge (an update)
  for (const auto& e : patient_events(*officer, retired_patient)) {
    if (correlation_of(e) != retry_correlation && e.string_at("action") != "U") continue;
    ++merges;
    CHECK_MESSAGE(requested_by(e, "operator"), "the merge the operator retried is recorded as ",
                  requestor_of(e), "'s");
  }
  CHECK(merges > 0);
}

// The problems a partner's own view of an AuditEvent shows about `hidden`, the record it was refused.
std::vector<std::string> leaks(const fhir::Node& event, const std::string& hidden) {
  std::vector<std::string> found;
  const std::string id(event.string_at("id"));
  const std::string text = audit_text(event);
  if (text.find("Patient/" + hidden + "/_history") != std::string::npos)
    found.push_back("AuditEvent/" + id + " names a version of Patient/" + hidden);
  const bool refused = event.string_at("outcome") != "0";
  if (const auto* entities = event.find("entity"); entities && entities->is_array()) {
    for (const auto& e : entities->items()) {
      const std::string what = text_at(e, "what.reference");
      if (what.find(hidden) != std::string::npos)
        found.push_back("AuditEvent/" + id + " has an entity " + what);
      else if (refused && what != "<absent>")
        found.push_back("AuditEvent/" + id + " (outcome " + std::string(event.string_at("outcome")) +
                        ") has an entity " + what);
      if (refused && text_at(e, "role.code") == "1")
        found.push_back("AuditEvent/" + id + " (refused) names a patient");
    }
  }
  return found;
}

TEST_CASE("rule 7: a partner's own AuditEvents name nothing of what it was refused or had held") {
  Partnership p;
  auto gp = p.client("gp-practice");
  auto trust = p.client("acute-trust");
  const std::string nhs = nhs_number(709);
  const std::string hidden = create_patient(*gp, "Unshared", nhs);

  // Everything the trust tries on the patient it may not see.
  CHECK(trust->get("/Patient/" + hidden).status == 404);
  CHECK(trust->get("/Patient/" + hidden + "/_history/1").status == 404);
  CHECK(trust->get("/Patient/" + hidden + "/_history").status == 404);
  CHECK(trust->send_json("PUT", "/Patient/" + hidden, patient_json("Overwrite", "", hidden)).status == 404);
  CHECK(trust->request("DELETE", "/Patient/" + hidden).status == 404);
  const auto batch = trust->send_json("POST", "/", get_bundle("batch", {"Patient/" + hidden}));
  REQUIRE(batch.status == 200);
  CHECK(text_at(json(batch.body), "entry[0].response.status").starts_with("404"));
  // Writes whose identity match is the hidden record (held once rule 4 is built).
  trust->send_json("POST", "/Patient", patient_json("Sameperson", nhs));
  trust->send_json("POST", "/Patient", patient_json("Sameperson", nhs),
                   {{"If-None-Exist", "identifier=" + std::string(kNhsSystem) + "|" + nhs}});

  const auto own = audit_events(*trust, "/AuditEvent?_count=500");
  REQUIRE_FALSE(own.empty());  // the trust's agreement lets it read its own events
  std::vector<std::string> found;
  std::string refused_id;
  for (const auto& e : own) {
    const auto more = leaks(e, hidden);
    found.insert(found.end(), more.begin(), more.end());
    if (refused_id.empty() && e.string_at("outcome") != "0") refused_id = std::string(e.string_at("id"));
  }
  CHECK_MESSAGE(found.empty(), found.size()
                                   << " problem(s), the first: " << (found.empty() ? "" : found.front()));

  // Read by id, one of its refused events shows no more.
  if (!refused_id.empty()) {
    const auto one = trust->get("/AuditEvent/" + refused_id);
    REQUIRE(one.status == 200);
    const auto one_leaks = leaks(json(one.body), hidden);
    CHECK_MESSAGE(one_leaks.empty(), (one_leaks.empty() ? "" : one_leaks.front()));
  }

  // And the trust's own report on that patient is empty: it never saw it.
  const auto by_patient = audit_events(*trust, "/AuditEvent?patient=Patient/" + hidden + "&_count=500");
  CHECK_MESSAGE(by_patient.empty(), by_patient.size()
                                        << " event(s), the first: "
                                        << (by_patient.empty() ? "" : audit_text(by_patient.front())));
}

}  // namespace
}  // namespace fhirgate::testing::security
