#include "gateway/store/journal.hpp"

#include <sqlite3.h>

#include <algorithm>
#include <cstdio>
#include <map>

#include "fhir/json.hpp"
#include "gateway/store/sqlite.hpp"

namespace fhirgate::gateway::store {
namespace {

constexpr const char* kColumns =
    "id, correlation, received, partner, direction, transport, format, type, size, status, stages, error, "
    "resources, delivery, retry_of, payload IS NOT NULL, updated, detail, patients";

struct StatusName {
  JournalStatus status;
  std::string_view name;
};
constexpr StatusName kStatusNames[] = {
    {JournalStatus::rejected, "rejected"},       {JournalStatus::stored, "stored"},
    {JournalStatus::routed, "routed"},           {JournalStatus::held, "held"},
    {JournalStatus::released, "released"},       {JournalStatus::failed, "failed"},
    {JournalStatus::discarded, "discarded"},     {JournalStatus::delivered, "delivered"},
    {JournalStatus::dead_letter, "dead-letter"}, {JournalStatus::withheld, "withheld"},
};

JournalEntry entry_from(Statement& stmt) {
  JournalEntry e;
  e.id = stmt.int64(0);
  e.correlation_id = stmt.text(1);
  e.received_ms = stmt.int64(2);
  e.partner = stmt.text(3);
  e.direction = stmt.text(4);
  e.transport = stmt.text(5);
  e.format = stmt.text(6);
  e.type = stmt.text(7);
  e.size = stmt.int64(8);
  e.status = parse_journal_status(stmt.text(9)).value_or(JournalStatus::failed);
  e.stages = stmt.text(10);
  e.error = stmt.text(11);
  e.resources = stmt.text(12);
  e.delivery_id = stmt.int64(13);
  e.retry_of = stmt.int64(14);
  e.has_payload = stmt.int64(15) != 0;
  e.updated_ms = stmt.int64(16);
  e.detail = stmt.text(17);
  e.patients = stmt.text(18);
  return e;
}

std::string stage_object(const std::string& name, double ms) {
  char number[32];
  std::snprintf(number, sizeof number, "%.1f", ms);
  return "{\"stage\":" + fhir::write_json(fhir::Node::string(name)) + ",\"ms\":" + number + "}";
}

// The text filters a query asks for, column and value, in the order of their `?` in journal_list_sql.
std::vector<std::pair<std::string_view, std::string_view>> text_filters(const JournalQuery& q) {
  std::vector<std::pair<std::string_view, std::string_view>> out;
  const std::string_view status = q.status ? to_string(*q.status) : std::string_view();
  for (const auto& [column, value] : {std::pair<std::string_view, std::string_view>{"partner", q.partner},
                                      {"direction", q.direction},
                                      {"status", status},
                                      {"type", q.type},
                                      {"correlation", q.correlation}}) {
    if (!value.empty()) out.emplace_back(column, value);
  }
  return out;
}

}  // namespace

std::string_view to_string(JournalStatus status) {
  for (const auto& s : kStatusNames)
    if (s.status == status) return s.name;
  return "failed";
}

std::optional<JournalStatus> parse_journal_status(std::string_view text) {
  for (const auto& s : kStatusNames)
    if (s.name == text) return s.status;
  return std::nullopt;
}

bool is_problem(JournalStatus status) {
  return status == JournalStatus::rejected || status == JournalStatus::failed ||
         status == JournalStatus::dead_letter || status == JournalStatus::withheld;
}

std::string stages_json(const std::vector<std::pair<std::string, double>>& stages) {
  std::string out = "[";
  for (const auto& [name, ms] : stages) {
    if (out.size() > 1) out += ',';
    out += stage_object(name, ms);
  }
  return out + "]";
}

void append_journal(Connection& db, JournalEntry& e) {
  auto stmt = db.prepare(
      "INSERT INTO journal (correlation, received, partner, direction, transport, format, type, size, "
      "status, stages, error, resources, delivery, retry_of, payload, updated, detail, patients) "
      "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
  stmt.bind(1, e.correlation_id)
      .bind(2, e.received_ms)
      .bind(3, e.partner)
      .bind(4, e.direction)
      .bind(5, e.transport)
      .bind(6, e.format)
      .bind(7, e.type)
      .bind(8, e.size)
      .bind(9, to_string(e.status))
      .bind(10, e.stages)
      .bind(11, e.error)
      .bind(12, e.resources);
  if (e.delivery_id)
    stmt.bind(13, e.delivery_id);
  else
    stmt.bind_null(13);
  if (e.retry_of)
    stmt.bind(14, e.retry_of);
  else
    stmt.bind_null(14);
  if (e.has_payload)
    stmt.bind(15, e.payload);
  else
    stmt.bind_null(15);
  stmt.bind(16, e.received_ms).bind(17, e.detail).bind(18, e.patients).run();
  e.id = sqlite3_last_insert_rowid(db.handle());
}

std::string journal_list_sql(const JournalQuery& q) {
  // Only the filters asked for go into the SQL, so that SQLite can walk the index of the most selective
  // one (journal_partner, journal_status, journal_type, journal_correlation) instead of the whole
  // journal: a filter written as (? = '' OR column = ?) can use no index. Values are bound, never written
  // into the text, which is what the prepared statements are cached by.
  // Without ANALYZE statistics SQLite would answer the problems' IN list from journal_status and sort all
  // of them; their partial index gives the newest at once.
  std::string sql = std::string("SELECT ") + kColumns + " FROM journal" +
                    (q.problems ? " INDEXED BY journal_problems" : "") + " WHERE id > ? AND id < ?";
  if (q.since_ms > 0) sql += " AND received >= ?";
  if (q.until_ms < INT64_MAX) sql += " AND received <= ?";
  for (const auto& filter : text_filters(q)) sql += " AND " + std::string(filter.first) + " = ?";
  // The same words as journal_problems' WHERE: SQLite uses a partial index only for a query that says so.
  if (q.problems) sql += " AND status IN ('rejected', 'failed', 'dead-letter')";
  return sql + " ORDER BY id " + (q.after_id > 0 ? "ASC" : "DESC") + " LIMIT ?";
}

std::vector<JournalEntry> list_journal(Connection& db, const JournalQuery& q) {
  auto stmt = db.prepare(journal_list_sql(q));
  int i = 3;
  stmt.bind(1, q.after_id).bind(2, q.before_id);
  if (q.since_ms > 0) stmt.bind(i++, q.since_ms);
  if (q.until_ms < INT64_MAX) stmt.bind(i++, q.until_ms);
  for (const auto& filter : text_filters(q)) stmt.bind(i++, filter.second);
  stmt.bind(i, std::int64_t{q.count});
  std::vector<JournalEntry> out;
  while (stmt.step()) out.push_back(entry_from(stmt));
  if (q.after_id > 0) std::reverse(out.begin(), out.end());  // the oldest after the cursor, newest first
  return out;
}

std::optional<JournalEntry> read_journal(Connection& db, std::int64_t id) {
  auto stmt = db.prepare(std::string("SELECT ") + kColumns + ", payload FROM journal WHERE id = ?");
  stmt.bind(1, id);
  if (!stmt.step()) return std::nullopt;
  JournalEntry e = entry_from(stmt);
  if (e.has_payload) e.payload = stmt.text(19);
  return e;
}

void advance_journal(Connection& db, std::int64_t id, JournalStatus status, const std::string& error,
                     const std::string& stage, double stage_ms, std::int64_t now_ms) {
  // The stage is appended to the JSON array in place: `stages` always ends with ']'.
  db.prepare(
        "UPDATE journal SET status = ?, error = ?, updated = ?, "
        "stages = CASE WHEN stages = '[]' THEN '[' || ?4 || ']' "
        "ELSE substr(stages, 1, length(stages) - 1) || ',' || ?4 || ']' END WHERE id = ?5")
      .bind(1, to_string(status))
      .bind(2, error)
      .bind(3, now_ms)
      .bind(4, stage_object(stage, stage_ms))
      .bind(5, id)
      .run();
}

std::int64_t journal_of_delivery(Connection& db, std::int64_t delivery_id) {
  auto stmt = db.prepare("SELECT id FROM journal WHERE delivery = ?");
  stmt.bind(1, delivery_id);
  return stmt.step() ? stmt.int64(0) : 0;
}

void purge_journal(Connection& db, std::int64_t payloads_before_ms, std::int64_t entries_before_ms) {
  db.prepare("DELETE FROM journal WHERE received < ?").bind(1, entries_before_ms).run();
  db.prepare("UPDATE journal SET payload = NULL WHERE received < ? AND payload IS NOT NULL")
      .bind(1, payloads_before_ms)
      .run();
}

// Both counts read only the window's part of journal_received, which covers the columns they need;
// left to itself SQLite walks the whole of journal_partner or journal_status to save the GROUP BY's sort.
JournalCounts count_journal(Connection& db, std::int64_t from_ms, std::int64_t bucket_ms, int buckets) {
  JournalCounts out;
  std::map<std::string, JournalCounts::Series> series;
  auto stmt = db.prepare(
      "SELECT partner, direction, (received - ?1) / ?2 AS bucket, count(*) FROM journal "
      "INDEXED BY journal_received WHERE received >= ?1 GROUP BY partner, direction, bucket");
  stmt.bind(1, from_ms).bind(2, bucket_ms);
  while (stmt.step()) {
    const auto bucket = stmt.int64(2);
    if (bucket < 0 || bucket >= buckets) continue;
    auto& s = series[std::string(stmt.text(0))];
    if (s.in.empty()) {
      s.partner = stmt.text(0);
      s.in.assign(static_cast<std::size_t>(buckets), 0);
      s.out.assign(static_cast<std::size_t>(buckets), 0);
    }
    (stmt.text(1) == "out" ? s.out : s.in)[static_cast<std::size_t>(bucket)] += stmt.int64(3);
  }
  for (auto& [partner, s] : series) out.partners.push_back(std::move(s));
  auto statuses = db.prepare(
      "SELECT status, count(*) FROM journal INDEXED BY journal_received WHERE received >= ? "
      "GROUP BY status ORDER BY status");
  statuses.bind(1, from_ms);
  while (statuses.step()) out.by_status.emplace_back(std::string(statuses.text(0)), statuses.int64(1));
  return out;
}

}  // namespace fhirgate::gateway::store
