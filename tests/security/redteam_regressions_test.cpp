// What an outside tester with only the README found, each kept as a test (the fixes: commit 09d3e9f).
//
// The red team had a running partnership and the README, nothing else: no source, no database. Each
// finding below was a way to learn or change what the gateway promises to keep apart, and each test
// here repeats the tester's request against the fixture's partnership and asserts the answer the fix
// gives, so that reverting the fix fails the test:
//   1. a partner's own AuditEvents told a hidden record from an unknown one (outcomeDesc);
//   2. PUT re-created a deleted record the writer could never see;
//   3. a deletion was delivered to a partner the patient never let see the record;
//   4. a feed file's journal entry (and so the operator's audited read of it) named only the patients of
//      rows written, not those of rows refused or held;
//   5. a FHIR message naming a patient by NHS number alone was not audited against that patient;
//   6. a FHIR message carried a privacy Consent from a partner that is no registrar;
//   7. a registrar released its own held write;
//   8. a partner whose agreement lists only file formats wrote over REST;
//   9. supplier look-alike tags (another case, a trailing slash, meta.security) were kept;
//  10. AuditEvent?agent=<partner id> found nothing;
//  11. narrative with processing instructions, CDATA or data: pages was stored;
//  12. a commit accept (CA) carried an ERR segment about what was refused after it.
// Where the tester's exact request could not be made with this fixture, the test says so.
#include <filesystem>

#include "tests/security/common.hpp"

namespace fhirgate::testing::security {
namespace {

namespace fs = std::filesystem;

// The OperationOutcome of a 404 as a shape: severity, code and diagnostics with `id` written "<id>".
std::string not_found_shape(const Response& r, const std::string& id) {
  const auto oo = json(r.body);
  return text_at(oo, "resourceType") + " " + text_at(oo, "issue[0].severity") + " " +
         text_at(oo, "issue[0].code") + " " + replaced(text_at(oo, "issue[0].diagnostics"), id, "<id>");
}

// The one AuditEvent of `events` whose correlation id is `correlation`; REQUIREs it.
fhir::Node event_with_correlation(const std::vector<fhir::Node>& events, const std::string& correlation) {
  std::vector<const fhir::Node*> found;
  for (const auto& e : events)
    if (correlation_of(e) == correlation) found.push_back(&e);
  REQUIRE_MESSAGE(found.size() == 1, found.size() << " events with correlation " << correlation);
  return *found.front();
}

// A message Bundle from the GP's or the trust's system: a MessageHeader, then `resources` (JSON objects).
std::string message_bundle(const std::string& message_id, const std::vector<std::string>& resources) {
  std::string entries =
      R"({"fullUrl":"urn:uuid:6b6b6b6b-0000-4000-8000-000000000000","resource":{"resourceType":"MessageHeader",)"
      R"("eventCoding":{"system":"http://example.org/fhir/message-events","code":"admit-notification"},)"
      R"("source":{"endpoint":"http://sender.example/fhir"},)"
      R"("focus":[{"reference":"urn:uuid:6b6b6b6b-0000-4000-8000-000000000001"}]}})";
  for (std::size_t i = 0; i < resources.size(); ++i)
    entries += R"(,{"fullUrl":"urn:uuid:6b6b6b6b-0000-4000-8000-00000000000)" + std::to_string(i + 1) +
               R"(","resource":)" + resources[i] + "}";
  return R"({"resourceType":"Bundle","id":")" + message_id +
         R"(","type":"message","timestamp":"2026-01-01T00:00:00Z","entry":[)" + entries + "]}";
}

// The operator's view of one journal entry (GET /_ops/journal/{id}); REQUIREs a 200.
fhir::Node journal_entry_view(const Partnership& p, const std::string& id) {
  const auto r = p.client("operator")->get("/_ops/journal/" + id);
  REQUIRE_MESSAGE(r.status == 200, r.body);
  return json(r.body);
}

// The `patients` an entry's own view lists.
std::set<std::string> patients_of(const fhir::Node& view) {
  std::set<std::string> out;
  if (const auto* list = at(view, "patients"))
    for (const auto& patient : list->items()) out.insert(patient.text());
  return out;
}

