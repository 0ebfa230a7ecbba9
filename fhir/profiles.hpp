#pragma once
// Constraint profiles (StructureDefinitions with derivation = constraint): snapshot generation from a
// differential, the compiled form the Validator checks instances against, and loading a directory of
// profiles at start-up.
//
// A compiled Profile is immutable once built and shared by every validate() call. Its elements form a
// tree keyed by element id (`Patient.identifier:nhsNumber.system`): each element lists its children
// and, when it is sliced, its slices (whose own children hang below them).
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "fhir/json.hpp"
#include "fhir/model.hpp"
#include "fhir/result.hpp"

namespace fhirgate::fhir {

namespace fhirpath {
class CompiledExpression;
}

class Validator;

struct Discriminator {
  enum class Kind : std::uint8_t { value, pattern, type, exists, profile };
  Kind kind = Kind::value;
  std::string path;  // "system", "$this", "url", "code.coding.system", ...
};

struct ProfileConstraint {
  Constraint constraint;
  std::shared_ptr<const fhirpath::CompiledExpression> compiled;  // null when it does not compile
};

struct ProfileElement {
  enum class Rules : std::uint8_t { open, closed, open_at_end };
  std::string id;          // "Patient.identifier:nhsNumber"
  std::string path;        // "Patient.identifier"
  std::string name;        // last path segment without [x]: "identifier", "value"
  std::string slice_name;  // "nhsNumber"; empty for elements that are not slices
  bool choice = false;
  std::uint32_t min = 0;
  std::uint32_t max = ElementDef::kUnbounded;
  std::vector<TypeRef> types;
  std::shared_ptr<const ValueConstraint> fixed;
  std::shared_ptr<const ValueConstraint> pattern;
  std::shared_ptr<const ValueConstraint> min_value;
  std::shared_ptr<const ValueConstraint> max_value;
  std::uint32_t max_length = 0;  // 0 = no limit
  std::uint32_t min_length = 0;  // the minLength extension; 0 = none
  // The R5 valueAlternatives extension: a primitive without a value must carry one of these extensions.
  std::vector<std::string> value_alternatives;
  // Narrative controls (extensions narrative-source-control and narrative-language-control): the
  // severity with which each top-level part of the div must say its source (class boilerplate,
  // generated or original), empty when not asked; and the languages that must have a section
  // ("_resource" is the resource's own language).
  std::string narrative_source_control;
  std::vector<std::string> narrative_languages;
  // Type profiles that name one element of their profile (extension elementdefinition-profile-element):
  // profile url and element id, e.g. {".../document-section-library", "Composition.section:codeA"}.
  std::vector<std::pair<std::string, std::string>> profile_elements;
  Binding binding;
  std::vector<ProfileConstraint> constraints;
  bool sliced = false;
  Rules rules = Rules::open;
  std::vector<Discriminator> discriminators;
  std::vector<const ProfileElement*> children;  // not slices
  std::vector<const ProfileElement*> slices;    // when sliced
};

struct Profile {
  std::string url;
  std::string type;  // the constrained type: "Patient", "Extension", ...
  Node snapshot;     // the snapshot.element array (a base for profiles derived from this one)
  std::vector<std::unique_ptr<ProfileElement>> elements;  // in snapshot order; elements[0] is the root
  const ProfileElement& root() const { return *elements.front(); }
};

// Looks up the snapshot.element array of a registered profile by canonical URL; null when unknown.
using SnapshotLookup = std::function<const Node*(std::string_view url)>;

// Returns `structure_definition` with a snapshot generated from its differential and its base (a base
// resource or datatype definition from the model, or a profile `lookup` knows). Differential elements
// are merged onto the base element with the same id (slices are copied from the sliced element, the
// children of a complex type are expanded on first use). Errors: invalid_input naming the element that
// does not exist in the base, or an unknown base.
Result<Node> generate_snapshot(const Model& model, const Node& structure_definition,
                               const SnapshotLookup& lookup);

// Compiles a constraint StructureDefinition that has a snapshot. Errors: invalid_input.
Result<std::shared_ptr<const Profile>> compile_profile(const Model& model, const Node& structure_definition);

// Registers every StructureDefinition (*.json; XML too when `model` can convert it) in `dir` with the
// validator, in an order where a profile's base is registered first. Set-up only. Errors: the first file
// that cannot be read or registered.
Status load_profiles_dir(Validator& validator, const Model& model, const std::string& dir);

}  // namespace fhirgate::fhir
