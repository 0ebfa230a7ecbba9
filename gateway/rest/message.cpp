// POST /$process-message (R4 messaging.html, operation-messageheader-process-message): a message Bundle
// in, a response message out, synchronously.
//
// Design. The request must be a Bundle of type message with an id (the message id) whose first entry is
// a MessageHeader; otherwise 400. The Bundle is validated (on a worker, within the request's budget)
// against R4 and every resource of a type the gateway holds against that type's configured profiles. The
// answer is always a response message (HTTP 200): a MessageHeader whose response names the request's id
// with code ok, or fatal-error with an OperationOutcome entry listing every problem (located as
// Bundle.entry[i]...). Each message is kept in the inbound log (format fhir-message) in one commit with
// its outcome; a message re-sent by the same partner with the same source endpoint and id after it was
// accepted is answered with the first response, not processed again. An accepted message is routed on by
// its event and source partner (routing.hpp) in the same commit; its resources are not stored. Its
// AuditEvent names every patient the message is about.
#include <algorithm>

#include "fhir/datetime.hpp"
#include "fhir/json.hpp"
#include "fhir/operation_outcome.hpp"
#include "fhir/storable.hpp"
#include "gateway/audit/audit_trail.hpp"
#include "gateway/common/ids.hpp"
#include "gateway/rest/router.hpp"
#include "gateway/stages/identity.hpp"

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
  out.set("id", Node::string(new_resource_id()));
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

class ProcessMessage final : public Interaction {
 public:
  bool has_work(const RestJob&) const override { return true; }

