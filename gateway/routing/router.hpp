#pragma once
// Outbound routing: the router turns each write, and each thing passed through unstored (a FHIR message, a
// resource of a type not held), into the deliveries its routes ask for, recorded in the write's own
// transaction (store/outbox.hpp). Delivering them is the workers' job (delivery.hpp).
#include <vector>

#include "fhir/json.hpp"
#include "gateway/config/config.hpp"
#include "gateway/store/store.hpp"

namespace fhirgate::gateway {

class Router : public store::WriteListener {
 public:
  explicit Router(std::vector<RouteConfig> routes) : routes_(std::move(routes)) {}

  // One pending delivery per matching route and receiver. A route matches by the origin partner ("*":
  // any), then a message by its event (routes with `events`) or a resource by its type (routes without
  // `events`; any type when `types` is empty). A partner is never sent back what it wrote.
  void on_write(store::WriteTxn& txn, const store::VersionRecord& record,
                const fhir::Node* resource) const override;
  void on_pass_through(store::WriteTxn& txn, const store::PassThrough& item) const override;

 private:
  void enqueue(store::WriteTxn& txn, const RouteConfig& route, const store::Delivery& prototype,
               std::int64_t size) const;
  std::vector<RouteConfig> routes_;
};

}  // namespace fhirgate::gateway
