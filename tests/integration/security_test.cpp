// Partners, bearer tokens, consent enforcement and the audit trail, against the real gateway with real
// tokens made by `fhirgate partner add-token`.
//
// The cast: the GP practice registers the patients (it supplied them, so it always sees them); the acute
// trust and social care see a patient only where that patient's Consent lets them (policy opt-in); the
// privacy officer reads the audit trail.
#include <sqlite3.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <memory>
#include <set>

#include "tests/integration/common.hpp"

namespace fhirgate::testing {
namespace {

constexpr const char* kConfig = R"({
  "database": {"path": "fhirgate.db"},
  "security": {"enabled": true, "consentPolicy": "opt-in"},
  "cachedTypes": ["Patient", "Consent", "AuditEvent", "Organization"],
  "partners": [
    {"id": "gp-practice", "name": "Riverside Medical Practice", "odsCode": "Y12345", "consentRegistrar": true,
     "access": {"Patient": ["read", "vread", "history-instance", "search-type", "create", "update", "delete"],
                "Consent": ["read", "search-type", "create", "update"]},
     "purposes": ["TREAT"]},
    {"id": "acute-trust", "name": "Northfield Hospitals", "odsCode": "RX1",
     "access": {"Patient": ["read", "vread", "history-instance", "history-type", "search-type", "create",
                            "update", "delete"],
                "AuditEvent": ["read", "search-type"]},
     "purposes": ["TREAT", "ETREAT"]},
    {"id": "social-care", "name": "Westshire Council", "odsCode": "W00001", "consentRegistrar": true,
     "access": {"Patient": ["read", "search-type"], "Consent": ["create"]},
     "purposes": ["COC"]}
  ],
  "roles": [
    {"id": "privacy-officer", "name": "Privacy officer", "role": "privacy-officer",
     "access": {"AuditEvent": ["read", "search-type"]}, "purposes": ["HCOMPL"]}
  ]
})";

struct Partnership {
  std::string dir = temp_dir();
  std::string config = dir + "/gateway.json";
  std::string gp, trust, social, officer;
  std::unique_ptr<GatewayProcess> gateway;

  Partnership() {
    std::ofstream(config) << kConfig;
    gp = new_token(config, dir, "gp-practice");
    trust = new_token(config, dir, "acute-trust");
    social = new_token(config, dir, "social-care");
    officer = new_token(config, dir, "privacy-officer");
    gateway = std::make_unique<GatewayProcess>(std::vector<std::string>{"--config", config}, dir);
  }
  std::uint16_t port() const { return gateway->port(); }
};

// A Patient registered by the GP; returns its id.
std::string register_patient(HttpClient& gp, const std::string& family) {
  const auto r =
      gp.send_json("POST", "/Patient",
                   R"({"resourceType":"Patient","name":[{"family":")" + family + R"("}],"gender":"female"})");
  REQUIRE_MESSAGE(r.status == 201, r.body);
  return std::string(json(r.body).string_at("id"));
}

// A patient-privacy Consent (IHE basic/intermediate shape) with the given provision JSON; `id` for a PUT.
std::string consent_json(const std::string& patient, const std::string& provision,
                         const std::string& id = {}) {
  return R"({"resourceType":"Consent",)" + (id.empty() ? std::string() : R"("id":")" + id + R"(",)") +
         R"("status":"active",)"
         R"("scope":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/consentscope","code":"patient-privacy"}]},)"
         R"("category":[{"coding":[{"system":"http://loinc.org","code":"59284-0"}]}],)"
         R"("patient":{"reference":"Patient/)" +
         patient +
         R"("},"dateTime":"2026-01-01T00:00:00Z",)"
         R"("policyRule":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"OPTIN"}]},)"
         R"("provision":)" +
         provision + "}";
}

// Posts that Consent; returns its id.
std::string consent(HttpClient& gp, const std::string& patient, const std::string& provision) {
  const auto r = gp.send_json("POST", "/Consent", consent_json(patient, provision));
  REQUIRE_MESSAGE(r.status == 201, r.body);
  return std::string(json(r.body).string_at("id"));
}

