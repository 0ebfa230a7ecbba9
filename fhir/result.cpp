#include "fhir/result.hpp"

namespace fhirgate {
namespace {

struct CodePolicy {
  ErrorCode code;
  int http;
  const char* issue;
  const char* ack;
};

// The one table from error code to HTTP status, OperationOutcome issue type and HL7 v2 ACK code. The ACK
// code follows HL7's meaning: AR for a message the receiver will not take as it is (malformed,
// unsupported, not authorized), AE for one it could not process (fix the data or resend).
constexpr CodePolicy kPolicies[] = {
    {ErrorCode::invalid_input, 400, "invalid", "AR"},
    {ErrorCode::unauthorized, 401, "login", "AR"},
    {ErrorCode::forbidden, 403, "forbidden", "AR"},
    {ErrorCode::not_found, 404, "not-found", "AE"},
    {ErrorCode::method_not_allowed, 405, "not-supported", "AR"},
    {ErrorCode::not_acceptable, 406, "not-supported", "AR"},
    {ErrorCode::conflict, 409, "conflict", "AE"},
    {ErrorCode::gone, 410, "deleted", "AE"},
    {ErrorCode::precondition_failed, 412, "conflict", "AE"},
    {ErrorCode::payload_too_large, 413, "too-long", "AR"},
    {ErrorCode::unsupported_media_type, 415, "not-supported", "AR"},
    {ErrorCode::unprocessable, 422, "processing", "AE"},
    {ErrorCode::busy, 503, "transient", "AE"},
    {ErrorCode::internal, 500, "exception", "AE"},
};

const CodePolicy& policy(ErrorCode code) {
  for (const auto& p : kPolicies) {
    if (p.code == code) return p;
  }
  return kPolicies[std::size(kPolicies) - 1];
}

}  // namespace

int http_status(ErrorCode code) {
  return policy(code).http;
}
const char* issue_type(ErrorCode code) {
  return policy(code).issue;
}
const char* v2_ack_code(ErrorCode code) {
  return policy(code).ack;
}

}  // namespace fhirgate
