#include "gateway/audit/audit_event.hpp"

#include <array>
#include <cassert>
#include <memory>
#include <string_view>
#include <utility>

#include "fhir/base64.hpp"
#include "fhir/datetime.hpp"
#include "fhir/utf8.hpp"

namespace fhirgate::gateway {
namespace {

using fhir::Node;

constexpr const char* kDicom = "http://dicom.nema.org/resources/ontology/DCM";
constexpr const char* kActReason = "http://terminology.hl7.org/CodeSystem/v3-ActReason";
constexpr const char* kEntityType = "http://terminology.hl7.org/CodeSystem/audit-entity-type";
constexpr const char* kObjectRole = "http://terminology.hl7.org/CodeSystem/object-role";
constexpr const char* kBalpProfileBase =
    "https://profiles.ihe.net/ITI/BALP/StructureDefinition/IHE.BasicAudit.";

enum class Pattern : std::uint8_t { create, read, update, del, query, history, operation, other };

struct InteractionInfo {
  std::string_view code;
  const char* action;
  Pattern pattern;
};

constexpr std::array<InteractionInfo, 17> kInteractions{{
    {"create", "C", Pattern::create},
    {"read", "R", Pattern::read},
    {"vread", "R", Pattern::read},
    {"update", "U", Pattern::update},
    {"patch", "U", Pattern::update},
    {"delete", "D", Pattern::del},
    {"search", "E", Pattern::query},
    {"search-type", "E", Pattern::query},
    {"search-system", "E", Pattern::query},
    {"history", "R", Pattern::history},
    {"history-instance", "R", Pattern::history},
    {"history-type", "R", Pattern::history},
    {"history-system", "R", Pattern::history},
    {"operation", "E", Pattern::operation},
    {"capabilities", "E", Pattern::other},
    {"transaction", "E", Pattern::other},
    {"batch", "E", Pattern::other},
}};

const InteractionInfo* find_interaction(std::string_view code) {
  for (const InteractionInfo& info : kInteractions) {
    if (info.code == code) return &info;
  }
  return nullptr;
}

// The BALP profile name for a pattern, or null where BALP defines none.
const char* balp_name(Pattern pattern, bool with_patient) {
  switch (pattern) {
    case Pattern::create:
      return with_patient ? "PatientCreate" : "Create";
    case Pattern::read:
      return with_patient ? "PatientRead" : "Read";
    case Pattern::update:
      return with_patient ? "PatientUpdate" : "Update";
    case Pattern::del:
      return with_patient ? "PatientDelete" : "Delete";
    case Pattern::query:
      return with_patient ? "PatientQuery" : "Query";
    default:
      return nullptr;
  }
}

Node coding(std::string_view system, std::string_view code, std::string_view display = {}) {
  Node c = Node::object();
  if (!system.empty()) c.set("system", Node::string(std::string(system)));
  c.set("code", Node::string(std::string(code)));
  if (!display.empty()) c.set("display", Node::string(std::string(display)));
  return c;
}

Node concept_of(Node one_coding) {
  Node cc = Node::object();
  cc.set("coding", Node::array()).push(std::move(one_coding));
  return cc;
}

Node display_only(std::string_view display) {
  Node ref = Node::object();
  ref.set("display", Node::string(std::string(display)));
  return ref;
}

bool is_ipv4(std::string_view s) {
  int parts = 0;
  std::size_t digits = 0;
  for (char c : s) {
    if (c >= '0' && c <= '9') {
      if (++digits > 3) return false;
    } else if (c == '.' && digits > 0) {
      ++parts;
      digits = 0;
    } else {
      return false;
    }
  }
  return parts == 3 && digits > 0;
}

bool is_ipv6(std::string_view s) {
  if (s.size() >= 2 && s.front() == '[' && s.back() == ']') s = s.substr(1, s.size() - 2);
  if (s.find(':') == std::string_view::npos) return false;
  for (char c : s) {
    const bool hex = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
    if (!hex && c != ':' && c != '.') return false;
  }
  return true;
}

// R4 network-type: 1 machine name, 2 IP address, 5 URI.
const char* network_type(std::string_view address) {
  if (is_ipv4(address) || is_ipv6(address)) return "2";
  if (address.find("://") != std::string_view::npos) return "5";
  return "1";
}

struct AgentRoles {
  Node client_type;
  Node server_type;
};

AgentRoles agent_roles(Pattern pattern, bool hl7v2) {
  if (!hl7v2 && (pattern == Pattern::read || pattern == Pattern::history)) {
    return {coding(kDicom, "110152", "Destination Role ID"), coding(kDicom, "110153", "Source Role ID")};
  }
  if (!hl7v2 && pattern == Pattern::del) {
    return {coding(kDicom, "110150", "Application"),
            coding("http://terminology.hl7.org/CodeSystem/provenance-participant-type", "custodian",
                   "Custodian")};
  }
  return {coding(kDicom, "110153", "Source Role ID"), coding(kDicom, "110152", "Destination Role ID")};
}

Node agent(Node type, Node who, bool requestor, std::string_view address) {
  Node a = Node::object();
  a.set("type", concept_of(std::move(type)));
  a.set("who", std::move(who));
  a.set("requestor", Node::boolean(requestor));
  if (!address.empty()) {
    Node& network = a.set("network", Node::object());
    network.set("address", Node::string(std::string(address)));
    network.set("type", Node::string(network_type(address)));
  }
  return a;
}

Node client_who(const AuditInput& in) {
  if (in.client_id.empty() && in.client_reference.empty()) return display_only("unauthenticated");
  Node who = Node::object();
  if (!in.client_reference.empty()) who.set("reference", Node::string(in.client_reference));
  if (!in.client_id.empty()) who.set("identifier", Node::object()).set("value", Node::string(in.client_id));
  if (!in.client_display.empty()) who.set("display", Node::string(in.client_display));
  return who;
}

Node entity(Node what, std::string_view type_code, std::string_view type_display, std::string_view role_code,
            std::string_view role_display) {
  Node e = Node::object();
  if (!what.members().empty()) e.set("what", std::move(what));
  e.set("type", coding(kEntityType, type_code, type_display));
  e.set("role", coding(kObjectRole, role_code, role_display));
  return e;
}

Node reference_to(std::string_view reference) {
  Node what = Node::object();
  what.set("reference", Node::string(std::string(reference)));
  return what;
}

// The input with every text a client may have sent written with visible escapes where it holds what a FHIR
// string cannot (a path with %00, an MSH-10 with a control character): the event must stay storable and
// serializable as JSON and XML. Null when nothing needs it (the usual case, without copying).
std::unique_ptr<AuditInput> escaped(const AuditInput& in) {
  std::string AuditInput::*const quoted[] = {
      &AuditInput::operation,        &AuditInput::outcome_desc,       &AuditInput::client_id,
      &AuditInput::client_reference, &AuditInput::client_display,     &AuditInput::client_address,
      &AuditInput::server_address,   &AuditInput::entity_reference,   &AuditInput::patient_reference,
      &AuditInput::correlation_id,   &AuditInput::message_control_id, &AuditInput::purpose};
  std::unique_ptr<AuditInput> copy;
  for (const auto field : quoted) {
    if (!fhir::has_unrepresentable(in.*field)) continue;
    if (!copy) copy = std::make_unique<AuditInput>(in);
    (*copy).*field = fhir::with_visible_escapes(in.*field);
  }
  return copy;
}

}  // namespace

std::string_view to_code(AuditOutcome outcome) {
  switch (outcome) {
    case AuditOutcome::success:
      return "0";
    case AuditOutcome::minor_failure:
      return "4";
    case AuditOutcome::serious_failure:
      return "8";
    case AuditOutcome::major_failure:
      return "12";
  }
  return "8";
}

std::optional<AuditOutcome> parse_audit_outcome(std::string_view code) {
  for (const AuditOutcome o : {AuditOutcome::success, AuditOutcome::minor_failure,
                               AuditOutcome::serious_failure, AuditOutcome::major_failure})
    if (to_code(o) == code) return o;
  return std::nullopt;
}

fhir::Node make_audit_event(const AuditInput& input) {
  const std::unique_ptr<AuditInput> escaped_input = escaped(input);
  const AuditInput& in = escaped_input ? *escaped_input : input;
  // Messages and files (HL7 v2, watched feed folders) are recorded as Patient Record events.
  const bool hl7v2 = in.channel == "hl7v2" || in.channel == "file";
  assert(hl7v2 || in.channel == "rest");
  const bool message_only = in.interaction == "message";
  const InteractionInfo* info = message_only ? nullptr : find_interaction(in.interaction);
  assert(message_only || info != nullptr);
  const Pattern pattern = info != nullptr ? info->pattern : Pattern::other;
  const std::string_view gateway_name =
      in.gateway_name.empty() ? std::string_view("fhirgate") : std::string_view(in.gateway_name);
  const bool with_patient = in.patient_reference.starts_with("Patient/");
  assert(with_patient || in.patient_reference.empty());

  const bool has_data = pattern != Pattern::query && !in.entity_reference.empty();
  const bool has_query = (pattern == Pattern::query || pattern == Pattern::history) && !in.query.empty();
  const char* profile = hl7v2 ? nullptr : balp_name(pattern, with_patient);
  const bool claim = profile != nullptr && in.outcome == AuditOutcome::success &&
                     !in.client_address.empty() && !in.server_address.empty() &&
                     (pattern == Pattern::query ? has_query : has_data);

  Node event = Node::object();
  event.set("resourceType", Node::string("AuditEvent"));
  if (claim) {
    event.set("meta", Node::object())
        .set("profile", Node::array())
        .push(Node::string(std::string(kBalpProfileBase) + profile));
  }
  if (hl7v2) {
    event.set("type", coding(kDicom, "110110", "Patient Record"));
  } else {
    event.set("type",
              coding("http://terminology.hl7.org/CodeSystem/audit-event-type", "rest", "RESTful Operation"));
  }
  if (info != nullptr || !in.operation.empty()) {
    Node& subtype = event.set("subtype", Node::array());
    if (info != nullptr)
      subtype.push(coding("http://hl7.org/fhir/restful-interaction", info->code, info->code));
    if (!in.operation.empty()) subtype.push(coding(kOperationSystem, in.operation));
  }
  event.set("action", Node::string(info != nullptr ? info->action : "E"));
  event.set("recorded", Node::string(fhir::format_instant(in.recorded_ms)));
  event.set("outcome", Node::string(std::string(to_code(in.outcome))));
  if (!in.outcome_desc.empty()) event.set("outcomeDesc", Node::string(in.outcome_desc));

  if (!in.purpose.empty() || in.break_glass) {
    Node& purposes = event.set("purposeOfEvent", Node::array());
    if (!in.purpose.empty()) purposes.push(concept_of(coding(kActReason, in.purpose)));
    if (in.break_glass && in.purpose != "BTG")
      purposes.push(concept_of(coding(kActReason, "BTG", "break the glass")));
  }

  AgentRoles roles = agent_roles(pattern, hl7v2);
  Node& agents = event.set("agent", Node::array());
  agents.push(agent(std::move(roles.client_type), client_who(in), true, in.client_address));
  agents.push(agent(std::move(roles.server_type), display_only(gateway_name), false, in.server_address));

  Node& source = event.set("source", Node::object());
  source.set("observer", display_only(gateway_name));
  source.set("type", Node::array())
      .push(coding("http://terminology.hl7.org/CodeSystem/security-source-type", "4", "Application Server"));

  Node entities = Node::array();
  if (has_data)
    entities.push(entity(reference_to(in.entity_reference), "2", "System Object", "4", "Domain Resource"));
  if (with_patient) entities.push(entity(reference_to(in.patient_reference), "1", "Person", "1", "Patient"));
  if (has_query) {
    Node query = entity(Node::object(), "2", "System Object", "24", "Query");
    query.set("query", Node::string(fhir::base64_encode(in.query)));
    entities.push(std::move(query));
  }
  if (hl7v2 && !in.message_control_id.empty()) {
    Node what = Node::object();
    Node& identifier = what.set("identifier", Node::object());
    identifier.set("type", Node::object()).set("text", Node::string("HL7 v2 message control id (MSH-10)"));
    identifier.set("value", Node::string(in.message_control_id));
    entities.push(entity(std::move(what), "2", "System Object", "3", "Report"));
  }
  if (!in.correlation_id.empty()) {
    Node what = Node::object();
    what.set("identifier", Node::object()).set("value", Node::string(in.correlation_id));
    Node transaction = Node::object();
    transaction.set("what", std::move(what));
    transaction.set(
        "type", coding("https://profiles.ihe.net/ITI/BALP/CodeSystem/BasicAuditEntityType", "XrequestId"));
    entities.push(std::move(transaction));
  }
  if (!entities.items().empty()) event.set("entity", std::move(entities));
  return event;
}

}  // namespace fhirgate::gateway
