#pragma once
// The consent engine: may this partner do this with this patient's data, given the patient's Consents?
//
// Design note
// -----------
// `decide` is a pure function of the deployment policy, the patient's Consent resources and one request. It
// does no I/O and keeps no state, so every entry point (REST read/search filter, REST and MLLP writes,
// outbound delivery) asks the same question the same way, and the tests can state every rule as a table row.
// It is thread-safe. The caller loads the patient's Consents (this function does not check Consent.patient)
// and records the decision in the audit.
//
// Order of checks:
//  1. The Consents that count (below) are evaluated one by one: each reaches its own decision, or none.
//  2. Across them, deny first: any Consent that denies decides (a patient's explicit "no" to a partner is
//     never outweighed by a permit in another Consent, however specific). Otherwise any permit decides.
//  3. Otherwise the requesting partner's supplier status is an implicit permit ("supplier": the data is
//     what it sent), and failing that the policy default: opt-in denies ("policy opt-in: no consent"),
//     opt-out permits ("policy opt-out: no objection"). So a Consent that denies a partner applies to it
//     even where it supplied the record.
//  4. Break-glass: a deny from the steps above, whether a Consent's or the opt-in default, becomes a
//     permit with `break_glass` set when the request's purpose is ETREAT and the partner may claim it. The
//     reason keeps the deny it overrode, so the audit shows what was overridden. A permit never sets
//     `break_glass` (a Consent that permits ETREAT is an ordinary permit). Break-glass is not limited to
//     particular actions.
//
// Which Consents count: `status` exactly "active"; `scope` has a Coding with system
// http://terminology.hl7.org/CodeSystem/consentscope and code patient-privacy; some `category` has a Coding
// with system http://loinc.org and code 59284-0 (other categories may be present too, as IHE PCF allows).
// Systems are required on both: a bare code is ignored. Everything else on the Consent is not read:
// `dateTime` (a future one is not rejected), `policy`, `policyRule` (the provisions' types are authoritative,
// as the partnership profile requires), `verification`, `source[x]`, `organization`, `performer`.
//
// One Consent is a provision tree. The root provision has depth 0, its nested provisions depth 1, and so on.
// A provision is visited only when its parent matched (nested provisions are exceptions to their parent), and
// a visited provision that matches and has a `type` yields a decision at its depth: "permit" permits, any
// other value (normally "deny") denies. A provision without `type` decides nothing but is still a container
// for its nested provisions. R4's definition text says the root should have no `type`, but no invariant
// enforces that and IHE PCF and the partnership profile put the Consent's base rule there, so the root's
// `type` counts like any other. Within one Consent the deepest (most specific) decision wins, so that an
// exception nested in a rule overrides it; at equal depth deny wins over permit, and at equal depth and type
// the first in document order is reported. Across Consents deny wins (step 2); the first deciding Consent in
// the order of `consents` is reported.
//
// A provision matches when every constraint present on it matches (an empty request field matches nothing):
//  - period: `now_ms` within [start, end], each end a FHIR date/dateTime of any precision taken as the range
//    it covers (end "2026-03" lasts until 2026-03-31T23:59:59.999Z); either end may be absent.
//  - actor: some actor's `reference.reference` equals `request.actor` exactly (no base URL or version
//    stripping), or its `reference.identifier` has system https://fhir.nhs.uk/Id/ods-organization-code and
//    value `request.actor_ods_code` (non-empty). `actor.role` is not checked. Actors are matched as the
//    requesting Organization only: an actor naming a Practitioner, Group or CareTeam never matches.
//  - purpose: some Coding has code `request.purpose` and system absent or
//    http://terminology.hl7.org/CodeSystem/v3-ActReason.
//  - class: some Coding has code `request.resource_type` and system absent or
//    http://hl7.org/fhir/resource-types.
//  - action: some CodeableConcept has a Coding with code `request.action` and system absent or
//    http://terminology.hl7.org/CodeSystem/consentaction.
//
// Fail closed on what cannot be evaluated. Some constraints depend on the data or on vocabularies the engine
// does not have: `data`, `dataPeriod`, `securityLabel`, `code`, a `class` Coding from another system (a
// profile or document type, which R4 allows), an unparseable `period`, and a `modifierExtension` on the
// provision or on the Consent. A provision with such a constraint, whose other constraints match, "may
// match": the engine cannot tell whether the request is covered. Such a provision, and everything nested
// in it, may deny but never permits: a permit needs the provision and all its ancestors to match for
// certain. So a deny the engine cannot fully evaluate is applied as if it covered the request (a patient
// hiding one document hides that class from the named actors; break-glass remains), and a permit it cannot
// fully evaluate is not applied.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "fhir/json.hpp"

namespace fhirgate::gateway {

// What the partnership decides when a patient has said nothing.
enum class ConsentPolicy {
  opt_in,   // nothing is shared until the patient agrees
  opt_out,  // shared unless the patient objects
};

struct ConsentRequest {
  std::string actor;  // the requesting partner's Organization reference, e.g. "Organization/acute-trust"
  std::string actor_ods_code;  // its ODS code, matched against actor identifiers; may be empty
  std::string purpose;         // purpose of use, a v3-ActReason code (TREAT, ETREAT, HPAYMT, ...)
  std::string resource_type;   // the data's resource type, e.g. Patient
  // A consentaction code: access (reads, searches), correct (updates), collect (creates), disclose
  // (outbound), use.
  std::string action;
  std::int64_t now_ms = 0;             // milliseconds since the epoch
  bool supplied_by_requester = false;  // the requesting partner supplied this resource
  bool may_break_glass = false;        // the partner is allowed to claim ETREAT
};

struct ConsentDecision {
  bool permit = false;
  bool break_glass = false;  // permitted only because of ETREAT over a deny (a Consent's or opt-in's)
  // For audit and logs: the deciding Consent and provision, "policy opt-in: no consent",
  // "policy opt-out: no objection" or "supplier"; break-glass prefixes the overridden reason. Holds resource
  // ids and element paths only, never patient data.
  std::string reason;
  std::string consent_id;  // id of the deciding Consent; empty when a policy or the supplier rule decided
  std::string provision;   // path of the deciding provision, e.g. Consent.provision.provision[1]
};

// Decides `request` against the patient's `consents` (any status; those that do not count are skipped, see
// above) under `policy`. Never fails: malformed content is handled as described in the design note.
ConsentDecision decide(ConsentPolicy policy, const std::vector<fhir::Node>& consents,
                       const ConsentRequest& request);
// The same over Consents held elsewhere (e.g. a cache of parsed versions).
ConsentDecision decide(ConsentPolicy policy, const std::vector<const fhir::Node*>& consents,
                       const ConsentRequest& request);

// Parses "opt-in" / "opt-out" (exactly); nullopt otherwise.
std::optional<ConsentPolicy> parse_consent_policy(std::string_view text);

}  // namespace fhirgate::gateway