// The id of the one journal entry of the exchange with this correlation id.
std::string journal_id_of(const Partnership& p, const std::string& correlation) {
  const auto entries = journal_entries(p, "correlation=" + correlation);
  REQUIRE_MESSAGE(entries.size() == 1, entries.size() << " journal entries for " << correlation);
  return text_at(entries.front(), "id");
}

int operator_reads(HttpClient& officer, const std::string& patient_id) {
  int n = 0;
  for (const auto& e : patient_events(officer, patient_id)) n += requested_by(e, "operator");
  return n;
}

// The delivery of Patient/<id>/_history/<version> to the council, as the operator's list shows it.
std::optional<fhir::Node> delivery_of(const Partnership& p, const std::string& id, int version) {
  const auto r = p.client("operator")->get("/_ops/deliveries?destination=social-care&_count=1000");
  REQUIRE_MESSAGE(r.status == 200, r.body);
  const auto listing = json(r.body);
  if (const auto* rows = at(listing, "deliveries"))
    for (const auto& row : rows->items())
      if (row.string_at("resource") == "Patient/" + id + "/_history/" + std::to_string(version)) return row;
  return std::nullopt;
}

// The delivery's status once it left the queue (delivered, withheld, dead); "pending" when it never did.
std::string settled_delivery(const Partnership& p, const std::string& id, int version) {
  std::string status = "<none>";
  poll_until(
      [&] {
        const auto row = delivery_of(p, id, version);
        status = row ? std::string(row->string_at("status")) : "<none>";
        return status != "<none>" && status != "pending";
      },
      std::chrono::seconds(10));
  return status;
}

// The council's drop folder files about Patient/<id>, as their contents.
std::vector<std::string> dropped_about(const Partnership& p, const std::string& id) {
  std::vector<std::string> out;
  for (const auto& f : fs::directory_iterator(p.dir + "/drop")) {
    const std::string name = f.path().filename().string();
    if (f.is_regular_file() && name.ends_with("-Patient-" + id + ".json"))
      out.push_back(file_bytes(f.path()));
  }
  return out;
}

TEST_CASE("redteam: a partner's own AuditEvents tell a hidden record and an unknown one the same") {
  Partnership p;
  auto gp = p.client("gp-practice");
  auto trust = p.client("acute-trust");
  const std::string hidden = create_patient(*gp, "Auditview", nhs_number(1201));
  const std::string unknown = "no-such-patient-1201";

  const auto hidden_read = trust->get("/Patient/" + hidden);
  const auto unknown_read = trust->get("/Patient/" + unknown);
  REQUIRE(hidden_read.status == 404);
  REQUIRE(unknown_read.status == 404);
  CHECK(not_found_shape(hidden_read, hidden) == not_found_shape(unknown_read, unknown));

  const auto own = audit_events(*trust, "/AuditEvent?_count=500");
  const auto hidden_event = event_with_correlation(own, hidden_read.header("X-Correlation-Id"));
  const auto unknown_event = event_with_correlation(own, unknown_read.header("X-Correlation-Id"));
  for (const auto* e : {&hidden_event, &unknown_event}) {
    INFO(audit_text(*e));
    CHECK(e->string_at("outcome") == "4");
    CHECK(e->string_at("outcomeDesc") == "refused");
    CHECK(audit_text(*e).find(hidden) == std::string::npos);
    if (const auto* entities = e->find("entity"))
      for (const auto& entity : entities->items()) {
        CHECK(at(entity, "what.reference") == nullptr);
        CHECK(text_at(entity, "role.code") != "1");
      }
  }
}

TEST_CASE(
    "redteam: PUT into a deleted record the writer could not see is 404, and the record stays deleted") {
  Partnership p;
  auto gp = p.client("gp-practice");
  auto trust = p.client("acute-trust");
  const std::string hidden = create_patient(*gp, "Deletedhidden", nhs_number(1211));
  REQUIRE(gp->request("DELETE", "/Patient/" + hidden).status == 204);

  const std::string live = create_patient(*gp, "Livehidden", nhs_number(1213));

  const auto put = trust->send_json("PUT", "/Patient/" + hidden, patient_json("Recreated", {}, hidden));
  CHECK_MESSAGE(put.status == 404, put.body);
  // The same answer as a PUT into a live record the trust may not see.
  const auto put_live = trust->send_json("PUT", "/Patient/" + live, patient_json("Recreated", {}, live));
  REQUIRE(put_live.status == 404);
  CHECK(not_found_shape(put, hidden) == not_found_shape(put_live, live));
  CHECK(gp->get("/Patient/" + hidden).status == 410);
  CHECK(stored_with(p, "Patient", "Recreated") == 0);

  // Control: a record the trust could see before its deletion may be re-created by it.
  const std::string shared = create_patient(*gp, "Deletedshared", nhs_number(1212));
  record_consent(*gp, shared, permit("acute-trust"));
  REQUIRE(gp->request("DELETE", "/Patient/" + shared).status == 204);
  const auto recreate = trust->send_json("PUT", "/Patient/" + shared, patient_json("Recreated", {}, shared));
  CHECK_MESSAGE(recreate.status == 201, recreate.body);
  CHECK(trust->get("/Patient/" + shared).status == 200);
}

