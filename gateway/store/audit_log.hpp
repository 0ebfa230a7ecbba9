#pragma once
// The audit trail: AuditEvents in their own append-only table, chained for tamper evidence.
//
// Why a table of its own: every interaction writes one (reads included, committed before the response),
// so an AuditEvent must cost one row, not a resource with a version row and a dozen index rows. The
// columns the REST search needs (agent, entity, action, outcome, recorded) sit beside the JSON, and
// audit_patient lists the patients each event touched (the access report); `seq` is the chain order and
// the AuditEvent's id.
//
// What a row holds: for the gateway's own events a compact record of what happened (format 'record', the
// fields of gateway::AuditInput; the BALP AuditEvent is rendered from it when read, which keeps the hot
// path - one event per read - to a few hundred bytes); for AuditEvents clients POST, the resource as sent
// (format 'resource'). The id (= seq) and meta are added when served.
//
// Tamper evidence: each row's `chain` is HMAC-SHA256(key, previous chain || seq || recorded || format ||
// body), the first row chained to 32 zero bytes, and store_meta 'audit_head' holds the last seq and chain.
// The search columns (agent, entity, action, outcome, audit_patient) are derived from the body, and
// verification derives them again, so editing them is caught too. Changing a body,
// inserting a row or renumbering breaks the chain at that row; deleting rows leaves a gap in seq (or, at
// the end, disagrees with the head). The key lives in a file outside the database (created on first use,
// mode 0600), so whoever edits the database cannot re-chain it without the key too. Truncating the tail
// and rewinding the head together is only detectable with the head copied elsewhere (not done here).
#include <openssl/types.h>

#include <array>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "fhir/json.hpp"

namespace fhirgate::gateway::store {

class Connection;

class AuditKey {
 public:
  using Digest = std::array<unsigned char, 32>;
  // Reads the key file, creating it with 32 random bytes when missing. Throws std::runtime_error.
  static AuditKey load_or_create(const std::string& path);
  // Reads the key file; nullopt when there is none. Throws std::runtime_error when it cannot be read.
  static std::optional<AuditKey> load(const std::string& path);
  // A new key, kept in memory only.
  static AuditKey random();
  // HMAC-SHA256 of the concatenated parts. The key's inner and outer pad blocks are hashed once, when
  // the key is loaded; each call copies those digest states (one HMAC per AuditEvent, so it counts).
  Digest mac(std::initializer_list<std::string_view> parts) const;

 private:
  void precompute();
  std::array<unsigned char, 32> bytes_{};
  std::shared_ptr<EVP_MD_CTX> inner_, outer_;  // SHA-256 after (key ^ ipad), after (key ^ opad)
};

// The searchable columns of an AuditEvent, besides its JSON.
struct AuditColumns {
  std::vector<std::string> patients;  // "Patient/<id>" of each patient whose data was touched
  std::string agent;                  // the requesting partner or role id
  std::string entity;                 // "Type/id" of the data entity
  std::string action;                 // C R U D E
  std::string outcome;                // 0 4 8 12
};

struct AuditRecord {
  std::int64_t seq = 0;
  std::int64_t recorded_ms = 0;
  std::string format;  // record or resource
  AuditColumns columns;
  std::string body;
  std::array<unsigned char, 32> chain{};  // set when chained (chain_audit); not read back by searches
};

// The last event of the chain, as appending continues from it. The writer owns it (in memory, since the
// chain's end may be in the audit log file) and writes it as the head with every transaction that
// appends or imports.
struct AuditTail {
  std::int64_t seq = 0;
  std::array<unsigned char, 32> chain{};
};
// The end of the chain as the tables hold it: the head in store_meta, or the last row when events moved
// from the audit log files follow the head (zero when there is none).
// Throws std::runtime_error when the head is missing or unreadable (deleted or changed behind the
// gateway's back: every database has one, schema/009_audit_head_always.sql).
AuditTail read_audit_head(Connection& db);
// The audit key of the database `db` (whose audit log files are `log_paths`): read from `path` and
// checked against the trail's newest event, or, for the database's `owner` (DatabaseLock), created when
// there is no trail yet (another process, which may not append AuditEvents, gets a key in memory only).
// Throws std::runtime_error (the gateway does not start) when the file is missing but a trail exists (in
// the tables or the log files), or when the key does not match the newest event (another database's key,
// or a changed trail): chaining on with it would make the whole trail look forged.
AuditKey open_audit_key(Connection& db, const std::string& path, const std::vector<std::string>& log_paths,
                        bool owner);
void write_audit_head(Connection& db, const AuditTail& tail);
// Writes `tail` as the head unless the head is already at or beyond it (the spool's moves, which may
// commit after the writer recorded a later head).
void advance_audit_head(Connection& db, const AuditTail& tail);

// Gives `record` the next seq after `tail` (recorded_ms 0 means now) and its chain; advances `tail`.
void chain_audit(const AuditKey& key, AuditRecord& record, std::int64_t now_ms, AuditTail& tail);
// Inserts a chained record (its seq and chain as given) inside the caller's transaction. `import`: an
// event moved from the audit log file; one already in the table (moved before a crash) is left as it is.
void insert_audit(Connection& db, const AuditRecord& record, bool import = false);

struct AuditQuery {
  std::string patient;  // exact "Patient/<id>"; empty = any
  std::string agent;
  std::string entity;  // exact "Type/id"
  std::string action;
  std::string outcome;
  std::int64_t from_ms = INT64_MIN;  // recorded within [from, to]
  std::int64_t to_ms = INT64_MAX;
  std::int64_t before_seq = INT64_MAX;  // paging: rows with a smaller seq
  int count = 20;
};
// Newest first; at most `count` rows.
std::vector<AuditRecord> search_audit(Connection& db, const AuditQuery& query);
// How many events `query` selects (its count aside): the table's rows, and those of `logged` (the audit log
// file's events that `query` selects, audit_matches) not among them, read in one statement, so that an
// event moved from the file into the table meanwhile counts once.
std::int64_t count_audit(Connection& db, const AuditQuery& query, const std::vector<AuditRecord>& logged);
// Whether a record is one `query` selects (its count and paging aside): for the events still in the log.
bool audit_matches(const AuditRecord& record, const AuditQuery& query);
std::optional<AuditRecord> read_audit(Connection& db, std::int64_t seq);
// The AuditEvents recorded since `since_ms` that carry this correlation id, oldest first (at most
// `limit`). Walks back from the newest row, so it costs what was recorded since.
std::vector<AuditRecord> audits_with_correlation(Connection& db, const std::string& correlation_id,
                                                 std::int64_t since_ms, int limit);

struct ChainCheck {
  bool intact = true;
  std::int64_t rows = 0;
  std::int64_t first_bad_seq = 0;  // where the chain first breaks
  std::string problem;             // for people: what is wrong at first_bad_seq
};
// `derive` gives the columns a row's body implies (nullopt: cannot tell, and the row counts as changed).
using DeriveColumns = std::function<std::optional<AuditColumns>(const AuditRecord&)>;
// `logged` is called once the table's snapshot is open and gives the events of the audit log file,
// oldest first (those already in the table are compared with their row).
using LoggedAudits = std::function<std::vector<AuditRecord>()>;
ChainCheck verify_audit_chain(Connection& db, const AuditKey& key, const DeriveColumns& derive,
                              const LoggedAudits& logged = {});

}  // namespace fhirgate::gateway::store
