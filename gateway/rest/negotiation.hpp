#pragma once
// HTTP content negotiation and Prefer handling for the FHIR API (R4 http.html#mime-type, #prefer).
#include <cstdint>
#include <string_view>

#include "fhir/formats.hpp"
#include "fhir/result.hpp"

namespace fhirgate::gateway::rest {

// The response format from `_format` (which wins) and then the Accept header: the acceptable media range
// with the highest q-value (the first listed on a tie; wildcards mean JSON). No Accept means JSON.
// Errors: not_acceptable naming what was asked for.
Result<fhir::Format> negotiate_response_format(std::string_view format_param, std::string_view accept);

enum class BodyKind : std::uint8_t { fhir_json, fhir_xml, form };
// The request body's format from Content-Type (parameters such as charset=utf-8 allowed; another charset
// is refused). Errors: unsupported_media_type.
Result<BodyKind> classify_request_body(std::string_view content_type);

struct Prefer {
  enum class Return : std::uint8_t { representation, minimal, operation_outcome };
  Return return_kind = Return::representation;
  bool strict = false;  // handling=strict
};
Prefer parse_prefer(std::string_view header);

}  // namespace fhirgate::gateway::rest