const char* kPermitTrust =
    R"({"type":"permit","actor":[{"role":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v3-ParticipationType","code":"IRCP"}]},"reference":{"reference":"Organization/acute-trust"}}]})";
const char* kDenyTrust =
    R"({"type":"deny","actor":[{"role":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v3-ParticipationType","code":"IRCP"}]},"reference":{"reference":"Organization/acute-trust"}}]})";

std::string replace_id(std::string text, const std::string& from, const std::string& to) {
  for (auto pos = text.find(from); pos != std::string::npos; pos = text.find(from, pos + to.size()))
    text.replace(pos, from.size(), to);
  return text;
}

std::set<std::string> ids_in(const fhir::Node& bundle) {
  std::set<std::string> ids;
  if (const auto* entries = at(bundle, "entry"))
    for (const auto& e : entries->items()) ids.insert(text_at(e, "resource.id"));
  return ids;
}

// How many of the privacy officer's AuditEvents about `patient` (Patient/<id>) hold every one of `texts`
// (an agent, an entity, an outcome) in their JSON.
int audit_events_with(HttpClient& officer, const std::string& patient,
                      const std::vector<std::string>& texts) {
  const auto report = json(officer.get("/AuditEvent?patient=" + patient + "&_count=100").body);
  int n = 0;
  if (const auto* entries = at(report, "entry"))
    for (const auto& e : entries->items()) {
      const std::string event = fhir::write_json(*at(e, "resource"));
      n += std::all_of(texts.begin(), texts.end(),
                       [&](const std::string& t) { return event.find(t) != std::string::npos; });
    }
  return n;
}

TEST_CASE("security: a deletion is 410 only to whom the resource was shown; to the others it stays 404") {
  Partnership p;
  HttpClient gp(p.port(), bearer(p.gp));
  HttpClient trust(p.port(), bearer(p.trust));
  HttpClient social(p.port(), bearer(p.social));
  HttpClient officer(p.port(), bearer(p.officer));
  const std::string shared = register_patient(gp, "Shared");
  consent(gp, shared, kPermitTrust);
  const std::string unshared = register_patient(gp, "Unshared");
  CHECK(trust.get("/Patient/" + shared).status == 200);
  CHECK(trust.get("/Patient/" + unshared).status == 404);
  REQUIRE(gp.request("DELETE", "/Patient/" + shared).status == 204);
  REQUIRE(gp.request("DELETE", "/Patient/" + unshared).status == 204);

  CHECK(gp.get("/Patient/" + shared).status == 410);  // the supplier
  CHECK(gp.get("/Patient/" + unshared).status == 410);
  const auto gone = trust.get("/Patient/" + shared);
  CHECK(gone.status == 410);
  CHECK(gone.header("ETag") == "W/\"2\"");
  CHECK(trust.get("/Patient/" + shared + "/_history/2").status == 410);
  // A 410 would tell the trust that a patient it was never shown existed, and was deleted.
  const auto hidden = trust.get("/Patient/" + unshared);
  CHECK(hidden.status == 404);
  CHECK(first_issue(hidden) == "Patient/" + unshared + " is not known");
  CHECK(trust.get("/Patient/" + unshared + "/_history/2").status == 404);
  CHECK(trust.get("/Patient/" + unshared + "/_history/1").status == 404);
  CHECK(social.get("/Patient/" + shared).status == 404);  // the consent names the trust only

  // The refused reads of the deletion are audited against its patient and the deletion's version.
  CHECK(audit_events_with(
            officer, "Patient/" + unshared,
            {"Organization/acute-trust", "Patient/" + unshared + "/_history/2", "not shared"}) == 2);
}

