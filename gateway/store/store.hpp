#pragma once
// The resource store: current and historical versions of every stored resource, plus index tables for
// the search parameters, in one SQLite database (WAL, synchronous=FULL).
//
// Threads: reads (read/vread/history/search/ping) may be called from any thread; each call borrows one
// read-only connection from a pool. Writes happen only through the Writer (writer.hpp), which owns the
// single read-write connection and hands a WriteTxn to each write plan inside its group transaction.
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "fhir/json.hpp"
#include "fhir/result.hpp"
#include "fhir/search_params.hpp"
#include "fhir/search_query.hpp"
#include "gateway/store/audit_log.hpp"
#include "gateway/store/held.hpp"
#include "gateway/store/journal.hpp"
#include "gateway/store/outbox.hpp"
#include "gateway/store/writer.hpp"

namespace fhirgate::gateway::store {

class Connection;
class Writer;

struct VersionRecord {
  std::string type;
  std::string id;
  std::int64_t version = 0;
  std::int64_t last_updated_ms = 0;
  bool deleted = false;
  std::string method;  // POST, PUT or DELETE: the interaction that made this version
  std::string body;    // the resource JSON (with meta); empty when deleted
};

struct SearchPage {
  std::vector<VersionRecord> matches;  // type, id, body filled
  std::optional<std::int64_t> total;   // when the query asked for an accurate total
  std::string next_cursor;             // empty: no next page
  std::string previous_cursor;         // empty: no previous page
};

struct HistoryPage {
  std::vector<VersionRecord> versions;  // newest first
  std::optional<std::int64_t> total;    // absent when counting what the caller may see would cost too much
  std::string next_cursor;
};

// Which rows the caller may see (the consent gate): runs on the reading thread and may read the store
// itself; an error (the Consents could not be read) ends the read with that error.
using Visibility = std::function<Result<bool>(const VersionRecord&)>;

// Another version of the same resource (the store's vread, or a write transaction's).
using VersionLookup = std::function<Result<std::optional<VersionRecord>>(std::int64_t version)>;
// The last live version before `version` (a deletion's): what decides who may know of the deletion (reads
// answer 410 or 404 by it, a PUT re-creates by it, a delivery of the deletion leaves by it). nullopt when
// there is none.
Result<std::optional<VersionRecord>> last_live_before(std::int64_t version, const VersionLookup& vread);

// One received partner message (HL7 v2 now; CSV and XML feeds later) as kept in the inbound log.
struct InboundMessage {
  std::int64_t mid = 0;  // log order (set when read back)
  std::int64_t received_ms = 0;
  std::string partner;       // partner id; empty when the sender could not be identified
  std::string channel;       // mllp, http
  std::string format;        // hl7v2
  std::string sender;        // MSH-4
  std::string control_id;    // MSH-10
  std::string message_type;  // e.g. ADT^A01
  std::string status;        // applied, failed, rejected
  std::string detail;        // applied: JSON array of what was written; otherwise the error, for people
  std::string body;          // as received
  std::string content_hash;  // of the message without its MSH-7 and MSH-10 (re-sends are recognised by it)
};

// An applied message as the inbound log keeps it, for recognising a re-send.
struct AppliedMessage {
  std::string detail;        // what it wrote (JSON array)
  std::string content_hash;  // "" for messages logged before content hashes were kept
};

// A bearer token as stored: only its public id, a salt and the hash of its secret part.
struct Credential {
  std::string token_id;
  std::string holder;  // partner or role id
  std::string salt;    // bytes
  std::string hash;    // bytes: SHA-256(salt || secret)
  std::int64_t created_ms = 0;
};

// Parameter ids as stored in the index tables, mapped from the registry.
class ParamKeys;

// Everything a write plan may do, inside the writer's transaction (one SAVEPOINT per plan).
class WriteTxn {
 public:
  // `audit_tail`: the audit chain's end, which the writer owns and appends advance (null: this process
  // does not own the audit trail and may not append to it).
  WriteTxn(Connection& db, const fhir::SearchParamRegistry& registry, const ParamKeys& keys,
           const AuditKey& audit_key, std::int64_t now_ms, AuditTail* audit_tail)
      : db_(db),
        registry_(registry),
        keys_(keys),
        audit_key_(audit_key),
        now_ms_(now_ms),
        audit_tail_(audit_tail) {}

