#include "gateway/routing/router.hpp"

#include <algorithm>

#include "gateway/security/gate.hpp"

namespace fhirgate::gateway {
namespace {

bool listed(const std::vector<std::string>& list, const std::string& value) {
  return std::find(list.begin(), list.end(), value) != list.end();
}

bool routes_resource(const RouteConfig& route, const std::string& origin, const std::string& type) {
  return (route.from == "*" || route.from == origin) && route.events.empty() &&
         (route.types.empty() || listed(route.types, type));
}

}  // namespace

void Router::route(store::WriteTxn& txn, const std::string& origin, const store::VersionRecord& record,
                   const fhir::Node* resource) const {
  store::Delivery d;
  d.type = record.type;
  d.resource_id = record.id;
  d.version = record.version;
  for (const auto& route : routes_) {
    if (!routes_resource(route, origin, record.type)) continue;
    if (d.patient.empty() && record.type == "Patient") d.patient = "Patient/" + record.id;
    if (d.patient.empty() && resource) d.patient = Gate::patient_of(*resource);
    enqueue(txn, origin, route, d, static_cast<std::int64_t>(record.body.size()));
  }
}

void Router::route(store::WriteTxn& txn, const std::string& origin, const PassThrough& item) const {
  store::Delivery d;
  d.type = item.type;
  d.resource_id = item.id;
  d.event = item.event;
  d.patient = item.patient;
  d.payload = item.body;
  for (const auto& route : routes_) {
    const bool matches = item.event.empty()
                             ? routes_resource(route, origin, item.type)
                             : (route.from == "*" || route.from == origin) &&
                                   (listed(route.events, item.event) || listed(route.events, "*"));
    if (matches) enqueue(txn, origin, route, d, static_cast<std::int64_t>(item.body.size()));
  }
}

void Router::enqueue(store::WriteTxn& txn, const std::string& origin, const RouteConfig& route,
                     const store::Delivery& prototype, std::int64_t size) const {
  for (const auto& to : route.to) {
    if (to == origin) continue;
    store::Delivery d = prototype;
    d.created_ms = txn.now_ms();
    d.route = route.id;
    d.destination = to;
    d.format = route.format;
    txn.enqueue_delivery(d, size);
  }
}

}  // namespace fhirgate::gateway
