#include "gateway/rest/capability.hpp"

#include <set>
#include <string>

#include "fhir/datetime.hpp"

namespace fhirgate::gateway::rest {
namespace {

using fhir::Node;

Node code_list(std::initializer_list<const char*> codes) {
  Node array = Node::array();
  for (const char* c : codes) {
    Node item = Node::object();
    item.set("code", Node::string(c));
    array.push(std::move(item));
  }
  return array;
}

}  // namespace

bool is_append_only(std::string_view type) {
  return type == "AuditEvent";
}

fhir::Node capability_statement(const RestOptions& options, const fhir::SearchParamRegistry& registry,
                                std::int64_t now_ms) {
  Node cs = Node::object();
  cs.set("resourceType", Node::string("CapabilityStatement"));
  cs.set("status", Node::string("active"));
  cs.set("date", Node::string(fhir::format_instant(now_ms)));
  cs.set("publisher", Node::string("fhirgate"));
  cs.set("kind", Node::string("instance"));
  Node& software = cs.set("software", Node::object());
  software.set("name", Node::string("fhirgate"));
  software.set("version", Node::string(options.software_version));
  Node& implementation = cs.set("implementation", Node::object());
  implementation.set("description", Node::string("fhirgate FHIR R4 interoperability gateway"));
  if (!options.base_url.empty()) implementation.set("url", Node::string(options.base_url));
  cs.set("fhirVersion", Node::string("4.0.1"));
  Node& formats = cs.set("format", Node::array());
  formats.push(Node::string("application/fhir+json"));
  formats.push(Node::string("application/fhir+xml"));

  Node rest = Node::object();
  rest.set("mode", Node::string("server"));
  if (options.security) {
    Node& security = rest.set("security", Node::object());
    security.set(
        "description",
        Node::string("Every request except /metadata, /healthz and /readyz needs Authorization: Bearer "
                     "<token> (issued per partner by the partnership). The purpose of use is given in the " +
                     options.purpose_header +
                     " request header (a v3-ActReason code such as TREAT, or ETREAT for emergency "
                     "access); without it the partner's default purpose applies. Access to a patient's "
                     "data follows the patient's Consents; every access is recorded as an AuditEvent."));
  }
  Node& resources = rest.set("resource", Node::array());
  for (const auto& type : options.cached_types) {
    const bool append_only = is_append_only(type);
    Node r = Node::object();
    r.set("type", Node::string(type));
    r.set("profile", Node::string("http://hl7.org/fhir/StructureDefinition/" + type));
    r.set("interaction", append_only ? code_list({"read", "vread", "create", "search-type",
                                                  "history-instance", "history-type"})
                                     : code_list({"read", "vread", "update", "delete", "create",
                                                  "search-type", "history-instance", "history-type"}));
    r.set("versioning", Node::string("versioned-update"));
    r.set("readHistory", Node::boolean(true));
    r.set("updateCreate", Node::boolean(!append_only));
    r.set("conditionalCreate", Node::boolean(true));
    r.set("conditionalUpdate", Node::boolean(false));
    r.set("conditionalDelete", Node::string("not-supported"));
    Node& params = r.set("searchParam", Node::array());
    for (const auto* p : registry.for_type(type)) {
      // AuditEvents come from the audit trail, which is searched by these only.
      static const std::set<std::string> kAuditParams = {"patient", "agent",  "entity",
                                                         "date",    "action", "outcome"};
      if (type == "AuditEvent" && !kAuditParams.count(p->code)) continue;
      Node sp = Node::object();
      sp.set("name", Node::string(p->code));
      if (!p->url.empty()) sp.set("definition", Node::string(p->url));
      sp.set("type", Node::string(fhir::to_string(p->type)));
      if (!p->description.empty()) sp.set("documentation", Node::string(p->description));
      params.push(std::move(sp));
    }
    resources.push(std::move(r));
  }
  rest.set("interaction", code_list({"transaction", "batch"}));
  Node& operations = rest.set("operation", Node::array());
  for (const auto& [name, definition] :
       {std::pair{"validate", "http://hl7.org/fhir/OperationDefinition/Resource-validate"},
        std::pair{"process-message",
                  "http://hl7.org/fhir/OperationDefinition/MessageHeader-process-message"}}) {
    Node op = Node::object();
    op.set("name", Node::string(name));
    op.set("definition", Node::string(definition));
    operations.push(std::move(op));
  }
  cs.set("rest", Node::array()).push(std::move(rest));
  return cs;
}

}  // namespace fhirgate::gateway::rest