  // Called by the writer before each plan: forgets the previous plan's correlation id, written versions
  // and deliveries.
  void begin_plan();
  // The correlation id of the request or message the plan serves (journal.hpp); deliveries carry it.
  void set_correlation(std::string id) { correlation_ = std::move(id); }
  const std::string& correlation() const { return correlation_; }
  // What the current plan has written so far (Type/id/_history/v), and how many deliveries it caused.
  const std::vector<std::string>& written() const { return written_; }
  std::size_t deliveries_caused() const { return deliveries_caused_; }
  // The message journal (journal.hpp).
  void append_journal(JournalEntry& entry);
  void advance_journal(std::int64_t id, JournalStatus status, const std::string& error, double stage_ms);
  std::vector<JournalEntry> journal(const JournalQuery& query);
  void purge_journal(std::int64_t payloads_before_ms, std::int64_t entries_before_ms);
  // Writes held for a registrar (held.hpp).
  std::int64_t append_held(const HeldWrite& held);
  std::optional<HeldWrite> read_held(std::int64_t id);
  void decide_held(std::int64_t id, const std::string& status, const std::string& by);
  // The outbox (outbox.hpp).
  void enqueue_delivery(const Delivery& delivery, std::int64_t size);
  void update_delivery(const Delivery& delivery);
  Result<Delivery> act_on_delivery(std::int64_t id, bool retry);

  std::optional<VersionRecord> read(const std::string& type, const std::string& id);
  std::optional<VersionRecord> vread(const std::string& type, const std::string& id, std::int64_t version);
  // As Store::referencing, inside the transaction: sees what earlier plans of the batch wrote.
  std::vector<std::pair<std::int64_t, std::string>> referencing(const std::string& type,
                                                                const std::string& param,
                                                                const std::string& target_type,
                                                                const std::string& target_id);
  // Ids of current resources matching the query (at most `limit`).
  std::vector<std::string> matching_ids(const fhir::SearchQuery& query, int limit);
  // Stores `resource` as the next version of type/id (version 1 when new or re-created after delete):
  // sets meta.versionId and meta.lastUpdated, serialises, and replaces the index rows.
  VersionRecord put(const std::string& type, const std::string& id, fhir::Node resource, const char* method);
  // Records a deletion (a version without body); nullopt when there was no current version.
  std::optional<VersionRecord> remove(const std::string& type, const std::string& id);

  // The inbound log. An applied message is unique per (partner, sender, control id); applied_message
  // finds it, so a re-sent message is recognised.
  std::optional<AppliedMessage> applied_message(const std::string& partner, const std::string& sender,
                                                const std::string& control_id);
  void log_inbound(const InboundMessage& message);

  // A value in store_meta (the store's own key/value settings).
  void set_meta(const std::string& key, const std::string& value);

  // Runs `plan` in a nested savepoint: its changes are undone when it returns an error, and the rest of
  // the caller's plan goes on (the audit of a failed write is still written).
  Status nested(const std::function<Status(WriteTxn&)>& plan);

  // Appends an AuditEvent to the chained audit trail (audit_log.hpp), in this transaction.
  AuditRecord append_audit(AuditRecord record);
  // For the writer. rolled_back(): the current plan was rolled back, so the chain's end goes back to
  // where the plan found it. finish(): writes the audit head, before COMMIT.
  void rolled_back();
  void finish();
  // Stores a bearer token's hash for `holder`.
  void add_credential(const Credential& credential);

  std::int64_t now_ms() const { return now_ms_; }

 private:
  Connection& db_;
  const fhir::SearchParamRegistry& registry_;
  const ParamKeys& keys_;
  const AuditKey& audit_key_;
  std::int64_t now_ms_;
  AuditTail* audit_tail_;
  AuditTail plan_tail_{};  // the chain's end when the current plan began
  bool audit_appended_ = false;
  std::string correlation_;
  std::vector<std::string> written_;
  std::size_t deliveries_caused_ = 0;
};

class Store {
 public:
  // Opens or creates the database and migrates its schema to the current version; loads the audit
  // chain's key from `audit_key_path` (empty: the database's real path + ".audit-key"), creating it only
  // while the database has no trail (open_audit_key). The registry must outlive the store. Throws
  // std::runtime_error on start-up failure.
  // `must_own`: refuse (before any connection opens the file) unless this process becomes the database's
  // owner, as a serving gateway must (DatabaseLock).
  Store(const std::string& path, const fhir::SearchParamRegistry& registry, std::string audit_key_path = {},
        WriterOptions writer_options = {}, bool must_own = false);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // True when this process created the database.
  bool created() const { return created_; }
  // True when this process owns the audit trail (audit_file.hpp): only one process may serve a database.
  bool owns_audit_log() const;
  // A key for `purpose` (e.g. sealing paging cursors), derived from the audit key: every gateway sharing
  // the key file derives the same one, and none of them is the audit key itself.
  std::array<unsigned char, 32> derived_key(std::string_view purpose) const;
  // A value from store_meta (set with WriteTxn::set_meta); nullopt when absent.
  Result<std::optional<std::string>> meta(const std::string& key);

