#pragma once
// The one write: every entry point's create, update, delete, conditional create and update,
// upsert-by-identity (HL7 v2, feeds) and merge (A40) is planned here, inside the writer's transaction.
//
// Design note
// -----------
// A write used to be decided by each entry point in its own code, and each had its own holes. Here one
// function owns, in this order, everything a write must get right (docs/security.md):
//  1. Finding what it changes: by id; by a condition (If-None-Exist, a conditional update) evaluated only
//     over the records the caller may see, so the answer never depends on a hidden record; or by identity
//     (HL7 v2, feeds, merges), which looks at every record.
//  2. The agreement, for HL7 v2 and feeds (create or update, known only now); REST asked it before.
//  3. The gate: the caller may change only what it may see (404 "not known" otherwise, as a read would
//     answer); a match by identity that it may not see is HELD, not applied: the record is untouched,
//     the write kept (store/held.hpp) for a registrar to release or reject, the writer answered as for an
//     accepted write and told nothing of the record. Consents about a patient's privacy are written only
//     by registrars and the privacy officer (Gate::may_record), judged on the old and the new version.
//  4. The one identity rule: at most one Patient per identifier. A version that would give a Patient
//     another's identifier is refused with 409 when the caller may see that other record, and held when
//     it may not.
//  5. If-Match.
//  6. Supplier tags: only the write that creates a record makes its writer a supplier; updates keep the
//     tags of the version they replace (security/suppliers.hpp).
//  7. The write itself, the AuditEvent's entity and patient (on the exchange), and routing to the outbox
//     (routing/router.hpp) as an explicit step, in the same transaction.
// Consents are read inside the transaction (TxnConsents), so a Consent written earlier in the batch — or
// earlier in the same Bundle — governs this write.
//
// Errors are the exchange's answer: not_found (a record the caller may not see, or none), forbidden (the
// agreement; a Consent from a non-registrar), conflict (the identity rule; an ambiguous identity),
// precondition_failed (If-Match, a condition matching several), unprocessable (what cannot be merged).
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "fhir/json.hpp"
#include "fhir/result.hpp"
#include "fhir/search_params.hpp"
#include "fhir/search_query.hpp"
#include "gateway/pipeline/exchange.hpp"
#include "gateway/routing/router.hpp"
#include "gateway/security/gate.hpp"
#include "gateway/store/store.hpp"
#include "mappers/hl7v2.hpp"

namespace fhirgate::gateway::stages {

struct WriteServices {
  const Gate& gate;
  const fhir::SearchParamRegistry& registry;
  const Router* router = nullptr;  // null: no routes
};

// How an incoming resource updates the record it matched by identity (and how a held write is applied
// once released).
enum class Merge : std::uint8_t {
  replace,  // the incoming content replaces the held (REST)
  update,  // the incoming elements replace the held ones, identifiers merge by system, the rest stays (feeds)
  hl7v2,   // HL7 v2 semantics: an empty field keeps what is held, "" deletes it (mappers/adt_update.hpp)
  link,    // an A40 merge: the survivor `replaces` the other, which is `replaced-by` it and inactive
};

struct WriteRequest {
  enum class Kind : std::uint8_t {
    create,  // a new resource with `id`; with `condition`: If-None-Exist
    update,  // by `id` (update-as-create when absent); no id and a `condition`: a conditional update
    remove,  // by `id`
    upsert,  // by identity: the record `identity` names is updated with `merge`, else one is created
    link,    // HL7 v2 A40: `identity` names the survivor, `replaced` the record merged into it
  };
  Kind kind = Kind::create;
  std::string type;
  std::string id;
  fhir::Node resource;                         // create, update, upsert
  std::optional<fhir::SearchQuery> condition;  // If-None-Exist; a conditional update
  std::optional<std::int64_t> if_match;
  std::vector<fhir::SearchQuery> identity;  // upsert, link (identity.hpp: identity_queries)
  std::vector<fhir::SearchQuery> replaced;  // link
  Merge merge = Merge::replace;
  // HL7 v2 merges need the message; `context` is its text, kept with a held write.
  std::shared_ptr<const mappers::Message> message;
  std::string context;
  std::string entry = "rest";    // rest, hl7v2, feed: where a held write came from
  bool check_agreement = false;  // HL7 v2 and feeds: ask the agreement for the create or update made
};

struct WriteOutcome {
  enum class Kind : std::uint8_t { created, updated, unchanged, deleted, absent, matched, held };
  Kind kind = Kind::created;
  std::optional<store::VersionRecord> record;  // written, matched (If-None-Exist) or left unchanged
  std::vector<store::VersionRecord> also;      // link: the retired record's version
};

// Plans one write in `txn` for the exchange `ex` (its caller, origin, correlation id; its AuditEvent gets
// the entity and patient, break-glass, and the held mark). Every rule of the design note applies.
Result<WriteOutcome> plan_write(store::WriteTxn& txn, const WriteServices& services, pipeline::Exchange& ex,
                                WriteRequest request);

// The records of `type` that `condition` matches and `ex`'s caller may see: a condition's criteria are
// evaluated only over those, so that its answer never depends on a record hidden from the caller.
Result<std::vector<store::VersionRecord>> visible_matches(store::WriteTxn& txn, const WriteServices& services,
                                                          pipeline::Exchange& ex, const std::string& type,
                                                          const fhir::SearchQuery& condition);

// A held write, released by `ex`'s caller (a registrar or the privacy officer): applied to the record it
// matched with its merge, the agreement and the gate no longer asked (the registrar decided), the supplier
// tags kept, routed as the original partner's data. Errors: not_found (unknown id), conflict (decided
// already, or the record is gone).
Result<WriteOutcome> release_held(store::WriteTxn& txn, const WriteServices& services, pipeline::Exchange& ex,
                                  std::int64_t held_id);

// The feeds' merge (Merge::update): the incoming elements replace the held ones, identifiers merge by
// system; id, meta and the elements the incoming does not have stay.
fhir::Node merge_update(const fhir::Node& held, const fhir::Node& incoming);

}  // namespace fhirgate::gateway::stages
