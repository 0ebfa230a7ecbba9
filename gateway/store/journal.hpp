#pragma once
// The message journal (docs/operators.md): one entry per inbound message or data-carrying request and
// per outbound delivery, for operators to see what came from whom, what went where, and what failed and
// why. Inbound entries are written in the same transaction as what they caused; an outbound entry is
// written with its delivery (outbox.hpp) and follows it (status, and one stage per attempt).
// Payloads are kept for a retention period, the entries longer (purge_journal).
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace fhirgate::gateway::store {

class Connection;

// What became of a journal entry: the one vocabulary of the journal, its filters and its metrics.
enum class JournalStatus : std::uint8_t {
  // inbound
  rejected,   // refused: the sender's to fix (4xx, AR/AE, a rejected row)
  stored,     // stored, or answered (a message with nothing to route)
  routed,     // stored, and deliveries are queued
  held,       // a write held for a registrar (the one identity rule): nothing applied yet
  released,   // a held write a registrar released (applied)
  failed,     // could not be stored (5xx, AE/CE): the sender should send again
  discarded,  // an operator discarded it
  // outbound, following their delivery
  delivered,
  dead_letter,
  withheld,  // consent kept it from the receiver
};
// The journal's name for it ("dead-letter" ...), and back (nullopt for an unknown name).
std::string_view to_string(JournalStatus status);
std::optional<JournalStatus> parse_journal_status(std::string_view text);
// Rejected, failed, dead letters and withheld deliveries: what operators look at.
bool is_problem(JournalStatus status);

struct JournalEntry {
  std::int64_t id = 0;  // order of creation
  std::string correlation_id;
  std::int64_t received_ms = 0;
  std::string partner;    // inbound: the sender; outbound: the receiver
  std::string direction;  // in, out
  std::string transport;  // http, mllp, folder; outbound http, mllp, file
  std::string format;     // fhir-rest, fhir-message, hl7v2, csv, xml
  std::string type;       // e.g. create Patient, transaction, ADT^A01, feed clients, Patient/1/_history/2
  std::int64_t size = 0;  // payload bytes
  JournalStatus status = JournalStatus::stored;
  std::string stages = "[]";  // JSON array of {"stage", "ms"}: milliseconds since received
  // Why it was rejected or failed, naming the field and the problem but never a value the sender sent:
  // lists, /_ops/stats and log lines show it. `detail` is the whole error (values included), for the
  // entry's own audited view.
  std::string error;
  std::string detail;
  std::string patients = "[]";   // JSON array of Patient/<id> it was about (opening its payload is audited)
  std::string resources = "[]";  // JSON array of Type/id/_history/v it resulted in
  std::int64_t delivery_id = 0;  // outbound: its delivery
  std::int64_t retry_of = 0;     // an operator's retry of this entry
  bool has_payload = false;
  std::string payload;  // read_journal only
  std::int64_t updated_ms = 0;
};

struct JournalQuery {
  std::string partner, direction, type, correlation;  // empty = any
  std::optional<JournalStatus> status;
  std::int64_t since_ms = 0;
  std::int64_t until_ms = INT64_MAX;
  std::int64_t after_id = 0;  // ids above this: then the `count` oldest of them (following never skips)
  std::int64_t before_id = INT64_MAX;
  bool problems = false;  // only rejected, failed and dead-letter entries
  int count = 50;
};

// Inserts the entry (its id is set).
void append_journal(Connection& db, JournalEntry& entry);
// Newest first, without payloads: the newest `count` matches, or with after_id the `count` right after it.
std::vector<JournalEntry> list_journal(Connection& db, const JournalQuery& query);
// The SQL list_journal runs for the query (for tests of its query plan).
std::string journal_list_sql(const JournalQuery& query);
// With its payload (when kept).
std::optional<JournalEntry> read_journal(Connection& db, std::int64_t id);
// Sets an entry's status and error, and appends a stage.
void advance_journal(Connection& db, std::int64_t id, JournalStatus status, const std::string& error,
                     const std::string& stage, double stage_ms, std::int64_t now_ms);
// The outbound entry of a delivery (0 when none).
std::int64_t journal_of_delivery(Connection& db, std::int64_t delivery_id);
// Drops payloads received before `payloads_before_ms` and entries received before `entries_before_ms`.
void purge_journal(Connection& db, std::int64_t payloads_before_ms, std::int64_t entries_before_ms);

// Counts for the dashboard over [from_ms, now].
struct JournalCounts {
  struct Series {
    std::string partner;
    std::vector<std::int64_t> in, out;  // per bucket, oldest first
  };
  std::vector<Series> partners;
  std::vector<std::pair<std::string, std::int64_t>> by_status;
};
JournalCounts count_journal(Connection& db, std::int64_t from_ms, std::int64_t bucket_ms, int buckets);

// A JSON array of stage objects, as JournalEntry::stages holds, from (name, ms) pairs.
std::string stages_json(const std::vector<std::pair<std::string, double>>& stages);

}  // namespace fhirgate::gateway::store
