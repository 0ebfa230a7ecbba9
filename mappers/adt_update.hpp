#pragma once
// Applying an ADT patient update to the Patient already held, with HL7 v2 update semantics.
//
// In v2 an empty field means "no information: leave what the receiver holds", and the null value `""`
// means "delete it". So each Patient element an ADT message can carry is taken from the message when
// its fields hold a value, removed when they hold `""`, and otherwise kept; elements no ADT field maps
// to (contact, communication, link, extensions, ...) are always kept. Identifiers are merged per system:
// the message's identifiers replace those of the same system, other systems' identifiers (another
// partner's local number, say) stay. `active` and `link` (set by merges) are never touched here.
#include "fhir/json.hpp"
#include "mappers/hl7v2.hpp"

namespace fhirgate::mappers {

// `mapped` is adt_to_patient(adt); `existing` the stored Patient (its id and meta are kept). Returns the
// Patient to store, members in R4 element order.
fhir::Node apply_adt_update(const fhir::Node& existing, fhir::Node mapped, const Message& adt);

// `mapped` without the elements whose v2 fields hold the null value `""` (for a Patient that is new).
fhir::Node drop_v2_nulls(fhir::Node mapped, const Message& adt);

// Puts `value` at `key` in a Patient, keeping R4 element order (replaces an existing member).
void set_patient_element(fhir::Node& patient, std::string_view key, fhir::Node value);

}  // namespace fhirgate::mappers
