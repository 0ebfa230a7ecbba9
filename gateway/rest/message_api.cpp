// POST /$process-message (R4 messaging.html, operation-messageheader-process-message): a message Bundle
// in, a response message out, synchronously.
//
// Design. The request must be a Bundle of type message with an id (the message id) whose first entry is
// a MessageHeader; otherwise 400. The Bundle is validated against R4 and every resource of a type the
// gateway holds against that type's configured profiles. The answer is always a response message
// (HTTP 200): a MessageHeader whose response names the request's id with code ok, or fatal-error with an
// OperationOutcome entry listing every problem (located as Bundle.entry[i]...). Each message is kept in
// the inbound log (format fhir-message) in one commit with its outcome; a message re-sent by the same
// partner with the same source endpoint and id after it was accepted is answered with the first
// response, not processed again. An accepted message is routed on by its event and source partner
// (routing.hpp) in the same commit; its resources are not stored.
#include <algorithm>
#include <string>
#include <vector>

#include "fhir/datetime.hpp"
#include "fhir/json.hpp"
#include "fhir/operation_outcome.hpp"
#include "gateway/common/ids.hpp"
#include "gateway/rest/exchange.hpp"
#include "gateway/security/security.hpp"

namespace fhirgate::gateway::rest {
namespace {

using fhir::Node;

Node reference_to(const std::string& reference) {
  Node r = Node::object();
  r.set("reference", Node::string(reference));
  return r;
}

// The response message for `request`; `problems` empty means ok.
Node response_message(const Node& request, const Node& header, const std::vector<Issue>& problems,
                      const std::string& base_url, std::int64_t now) {
  Node out = Node::object();
  out.set("resourceType", Node::string("Bundle"));
  const std::string id = new_resource_id();
  out.set("id", Node::string(id));
  out.set("type", Node::string("message"));
  out.set("timestamp", Node::string(fhir::format_instant(now)));
  Node& entries = out.set("entry", Node::array());

  const std::string header_id = new_resource_id();
  const std::string outcome_id = new_resource_id();
  Node reply = Node::object();
  reply.set("resourceType", Node::string("MessageHeader"));
  reply.set("id", Node::string(header_id));
  if (const Node* coding = header.find("eventCoding")) reply.set("eventCoding", *coding);
  if (const Node* uri = header.find("eventUri")) reply.set("eventUri", *uri);
  if (const auto endpoint = header.find("source") ? header.find("source")->string_at("endpoint") : "";
      !endpoint.empty()) {
    Node destination = Node::object();
    destination.set("endpoint", Node::string(std::string(endpoint)));
    reply.set("destination", Node::array()).push(std::move(destination));
  }
  Node& source = reply.set("source", Node::object());
  source.set("name", Node::string("fhirgate"));
  source.set("endpoint", Node::string(base_url + "/$process-message"));
  Node& response = reply.set("response", Node::object());
  response.set("identifier", Node::string(std::string(request.string_at("id"))));
  response.set("code", Node::string(problems.empty() ? "ok" : "fatal-error"));
  if (!problems.empty()) response.set("details", reference_to("OperationOutcome/" + outcome_id));

  Node first = Node::object();
  first.set("fullUrl", Node::string(base_url + "/MessageHeader/" + header_id));
  first.set("resource", std::move(reply));
  entries.push(std::move(first));
  if (!problems.empty()) {
    Error e{ErrorCode::unprocessable, problems, ""};
    Node outcome = fhir::operation_outcome(e);
    Node with_id = Node::object();
    with_id.set("resourceType", Node::string("OperationOutcome"));
    with_id.set("id", Node::string(outcome_id));
    for (auto& [key, value] : outcome.members())
      if (key != "resourceType") with_id.set(key, std::move(value));
    Node second = Node::object();
    second.set("fullUrl", Node::string(base_url + "/OperationOutcome/" + outcome_id));
    second.set("resource", std::move(with_id));
    entries.push(std::move(second));
  }
  return out;
}

}  // namespace

Reply Api::process_message(Exchange& ex) const {
  Reply reply;
  ex.journal_format = "fhir-message";
  ex.journal_type = "message";
  if (const std::string* async = param_value(ex.query, "async"); async && *async == "true") {
    reply.response = fail(ex, Error::make(ErrorCode::method_not_allowed,
                                          "only synchronous messaging is supported (async=false)", "async"));
    return reply;
  }
  auto parsed = parse_body(ex, "Bundle");
  if (!parsed) {
    reply.response = fail(ex, parsed.error());
    return reply;
  }
  const Node& request = *parsed;
  const Node* entries = request.find("entry");
  const Node* header = entries && entries->is_array() && !entries->items().empty()
                           ? entries->items().front().find("resource")
                           : nullptr;
  if (request.string_at("type") != "message" || request.string_at("id").empty() || !header ||
      header->string_at("resourceType") != "MessageHeader") {
    reply.response = fail(ex, Error::make(ErrorCode::invalid_input,
                                          "$process-message takes a Bundle of type message with an id whose "
                                          "first entry is a MessageHeader",
                                          "Bundle"));
    return reply;
  }
  if (ex.who &&
      std::find(ex.who->inbound.begin(), ex.who->inbound.end(), "fhir-message") == ex.who->inbound.end()) {
    reply.response = fail(ex, Error::make(ErrorCode::forbidden, "The sharing agreement does not let " +
                                                                    ex.who->id + " send FHIR messages"));
    return reply;
  }
  const Node* coding = header->find("eventCoding");
  const std::string event =
      coding ? std::string(coding->string_at("code")) : std::string(header->string_at("eventUri"));
  const Node* source = header->find("source");
  ex.journal_type = event;
  if (ex.audit) {
    ex.audit->interaction = "operation";
    ex.audit->operation = "$process-message";
  }

  // Every problem, located in the Bundle.
  std::vector<Issue> problems;
  for (auto& issue : validator_.validate(request).issues) {
    if (issue.severity == "error" || issue.severity == "fatal") problems.push_back(std::move(issue));
  }
  for (std::size_t i = 0; i < entries->items().size(); ++i) {
    const Node* resource = entries->items()[i].find("resource");
    if (!resource) continue;
    const std::string type(resource->string_at("resourceType"));
    if (!options_.profiles.contains(type)) continue;
    if (Status valid = check_for_write(*resource, type); !valid) {
      for (auto issue : valid.error().issues) {
        // Base R4 problems were found above with the whole Bundle; keep the profiles' own.
        const std::string at = "Bundle.entry[" + std::to_string(i) + "].resource";
        const auto dot = issue.expression.find('.');
        issue.expression = at + (dot == std::string::npos ? std::string() : issue.expression.substr(dot));
        const bool known = std::any_of(problems.begin(), problems.end(), [&](const Issue& p) {
          return p.expression == issue.expression && p.diagnostics == issue.diagnostics;
        });
        if (!known) problems.push_back(std::move(issue));
      }
    }
  }
  const std::string response =
      fhir::write_json(response_message(request, *header, problems, ex.base_url, ex.now));
  if (!problems.empty())
    ex.journal_rejected =
        "message " + event + " not accepted: " + problems.front().diagnostics +
        (problems.front().expression.empty() ? "" : " (" + problems.front().expression + ")");
  if (ex.audit && !problems.empty()) {
    ex.audit->outcome = "4";
    ex.audit->outcome_desc =
        "message " + event + " not accepted: " + std::to_string(problems.size()) + " problem(s)";
  }

  store::InboundMessage log;
  log.channel = "http";
  log.format = "fhir-message";
  log.partner = ex.who ? ex.who->id : std::string();
  log.sender = source ? std::string(source->string_at("endpoint")) : std::string();
  log.control_id = std::string(request.string_at("id"));
  log.message_type = event;
  log.status = problems.empty() ? "applied" : "failed";
  log.detail = response;
  log.body = ex.request.body;
  // What routes see: the message, and the patient it is about (the first entry that names one).
  store::PassThrough message{"Bundle", log.control_id, event, "", log.body};
  for (const auto& entry : entries->items()) {
    const Node* resource = entry.find("resource");
    if (!resource || !message.patient.empty()) continue;
    if (auto patient = Security::patient_of(*resource); !patient.ends_with("/")) message.patient = patient;
  }
  auto answer = std::make_shared<std::string>(response);
  reply.plan = [log = std::move(log), message = std::move(message), answer](store::WriteTxn& txn) -> Status {
    if (log.status == "applied") {
      if (auto first = txn.applied_detail(log.partner, log.sender, log.control_id)) {
        *answer = std::move(*first);  // a re-send: the first answer again
        return Ok{};
      }
    }
    txn.log_inbound(log);
    if (log.status == "applied") {
      if (txn.origin().empty()) txn.set_origin(log.partner);
      txn.pass_through(message);
    }
    return Ok{};
  };
  reply.after_commit = [this, answer, ex = Exchange(ex)](const Status& committed) {
    if (!committed) return fail(ex, committed.error());
    return json_response(ex, 200, *answer);
  };
  return reply;
}

}  // namespace fhirgate::gateway::rest
