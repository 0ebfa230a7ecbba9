#pragma once
// The one error value of fhirgate, and Result<T> for expected failures.
//
// An Error carries a code (policy: HTTP status, OperationOutcome issue type and HL7 v2 ACK code are
// derived from it, never from message text), the issues the client sees, and an internal message for
// logs that must never contain patient data.
#include <cassert>
#include <cstdint>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace fhirgate {

enum class ErrorCode : std::uint8_t {
  invalid_input = 1,            // malformed request or payload (400)
  unauthorized = 2,             // no or bad credential (401)
  forbidden = 3,                // credential may not do this (403)
  not_found = 4,                // unknown resource type, id or route (404)
  method_not_allowed = 5,       // interaction not supported on this resource (405)
  not_acceptable = 6,           // no acceptable response format (406)
  conflict = 7,                 // version or state conflict (409)
  gone = 8,                     // resource was deleted (410)
  precondition_failed = 9,      // If-Match / conditional operation failed (412)
  payload_too_large = 10,       // body over the configured limit (413)
  unsupported_media_type = 11,  // request Content-Type not understood (415)
  unprocessable = 12,           // well-formed but breaks FHIR rules (422)
  busy = 13,                    // overloaded or storage unavailable, retry later (503)
  internal = 14,                // bug or unexpected failure (500)
};

struct Issue {
  std::string severity = "error";  // fatal | error | warning | information
  std::string code;                // OperationOutcome issue type; empty = derived from the ErrorCode
  std::string diagnostics;         // client-facing text
  std::string expression;          // FHIRPath location, e.g. Patient.name[0].given[1]
  int line = 0;                    // 1-based position for parse errors, 0 when unknown
  int column = 0;
};

struct Error {
  ErrorCode code = ErrorCode::internal;
  std::vector<Issue> issues;
  std::string internal;  // for logs only; no patient data

  static Error make(ErrorCode code, std::string diagnostics, std::string expression = {}) {
    Error e{code, {}, {}};
    Issue issue;
    issue.diagnostics = std::move(diagnostics);
    issue.expression = std::move(expression);
    e.issues.push_back(std::move(issue));
    return e;
  }
};

int http_status(ErrorCode code);
// OperationOutcome.issue.code for the code (invalid, not-found, processing, ...).
const char* issue_type(ErrorCode code);
// HL7 v2 acknowledgement code for the code (AE for errors the sender can fix, AR for rejections).
const char* v2_ack_code(ErrorCode code);

template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}
  Result(Error error) : v_(std::move(error)) {}

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() & {
    assert(ok());
    return std::get<0>(v_);
  }
  const T& value() const& {
    assert(ok());
    return std::get<0>(v_);
  }
  T&& value() && {
    assert(ok());
    return std::get<0>(std::move(v_));
  }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  const Error& error() const& {
    assert(!ok());
    return std::get<1>(v_);
  }
  Error&& error() && {
    assert(!ok());
    return std::get<1>(std::move(v_));
  }

 private:
  std::variant<T, Error> v_;
};

struct Ok {};
using Status = Result<Ok>;

}  // namespace fhirgate
