#pragma once
// Outbound routing: the router turns each write, and each thing passed through unstored (a FHIR message,
// a resource of a type not held), into the deliveries its routes ask for, recorded in the write's own
// transaction (store/outbox.hpp) as an explicit step of the write plan (stages/write.hpp). Delivering
// them is the workers' job (delivery.hpp).
#include <string>
#include <vector>

#include "fhir/json.hpp"
#include "gateway/config/config.hpp"
#include "gateway/store/store.hpp"

namespace fhirgate::gateway {

// What passes through the gateway without being stored: a FHIR message, or a resource of a type the
// gateway does not hold (in a transaction or batch).
struct PassThrough {
  std::string type;     // the resource's type; Bundle for a message
  std::string id;       // the resource's id; the message's id
  std::string event;    // the message's event code; "" for a resource
  std::string patient;  // "Patient/<id>" it is about, or ""
  std::string body;     // JSON
};

class Router {
 public:
  explicit Router(std::vector<RouteConfig> routes) : routes_(std::move(routes)) {}

  // One pending delivery per matching route and receiver, in `txn`. A route matches by the origin
  // partner (the partner whose data it is; "*" routes any), then a message by its event (routes with
  // `events`) or a resource by its type (routes without `events`; any type when `types` is empty). A
  // partner is never sent back what it wrote. `resource` is null for a deletion.
  void route(store::WriteTxn& txn, const std::string& origin, const store::VersionRecord& record,
             const fhir::Node* resource) const;
  void route(store::WriteTxn& txn, const std::string& origin, const PassThrough& item) const;

 private:
  void enqueue(store::WriteTxn& txn, const std::string& origin, const RouteConfig& route,
               const store::Delivery& prototype, std::int64_t size) const;
  std::vector<RouteConfig> routes_;
};

}  // namespace fhirgate::gateway
