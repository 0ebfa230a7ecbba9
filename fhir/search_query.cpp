#include "fhir/search_query.hpp"

#include <algorithm>
#include <limits>

#include "fhir/text.hpp"

namespace fhirgate::fhir {
namespace {

Error invalid(std::string diagnostics, std::string_view parameter) {
  return Error::make(ErrorCode::invalid_input, std::move(diagnostics), std::string(parameter));
}

std::string quoted(std::string_view text) {
  return "'" + std::string(text) + "'";
}

// ---- query strings -------------------------------------------------------------------------------------

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

// application/x-www-form-urlencoded decoding: `+` is a space, %XX a byte.
Result<std::string> form_decode(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '+') {
      out.push_back(' ');
      continue;
    }
    if (c != '%') {
      out.push_back(c);
      continue;
    }
    const int high = i + 2 < text.size() ? hex_digit(text[i + 1]) : -1;
    const int low = i + 2 < text.size() ? hex_digit(text[i + 2]) : -1;
    if (high < 0 || low < 0) {
      return Error::make(ErrorCode::invalid_input, "malformed percent-encoding in query");
    }
    out.push_back(static_cast<char>(high * 16 + low));
    i += 2;
  }
  return out;
}

bool is_unreserved(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
         c == '_' || c == '~';
}

// ---- escaping inside values (search.html#escaping) -----------------------------------------------------

constexpr char kEscape = '\\';

// Position of the first `separator` at or after `from` that is not preceded by an escaping backslash.
std::size_t find_unescaped(std::string_view text, char separator, std::size_t from = 0) {
  for (std::size_t i = from; i < text.size(); ++i) {
    if (text[i] == kEscape) {
      ++i;
    } else if (text[i] == separator) {
      return i;
    }
  }
  return std::string_view::npos;
}

// Splits on unescaped `separator`; the pieces keep their escapes.
std::vector<std::string_view> split_unescaped(std::string_view text, char separator) {
  std::vector<std::string_view> pieces;
  std::size_t start = 0;
  while (true) {
    const std::size_t end = find_unescaped(text, separator, start);
    pieces.push_back(
        text.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start));
    if (end == std::string_view::npos) return pieces;
    start = end + 1;
  }
}

// Resolves `\,` `\|` `\$` and `\\`; any other backslash is literal.
std::string unescape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    const bool escaped = text[i] == kEscape && i + 1 < text.size() &&
                         std::string_view(",|$\\").find(text[i + 1]) != std::string_view::npos;
    if (escaped) ++i;
    out.push_back(text[i]);
  }
  return out;
}

// ---- modifiers and prefixes ----------------------------------------------------------------------------

struct ModifierName {
  std::string_view name;
  SearchModifier modifier;
};
constexpr ModifierName kModifiers[] = {
    {"exact", SearchModifier::exact},
    {"contains", SearchModifier::contains},
    {"missing", SearchModifier::missing},
    {"not", SearchModifier::not_},
};

bool modifier_applies(SearchModifier modifier, SearchParamType type) {
  switch (modifier) {
    case SearchModifier::none:
    case SearchModifier::missing:
      return true;
    case SearchModifier::exact:
    case SearchModifier::contains:
      return type == SearchParamType::string;
    case SearchModifier::not_:
      return type == SearchParamType::token;
  }
  return false;
}

// `name:modifier` split at the first colon.
struct ParamName {
  std::string_view code;
  std::optional<std::string_view> modifier;
};

ParamName split_name(std::string_view name) {
  const std::size_t colon = name.find(':');
  if (colon == std::string_view::npos) return {name, std::nullopt};
  return {name.substr(0, colon), name.substr(colon + 1)};
}

Result<SearchModifier> parse_modifier(std::optional<std::string_view> text, const SearchParamDef& param) {
  if (!text) return SearchModifier::none;
  for (const auto& m : kModifiers) {
    if (m.name == *text && modifier_applies(m.modifier, param.type)) return m.modifier;
  }
  return invalid("Modifier " + quoted(*text) + " is not supported for " + to_string(param.type) +
                     " parameter " + param.code,
                 param.code);
}