  void work(RestJob& job) override {
    auto& ex = job.ex;
    if (ex.journal) {
      ex.journal->format = "fhir-message";
      ex.journal->type = "message";
    }
    if (ex.audit) {
      ex.audit->interaction = "operation";
      ex.audit->operation = "$process-message";
    }
    if (const std::string* async = param_value(job.query, "async"); async && *async == "true")
      return ex.fail(Error::make(ErrorCode::method_not_allowed,
                                 "only synchronous messaging is supported (async=false)", "async"));
    auto kind = classify_request_body(job.request.header("Content-Type"));
    if (!kind) return ex.fail(kind.error());
    if (*kind == BodyKind::form || job.request.body.empty())
      return ex.fail(Error::make(ErrorCode::unsupported_media_type,
                                 "$process-message takes a message Bundle in application/fhir+json or +xml"));
    auto parsed = fhir::parse_resource(job.services.model, job.request.body,
                                       *kind == BodyKind::fhir_xml ? fhir::Format::xml : fhir::Format::json);
    if (!parsed) return ex.fail(parsed.error());
    const Node& request = *parsed;
    const Node* entries = request.find("entry");
    const Node* header = entries && entries->is_array() && !entries->items().empty()
                             ? entries->items().front().find("resource")
                             : nullptr;
    if (request.string_at("resourceType") != "Bundle" || request.string_at("type") != "message" ||
        request.string_at("id").empty() || !header || header->string_at("resourceType") != "MessageHeader")
      return ex.fail(
          Error::make(ErrorCode::invalid_input,
                      "$process-message takes a Bundle of type message with an id whose first entry is "
                      "a MessageHeader",
                      "Bundle"));
    if (const PartnerConfig* who = ex.caller.partner;
        who && std::find(who->inbound.begin(), who->inbound.end(), "fhir-message") == who->inbound.end())
      return ex.fail(Error::make(ErrorCode::forbidden,
                                 "The sharing agreement does not let " + who->id + " send FHIR messages"));
    const Node* coding = header->find("eventCoding");
    const std::string event =
        coding ? std::string(coding->string_at("code")) : std::string(header->string_at("eventUri"));
    const Node* source = header->find("source");
    if (ex.journal) ex.journal->type = event;

    // Every problem, located in the Bundle.
    std::vector<Issue> problems;
    const fhir::ValidationOptions options = job.validation_options();
    auto whole = job.services.validator.validate(request, options);
    if (whole.budget_exceeded) {
      Error costly{ErrorCode::unprocessable, {}, "validation budget exceeded"};
      for (auto& issue : whole.issues)
        if (issue.code == "too-costly") costly.issues.push_back(std::move(issue));
      return ex.fail(std::move(costly));
    }
    for (auto& issue : whole.issues)
      if (issue.severity == "error" || issue.severity == "fatal") problems.push_back(std::move(issue));
    if (Status storable = fhir::check_storable(job.services.model, request); !storable)
      for (auto issue : storable.error().issues) problems.push_back(std::move(issue));
    for (std::size_t i = 0; i < entries->items().size(); ++i) {
      const Node* resource = entries->items()[i].find("resource");
      if (!resource) continue;
      const std::string type(resource->string_at("resourceType"));
      // A patient's sharing decision is recorded by registrars only, whatever the door.
      if (Status allowed =
              job.services.gate.may_record(ex.caller, nullptr, type == "Consent" ? resource : nullptr);
          !allowed) {
        Issue issue = allowed.error().issues.front();
        issue.code = "forbidden";
        issue.expression = "Bundle.entry[" + std::to_string(i) + "].resource";
        problems.push_back(std::move(issue));
      }
      if (!job.services.options.profiles.contains(type)) continue;
      if (Status valid = job.check_for_write(*resource, type); !valid) {
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
    answer_ = fhir::write_json(response_message(request, *header, problems, job.base_url, ex.received_ms));
    if (!problems.empty()) {
      if (ex.journal) {
        ex.journal->status = store::JournalStatus::rejected;
        const std::string where = problems.front().expression;
        ex.journal->error = "message " + event + " not accepted: " + std::to_string(problems.size()) +
                            " problem(s)" + (where.empty() ? "" : ", the first at " + where);
        ex.journal->detail = problems.front().diagnostics;
      }
      if (ex.audit) {
        ex.audit->outcome = AuditOutcome::minor_failure;
        ex.audit->outcome_desc =
            "message " + event + " not accepted: " + std::to_string(problems.size()) + " problem(s)";
      }
    }
    log_.channel = "http";
    log_.format = "fhir-message";
    log_.partner = ex.origin;
    log_.sender = source ? std::string(source->string_at("endpoint")) : std::string();
    log_.control_id = std::string(request.string_at("id"));
    log_.message_type = event;
    log_.status = problems.empty() ? "applied" : "failed";
    log_.detail = answer_;
    log_.body = job.request.body;
    // What routes see: the message, and the patients it is about (its AuditEvents name them all): by
    // reference, and a Patient in it also by its identifiers (the one it names in the record, if any). A
    // record found by identifier that the sender may not see is named only in an event of its own
    // (record_unseen), never in the sender's.
    pass_ = PassThrough{"Bundle", log_.control_id, event, "", log_.body};
    std::vector<std::string> about;
    const store::Visibility visible = job.visibility();
    for (const auto& entry : entries->items()) {
      const Node* resource = entry.find("resource");
      if (!resource) continue;
      if (std::string patient = Gate::patient_of(*resource); !patient.empty())
        about.push_back(std::move(patient));
      if (resource->string_at("resourceType") != "Patient") continue;
      const auto query =
          stages::any_identifier_query(job.services.registry, "Patient", stages::identifiers_of(*resource));
      if (!query) continue;
      auto found = job.services.store.search(*query);
      if (!found) return ex.fail(found.error());
      for (const auto& match : found->matches) {
        auto shown = visible ? visible(match) : Result<bool>(true);
        if (!shown) return ex.fail(shown.error());
        (*shown ? about : unseen_).push_back("Patient/" + match.id);
      }
    }
    for (const std::string& patient : about) {
      if (pass_.patient.empty()) pass_.patient = patient;
      if (!ex.audit) continue;
      if (ex.audit->patient_reference.empty())
        ex.audit->patient_reference = patient;
      else if (patient != ex.audit->patient_reference &&
               std::find(ex.seen_patients.begin(), ex.seen_patients.end(), patient) == ex.seen_patients.end())
        ex.seen_patients.push_back(patient);
    }
    // A delivery of the message is decided by its patient's consent, seen by the sender or not.
    if (pass_.patient.empty() && !unseen_.empty()) pass_.patient = unseen_.front();
    ex.mark("checked");
  }

  store::WritePlan plan(RestJob& job) override {
    return [this, &job](store::WriteTxn& txn) -> Status {
      if (log_.status == "applied") {
        if (auto first = txn.applied_message(log_.partner, log_.sender, log_.control_id)) {
          answer_ = std::move(first->detail);  // a re-send: the first answer again
          return Ok{};
        }
      }
      txn.log_inbound(log_);
      record_unseen(txn, job);
      if (log_.status == "applied" && job.services.write.router)
        job.services.write.router->route(txn, log_.partner, pass_);
      return Ok{};
    };
  }

  HttpResponse respond(RestJob& job) override { return job.json_response(200, std::move(answer_)); }

 private:
  // The patients the message named by identifier whose records the sender may not see: audited against
  // them for the privacy officer, with the gateway's identity matching as the agent, so that the sender's
  // own trail (the events it is the agent of) never names them.
  void record_unseen(store::WriteTxn& txn, RestJob& job) {
    if (unseen_.empty() || !job.ex.audit) return;
    AuditInput in = *job.ex.audit;
    in.client_id = "fhirgate";
    in.client_reference.clear();
    in.client_display = "fhirgate identity matching";
    in.outcome_desc = "a message from " + job.caller_id() +
                      " named this patient by an identifier; the sender "
                      "was not shown the match";
    in.patient_reference = unseen_.front();
    in.recorded_ms = txn.now_ms();
    record_audit(txn, in, unseen_);
  }

  std::string answer_;
  store::InboundMessage log_;
  PassThrough pass_;
  std::vector<std::string> unseen_;
};

}  // namespace

std::unique_ptr<Interaction> make_process_message() {
  return std::make_unique<ProcessMessage>();
}

}  // namespace fhirgate::gateway::rest
