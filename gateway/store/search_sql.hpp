#pragma once
// Translates a parsed FHIR search (fhir::SearchQuery) into SQL over the index tables. Internal to store.
#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "fhir/result.hpp"
#include "fhir/search_query.hpp"

namespace fhirgate::gateway::store {

class ParamKeys;
class Statement;

using SqlValue = std::variant<std::int64_t, std::string>;

struct SqlQuery {
  std::string sql;
  std::vector<SqlValue> binds;
};

void bind_all(Statement& stmt, const std::vector<SqlValue>& binds);

// A paging position: the sort values and rid of the row next to which a page starts.
struct Cursor {
  bool backward = false;  // a `previous` link: rows before the position
  std::vector<SqlValue> sort_values;
  std::int64_t rid = 0;
};
std::string encode_cursor(const Cursor& cursor);
// Errors: invalid_input when the text is not a cursor for a query with `sort_keys` sort keys.
Result<Cursor> decode_cursor(const std::string& text, std::size_t sort_keys);

// SELECT rid, id, body, <sort values...> of the matching current resources, in the query's order
// (reversed for a backward cursor), at most `limit` rows.
SqlQuery build_page_query(const fhir::SearchQuery& query, const ParamKeys& keys, const Cursor* cursor,
                          int limit);
// SELECT count(*) of the matching current resources.
SqlQuery build_count_query(const fhir::SearchQuery& query, const ParamKeys& keys);

}  // namespace fhirgate::gateway::store
