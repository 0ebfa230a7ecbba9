#pragma once
// Resource validation against the R4 base definitions (and, later, profiles): what `$validate`, the
// `fhirgate validate` CLI and validate-on-write use. One traversal with a pluggable policy: collect every
// issue (for $validate) or stop at the first error (on the write path).
//
// Checked: unknown elements; cardinality at every level; element types incl. choice types and the
// target types of References; primitive lexical rules; required bindings (extensible/preferred as
// warnings/information); fixed[x]/pattern[x]; maxLength; minValue/maxValue; the invariants (FHIRPath
// constraints) of the element definitions. Every issue carries a FHIRPath location such as
// Patient.name[0].given[1].
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "fhir/json.hpp"
#include "fhir/model.hpp"
#include "fhir/result.hpp"
#include "fhir/terminology.hpp"

namespace fhirgate::fhir {

struct ValidationOptions {
  bool stop_at_first_error = false;   // the write path: fail fast
  bool check_invariants = true;
  bool check_bindings = true;
  std::vector<std::string> profiles;  // canonical URLs to validate against, besides meta.profile
};

struct ValidationResult {
  std::vector<Issue> issues;  // severity error | warning | information; code per OperationOutcome types
  bool has_errors() const;
};

class Validator {
 public:
  // The model and terminology must outlive the validator. Thread-safe: validate() may run concurrently.
  Validator(std::shared_ptr<const Model> model, std::shared_ptr<const Terminology> terminology);
  ~Validator();

  ValidationResult validate(const Node& resource, const ValidationOptions& options = {}) const;

  // How many distinct constraint expressions the FHIRPath engine could not compile; those constraints
  // are skipped (a diagnostic for start-up logs and tests).
  std::size_t uncompiled_constraints() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace fhirgate::fhir