TEST_CASE(
    "security: a conditional create sees only what the caller may see; a hidden match changes nothing") {
  Partnership p;
  HttpClient gp(p.port(), bearer(p.gp));
  HttpClient trust(p.port(), bearer(p.trust));
  const std::string unshared = register_patient(gp, "Hidden");
  const std::string shared = register_patient(gp, "Visible");
  consent(gp, shared, kPermitTrust);
  const std::string probe = R"({"resourceType":"Patient","name":[{"family":"Probe"}]})";

  // The condition is evaluated over what the trust may see: the hidden patient is no match, so the probe
  // is created exactly as if nobody of that name existed, and nothing of the hidden record shows.
  const auto hidden = trust.send_json("POST", "/Patient", probe, {{"If-None-Exist", "family=Hidden"}});
  CHECK(hidden.status == 201);
  CHECK(hidden.body.find(unshared) == std::string::npos);
  CHECK(hidden.body.find("Hidden") == std::string::npos);
  const auto nobody = trust.send_json("POST", "/Patient", probe, {{"If-None-Exist", "family=Nobody"}});
  CHECK(nobody.status == 201);
  // A visible match is answered 200 with it, as the specification says.
  const auto visible = trust.send_json("POST", "/Patient", probe, {{"If-None-Exist", "family=Visible"}});
  CHECK(visible.status == 200);
  CHECK(json(visible.body).string_at("id") == shared);
  // The hidden record was never touched nor named: no AuditEvent of the trust is about it.
  HttpClient officer(p.port(), bearer(p.officer));
  CHECK(audit_events_with(officer, "Patient/" + unshared, {"Organization/acute-trust"}) == 0);
}

TEST_CASE("security: a partner may update or delete only what it could read; to others the record is 404") {
  Partnership p;
  HttpClient gp(p.port(), bearer(p.gp));
  HttpClient trust(p.port(), bearer(p.trust));
  HttpClient officer(p.port(), bearer(p.officer));
  const std::string hidden = register_patient(gp, "Guarded");
  const std::string shared = register_patient(gp, "Open");
  consent(gp, shared, kPermitTrust);
  auto body = [](const std::string& id, const std::string& family) {
    return R"({"resourceType":"Patient","id":")" + id + R"(","name":[{"family":")" + family + R"("}]})";
  };

  const auto put = trust.send_json("PUT", "/Patient/" + hidden, body(hidden, "Overwritten"));
  CHECK(put.status == 404);
  CHECK(first_issue(put) == "Patient/" + hidden + " is not known");
  CHECK(trust.request("DELETE", "/Patient/" + hidden).status == 404);
  const auto in_transaction = trust.send_json(
      "POST", "/",
      R"({"resourceType":"Bundle","type":"transaction","entry":[{"resource":)" + body(hidden, "Overwritten") +
          R"(,"request":{"method":"PUT","url":"Patient/)" + hidden + R"("}}]})");
  CHECK(in_transaction.status == 404);
  const auto held = json(gp.get("/Patient/" + hidden).body);  // untouched
  CHECK(text_at(held, "name[0].family") == "Guarded");
  CHECK(text_at(held, "meta.versionId") == "1");

  // Where the patient's consent lets the trust see the record, it may change it too.
  CHECK(trust.send_json("PUT", "/Patient/" + shared, body(shared, "Updated")).status == 200);
  CHECK(text_at(json(gp.get("/Patient/" + shared).body), "name[0].family") == "Updated");
  CHECK(trust.request("DELETE", "/Patient/" + shared).status == 204);

  // The refusals are in the audit trail, against the patient.
  CHECK(audit_events_with(officer, "Patient/" + hidden,
                          {"Organization/acute-trust", "\"outcome\":\"4\"", "is not known"}) == 3);
}

