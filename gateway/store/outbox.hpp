#pragma once
// The transactional outbox: one row per delivery a write causes, inserted in the write's own commit, so
// that a crash can neither lose nor invent a delivery (docs/routing-plan.md). Rows are delivered in id
// order per destination and patient by the delivery workers.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "fhir/result.hpp"

namespace fhirgate::gateway::store {

class Connection;

struct Delivery {
  std::int64_t id = 0;  // order of creation
  std::int64_t created_ms = 0;
  std::string route;        // the configured route's id
  std::string destination;  // receiving partner id
  std::string format;       // fhir-rest fhir-message hl7v2-mllp file
  std::string type;         // the resource's type; Bundle for a FHIR message
  std::string resource_id;  // the resource's id; the message's id
  std::int64_t version = 0;        // the stored version sent; 0 when not stored (the payload is sent)
  std::string patient;             // "Patient/<id>" when the resource is about one; "" otherwise
  std::string status = "pending";  // pending delivered withheld dead discarded
  std::int64_t attempts = 0;
  std::int64_t next_attempt_ms = 0;
  std::string last_error;
  std::int64_t updated_ms = 0;
  std::string event;    // a FHIR message's event code; "" for a resource
  std::string payload;  // JSON of what is not stored (a message, a resource of a type not held); else ""
  std::string correlation_id;  // of the write that caused it (journal.hpp)
};

struct DeliveryQuery {
  std::string status;       // empty = any
  std::string destination;  // empty = any
  int count = 100;
  std::int64_t before_id = INT64_MAX;  // newest first, below this id (paging)
};

// What a delivery sends, as a reference: Type/id/_history/version for a stored version, Type/id for what
// was not stored (Bundle/<message id> for a message).
inline std::string delivered_reference(const Delivery& d) {
  return d.type + "/" + d.resource_id + (d.version ? "/_history/" + std::to_string(d.version) : "");
}

// Inserts a pending delivery and its outbound journal entry (`size`: the bytes it is about); its id.
std::int64_t enqueue_delivery(Connection& db, const Delivery& delivery, std::int64_t size);
std::vector<Delivery> list_deliveries(Connection& db, const DeliveryQuery& query);
// Pending deliveries to `destination` due at `now_ms`, oldest first, at most one per patient -- or per
// resource for data of no patient: the oldest pending one, so order is kept across retries.
std::vector<Delivery> due_deliveries(Connection& db, const std::string& destination, std::int64_t now_ms,
                                     int limit);
std::optional<Delivery> read_delivery(Connection& db, std::int64_t id);
// An operator's action: `retry` puts a dead, withheld or discarded delivery back to pending, due now, with
// a fresh count of attempts; otherwise a delivery not yet delivered is discarded. Errors: not_found,
// conflict (delivered already, or already in that state).
Result<Delivery> act_on_delivery(Connection& db, std::int64_t id, bool retry, std::int64_t now_ms);
// Records an attempt's outcome: status, attempts, next attempt and last error; the journal entry follows.
void update_delivery(Connection& db, const Delivery& delivery, std::int64_t now_ms);

}  // namespace fhirgate::gateway::store
