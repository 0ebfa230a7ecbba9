#pragma once
// The security tests (issue 17's rules, one file per rule): a partnership of real gateways started on
// port 0, with tokens made by `fhirgate partner add-token`, an MLLP listener per sending partner, the
// council's feeds, and a route to the council's drop folder. Every test here tries to break the
// gateway's promise the way an outside tester would, through every door (REST, Bundles, HL7 v2 over MLLP
// and HTTP, feed rows).
//
// The cast (see kPartnershipConfig):
//  - gp-practice: registers patients, a consent registrar; sends HL7 v2 (MLLP listener 0, MSH-4 GP1).
//  - acute-trust: may read, write and send everything its agreement lists, but is no registrar; it sees
//    a patient only where the patient's Consent lets it; sends HL7 v2 (MLLP listener 1, MSH-4 RX1) and
//    feeds; may read its own AuditEvents.
//  - social-care: the council; its consent register is a registrar; sends CSV feeds (clients, consents);
//    receives the GP's Patients as files in its drop folder.
//  - mental-health: may only read and search Patients, yet sends HL7 v2 (MLLP listener 2, MSH-4 MH1)
//    and a client feed: its agreement must bind those too.
//  - privacy-officer (role): reads the audit trail, may write Consents; operator (role): the journal.
#include <doctest/doctest.h>
#include <sqlite3.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "fhir/base64.hpp"
#include "tests/integration/common.hpp"
#include "tests/support/mllp_client.hpp"

namespace fhirgate::testing::security {

constexpr const char* kNhsSystem = "https://fhir.nhs.uk/Id/nhs-number";
constexpr const char* kSupplierSystem = "https://fhir.partnership.example/CodeSystem/supplier";

// The configuration; FEEDS and DROP are replaced with absolute folders of the test's own.
inline std::string partnership_config(const std::string& dir) {
  const std::string samples = source_path("samples/feeds");
  return R"({
  "database": {"path": "fhirgate.db"},
  "security": {"enabled": true, "consentPolicy": "opt-in"},
  "cachedTypes": ["Patient", "Consent", "AuditEvent", "Organization"],
  "partners": [
    {"id": "gp-practice", "name": "Riverside Medical Practice", "odsCode": "Y12345", "consentRegistrar": true,
     "access": {"Patient": ["read", "vread", "history-instance", "history-type", "search-type", "create", "update", "delete"],
                "Consent": ["read", "vread", "history-instance", "search-type", "create", "update", "delete"]},
     "purposes": ["TREAT", "ETREAT"],
     "inbound": ["hl7v2-mllp", "hl7v2-http", "fhir-rest", "fhir-message"],
     "hl7v2": {"sendingFacilities": ["GP1"], "localIdentifierSystem": "https://example.org/gp1/patient"}},
    {"id": "acute-trust", "name": "Northfield Hospitals", "odsCode": "RX1",
     "access": {"Patient": ["read", "vread", "history-instance", "history-type", "search-type", "create", "update", "delete"],
                "Consent": ["read", "vread", "history-instance", "history-type", "search-type", "create", "update", "delete"],
                "AuditEvent": ["read", "search-type"]},
     "purposes": ["TREAT", "ETREAT"],
     "inbound": ["hl7v2-mllp", "hl7v2-http", "fhir-rest", "fhir-message", "csv", "xml"],
     "feeds": [{"id": "clients", "mapping": ")" +
         samples + R"(/social-care/clients.mapping.json"},
               {"id": "consents", "mapping": ")" +
         samples + R"(/social-care/consents.mapping.json"}],
     "hl7v2": {"sendingFacilities": ["RX1"], "localIdentifierSystem": "https://example.org/rx1/mrn"}},
    {"id": "social-care", "name": "Westshire Council", "odsCode": "W00001", "consentRegistrar": true,
     "access": {"Patient": ["read", "search-type", "create", "update"],
                "Consent": ["read", "search-type", "create", "update"]},
     "purposes": ["COC"],
     "inbound": ["csv", "xml"],
     "endpoint": {"dropFolder": ")" +
         dir + R"(/drop"},
     "feeds": [{"id": "clients", "mapping": ")" +
         samples + R"(/social-care/clients.mapping.json", "folder": ")" + dir + R"(/inbound/clients"},
               {"id": "consents", "mapping": ")" +
         samples + R"(/social-care/consents.mapping.json"}]},
    {"id": "mental-health", "name": "Westshire Mental Health", "odsCode": "MH1",
     "access": {"Patient": ["read", "search-type"]},
     "purposes": ["TREAT"],
     "inbound": ["hl7v2-mllp", "hl7v2-http", "csv"],
     "feeds": [{"id": "clients", "mapping": ")" +
         samples + R"(/social-care/clients.mapping.json"}],
     "hl7v2": {"sendingFacilities": ["MH1"], "localIdentifierSystem": "https://example.org/mh1/id"}}
  ],
  "roles": [
    {"id": "privacy-officer", "name": "Privacy officer", "role": "privacy-officer",
     "access": {"AuditEvent": ["read", "vread", "search-type", "history-type", "history-instance"],
                "Consent": ["read", "search-type", "create", "update", "delete"]},
     "purposes": ["HCOMPL"]},
    {"id": "operator", "name": "Integration operations", "role": "operator", "purposes": ["HOPERAT"]}
  ],
  "mllp": {"listeners": [{"bind": "127.0.0.1", "port": 0, "partner": "gp-practice"},
                         {"bind": "127.0.0.1", "port": 0, "partner": "acute-trust"},
                         {"bind": "127.0.0.1", "port": 0, "partner": "mental-health"}],
           "idleTimeoutMs": 30000},
  "routes": [{"id": "gp-patients-to-council", "from": "gp-practice", "types": ["Patient"],
              "to": ["social-care"], "format": "file"}],
  "delivery": {"baseDelayMs": 50, "maxDelayMs": 200},
  "feedPollMs": 50
})";
}