TEST_CASE(
    "redteam: a deletion is delivered only where the patient's decision about its last version allows") {
  Partnership p;
  auto gp = p.client("gp-practice");
  // The route gp-patients-to-council sends the GP's Patients to the council's drop folder.
  const std::string unshared = create_patient(*gp, "Undelivered", nhs_number(1221));
  REQUIRE(gp->request("DELETE", "/Patient/" + unshared).status == 204);
  CHECK(settled_delivery(p, unshared, 2) == "withheld");
  CHECK(dropped_about(p, unshared).empty());

  // Control: with the council permitted, the deletion goes out as a DELETE entry.
  const std::string shared = create_patient(*gp, "Delivered", nhs_number(1222));
  record_consent(*gp, shared, permit("social-care"));
  REQUIRE(gp->request("DELETE", "/Patient/" + shared).status == 204);
  CHECK(settled_delivery(p, shared, 2) == "delivered");
  const auto files = dropped_about(p, shared);
  CHECK(std::any_of(files.begin(), files.end(),
                    [](const std::string& f) { return f.find("\"DELETE\"") != std::string::npos; }));
}

TEST_CASE(
    "redteam: a feed file's journal entry names the patients of its rows, refused and held ones too, and "
    "the operator's read of it is audited against them") {
  Partnership p;
  auto gp = p.client("gp-practice");
  auto officer = p.client("privacy-officer");
  const std::string nhs_refused = nhs_number(1231), nhs_held = nhs_number(1232), nhs_new = nhs_number(1233);
  const std::string refused = create_patient(*gp, "Feedrefused", nhs_refused);
  const std::string held = create_patient(*gp, "Feedheld", nhs_held);

  // The council's client list: a new client (created) and the GP's patient it may not see (held).
  const auto clients = ingest_feed(p, "social-care", "clients",
                                   std::string(kClientsHeader) + client_row("RT-1", nhs_new, "Feednew") +
                                       client_row("RT-2", nhs_held, "Feedheld"));
  REQUIRE_MESSAGE(clients.status == 200, clients.body);
  REQUIRE(entry_statuses(json(clients.body)) == "201 Created; 202 Accepted");
  const std::string location = text_at(json(clients.body), "entry[0].response.location");
  REQUIRE(location.starts_with("Patient/"));
  const std::string created = location.substr(8, location.find("/_history") - 8);
  // The trust's consent register: a row refused by the gate (the trust is no registrar).
  const auto consents =
      ingest_feed(p, "acute-trust", "consents", std::string(kConsentsHeader) + consent_row(nhs_refused, "Y"));
  REQUIRE_MESSAGE(consents.status == 200, consents.body);
  REQUIRE(entry_statuses(json(consents.body)) == "403 Forbidden");

  for (const std::string& id : {refused, held, created}) REQUIRE(operator_reads(*officer, id) == 0);
  const auto clients_view = journal_entry_view(p, journal_id_of(p, clients.header("X-Correlation-Id")));
  CHECK(joined(patients_of(clients_view)) == joined({"Patient/" + created, "Patient/" + held}));
  const auto consents_view = journal_entry_view(p, journal_id_of(p, consents.header("X-Correlation-Id")));
  CHECK(joined(patients_of(consents_view)) == joined({"Patient/" + refused}));
  for (const std::string& id : {refused, held, created}) {
    INFO("Patient/" << id);
    CHECK(operator_reads(*officer, id) > 0);
  }
}

