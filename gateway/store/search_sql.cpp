// Search as SQL.
//
// Every clause becomes `r.rid IN (SELECT rid FROM idx_<type> WHERE param = K AND (<value> OR <value>...))`
// over the index table of its parameter type, so each clause is an index range scan on (param, value)
// and clauses AND together; `:not` and `:missing` turn IN into NOT IN. Sorting uses a correlated
// sub-select per sort key (min value ascending, max descending, as FHIR leaves multi-valued sorting to
// the server).
//
// Paging is by keyset, not offset: a cursor carries the sort values and rid of the last (or, for
// `previous`, the first) row of a page, and the next page is "rows after that position in the sort
// order". Writes between two page requests therefore never shift or repeat rows on later pages, and a
// page costs the same however deep it is.
#include "gateway/store/search_sql.hpp"

#include <limits>

#include "fhir/base64.hpp"
#include "fhir/json.hpp"
#include "fhir/text.hpp"
#include "gateway/store/param_keys.hpp"
#include "gateway/store/sqlite.hpp"

namespace fhirgate::gateway::store {
namespace {

using fhir::DatePrefix;
using fhir::SearchModifier;
using fhir::SearchParamType;

constexpr std::int64_t kMinTime = std::numeric_limits<std::int64_t>::min();

class Builder {
 public:
  explicit Builder(const ParamKeys& keys) : keys_(keys) {}

  std::string bind(SqlValue v) {
    binds_.push_back(std::move(v));
    return "?";
  }
  std::vector<SqlValue> take_binds() { return std::move(binds_); }

  // One AND-ed clause: `r.rid IN (...)` over the parameter's index table.
  std::string clause(const fhir::SearchClause& c) {
    const auto& param = *c.param;
    const std::string table = index_table(param.type);
    const std::string param_key = std::to_string(keys_.of(param));
    if (c.modifier == SearchModifier::missing) {
      const bool missing = !c.any_of.empty() && c.any_of.front().missing;
      return std::string("r.rid ") + (missing ? "NOT IN" : "IN") + " (SELECT rid FROM " + table +
             " WHERE param = " + param_key + ")";
    }
    // One indexed lookup per value, UNION ALL-ed: with `param = k AND (a OR b)` SQLite uses the index for
    // `param` alone and scans every value of the parameter (every identifier of every Patient).
    std::string any;
    for (const auto& value : c.any_of) {
      if (!any.empty()) any += " UNION ALL ";
      any += "SELECT rid FROM " + table + " WHERE param = " + param_key + " AND (" +
             condition(param.type, c.modifier, value) + ")";
    }
    const bool negate = c.modifier == SearchModifier::not_;
    if (any.empty()) return negate ? "1" : "0";
    return std::string("r.rid ") + (negate ? "NOT IN" : "IN") + " (" + any + ")";
  }

  // The sort value of one key for row r, as a correlated sub-select.
  std::string sort_expr(const fhir::SortKey& key) {
    const auto& param = *key.param;
    const std::string where = " WHERE rid = r.rid AND param = " + std::to_string(keys_.of(param)) + ")";
    const char* agg = key.descending ? "max" : "min";
    switch (param.type) {
      case SearchParamType::date:
        return std::string("COALESCE((SELECT ") + (key.descending ? "max(hi)" : "min(lo)") +
               " FROM idx_date" + where + ", " + std::to_string(kMinTime) + ")";
      case SearchParamType::string:
        return std::string("COALESCE((SELECT ") + agg + "(norm) FROM idx_string" + where + ", '')";
      case SearchParamType::token:
        return std::string("COALESCE((SELECT ") + agg + "(code) FROM idx_token" + where + ", '')";
      case SearchParamType::uri:
        return std::string("COALESCE((SELECT ") + agg + "(value) FROM idx_uri" + where + ", '')";
      case SearchParamType::reference:
        return std::string("COALESCE((SELECT ") + agg + "(target_id) FROM idx_reference" + where + ", '')";
    }
    return "''";
  }

