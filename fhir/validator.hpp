#pragma once
// Resource validation against the R4 base definitions and registered constraint profiles: what `$validate`,
// the `fhirgate validate` CLI and validate-on-write use. One traversal with a pluggable policy: collect every
// issue (for $validate) or stop at the first error (on the write path).
//
// Checked: unknown elements; cardinality at every level; element types incl. choice types and the
// target types of References; primitive lexical rules; required bindings (extensible/preferred as
// warnings/information); fixed[x]/pattern[x]; maxLength; minValue/maxValue; the invariants (FHIRPath
// constraints) of the element definitions; codes of the code systems the terminology holds. Then, per
// resource, the resource rules (fhir/validator_rules.hpp): Bundles and references resolved inside them,
// contained resources, element ids, extensions against their definitions, a QuestionnaireResponse
// against its Questionnaire, a MeasureReport against its Measure, rules on conformance resources. Every
// issue carries a FHIRPath location such as Patient.name[0].given[1].
//
// Profiles (constraint StructureDefinitions) are registered with add_profile() during set-up; a resource
// is checked against each profile named in ValidationOptions::profiles, its meta.profile, or the global
// profiles of an ImplementationGuide given to add_resource(): cardinality (slices included), fixed/pattern
// values, bindings, the profile's invariants, type narrowing and slicing (value, pattern, type and exists
// discriminators; closed, open and openAtEnd rules, ordering not checked), type profiles (whole profiles,
// or one element of a profile through elementdefinition-profile-element), and the rules extensions add
// to an element: minLength, valueAlternatives, the narrative source and language controls. Issues from a
// profile name it, e.g. "Slice 'nhsNumber' requires at least 1 item (profile https://...)". An unknown
// profile is a warning and the base definition alone is used.
#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "fhir/definitions.hpp"
#include "fhir/json.hpp"
#include "fhir/model.hpp"
#include "fhir/result.hpp"
#include "fhir/terminology.hpp"

namespace fhirgate::fhir {

struct ValidationOptions {
  bool stop_at_first_error = false;  // the write path: fail fast
  bool check_invariants = true;
  bool check_bindings = true;
  std::vector<std::string> profiles;  // canonical URLs to validate against, besides meta.profile
  // The type a literal reference names (Patient in Patient/1) must be one the element's target profiles
  // allow. The references are not resolved, so this takes a relative reference to be a RESTful one on
  // this server, as it is here; the HL7 reference validator does so only when told to
  // (assumeValidRestReferences) and otherwise leaves an unresolved reference's type unchecked.
  bool check_reference_types = true;
  // Security checks: a string that looks like HTML markup (e.g. "<script>") is an error (the reference
  // validator's --security-checks). Off by default: such strings are then not looked at.
  bool security_checks = false;
  // Example URLs (on example.org, example.com, example.net) are allowed; off, each is an error.
  bool allow_example_urls = true;
  // A literal reference in a resource inside a Bundle or Parameters must resolve there (the reference
  // validator's validateReference, without fetching anything); off, an unresolved one is not reported.
  bool resolve_references = false;
  // At most this many issues are listed (a flood of broken elements is cheap to send, its report is not).
  // An error past the limit stops the validation, and one more error (too-costly) says so; warnings and
  // information past it are counted, and one more information issue says how many were left out.
  std::size_t max_issues = 1000;
  // Validation stops soon after this passes: the clock is read every few hundred steps of work (elements
  // visited, FHIRPath steps of the invariants), and once before starting. max(), the default: no limit.
  std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max();
};

struct ValidationResult {
  std::vector<Issue> issues;  // severity error | warning | information; code per OperationOutcome types
  // The deadline passed before validation finished: `issues` ends with one error of code "too-costly"
  // (at the location where it stopped), and holds only what was found until then.
  bool budget_exceeded = false;
  bool has_errors() const;
};

class Validator {
 public:
  // The model and terminology must outlive the validator. Thread-safe: validate() may run concurrently.
  Validator(std::shared_ptr<const Model> model, std::shared_ptr<const Terminology> terminology);
  ~Validator();

  // Set-up only, never concurrently with validate(): registers a constraint StructureDefinition under its
  // url (replacing one with the same url). One without a snapshot gets one generated from its
  // differential; its base must be a base definition or a profile registered before. Errors:
  // invalid_input (not a constraint definition, unknown base, element not in the base).
  Status add_profile(const Node& structure_definition);
  // Set-up only: any conformance or definitional resource the checks may need (or a Bundle of them).
  // ValueSets and CodeSystems extend this validator's terminology (a private copy of the shared one);
  // constraint StructureDefinitions become profiles (one whose base is not known yet waits for it);
  // every resource is kept in definitions() for the resource rules (Questionnaires, Measures,
  // extension definitions, logical models ...). Errors: only for a ValueSet or CodeSystem the
  // terminology cannot take.
  Status add_resource(const Node& resource);
  // Warnings for the profiles add_resource() could not compile (their base never came, or an error).
  std::vector<Issue> unresolved_definitions() const;
  const Definitions& definitions() const;
  bool knows_profile(std::string_view url) const;
  // `structure_definition` with a snapshot generated from its differential (see fhir/profiles.hpp).
  Result<Node> generate_snapshot(const Node& structure_definition) const;

  ValidationResult validate(const Node& resource, const ValidationOptions& options = {}) const;

  // How many distinct constraint expressions the FHIRPath engine could not compile; those constraints
  // are skipped (a diagnostic for start-up logs and tests).
  std::size_t uncompiled_constraints() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace fhirgate::fhir
