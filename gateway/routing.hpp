#pragma once
// Outbound routing, first part: the router turns each write into the deliveries its routes ask for,
// recorded in the write's own transaction (store/outbox.hpp). Delivering them is the workers' job
// (docs/routing-plan.md: not built yet).
#include <vector>

#include "fhir/json.hpp"
#include "gateway/config.hpp"
#include "gateway/store/store.hpp"

namespace fhirgate::gateway {

class Router {
 public:
  explicit Router(std::vector<RouteConfig> routes) : routes_(std::move(routes)) {}

  // The store's write listener: one pending delivery per matching route and receiver. A route matches a
  // write by its origin partner ("*" any) and resource type (any when the route lists none); a partner
  // is never sent its own write back.
  void on_write(store::WriteTxn& txn, const store::VersionRecord& record, const fhir::Node* resource) const;

 private:
  std::vector<RouteConfig> routes_;
};

}  // namespace fhirgate::gateway