 private:
  std::string condition(SearchParamType type, SearchModifier modifier, const fhir::SearchValue& v) {
    switch (type) {
      case SearchParamType::string: {
        if (modifier == SearchModifier::contains) return "instr(norm, " + bind(v.text) + ") > 0";
        if (modifier == SearchModifier::exact) {
          std::string sql = "norm = " + bind(fhir::normalize_for_search(v.text));
          return sql + " AND exact = " + bind(v.text);
        }
        std::string sql = "norm >= " + bind(v.text);
        return sql + " AND norm < " + bind(v.text + "\xff");
      }
      case SearchParamType::token: {
        std::string sql;
        if (!v.code.empty()) sql = "code = " + bind(v.code);
        if (v.has_system) {
          if (!sql.empty()) sql += " AND ";
          sql += "system = " + bind(v.system);
        }
        return sql.empty() ? "1" : sql;
      }
      case SearchParamType::reference: {
        std::string sql = "target_id = " + bind(v.code);
        if (!v.system.empty()) sql += " AND target_type = " + bind(v.system);
        return sql;
      }
      case SearchParamType::uri:
        return "value = " + bind(v.text);
      case SearchParamType::date:
        return date_condition(v);
    }
    return "0";
  }

  // R4 search.html#prefix: the resource's range [lo, hi] against the search range [sl, sh]. Binds are
  // made in text order.
  std::string date_condition(const fhir::SearchValue& v) {
    auto lo = [&] { return bind(v.range.low); };
    auto hi = [&] { return bind(v.range.high); };
    auto contained = [&] {
      std::string sql = "lo >= " + lo();
      return sql + " AND hi <= " + hi();
    };
    std::string sql;
    switch (v.prefix) {
      case DatePrefix::eq:
        return contained();
      case DatePrefix::ne:
        return "NOT (" + contained() + ")";
      case DatePrefix::gt:
        return "hi > " + hi();
      case DatePrefix::lt:
        return "lo < " + lo();
      case DatePrefix::ge:
        sql = "hi > " + hi();
        return sql + " OR (" + contained() + ")";
      case DatePrefix::le:
        sql = "lo < " + lo();
        return sql + " OR (" + contained() + ")";
      case DatePrefix::sa:
        return "lo > " + hi();
      case DatePrefix::eb:
        return "hi < " + lo();
      case DatePrefix::ap:
        sql = "lo <= " + hi();
        return sql + " AND hi >= " + lo();
    }
    return "0";
  }

