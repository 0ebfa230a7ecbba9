#pragma once
// Search parameters: one table, loaded from the R4 SearchParameter definitions, drives indexing,
// query parsing and the CapabilityStatement.
//
// A parameter is supported when its type is string, token, date, reference or uri and its FHIRPath
// expression (restricted to the resource types being served) compiles to a SimplePath: a union of dotted
// paths with the forms the R4 definitions use for these resources — `X.a.b`, `(X.a as dateTime)`,
// `.as(T)`, `.where(resolve() is T)`, `.where(field='literal')`. Parameters that need more (phonetic
// matching, boolean expressions like Patient.deceased.exists() and ...) are left out, so the
// CapabilityStatement lists exactly what works.
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "fhir/datetime.hpp"
#include "fhir/json.hpp"
#include "fhir/result.hpp"

namespace fhirgate::fhir {

enum class SearchParamType : std::uint8_t { string, token, date, reference, uri };
const char* to_string(SearchParamType type);

// One step of a compiled path.
struct PathStep {
  enum class Kind : std::uint8_t { child, as_type, resolve_is, where_equals };
  Kind kind = Kind::child;
  std::string name;     // child: element name (a choice element `deceased` matches deceasedXxx);
                        // as_type / resolve_is: type name; where_equals: field name
  std::string literal;  // where_equals: the value compared against
};
// A union of paths, each a list of steps below the resource root.
struct SimplePath {
  std::vector<std::vector<PathStep>> branches;
};
// Compiles `expression` for `resource_type`, keeping only the union branches rooted at that type (or at
// Resource / DomainResource). nullopt when a branch uses anything outside the supported forms.
std::optional<SimplePath> compile_path(std::string_view expression, std::string_view resource_type);
// Evaluates the path on a resource; returns the selected nodes (array items flattened).
std::vector<const Node*> evaluate(const SimplePath& path, const Node& resource);

struct SearchParamDef {
  std::uint32_t key = 0;       // dense index in the registry, stable for one registry
  std::string resource_type;   // the type this entry serves (a definition with several bases yields one
                               // entry per served type)
  std::string code;            // e.g. "family", "_lastUpdated"
  SearchParamType type = SearchParamType::string;
  std::string url;             // canonical URL of the definition
  std::string expression;      // the original FHIRPath
  std::string description;
  std::vector<std::string> targets;  // reference targets
  SimplePath path;
};

class SearchParamRegistry {
 public:
  // Builds the registry from a Bundle of SearchParameter resources for the given resource types.
  // `_id` is always present (token on Resource.id). Errors: invalid_input when the bundle is not a Bundle.
  static Result<SearchParamRegistry> load(const Node& bundle, const std::vector<std::string>& resource_types);

  const SearchParamDef* find(std::string_view resource_type, std::string_view code) const;
  // Parameters of a type, in code order.
  std::vector<const SearchParamDef*> for_type(std::string_view resource_type) const;
  const std::vector<std::unique_ptr<SearchParamDef>>& all() const { return params_; }

 private:
  std::vector<std::unique_ptr<SearchParamDef>> params_;
  std::map<std::pair<std::string, std::string>, const SearchParamDef*, std::less<>> by_name_;
};

// One index row extracted from a resource for a parameter.
struct IndexValue {
  const SearchParamDef* param = nullptr;
  // string: normalized (normalize_for_search) and exact text; uri: exact only.
  // token: system (may be empty; has_system false when the source had none) and code in `exact`.
  // reference: `system` = target type, `exact` = target id (or the full reference when not Type/id).
  std::string normalized;
  std::string system;
  std::string exact;
  TimeRange range;  // date
};

// Extracts the index rows of every parameter of the resource's type. String values come from strings and
// from the string parts of HumanName (family, given, prefix, suffix, text) and Address (line, city,
// district, state, postalCode, country, text). Token values come from code/string/boolean primitives,
// Coding, CodeableConcept (each coding, plus none for text), Identifier and ContactPoint (system|value).
// Date values from date/dateTime/instant strings and Period (start..end, open ends unbounded).
// Reference values from Reference.reference (`Type/id`, also the tail of an absolute URL).
std::vector<IndexValue> extract_index(const SearchParamRegistry& registry, const Node& resource);

}  // namespace fhirgate::fhir
