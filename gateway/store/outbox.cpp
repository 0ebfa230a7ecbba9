#include "gateway/store/outbox.hpp"

#include <sqlite3.h>

#include "fhir/json.hpp"
#include "gateway/store/journal.hpp"
#include "gateway/store/sqlite.hpp"

namespace fhirgate::gateway::store {
namespace {

constexpr const char* kColumns =
    "id, created, route, destination, format, type, resource_id, version, patient, status, attempts, "
    "next_attempt, last_error, updated, event, payload, correlation";

Delivery delivery_from(Statement& stmt) {
  Delivery d;
  d.id = stmt.int64(0);
  d.created_ms = stmt.int64(1);
  d.route = stmt.text(2);
  d.destination = stmt.text(3);
  d.format = stmt.text(4);
  d.type = stmt.text(5);
  d.resource_id = stmt.text(6);
  d.version = stmt.int64(7);
  d.patient = stmt.text(8);
  d.status = stmt.text(9);
  d.attempts = stmt.int64(10);
  d.next_attempt_ms = stmt.int64(11);
  d.last_error = stmt.text(12);
  d.updated_ms = stmt.int64(13);
  d.event = stmt.text(14);
  d.payload = stmt.text(15);
  d.correlation_id = stmt.text(16);
  return d;
}

// The journal's view of a delivery's state.
JournalStatus journal_status(const Delivery& d) {
  if (d.status == "pending") return d.attempts ? JournalStatus::failed : JournalStatus::routed;
  if (d.status == "dead") return JournalStatus::dead_letter;
  if (d.status == "delivered") return JournalStatus::delivered;
  if (d.status == "withheld") return JournalStatus::withheld;
  return JournalStatus::discarded;
}

// The stage a delivery's update adds to its journal entry.
std::string journal_stage(const Delivery& d) {
  if (d.status == "pending")
    return d.attempts ? "attempt " + std::to_string(d.attempts) + " failed" : "retry requested";
  if (d.status == "delivered") return "delivered (attempt " + std::to_string(d.attempts) + ")";
  if (d.status == "dead" && d.attempts)
    return "dead-letter (attempt " + std::to_string(d.attempts) + " failed)";
  return std::string(to_string(journal_status(d)));
}

}  // namespace

std::int64_t enqueue_delivery(Connection& db, const Delivery& d, std::int64_t size) {
  db.prepare(
        "INSERT INTO delivery (created, route, destination, format, type, resource_id, version, patient, "
        "status, attempts, next_attempt, last_error, updated, event, payload, correlation) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'pending', 0, ?, '', ?, ?, ?, ?)")
      .bind(1, d.created_ms)
      .bind(2, d.route)
      .bind(3, d.destination)
      .bind(4, d.format)
      .bind(5, d.type)
      .bind(6, d.resource_id)
      .bind(7, d.version)
      .bind(8, d.patient)
      .bind(9, d.created_ms)
      .bind(10, d.created_ms)
      .bind(11, d.event)
      .bind(12, d.payload)
      .bind(13, d.correlation_id)
      .run();
  const std::int64_t id = sqlite3_last_insert_rowid(db.handle());
  JournalEntry entry;
  entry.correlation_id = d.correlation_id;
  entry.received_ms = d.created_ms;
  entry.partner = d.destination;
  entry.direction = "out";
  entry.transport = d.format == "hl7v2-mllp" ? "mllp" : d.format == "file" ? "file" : "http";
  entry.format = d.format == "hl7v2-mllp" ? "hl7v2" : d.format == "file" ? "fhir-bundle" : d.format;
  entry.type = d.event.empty() ? delivered_reference(d) : d.event;
  entry.size = size;
  entry.status = JournalStatus::routed;
  entry.stages = stages_json({{"routed", 0.0}});
  entry.resources = "[" + fhir::write_json(fhir::Node::string(delivered_reference(d))) + "]";
  entry.delivery_id = id;
  append_journal(db, entry);
  return id;
}

std::vector<Delivery> list_deliveries(Connection& db, const DeliveryQuery& q) {
  auto stmt =
      db.prepare(std::string("SELECT ") + kColumns +
                 " FROM delivery WHERE id < ? AND (? = '' OR status = ?) AND (? = '' OR destination = ?) "
                 "ORDER BY id DESC LIMIT ?");
  stmt.bind(1, q.before_id)
      .bind(2, q.status)
      .bind(3, q.status)
      .bind(4, q.destination)
      .bind(5, q.destination)
      .bind(6, std::int64_t{q.count});
  std::vector<Delivery> out;
  while (stmt.step()) out.push_back(delivery_from(stmt));
  return out;
}

std::vector<Delivery> due_deliveries(Connection& db, const std::string& destination, std::int64_t now_ms,
                                     int limit) {
  auto stmt =
      db.prepare(std::string("SELECT ") + kColumns +
                 " FROM delivery d WHERE status = 'pending' AND destination = ? AND next_attempt <= ? "
                 "AND NOT EXISTS (SELECT 1 FROM delivery e WHERE e.status = 'pending' AND "
                 "e.destination = d.destination AND e.patient = d.patient AND e.id < d.id AND "
                 "(d.patient <> '' OR (e.type = d.type AND e.resource_id = d.resource_id))) "
                 "ORDER BY id LIMIT ?");
  stmt.bind(1, destination).bind(2, now_ms).bind(3, std::int64_t{limit});
  std::vector<Delivery> out;
  while (stmt.step()) out.push_back(delivery_from(stmt));
  return out;
}

std::optional<Delivery> read_delivery(Connection& db, std::int64_t id) {
  auto stmt = db.prepare(std::string("SELECT ") + kColumns + " FROM delivery WHERE id = ?");
  stmt.bind(1, id);
  if (!stmt.step()) return std::nullopt;
  return delivery_from(stmt);
}

Result<Delivery> act_on_delivery(Connection& db, std::int64_t id, bool retry, std::int64_t now_ms) {
  auto d = read_delivery(db, id);
  if (!d) return Error::make(ErrorCode::not_found, "No delivery " + std::to_string(id));
  if (d->status == "delivered" || (retry && d->status == "pending") || (!retry && d->status == "discarded"))
    return Error::make(ErrorCode::conflict, "Delivery " + std::to_string(id) + " is " + d->status);
  if (retry) {
    d->status = "pending";
    d->attempts = 0;
    d->next_attempt_ms = now_ms;
  } else {
    d->status = "discarded";
  }
  update_delivery(db, *d, now_ms);
  return *d;
}

void update_delivery(Connection& db, const Delivery& d, std::int64_t now_ms) {
  if (const auto entry = journal_of_delivery(db, d.id))
    advance_journal(db, entry, journal_status(d), d.status == "delivered" ? "" : d.last_error,
                    journal_stage(d), static_cast<double>(now_ms - d.created_ms), now_ms);
  db.prepare(
        "UPDATE delivery SET status = ?, attempts = ?, next_attempt = ?, last_error = ?, updated = ? WHERE "
        "id = ?")
      .bind(1, d.status)
      .bind(2, d.attempts)
      .bind(3, d.next_attempt_ms)
      .bind(4, d.last_error)
      .bind(5, now_ms)
      .bind(6, d.id)
      .run();
}

}  // namespace fhirgate::gateway::store