TEST_CASE("redteam: a FHIR message naming a patient by NHS number alone is audited against that patient") {
  Partnership p;
  auto gp = p.client("gp-practice");
  auto officer = p.client("privacy-officer");
  const std::string nhs = nhs_number(1241);
  const std::string id = create_patient(*gp, "Messagednhs", nhs);
  auto message_events = [&] {
    int n = 0;
    for (const auto& e : patient_events(*officer, id))
      n += requested_by(e, "Organization/gp-practice") &&
           audit_text(e).find("$process-message") != std::string::npos;
    return n;
  };
  REQUIRE(message_events() == 0);

  const auto r = gp->send_json("POST", "/$process-message",
                               message_bundle(unique_name("rtmsg"), {patient_json("Messagednhs", nhs)}));
  REQUIRE_MESSAGE(r.status == 200, r.body);
  REQUIRE(text_at(json(r.body), "entry[0].resource.response.code") == "ok");
  CHECK(message_events() == 1);
}

TEST_CASE(
    "redteam: a message naming by NHS number a patient its sender may not see is audited for the privacy "
    "officer, and the sender's own trail does not name that patient") {
  Partnership p;
  auto gp = p.client("gp-practice");
  auto trust = p.client("acute-trust");
  auto officer = p.client("privacy-officer");
  const std::string nhs = nhs_number(1242);
  const std::string hidden = create_patient(*gp, "Messagedhidden", nhs);  // no consent for the trust

  const auto r =
      trust->send_json("POST", "/$process-message",
                       message_bundle(unique_name("rthidden"), {patient_json("Messagedhidden", nhs)}));
  REQUIRE_MESSAGE(r.status == 200, r.body);
  REQUIRE(text_at(json(r.body), "entry[0].resource.response.code") == "ok");
  const std::string correlation = r.header("X-Correlation-Id");
  CHECK(r.body.find(hidden) == std::string::npos);

  // The privacy officer's report for the patient has the message (by its correlation id).
  int reported = 0;
  for (const auto& e : patient_events(*officer, hidden)) reported += correlation_of(e) == correlation;
  CHECK(reported >= 1);
  // The trust's own AuditEvents, listed or searched by that patient, never name it.
  const auto own = trust->get("/AuditEvent?_count=500");
  REQUIRE_MESSAGE(own.status == 200, own.body);
  CHECK(own.body.find(hidden) == std::string::npos);
  for (const auto& e : audit_events(*trust, "/AuditEvent?_count=500"))
    CHECK(audit_text(e).find(hidden) == std::string::npos);
  CHECK(audit_events(*trust, "/AuditEvent?patient=Patient/" + hidden).empty());
}

TEST_CASE(
    "redteam: a FHIR message carrying a privacy Consent from a partner that is no registrar is refused") {
  Partnership p;
  auto gp = p.client("gp-practice");
  auto trust = p.client("acute-trust");
  const std::string id = create_patient(*gp, "Messagedconsent", nhs_number(1251));
  const std::string consent = consent_json(id, permit("acute-trust"));

  const auto r =
      trust->send_json("POST", "/$process-message", message_bundle(unique_name("rtconsent"), {consent}));
  REQUIRE_MESSAGE(r.status == 200, r.body);
  const auto answer = json(r.body);
  CHECK(text_at(answer, "entry[0].resource.response.code") == "fatal-error");
  CHECK(text_at(answer, "entry[1].resource.resourceType") == "OperationOutcome");
  bool forbidden = false;
  if (const auto* issues = at(answer, "entry[1].resource.issue"))
    for (const auto& issue : issues->items())
      forbidden |= issue.string_at("code") == "forbidden" &&
                   text_at(issue, "expression[0]") == "Bundle.entry[1].resource";
  CHECK_MESSAGE(forbidden, r.body);
  CHECK(stored_with(p, "Consent", "\"Patient/" + id + "\"") == 0);
  CHECK(trust->get("/Patient/" + id).status == 404);

  // Control: the same message from a registrar is taken.
  const auto from_gp =
      gp->send_json("POST", "/$process-message", message_bundle(unique_name("rtconsent"), {consent}));
  REQUIRE_MESSAGE(from_gp.status == 200, from_gp.body);
  CHECK(text_at(json(from_gp.body), "entry[0].resource.response.code") == "ok");
}