// A gateway of the partnership with its own database and folders, and a token for every holder.
struct Partnership {
  std::string dir = temp_dir();
  std::string config = dir + "/gateway.json";
  std::map<std::string, std::string> tokens;
  std::unique_ptr<GatewayProcess> gateway;

  // `edit` may change the configuration text before the gateway starts (e.g. a budget).
  explicit Partnership(const std::function<std::string(std::string)>& edit = nullptr) {
    std::filesystem::create_directories(dir + "/drop");
    std::filesystem::create_directories(dir + "/inbound/clients");
    std::string text = partnership_config(dir);
    if (edit) text = edit(std::move(text));
    std::ofstream(config) << text;
    for (const char* holder :
         {"gp-practice", "acute-trust", "social-care", "mental-health", "privacy-officer", "operator"})
      tokens[holder] = new_token(config, dir, holder);
    gateway = std::make_unique<GatewayProcess>(std::vector<std::string>{"--config", config}, dir);
  }
  std::uint16_t port() const { return gateway->port(); }
  // MLLP listeners: 0 gp-practice, 1 acute-trust, 2 mental-health.
  std::uint16_t mllp_port(std::size_t listener) const { return gateway->mllp_ports().at(listener); }
  std::unique_ptr<HttpClient> client(const std::string& holder) const {
    return std::make_unique<HttpClient>(port(), bearer(tokens.at(holder)));
  }
  std::string db() const { return dir + "/fhirgate.db"; }
};

inline std::string patient_json(const std::string& family, const std::string& nhs = {},
                                const std::string& id = {}, const std::string& extra = {}) {
  std::string body = R"({"resourceType":"Patient",)";
  if (!id.empty()) body += R"("id":")" + id + R"(",)";
  if (!nhs.empty())
    body += R"("identifier":[{"system":"https://fhir.nhs.uk/Id/nhs-number","value":")" + nhs + R"("}],)";
  body += R"("name":[{"family":")" + family + R"("}],"gender":"female","birthDate":"1970-01-01")";
  if (!extra.empty()) body += "," + extra;
  return body + "}";
}