struct PrefixName {
  std::string_view name;
  DatePrefix prefix;
};
constexpr PrefixName kPrefixes[] = {
    {"eq", DatePrefix::eq}, {"ne", DatePrefix::ne}, {"gt", DatePrefix::gt},
    {"lt", DatePrefix::lt}, {"ge", DatePrefix::ge}, {"le", DatePrefix::le},
    {"sa", DatePrefix::sa}, {"eb", DatePrefix::eb}, {"ap", DatePrefix::ap},
};

// The spec's recommended approximation: widen by 10% of the gap between now and the value.
TimeRange approximate(TimeRange range, std::int64_t now_ms) {
  const std::int64_t gap = now_ms < range.low    ? range.low - now_ms
                           : now_ms > range.high ? now_ms - range.high
                                                 : 0;
  return {range.low - gap / 10, range.high + gap / 10};
}

// ---- values, one function per parameter type -----------------------------------------------------------

SearchValue string_value(std::string_view piece, SearchModifier modifier) {
  SearchValue v;
  v.text = modifier == SearchModifier::exact ? unescape(piece) : normalize_for_search(unescape(piece));
  return v;
}

SearchValue token_value(std::string_view piece) {
  SearchValue v;
  const std::size_t bar = find_unescaped(piece, '|');
  v.has_system = bar != std::string_view::npos;
  if (v.has_system) v.system = unescape(piece.substr(0, bar));
  v.code = unescape(v.has_system ? piece.substr(bar + 1) : piece);
  return v;
}

Result<SearchValue> date_value(std::string_view piece, const SearchParamDef& param,
                               const SearchOptions& options) {
  SearchValue v;
  std::string text(piece);
  for (const auto& p : kPrefixes) {
    if (text.starts_with(p.name)) {
      v.prefix = p.prefix;
      text.erase(0, p.name.size());
      break;
    }
  }
  // An unencoded `+` in a zone offset arrives as a space; a date never contains one otherwise.
  std::replace(text.begin(), text.end(), ' ', '+');
  const auto range = parse_time_range(text);
  if (!range) return invalid("Invalid date " + quoted(piece) + " for parameter " + param.code, param.code);
  v.range = v.prefix == DatePrefix::ap ? approximate(*range, options.now_ms) : *range;
  return v;
}

// The reference part of an absolute URL, its last two path segments: `http://h/fhir/Patient/1` ->
// `Patient/1`. Other text is returned as it is; an absolute URL without two path segments gives an empty
// view.
std::string_view reference_tail(std::string_view text) {
  const std::size_t scheme = text.find("://");
  if (scheme == std::string_view::npos) return text;
  const std::size_t path_start = text.find('/', scheme + 3);
  if (path_start == std::string_view::npos) return {};
  const std::string_view path = text.substr(path_start + 1);
  const std::size_t id_slash = path.rfind('/');
  if (id_slash == std::string_view::npos || id_slash == 0) return {};
  const std::size_t type_slash = path.rfind('/', id_slash - 1);
  return type_slash == std::string_view::npos ? path : path.substr(type_slash + 1);
}

// `Type/id`, `id`, or an absolute URL ending in `Type/id`.
Result<SearchValue> reference_value(std::string_view piece, const SearchParamDef& param) {
  const std::string text = unescape(piece);
  const std::string_view reference = reference_tail(text);
  const std::size_t slash = reference.find('/');
  SearchValue v;
  if (slash != std::string_view::npos) {
    v.system = reference.substr(0, slash);
    v.code = reference.substr(slash + 1);
  } else {
    v.code = reference;
  }
  const bool well_formed = !v.code.empty() && v.code.find('/') == std::string::npos &&
                           (slash == std::string_view::npos || !v.system.empty());
  if (!well_formed) {
    return invalid("Invalid reference " + quoted(piece) + " for parameter " + param.code, param.code);
  }
  return v;
}

