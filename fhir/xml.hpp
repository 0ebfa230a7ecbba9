#pragma once
// FHIR XML <-> the JSON element tree, for every R4 resource, following the spec's representation rules
// (R4 xml.html and json.html): element order and arrays from the Model, choice types, primitives as
// `value` attributes with `id`/extension (JSON `_name`), Element.id and Extension.url as attributes,
// the Narrative div as XHTML, contained and nested resources, the FHIR namespace. Decimals keep their
// lexical form both ways.
//
// Parsing is hardened: no network, no DTDs (a DOCTYPE is refused before parsing, so external entities
// and entity expansion cannot happen), bounded depth and size. Pure and thread-safe.
//
// The same parser also hands the markup of any XML text to a visitor, for rules on XHTML such as the
// narrative's (fhir/narrative.hpp).
#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <vector>

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

// Sets line/column on every issue whose expression (Patient.name[0].given[1]) names an element of the
// FHIR XML document `xml` (or, for an absent element, its nearest present ancestor), as
// locate_issues() does for JSON. The column is where libxml2 finished reading the element's start tag.
void locate_xml_issues(std::string_view xml, std::vector<Issue>& issues);

// Writes the resource as FHIR XML (with an XML declaration when `declaration`), indented when `pretty`.
// Errors: unprocessable naming the first member the model does not know (it cannot be placed in XML).
Result<std::string> json_to_xml(const Model& model, const Node& resource, bool pretty = false,
                                bool declaration = true);

// An attribute as the parser reports it. The views are valid during the visitor's call only.
struct XmlAttribute {
  std::string_view ns;     // namespace URI; empty for an unprefixed attribute
  std::string_view name;   // local name
  std::string_view value;  // character and entity references decoded
};

// Receives the markup of a document read by read_xml_markup(), in document order: each element's start
// with its attributes (namespace declarations are not attributes), and its character data, possibly in
// several chunks. Comments and processing instructions are not reported. A call that returns false
// ends the visit: no further calls are made.
class XmlMarkupVisitor {
 public:
  virtual bool element(std::string_view ns, std::string_view name,
                       std::span<const XmlAttribute> attributes) = 0;
  virtual bool text(std::string_view text) = 0;

 protected:
  ~XmlMarkupVisitor() = default;
};

// Reads `xml` with the hardened parser into `visitor`, to the end of the document even after the visitor
// stopped listening. Errors: invalid_input with line/column, as xml_to_json gives them (a DOCTYPE,
// too deep or large, not well-formed).
Status read_xml_markup(std::string_view xml, XmlMarkupVisitor& visitor, const XmlLimits& limits = {});

}  // namespace fhirgate::fhir
