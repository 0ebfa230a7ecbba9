#pragma once
// The AuditEvent builder: what the finish stage records for every REST interaction and every inbound
// HL7 v2 message, successes and failures alike. Pure: no clock, no ids, no I/O; thread-safe.
//
// Design note. The events follow the IHE Basic Audit Log Patterns (BALP 1.1.x,
// https://profiles.ihe.net/ITI/BALP/), the IHE content profile for "who did what to which patient's data
// over FHIR REST". Where BALP has a pattern we use it; where it has none we keep its shape so that one
// query over the audit trail works for every event.
//
//   interaction                        action  BALP profile (Patient* variant when a patient is known)
//   create                             C       IHE.BasicAudit.Create / PatientCreate
//   read, vread                        R       IHE.BasicAudit.Read   / PatientRead
//   update (patch)                     U       IHE.BasicAudit.Update / PatientUpdate
//   delete                             D       IHE.BasicAudit.Delete / PatientDelete
//   search-type (search, -system)      E       IHE.BasicAudit.Query  / PatientQuery
//   history-instance, history-type     R       none: BALP has no history pattern; shaped like Read
//   operation ($validate, $ingest)     E       none: shaped like IHE SVCM's BALP-derived Operation
//   channel hl7v2 (create/update/...)  C/U/E   none: BALP is REST only; see below
// Canonicals are https://profiles.ihe.net/ITI/BALP/StructureDefinition/IHE.BasicAudit.<name>.
//
// meta.profile is claimed only when the event meets the profile, because a wrong claim is worse than
// none: BALP fixes outcome to 0 (a failure "may follow this pattern" but must not claim it), requires
// agent.network on both client and server, a data entity (what) for C/R/U/D and a query entity for
// Query. Failed and denied events therefore carry the same shape without meta. An unknown address is
// left out (agent.network is optional in R4), never made up.
//
// Fixed parts:
// - type (REST): audit-event-type#rest; subtype: restful-interaction#<interaction>. An operation gets
//   a second subtype coding in kOperationSystem naming it ("$validate"), since restful-interaction has
//   no codes for individual operations; so does an HL7 v2 message posted to $ingest.
// - agents, as BALP assigns the DICOM roles (data flow, not who initiated): for create, update, search
//   and operations the client is the Source Role ID (DCM 110153) and the gateway the Destination Role ID
//   (110152); for read, vread and history the other way round (the client receives the data); for
//   delete the client is DCM 110150 "Application" and the gateway provenance-participant-type#custodian.
//   The client agent is the requestor: who = the partner (reference, identifier = client_id, display),
//   or who.display "unauthenticated" when there is no credential. Network type is derived from the
//   address text: 2 (IP address) for IPv4/IPv6, 5 (URI) when it contains "://", 1 (machine name)
//   otherwise. There is no human "user" agent: partners are systems.
// - source: observer.display = gateway_name, type security-source-type#4 "Application Server".
// - purposeOfEvent: one CodeableConcept per reason, v3-ActReason. A break-glass access adds
//   v3-ActReason#BTG "break the glass" (a PurposeOfUse code under ETREAT) beside the stated purpose.
// - entities: the data touched (type audit-entity-type#2, role object-role#4 "Domain Resource",
//   what.reference, version-specific where known); the patient (type #1 "Person", role #1 "Patient");
//   for searches and type history the query (type #2, role #24 "Query", query = base64 of the raw
//   request exactly as received, per BALP, so malformed or hostile input is kept verbatim; a POST
//   _search's form body follows the URL's parameters, so it reads as the same search by GET); the
//   correlation id as BALP's transaction entity (BasicAuditEntityType#XrequestId); for HL7 v2 the
//   message (type #2, role #3 "Report", what.identifier.value = MSH-10). A search records no data
//   entity (BALP's Query allows only the query there). No entity ever has both name and query (sev-1).
//
// HL7 v2 (channel "hl7v2"): BALP covers REST only, so such events claim no profile. They follow IHE's
// audit of the HL7 v2 patient identity feed (ITI-8): type DCM 110110 "Patient Record" (in the R4
// audit-event-type value set), the sender as Source Role ID and the gateway as Destination Role ID,
// the patient entity; subtype restful-interaction create/update says what the message did to the
// store (so one subtype query finds every create whatever the channel). interaction "message" is a
// message that wrote nothing (rejected, failed, re-sent): no restful-interaction subtype, action E.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "fhir/json.hpp"

namespace fhirgate::gateway {

// AuditEvent.outcome (R4 audit-event-outcome): the one vocabulary of how an exchange ended, for the
// audit trail.
enum class AuditOutcome : std::uint8_t {
  success,          // 0
  minor_failure,    // 4: the client's error, a refusal, a write held for review
  serious_failure,  // 8: ours or the store's
  major_failure,    // 12
};
// "0", "4", "8", "12"; and back (nullopt for anything else).
std::string_view to_code(AuditOutcome outcome);
std::optional<AuditOutcome> parse_audit_outcome(std::string_view code);

// Code system of the second subtype coding that names an operation, e.g. code "$validate".
inline constexpr const char* kOperationSystem = "urn:fhirgate:operation";

struct AuditInput {
  // FHIR restful-interaction code: read, vread, history-instance, history-type, search-type, create,
  // update, delete, operation; for HL7 v2 messages create/update for what the message did, or "message"
  // when it wrote nothing. Anything else is a programming error (asserted).
  std::string interaction;
  std::string operation;  // the operation invoked, "$validate", "$ingest"; empty = none
  std::int64_t recorded_ms = 0;
  AuditOutcome outcome = AuditOutcome::success;
  std::string outcome_desc;      // text for failures/denials (no patient data), empty on success
  std::string client_id;         // the requesting partner/role id (empty when unauthenticated)
  std::string client_reference;  // e.g. "Organization/acute-trust" (empty when none)
  std::string client_display;    // partner name
  std::string client_address;    // network address of the client (IP), may be empty
  std::string server_address;    // the gateway's address (IP, host name or base URL), may be empty
  std::string gateway_name = "fhirgate";
  std::string purpose;            // v3-ActReason code, e.g. TREAT; empty = none
  bool break_glass = false;       // permitted only by break-glass (ETREAT despite a deny)
  bool held = false;              // a write held for a registrar (outcome minor_failure): not applied
  std::string entity_reference;   // the data touched, e.g. "Patient/123/_history/2"; unused for searches
  std::string patient_reference;  // "Patient/123" when a patient is identifiable; empty otherwise (asserted)
  // Searches and type history: the raw request as received, e.g. "GET /Patient?family=smith" (BALP's
  // examples keep method, URL and even headers); for a POST _search its form body after the URL's
  // parameters, "POST /Patient/_search?family=smith&birthdate=1970". Stored base64 in entity.query.
  std::string query;
  std::string correlation_id;      // the exchange's correlation id (X-Request-Id); empty = none
  std::string channel = "rest";    // rest, hl7v2 (MLLP or POST /$ingest) or file (feed folders)
  std::string message_control_id;  // HL7 v2 MSH-10 when channel == "hl7v2"
};

// The AuditEvent as an R4 JSON tree, members in element order, without id or meta.versionId (the store
// assigns them). Never fails; see the design note for what is claimed when.
fhir::Node make_audit_event(const AuditInput& in);

}  // namespace fhirgate::gateway
