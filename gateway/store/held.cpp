#include "gateway/store/held.hpp"

#include <sqlite3.h>

#include "gateway/store/sqlite.hpp"

namespace fhirgate::gateway::store {
namespace {

constexpr const char* kColumns =
    "id, created, correlation, partner, entry, type, target, patient, merge, resource, context, status, "
    "decided_by, decided, journal";

HeldWrite held_from(Statement& stmt) {
  HeldWrite h;
  h.id = stmt.int64(0);
  h.created_ms = stmt.int64(1);
  h.correlation_id = stmt.text(2);
  h.partner = stmt.text(3);
  h.entry = stmt.text(4);
  h.type = stmt.text(5);
  h.target = stmt.text(6);
  h.patient = stmt.text(7);
  h.merge = stmt.text(8);
  h.resource = stmt.text(9);
  h.context = stmt.text(10);
  h.status = stmt.text(11);
  h.decided_by = stmt.text(12);
  h.decided_ms = stmt.int64(13);
  h.journal_id = stmt.is_null(14) ? 0 : stmt.int64(14);
  return h;
}

}  // namespace

std::int64_t append_held(Connection& db, const HeldWrite& h) {
  auto stmt = db.prepare(
      "INSERT INTO held_write (created, correlation, partner, entry, type, target, patient, merge, resource, "
      "context, status, journal) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'held', ?)");
  stmt.bind(1, h.created_ms)
      .bind(2, h.correlation_id)
      .bind(3, h.partner)
      .bind(4, h.entry)
      .bind(5, h.type)
      .bind(6, h.target)
      .bind(7, h.patient)
      .bind(8, h.merge)
      .bind(9, h.resource)
      .bind(10, h.context);
  if (h.journal_id)
    stmt.bind(11, h.journal_id);
  else
    stmt.bind_null(11);
  stmt.run();
  return sqlite3_last_insert_rowid(db.handle());
}

std::vector<HeldWrite> list_held(Connection& db, const std::string& status, int count,
                                 std::int64_t before_id) {
  auto stmt = db.prepare(std::string("SELECT ") + kColumns +
                         " FROM held_write WHERE id < ? AND (? = '' OR status = ?) ORDER BY id DESC LIMIT ?");
  stmt.bind(1, before_id).bind(2, status).bind(3, status).bind(4, std::int64_t{count});
  std::vector<HeldWrite> out;
  while (stmt.step()) out.push_back(held_from(stmt));
  return out;
}

std::optional<HeldWrite> read_held(Connection& db, std::int64_t id) {
  auto stmt = db.prepare(std::string("SELECT ") + kColumns + " FROM held_write WHERE id = ?");
  stmt.bind(1, id);
  if (!stmt.step()) return std::nullopt;
  return held_from(stmt);
}

void decide_held(Connection& db, std::int64_t id, const std::string& status, const std::string& by,
                 std::int64_t now_ms) {
  db.prepare("UPDATE held_write SET status = ?, decided_by = ?, decided = ? WHERE id = ?")
      .bind(1, status)
      .bind(2, by)
      .bind(3, now_ms)
      .bind(4, id)
      .run();
}

}  // namespace fhirgate::gateway::store
