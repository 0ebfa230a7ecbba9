#pragma once
// Terminology for binding checks: the ValueSets and CodeSystems that R4 bindings name, with their
// published expansions, loaded once at start-up (and extendable with `fhirgate validate --load`).
// Immutable after loading; thread-safe.
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "fhir/json.hpp"
#include "fhir/result.hpp"

namespace fhirgate::fhir {

class Terminology {
 public:
  enum class Answer : std::uint8_t {
    member,      // the code is in the value set
    not_member,  // the value set is known and enumerable, and the code is not in it
    unknown,  // the value set is unknown, not enumerable (e.g. all of LOINC), or needs a terminology server
  };

  // Loads profiles/r4 terminology (ValueSets, CodeSystems, expansions) from `profiles_dir`.
  static Result<std::shared_ptr<Terminology>> load_from(const std::string& profiles_dir);
  // Adds ValueSet / CodeSystem resources (or Bundles of them).
  Status add(const Node& resource_or_bundle);
  // An independent copy, for a validator that adds the ValueSets and CodeSystems of one run without
  // changing the terminology others share.
  std::shared_ptr<Terminology> copy() const;

  // Is system|code in the value set (canonical URL, optionally `|version`)? When `system` is empty,
  // a code matches any system of the set (for `code` elements bound to a value set).
  Answer contains(std::string_view value_set, std::string_view system, std::string_view code) const;
  // The display of a code in a code system, when known (for warnings about wrong displays): from the
  // CodeSystem, or for a system we have no CodeSystem of (ISO 3166 ...), from the ValueSets that list the
  // code with a display when they all agree (UCUM's "minute" and "minutes": no display). Lookups of the
  // latter kind scan the ValueSets: for occasional use.
  std::optional<std::string> display(std::string_view system, std::string_view code) const;
  bool knows_value_set(std::string_view url) const;
  // A CodeSystem (not a supplement) with this canonical URL is loaded, whatever its content.
  bool knows_code_system(std::string_view url) const;
  // A CodeSystem with this canonical URL is loaded and is a supplement (CodeSystem.supplements).
  bool is_supplement(std::string_view url) const;
  // Does the code system define the code? member / not_member for a loaded CodeSystem whose content is
  // complete, and for the systems checked by shape (see checked_by_shape); for SNOMED CT and LOINC,
  // not_member when the code cannot be one by its syntax (a SNOMED CT identifier is 6-18 digits with a
  // Verhoeff check digit, or an expression; a LOINC code is digits, '-' and a mod-10 check digit, or a
  // part/answer code such as LP12345-6); unknown otherwise (then only a terminology server can say).
  Answer defines(std::string_view system, std::string_view code) const;
  // Systems no table holds but whose codes are checked by their shape: BCP-47 language tags, BCP-13
  // mime types.
  static bool checked_by_shape(std::string_view system);
  // For a system whose codes defines() rejects by syntax alone (SNOMED CT, LOINC), that syntax in words;
  // empty for other systems.
  static std::string_view syntax_rule(std::string_view system);

  ~Terminology();
  Terminology();

 private:
  struct Data;
  std::unique_ptr<Data> data_;
};

}  // namespace fhirgate::fhir
