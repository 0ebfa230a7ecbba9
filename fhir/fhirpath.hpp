#pragma once
// FHIRPath (R4 / FHIRPath N1, https://hl7.org/fhirpath/N1/) over the JSON element tree, typed by the
// Model: the engine that evaluates StructureDefinition invariants (ele-1, dom-*, pat-*, ...) for the
// validator. Expressions are compiled once and then evaluated concurrently from any thread.
//
// Semantics follow the specification: collections everywhere, empty propagation for operators and
// functions, three-valued logic for and/or/xor/implies, singleton evaluation of collections in boolean
// contexts, choice elements navigated by their base name (Observation.value), primitives with their
// `_x` id/extension, and typed literals (dates, times, quantities).
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "fhir/budget.hpp"
#include "fhir/json.hpp"
#include "fhir/model.hpp"
#include "fhir/result.hpp"

namespace fhirgate::fhir::fhirpath {

class CompiledExpression;  // immutable AST

// Errors: invalid_input naming the position and problem.
Result<std::shared_ptr<const CompiledExpression>> compile(std::string_view expression);

struct EvalContext {
  const Model& model;
  const Node* resource = nullptr;       // %resource: the resource that contains the focus
  std::string_view resource_type;       //   and its type
  const Node* root_resource = nullptr;  // %rootResource (the outermost resource, e.g. a Bundle)
  std::string_view root_type;
  const Node* focus_companion = nullptr;  // the `_name` object (id/extension) when the focus is a primitive
  // The evaluation counts its steps against this budget (shared with the caller's other work, such as the
  // rest of a validation) and stops once it is exceeded; null: no limit. See Budget for what it costs.
  Budget* budget = nullptr;
};

// One item of a result collection, rendered for callers that only need the outcome.
struct Item {
  std::string type;            // FHIR or System type name: "boolean", "string", "HumanName", "Quantity", ...
  std::string text;            // primitive value as text; empty for complex items
  const Node* node = nullptr;  // the element's JSON value when the item is an element of the input
};

// Evaluates with `focus` (of FHIR type `focus_type`, e.g. "Patient", "HumanName", "string") as the
// input collection. Errors: a runtime type error the spec says is an error (e.g. a multi-item
// collection where a singleton is required); the context's budget exceeded, an error whose one issue
// has the code "too-costly" (only a regular expression may run past the deadline, for at most about
// 0.1 s: its own bound).
Result<std::vector<Item>> evaluate(const CompiledExpression& expression, const Node& focus,
                                   std::string_view focus_type, const EvalContext& context);

// For invariants: the singleton boolean result; nullopt when the result is empty.
Result<std::optional<bool>> evaluate_boolean(const CompiledExpression& expression, const Node& focus,
                                             std::string_view focus_type, const EvalContext& context);

}  // namespace fhirgate::fhir::fhirpath