// A Patient created by `who` (REST POST); returns its id.
inline std::string create_patient(HttpClient& who, const std::string& family, const std::string& nhs = {}) {
  const auto r = who.send_json("POST", "/Patient", patient_json(family, nhs));
  REQUIRE_MESSAGE(r.status == 201, r.body);
  return std::string(json(r.body).string_at("id"));
}

// A patient-privacy Consent (IHE basic shape) with the given provision JSON; `id` for a PUT.
inline std::string consent_json(const std::string& patient_id, const std::string& provision,
                                const std::string& id = {}, const std::string& status = "active") {
  return R"({"resourceType":"Consent",)" + (id.empty() ? std::string() : R"("id":")" + id + R"(",)") +
         R"("status":")" + status + R"(",)" +
         R"("scope":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/consentscope","code":"patient-privacy"}]},)"
         R"("category":[{"coding":[{"system":"http://loinc.org","code":"59284-0"}]}],)"
         R"("patient":{"reference":"Patient/)" +
         patient_id +
         R"("},"dateTime":"2026-01-01T00:00:00Z",)"
         R"("policyRule":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"OPTIN"}]},)"
         R"("provision":)" +
         provision + "}";
}

// Provisions: permit or deny one partner (its Organization), or everyone.
inline std::string permit(const std::string& partner) {
  return R"({"type":"permit","actor":[{"role":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v3-ParticipationType","code":"IRCP"}]},"reference":{"reference":"Organization/)" +
         partner + R"("}}]})";
}
inline std::string deny(const std::string& partner) {
  return R"({"type":"deny","actor":[{"role":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v3-ParticipationType","code":"IRCP"}]},"reference":{"reference":"Organization/)" +
         partner + R"("}}]})";
}

// Posts a Consent as `registrar` (the GP by default); returns its id.
inline std::string record_consent(HttpClient& registrar, const std::string& patient_id,
                                  const std::string& provision) {
  const auto r = registrar.send_json("POST", "/Consent", consent_json(patient_id, provision));
  REQUIRE_MESSAGE(r.status == 201, r.body);
  return std::string(json(r.body).string_at("id"));
}

inline std::set<std::string> ids_in(const fhir::Node& bundle) {
  std::set<std::string> ids;
  if (const auto* entries = at(bundle, "entry"))
    for (const auto& e : entries->items()) ids.insert(text_at(e, "resource.id"));
  return ids;
}

// The privacy officer's report for Patient/<id>: each AuditEvent as JSON text.
inline std::vector<std::string> audit_report(HttpClient& officer, const std::string& patient_id) {
  const auto r = officer.get("/AuditEvent?patient=Patient/" + patient_id + "&_count=200");
  REQUIRE_MESSAGE(r.status == 200, r.body);
  std::vector<std::string> events;
  const fhir::Node report = json(r.body);
  if (const auto* entries = at(report, "entry"))
    for (const auto& e : entries->items()) events.push_back(fhir::write_json(*at(e, "resource")));
  return events;
}

// How many of those hold every one of `texts` (an agent, an entity, an outcome such as
// "\"outcome\":\"4\"").
inline int audit_events_with(HttpClient& officer, const std::string& patient_id,
                             const std::vector<std::string>& texts) {
  int n = 0;
  for (const auto& event : audit_report(officer, patient_id))
    n += std::all_of(texts.begin(), texts.end(),
                     [&](const std::string& t) { return event.find(t) != std::string::npos; });
  return n;
}

// An ADT message from `facility` (GP1, RX1, MH1) for a patient with this NHS number and family name,
// in original acknowledgement mode (one AA/AE/AR).
inline std::string adt(const std::string& trigger, const std::string& control_id, const std::string& facility,
                       const std::string& nhs, const std::string& family,
                       const std::string& timestamp = "20260101120000") {
  return "MSH|^~\\&|PAS|" + facility + "|FHIRGW|PARTNERSHIP|" + timestamp + "||ADT^" + trigger + "^ADT_A01|" +
         control_id + "|P|2.5.1\r" + "EVN|" + trigger + "|" + timestamp + "\r" + "PID|1||" + nhs +
         "^^^NHS^NH||" + family + "^Ada^^^Ms||19700101|F\r" + "PV1|1|O\r";
}