Result<SearchValue> parse_value(std::string_view piece, const SearchParamDef& param, SearchModifier modifier,
                                const SearchOptions& options) {
  switch (param.type) {
    case SearchParamType::string:
      return string_value(piece, modifier);
    case SearchParamType::token:
      return token_value(piece);
    case SearchParamType::date:
      return date_value(piece, param, options);
    case SearchParamType::reference:
      return reference_value(piece, param);
    case SearchParamType::uri: {
      SearchValue v;
      v.text = unescape(piece);
      return v;
    }
  }
  return invalid("Unsupported parameter type", param.code);
}

// A clause for `param[:modifier]=value`. Empty comma-separated values are skipped, so a clause may come back
// with no values at all (`family=`); the caller ignores it.
Result<SearchClause> parse_clause(const SearchParamDef& param, std::optional<std::string_view> modifier_text,
                                  std::string_view value, const SearchOptions& options) {
  auto modifier = parse_modifier(modifier_text, param);
  if (!modifier) return std::move(modifier).error();
  SearchClause clause;
  clause.param = &param;
  clause.modifier = *modifier;
  if (clause.modifier == SearchModifier::missing) {
    if (value != "true" && value != "false") {
      return invalid("Value of " + param.code + ":missing must be true or false, got " + quoted(value),
                     param.code);
    }
    SearchValue v;
    v.missing = value == "true";
    clause.any_of.push_back(std::move(v));
    return clause;
  }
  for (std::string_view piece : split_unescaped(value, ',')) {
    if (piece.empty()) continue;
    auto v = parse_value(piece, param, clause.modifier, options);
    if (!v) return std::move(v).error();
    clause.any_of.push_back(std::move(v).value());
  }
  return clause;
}

// ---- result parameters (_count, _sort, ...) ------------------------------------------------------------

struct Context {
  const SearchParamRegistry& registry;
  std::string_view resource_type;
  const SearchOptions& options;
};

// Applies the value to the query; returns the value to show in the self link.
using ControlHandler = Result<std::string> (*)(std::string_view value, const Context& ctx,
                                               SearchQuery& query);

Result<std::string> apply_count(std::string_view value, const Context& ctx, SearchQuery& query) {
  const bool digits =
      !value.empty() && std::all_of(value.begin(), value.end(), [](char c) { return c >= '0' && c <= '9'; });
  if (!digits) return invalid("_count must be a non-negative integer, got " + quoted(value), "_count");
  std::int64_t count = 0;
  for (char c : value) {
    count = std::min<std::int64_t>(count * 10 + (c - '0'), std::numeric_limits<int>::max());
  }
  query.count = static_cast<int>(std::min<std::int64_t>(count, ctx.options.max_count));
  return std::to_string(query.count);
}

bool is_sortable(SearchParamType type) {
  return type != SearchParamType::reference;
}

Result<std::string> apply_sort(std::string_view value, const Context& ctx, SearchQuery& query) {
  for (std::string_view item : split_unescaped(value, ',')) {
    SortKey key;
    key.descending = item.starts_with('-');
    const std::string_view code = key.descending ? item.substr(1) : item;
    key.param = ctx.registry.find(ctx.resource_type, code);
    if (key.param == nullptr || !is_sortable(key.param->type)) {
      return invalid(
          "Cannot sort by " + quoted(code) + " for resource type " + std::string(ctx.resource_type), "_sort");
    }
    query.sort.push_back(key);
  }
  return std::string(value);
}

Result<std::string> apply_total(std::string_view value, const Context&, SearchQuery& query) {
  if (value != "none" && value != "estimate" && value != "accurate") {
    return invalid("_total must be none, estimate or accurate, got " + quoted(value), "_total");
  }
  query.total_accurate = value != "none";
  return std::string(value);
}

Result<std::string> apply_summary(std::string_view value, const Context&, SearchQuery& query) {
  if (value != "count" && value != "false") {
    return invalid("_summary=" + std::string(value) + " is not supported", "_summary");
  }
  query.summary_count = value == "count";
  return std::string(value);
}