  Result<std::optional<VersionRecord>> read(const std::string& type, const std::string& id);
  Result<std::optional<VersionRecord>> vread(const std::string& type, const std::string& id,
                                             std::int64_t version);
  // History of one resource (id non-empty) or of a whole type, newest first. `since_ms` (or INT64_MIN)
  // filters by lastUpdated; `cursor` continues a previous page. With `visible`, versions it refuses are
  // skipped before paging and not counted (the total is left out when more than kMaxCountedHistory
  // versions would have to be looked at). Errors: invalid_input on a bad cursor; the visibility's error.
  static constexpr int kMaxCountedHistory = 10000;
  Result<HistoryPage> history(const std::string& type, const std::string& id, std::int64_t since_ms,
                              int count, const std::string& cursor, const Visibility& visible = {});
  // The current resources of `type` whose reference parameter `param` points at target_type/target_id
  // (e.g. the Consents of one Patient): each one's current version row id (unique per version, so a
  // stable cache key) and JSON; a direct index lookup for the hot paths.
  Result<std::vector<std::pair<std::int64_t, std::string>>> referencing(const std::string& type,
                                                                        const std::string& param,
                                                                        const std::string& target_type,
                                                                        const std::string& target_id);
  // Errors: invalid_input on a cursor that does not belong to this query; the visibility's error. With
  // `visible`, matches it refuses are skipped before paging (every page is full, cursors stay valid) and
  // not counted in total.
  Result<SearchPage> search(const fhir::SearchQuery& query, const Visibility& visible = {});
  // The newest inbound messages that were not applied (failed or rejected), newest first.
  Result<std::vector<InboundMessage>> inbound_problems(int limit);
  // The audit trail (newest first) and one AuditEvent by its seq.
  Result<std::vector<AuditRecord>> search_audit(const AuditQuery& query);
  // How many AuditEvents `query` selects, its count aside, in the tables and the audit log file alike.
  Result<std::int64_t> count_audit(const AuditQuery& query);
  Result<std::vector<Delivery>> deliveries(const DeliveryQuery& query);
  // The pending deliveries per destination: how many, and the oldest one's creation.
  struct Queue {
    std::string destination;
    std::int64_t depth = 0;
    std::int64_t oldest_ms = 0;
  };
  Result<std::vector<Queue>> queues();
  // The message journal (journal.hpp).
  Result<std::vector<JournalEntry>> journal(const JournalQuery& query);
  Result<std::optional<JournalEntry>> journal_entry(std::int64_t id);
  Result<JournalCounts> journal_counts(std::int64_t from_ms, std::int64_t bucket_ms, int buckets);
  // The AuditEvents of a correlation id recorded since `since_ms` (audit_log.hpp).
  Result<std::vector<AuditRecord>> audits_with_correlation(const std::string& correlation_id,
                                                           std::int64_t since_ms, int limit);
  Result<std::vector<Delivery>> due_deliveries(const std::string& destination, std::int64_t now_ms,
                                               int limit);
  // Writes held for a registrar (held.hpp), newest first; `status` empty = any.
  Result<std::vector<HeldWrite>> held_writes(const std::string& status, int count, std::int64_t before_id);
  Result<std::optional<HeldWrite>> held_write(std::int64_t id);
  Result<std::optional<AuditRecord>> read_audit(std::int64_t seq);
  // Checks the whole audit chain (start-up and CLI; reads every row).
  Result<ChainCheck> verify_audit(const DeriveColumns& derive);
  Result<std::optional<Credential>> credential(const std::string& token_id);
  // Database reachable and answering.
  Status ping();

  Writer& writer() { return *writer_; }

 private:
  class ReadLease;
  // Runs f(Connection&) with a pooled read-only connection; SQLite failures become busy/internal errors.
  template <class F>
  auto with_reader(F&& f) -> decltype(f(std::declval<Connection&>()));
  std::unique_ptr<Connection> acquire_reader();
  void release_reader(std::unique_ptr<Connection> db);

  // First: taken before any connection opens and released after the last one closes (audit_file.hpp).
  std::unique_ptr<DatabaseLock> database_lock_;
  std::string path_;
  const fhir::SearchParamRegistry& registry_;
  std::unique_ptr<ParamKeys> keys_;
  AuditKey audit_key_;
  bool created_ = false;
  std::mutex readers_mutex_;
  std::vector<std::unique_ptr<Connection>> idle_readers_;
  std::unique_ptr<Writer> writer_;
};

}  // namespace fhirgate::gateway::store
