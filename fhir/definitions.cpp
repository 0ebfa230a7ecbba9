#include "fhir/definitions.hpp"

namespace fhirgate::fhir {

void Definitions::add(const Node& resource) {
  auto kept = std::make_shared<const Node>(resource);
  const std::string url(kept->string_at("url"));
  if (!url.empty()) {
    by_canonical_[url] = kept.get();
    if (const std::string_view version = kept->string_at("version"); !version.empty())
      by_canonical_[url + "|" + std::string(version)] = kept.get();
  }
  all_.push_back(std::move(kept));
}

const Node* Definitions::find(std::string_view canonical, std::string_view type) const {
  auto it = by_canonical_.find(canonical);
  if (it == by_canonical_.end()) {
    const auto bar = canonical.find('|');
    if (bar == std::string_view::npos) return nullptr;
    it = by_canonical_.find(canonical.substr(0, bar));
    if (it == by_canonical_.end()) return nullptr;
  }
  if (!type.empty() && it->second->string_at("resourceType") != type) return nullptr;
  return it->second;
}

}  // namespace fhirgate::fhir
