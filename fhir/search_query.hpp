#pragma once
// FHIR search requests: parsing the query string (or form body) into a SearchQuery that the store runs.
//
// Semantics follow R4 search.html: parameters are ANDed, comma-separated values within one parameter are
// ORed; string search is case- and accent-insensitive starts-with, `:exact` exact, `:contains` substring;
// token `system|code`, `|code` (no system), `system|` (any code in the system), `code`; date prefixes
// eq ne lt gt le ge sa eb ap over ranges (partial dates are ranges); reference `Type/id` or `id`.
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "fhir/datetime.hpp"
#include "fhir/result.hpp"
#include "fhir/search_params.hpp"

namespace fhirgate::fhir {

using QueryParams = std::vector<std::pair<std::string, std::string>>;

// Splits `a=1&b=x%20y` (also a form-urlencoded body: `+` is a space) into decoded pairs, in order.
// Errors: invalid_input on a malformed percent escape.
Result<QueryParams> parse_query_string(std::string_view query);
// Percent-encodes for a query component (unreserved characters kept).
std::string url_encode(std::string_view text);

enum class DatePrefix : std::uint8_t { eq, ne, gt, lt, ge, le, sa, eb, ap };
enum class SearchModifier : std::uint8_t { none, exact, contains, missing, not_ };

struct SearchValue {
  DatePrefix prefix = DatePrefix::eq;  // date only
  std::string text;                    // string: normalized (or exact for :exact); uri: exact
  std::string system;                  // token: system; reference: target type (empty = any)
  bool has_system = false;             // token: a `|` was given
  std::string code;                    // token: code (empty for `system|`); reference: id
  TimeRange range;                     // date; for ap already widened by the spec's approximation
  bool missing = false;                // :missing=true|false
};

struct SearchClause {
  const SearchParamDef* param = nullptr;
  SearchModifier modifier = SearchModifier::none;
  std::vector<SearchValue> any_of;  // ORed
};

struct SortKey {
  const SearchParamDef* param = nullptr;  // string, token, date or uri parameter (incl. _lastUpdated)
  bool descending = false;
};

struct SearchQuery {
  std::string resource_type;
  std::vector<SearchClause> clauses;  // ANDed
  std::vector<SortKey> sort;          // empty = store order (oldest first)
  int count = 20;
  bool total_accurate = true;  // _total=none turns it off (estimate is treated as accurate)
  bool summary_count = false;  // _summary=count
  std::vector<std::string> elements;  // _elements, top-level element names
  std::string cursor;                 // _cursor: opaque paging position produced by the store
  std::vector<std::string> ignored;   // unknown parameter names (not in the self link)
  // The query as understood, canonical (parameters in request order, unknown and _cursor left out),
  // used for Bundle.link.
  QueryParams understood;
};

struct SearchOptions {
  bool strict = false;  // Prefer: handling=strict -> unknown parameters are an error
  int default_count = 20;
  int max_count = 1000;
  std::int64_t now_ms = 0;  // for the `ap` prefix
};

// Errors: invalid_input naming the parameter for an unknown parameter (strict only), unknown modifier,
// or a value that does not parse (e.g. birthdate=1970-13, _count=abc, an unknown _sort parameter).
Result<SearchQuery> parse_search(const SearchParamRegistry& registry, std::string_view resource_type,
                                 const QueryParams& params, const SearchOptions& options);

}  // namespace fhirgate::fhir
