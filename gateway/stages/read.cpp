#include "gateway/stages/read.hpp"

#include "fhir/json.hpp"

namespace fhirgate::gateway::stages {

Result<bool> may_see_version(const Gate& gate, pipeline::Exchange& ex, ConsentSource& consents,
                             const store::VersionRecord& version, const store::VersionLookup& vread,
                             bool note) {
  if (version.deleted) {
    auto before = store::last_live_before(version.version, vread);
    if (!before) return before.error();
    if (!*before) return false;
    auto shown = may_see_version(gate, ex, consents, **before, vread, note);
    if (note && ex.audit)
      ex.audit->entity_reference =
          version.type + "/" + version.id + "/_history/" + std::to_string(version.version);
    return shown;
  }
  if (note && ex.audit) {
    Result<fhir::Node> parsed = Error{};
    if (version.type != "Patient") parsed = fhir::parse_json(version.body);
    pipeline::note_record(*ex.audit, version.type, version.id, version.version, parsed ? &*parsed : nullptr);
  }
  if (!ex.caller.partner) return true;
  auto decision = gate.decide_stored(ex.caller, version, consents, ex.received_ms);
  if (!decision) return decision.error();
  if (decision->permit && decision->break_glass && ex.audit) ex.audit->break_glass = true;
  return decision->permit;
}

}  // namespace fhirgate::gateway::stages
