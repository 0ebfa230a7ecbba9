#pragma once
// Resource rules: what the R4 specification asks of a resource beyond its element definitions, checked
// by the validator once per resource (the root and every nested one: Bundle entries, contained
// resources, Parameters resources) after its base walk and profiles. Examples: Bundle rules (fullUrl
// and id agreement, duplicate entries, references resolved inside the Bundle), a QuestionnaireResponse
// against its Questionnaire, extension contexts, rules on conformance resources.
//
// Each rule area is one function `void check_<area>(RuleContext&)` in its own file, called from
// run_resource_rules() (validator_rules.cpp). A rule reports through the context, at a location
// relative to the resource being checked; it never throws and never stores anything.
#include <string>
#include <string_view>
#include <vector>

#include "fhir/definitions.hpp"
#include "fhir/json.hpp"
#include "fhir/model.hpp"
#include "fhir/result.hpp"
#include "fhir/terminology.hpp"

namespace fhirgate::fhir {

struct ValidationOptions;
class Validator;

// A resource that encloses the one being checked (a Bundle, a Parameters, a container of contained
// resources), with its location.
struct EnclosingResource {
  const Node* node;
  std::string_view type;
  std::string path;
};

struct RuleContext {
  const Model& model;
  const Terminology& terminology;
  const Definitions& definitions;  // what was loaded besides the base definitions
  const Validator& validator;      // to validate a nested value or a resource of another kind
  const ValidationOptions& options;
  const Node& resource;  // the resource checked
  std::string_view type;
  std::string_view path;                            // its location, e.g. Bundle.entry[2].resource
  const std::vector<EnclosingResource>& enclosing;  // outermost first; empty for the root
  bool contained;                                   // in DomainResource.contained

  // Reports at `relative` below the resource: "subject", "item[0].answer[1]", or "" for the resource.
  void report(std::string_view severity, std::string_view code, std::string diagnostics,
              std::string_view relative = {});
  void error(std::string_view code, std::string diagnostics, std::string_view relative = {}) {
    report("error", code, std::move(diagnostics), relative);
  }
  void warning(std::string_view code, std::string diagnostics, std::string_view relative = {}) {
    report("warning", code, std::move(diagnostics), relative);
  }
  void information(std::string_view code, std::string diagnostics, std::string_view relative = {}) {
    report("information", code, std::move(diagnostics), relative);
  }
  // The location of `relative` below the resource.
  std::string location(std::string_view relative) const;
  bool has_errors() const { return errors > 0; }

  std::vector<Issue>& issues;  // where report() appends
  int errors = 0;              // errors reported through this context
};

// Bundle rules, references resolved inside a Bundle, contained resources (validator_bundle.cpp).
void check_bundle_and_references(RuleContext& context);

// Strings that look like HTML markup (ValidationOptions::security_checks), example URLs when not allowed
// (validator_security.cpp).
void check_security(RuleContext& context);

// Runs every rule area that applies to the resource.
void run_resource_rules(RuleContext& context);

void check_questionnaire(RuleContext& context);  // QuestionnaireResponse against its Questionnaire
void check_extensions(RuleContext& context);     // validator_extensions.cpp
void check_conformance(RuleContext& context);    // validator_conformance.cpp
void check_terminology(RuleContext& context);    // CodeSystem, ValueSet, ConceptMap
void check_measure(RuleContext& context);        // Measure, MeasureReport against its Measure

}  // namespace fhirgate::fhir