// MSA-1 and MSA-2 of an ACK, e.g. "AA|MSG00001".
inline std::string msa(const std::string& ack) {
  const auto pos = ack.find("\rMSA|");
  if (pos == std::string::npos) return "<no MSA>";
  const auto rest = ack.substr(pos + 5);
  const auto first = rest.find('|');
  const auto second = rest.find_first_of("|\r", first + 1);
  return rest.substr(0, second);
}

// Sends one message over MLLP and returns its (first) ACK.
inline std::string send_v2(std::uint16_t port, const std::string& message) {
  MllpClient client(port);
  client.send_raw(frame(message));
  return client.read_frame();
}

// Runs `fhirgate audit verify` on the partnership's database; true when it says the chain is intact.
inline bool audit_intact(const Partnership& p) {
  const Run r = run_fhirgate("audit verify --config " + p.config + " --db " + p.db());
  return r.status == 0 && r.out.find("intact") != std::string::npos;
}

// ==========================================================================================================
// Added for rules 1-6 (branch security-tests-a): the doors and probes those rule files share. Everything
// above is the fixture as it was; nothing there is changed.
// ==========================================================================================================

// `text` with every `from` replaced by `to`.
inline std::string replaced(std::string text, const std::string& from, const std::string& to) {
  for (auto pos = text.find(from); pos != std::string::npos; pos = text.find(from, pos + to.size()))
    text.replace(pos, from.size(), to);
  return text;
}

// A transaction or batch Bundle of these entries (each a JSON object as text).
inline std::string bundle_json(const std::string& type, const std::vector<std::string>& entries) {
  std::string out = R"({"resourceType":"Bundle","type":")" + type + R"(","entry":[)";
  for (std::size_t i = 0; i < entries.size(); ++i) out += (i ? "," : "") + entries[i];
  return out + "]}";
}

// One Bundle entry; `extra_request` is appended inside request, e.g. R"(,"ifNoneExist":"identifier=...")".
inline std::string bundle_entry(const std::string& method, const std::string& url,
                                const std::string& resource = {}, const std::string& extra_request = {}) {
  std::string e = "{";
  if (!resource.empty()) e += R"("resource":)" + resource + ",";
  return e + R"("request":{"method":")" + method + R"(","url":")" + url + "\"" + extra_request + "}}";
}

// entry[i].response.status of a transaction-, batch- or feed batch-response, in order, joined with "; "
// (e.g. "201 Created; 403 Forbidden"), so that a failed comparison prints them.
inline std::string entry_statuses(const fhir::Node& bundle) {
  std::string out;
  if (const auto* entries = at(bundle, "entry"))
    for (const auto& e : entries->items()) out += (out.empty() ? "" : "; ") + text_at(e, "response.status");
  return out;
}

// POST /$ingest?feed=<feed> with a CSV file, as the partner `holder`.
inline Response ingest_feed(const Partnership& p, const std::string& holder, const std::string& feed,
                            const std::string& csv) {
  HttpClient http(p.port());
  return http.request("POST", "/$ingest?feed=" + feed, csv,
                      {{"Authorization", "Bearer " + p.tokens.at(holder)}, {"Content-Type", "text/csv"}});
}

// POST /$ingest with one HL7 v2 message, as the partner `holder`.
inline Response ingest_v2(const Partnership& p, const std::string& holder, const std::string& message) {
  HttpClient http(p.port());
  return http.request(
      "POST", "/$ingest", message,
      {{"Authorization", "Bearer " + p.tokens.at(holder)}, {"Content-Type", "x-application/hl7-v2+er7"}});
}

// The sample client list's columns (samples/feeds/social-care/clients.csv), and one active client.
constexpr const char* kClientsHeader =
    "Client ID,NHS Number,Surname,Forename,Date of Birth,Sex,Address Line 1,Town,Postcode,Status\r\n";
