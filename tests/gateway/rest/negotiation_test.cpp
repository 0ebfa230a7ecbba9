#include "gateway/rest/negotiation.hpp"

#include <doctest/doctest.h>

namespace fhirgate::gateway::rest {
namespace {

TEST_CASE("response format: _format wins over Accept, q-values and wildcards count") {
  using fhir::Format;
  CHECK(*negotiate_response_format("", "") == Format::json);
  CHECK(*negotiate_response_format("json", "application/fhir+xml") == Format::json);
  CHECK(*negotiate_response_format("application/fhir+json", "") == Format::json);
  CHECK(*negotiate_response_format("xml", "") == Format::xml);
  CHECK(*negotiate_response_format("text/xml", "application/fhir+json") == Format::xml);
  CHECK(*negotiate_response_format("application/fhir+xml", "") == Format::xml);
  CHECK(negotiate_response_format("turtle", "").error().code == ErrorCode::not_acceptable);
  CHECK(*negotiate_response_format("", "application/fhir+xml") == Format::xml);
  CHECK(*negotiate_response_format("", "application/fhir+json;q=0.5, application/fhir+xml;q=0.9") ==
        Format::xml);
  CHECK(*negotiate_response_format("", "application/fhir+xml;q=0.5, application/fhir+json") == Format::json);
  CHECK(*negotiate_response_format("", "application/xml, application/json") ==
        Format::xml);  // first on a tie
  CHECK(*negotiate_response_format("", "text/html, */*;q=0.1") == Format::json);
  CHECK(*negotiate_response_format("", "application/*") == Format::json);
  CHECK(negotiate_response_format("", "text/html").error().code == ErrorCode::not_acceptable);
  CHECK(negotiate_response_format("", "application/json;q=0").error().code == ErrorCode::not_acceptable);
  CHECK(*negotiate_response_format("", "Application/FHIR+JSON; q=0.8") == Format::json);
}

TEST_CASE("request bodies: FHIR JSON or a search form, UTF-8 only") {
  CHECK(*classify_request_body("application/fhir+json") == BodyKind::fhir_json);
  CHECK(*classify_request_body("application/json; charset=UTF-8") == BodyKind::fhir_json);
  CHECK(*classify_request_body("application/x-www-form-urlencoded") == BodyKind::form);
  CHECK(*classify_request_body("application/fhir+xml") == BodyKind::fhir_xml);
  CHECK(*classify_request_body("text/xml; charset=utf-8") == BodyKind::fhir_xml);
  CHECK(*classify_request_body("application/xml") == BodyKind::fhir_xml);
  CHECK(classify_request_body("").error().code == ErrorCode::unsupported_media_type);
  CHECK(classify_request_body("text/plain").error().code == ErrorCode::unsupported_media_type);
  CHECK(classify_request_body("application/fhir+json; charset=latin1").error().code ==
        ErrorCode::unsupported_media_type);
}

TEST_CASE("Prefer: return and handling") {
  CHECK(parse_prefer("").return_kind == Prefer::Return::representation);
  CHECK(parse_prefer("return=minimal").return_kind == Prefer::Return::minimal);
  CHECK(parse_prefer("return=OperationOutcome").return_kind == Prefer::Return::operation_outcome);
  CHECK(parse_prefer("handling=strict, return=minimal").strict);
  CHECK(parse_prefer("handling=strict, return=minimal").return_kind == Prefer::Return::minimal);
  CHECK_FALSE(parse_prefer("handling=lenient").strict);
}

}  // namespace
}  // namespace fhirgate::gateway::rest