  const ParamKeys& keys_;
  std::vector<SqlValue> binds_;
};

std::string base_where(Builder& b, const fhir::SearchQuery& query) {
  // With clauses, the matching rids drive the query (primary-key lookups); the unary `+` keeps SQLite from
  // scanning every resource of the type through the (type, id) index instead.
  const char* type_column = query.clauses.empty() ? "r.type = " : "+r.type = ";
  std::string where = type_column + b.bind(query.resource_type) + " AND r.deleted = 0";
  for (const auto& clause : query.clauses) where += " AND " + b.clause(clause);
  return where;
}

}  // namespace

void bind_all(Statement& stmt, const std::vector<SqlValue>& binds) {
  int i = 1;
  for (const auto& v : binds) {
    if (const auto* n = std::get_if<std::int64_t>(&v)) {
      stmt.bind(i++, *n);
    } else {
      stmt.bind(i++, std::get<std::string>(v));
    }
  }
}

std::string encode_cursor(const Cursor& cursor) {
  fhir::Node array = fhir::Node::array();
  array.push(fhir::Node::string(cursor.backward ? "p" : "n"));
  for (const auto& v : cursor.sort_values) {
    if (const auto* n = std::get_if<std::int64_t>(&v)) {
      array.push(fhir::Node::number(std::to_string(*n)));
    } else {
      array.push(fhir::Node::string(std::get<std::string>(v)));
    }
  }
  array.push(fhir::Node::number(std::to_string(cursor.rid)));
  return fhir::base64url_encode(fhir::write_json(array));
}

Result<Cursor> decode_cursor(const std::string& text, std::size_t sort_keys) {
  const Error bad = Error::make(ErrorCode::invalid_input, "Invalid or expired paging cursor", "_cursor");
  auto raw = fhir::base64url_decode(text);
  if (!raw) return bad;
  auto parsed = fhir::parse_json(*raw);
  if (!parsed || !parsed->is_array()) return bad;
  const auto& items = parsed->items();
  if (items.size() != sort_keys + 2 || !items.front().is_string() || !items.back().is_number()) return bad;
  Cursor cursor;
  cursor.backward = items.front().text() == "p";
  for (std::size_t i = 1; i + 1 < items.size(); ++i) {
    if (items[i].is_number()) {
      cursor.sort_values.emplace_back(std::stoll(items[i].text()));
    } else if (items[i].is_string()) {
      cursor.sort_values.emplace_back(items[i].text());
    } else {
      return bad;
    }
  }
  try {
    cursor.rid = std::stoll(items.back().text());
  } catch (const std::exception&) {
    return bad;
  }
  return cursor;
}

SqlQuery build_page_query(const fhir::SearchQuery& query, const ParamKeys& keys, const Cursor* cursor,
                          int limit) {
  Builder b(keys);
  std::vector<std::string> sort_exprs;
  std::vector<bool> descending;
  for (const auto& key : query.sort) {
    sort_exprs.push_back(b.sort_expr(key));
    descending.push_back(key.descending);
  }
  sort_exprs.push_back("r.rid");
  descending.push_back(false);

  std::string select = "SELECT r.rid, r.id, v.body";
  for (std::size_t i = 0; i + 1 < sort_exprs.size(); ++i) select += ", " + sort_exprs[i];
  // The select list's binds come first; base_where binds follow in text order.
  std::string where = base_where(b, query);

  const bool backward = cursor && cursor->backward;
  if (cursor) {
    // Rows strictly after (or, backward, before) the cursor in the sort order: an OR over the keys of
    // "equal on every earlier key and beyond on this one".
    std::string after;
    for (std::size_t i = 0; i < sort_exprs.size(); ++i) {
      std::string term;
      for (std::size_t j = 0; j < i; ++j) {
        const SqlValue& v = j + 1 < sort_exprs.size() ? cursor->sort_values[j] : SqlValue{cursor->rid};
        term += sort_exprs[j] + " = " + b.bind(v) + " AND ";
      }
      const bool forward_greater = !descending[i];
      const bool greater = backward ? !forward_greater : forward_greater;
      const SqlValue& v = i + 1 < sort_exprs.size() ? cursor->sort_values[i] : SqlValue{cursor->rid};
      term += sort_exprs[i] + (greater ? " > " : " < ") + b.bind(v);
      after += (after.empty() ? "(" : " OR (") + term + ")";
    }
    where += " AND (" + after + ")";
  }

  std::string order;
  for (std::size_t i = 0; i < sort_exprs.size(); ++i) {
    const bool desc = backward ? !descending[i] : descending[i];
    order += (i ? ", " : "") + sort_exprs[i] + (desc ? " DESC" : "");
  }
  SqlQuery q;
  q.sql = select + " FROM resource r JOIN resource_version v ON v.vid = r.vid WHERE " + where + " ORDER BY " +
          order + " LIMIT " + std::to_string(limit);
  q.binds = b.take_binds();
  return q;
}

SqlQuery build_count_query(const fhir::SearchQuery& query, const ParamKeys& keys) {
  Builder b(keys);
  SqlQuery q;
  q.sql = "SELECT count(*) FROM resource r WHERE " + base_where(b, query);
  q.binds = b.take_binds();
  return q;
}

}  // namespace fhirgate::gateway::store