TEST_CASE("security: tokens are required, checked, and the agreement's interactions enforced") {
  Partnership p;
  HttpClient anonymous(p.gateway->port());
  const auto none = anonymous.get("/Patient");
  CHECK(none.status == 401);
  CHECK(none.header("WWW-Authenticate").find("Bearer") == 0);
  CHECK(json(none.body).string_at("resourceType") == "OperationOutcome");
  std::string forged_token = p.trust;
  forged_token.back() = forged_token.back() == 'A' ? 'B' : 'A';
  const auto forged = anonymous.get("/Patient", bearer(forged_token));
  CHECK(forged.status == 401);
  CHECK(forged.header("WWW-Authenticate").find("invalid_token") != std::string::npos);
  CHECK(anonymous.get("/Patient", {{"Authorization", "Basic abc"}}).status == 401);
  // The open endpoints; the CapabilityStatement names the purpose-of-use header.
  CHECK(anonymous.get("/healthz").status == 200);
  const auto metadata = anonymous.get("/metadata");
  CHECK(metadata.status == 200);
  CHECK(metadata.body.find("X-Purpose-Of-Use") != std::string::npos);

  HttpClient social(p.port(), bearer(p.social));
  CHECK(social.get("/AuditEvent").status == 403);  // not in its agreement
  CHECK(social.send_json("PUT", "/Patient/x", R"({"resourceType":"Patient","id":"x"})").status == 403);
  CHECK(social.get("/Patient", {{"X-Purpose-Of-Use", "ETREAT"}}).status == 403);  // may not claim it
  CHECK(social.get("/Patient").status == 200);

  // Only the token's hash is in the database.
  std::ifstream db(p.dir + "/fhirgate.db", std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(db)), std::istreambuf_iterator<char>());
  CHECK(bytes.find(p.trust.substr(20)) == std::string::npos);
}

TEST_CASE("security: add-token prints the token alone on the last line, and only for configured holders") {
  const std::string dir = temp_dir();
  const std::string config = dir + "/gateway.json";
  std::ofstream(config) << kConfig;
  const auto made =
      run_fhirgate("partner add-token acute-trust --config " + config + " --db " + dir + "/fhirgate.db");
  REQUIRE(made.status == 0);
  const std::string last = made.out.substr(made.out.rfind('\n', made.out.size() - 2) + 1);
  CHECK(last.rfind("fg_", 0) == 0);
  CHECK(last.size() == 63 + 1);  // fg_ + 16 hex + _ + 43 base64url, and the newline
  const auto unknown =
      run_fhirgate("partner add-token nobody --config " + config + " --db " + dir + "/fhirgate.db");
  CHECK(unknown.status != 0);
  CHECK(unknown.err.find("nobody") != std::string::npos);
}

TEST_CASE("consent: read, vread and history answer 404 where the patient did not agree") {
  Partnership p;
  HttpClient gp(p.port(), bearer(p.gp));
  HttpClient trust(p.port(), bearer(p.trust));
  HttpClient social(p.port(), bearer(p.social));
  const std::string shared = register_patient(gp, "Sharedperson");
  const std::string privately = register_patient(gp, "Privateperson");
  consent(gp, shared, kPermitTrust);

  CHECK(gp.get("/Patient/" + privately).status == 200);  // the supplier always sees its own data
  CHECK(trust.get("/Patient/" + shared).status == 200);
  CHECK(trust.get("/Patient/" + shared + "/_history/1").status == 200);
  CHECK(trust.get("/Patient/" + shared + "/_history").status == 200);
  for (const std::string& path : {"/Patient/" + privately, "/Patient/" + privately + "/_history/1",
                                  "/Patient/" + privately + "/_history"}) {
    const auto r = trust.get(path);
    CHECK_MESSAGE(r.status == 404, path);
    // Exactly what an unknown id gets: no hint that the record exists.
    const std::string unknown = trust.get(replace_id(path, privately, "nosuchid")).body;
    CHECK(replace_id(r.body, privately, "nosuchid") == unknown);
  }
  CHECK(social.get("/Patient/" + shared).status == 404);  // the consent names the trust only
  // Type history shows only what the trust may see.
  const auto history = json(trust.get("/Patient/_history?_count=100").body);
  const auto seen = ids_in(history);
  CHECK(seen.count(shared) == 1);
  CHECK(seen.count(privately) == 0);
}

