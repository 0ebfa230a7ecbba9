#pragma once
// The gate's question of a stored version, as every read asks it (read, vread, history, a Bundle's GET,
// $validate of an instance): a live version is decided by the gate (security/gate.hpp); a deletion is
// shown only to whoever could see the version before it, and to others the resource stays unknown (404),
// as it was while it lived, so that a 410 cannot tell them it existed.
#include <cstdint>
#include <functional>
#include <optional>

#include "fhir/result.hpp"
#include "gateway/pipeline/exchange.hpp"
#include "gateway/security/gate.hpp"
#include "gateway/store/store.hpp"

namespace fhirgate::gateway::stages {

// Whether `ex`'s caller may see `version`; with `note`, names it and its patient in the exchange's
// AuditEvent (a deletion by its own version) and notes break-glass. Errors: the Consents' (busy).
Result<bool> may_see_version(const Gate& gate, pipeline::Exchange& ex, ConsentSource& consents,
                             const store::VersionRecord& version, const store::VersionLookup& vread,
                             bool note);

}  // namespace fhirgate::gateway::stages
