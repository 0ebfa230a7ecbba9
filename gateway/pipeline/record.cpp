#include "gateway/pipeline/record.hpp"

#include <algorithm>

#include "fhir/json.hpp"
#include "gateway/audit/audit_trail.hpp"

namespace fhirgate::gateway::pipeline {
namespace {

bool client_error(const Error& e) {
  return http_status(e.code) < 500;
}

std::string first_diagnostics(const Error& e) {
  return e.issues.empty() ? std::string() : e.issues.front().diagnostics;
}

// The patients an exchange was about: its AuditEvent's, the further ones it showed, and the Patients it
// wrote.
std::vector<std::string> patients_of(const Exchange& ex, const std::vector<std::string>& written) {
  std::vector<std::string> out;
  auto add = [&](const std::string& p) {
    if (!p.empty() && std::find(out.begin(), out.end(), p) == out.end()) out.push_back(p);
  };
  if (ex.audit) add(ex.audit->patient_reference);
  for (const auto& p : ex.seen_patients) add(p);
  for (const auto& p : ex.patients) add(p);
  for (const auto& w : written)
    if (w.rfind("Patient/", 0) == 0) add(w.substr(0, w.find("/_history")));
  return out;
}

std::string strings_json(const std::vector<std::string>& values, std::size_t limit) {
  fhir::Node list = fhir::Node::array();
  for (std::size_t i = 0; i < values.size() && i < limit; ++i) list.push(fhir::Node::string(values[i]));
  return fhir::write_json(list);
}

}  // namespace

void note_record(AuditInput& audit, const std::string& type, const std::string& id, std::int64_t version,
                 const fhir::Node* resource) {
  audit.entity_reference = type + "/" + id + (version > 0 ? "/_history/" + std::to_string(version) : "");
  if (type == "Patient")
    audit.patient_reference = "Patient/" + id;
  else if (resource)
    audit.patient_reference = Gate::patient_of(*resource);
}

store::JournalStatus journal_status_of(const Exchange& ex, std::size_t deliveries_caused) {
  using store::JournalStatus;
  if (ex.error) return client_error(*ex.error) ? JournalStatus::rejected : JournalStatus::failed;
  if (ex.held || !ex.held_ids.empty()) return JournalStatus::held;
  if (ex.journal && ex.journal->status == JournalStatus::rejected) return JournalStatus::rejected;
  return deliveries_caused ? JournalStatus::routed : JournalStatus::stored;
}

AuditOutcome audit_outcome_of(const Exchange& ex) {
  if (ex.error) return client_error(*ex.error) ? AuditOutcome::minor_failure : AuditOutcome::serious_failure;
  if (ex.held) return AuditOutcome::minor_failure;
  return ex.audit ? ex.audit->outcome : AuditOutcome::success;
}

std::string error_summary(const Error& error) {
  std::string text = !error.internal.empty() ? error.internal : issue_type(error.code);
  const std::string where = error.issues.empty() ? std::string() : error.issues.front().expression;
  if (!where.empty() && text.find(where) == std::string::npos) text += " at " + where;
  return text;
}

// The exchange's AuditEvent as recorded (its outcome from the exchange's); recorded_ms 0 means "when
// written".
AuditInput audit_input_of(const Exchange& ex) {
  AuditInput in = *ex.audit;
  in.outcome = audit_outcome_of(ex);
  in.held = ex.held;
  if (ex.error) {
    if (in.outcome_desc.empty()) in.outcome_desc = first_diagnostics(*ex.error);
  } else if (ex.held && in.outcome_desc.empty()) {
    in.outcome_desc = "held for review: its identifier matches a record the writer may not see";
  }
  return in;
}

store::WritePlan commit_plan(Exchange& ex) {
  if (!ex.plan && !ex.audit && !ex.journal && !ex.before_record) return nullptr;
  // A read leaves only its AuditEvent: the writer appends it to the audit log file (store/audit_file.hpp).
  if (!ex.plan && !ex.journal && !ex.before_record)
    return store::AuditOnlyPlan{{audit_record(audit_input_of(ex), ex.seen_patients)}};
  return [&ex](store::WriteTxn& txn) -> Status {
    txn.set_correlation(ex.correlation_id);
    if (ex.plan && !ex.failed()) {
      Status written = txn.nested(ex.plan);
      if (!written) ex.fail(written.error());
    }
    record(txn, ex);
    return Ok{};
  };
}

void record_audit_of(store::WriteTxn& txn, const Exchange& ex) {
  if (!ex.audit) return;
  AuditInput in = audit_input_of(ex);
  if (in.recorded_ms == 0) in.recorded_ms = txn.now_ms();
  record_audit(txn, in, ex.seen_patients);
}

void record(store::WriteTxn& txn, Exchange& ex) {
  if (ex.before_record) ex.before_record(txn);
  record_audit_of(txn, ex);
  if (!ex.journal) return;
  store::JournalEntry& e = *ex.journal;
  e.status = journal_status_of(ex, txn.deliveries_caused());
  if (ex.error) {
    e.error = error_summary(*ex.error);
    e.detail = first_diagnostics(*ex.error);
  }
  if (e.resources == "[]") e.resources = strings_json(txn.written(), 100);
  if (e.patients == "[]") e.patients = strings_json(patients_of(ex, txn.written()), 100);
  std::vector<std::pair<std::string, double>> stages{{"received", 0.0}};
  stages.insert(stages.end(), ex.timings.begin(), ex.timings.end());
  stages.emplace_back(
      ex.error  ? "refused"
      : ex.held ? "held"
                : "stored",
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - ex.started).count());
  e.stages = store::stages_json(stages);
  txn.append_journal(e);
}

void after_commit(Exchange& ex, const Status& outcome) {
  ex.committed = outcome.ok();
  if (outcome) return;
  Error e = outcome.error();
  if (ex.audit && !ex.plan) {
    // A read: nothing leaves without its audit record.
    Error unrecorded = Error::make(ErrorCode::busy, "The access could not be recorded; try again");
    unrecorded.internal = e.internal.empty() ? "commit failed" : e.internal;
    e = std::move(unrecorded);
  }
  ex.error = std::move(e);
}

void finish_journal(GatewayObservers* observers, const Exchange& ex) {
  if (observers && ex.committed && ex.journal) observers->on_journal(*ex.journal);
}

}  // namespace fhirgate::gateway::pipeline
