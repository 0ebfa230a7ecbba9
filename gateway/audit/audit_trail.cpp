#include "gateway/audit/audit_trail.hpp"

#include <algorithm>

#include "fhir/datetime.hpp"
#include "fhir/utf8.hpp"

namespace fhirgate::gateway {
namespace {

using fhir::Node;

// As make_audit_event sets AuditEvent.action.
std::string action_of(const std::string& interaction) {
  if (interaction == "create") return "C";
  if (interaction == "update" || interaction == "patch") return "U";
  if (interaction == "delete") return "D";
  if (interaction == "read" || interaction == "vread" || interaction.rfind("history", 0) == 0) return "R";
  return "E";  // searches, operations and messages
}

Node coding(const char* system, const char* code, const char* display) {
  Node c = Node::object();
  c.set("system", Node::string(system));
  c.set("code", Node::string(code));
  c.set("display", Node::string(display));
  return c;
}

// The compact record: AuditInput's fields by name, empty ones left out.
struct Field {
  const char* name;
  std::string AuditInput::*member;
};
constexpr Field kFields[] = {
    {"interaction", &AuditInput::interaction},
    {"operation", &AuditInput::operation},
    {"outcomeDesc", &AuditInput::outcome_desc},
    {"clientId", &AuditInput::client_id},
    {"clientReference", &AuditInput::client_reference},
    {"clientDisplay", &AuditInput::client_display},
    {"clientAddress", &AuditInput::client_address},
    {"serverAddress", &AuditInput::server_address},
    {"gatewayName", &AuditInput::gateway_name},
    {"purpose", &AuditInput::purpose},
    {"entity", &AuditInput::entity_reference},
    {"patient", &AuditInput::patient_reference},
    {"query", &AuditInput::query},
    {"correlationId", &AuditInput::correlation_id},
    {"channel", &AuditInput::channel},
    {"controlId", &AuditInput::message_control_id},
};

struct Parsed {
  AuditInput input;
  std::vector<std::string> more_patients;
};

std::optional<Parsed> parse_record(const store::AuditRecord& row) {
  auto doc = fhir::parse_json(row.body);
  if (!doc || !doc->is_object()) return std::nullopt;
  Parsed p;
  p.input.gateway_name.clear();
  p.input.channel.clear();
  for (const auto& f : kFields) p.input.*f.member = std::string(doc->string_at(f.name));
  p.input.outcome = parse_audit_outcome(doc->string_at("outcome")).value_or(AuditOutcome::serious_failure);
  const Node* glass = doc->find("breakGlass");
  p.input.break_glass = glass && glass->text() == "true";
  const Node* held = doc->find("held");
  p.input.held = held && held->text() == "true";
  p.input.recorded_ms = row.recorded_ms;
  if (const Node* more = doc->find("morePatients"); more && more->is_array())
    for (const auto& m : more->items()) p.more_patients.push_back(m.text());
  return p;
}

store::AuditColumns columns_of(const AuditInput& in, const std::vector<std::string>& more_patients) {
  store::AuditColumns columns;
  columns.agent = in.client_reference.empty() ? in.client_id : in.client_reference;
  columns.entity = without_version(in.entity_reference);
  columns.action = action_of(in.interaction);
  columns.outcome = std::string(to_code(in.outcome));
  if (!in.patient_reference.empty()) columns.patients.push_back(in.patient_reference);
  for (const auto& p : more_patients) columns.patients.push_back(p);
  std::sort(columns.patients.begin(), columns.patients.end());
  columns.patients.erase(std::unique(columns.patients.begin(), columns.patients.end()),
                         columns.patients.end());
  return columns;
}

// Columns of an AuditEvent as posted: the requesting agent, the entities, action and outcome.
store::AuditColumns columns_of_event(const Node& event) {
  store::AuditColumns columns;
  if (const Node* agents = event.find("agent"); agents && agents->is_array()) {
    for (const auto& a : agents->items()) {
      const Node* requestor = a.find("requestor");
      const Node* who = a.find("who");
      if (requestor && requestor->text() == "true" && who) {
        columns.agent = std::string(who->string_at("reference"));
        break;
      }
    }
  }
  if (const Node* entities = event.find("entity"); entities && entities->is_array()) {
    for (const auto& e : entities->items()) {
      const Node* what = e.find("what");
      if (!what) continue;
      const std::string reference = without_version(std::string(what->string_at("reference")));
      if (reference.rfind("Patient/", 0) == 0) columns.patients.push_back(reference);
      if (columns.entity.empty() && !reference.empty()) columns.entity = reference;
    }
  }
  std::sort(columns.patients.begin(), columns.patients.end());
  columns.patients.erase(std::unique(columns.patients.begin(), columns.patients.end()),
                         columns.patients.end());
  columns.action = std::string(event.string_at("action"));
  columns.outcome = std::string(event.string_at("outcome"));
  return columns;
}

// Gives the event its id and meta as served, right after resourceType.
std::string stamped(Node event, const store::AuditRecord& row) {
  Node meta = Node::object();
  meta.set("versionId", Node::string("1"));
  meta.set("lastUpdated", Node::string(fhir::format_instant(row.recorded_ms)));
  if (const Node* old = event.find("meta"); old && old->is_object())
    for (const auto& [k, v] : old->members())
      if (k != "versionId" && k != "lastUpdated") meta.set(k, v);
  event.erase("id");
  event.erase("meta");
  auto& members = event.members();
  std::vector<Node::Member> ordered;
  auto rest = members.begin();
  if (rest != members.end() && rest->first == "resourceType") ordered.push_back(std::move(*rest++));
  ordered.emplace_back("id", Node::string(std::to_string(row.seq)));
  ordered.emplace_back("meta", std::move(meta));
  for (; rest != members.end(); ++rest) ordered.push_back(std::move(*rest));
  members = std::move(ordered);
  return fhir::write_json(event);
}

}  // namespace

std::string without_version(const std::string& reference) {
  return reference.substr(0, reference.find("/_history"));
}

store::AuditRecord audit_record(const AuditInput& given, const std::vector<std::string>& more_patients) {
  // Every text as the served event holds it: the columns below and the body then say the same.
  AuditInput in = given;
  for (const auto& f : kFields)
    if (fhir::has_unrepresentable(in.*f.member)) in.*f.member = fhir::with_visible_escapes(in.*f.member);
  Node record = Node::object();
  for (const auto& f : kFields) {
    if (!(in.*f.member).empty()) record.set(f.name, Node::string(in.*f.member));
    if (std::string_view(f.name) == "interaction")
      record.set("outcome", Node::string(std::string(to_code(in.outcome))));
  }
  if (in.break_glass) record.set("breakGlass", Node::boolean(true));
  if (in.held) record.set("held", Node::boolean(true));
  std::vector<std::string> more;
  for (std::string p : more_patients) {
    if (fhir::has_unrepresentable(p)) p = fhir::with_visible_escapes(p);
    if (p != in.patient_reference && std::find(more.begin(), more.end(), p) == more.end()) more.push_back(p);
  }
  if (!more.empty()) {
    Node& list = record.set("morePatients", Node::array());
    for (const auto& p : more) list.push(Node::string(p));
  }
  store::AuditRecord row;
  row.recorded_ms = in.recorded_ms;
  row.format = "record";
  row.columns = columns_of(in, more);
  row.body = fhir::write_json(record);
  return row;
}

void record_audit(store::WriteTxn& txn, const AuditInput& in, const std::vector<std::string>& more_patients) {
  store::AuditRecord row = audit_record(in, more_patients);
  if (row.recorded_ms == 0) row.recorded_ms = txn.now_ms();
  txn.append_audit(std::move(row));
}

store::AuditRecord posted_audit_record(Node event) {
  store::AuditRecord row;
  row.format = "resource";
  row.columns = columns_of_event(event);
  if (const auto recorded = fhir::parse_time_range(event.string_at("recorded")))
    row.recorded_ms = recorded->low;
  if (Node* meta = event.find("meta"); meta && meta->is_object()) {
    meta->erase("versionId");
    meta->erase("lastUpdated");
    if (meta->members().empty()) event.erase("meta");
  }
  event.erase("id");
  row.body = fhir::write_json(event);
  return row;
}

std::optional<std::string> render_audit_event(const store::AuditRecord& row, bool as_agent) {
  if (row.format == "resource") {
    auto event = fhir::parse_json(row.body);
    if (!event) return std::nullopt;
    return stamped(std::move(*event), row);
  }
  auto parsed = parse_record(row);
  if (!parsed) return std::nullopt;
  if (as_agent && (parsed->input.outcome != AuditOutcome::success || parsed->input.held)) {
    // Neither the data, nor the patient, nor why (a "not shared" against a "not known" would tell that
    // the record exists).
    parsed->input.entity_reference.clear();
    parsed->input.patient_reference.clear();
    parsed->more_patients.clear();
    parsed->input.outcome_desc = parsed->input.held ? "accepted for review" : "refused";
  }
  Node event = make_audit_event(parsed->input);
  for (const auto& p : parsed->more_patients) {
    Node* entities = event.find("entity");
    if (!entities || !entities->is_array()) break;
    Node what = Node::object();
    what.set("reference", Node::string(p));
    Node entity = Node::object();
    entity.set("what", std::move(what));
    entity.set("type", coding("http://terminology.hl7.org/CodeSystem/audit-entity-type", "1", "Person"));
    entity.set("role", coding("http://terminology.hl7.org/CodeSystem/object-role", "1", "Patient"));
    entities->push(std::move(entity));
    // BALP's Patient* profiles allow one patient per event: an event naming several claims no profile.
    if (!parsed->input.patient_reference.empty() || &p != &parsed->more_patients.front()) event.erase("meta");
  }
  return stamped(std::move(event), row);
}

std::optional<store::AuditColumns> derive_audit_columns(const store::AuditRecord& row) {
  if (row.format == "resource") {
    auto event = fhir::parse_json(row.body);
    if (!event) return std::nullopt;
    return columns_of_event(*event);
  }
  auto parsed = parse_record(row);
  if (!parsed) return std::nullopt;
  return columns_of(parsed->input, parsed->more_patients);
}

}  // namespace fhirgate::gateway
