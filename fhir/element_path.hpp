#pragma once
// A place in a resource being walked, rendered FHIRPath-style (Patient.name[0].given[1]). Walkers keep
// their steps on the stack, each pointing at its parent, and render one only when an issue names it.
// A step type needs `parent` (a pointer to its own type), `name` and `index` (kNoIndex: not an item).
#include <cstddef>
#include <cstdint>
#include <string>

namespace fhirgate::fhir {

inline constexpr std::size_t kNoIndex = SIZE_MAX;

template <class Step>
void append_path(const Step* at, std::string& out) {
  if (at == nullptr) return;
  append_path(at->parent, out);
  if (!out.empty()) out += '.';
  out += at->name;
  if (at->index != kNoIndex) {
    out += '[';
    out += std::to_string(at->index);
    out += ']';
  }
}

template <class Step>
std::string path_text(const Step* at) {
  std::string out;
  append_path(at, out);
  return out;
}

}  // namespace fhirgate::fhir
