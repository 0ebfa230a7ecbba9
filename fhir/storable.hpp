#pragma once
// Whether a resource can be stored and then served in every format. FHIR JSON can escape almost anything
// in a string, FHIR XML cannot; and a narrative is markup that clients render. A write that stored such
// content would make later reads fail to serialize, or hand clients XHTML that FHIR forbids.
#include "fhir/json.hpp"
#include "fhir/model.hpp"
#include "fhir/result.hpp"

namespace fhirgate::fhir {

// Checks, in one walk of the tree typed by the model:
// - every string (the values of primitives and their `_name` ids and extensions, ids, resourceType,
//   member names, everything) holds only characters both formats carry: no control character but tab,
//   LF and CR, well-formed UTF-8, no U+FFFE or U+FFFF (fhir::first_unrepresentable);
// - every Narrative.div (an xhtml element in the model, at any depth: contained resources, Bundle entries,
//   Composition sections, ...) is FHIR narrative (fhir::narrative_problems).
// Nothing else: whether the resource is valid FHIR is the Validator's question.
//
// Errors: unprocessable with one issue per problem (severity error, code invalid, `expression` the
// FHIRPath location such as Patient.name[0].family, Patient.name[0].given[1].extension[0].valueString
// for a string in `_given`, or Bundle.entry[2].resource.text.div), whose diagnostics name what is wrong
// without quoting the value, which may be patient data. At most 100 such issues, then one saying that
// more were found. Pure and thread-safe.
Status check_storable(const Model& model, const Node& resource);

}  // namespace fhirgate::fhir
