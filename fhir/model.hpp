#pragma once
// The R4 type model: every resource and datatype from the official StructureDefinitions (snapshots),
// loaded once at start-up into compact, immutable structures shared by all threads. The JSON<->XML
// converters use it for element order, cardinality, choice types and XML representation; the validator
// for types, cardinality, bindings, constraints and the rest of each ElementDefinition.
//
// A type's elements are its direct children, in StructureDefinition order. Inline BackboneElements
// (Patient.contact) get their own TypeDef named by path ("Patient.contact"); contentReference
// (`#Questionnaire.item`) points at the referenced path's TypeDef.
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "fhir/json.hpp"
#include "fhir/result.hpp"

namespace fhirgate::fhir {

struct TypeDef;

// How a primitive value appears in JSON.
enum class JsonPrimitive : std::uint8_t { string, boolean, number };

struct TypeRef {
  std::string code;                          // FHIR type: "string", "HumanName", "Reference", "Resource", ...
                                             // (System.String etc. are mapped to their FHIR type)
  std::vector<std::string> target_profiles;  // Reference/canonical targets
  std::vector<std::string> profiles;
};

enum class BindingStrength : std::uint8_t { none, required, extensible, preferred, example };

struct Binding {
  BindingStrength strength = BindingStrength::none;
  std::string value_set;  // canonical URL, possibly with `|version`; empty when the binding names none
};

// An invariant (ElementDefinition.constraint). `expression_id` indexes Model::expressions(): equal
// FHIRPath texts share one id, so a consumer compiles each distinct expression once.
struct Constraint {
  std::string key;             // "ele-1", "pat-1", ...
  bool error = true;           // severity error; otherwise warning
  bool best_practice = false;  // elementdefinition-bestpractice
  std::string human;
  std::string expression;
  std::uint32_t expression_id = 0;
};

// A value bound to an element: fixed[x], pattern[x], minValue[x] or maxValue[x].
struct ValueConstraint {
  std::string type;  // the [x] type, e.g. "code", "CodeableConcept", "integer"
  Node value;
};

struct ElementDef {
  std::string name;  // element name without [x]: "birthDate", "value", "contact"
  std::string path;  // full path as in the snapshot: "Patient.contact.name", "Observation.value[x]"
  std::uint32_t min = 0;
  std::uint32_t max = 1;       // kUnbounded for "*"
  bool choice = false;         // name came from `x[x]`
  bool xml_attribute = false;  // represented as an XML attribute (Element.id, Extension.url, primitive value)
  bool xhtml = false;          // Narrative.div: an XHTML element in XML, a string in JSON
  std::vector<TypeRef> types;
  const TypeDef* inline_type = nullptr;  // BackboneElement/Element children defined inline, or the
                                         // contentReference target; null when `types` say it all
  Binding binding;
  std::vector<Constraint> constraints;           // as listed in the snapshot (inherited ones included)
  std::shared_ptr<const ValueConstraint> fixed;  // null when absent (most elements)
  std::shared_ptr<const ValueConstraint> pattern;
  std::shared_ptr<const ValueConstraint> min_value;
  std::shared_ptr<const ValueConstraint> max_value;
  std::uint32_t max_length = 0;  // 0 = no limit

  static constexpr std::uint32_t kUnbounded = UINT32_MAX;
  bool is_array() const { return max > 1; }
};

struct TypeDef {
  enum class Kind : std::uint8_t { primitive, complex, resource, backbone };
  std::string name;  // "Patient", "HumanName", "string", "Patient.contact"
  Kind kind = Kind::complex;
  bool abstract = false;
  std::string base;  // base type name ("DomainResource", "Element", ...); empty for Base/Resource roots
  std::string url;   // canonical URL of the StructureDefinition
  std::vector<ElementDef> elements;
  // Invariants on the definition's root element (Patient: dom-2..dom-6; HumanName: ele-1), which hold
  // for every instance of the type. Empty for backbone types (their element carries them).
  std::vector<Constraint> constraints;
  // Primitive types: the lexical rule of `value` (the definition's regex extension); empty otherwise.
  std::string regex;

  // The child named `name` exactly (not choice-expanded).
  const ElementDef* element(std::string_view name) const;
  // Resolves a JSON/XML member name to its element, expanding choice types: "valueQuantity" gives
  // value[x] with `choice_type` set to "Quantity". Null when no element matches.
  const ElementDef* resolve(std::string_view member, std::string_view* choice_type = nullptr) const;

 private:
  friend class Model;
  std::unordered_map<std::string_view, std::uint32_t> by_name_;
  std::vector<std::uint32_t> choices_;  // indices of the choice elements, for resolve()
};

class Model {
 public:
  // Builds the model from Bundles of StructureDefinitions (profiles-types and profiles-resources).
  // Errors: invalid_input naming the definition that cannot be understood.
  static Result<std::shared_ptr<const Model>> load(const std::vector<const Node*>& bundles);
  // Loads profiles/r4/profiles-types.json.gz and profiles-resources.json.gz from `profiles_dir`.
  static Result<std::shared_ptr<const Model>> load_from(const std::string& profiles_dir);
  // The directory load_from() read, where other R4 definition files may be loaded from on demand (the
  // core extension definitions); empty for a model built by load().
  const std::string& profiles_dir() const { return profiles_dir_; }

  // A type by name ("Patient", "HumanName", "string", "Patient.contact"); null when unknown.
  const TypeDef* type(std::string_view name) const;
  // True for concrete resource types (Patient, Bundle, ...; not Resource/DomainResource).
  bool is_resource(std::string_view name) const;
  std::vector<std::string_view> resource_names() const;

  static JsonPrimitive json_primitive(std::string_view primitive_type);

  // The search parameters through which a resource of `type` is in the Patient compartment (R4's
  // CompartmentDefinition "patient", e.g. Appointment: actor); null when the type is not in it.
  const std::vector<std::string>* patient_compartment(std::string_view type) const;

  // Every distinct constraint expression text, indexed by Constraint::expression_id.
  const std::vector<std::string>& expressions() const { return expressions_; }
  std::vector<const TypeDef*> types() const;

 private:
  struct Builder;
  std::vector<std::unique_ptr<TypeDef>> types_;
  std::unordered_map<std::string_view, const TypeDef*> by_name_;
  std::vector<std::string> expressions_;
  std::unordered_map<std::string, std::vector<std::string>> patient_compartment_;
  std::string profiles_dir_;
};

}  // namespace fhirgate::fhir
