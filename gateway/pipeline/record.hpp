#pragma once
// What every exchange leaves behind, written once, from its outcome: its AuditEvent (security on) and,
// for what carries data into the gateway, its journal entry (docs/operators.md), both in the same commit
// as its data, so that neither can exist without the other and a read's AuditEvent is durable before
// its response leaves.
//
// The one table of outcomes: an exchange that failed with an error is `rejected` in the journal and a
// minor failure (4) in the audit when the error is the client's (HTTP 4xx), `failed` and a serious failure
// (8) otherwise; a held write is `held` and a minor failure; a success is `stored` (`routed` when it queued
// deliveries) and 0. The HTTP status and the HL7 v2 ACK code come from the same error (fhir/result.hpp).
#include <cstddef>

#include "gateway/ops/observability.hpp"
#include "gateway/pipeline/exchange.hpp"
#include "gateway/store/store.hpp"

namespace fhirgate::gateway::pipeline {

store::JournalStatus journal_status_of(const Exchange& ex, std::size_t deliveries_caused);
AuditOutcome audit_outcome_of(const Exchange& ex);

// An error as lists, stats and log lines show it: what went wrong and where (the field), never a value
// the sender sent (the client-facing diagnostics may quote them; they go to the journal entry's detail).
std::string error_summary(const Error& error);

// The plan of an exchange's commit stage: its own write (when it has one and no error yet) in a savepoint
// of its own, then its records. Null when there is nothing to commit. The exchange must outlive the
// commit (the job that owns it waits for it).
store::WritePlan commit_plan(Exchange& ex);
// Writes the exchange's AuditEvent and journal entry from its outcome, inside a plan.
void record(store::WriteTxn& txn, Exchange& ex);
// Only the AuditEvent (an entry of a Bundle, a chunk of a feed: their journal entry is their parent's).
void record_audit_of(store::WriteTxn& txn, const Exchange& ex);

// After the commit stage: a commit that failed leaves nothing stored, not even the AuditEvent, so nothing
// may leave: the exchange fails with that error (503 busy when the store is unavailable).
void after_commit(Exchange& ex, const Status& outcome);

// The finish stage's part for journaled exchanges: counts the committed journal entry, and logs it unless
// it is a REST request's (which has a line of its own). `observers` may be null.
void finish_journal(GatewayObservers* observers, const Exchange& ex);

}  // namespace fhirgate::gateway::pipeline
