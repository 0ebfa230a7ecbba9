#pragma once
// Text normalisation shared by search indexing and search queries.
#include <string>
#include <string_view>

namespace fhirgate::fhir {

// Lower-cases and removes accents (Latin-1 Supplement and Latin Extended-A letters map to their base
// letters, combining marks U+0300..U+036F are dropped) so that string search is case- and
// accent-insensitive, as FHIR string search requires. Other UTF-8 text passes through unchanged;
// invalid UTF-8 bytes are kept as they are.
std::string normalize_for_search(std::string_view text);

}  // namespace fhirgate::fhir