TEST_CASE("redteam: a registrar may not release or reject a held write it sent itself") {
  Partnership p;
  auto gp = p.client("gp-practice");
  auto trust = p.client("acute-trust");
  auto officer = p.client("privacy-officer");
  // The trust's own patient, which the GP may not see: the GP's create with its NHS number is held.
  const std::string nhs = nhs_number(1261);
  const std::string target = create_patient(*trust, "Heldown", nhs);
  const auto held_write = gp->send_json("POST", "/Patient", patient_json("Heldbygp", nhs));
  REQUIRE_MESSAGE(held_write.status == 202, held_write.body);
  const auto listed = officer->get("/_ops/held");
  REQUIRE_MESSAGE(listed.status == 200, listed.body);
  const auto queue = json(listed.body);
  REQUIRE(text_at(queue, "held[0].partner") == "gp-practice");
  const std::string held = text_at(queue, "held[0].id");

  for (const char* decision : {"$release", "$reject"}) {
    INFO(decision);
    const auto own = gp->request("POST", "/_ops/held/" + held + "/" + decision);
    CHECK(own.status == 403);
    CHECK(first_issue(own).find("not by the partner that made it") != std::string::npos);
  }
  CHECK(text_at(json(officer->get("/_ops/held/" + held).body), "status") == "held");
  CHECK(snapshot(*trust, "/Patient/" + target).find("Heldbygp") == std::string::npos);

  // Another registrar may.
  const auto released = p.client("social-care")->request("POST", "/_ops/held/" + held + "/$release");
  REQUIRE_MESSAGE(released.status == 200, released.body);
  CHECK(text_at(json(released.body), "status") == "released");
  CHECK(snapshot(*trust, "/Patient/" + target).find("Heldbygp") != std::string::npos);
}

TEST_CASE(
    "redteam: a partner whose agreement lists inbound formats but not fhir-rest cannot write over REST") {
  Partnership p;
  auto gp = p.client("gp-practice");
  auto council = p.client("social-care");
  const std::string nhs = nhs_number(1271);
  const std::string shared = create_patient(*gp, "Restdoor", nhs);
  record_consent(*gp, shared, permit("social-care"));

  const auto create = council->send_json("POST", "/Patient", patient_json("Councilrest", nhs_number(1272)));
  CHECK(create.status == 403);
  CHECK(first_issue(create).find("FHIR REST") != std::string::npos);
  const auto update =
      council->send_json("PUT", "/Patient/" + shared, patient_json("Councilrest", nhs, shared));
  CHECK(update.status == 403);
  const auto transaction = council->send_json(
      "POST", "/",
      bundle_json("transaction",
                  {bundle_entry("POST", "Patient", patient_json("Councilrest", nhs_number(1273)))}));
  CHECK(transaction.status == 403);
  CHECK(first_issue(transaction).find("FHIR REST") != std::string::npos);
  CHECK(stored_with(p, "Patient", "Councilrest") == 0);

  // Its agreement's reads still work.
  CHECK(council->get("/Patient/" + shared).status == 200);
  const auto search = council->get("/Patient?identifier=" + std::string(kNhsSystem) + "|" + nhs);
  REQUIRE(search.status == 200);
  CHECK(ids_in(json(search.body)).count(shared) == 1);
}

TEST_CASE("redteam: supplier look-alike tags are dropped; only the gateway's own supplier tag remains") {
  Partnership p;
  auto trust = p.client("acute-trust");
  const std::string meta =
      R"("meta":{"tag":[{"system":"HTTPS://FHIR.PARTNERSHIP.EXAMPLE/CodeSystem/Supplier","code":"gp-practice"},)"
      R"({"system":")" +
      std::string(kSupplierSystem) +
      R"(/","code":"mental-health"},)"
      R"({"system":"http://example.org/tags","code":"kept"}],)"
      R"("security":[{"system":")" +
      std::string(kSupplierSystem) + R"(","code":"social-care"}]})";
  const auto created =
      trust->send_json("POST", "/Patient", patient_json("Lookalike", nhs_number(1281), {}, meta));
  REQUIRE_MESSAGE(created.status == 201, created.body);
  const std::string stored_id(json(created.body).string_at("id"));

  for (const auto& body : {created.body, snapshot(*trust, "/Patient/" + stored_id)}) {
    const auto patient = json(body);
    INFO(body);
    std::vector<std::string> tags;
    if (const auto* list = at(patient, "meta.tag"))
      for (const auto& t : list->items())
        tags.push_back(std::string(t.string_at("system")) + "|" + std::string(t.string_at("code")));
    CHECK(tags == std::vector<std::string>{"http://example.org/tags|kept",
                                           std::string(kSupplierSystem) + "|acute-trust"});
    CHECK(at(patient, "meta.security") == nullptr);
    for (const char* other : {"gp-practice", "mental-health", "social-care"})
      CHECK(body.find(other) == std::string::npos);
  }
}

