#pragma once
// Supplier tags: the partner that created a record is its supplier, recorded by the gateway in the
// record's meta.tag (system kSupplierTagSystem, code = partner id) and read from there only. A supplier's
// access is an implicit permit that a patient's deny still overrides (consent.hpp). Tags a client sends
// are dropped; an update never adds one, so access that rests on consent ends when the consent does.
#include <string>
#include <string_view>
#include <vector>

#include "fhir/json.hpp"

namespace fhirgate::gateway {

inline constexpr std::string_view kSupplierTagSystem = "https://fhir.partnership.example/CodeSystem/supplier";

// The partners a resource's meta.tag names as its suppliers.
std::vector<std::string> suppliers_of(const fhir::Node& resource);
// The same from a resource's `meta` element alone (fhir::parse_json_member of a stored resource).
std::vector<std::string> suppliers_in_meta(const fhir::Node& meta);

// Gives a version being written its supplier tags: those of `held` (the live version it replaces; null for
// a record being created), plus `creator` when not empty (only a write that creates the record passes
// one). Every supplier tag the client sent is dropped; its other tags stay.
void set_supplier_tags(fhir::Node& resource, const fhir::Node* held, const std::string& creator);

}  // namespace fhirgate::gateway
