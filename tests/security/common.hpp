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
#include <functional>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

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

}  // namespace fhirgate::testing::security
