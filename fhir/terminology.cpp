#include "fhir/terminology.hpp"

// Terminology keeps the definitions (CodeSystems as concept tables, ValueSets as their compose and
// expansion, both cut down to what membership needs) and, per ValueSet, a resolved membership: the set
// of system|code keys plus what the set could not enumerate.
//
// Why an "open" part: a ValueSet that includes all of LOINC, a SNOMED filter, a CodeSystem whose
// content is not `complete`, or a ValueSet we do not have, cannot say "not a member" for codes of that
// system; it says unknown. Openness is tracked per system so that a set mixing an enumerable FHIR code
// system with all of UCUM still rejects a wrong FHIR code. Two unbounded systems are checked by shape
// instead (pragmatic, since no server is available): urn:ietf:bcp:47 (a language tag: a 2-8 letter
// primary subtag, then 1-8 alphanumeric subtags) and urn:ietf:bcp:13 (a mime type: type/subtype with
// RFC 6838 name characters, optionally followed by `; parameter=value`).
//
// Where a ValueSet carries an expansion (the published R4 expansions), the expansion is the member list
// (abstract entries excluded, inactive ones kept); the compose only contributes openness. Otherwise the
// compose is evaluated: whole CodeSystems (minus notSelectable/abstract concepts), explicit concepts,
// `concept` filters (= is-a descendent-of is-not-a in not-in regex child-of descendent-leaf
// generalizes) on a CodeSystem we hold, property filters (= in not-in regex exists) on the CodeSystems
// a run brings (their property values are kept; the shipped tables keep none, so their load stays as
// small and quick as before), imported ValueSets (union; intersected with the include's system part
// when both are given), and excludes. Other filters make that system open.
//
// Membership is resolved eagerly in add(), for the ValueSets added and for every ValueSet that depends
// on something added, so lookups only read. System URLs are interned to small ids so the per-code
// entries stay short. load_from hands the parse tree's memory (several times the retained tables) back
// to the OS with malloc_trim where glibc provides it.

#include <algorithm>
#include <cstdint>
#include <functional>
#include <optional>
#include <set>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "fhir/files.hpp"
#include "fhir/regex.hpp"

