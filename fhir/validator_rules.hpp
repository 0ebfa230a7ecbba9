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

#include "fhir/budget.hpp"
#include "fhir/definitions.hpp"
#include "fhir/json.hpp"
#include "fhir/model.hpp"
#include "fhir/result.hpp"
#include "fhir/terminology.hpp"

namespace fhirgate::fhir {

struct ValidationOptions;
class Validator;

// A resource that encloses the one being checked (a Bundle, a Parameters, a container of contained
// resources).
struct EnclosingResource {
  const Node* node;
  std::string_view type;
  // What the base walk met in the resource's own elements (not in resources nested in it), so that rules
  // that look for them need not walk a resource that has none.
  bool has_extensions = false;   // an extension or modifierExtension
  bool has_element_ids = false;  // an `id` on an element (not the resource's own)
};

// A Reference the base walk met in a resource inside a Bundle or Parameters (only there: nothing is
// collected for a resource on its own), for the rules that resolve references within the container.
struct SeenReference {
  const Node* owner;  // the innermost resource the Reference is in
  // Its location from the root (Bundle.entry[2].resource.subject): these characters of
  // RuleContext::reference_paths, one buffer for all, so that collecting costs no allocation each.
  std::size_t path_at;
  std::size_t path_size;
  std::string_view reference;
  std::string_view declared_type;  // Reference.type
  const ElementDef* def;
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
  // The References in this resource and the resources nested in it, in document order, when it is or
  // is inside a Bundle or Parameters (see SeenReference).
  const std::vector<SeenReference>& references;
  const std::string& reference_paths;  // see SeenReference
  bool has_extensions;                 // the resource's own elements carry an extension or modifierExtension
  bool has_element_ids;                // an element of the resource's own has an id

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
  std::string_view path_of(const SeenReference& seen) const {
    return std::string_view(reference_paths).substr(seen.path_at, seen.path_size);
  }
  // The location of `relative` below the resource.
  std::string location(std::string_view relative) const;
  bool has_errors() const { return errors > 0; }

  // The validation's time budget (ValidationOptions::deadline): a rule whose work grows with the input
  // (look-ups across a Bundle's entries or a Questionnaire's items) spends a step per unit of work and
  // stops when spend() says false; the validator then ends the run with its too-costly issue.
  Budget& budget;
  bool spend(std::uint64_t steps = 1) { return budget.spend(steps); }

  std::vector<Issue>& issues;  // where report() appends
  int errors = 0;              // errors reported through this context
  // The list had ValidationOptions::max_issues: an error left out stops the validation (full); warnings
  // and information left out are counted.
  bool full = false;
  std::size_t unlisted = 0;
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