TEST_CASE("consent: searches are filtered before paging, pages stay full and totals count what is visible") {
  Partnership p;
  HttpClient gp(p.port(), bearer(p.gp));
  HttpClient trust(p.port(), bearer(p.trust));
  std::set<std::string> visible, hidden;
  for (int i = 0; i < 7; ++i) {
    const std::string id = register_patient(gp, "Pagingfamily");
    if (i % 2 == 0) {
      consent(gp, id, kPermitTrust);
      visible.insert(id);
    } else {
      hidden.insert(id);
    }
  }
  std::set<std::string> paged;
  std::string next = "/Patient?family=Pagingfamily&_count=2&_total=accurate";
  int pages = 0;
  while (!next.empty()) {
    const auto bundle = json(trust.get(next).body);
    CHECK(text_at(bundle, "total") == "4");
    const auto ids = ids_in(bundle);
    paged.insert(ids.begin(), ids.end());
    ++pages;
    next.clear();
    if (const auto* links = at(bundle, "link"))
      for (const auto& l : links->items())
        if (l.string_at("relation") == "next")
          next = std::string(l.string_at("url")).substr(std::string(l.string_at("url")).find("/Patient"));
    if (!next.empty()) CHECK(ids.size() == 2);  // every page before the last is full
  }
  CHECK(pages == 2);
  CHECK(paged == visible);
  CHECK(text_at(json(trust.get("/Patient?family=Pagingfamily&_summary=count").body), "total") == "4");
  CHECK(text_at(json(gp.get("/Patient?family=Pagingfamily&_summary=count").body), "total") == "7");
}

TEST_CASE("consent: a change takes effect on the very next request; deny for one partner; break-glass") {
  Partnership p;
  HttpClient gp(p.port(), bearer(p.gp));
  HttpClient trust(p.port(), bearer(p.trust));
  const std::string patient = register_patient(gp, "Changingmind");
  CHECK(trust.get("/Patient/" + patient).status == 404);
  const std::string c = consent(gp, patient, kPermitTrust);
  CHECK(trust.get("/Patient/" + patient).status == 200);
  // The patient withdraws: the same Consent now denies the trust.
  const auto withdrawn = gp.send_json("PUT", "/Consent/" + c, consent_json(patient, kDenyTrust, c));
  REQUIRE(withdrawn.status == 200);
  CHECK(trust.get("/Patient/" + patient).status == 404);

  // Emergency: the trust may claim ETREAT and gets through, and the AuditEvent says so.
  const auto glass = trust.get("/Patient/" + patient, {{"X-Purpose-Of-Use", "ETREAT"}});
  CHECK(glass.status == 200);
  HttpClient officer(p.port(), bearer(p.officer));
  const auto report = json(officer.get("/AuditEvent?patient=" + patient + "&_count=50").body);
  bool flagged = false;
  if (const auto* entries = at(report, "entry"))
    for (const auto& e : entries->items())
      if (e.find("resource") && fhir::write_json(*e.find("resource")).find("\"BTG\"") != std::string::npos)
        flagged = true;
  CHECK(flagged);
}

TEST_CASE("audit: every access is recorded; the privacy officer's report; partners see only their own") {
  Partnership p;
  HttpClient gp(p.port(), bearer(p.gp));
  HttpClient trust(p.port(), bearer(p.trust));
  HttpClient officer(p.port(), bearer(p.officer));
  const std::string patient = register_patient(gp, "Audited");
  consent(gp, patient, kPermitTrust);
  CHECK(trust.get("/Patient/" + patient).status == 200);
  CHECK(trust.get("/Patient?family=Audited").status == 200);
  HttpClient social(p.port(), bearer(p.social));
  CHECK(social.get("/Patient/" + patient).status == 404);  // denied: recorded with outcome 4

  const auto report = json(officer.get("/AuditEvent?patient=" + patient + "&_count=50").body);
  std::multiset<std::string> seen;  // "<agent> <subtype> <outcome>"
  if (const auto* entries = at(report, "entry"))
    for (const auto& e : entries->items())
      seen.insert(text_at(e, "resource.agent[0].who.reference") + " " +
                  text_at(e, "resource.subtype[0].code") + " " + text_at(e, "resource.outcome"));
  CHECK(seen.count("Organization/gp-practice create 0") >= 1);
  CHECK(seen.count("Organization/acute-trust read 0") == 1);
  CHECK(seen.count("Organization/acute-trust search-type 0") == 1);
  CHECK(seen.count("Organization/social-care read 4") == 1);

  // The trust may read AuditEvents, but only its own.
  const auto own = json(trust.get("/AuditEvent?patient=" + patient + "&_count=50").body);
  if (const auto* entries = at(own, "entry"))
    for (const auto& e : entries->items())
      CHECK(text_at(e, "resource.agent[0].who.reference") == "Organization/acute-trust");
  const std::string gp_event = text_at(report, "entry[" + std::to_string(seen.size() - 1) + "].resource.id");
  CHECK(trust.get("/AuditEvent/" + gp_event).status == 404);
  CHECK(officer.get("/AuditEvent/" + gp_event).status == 200);
  CHECK(officer.send_json("PUT", "/AuditEvent/" + gp_event, R"({"resourceType":"AuditEvent"})").status ==
        405);
}