inline std::string client_row(const std::string& client_id, const std::string& nhs,
                              const std::string& surname) {
  return client_id + "," + nhs + "," + surname +
         ",Ada,01/01/1970,F,1 Test Street,Westshire,WS1 1AA,Active\r\n";
}

// The sample consent register's columns (consents.csv): Y opts the client in (a root permit), N out.
constexpr const char* kConsentsHeader = "NHS No;Share Record;Date Recorded;Notes\r\n";
inline std::string consent_row(const std::string& nhs, const std::string& share) {
  return nhs + ";" + share + ";15/03/2024;recorded by a test\r\n";
}

// An ADT^A40 from `facility`: the Patient with NHS number `retired` is merged into `survivor`.
inline std::string adt_merge(const std::string& control_id, const std::string& facility,
                             const std::string& survivor, const std::string& retired) {
  std::string m =
      replaced(adt("A40", control_id, facility, survivor, "Survivor"), "ADT^A40^ADT_A01", "ADT^A40^ADT_A39");
  return replaced(m, "PV1|1|O\r", "MRG|" + retired + "^^^NHS^NH\r");
}

// The message in enhanced acknowledgement mode, asking for a commit ACK only (MSH-15 AL, MSH-16 NE).
inline std::string enhanced_mode(const std::string& message) {
  return replaced(message, "|P|2.5.1\r", "|P|2.5.1|||AL|NE\r");
}

// Runs `sql` (one text parameter per `?`) read-only on the partnership's database; the first column of
// each row. Sees every record, whoever may see what: the tests' way to say "nothing was stored".
inline std::vector<std::string> database_rows(const Partnership& p, const std::string& sql,
                                              const std::vector<std::string>& parameters = {}) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open_v2(p.db().c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
  sqlite3_busy_timeout(db, 5000);
  sqlite3_stmt* stmt = nullptr;
  REQUIRE_MESSAGE(sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr) == SQLITE_OK, sqlite3_errmsg(db));
  for (std::size_t i = 0; i < parameters.size(); ++i)
    sqlite3_bind_text(stmt, static_cast<int>(i + 1), parameters[i].c_str(), -1, SQLITE_TRANSIENT);
  std::vector<std::string> rows;
  while (sqlite3_step(stmt) == SQLITE_ROW) {
    const auto* text = sqlite3_column_text(stmt, 0);
    rows.emplace_back(text ? reinterpret_cast<const char*>(text) : "");
  }
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  return rows;
}

// How many live (not deleted) resources of `type` hold `text` anywhere in their current version.
inline int stored_with(const Partnership& p, const std::string& type, const std::string& text) {
  const auto rows = database_rows(p,
                                  "SELECT count(*) FROM resource r JOIN resource_version v ON v.vid = r.vid "
                                  "WHERE r.type = ? AND r.deleted = 0 AND instr(v.body, ?) > 0",
                                  {type, text});
  return rows.empty() ? -1 : std::stoi(rows.front());
}

// A record as `who` reads it now: the body of a 200 (the test stops otherwise). Comparing two of these
// says the record is untouched, versionId, lastUpdated and content alike.
inline std::string snapshot(HttpClient& who, const std::string& path) {
  const auto r = who.get(path);
  REQUIRE_MESSAGE(r.status == 200, path << ": " << r.body);
  return r.body;
}

// The operator's journal entries for a query such as "status=held&partner=acute-trust".
inline std::vector<fhir::Node> journal_entries(const Partnership& p, const std::string& query) {
  auto ops = p.client("operator");
  const auto r = ops->get("/_ops/journal?_count=1000" + (query.empty() ? std::string() : "&" + query));
  REQUIRE_MESSAGE(r.status == 200, r.body);
  const auto listing = json(r.body);
  std::vector<fhir::Node> out;
  if (const auto* entries = at(listing, "entries"))
    for (const auto& e : entries->items()) out.push_back(e);
  return out;
}

