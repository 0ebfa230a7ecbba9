#pragma once
// Writes held for a registrar (the one identity rule, docs/security.md): a write whose identity match the
// writer may not see is not applied; it waits here, with what applying it needs, until a consent
// registrar or the privacy officer releases it (it is then applied to the record it matched) or rejects
// it. Rows are never deleted: a decision is recorded on the row.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace fhirgate::gateway::store {

class Connection;

struct HeldWrite {
  std::int64_t id = 0;  // order of creation
  std::int64_t created_ms = 0;
  std::string correlation_id;
  std::string partner;          // who wrote
  std::string entry;            // rest, hl7v2, feed
  std::string type;             // the resource type written
  std::string target;           // Type/id of the record it matched
  std::string patient;          // Patient/<id> of that record
  std::string merge;            // how it applies once released: replace, hl7v2, feed, link
  std::string resource;         // the incoming resource, JSON
  std::string context;          // what applying it needs besides (the HL7 v2 message; a merge's records)
  std::string status = "held";  // held, released, rejected
  std::string decided_by;
  std::int64_t decided_ms = 0;
  std::int64_t journal_id = 0;  // the journal entry of the exchange, 0 when none
};

// Inserts it; returns its id.
std::int64_t append_held(Connection& db, const HeldWrite& held);
// Newest first; `status` empty = any.
std::vector<HeldWrite> list_held(Connection& db, const std::string& status, int count,
                                 std::int64_t before_id);
std::optional<HeldWrite> read_held(Connection& db, std::int64_t id);
// Records the decision (released or rejected) on a held row.
void decide_held(Connection& db, std::int64_t id, const std::string& status, const std::string& by,
                 std::int64_t now_ms);

}  // namespace fhirgate::gateway::store
