#pragma once
// Recording an AuditEvent in the chained audit trail, from inside a write plan (same commit as the
// write it records). Shared by the REST API and inbound HL7 v2.
#include <string>
#include <vector>

#include "gateway/audit_event.hpp"
#include "gateway/store/store.hpp"

namespace fhirgate::gateway {

// Builds the AuditEvent (make_audit_event) and appends it with its search columns. `more_patients`
// (a search's results) become further patient entities.
void record_audit(store::WriteTxn& txn, const AuditInput& input, const std::vector<std::string>& more_patients = {});

// "Type/id" without a "/_history/n" suffix.
std::string without_version(const std::string& reference);

}  // namespace fhirgate::gateway