// The privacy officer's report for Patient/<id>, each AuditEvent as JSON text, and how many of those hold
// every one of `texts`. The same as audit_report/audit_events_with above, which read the entries of a
// Bundle that is already destroyed (at(json(...), "entry") in an if-initializer) and so crash or read
// garbage; kept apart so as not to change the shared helpers.
inline std::vector<std::string> officer_report(HttpClient& officer, const std::string& patient_id) {
  const auto r = officer.get("/AuditEvent?patient=Patient/" + patient_id + "&_count=200");
  REQUIRE_MESSAGE(r.status == 200, r.body);
  const auto bundle = json(r.body);
  std::vector<std::string> events;
  if (const auto* entries = at(bundle, "entry"))
    for (const auto& e : entries->items()) events.push_back(fhir::write_json(*at(e, "resource")));
  return events;
}
inline int officer_events_with(HttpClient& officer, const std::string& patient_id,
                               const std::vector<std::string>& texts) {
  int n = 0;
  for (const auto& event : officer_report(officer, patient_id))
    n += std::all_of(texts.begin(), texts.end(),
                     [&](const std::string& t) { return event.find(t) != std::string::npos; });
  return n;
}

// How many of the privacy officer's AuditEvents about Patient/<id> name `partner`'s Organization as agent
// with outcome 4 (a refusal).
inline int refusals_audited(HttpClient& officer, const std::string& patient_id, const std::string& partner) {
  return officer_events_with(officer, patient_id, {"\"Organization/" + partner + "\"", "\"outcome\":\"4\""});
}

// A set of ids as one string, so that a failed comparison prints them.
inline std::string joined(const std::set<std::string>& items) {
  std::string out;
  for (const auto& i : items) out += (out.empty() ? "" : ", ") + i;
  return out;
}

// Rule 4's answer to a held write: an OperationOutcome with one informational issue saying it was
// accepted for review, naming nothing.
inline void check_held_outcome(const fhir::Node& oo, const std::string& hidden_id) {
  CHECK(text_at(oo, "resourceType") == "OperationOutcome");
  const auto* issues = at(oo, "issue");
  CHECK((issues && issues->items().size() == 1));
  CHECK(text_at(oo, "issue[0].severity") == "information");
  CHECK(text_at(oo, "issue[0].code") == "informational");
  CHECK(text_at(oo, "issue[0].diagnostics").find("accepted for review") != std::string::npos);
  CHECK(fhir::write_json(oo).find(hidden_id) == std::string::npos);
}

// ==========================================================================================================
// End of the rules 1-6 block.
// ==========================================================================================================

}  // namespace fhirgate::testing::security

// ==== Added for rules 7 to 12 and the small wrongs (security-tests-b). Helpers above are unchanged. ====
// Reading AuditEvents as structures (who asked, for which correlation, what they say once their base64
// parts are decoded), polling against a deadline, and the partnership's database behind the gateway.
#include <chrono>
#include <iterator>
#include <optional>
#include <string_view>
#include <thread>

