#pragma once
// FHIR XML <-> the JSON element tree, for every R4 resource, following the spec's representation rules
// (R4 xml.html and json.html): element order and arrays from the Model, choice types, primitives as
// `value` attributes with `id`/extension (JSON `_name`), Element.id and Extension.url as attributes,
// the Narrative div as XHTML, contained and nested resources, the FHIR namespace. Decimals keep their
// lexical form both ways.
//
// Parsing is hardened: no network, no DTDs (a DOCTYPE is refused before parsing, so external entities
// and entity expansion cannot happen), bounded depth and size. Pure and thread-safe.
#include <cstddef>
#include <string>
#include <string_view>

#include "fhir/json.hpp"
#include "fhir/model.hpp"
#include "fhir/result.hpp"

namespace fhirgate::fhir {

struct XmlLimits {
  std::size_t max_depth = 128;
  std::size_t max_bytes = 64 * 1024 * 1024;
};

// Parses a FHIR XML resource into the JSON tree. Errors: invalid_input with line/column for malformed
// XML, a DOCTYPE, too deep/large input; unprocessable (with the element's location) for XML that is
// well-formed but not FHIR (unknown element, wrong namespace, a value that is not valid for its
// JSON type such as a decimal that is not a number). Well-formedness is decided first: a document that
// is not well-formed is invalid_input even where it is not FHIR either.
Result<Node> xml_to_json(const Model& model, std::string_view xml, const XmlLimits& limits = {});

// Writes the resource as FHIR XML (with an XML declaration when `declaration`), indented when `pretty`.
// Errors: unprocessable naming the first member the model does not know (it cannot be placed in XML).
Result<std::string> json_to_xml(const Model& model, const Node& resource, bool pretty = false,
                                bool declaration = true);

}  // namespace fhirgate::fhir