namespace fhirgate::fhir {
namespace {

constexpr std::string_view kBcp47 = "urn:ietf:bcp:47";
constexpr std::string_view kBcp13 = "urn:ietf:bcp:13";
constexpr char kSeparator = '\x1f';

std::string_view strip_version(std::string_view url) {
  const auto bar = url.find('|');
  return bar == std::string_view::npos ? url : url.substr(0, bar);
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

bool is_alpha(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
bool is_digit(char c) {
  return c >= '0' && c <= '9';
}
bool is_alnum(char c) {
  return is_alpha(c) || is_digit(c);
}

bool is_language_tag(std::string_view tag) {
  std::size_t start = 0;
  bool first = true;
  while (true) {
    const auto dash = tag.find('-', start);
    const std::string_view part = tag.substr(start, dash == std::string_view::npos ? tag.npos : dash - start);
    if (part.empty() || part.size() > 8) return false;
    if (first) {
      const bool private_use = part == "x" || part == "X" || part == "i" || part == "I";
      if (!private_use && part.size() < 2) return false;
      if (!std::all_of(part.begin(), part.end(), is_alpha)) return false;
    } else if (!std::all_of(part.begin(), part.end(), is_alnum)) {
      return false;
    }
    first = false;
    if (dash == std::string_view::npos) return true;
    start = dash + 1;
  }
}

bool is_restricted_name(std::string_view name) {
  if (name.empty() || name.size() > 127 || !is_alnum(name.front())) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return is_alnum(c) || std::string_view("!#$&-^_.+").find(c) != std::string_view::npos;
  });
}

bool is_mime_type(std::string_view value) {
  // R4 lets the format elements bound to the mime-type value set (CapabilityStatement.format, TestScript
  // accept/contentType) use the shorthands "xml | json | ttl" as well as a mime type.
  if (value == "xml" || value == "json" || value == "ttl") return true;
  const auto semicolon = value.find(';');
  std::string_view type = value.substr(0, semicolon);
  while (!type.empty() && type.back() == ' ') type.remove_suffix(1);
  const auto slash = type.find('/');
  if (slash == std::string_view::npos) return false;
  if (!is_restricted_name(type.substr(0, slash)) || !is_restricted_name(type.substr(slash + 1))) return false;
  if (semicolon == std::string_view::npos) return true;
  std::string_view rest = value.substr(semicolon + 1);
  while (true) {
    const auto next = rest.find(';');
    std::string_view param = rest.substr(0, next);
    while (!param.empty() && param.front() == ' ') param.remove_prefix(1);
    while (!param.empty() && param.back() == ' ') param.remove_suffix(1);
    const auto eq = param.find('=');
    if (eq == std::string_view::npos || eq == 0 || eq + 1 == param.size()) return false;
    if (next == std::string_view::npos) break;
    rest = rest.substr(next + 1);
  }
  return true;
}

constexpr std::string_view kSnomed = "http://snomed.info/sct";
constexpr std::string_view kLoinc = "http://loinc.org";

// A SNOMED CT concept identifier (6-18 digits, no leading zero, Verhoeff check digit), or something
// that is not a bare identifier (a post-coordinated expression: it has operators or terms), which only
// a terminology server can check.
bool snomed_shaped(std::string_view code) {
  if (!std::all_of(code.begin(), code.end(), is_alnum)) return true;
  if (!std::all_of(code.begin(), code.end(), is_digit)) return false;
  if (code.size() < 6 || code.size() > 18 || code.front() == '0') return false;
  static constexpr std::uint8_t kD[10][10] = {{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, {1, 2, 3, 4, 0, 6, 7, 8, 9, 5},
                                              {2, 3, 4, 0, 1, 7, 8, 9, 5, 6}, {3, 4, 0, 1, 2, 8, 9, 5, 6, 7},
                                              {4, 0, 1, 2, 3, 9, 5, 6, 7, 8}, {5, 9, 8, 7, 6, 0, 4, 3, 2, 1},
                                              {6, 5, 9, 8, 7, 1, 0, 4, 3, 2}, {7, 6, 5, 9, 8, 2, 1, 0, 4, 3},
                                              {8, 7, 6, 5, 9, 3, 2, 1, 0, 4}, {9, 8, 7, 6, 5, 4, 3, 2, 1, 0}};
  static constexpr std::uint8_t kP[8][10] = {{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, {1, 5, 7, 6, 2, 8, 3, 0, 9, 4},
                                             {5, 8, 0, 3, 7, 9, 6, 1, 4, 2}, {8, 9, 1, 6, 0, 4, 3, 5, 2, 7},
                                             {9, 4, 5, 3, 1, 2, 6, 8, 7, 0}, {4, 2, 8, 6, 5, 7, 3, 9, 0, 1},
                                             {2, 7, 9, 3, 8, 0, 6, 4, 1, 5}, {7, 0, 4, 6, 9, 1, 3, 2, 5, 8}};
  std::uint8_t check = 0;
  for (std::size_t i = 0; i < code.size(); ++i) {
    const auto digit = static_cast<std::uint8_t>(code[code.size() - 1 - i] - '0');
    check = kD[check][kP[i % 8][digit]];
  }
  return check == 0;
}

// A LOINC code: digits, '-', a mod-10 (Luhn) check digit; or a part, answer, group or answer list
// code (two capital letters starting with L, digits, '-', a digit).
bool loinc_shaped(std::string_view code) {
  const auto dash = code.find('-');
  if (dash == std::string_view::npos || dash + 2 != code.size() || !is_digit(code.back())) return false;
  std::string_view number = code.substr(0, dash);
  if (number.size() >= 2 && number[0] == 'L' && number[1] >= 'A' && number[1] <= 'Z') {
    number.remove_prefix(2);
    return !number.empty() && std::all_of(number.begin(), number.end(), is_digit);
  }
  if (number.empty() || !std::all_of(number.begin(), number.end(), is_digit)) return false;
  int sum = 0;
  for (std::size_t i = 0; i < number.size(); ++i) {
    int digit = number[number.size() - 1 - i] - '0';
    if (i % 2 == 0) {
      digit *= 2;
      if (digit > 9) digit -= 9;
    }
    sum += digit;
  }
  return (10 - sum % 10) % 10 == code.back() - '0';
}

struct Concept {
  std::string code;
  std::string display;
  bool not_selectable = false;
  std::vector<std::uint32_t> children;
};

struct CodeSystem {
  bool case_sensitive = true;
  bool complete = true;
  std::vector<Concept> concepts;
  // Per concept, its property values (code, value: the text of a primitive, system#code of a Coding),
  // kept only for the code systems a run brings (see Data::keep_properties); `has_properties` says so.
  bool has_properties = false;
  std::vector<std::vector<std::pair<std::string, std::string>>> properties;
  std::unordered_map<std::string, std::uint32_t> index;

  std::string key(std::string_view code) const { return case_sensitive ? std::string(code) : lower(code); }
  const Concept* find(std::string_view code) const {
    auto it = index.find(key(code));
    return it == index.end() ? nullptr : &concepts[it->second];
  }
};

struct ConceptRef {
  std::string code;
  std::string display;
};

struct Filter {
  std::string property;
  std::string op;
  std::string value;
};

struct Include {
  std::string system;
  std::vector<ConceptRef> concepts;
  std::vector<Filter> filters;
  std::vector<std::string> value_sets;
};

struct ExpansionCode {
  std::uint32_t system = 0;
  std::string code;
};

struct ValueSetDefinition {
  std::vector<Include> includes;
  std::vector<Include> excludes;
  bool has_expansion = false;
  bool expansion_open = false;
  std::vector<ExpansionCode> expansion;
};

// A membership. While it is resolved, `keys` holds system id + kSeparator + normalised code; once
// resolved, `codes` maps each normalised code (lower-cased for case-insensitive systems) to the ids of
// its systems, and `keys` is empty.
struct Membership {
  std::unordered_set<std::string> keys;
  std::unordered_multimap<std::string, std::uint32_t> codes;
  std::set<std::string, std::less<>> open_systems;
  bool open_all = false;
  bool any_language = false;
  bool any_mime_type = false;
};

// Hashing that lets string_views look up std::string keys without a copy.
struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

}  // namespace

struct Terminology::Data {
  // Concept property values are kept (for property filters) only for code systems added after the
  // start-up load: the shipped tables stay as small and quick to load as they were.
  bool keep_properties = false;
  std::unordered_map<std::string, CodeSystem, StringHash, std::equal_to<>> code_systems;
  std::unordered_set<std::string, StringHash, std::equal_to<>> supplements;
  std::unordered_map<std::string, ValueSetDefinition> definitions;
  std::unordered_map<std::string, Membership> memberships;
  std::vector<std::string> systems;
  std::unordered_map<std::string, std::uint32_t> system_ids;

  std::uint32_t intern(std::string_view system) {
    auto [it, inserted] = system_ids.emplace(std::string(system), static_cast<std::uint32_t>(systems.size()));
    if (inserted) systems.emplace_back(system);
    return it->second;
  }

  const CodeSystem* enumerable(std::string_view system) const {
    auto it = code_systems.find(system);
    return it == code_systems.end() || !it->second.complete ? nullptr : &it->second;
  }

  bool case_sensitive(std::string_view system) const {
    if (system == kBcp47 || system == kBcp13) return false;
    auto it = code_systems.find(system);
    return it == code_systems.end() || it->second.case_sensitive;
  }

  std::string normalise(std::string_view system, std::string_view code) const {
    return case_sensitive(system) ? std::string(code) : lower(code);
  }

  std::string key(std::string_view system, std::string_view code) { return key(intern(system), code); }
  std::string key(std::uint32_t system, std::string_view code) const {
    std::string k = std::to_string(system);
    k += kSeparator;
    k += normalise(systems[system], code);
    return k;
  }
  std::unordered_set<std::string> keys_of(const Membership& m) const {
    std::unordered_set<std::string> out;
    for (const auto& [code, system] : m.codes) out.insert(std::to_string(system) + kSeparator + code);
    return out;
  }

  void add_code_system(const Node& r);
  void add_value_set(const Node& r);
  void resolve(const std::string& url, std::set<std::string>& in_progress);
  void evaluate_include(const Include& inc, Membership& out, std::set<std::string>& in_progress);
  void mark_open(const Include& inc, Membership& out) const;
};

namespace {

bool property_true(const Node& element, std::string_view name) {
  const Node* props = element.find("property");
  if (!props) return false;
  for (const Node& p : props->items()) {
    if (p.string_at("code") != name) continue;
    if (const Node* v = p.find("valueBoolean"); v && v->as_bool()) return true;
  }
  return false;
}

void collect_concepts(const Node& list, CodeSystem& cs, std::int64_t parent,
                      std::vector<std::pair<std::uint32_t, std::string>>& links) {
  for (const Node& c : list.items()) {
    const std::string_view code = c.string_at("code");
    if (code.empty()) continue;
    auto [it, inserted] = cs.index.emplace(cs.key(code), static_cast<std::uint32_t>(cs.concepts.size()));
    if (inserted) {
      Concept entry;
      entry.code = std::string(code);
      entry.display = std::string(c.string_at("display"));
      entry.not_selectable = property_true(c, "notSelectable") || property_true(c, "abstract");
      cs.concepts.push_back(std::move(entry));
    }
    const std::uint32_t self = it->second;
    if (parent >= 0) cs.concepts[static_cast<std::size_t>(parent)].children.push_back(self);
    if (cs.has_properties) {
      cs.properties.resize(cs.concepts.size());
      if (parent >= 0)
        cs.properties[self].emplace_back("parent", cs.concepts[static_cast<std::size_t>(parent)].code);
      if (const Node* props = c.find("property")) {
        for (const Node& p : props->items()) {
          for (const auto& [member, value] : p.members()) {
            if (!member.starts_with("value")) continue;
            std::string text = value.is_object() ? std::string(value.string_at("system")) + "#" +
                                                       std::string(value.string_at("code"))
                                                 : value.text();
            cs.properties[self].emplace_back(std::string(p.string_at("code")), std::move(text));
          }
        }
      }
    }
    if (const Node* props = c.find("property")) {
      for (const Node& p : props->items()) {
        const std::string_view name = p.string_at("code");
        const std::string_view value = p.string_at("valueCode");
        if (value.empty()) continue;
        if (name == "child") links.emplace_back(self, "+" + std::string(value));
        if (name == "parent" || name == "subsumedBy") links.emplace_back(self, "-" + std::string(value));
      }
    }
    if (const Node* sub = c.find("concept")) collect_concepts(*sub, cs, self, links);
  }
}

Include read_include(const Node& n) {
  Include inc;
  inc.system = std::string(n.string_at("system"));
  if (const Node* list = n.find("concept")) {
    for (const Node& c : list->items()) {
      if (!c.string_at("code").empty()) {
        inc.concepts.push_back({std::string(c.string_at("code")), std::string(c.string_at("display"))});
      }
    }
  }
  if (const Node* list = n.find("filter")) {
    for (const Node& f : list->items()) {
      inc.filters.push_back({std::string(f.string_at("property")), std::string(f.string_at("op")),
                             std::string(f.string_at("value"))});
    }
  }
  if (const Node* list = n.find("valueSet")) {
    for (const Node& v : list->items()) {
      if (v.is_string()) inc.value_sets.emplace_back(strip_version(v.text()));
    }
  }
  return inc;
}

void collect_expansion(const Node& list, std::vector<ExpansionCode>& out,
                       const std::function<std::uint32_t(std::string_view)>& intern) {
  for (const Node& c : list.items()) {
    const std::string_view code = c.string_at("code");
    const Node* abstract = c.find("abstract");
    if (!code.empty() && !(abstract && abstract->as_bool())) {
      out.push_back({intern(c.string_at("system")), std::string(code)});
    }
    if (const Node* sub = c.find("contains")) collect_expansion(*sub, out, intern);
  }
}

bool extension_true(const Node& element, std::string_view url) {
  const Node* exts = element.find("extension");
  if (!exts) return false;
  for (const Node& x : exts->items()) {
    if (x.string_at("url") != url) continue;
    if (const Node* v = x.find("valueBoolean"); v && v->as_bool()) return true;
  }
  return false;
}

void descendants(const CodeSystem& cs, std::uint32_t root, bool include_root,
                 std::vector<std::uint32_t>& out) {
  std::vector<bool> seen(cs.concepts.size(), false);
  std::vector<std::uint32_t> stack{root};
  seen[root] = true;
  while (!stack.empty()) {
    const std::uint32_t i = stack.back();
    stack.pop_back();
    if (i != root || include_root) out.push_back(i);
    for (std::uint32_t child : cs.concepts[i].children) {
      if (!seen[child]) {
        seen[child] = true;
        stack.push_back(child);
      }
    }
  }
}

// The comma-separated values of an `in` / `not-in` filter.
std::vector<std::string_view> split_values(std::string_view values) {
  std::vector<std::string_view> out;
  std::size_t start = 0;
  while (start <= values.size()) {
    const auto comma = values.find(',', start);
    std::string_view part =
        values.substr(start, comma == std::string_view::npos ? values.npos : comma - start);
    while (!part.empty() && part.front() == ' ') part.remove_prefix(1);
    while (!part.empty() && part.back() == ' ') part.remove_suffix(1);
    if (!part.empty()) out.push_back(part);
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return out;
}

// The concepts a filter selects (R4 filter-operator semantics), or nullopt when it cannot be evaluated
// here (an operator or property this code system's table cannot answer): the caller leaves the system
// open then.
std::optional<std::vector<bool>> apply_filter(const CodeSystem& cs, const Filter& f) {
  const std::size_t n = cs.concepts.size();
  std::vector<bool> keep(n, false);
  const auto index_of = [&](std::string_view code) -> std::optional<std::uint32_t> {
    const auto it = cs.index.find(cs.key(code));
    if (it == cs.index.end()) return std::nullopt;
    return it->second;
  };
  if (f.property == "concept" || f.property == "code") {
    if (f.op == "in" || f.op == "not-in") {
      for (const std::string_view code : split_values(f.value)) {
        if (const auto i = index_of(code)) keep[*i] = true;
      }
      if (f.op == "not-in") keep.flip();
      return keep;
    }
    if (f.op == "regex") {
      auto pattern = Regex::compile(f.value);
      if (!pattern) return std::nullopt;
      for (std::size_t i = 0; i < n; ++i) keep[i] = pattern->full_match(cs.concepts[i].code);
      return keep;
    }
    const auto root = index_of(f.value);
    if (f.op == "=" || f.op == "is-a" || f.op == "descendent-of" || f.op == "is-not-a") {
      std::vector<std::uint32_t> hits;
      if (root) {
        if (f.op == "=") {
          hits.push_back(*root);
        } else {
          descendants(cs, *root, f.op != "descendent-of", hits);
        }
      }
      for (std::uint32_t h : hits) keep[h] = true;
      if (f.op == "is-not-a") keep.flip();
      return keep;
    }
    if (f.op == "child-of") {
      if (root) {
        for (std::uint32_t c : cs.concepts[*root].children) keep[c] = true;
      }
      return keep;
    }
    if (f.op == "descendent-leaf") {
      std::vector<std::uint32_t> hits;
      if (root) descendants(cs, *root, false, hits);
      for (std::uint32_t h : hits) keep[h] = cs.concepts[h].children.empty();
      return keep;
    }
    if (f.op == "generalizes") {
      if (!root) return keep;
      std::vector<std::vector<std::uint32_t>> parents(n);
      for (std::size_t i = 0; i < n; ++i) {
        for (std::uint32_t c : cs.concepts[i].children) parents[c].push_back(static_cast<std::uint32_t>(i));
      }
      std::vector<std::uint32_t> stack{*root};
      keep[*root] = true;
      while (!stack.empty()) {
        const std::uint32_t i = stack.back();
        stack.pop_back();
        for (std::uint32_t parent : parents[i]) {
          if (!keep[parent]) {
            keep[parent] = true;
            stack.push_back(parent);
          }
        }
      }
      return keep;
    }
    return std::nullopt;
  }
  if (!cs.has_properties) return std::nullopt;
  std::optional<Regex> pattern;
  if (f.op == "regex") {
    auto compiled = Regex::compile(f.value);
    if (!compiled) return std::nullopt;
    pattern = std::move(*compiled);
  } else if (f.op != "=" && f.op != "in" && f.op != "not-in" && f.op != "exists") {
    return std::nullopt;
  }
  const std::vector<std::string_view> values =
      f.op == "in" || f.op == "not-in" ? split_values(f.value) : std::vector<std::string_view>{f.value};
  const auto matches = [&](const std::string& stored) {
    const auto hash = stored.find('#');
    const std::string_view code =
        hash == std::string::npos ? std::string_view(stored) : std::string_view(stored).substr(hash + 1);
    if (pattern) return pattern->full_match(stored) || pattern->full_match(code);
    return std::any_of(values.begin(), values.end(),
                       [&](std::string_view v) { return v == stored || v == code; });
  };
  for (std::size_t i = 0; i < n && i < cs.properties.size(); ++i) {
    bool has = false;
    bool hit = false;
    for (const auto& [name, value] : cs.properties[i]) {
      if (name != f.property) continue;
      has = true;
      hit = hit || matches(value);
    }
    if (f.op == "exists") {
      keep[i] = has == (f.value == "true");
    } else {
      keep[i] = hit;
    }
  }
  if (f.op == "exists" && f.value == "false") {
    for (std::size_t i = cs.properties.size(); i < n; ++i) keep[i] = true;
  }
  if (f.op == "not-in") keep.flip();
  return keep;
}

void intersect(Membership& into, const Membership& other) {
  for (auto it = into.keys.begin(); it != into.keys.end();) {
    it = other.keys.count(*it) ? std::next(it) : into.keys.erase(it);
  }
  into.open_systems.insert(other.open_systems.begin(), other.open_systems.end());
  into.open_all = into.open_all || other.open_all;
}

void unite(Membership& into, Membership&& other) {
  into.keys.merge(other.keys);
  into.open_systems.merge(other.open_systems);
  into.open_all = into.open_all || other.open_all;
  into.any_language = into.any_language || other.any_language;
  into.any_mime_type = into.any_mime_type || other.any_mime_type;
}

}  // namespace

void Terminology::Data::add_code_system(const Node& r) {
  const std::string url(r.string_at("url"));
  if (url.empty()) return;
  CodeSystem cs;
  if (const Node* cs_flag = r.find("caseSensitive"); cs_flag && cs_flag->is_bool())
    cs.case_sensitive = cs_flag->as_bool();
  if (r.find("supplements")) {
    supplements.insert(url);
    return;
  }
  const std::string_view content = r.string_at("content");
  cs.complete = content.empty() || content == "complete";
  cs.has_properties = keep_properties;
  std::vector<std::pair<std::uint32_t, std::string>> links;
  if (const Node* list = r.find("concept")) collect_concepts(*list, cs, -1, links);
  for (const auto& [self, link] : links) {
    auto it = cs.index.find(cs.key(std::string_view(link).substr(1)));
    if (it == cs.index.end() || it->second == self) continue;
    if (link[0] == '+') {
      cs.concepts[self].children.push_back(it->second);
    } else {
      cs.concepts[it->second].children.push_back(self);
    }
  }
  for (Concept& c : cs.concepts) {
    std::sort(c.children.begin(), c.children.end());
    c.children.erase(std::unique(c.children.begin(), c.children.end()), c.children.end());
  }
  code_systems[url] = std::move(cs);
}

void Terminology::Data::add_value_set(const Node& r) {
  const std::string url(strip_version(r.string_at("url")));
  if (url.empty()) return;
  ValueSetDefinition def;
  if (const Node* compose = r.find("compose")) {
    if (const Node* list = compose->find("include")) {
      for (const Node& n : list->items()) def.includes.push_back(read_include(n));
    }
    if (const Node* list = compose->find("exclude")) {
      for (const Node& n : list->items()) def.excludes.push_back(read_include(n));
    }
  }
  if (const Node* expansion = r.find("expansion")) {
    def.has_expansion = true;
    def.expansion_open =
        extension_true(*expansion, "http://hl7.org/fhir/StructureDefinition/valueset-unclosed") ||
        extension_true(*expansion, "http://hl7.org/fhir/StructureDefinition/valueset-toocostly");
    if (const Node* list = expansion->find("contains")) {
      collect_expansion(*list, def.expansion, [this](std::string_view system) { return intern(system); });
    }
    def.expansion.shrink_to_fit();
  }
  definitions[url] = std::move(def);
}

void Terminology::Data::mark_open(const Include& inc, Membership& out) const {
  if (!inc.system.empty() && inc.concepts.empty()) {
    if (inc.filters.empty() && inc.system == kBcp47) {
      out.any_language = true;
    } else if (inc.filters.empty() && inc.system == kBcp13) {
      out.any_mime_type = true;
    } else if (!enumerable(inc.system)) {
      out.open_systems.insert(inc.system);
    }
  }
  for (const std::string& vs : inc.value_sets) {
    auto it = memberships.find(vs);
    if (it == memberships.end()) {
      out.open_all = true;
    } else {
      out.open_systems.insert(it->second.open_systems.begin(), it->second.open_systems.end());
      out.open_all = out.open_all || it->second.open_all;
      out.any_language = out.any_language || it->second.any_language;
      out.any_mime_type = out.any_mime_type || it->second.any_mime_type;
    }
  }
}

void Terminology::Data::evaluate_include(const Include& inc, Membership& out,
                                         std::set<std::string>& in_progress) {
  Membership part;
  const bool has_system_part = !inc.system.empty();
  if (has_system_part) {
    const CodeSystem* cs = enumerable(inc.system);
    if (!inc.concepts.empty()) {
      for (const ConceptRef& c : inc.concepts) part.keys.insert(key(inc.system, c.code));
    } else if (inc.filters.empty() && inc.system == kBcp47) {
      part.any_language = true;
    } else if (inc.filters.empty() && inc.system == kBcp13) {
      part.any_mime_type = true;
    } else if (!cs) {
      part.open_systems.insert(inc.system);
      auto known = code_systems.find(inc.system);
      if (known != code_systems.end() && inc.filters.empty()) {
        for (const Concept& c : known->second.concepts) {
          if (!c.not_selectable) part.keys.insert(key(inc.system, c.code));
        }
      }
    } else {
      std::vector<bool> selected(cs->concepts.size(), true);
      bool supported = true;
      for (const Filter& f : inc.filters) {
        const std::optional<std::vector<bool>> keep = apply_filter(*cs, f);
        if (!keep) {
          supported = false;
          break;
        }
        for (std::size_t i = 0; i < selected.size(); ++i) selected[i] = selected[i] && (*keep)[i];
      }
      if (!supported) {
        part.open_systems.insert(inc.system);
        selected.assign(selected.size(), false);
      }
      for (std::size_t i = 0; i < selected.size(); ++i) {
        if (selected[i] && !cs->concepts[i].not_selectable)
          part.keys.insert(key(inc.system, cs->concepts[i].code));
      }
    }
  }
  for (std::size_t v = 0; v < inc.value_sets.size(); ++v) {
    resolve(inc.value_sets[v], in_progress);
    auto it = memberships.find(inc.value_sets[v]);
    Membership imported;
    if (it == memberships.end()) {
      imported.open_all = true;
    } else {
      imported.keys = keys_of(it->second);
      imported.open_systems = it->second.open_systems;
      imported.open_all = it->second.open_all;
      imported.any_language = it->second.any_language;
      imported.any_mime_type = it->second.any_mime_type;
    }
    if (has_system_part || v > 0) {
      intersect(part, imported);
    } else {
      part = std::move(imported);
    }
  }
  unite(out, std::move(part));
}

void Terminology::Data::resolve(const std::string& url, std::set<std::string>& in_progress) {
  if (memberships.count(url) || in_progress.count(url)) return;
  auto def_it = definitions.find(url);
  if (def_it == definitions.end()) return;
  in_progress.insert(url);
  const ValueSetDefinition& def = def_it->second;
  Membership m;
  if (def.has_expansion) {
    for (const Include& inc : def.includes) {
      for (const std::string& vs : inc.value_sets) resolve(vs, in_progress);
      mark_open(inc, m);
    }
    m.open_all = m.open_all || (def.includes.empty() && def.expansion_open);
    for (const ExpansionCode& c : def.expansion) m.keys.insert(key(c.system, c.code));
  } else {
    for (const Include& inc : def.includes) evaluate_include(inc, m, in_progress);
    for (const Include& exc : def.excludes) {
      Membership excluded;
      evaluate_include(exc, excluded, in_progress);
      for (const std::string& k : excluded.keys) m.keys.erase(k);
      m.open_systems.merge(excluded.open_systems);
      m.open_all = m.open_all || excluded.open_all;
    }
  }
  m.codes.reserve(m.keys.size());
  for (const std::string& k : m.keys) {
    const auto sep = k.find(kSeparator);
    m.codes.emplace(k.substr(sep + 1), static_cast<std::uint32_t>(std::stoul(k.substr(0, sep))));
  }
  std::unordered_set<std::string>().swap(m.keys);
  in_progress.erase(url);
  memberships[url] = std::move(m);
}

Terminology::Terminology() : data_(std::make_unique<Data>()) {}
Terminology::~Terminology() = default;

std::shared_ptr<Terminology> Terminology::copy() const {
  auto copied = std::make_shared<Terminology>();
  *copied->data_ = *data_;
  return copied;
}

Result<std::shared_ptr<Terminology>> Terminology::load_from(const std::string& profiles_dir) {
  auto bundle = read_json_file(profiles_dir + "/r4/terminology.json.gz");
  if (!bundle) return std::move(bundle).error();
  auto terminology = std::make_shared<Terminology>();
  if (auto status = terminology->add(*bundle); !status) return std::move(status).error();
  terminology->data_->keep_properties = true;
  bundle = Node();
#if defined(__GLIBC__)
  malloc_trim(0);
#endif
  return terminology;
}

Status Terminology::add(const Node& resource_or_bundle) {
  if (!resource_or_bundle.is_object()) {
    return Error::make(ErrorCode::invalid_input, "terminology: expected a ValueSet, CodeSystem or Bundle");
  }
  std::vector<const Node*> resources;
  const std::string_view type = resource_or_bundle.string_at("resourceType");
  if (type == "Bundle") {
    if (const Node* entries = resource_or_bundle.find("entry")) {
      for (const Node& e : entries->items()) {
        if (const Node* r = e.find("resource"); r && r->is_object()) resources.push_back(r);
      }
    }
  } else if (type == "ValueSet" || type == "CodeSystem") {
    resources.push_back(&resource_or_bundle);
  } else {
    return Error::make(ErrorCode::invalid_input,
                       "terminology: expected a ValueSet, CodeSystem or Bundle, not " + std::string(type));
  }
  std::set<std::string> changed;
  for (const Node* r : resources) {
    const std::string_view t = r->string_at("resourceType");
    if (t == "CodeSystem") {
      data_->add_code_system(*r);
    } else if (t == "ValueSet") {
      data_->add_value_set(*r);
    } else {
      continue;
    }
    changed.emplace(strip_version(r->string_at("url")));
  }
  if (changed.empty()) return Ok{};
  const bool first_load = data_->memberships.empty();
  if (!first_load) {
    bool grew = true;
    while (grew) {
      grew = false;
      for (const auto& [url, def] : data_->definitions) {
        if (changed.count(url)) continue;
        auto depends = [&](const std::vector<Include>& list) {
          return std::any_of(list.begin(), list.end(), [&](const Include& inc) {
            return changed.count(inc.system) ||
                   std::any_of(inc.value_sets.begin(), inc.value_sets.end(),
                               [&](const std::string& v) { return changed.count(v) > 0; });
          });
        };
        if (depends(def.includes) || depends(def.excludes)) {
          changed.insert(url);
          grew = true;
        }
      }
    }
    for (const std::string& url : changed) data_->memberships.erase(url);
  }
  std::set<std::string> in_progress;
  for (const auto& [url, def] : data_->definitions) data_->resolve(url, in_progress);
  return Ok{};
}

Terminology::Answer Terminology::contains(std::string_view value_set, std::string_view system,
                                          std::string_view code) const {
  auto it = data_->memberships.find(std::string(strip_version(value_set)));
  if (it == data_->memberships.end() || code.empty()) return Answer::unknown;
  const Membership& m = it->second;
  if (system.empty()) {
    if (m.codes.count(std::string(code))) return Answer::member;
    const auto [first, last] = m.codes.equal_range(lower(code));
    for (auto it2 = first; it2 != last; ++it2) {
      if (!data_->case_sensitive(data_->systems[it2->second])) return Answer::member;
    }
    if (m.any_language && is_language_tag(code)) return Answer::member;
    if (m.any_mime_type && is_mime_type(code)) return Answer::member;
    return m.open_all || !m.open_systems.empty() ? Answer::unknown : Answer::not_member;
  }
  if (auto id = data_->system_ids.find(std::string(system)); id != data_->system_ids.end()) {
    const auto [first, last] = m.codes.equal_range(data_->normalise(system, code));
    for (auto it2 = first; it2 != last; ++it2) {
      if (it2->second == id->second) return Answer::member;
    }
  }
  if (system == kBcp47 && m.any_language) return is_language_tag(code) ? Answer::member : Answer::not_member;
  if (system == kBcp13 && m.any_mime_type) return is_mime_type(code) ? Answer::member : Answer::not_member;
  return m.open_all || m.open_systems.count(system) ? Answer::unknown : Answer::not_member;
}

std::optional<std::string> Terminology::display(std::string_view system, std::string_view code) const {
  auto it = data_->code_systems.find(std::string(system));
  if (it == data_->code_systems.end()) {
    const std::string* found = nullptr;
    for (const auto& [url, definition] : data_->definitions) {
      for (const Include& include : definition.includes) {
        if (include.system != system) continue;
        for (const ConceptRef& c : include.concepts) {
          if (c.code != code || c.display.empty()) continue;
          if (found != nullptr && *found != c.display) return std::nullopt;
          found = &c.display;
        }
      }
    }
    if (found == nullptr) return std::nullopt;
    return *found;
  }
  const Concept* c = it->second.find(code);
  if (!c || c->display.empty()) return std::nullopt;
  return c->display;
}

bool Terminology::knows_value_set(std::string_view url) const {
  return data_->memberships.count(std::string(strip_version(url))) > 0;
}

bool Terminology::knows_code_system(std::string_view url) const {
  return data_->code_systems.find(strip_version(url)) != data_->code_systems.end();
}

bool Terminology::is_supplement(std::string_view url) const {
  return data_->supplements.find(strip_version(url)) != data_->supplements.end();
}

bool Terminology::checked_by_shape(std::string_view system) {
  return system == kBcp47 || system == kBcp13;
}

std::string_view Terminology::syntax_rule(std::string_view system) {
  system = strip_version(system);
  if (system == kSnomed)
    return "a SNOMED CT code is a concept identifier (6-18 digits ending in a Verhoeff check digit) or an "
           "expression";
  if (system == kLoinc)
    return "a LOINC code is digits, '-' and a mod-10 check digit, or a part or answer code such as "
           "LP12345-6";
  return {};
}

Terminology::Answer Terminology::defines(std::string_view system, std::string_view code) const {
  if (code.empty()) return Answer::unknown;
  system = strip_version(system);
  if (system == kBcp47) return is_language_tag(code) ? Answer::member : Answer::not_member;
  if (system == kBcp13) return is_mime_type(code) ? Answer::member : Answer::not_member;
  if (system == kSnomed) return snomed_shaped(code) ? Answer::unknown : Answer::not_member;
  if (system == kLoinc) return loinc_shaped(code) ? Answer::unknown : Answer::not_member;
  const CodeSystem* cs = data_->enumerable(system);
  if (cs == nullptr) return Answer::unknown;
  return cs->find(code) != nullptr ? Answer::member : Answer::not_member;
}

}  // namespace fhirgate::fhir