TEST_CASE("fuzz: http: a request quoting bytes a FHIR string cannot hold is audited with them escaped") {
  // Found by http_fuzz: the AuditEvent of a search for patient=ab%01 named the patient "Patient/ab" plus a
  // control character, which no FHIR string may hold, so the privacy officer's XML report of it was a 500.
  Partnership p;
  HttpClient officer(p.port(), bearer(p.officer));
  CHECK(officer.get("/AuditEvent?patient=ab%01").status == 200);
  const auto report = officer.get("/AuditEvent?_count=50&_format=xml");
  CHECK_MESSAGE(report.status == 200, report.body);
  CHECK_MESSAGE(report.body.find(R"(<reference value="Patient/ab\u0001"/>)") != std::string::npos,
                report.body);
}

TEST_CASE(
    "audit verify: the chain is intact, then names the row edited or deleted behind the gateway's back") {
  Partnership p;
  HttpClient gp(p.port(), bearer(p.gp));
  for (int i = 0; i < 3; ++i) register_patient(gp, "Chained");
  CHECK(p.gateway->stop(SIGTERM) == 0);
  const std::string verify = "audit verify --config " + p.config + " --db " + p.dir + "/fhirgate.db";
  const auto intact = run_fhirgate(verify);
  CHECK(intact.status == 0);
  CHECK(intact.out.find("intact") != std::string::npos);

  auto edit = [&](const std::string& sql) {
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open((p.dir + "/fhirgate.db").c_str(), &db) == SQLITE_OK);
    REQUIRE(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr) == SQLITE_OK);
    sqlite3_close(db);
  };
  edit("UPDATE audit_event SET body = replace(body, '\"outcome\":\"0\"', '\"outcome\":\"4\"') WHERE seq = 2");
  const auto changed = run_fhirgate(verify);
  CHECK(changed.status == 1);
  CHECK(changed.out.find("AuditEvent 2") != std::string::npos);
  CHECK(changed.out.find("changed") != std::string::npos);

  // Restored body, but the row's search column moved to another partner (to hide it from a report).
  edit("UPDATE audit_event SET body = replace(body, '\"outcome\":\"4\"', '\"outcome\":\"0\"') WHERE seq = 2");
  CHECK(run_fhirgate(verify).status == 0);
  edit(
      "CREATE TABLE saved_agent AS SELECT agent FROM audit_event WHERE seq = 3;"
      "UPDATE audit_event SET agent = 'Organization/social-care' WHERE seq = 3");
  const auto column = run_fhirgate(verify);
  CHECK(column.status == 1);
  CHECK(column.out.find("AuditEvent 3") != std::string::npos);
  edit(
      "UPDATE audit_event SET agent = (SELECT agent FROM saved_agent) WHERE seq = 3; DROP TABLE saved_agent");
  CHECK(run_fhirgate(verify).status == 0);

  // The patient index: a row's patient removed (hiding the access from the patient's report), or a
  // patient added to a row (implicating an access that did not happen).
  edit(
      "CREATE TABLE saved AS SELECT * FROM audit_patient WHERE seq = 2; DELETE FROM audit_patient WHERE seq "
      "= 2");
  const auto unlinked = run_fhirgate(verify);
  CHECK(unlinked.status == 1);
  CHECK(unlinked.out.find("AuditEvent 2") != std::string::npos);
  edit("INSERT INTO audit_patient SELECT * FROM saved; DROP TABLE saved");
  CHECK(run_fhirgate(verify).status == 0);
  edit("INSERT INTO audit_patient (patient, seq) VALUES ('Patient/someone-else', 3)");
  const auto implicated = run_fhirgate(verify);
  CHECK(implicated.status == 1);
  CHECK(implicated.out.find("AuditEvent 3") != std::string::npos);

  // Another copy: a deleted row.
  Partnership q;
  HttpClient gp2(q.port(), bearer(q.gp));
  for (int i = 0; i < 3; ++i) register_patient(gp2, "Chained");
  CHECK(q.gateway->stop(SIGTERM) == 0);
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open((q.dir + "/fhirgate.db").c_str(), &db) == SQLITE_OK);
  REQUIRE(sqlite3_exec(db, "DELETE FROM audit_event WHERE seq = 2", nullptr, nullptr, nullptr) == SQLITE_OK);
  sqlite3_close(db);
  const auto deleted = run_fhirgate("audit verify --config " + q.config + " --db " + q.dir + "/fhirgate.db");
  CHECK(deleted.status == 1);
  CHECK(deleted.out.find("row 2 deleted") != std::string::npos);
}

