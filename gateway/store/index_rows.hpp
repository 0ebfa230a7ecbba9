#pragma once
// The rows a resource contributes to the idx_* tables, and keeping them in step with its current version.
//
// An update rewrites only the rows that changed: the stored rows of the resource (one range read of each
// table's primary key, which starts with rid) are compared with the rows of the new version, and only the
// difference is deleted and inserted. A typical update changes one or two rows (meta.lastUpdated at
// least), so it touches a few B-tree pages instead of every index entry of the resource.
#include <compare>
#include <cstdint>
#include <string>
#include <vector>

#include "fhir/json.hpp"
#include "fhir/search_params.hpp"
#include "gateway/store/param_keys.hpp"

namespace fhirgate::gateway::store {

class Connection;

struct IndexRow {
  fhir::SearchParamType type;  // selects the table
  std::int64_t param = 0;      // search_param.id
  // string: a = normalized, b = exact; token: a = code, b = system; reference: a = target id,
  // b = target type; uri: a = value; date: lo/hi.
  std::string a, b;
  std::int64_t lo = 0, hi = 0;
  auto operator<=>(const IndexRow&) const = default;
};

// The resource's rows, sorted and without duplicates.
std::vector<IndexRow> index_rows_of(const fhir::SearchParamRegistry& registry, const ParamKeys& keys,
                                    const fhir::Node& resource);
// Inserts the rows of a resource that has none yet.
void insert_index_rows(Connection& db, std::int64_t rid, const std::vector<IndexRow>& rows);
// Makes the stored rows of `rid` equal to `rows` (sorted, unique), writing only the difference.
void replace_index_rows(Connection& db, std::int64_t rid, const std::vector<IndexRow>& rows);
// Removes every row of `rid`.
void delete_index_rows(Connection& db, std::int64_t rid);
// Empties every index table (before indexing everything again).
void clear_index_tables(Connection& db);

}  // namespace fhirgate::gateway::store
