#pragma once
// The gateway's side of the audit trail (store/audit_log.hpp): what a row holds for each kind of event,
// and the AuditEvent resources served from the rows.
//
// The gateway's own events are stored as a compact record of their AuditInput (and the further patients
// of a search) and rendered with make_audit_event when read: the hot path (one event per read) then
// writes a few hundred bytes, and the rendering is deterministic, so the chain over the record covers
// exactly what is served. AuditEvents clients POST are stored as sent.
#include <optional>
#include <string>
#include <vector>

#include "fhir/json.hpp"
#include "gateway/audit/audit_event.hpp"
#include "gateway/store/store.hpp"

namespace fhirgate::gateway {

// The row for one of the gateway's own events. `more_patients` (a search's results) become further
// patient entities when rendered. Every text is first written as the rendered event will hold it (a
// character a FHIR string cannot carry as a visible escape), so that the search columns and the body
// always agree and `audit verify` holds whatever bytes a client sent.
store::AuditRecord audit_record(const AuditInput& input, const std::vector<std::string>& more_patients = {});
// Appends it, inside a write plan (the same commit as the write it records).
void record_audit(store::WriteTxn& txn, const AuditInput& input,
                  const std::vector<std::string>& more_patients = {});

// The row for an AuditEvent a client POSTed (its id and meta.versionId/lastUpdated dropped).
store::AuditRecord posted_audit_record(fhir::Node event);

// The AuditEvent JSON served for a row (id = seq, meta.versionId 1, meta.lastUpdated = recorded).
// nullopt when the row's body cannot be read. `as_agent`: for the requesting partner's own view of its
// events, where a refused or held request names neither the data nor the patient it was about (what the
// gateway refused to tell it must not come back through its audit trail).
std::optional<std::string> render_audit_event(const store::AuditRecord& row, bool as_agent = false);

// The search columns a row's body implies (verification compares them with the stored ones).
std::optional<store::AuditColumns> derive_audit_columns(const store::AuditRecord& row);

// "Type/id" without a "/_history/n" suffix.
std::string without_version(const std::string& reference);

}  // namespace fhirgate::gateway
