#include "gateway/store/index_rows.hpp"

#include <algorithm>
#include <iterator>

#include "gateway/store/sqlite.hpp"

namespace fhirgate::gateway::store {
namespace {

constexpr fhir::SearchParamType kTypes[] = {fhir::SearchParamType::string, fhir::SearchParamType::token,
                                            fhir::SearchParamType::date, fhir::SearchParamType::reference,
                                            fhir::SearchParamType::uri};

std::vector<IndexRow> stored_rows(Connection& db, std::int64_t rid) {
  std::vector<IndexRow> rows;
  {
    auto stmt = db.prepare("SELECT param, norm, exact FROM idx_string WHERE rid = ?");
    stmt.bind(1, rid);
    while (stmt.step())
      rows.push_back({fhir::SearchParamType::string, stmt.int64(0), std::string(stmt.text(1)),
                      std::string(stmt.text(2))});
  }
  {
    auto stmt = db.prepare("SELECT param, code, system FROM idx_token WHERE rid = ?");
    stmt.bind(1, rid);
    while (stmt.step())
      rows.push_back({fhir::SearchParamType::token, stmt.int64(0), std::string(stmt.text(1)),
                      std::string(stmt.text(2))});
  }
  {
    auto stmt = db.prepare("SELECT param, lo, hi FROM idx_date WHERE rid = ?");
    stmt.bind(1, rid);
    while (stmt.step())
      rows.push_back({fhir::SearchParamType::date, stmt.int64(0), {}, {}, stmt.int64(1), stmt.int64(2)});
  }
  {
    auto stmt = db.prepare("SELECT param, target_id, target_type FROM idx_reference WHERE rid = ?");
    stmt.bind(1, rid);
    while (stmt.step())
      rows.push_back({fhir::SearchParamType::reference, stmt.int64(0), std::string(stmt.text(1)),
                      std::string(stmt.text(2))});
  }
  {
    auto stmt = db.prepare("SELECT param, value FROM idx_uri WHERE rid = ?");
    stmt.bind(1, rid);
    while (stmt.step())
      rows.push_back({fhir::SearchParamType::uri, stmt.int64(0), std::string(stmt.text(1)), {}});
  }
  std::sort(rows.begin(), rows.end());
  return rows;
}

void insert_row(Connection& db, std::int64_t rid, const IndexRow& row) {
  switch (row.type) {
    case fhir::SearchParamType::string:
      db.prepare("INSERT OR IGNORE INTO idx_string (rid, param, norm, exact) VALUES (?, ?, ?, ?)")
          .bind(1, rid)
          .bind(2, row.param)
          .bind(3, row.a)
          .bind(4, row.b)
          .run();
      break;
    case fhir::SearchParamType::token:
      db.prepare("INSERT OR IGNORE INTO idx_token (rid, param, code, system) VALUES (?, ?, ?, ?)")
          .bind(1, rid)
          .bind(2, row.param)
          .bind(3, row.a)
          .bind(4, row.b)
          .run();
      break;
    case fhir::SearchParamType::date:
      db.prepare("INSERT OR IGNORE INTO idx_date (rid, param, lo, hi) VALUES (?, ?, ?, ?)")
          .bind(1, rid)
          .bind(2, row.param)
          .bind(3, row.lo)
          .bind(4, row.hi)
          .run();
      break;
    case fhir::SearchParamType::reference:
      db.prepare(
            "INSERT OR IGNORE INTO idx_reference (rid, param, target_id, target_type) VALUES (?, ?, ?, ?)")
          .bind(1, rid)
          .bind(2, row.param)
          .bind(3, row.a)
          .bind(4, row.b)
          .run();
      break;
    case fhir::SearchParamType::uri:
      db.prepare("INSERT OR IGNORE INTO idx_uri (rid, param, value) VALUES (?, ?, ?)")
          .bind(1, rid)
          .bind(2, row.param)
          .bind(3, row.a)
          .run();
      break;
  }
}

void delete_row(Connection& db, std::int64_t rid, const IndexRow& row) {
  switch (row.type) {
    case fhir::SearchParamType::string:
      db.prepare("DELETE FROM idx_string WHERE rid = ? AND param = ? AND norm = ? AND exact = ?")
          .bind(1, rid)
          .bind(2, row.param)
          .bind(3, row.a)
          .bind(4, row.b)
          .run();
      break;
    case fhir::SearchParamType::token:
      db.prepare("DELETE FROM idx_token WHERE rid = ? AND param = ? AND code = ? AND system = ?")
          .bind(1, rid)
          .bind(2, row.param)
          .bind(3, row.a)
          .bind(4, row.b)
          .run();
      break;
    case fhir::SearchParamType::date:
      db.prepare("DELETE FROM idx_date WHERE rid = ? AND param = ? AND lo = ? AND hi = ?")
          .bind(1, rid)
          .bind(2, row.param)
          .bind(3, row.lo)
          .bind(4, row.hi)
          .run();
      break;
    case fhir::SearchParamType::reference:
      db.prepare(
            "DELETE FROM idx_reference WHERE rid = ? AND param = ? AND target_id = ? AND target_type = ?")
          .bind(1, rid)
          .bind(2, row.param)
          .bind(3, row.a)
          .bind(4, row.b)
          .run();
      break;
    case fhir::SearchParamType::uri:
      db.prepare("DELETE FROM idx_uri WHERE rid = ? AND param = ? AND value = ?")
          .bind(1, rid)
          .bind(2, row.param)
          .bind(3, row.a)
          .run();
      break;
  }
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

void delete_index_rows(Connection& db, std::int64_t rid) {
  for (const auto type : kTypes)
    db.prepare(std::string("DELETE FROM ") + index_table(type) + " WHERE rid = ?").bind(1, rid).run();
}

}  // namespace fhirgate::gateway::store
