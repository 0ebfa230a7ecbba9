// FHIR search: parse_query_string and parse_search (R4 search parameters of Patient, Consent and
// AuditEvent). The canonical query a search keeps for its links must, written out again, parse to the
// same canonical query. Input: one byte choosing the type and strict handling, then the query string.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fhir/search_query.hpp"
#include "fuzz/common.hpp"

using namespace fhirgate;

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  (void)fuzz::registry();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  constexpr std::string_view kTypes[] = {"Patient", "Consent", "AuditEvent", "Observation"};
  const std::string_view type = kTypes[data[0] & 3];
  fhir::SearchOptions options;
  options.strict = (data[0] & 4) != 0;
  options.now_ms = 1'700'000'000'000;
  const std::string_view query(reinterpret_cast<const char*>(data + 1), size - 1);

  Result<fhir::QueryParams> params = fhir::parse_query_string(query);
  if (!params) return 0;
  Result<fhir::SearchQuery> search = fhir::parse_search(fuzz::registry(), type, *params, options);
  if (!search) return 0;

  std::string link;
  for (const auto& [name, value] : search->understood) {
    if (!link.empty()) link += '&';
    link += fhir::url_encode(name) + '=' + fhir::url_encode(value);
  }
  Result<fhir::QueryParams> link_params = fhir::parse_query_string(link);
  FUZZ_CHECK(link_params.ok());
  Result<fhir::SearchQuery> again = fhir::parse_search(fuzz::registry(), type, *link_params, options);
  FUZZ_CHECK(again.ok());
  FUZZ_CHECK(again->understood == search->understood);
  return 0;
}
