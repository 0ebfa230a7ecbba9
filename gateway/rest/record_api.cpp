// What every exchange leaves behind (Api::recorded): its AuditEvent (security on) and, for a request
// that carries data, its message journal entry (docs/operators.md), both in the same commit as the
// exchange's write plan, so neither can exist without the other.
//
// Design. A reply with a write plan gets a wrapping plan that sets the plan's origin partner and
// correlation id, runs the plan in a nested savepoint (so a failed write still leaves its records),
// then appends the AuditEvent and the journal entry with the outcome: stored (routed when it caused
// deliveries), rejected (4xx) or failed (5xx), the versions written and the stages' timings. A reply
// without a plan (a read, or a request refused before any write) gets a plan that only appends them;
// with an AuditEvent to record, nothing leaves until it is committed (503 otherwise).
#include <algorithm>
#include <string>

#include "fhir/json.hpp"
#include "gateway/audit/audit_trail.hpp"
#include "gateway/rest/exchange.hpp"

namespace fhirgate::gateway::rest {
namespace {

using fhir::Node;

std::string outcome_of_status(int status) {
  return status < 400 ? "0" : status < 500 ? "4" : "8";
}

std::string first_diagnostics(const Error& e) {
  return e.issues.empty() ? std::string() : e.issues.front().diagnostics;
}

// The first issue's text of an OperationOutcome response; "HTTP <status>" when there is none to read.
std::string response_problem(const HttpResponse& r) {
  if (auto parsed = fhir::parse_json(r.body);
      parsed && parsed->string_at("resourceType") == "OperationOutcome")
    if (const Node* issues = parsed->find("issue"); issues && issues->is_array() && !issues->items().empty())
      if (auto text = issues->items().front().string_at("diagnostics"); !text.empty())
        return std::string(text);
  return "HTTP " + std::to_string(r.status);
}

// The journal entry of a request that carries data into the gateway, or null: writes, Bundles and FHIR
// messages; not reads, searches ($validate, POST _search), operators' requests, or what journals itself.
std::shared_ptr<store::JournalEntry> journal_entry(const Api::Exchange& ex) {
  const std::string& method = ex.request.method;
  if (!ex.journaled || method == "GET" || method == "HEAD" || ex.path.starts_with("/_ops") ||
      ex.path.find("$validate") != std::string::npos || ex.path.ends_with("/_search"))
    return nullptr;
  auto e = std::make_shared<store::JournalEntry>();
  e->correlation_id = ex.correlation_id;
  e->received_ms = ex.now;
  e->partner = ex.who ? ex.who->id : std::string();
  e->direction = "in";
  e->transport = "http";
  e->format = ex.journal_format.empty() ? "fhir-rest" : ex.journal_format;
  if (!ex.journal_type.empty()) {
    e->type = ex.journal_type;
  } else {
    const std::string interaction = method == "POST"     ? "create"
                                    : method == "PUT"    ? "update"
                                    : method == "DELETE" ? "delete"
                                                         : method;
    e->type = interaction + " " + (ex.path.size() > 1 ? ex.path.substr(1) : ex.path);
  }
  e->size = static_cast<std::int64_t>(ex.request.body.size());
  // Kept for operators, but never what an unauthenticated caller sent.
  e->has_payload = ex.who || ex.request.header("Authorization").empty();
  if (e->has_payload) e->payload = ex.request.body;
  if (!ex.journal_rejected.empty()) {
    e->status = "rejected";
    e->error = ex.journal_rejected;
  }
  return e;
}

std::string resources_json(const std::vector<std::string>& written) {
  Node list = Node::array();
  for (std::size_t i = 0; i < written.size() && i < 100; ++i) list.push(Node::string(written[i]));
  return fhir::write_json(list);
}

}  // namespace

Reply Api::recorded(Exchange& ex, Reply reply) const {
  auto journal = journal_entry(ex);
  auto input = ex.audit;
  if (!input && !journal) return reply;
  const double checked_ms = elapsed_ms(ex.started);
  if (!reply.plan) {
    if (reply.background) return reply;  // journals and audits itself (feeds)
    std::optional<store::AuditRecord> row;
    if (input) {
      input->outcome = outcome_of_status(reply.response.status);
      if (input->outcome != "0" && input->outcome_desc.empty())
        input->outcome_desc = "HTTP " + std::to_string(reply.response.status);
      row = audit_record(*input, ex.seen_patients);  // built here, on the io thread
    }
    if (journal) {
      const int status = reply.response.status;
      if (status >= 400) {
        journal->status = status < 500 ? "rejected" : "failed";
        journal->error = response_problem(reply.response);
      } else if (journal->status.empty()) {
        journal->status = "stored";
      }
      journal->stages = store::stages_json({{"received", 0.0}, {"checked", checked_ms}});
    }
    reply.plan = [row = std::move(row), journal](store::WriteTxn& txn) mutable -> Status {
      if (row) {
        if (row->recorded_ms == 0) row->recorded_ms = txn.now_ms();
        txn.append_audit(std::move(*row));
      }
      if (journal) txn.append_journal(*journal);
      return Ok{};
    };
    const bool must_audit = input != nullptr;
    reply.after_commit = [this, must_audit, response = std::move(reply.response),
                          ex = Exchange(ex)](const Status& s) {
      // Nothing leaves without its audit record.
      if (!s && must_audit)
        return fail(ex, Error::make(ErrorCode::busy, "The access could not be recorded; try again"));
      return response;
    };
    return reply;
  }
  auto more = std::make_shared<std::vector<std::string>>(ex.seen_patients);
  auto inner = std::make_shared<Status>(Ok{});
  reply.plan = [plan = std::move(reply.plan), input, more, inner, journal, checked_ms, started = ex.started,
                origin = ex.who ? ex.who->id : std::string(),
                correlation = ex.correlation_id](store::WriteTxn& txn) -> Status {
    txn.set_origin(origin);  // routes match the writing partner
    txn.set_correlation(correlation);
    *inner = txn.nested(plan);
    if (input) {
      if (*inner) {
        if (input->outcome.empty()) input->outcome = "0";  // a plan may record a failure it answered itself
      } else {
        input->outcome = outcome_of_status(http_status(inner->error().code));
        input->outcome_desc = first_diagnostics(inner->error());
      }
      record_audit(txn, *input, *more);
    }
    if (journal) {
      if (*inner) {
        if (journal->status.empty()) journal->status = txn.deliveries_caused() ? "routed" : "stored";
        journal->resources = resources_json(txn.written());
      } else {
        journal->status = http_status(inner->error().code) < 500 ? "rejected" : "failed";
        journal->error = first_diagnostics(inner->error());
      }
      journal->stages =
          store::stages_json({{"received", 0.0}, {"checked", checked_ms}, {"stored", elapsed_ms(started)}});
      txn.append_journal(*journal);
    }
    return Ok{};
  };
  reply.after_commit = [after = std::move(reply.after_commit), inner](const Status& s) {
    return after(s ? *inner : s);
  };
  return reply;
}

}  // namespace fhirgate::gateway::rest