// Red team: verify made a database and key where there were none and called that empty trail intact;
// deleting the head, or the whole trail with it, also passed.
TEST_CASE(
    "audit verify: changes nothing, needs the database and its key, and a deleted head or trail fails") {
  Partnership p;
  HttpClient gp(p.port(), bearer(p.gp));
  for (int i = 0; i < 2; ++i) register_patient(gp, "Headed");
  CHECK(p.gateway->stop(SIGTERM) == 0);
  const std::string db = p.dir + "/fhirgate.db";
  const std::string verify = "audit verify --config " + p.config + " --db ";

  const auto missing = run_fhirgate(verify + p.dir + "/typo.db");
  CHECK(missing.status == 2);
  CHECK(missing.err.find("no database") != std::string::npos);
  CHECK_FALSE(std::filesystem::exists(p.dir + "/typo.db"));
  CHECK_FALSE(std::filesystem::exists(p.dir + "/typo.db.audit-key"));
  CHECK_FALSE(std::filesystem::exists(p.dir + "/typo.db.audit-log"));

  std::filesystem::rename(db + ".audit-key", p.dir + "/saved-key");
  const auto keyless = run_fhirgate(verify + db);
  CHECK(keyless.status == 2);
  CHECK(keyless.err.find("no audit key") != std::string::npos);
  CHECK_FALSE(std::filesystem::exists(db + ".audit-key"));
  std::filesystem::rename(p.dir + "/saved-key", db + ".audit-key");
  CHECK(run_fhirgate(verify + db).status == 0);

  auto edit = [&](const std::string& sql) {
    sqlite3* handle = nullptr;
    REQUIRE(sqlite3_open(db.c_str(), &handle) == SQLITE_OK);
    REQUIRE(sqlite3_exec(handle, sql.c_str(), nullptr, nullptr, nullptr) == SQLITE_OK);
    sqlite3_close(handle);
  };
  edit("CREATE TABLE saved_head AS SELECT * FROM store_meta WHERE key = 'audit_head'");
  edit("DELETE FROM store_meta WHERE key = 'audit_head'");
  const auto headless = run_fhirgate(verify + db);
  CHECK(headless.status == 1);
  CHECK(headless.out.find("head is missing") != std::string::npos);
  // Nor does the gateway start on it (it would chain on from whatever is left).
  const auto start = run_fhirgate("serve --config " + p.config + " --port 0 --db " + db);
  CHECK(start.status == 1);
  CHECK(start.err.find("head is missing") != std::string::npos);
  edit("DELETE FROM audit_patient; DELETE FROM audit_event");
  CHECK(run_fhirgate(verify + db).status == 1);  // the whole trail gone with its head
}

}  // namespace
}  // namespace fhirgate::testing
