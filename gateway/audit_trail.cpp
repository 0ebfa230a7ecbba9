#include "gateway/audit_trail.hpp"

#include <algorithm>

namespace fhirgate::gateway {
namespace {

using fhir::Node;

Node coding(const char* system, const char* code, const char* display) {
  Node c = Node::object();
  c.set("system", Node::string(system));
  c.set("code", Node::string(code));
  c.set("display", Node::string(display));
  return c;
}

}  // namespace

std::string without_version(const std::string& reference) {
  return reference.substr(0, reference.find("/_history"));
}

void record_audit(store::WriteTxn& txn, const AuditInput& in, const std::vector<std::string>& more_patients) {
  Node event = make_audit_event(in);
  store::AuditColumns columns;
  columns.agent = in.client_reference.empty() ? in.client_id : in.client_reference;
  columns.entity = without_version(in.entity_reference);
  columns.action = std::string(event.string_at("action"));
  columns.outcome = in.outcome;
  if (!in.patient_reference.empty()) columns.patients.push_back(in.patient_reference);
  for (const auto& p : more_patients) {
    if (std::find(columns.patients.begin(), columns.patients.end(), p) != columns.patients.end()) continue;
    columns.patients.push_back(p);
    // BALP's Patient* profiles allow one patient per event: an event naming several claims no profile.
    if (columns.patients.size() > 1) event.erase("meta");
    Node* entities = event.find("entity");
    if (!entities || !entities->is_array()) continue;
    Node what = Node::object();
    what.set("reference", Node::string(p));
    Node entity = Node::object();
    entity.set("what", std::move(what));
    entity.set("type", coding("http://terminology.hl7.org/CodeSystem/audit-entity-type", "1", "Person"));
    entity.set("role", coding("http://terminology.hl7.org/CodeSystem/object-role", "1", "Patient"));
    entities->push(std::move(entity));
  }
  txn.append_audit(std::move(event), columns);
}

}  // namespace fhirgate::gateway
