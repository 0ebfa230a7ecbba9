#pragma once
// The conformance and definitional resources one validator knows besides the R4 base: what
// `fhirgate validate --load` and the validator test cases' supporting files bring (Questionnaires,
// Measures, Libraries, StructureDefinitions, ValueSets, CodeSystems, ConceptMaps, ImplementationGuides
// ...). Looked up by canonical URL, optionally `url|version`; the newest added wins for a bare URL.
// Filled during set-up, read-only afterwards (thread-safe to read).
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "fhir/json.hpp"

namespace fhirgate::fhir {

class Definitions {
 public:
  // Keeps a copy of the resource (by its url, and by url|version when it has a version). Resources
  // without a url are kept too, reachable through all().
  void add(const Node& resource);
  // The resource with this canonical (`url` or `url|version`), optionally only of one type.
  const Node* find(std::string_view canonical, std::string_view type = {}) const;
  const std::vector<std::shared_ptr<const Node>>& all() const { return all_; }
  bool empty() const { return all_.empty(); }

 private:
  std::vector<std::shared_ptr<const Node>> all_;
  std::map<std::string, const Node*, std::less<>> by_canonical_;
};

}  // namespace fhirgate::fhir