TEST_CASE("redteam: AuditEvent?agent=<partner id> finds that partner's events, as agent=Organization/<id>") {
  Partnership p;
  auto gp = p.client("gp-practice");
  auto trust = p.client("acute-trust");
  auto officer = p.client("privacy-officer");
  create_patient(*trust, "Agentsearch", nhs_number(1291));
  create_patient(*gp, "Agentother", nhs_number(1292));
  REQUIRE_FALSE(audit_events(*officer, "/AuditEvent?agent=Organization/gp-practice&_count=500").empty());

  const auto by_id = audit_events(*officer, "/AuditEvent?agent=acute-trust&_count=500");
  const auto by_reference = audit_events(*officer, "/AuditEvent?agent=Organization/acute-trust&_count=500");
  CHECK_FALSE(by_id.empty());
  std::set<std::string> ids, reference_ids;
  for (const auto& e : by_id) {
    ids.insert(std::string(e.string_at("id")));
    CHECK_MESSAGE(requested_by(e, "Organization/acute-trust"), audit_text(e));
  }
  for (const auto& e : by_reference) reference_ids.insert(std::string(e.string_at("id")));
  CHECK(joined(ids) == joined(reference_ids));
}

TEST_CASE("redteam: narrative may not hold processing instructions, CDATA or data: URLs but an image's") {
  Partnership p;
  auto gp = p.client("gp-practice");
  auto with_div = [](const std::string& inner) {
    return patient_json(
        "Narrated", {}, {},
        R"("text":{"status":"generated","div":"<div xmlns=\"http://www.w3.org/1999/xhtml\">)" + inner +
            R"(</div>"})");
  };
  const std::pair<std::string, std::string> refused[] = {
      {"<p>Note</p><?php echo 1; ?>", "processing instruction"},
      {"<p>Note</p><![CDATA[<img src=x onerror=steal()>]]>", "CDATA section"},
      {R"(<img src=\"data:text/html;base64,PHNjcmlwdD4=\" alt=\"x\"/>)", "data: URL"},
  };
  for (const auto& [inner, named] : refused) {
    CAPTURE(inner);
    const auto r = gp->send_json("POST", "/Patient", with_div(inner));
    CHECK(r.status == 422);
    CHECK(r.body.find(named) != std::string::npos);
    CHECK(r.body.find("narrative") != std::string::npos);
  }
  CHECK(stored_with(p, "Patient", "Narrated") == 0);

  const auto image = gp->send_json(
      "POST", "/Patient", with_div(R"(<img src=\"data:image/png;base64,iVBORw0KGgo=\" alt=\"x\"/>)"));
  CHECK_MESSAGE(image.status == 201, image.body);
}

TEST_CASE("redteam: a commit accept carries no ERR segment for a message refused after it was kept") {
  Partnership p;
  auto gp = p.client("gp-practice");
  const std::string survivor = nhs_number(1301), retired = nhs_number(1302);  // no patient has `retired`
  create_patient(*gp, "Survivor", survivor);
  // Enhanced mode, both ACKs: the merge is kept (CA) and then fails for want of its MRG-1 patient (AE).
  const std::string message =
      replaced(adt_merge("RT12", "GP1", survivor, retired), "|P|2.5.1\r", "|P|2.5.1|||AL|AL\r");
  MllpClient mllp(p.mllp_port(0));
  mllp.send_raw(frame(message));
  const std::string commit = mllp.read_frame();
  const std::string application = mllp.read_frame();
  CHECK(msa(commit) == "CA|RT12");
  CHECK_MESSAGE(commit.find("\rERR|") == std::string::npos, commit);
  CHECK(msa(application) == "AE|RT12");
  CHECK_MESSAGE(application.find("\rERR|") != std::string::npos, application);
}

}  // namespace
}  // namespace fhirgate::testing::security
