#include "gateway/store/index_rows.hpp"

#include <algorithm>
#include <iterator>

#include "gateway/store/sqlite.hpp"

namespace fhirgate::gateway::store {
namespace {

// Each index table: its parameter type and the columns holding IndexRow::a and ::b (for dates, lo and
// hi, which are integers). The statements are made from this, once.
struct Table {
  Table(fhir::SearchParamType t, const char* first, const char* second, bool integer_values)
      : type(t), integers(integer_values) {
    const std::string name = index_table(t);
    const std::string b = second ? std::string(", ") + second : std::string();
    select = "SELECT param, " + std::string(first) + b + " FROM " + name + " WHERE rid = ?";
    insert = "INSERT OR IGNORE INTO " + name + " (rid, param, " + first + b + ") VALUES (?, ?, ?" +
             (second ? ", ?" : "") + ")";
    remove = "DELETE FROM " + name + " WHERE rid = ? AND param = ? AND " + first + " = ?" +
             (second ? std::string(" AND ") + second + " = ?" : std::string());
    remove_all = "DELETE FROM " + name + " WHERE rid = ?";
    two_values = second != nullptr;
  }
  fhir::SearchParamType type;
  bool integers;
  bool two_values = false;
  std::string select, insert, remove, remove_all;
};

const std::vector<Table>& tables() {
  static const std::vector<Table> all = {
      {fhir::SearchParamType::string, "norm", "exact", false},
      {fhir::SearchParamType::token, "code", "system", false},
      {fhir::SearchParamType::date, "lo", "hi", true},
      {fhir::SearchParamType::reference, "target_id", "target_type", false},
      {fhir::SearchParamType::uri, "value", nullptr, false},
  };
  return all;
}

const Table& table_of(fhir::SearchParamType type) {
  for (const auto& t : tables())
    if (t.type == type) return t;
  return tables().front();
}

// Binds the row's values from `first` on: a/b, or lo/hi for dates.
void bind_values(Statement& stmt, const Table& t, int first, const IndexRow& row) {
  if (t.integers) {
    stmt.bind(first, row.lo).bind(first + 1, row.hi);
    return;
  }
  stmt.bind(first, row.a);
  if (t.two_values) stmt.bind(first + 1, row.b);
}

std::vector<IndexRow> stored_rows(Connection& db, std::int64_t rid) {
  std::vector<IndexRow> rows;
  for (const auto& t : tables()) {
    auto stmt = db.prepare(t.select);
    stmt.bind(1, rid);
    while (stmt.step()) {
      IndexRow row{t.type, stmt.int64(0), {}, {}, 0, 0};
      if (t.integers) {
        row.lo = stmt.int64(1);
        row.hi = stmt.int64(2);
      } else {
        row.a = std::string(stmt.text(1));
        if (t.two_values) row.b = std::string(stmt.text(2));
      }
      rows.push_back(std::move(row));
    }
  }
  std::sort(rows.begin(), rows.end());
  return rows;
}

void insert_row(Connection& db, std::int64_t rid, const IndexRow& row) {
  const Table& t = table_of(row.type);
  auto stmt = db.prepare(t.insert);
  stmt.bind(1, rid).bind(2, row.param);
  bind_values(stmt, t, 3, row);
  stmt.run();
}

void delete_row(Connection& db, std::int64_t rid, const IndexRow& row) {
  const Table& t = table_of(row.type);
  auto stmt = db.prepare(t.remove);
  stmt.bind(1, rid).bind(2, row.param);
  bind_values(stmt, t, 3, row);
  stmt.run();
}

}  // namespace

std::vector<IndexRow> index_rows_of(const fhir::SearchParamRegistry& registry, const ParamKeys& keys,
                                    const fhir::Node& resource) {
  std::vector<IndexRow> rows;
  for (auto& v : fhir::extract_index(registry, resource)) {
    IndexRow row{v.param->type, keys.of(*v.param), {}, {}, 0, 0};
    switch (v.param->type) {
      case fhir::SearchParamType::string:
        row.a = std::move(v.normalized);
        row.b = std::move(v.exact);
        break;
      case fhir::SearchParamType::token:
      case fhir::SearchParamType::reference:
        row.a = std::move(v.exact);
        row.b = std::move(v.system);
        break;
      case fhir::SearchParamType::date:
        row.lo = v.range.low;
        row.hi = v.range.high;
        break;
      case fhir::SearchParamType::uri:
        row.a = std::move(v.exact);
        break;
    }
    rows.push_back(std::move(row));
  }
  std::sort(rows.begin(), rows.end());
  rows.erase(std::unique(rows.begin(), rows.end()), rows.end());
  return rows;
}

void insert_index_rows(Connection& db, std::int64_t rid, const std::vector<IndexRow>& rows) {
  for (const auto& row : rows) insert_row(db, rid, row);
}

void replace_index_rows(Connection& db, std::int64_t rid, const std::vector<IndexRow>& rows) {
  const std::vector<IndexRow> old = stored_rows(db, rid);
  std::vector<IndexRow> gone, added;
  std::set_difference(old.begin(), old.end(), rows.begin(), rows.end(), std::back_inserter(gone));
  std::set_difference(rows.begin(), rows.end(), old.begin(), old.end(), std::back_inserter(added));
  for (const auto& row : gone) delete_row(db, rid, row);
  for (const auto& row : added) insert_row(db, rid, row);
}

void clear_index_tables(Connection& db) {
  for (const auto& t : tables()) db.exec("DELETE FROM " + std::string(index_table(t.type)));
}

void delete_index_rows(Connection& db, std::int64_t rid) {
  for (const auto& t : tables()) db.prepare(t.remove_all).bind(1, rid).run();
}

}  // namespace fhirgate::gateway::store