bool is_element_name(std::string_view name) {
  const auto is_alpha = [](char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'); };
  return !name.empty() && is_alpha(name[0]) &&
         std::all_of(name.begin(), name.end(), [&](char c) { return is_alpha(c) || (c >= '0' && c <= '9'); });
}

Result<std::string> apply_elements(std::string_view value, const Context&, SearchQuery& query) {
  for (std::string_view name : split_unescaped(value, ',')) {
    if (!is_element_name(name)) {
      return invalid("Invalid element name " + quoted(name) + " in _elements", "_elements");
    }
    query.elements.emplace_back(name);
  }
  return std::string(value);
}

Result<std::string> apply_cursor(std::string_view value, const Context&, SearchQuery& query) {
  query.cursor = value;
  return std::string(value);
}

Result<std::string> accept(std::string_view value, const Context&, SearchQuery&) {
  return std::string(value);
}

struct ControlParam {
  std::string_view name;
  ControlHandler apply;
  bool in_self_link;
};
constexpr ControlParam kControlParams[] = {
    {"_count", apply_count, true},     {"_sort", apply_sort, true},         {"_total", apply_total, true},
    {"_summary", apply_summary, true}, {"_elements", apply_elements, true}, {"_cursor", apply_cursor, false},
    {"_format", accept, false},        {"_pretty", accept, false},
};

const ControlParam* find_control(std::string_view name) {
  for (const auto& c : kControlParams) {
    if (c.name == name) return &c;
  }
  return nullptr;
}

}  // namespace

Result<QueryParams> parse_query_string(std::string_view query) {
  QueryParams params;
  std::size_t start = 0;
  while (start <= query.size()) {
    const std::size_t end = std::min(query.find('&', start), query.size());
    const std::string_view piece = query.substr(start, end - start);
    start = end + 1;
    if (piece.empty()) continue;
    const std::size_t eq = piece.find('=');
    auto name = form_decode(piece.substr(0, eq));
    if (!name) return std::move(name).error();
    auto value = form_decode(eq == std::string_view::npos ? std::string_view() : piece.substr(eq + 1));
    if (!value) return std::move(value).error();
    params.emplace_back(std::move(name).value(), std::move(value).value());
  }
  return params;
}

std::string url_encode(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    if (is_unreserved(c)) {
      out.push_back(c);
      continue;
    }
    const auto b = static_cast<unsigned char>(c);
    out.push_back('%');
    out.push_back(kHex[b >> 4]);
    out.push_back(kHex[b & 0x0F]);
  }
  return out;
}

Result<SearchQuery> parse_search(const SearchParamRegistry& registry, std::string_view resource_type,
                                 const QueryParams& params, const SearchOptions& options) {
  const Context ctx{registry, resource_type, options};
  SearchQuery query;
  query.resource_type = resource_type;
  query.count = std::min(options.default_count, options.max_count);
  std::vector<const ControlParam*> seen_controls;

  for (const auto& [raw_name, raw_value] : params) {
    const auto [name, modifier] = split_name(raw_name);

    if (const ControlParam* control = find_control(name)) {
      if (modifier) return invalid(std::string(name) + " takes no modifier", name);
      if (std::find(seen_controls.begin(), seen_controls.end(), control) != seen_controls.end()) {
        return invalid(std::string(name) + " may be given only once", name);
      }
      seen_controls.push_back(control);
      auto link_value = control->apply(raw_value, ctx, query);
      if (!link_value) return std::move(link_value).error();
      if (control->in_self_link) query.understood.emplace_back(raw_name, std::move(link_value).value());
      continue;
    }

    const SearchParamDef* param = registry.find(resource_type, name);
    if (param == nullptr) {
      if (options.strict) {
        return invalid(
            "Unknown search parameter " + quoted(name) + " for resource type " + std::string(resource_type),
            name);
      }
      if (std::find(query.ignored.begin(), query.ignored.end(), name) == query.ignored.end()) {
        query.ignored.emplace_back(name);
      }
      continue;
    }

    auto clause = parse_clause(*param, modifier, raw_value, options);
    if (!clause) return std::move(clause).error();
    if (clause->any_of.empty()) continue;
    query.clauses.push_back(std::move(clause).value());
    query.understood.emplace_back(raw_name, raw_value);
  }
  return query;
}

}  // namespace fhirgate::fhir