namespace fhirgate::testing::security {

// Calls `done` until it returns true or `deadline` (stretched in sanitized builds) passes; true when it did.
template <class Done>
bool poll_until(Done done, std::chrono::milliseconds deadline = std::chrono::seconds(5)) {
  const auto until = std::chrono::steady_clock::now() + scaled(deadline);
  for (;;) {
    if (done()) return true;
    if (std::chrono::steady_clock::now() >= until) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

// Everything an AuditEvent says: its JSON, then the decoded base64 of every entity's query and of every
// base64Binary detail (BALP keeps the raw request there), so "does it hold X" sees those too.
inline std::string audit_text(const fhir::Node& event) {
  std::string text = fhir::write_json(event);
  if (const auto* entities = event.find("entity"); entities && entities->is_array()) {
    for (const auto& e : entities->items()) {
      if (const auto* q = e.find("query"); q && q->is_string())
        if (auto decoded = fhir::base64_decode(q->text())) text += "\n" + *decoded;
      if (const auto* details = e.find("detail"); details && details->is_array())
        for (const auto& d : details->items())
          if (const auto* b = d.find("valueBase64Binary"); b && b->is_string())
            if (auto decoded = fhir::base64_decode(b->text())) text += "\n" + *decoded;
    }
  }
  return text;
}

// The requesting agent: who.reference (Organization/<partner>), else who.identifier.value (a role id such
// as "operator"), else who.display ("unauthenticated"); "<no requestor>" when no agent is the requestor.
inline std::string requestor_of(const fhir::Node& event) {
  if (const auto* agents = event.find("agent"); agents && agents->is_array()) {
    for (const auto& a : agents->items()) {
      const auto* requestor = a.find("requestor");
      if (!requestor || !requestor->as_bool()) continue;
      if (const std::string r = text_at(a, "who.reference"); r != "<absent>") return r;
      if (const std::string i = text_at(a, "who.identifier.value"); i != "<absent>") return i;
      return text_at(a, "who.display");
    }
  }
  return "<no requestor>";
}

// True when the requesting agent is `who`, however it is named: who.reference (Organization/<partner>),
// who.identifier.value (a role id such as "operator") or who.display ("unauthenticated").
inline bool requested_by(const fhir::Node& event, const std::string& who) {
  if (const auto* agents = event.find("agent"); agents && agents->is_array())
    for (const auto& a : agents->items())
      if (const auto* requestor = a.find("requestor"); requestor && requestor->as_bool())
        return text_at(a, "who.reference") == who || text_at(a, "who.identifier.value") == who ||
               text_at(a, "who.display") == who;
  return false;
}

// The exchange's correlation id an AuditEvent carries (BALP's XrequestId entity); empty when none.
inline std::string correlation_of(const fhir::Node& event) {
  if (const auto* entities = event.find("entity"); entities && entities->is_array())
    for (const auto& e : entities->items())
      if (text_at(e, "type.code") == "XrequestId") return text_at(e, "what.identifier.value");
  return {};
}

// True when one of the event's purposeOfEvent codings has `code` (e.g. BTG).
inline bool has_purpose(const fhir::Node& event, const std::string& code) {
  if (const auto* purposes = event.find("purposeOfEvent"); purposes && purposes->is_array())
    for (const auto& p : purposes->items())
      if (const auto* codings = p.find("coding"); codings && codings->is_array())
        for (const auto& c : codings->items())
          if (c.string_at("code") == code) return true;
  return false;
}

// The AuditEvents a search as `who` answers (`target` such as "/AuditEvent?patient=Patient/x&_count=200").
inline std::vector<fhir::Node> audit_events(HttpClient& who, const std::string& target) {
  const auto r = who.get(target);
  REQUIRE_MESSAGE(r.status == 200, target, ": ", r.body);
  const auto bundle = json(r.body);
  std::vector<fhir::Node> events;
  if (const auto* entries = at(bundle, "entry"))
    for (const auto& e : entries->items())
      if (const auto* resource = at(e, "resource")) events.push_back(*resource);
  return events;
}

// The privacy officer's report on Patient/<id>, as structures.
inline std::vector<fhir::Node> patient_events(HttpClient& officer, const std::string& patient_id) {
  return audit_events(officer, "/AuditEvent?patient=Patient/" + patient_id + "&_count=500");
}

// Runs SQL on the partnership's database beside the running gateway (SQLite's WAL lets both write); the
// number of rows the last statement changed.
inline int sql_exec(const Partnership& p, const std::string& sql) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(p.db().c_str(), &db) == SQLITE_OK);
  sqlite3_busy_timeout(db, 5000);
  char* error = nullptr;
  const int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error);
  const int changed = sqlite3_changes(db);
  const std::string message = error ? error : "";
  sqlite3_free(error);
  sqlite3_close(db);
  REQUIRE_MESSAGE(rc == SQLITE_OK, sql, ": ", message);
  return changed;
}

// A whole file's bytes ("" when it cannot be read).
inline std::string file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

}  // namespace fhirgate::testing::security
