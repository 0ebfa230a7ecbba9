#include "gateway/audit/audit_event.hpp"

#include <doctest/doctest.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "fhir/base64.hpp"
#include "fhir/validator.hpp"
#include "fhir/xml.hpp"
#include "tests/support/paths.hpp"
#include "tests/support/r4.hpp"

namespace fhirgate::gateway {
namespace {

using fhir::Node;
using Strings = std::vector<std::string>;

constexpr std::string_view kBalp = "https://profiles.ihe.net/ITI/BALP/StructureDefinition/IHE.BasicAudit.";

using testing::r4_model;

const fhir::Validator& r4_validator() {
  static const std::shared_ptr<const fhir::Terminology> terminology = [] {
    auto t = fhir::Terminology::load_from(testing::source_path("profiles"));
    REQUIRE(t.ok());
    return std::shared_ptr<const fhir::Terminology>(*t);
  }();
  static const fhir::Validator validator(r4_model(), terminology);
  return validator;
}

// "expression: diagnostics" of every error the R4 validator reports, joined by "; "; empty when valid.
std::string r4_errors(const Node& event) {
  std::string out;
  for (const Issue& issue : r4_validator().validate(event).issues) {
    if (issue.severity != "error" && issue.severity != "fatal") continue;
    if (!out.empty()) out += "; ";
    out += issue.expression + ": " + issue.diagnostics;
  }
  return out;
}

// Every event must be valid R4, obey the JSON representation rules, and have its members in element
// order: the XML writer places elements by the model, so a JSON -> XML -> JSON round trip reproduces
// the tree member for member only when the order was right.
void check_r4(const Node& event) {
  CHECK(r4_errors(event) == "");
  CHECK(fhir::check_resource_json(event).ok());
  auto xml = fhir::json_to_xml(*r4_model(), event);
  REQUIRE(xml.ok());
  auto back = fhir::xml_to_json(*r4_model(), *xml);
  REQUIRE(back.ok());
  CHECK(fhir::write_json(*back) == fhir::write_json(event));
}

const Node& at(const Node& n, std::string_view key) {
  const Node* found = n.find(key);
  REQUIRE_MESSAGE(found != nullptr, key);
  return *found;
}

std::string profile(const Node& event) {
  const Node* meta = event.find("meta");
  if (meta == nullptr) return "";
  const Node& profiles = at(*meta, "profile");
  REQUIRE(profiles.items().size() == 1);
  return profiles.items()[0].text();
}

// "system|code" of each subtype coding.
Strings subtypes(const Node& event) {
  Strings out;
  if (const Node* subtype = event.find("subtype")) {
    for (const Node& c : subtype->items())
      out.push_back(std::string(c.string_at("system")) + "|" + std::string(c.string_at("code")));
  }
  return out;
}

// The agents as "type-code requestor network-type", client first.
Strings agents(const Node& event) {
  Strings out;
  for (const Node& a : at(event, "agent").items()) {
    std::string s(at(at(a, "type"), "coding").items().at(0).string_at("code"));
    s += at(a, "requestor").as_bool() ? " requestor" : " -";
    const Node* network = a.find("network");
    s += network != nullptr ? " net" + std::string(network->string_at("type")) : " no-net";
    out.push_back(s);
  }
  return out;
}

const Node& client(const Node& event) {
  return at(event, "agent").items().at(0);
}

// The entities as "type/role what", what being the reference or identifier value (or "-").
Strings entities(const Node& event) {
  Strings out;
  const Node* list = event.find("entity");
  if (list == nullptr) return out;
  for (const Node& e : list->items()) {
    std::string s(at(e, "type").string_at("code"));
    s += "/";
    if (const Node* role = e.find("role")) s += role->string_at("code");
    s += " ";
    const Node* what = e.find("what");
    if (what == nullptr) {
      s += "-";
    } else if (what->find("reference") != nullptr) {
      s += what->string_at("reference");
    } else {
      s += at(*what, "identifier").string_at("value");
    }
    out.push_back(s);
  }
  return out;
}

// Each purposeOfEvent as its single "code".
Strings purposes(const Node& event) {
  Strings out;
  if (const Node* list = event.find("purposeOfEvent")) {
    for (const Node& cc : list->items()) {
      const Node& codings = at(cc, "coding");
      REQUIRE(codings.items().size() == 1);
      CHECK(codings.items()[0].string_at("system") == "http://terminology.hl7.org/CodeSystem/v3-ActReason");
      out.push_back(std::string(codings.items()[0].string_at("code")));
    }
  }
  return out;
}

const Node* query_entity(const Node& event) {
  for (const Node& e : at(event, "entity").items()) {
    if (e.find("role") != nullptr && at(e, "role").string_at("code") == "24") return &e;
  }
  return nullptr;
}

// An authenticated partner reading over REST from a known address.
AuditInput partner(std::string interaction) {
  AuditInput in;
  in.interaction = std::move(interaction);
  in.recorded_ms = 1893456000123;  // 2030-01-01T00:00:00.123Z
  in.outcome = AuditOutcome::success;
  in.client_id = "acute-trust";
  in.client_reference = "Organization/acute-trust";
  in.client_display = "Acute Hospital Trust";
  in.client_address = "192.0.2.10";
  in.server_address = "198.51.100.7";
  in.purpose = "TREAT";
  return in;
}

constexpr std::string_view kRest = "http://hl7.org/fhir/restful-interaction|";

TEST_CASE("audit: a read of a patient's resource is a BALP PatientRead") {
  AuditInput in = partner("read");
  in.entity_reference = "Patient/123/_history/2";
  in.patient_reference = "Patient/123";
  const Node event = make_audit_event(in);
  check_r4(event);
  CHECK(profile(event) == std::string(kBalp) + "PatientRead");
  CHECK(event.find("id") == nullptr);
  CHECK(at(event, "type").string_at("code") == "rest");
  CHECK(at(event, "type").string_at("system") == "http://terminology.hl7.org/CodeSystem/audit-event-type");
  CHECK(subtypes(event) == Strings{std::string(kRest) + "read"});
  CHECK(event.string_at("action") == "R");
  CHECK(event.string_at("recorded") == "2030-01-01T00:00:00.123+00:00");
  CHECK(event.string_at("outcome") == "0");
  CHECK(event.find("outcomeDesc") == nullptr);
  CHECK(purposes(event) == Strings{"TREAT"});
  // BALP Read: the data flows to the client, so the client is the Destination Role ID.
  CHECK(agents(event) == Strings{"110152 requestor net2", "110153 - net2"});
  const Node& who = at(client(event), "who");
  CHECK(who.string_at("reference") == "Organization/acute-trust");
  CHECK(at(who, "identifier").string_at("value") == "acute-trust");
  CHECK(who.string_at("display") == "Acute Hospital Trust");
  CHECK(at(at(event, "agent").items()[1], "who").string_at("display") == "fhirgate");
  CHECK(at(at(event, "source"), "observer").string_at("display") == "fhirgate");
  CHECK(at(at(event, "source"), "type").items().at(0).string_at("code") == "4");
  CHECK(entities(event) == Strings{"2/4 Patient/123/_history/2", "1/1 Patient/123"});
}

TEST_CASE("audit: a search records the raw query base64, as BALP Query or PatientQuery") {
  AuditInput in = partner("search-type");
  in.query = "GET /Consent?patient=Patient/123&status=active&_x=<script>\xC3\xA9";
  in.patient_reference = "Patient/123";
  in.entity_reference = "Consent/9";  // not recorded for a search
  Node event = make_audit_event(in);
  check_r4(event);
  CHECK(profile(event) == std::string(kBalp) + "PatientQuery");
  CHECK(subtypes(event) == Strings{std::string(kRest) + "search-type"});
  CHECK(event.string_at("action") == "E");
  CHECK(agents(event) == Strings{"110153 requestor net2", "110152 - net2"});
  CHECK(entities(event) == Strings{"1/1 Patient/123", "2/24 -"});
  const Node* query = query_entity(event);
  REQUIRE(query != nullptr);
  CHECK(fhir::base64_decode(query->string_at("query")) == in.query);
  CHECK(query->find("name") == nullptr);

  in.patient_reference.clear();
  in.query = "GET /Patient?family=smith";
  event = make_audit_event(in);
  check_r4(event);
  CHECK(profile(event) == std::string(kBalp) + "Query");
  CHECK(entities(event) == Strings{"2/24 -"});
  CHECK(query_entity(event)->string_at("query") == "R0VUIC9QYXRpZW50P2ZhbWlseT1zbWl0aA==");
}

TEST_CASE("audit: base64 of the query for every remainder length") {
  for (const std::string& query : Strings{"a", "ab", "abc", "abcd", std::string("\0\xFF\x10", 3)}) {
    AuditInput in = partner("search-type");
    in.query = query;
    const Node event = make_audit_event(in);
    CHECK(fhir::base64_decode(query_entity(event)->string_at("query")) == query);
    CHECK(r4_errors(event) == "");
  }
}

TEST_CASE("audit: create, with and without a patient") {
  AuditInput in = partner("create");
  in.entity_reference = "Consent/9/_history/1";
  in.patient_reference = "Patient/123";
  Node event = make_audit_event(in);
  check_r4(event);
  CHECK(profile(event) == std::string(kBalp) + "PatientCreate");
  CHECK(subtypes(event) == Strings{std::string(kRest) + "create"});
  CHECK(event.string_at("action") == "C");
  CHECK(agents(event) == Strings{"110153 requestor net2", "110152 - net2"});
  CHECK(entities(event) == Strings{"2/4 Consent/9/_history/1", "1/1 Patient/123"});

  in.entity_reference = "Organization/7/_history/1";
  in.patient_reference.clear();
  event = make_audit_event(in);
  check_r4(event);
  CHECK(profile(event) == std::string(kBalp) + "Create");
  CHECK(entities(event) == Strings{"2/4 Organization/7/_history/1"});
}

TEST_CASE("audit: update is a BALP PatientUpdate naming the new version") {
  AuditInput in = partner("update");
  in.entity_reference = "Patient/123/_history/3";
  in.patient_reference = "Patient/123";
  const Node event = make_audit_event(in);
  check_r4(event);
  CHECK(profile(event) == std::string(kBalp) + "PatientUpdate");
  CHECK(subtypes(event) == Strings{std::string(kRest) + "update"});
  CHECK(event.string_at("action") == "U");
  CHECK(agents(event) == Strings{"110153 requestor net2", "110152 - net2"});
  CHECK(entities(event) == Strings{"2/4 Patient/123/_history/3", "1/1 Patient/123"});
}

TEST_CASE("audit: delete uses BALP's Application and Custodian agents") {
  AuditInput in = partner("delete");
  in.entity_reference = "Consent/9";
  in.patient_reference = "Patient/123";
  const Node event = make_audit_event(in);
  check_r4(event);
  CHECK(profile(event) == std::string(kBalp) + "PatientDelete");
  CHECK(subtypes(event) == Strings{std::string(kRest) + "delete"});
  CHECK(event.string_at("action") == "D");
  CHECK(agents(event) == Strings{"110150 requestor net2", "custodian - net2"});
  CHECK(at(at(at(event, "agent").items()[1], "type"), "coding").items()[0].string_at("system") ==
        "http://terminology.hl7.org/CodeSystem/provenance-participant-type");
  CHECK(entities(event) == Strings{"2/4 Consent/9", "1/1 Patient/123"});
}

TEST_CASE("audit: $validate is an operation, action E, with no BALP profile") {
  AuditInput in = partner("operation");
  in.operation = "$validate";
  in.purpose.clear();
  const Node event = make_audit_event(in);
  check_r4(event);
  CHECK(profile(event) == "");
  CHECK(subtypes(event) == Strings{std::string(kRest) + "operation", "urn:fhirgate:operation|$validate"});
  CHECK(event.string_at("action") == "E");
  CHECK(event.find("purposeOfEvent") == nullptr);
  CHECK(agents(event) == Strings{"110153 requestor net2", "110152 - net2"});
  CHECK(event.find("entity") == nullptr);
}

TEST_CASE("audit: history keeps the read shape and claims no profile") {
  AuditInput in = partner("history-instance");
  in.entity_reference = "Patient/123";
  in.patient_reference = "Patient/123";
  Node event = make_audit_event(in);
  check_r4(event);
  CHECK(profile(event) == "");
  CHECK(event.string_at("action") == "R");
  CHECK(agents(event) == Strings{"110152 requestor net2", "110153 - net2"});
  CHECK(entities(event) == Strings{"2/4 Patient/123", "1/1 Patient/123"});

  in = partner("history-type");
  in.query = "GET /Consent/_history?_since=2030-01-01";
  event = make_audit_event(in);
  check_r4(event);
  CHECK(subtypes(event) == Strings{std::string(kRest) + "history-type"});
  CHECK(entities(event) == Strings{"2/24 -"});
  CHECK(fhir::base64_decode(query_entity(event)->string_at("query")) == in.query);
}

TEST_CASE("audit: a denied read keeps the shape, records the failure and claims no profile") {
  AuditInput in = partner("read");
  in.entity_reference = "Patient/123";
  in.patient_reference = "Patient/123";
  in.outcome = AuditOutcome::minor_failure;
  in.outcome_desc = "Consent does not permit disclosure to this partner";
  const Node event = make_audit_event(in);
  check_r4(event);
  CHECK(event.find("meta") == nullptr);  // BALP fixes outcome 0
  CHECK(event.string_at("outcome") == "4");
  CHECK(event.string_at("outcomeDesc") == "Consent does not permit disclosure to this partner");
  CHECK(subtypes(event) == Strings{std::string(kRest) + "read"});
  CHECK(agents(event) == Strings{"110152 requestor net2", "110153 - net2"});
  CHECK(entities(event) == Strings{"2/4 Patient/123", "1/1 Patient/123"});

  in.outcome = AuditOutcome::serious_failure;
  in.outcome_desc = "Internal error";
  CHECK(make_audit_event(in).string_at("outcome") == "8");
}

TEST_CASE("audit: break-glass adds v3-ActReason BTG beside the stated purpose") {
  AuditInput in = partner("read");
  in.entity_reference = "Patient/123";
  in.patient_reference = "Patient/123";
  in.purpose = "ETREAT";
  in.break_glass = true;
  Node event = make_audit_event(in);
  check_r4(event);
  CHECK(profile(event) == std::string(kBalp) + "PatientRead");
  CHECK(purposes(event) == Strings{"ETREAT", "BTG"});
  CHECK(at(event, "purposeOfEvent").items()[1].find("coding")->items()[0].string_at("display") ==
        "break the glass");

  in.purpose.clear();
  event = make_audit_event(in);
  CHECK(purposes(event) == Strings{"BTG"});
  CHECK(r4_errors(event) == "");
}

TEST_CASE("audit: an unauthenticated request (401) names no partner") {
  AuditInput in;
  in.interaction = "read";
  in.recorded_ms = 1893456000000;
  in.outcome = AuditOutcome::minor_failure;
  in.outcome_desc = "No or invalid credential";
  in.client_address = "2001:db8::1";
  in.server_address = "https://gateway.example.org/fhir";
  in.entity_reference = "Patient/123";
  const Node event = make_audit_event(in);
  check_r4(event);
  CHECK(event.find("meta") == nullptr);
  CHECK(event.string_at("outcome") == "4");
  const Node& who = at(client(event), "who");
  CHECK(who.members().size() == 1);
  CHECK(who.string_at("display") == "unauthenticated");
  CHECK(agents(event) == Strings{"110152 requestor net2", "110153 - net5"});
  CHECK(event.find("purposeOfEvent") == nullptr);
  CHECK(entities(event) == Strings{"2/4 Patient/123"});
}

TEST_CASE("audit: an HL7 v2 message follows the ITI-8 feed audit with the message as an entity") {
  AuditInput in = partner("create");
  in.channel = "hl7v2";
  in.client_id = "gp-practice";
  in.client_reference.clear();
  in.client_display = "Riverside GP Practice";
  in.purpose.clear();
  in.entity_reference = "Patient/123/_history/1";
  in.patient_reference = "Patient/123";
  in.message_control_id = "MSG00001";
  in.correlation_id = "b7c1e2d4";
  Node event = make_audit_event(in);
  check_r4(event);
  CHECK(profile(event) == "");  // BALP is REST only
  CHECK(at(event, "type").string_at("system") == "http://dicom.nema.org/resources/ontology/DCM");
  CHECK(at(event, "type").string_at("code") == "110110");
  CHECK(subtypes(event) == Strings{std::string(kRest) + "create"});
  CHECK(event.string_at("action") == "C");
  CHECK(agents(event) == Strings{"110153 requestor net2", "110152 - net2"});
  CHECK(at(client(event), "who").find("reference") == nullptr);
  CHECK(at(at(client(event), "who"), "identifier").string_at("value") == "gp-practice");
  CHECK(entities(event) ==
        Strings{"2/4 Patient/123/_history/1", "1/1 Patient/123", "2/3 MSG00001", "XrequestId/ b7c1e2d4"});

  in.interaction = "update";
  in.entity_reference = "Patient/123/_history/2";
  event = make_audit_event(in);
  check_r4(event);
  CHECK(event.string_at("action") == "U");

  // A message that wrote nothing (rejected, failed, re-sent): no subtype, action E.
  in.interaction = "message";
  in.outcome = AuditOutcome::minor_failure;
  in.outcome_desc = "Unsupported message type";
  in.entity_reference.clear();
  in.patient_reference.clear();
  event = make_audit_event(in);
  check_r4(event);
  CHECK(event.find("subtype") == nullptr);
  CHECK(event.string_at("action") == "E");
  CHECK(entities(event) == Strings{"2/3 MSG00001", "XrequestId/ b7c1e2d4"});

  // Posted to $ingest rather than sent over MLLP: the operation is named too.
  in.operation = "$ingest";
  event = make_audit_event(in);
  check_r4(event);
  CHECK(subtypes(event) == Strings{"urn:fhirgate:operation|$ingest"});
  in.interaction = "create";
  in.entity_reference = "Patient/124/_history/1";
  CHECK(subtypes(make_audit_event(in)) ==
        Strings{std::string(kRest) + "create", "urn:fhirgate:operation|$ingest"});
}

TEST_CASE("audit: the profile is withheld when a network address BALP requires is unknown") {
  AuditInput in = partner("read");
  in.entity_reference = "Patient/123";
  in.server_address.clear();
  Node event = make_audit_event(in);
  check_r4(event);
  CHECK(profile(event) == "");
  CHECK(agents(event) == Strings{"110152 requestor net2", "110153 - no-net"});

  in.server_address = "gateway-1";
  in.client_address = "[2001:db8::2]";
  event = make_audit_event(in);
  check_r4(event);
  CHECK(profile(event) == std::string(kBalp) + "Read");
  CHECK(agents(event) == Strings{"110152 requestor net2", "110153 - net1"});
}

TEST_CASE("audit: the R4 check is not vacuous: broken events are caught") {
  AuditInput in = partner("search-type");
  in.query = "GET /Patient?family=smith";
  Node event = make_audit_event(in);
  REQUIRE(r4_errors(event) == "");

  Node both = event;
  both.find("entity")->items()[0].set("name", Node::string("smith"));
  CHECK(r4_errors(both).find("sev-1") != std::string::npos);

  Node no_requestor = event;
  no_requestor.find("agent")->items()[0].erase("requestor");
  CHECK(r4_errors(no_requestor).find("AuditEvent.agent[0]") != std::string::npos);

  Node no_observer = event;
  no_observer.find("source")->erase("observer");
  CHECK(r4_errors(no_observer).find("AuditEvent.source") != std::string::npos);
}

}  // namespace
}  // namespace fhirgate::gateway
