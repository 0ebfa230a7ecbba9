#pragma once
// The one place that dispatches on the wire format: FHIR JSON or FHIR XML, both to and from the JSON
// element tree. Used by the REST API (content negotiation) and `fhirgate convert`.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fhir/json.hpp"
#include "fhir/model.hpp"
#include "fhir/result.hpp"

namespace fhirgate::fhir {

enum class Format : std::uint8_t { json, xml };

const char* media_type(Format format);  // application/fhir+json or application/fhir+xml
// Guesses the format of a document from its first non-blank character ('<' means XML).
Format detect_format(std::string_view text);

// Parses a resource in either format and checks the FHIR JSON rules on the result.
Result<Node> parse_resource(const Model& model, std::string_view text, Format format);
// Sets line/column on issues whose FHIRPath location names an element of the document (JSON or XML).
void locate_issues(std::string_view text, Format format, std::vector<Issue>& issues);
// Writes a resource (or any JSON tree of a resource) in the format.
Result<std::string> write_resource(const Model& model, const Node& resource, Format format, bool pretty);

}  // namespace fhirgate::fhir
