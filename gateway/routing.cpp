#include "gateway/routing.hpp"

#include <algorithm>

#include "gateway/security.hpp"

namespace fhirgate::gateway {

void Router::on_write(store::WriteTxn& txn, const store::VersionRecord& record,
                      const fhir::Node* resource) const {
  for (const auto& route : routes_) {
    if (route.from != "*" && route.from != txn.origin()) continue;
    if (!route.types.empty() &&
        std::find(route.types.begin(), route.types.end(), record.type) == route.types.end())
      continue;
    for (const auto& to : route.to) {
      if (to == txn.origin()) continue;
      store::Delivery d;
      d.created_ms = txn.now_ms();
      d.route = route.id;
      d.destination = to;
      d.format = route.format;
      d.type = record.type;
      d.resource_id = record.id;
      d.version = record.version;
      d.patient = record.type == "Patient" ? "Patient/" + record.id
                                           : (resource ? Security::patient_of(*resource) : std::string());
      txn.enqueue_delivery(d);
    }
  }
}

}  // namespace fhirgate::gateway
