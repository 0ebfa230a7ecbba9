#include "fhir/search_params.hpp"

#include <algorithm>
#include <cctype>
#include <limits>
#include <numeric>
#include <unordered_set>

#include "fhir/text.hpp"

namespace fhirgate::fhir {
namespace {

constexpr std::string_view kExcludedCodes[] = {"phonetic", "_text", "_content", "_query"};
constexpr std::string_view kContactPointSystems[] = {"phone", "fax", "email", "pager", "url", "sms", "other"};
constexpr std::string_view kNameAndAddressParts[] = {"family", "given",      "prefix", "suffix",
                                                     "text",   "line",       "city",   "district",
                                                     "state",  "postalCode", "country"};
constexpr std::size_t kLinearDedupLimit = 16;

struct NameKey {
  std::string_view resource_type;
  std::string_view code;
};

bool operator<(const std::pair<std::string, std::string>& a, const NameKey& b) {
  return std::pair<std::string_view, std::string_view>(a.first, a.second) <
         std::pair<std::string_view, std::string_view>(b.resource_type, b.code);
}

bool operator<(const NameKey& a, const std::pair<std::string, std::string>& b) {
  return std::pair<std::string_view, std::string_view>(a.resource_type, a.code) <
         std::pair<std::string_view, std::string_view>(b.first, b.second);
}

template <std::size_t N>
bool contains(const std::string_view (&list)[N], std::string_view value) {
  return std::find(std::begin(list), std::end(list), value) != std::end(list);
}

// Reads one union branch of a FHIRPath expression: a root name, then the supported steps.
class BranchParser {
 public:
  explicit BranchParser(std::string_view text) : text_(text) {}

  std::string_view root() {
    skip_space();
    return identifier();
  }

  // Parses the steps after the root; false when the branch uses anything unsupported.
  bool steps(std::vector<PathStep>& out) {
    while (true) {
      std::size_t before_space = pos_;
      skip_space();
      if (at_end()) return true;
      if (peek() == '.') {
        ++pos_;
        std::string_view name = identifier();
        if (name.empty()) return false;
        if (peek() != '(') {
          out.push_back(PathStep{PathStep::Kind::child, std::string(name), {}});
          continue;
        }
        ++pos_;
        if (name == "as") {
          std::string_view type = spaced_identifier();
          if (type.empty() || !consume(')')) return false;
          out.push_back(PathStep{PathStep::Kind::as_type, std::string(type), {}});
        } else if (name == "where") {
          if (!where_argument(out) || !consume(')')) return false;
        } else {
          return false;
        }
        continue;
      }
      if (pos_ == before_space || identifier() != "as" || !at_space()) return false;
      std::string_view type = spaced_identifier();
      if (type.empty()) return false;
      out.push_back(PathStep{PathStep::Kind::as_type, std::string(type), {}});
    }
  }

 private:
  bool at_end() const { return pos_ >= text_.size(); }
  char peek() const { return at_end() ? '\0' : text_[pos_]; }

  void skip_space() {
    while (!at_end() && std::isspace(static_cast<unsigned char>(text_[pos_]))) ++pos_;
  }

  bool at_space() const { return !at_end() && std::isspace(static_cast<unsigned char>(text_[pos_])); }

  bool consume(char c) {
    skip_space();
    if (peek() != c) return false;
    ++pos_;
    return true;
  }

  bool consume_word(std::string_view word) {
    skip_space();
    std::size_t start = pos_;
    if (identifier() == word) return true;
    pos_ = start;
    return false;
  }

  std::string_view identifier() {
    std::size_t start = pos_;
    if (at_end() || !(std::isalpha(static_cast<unsigned char>(peek())) || peek() == '_')) return {};
    while (!at_end() && (std::isalnum(static_cast<unsigned char>(peek())) || peek() == '_')) ++pos_;
    return text_.substr(start, pos_ - start);
  }

  std::string_view spaced_identifier() {
    skip_space();
    return identifier();
  }

  bool where_argument(std::vector<PathStep>& out) {
    std::size_t start = pos_;
    if (consume_word("resolve")) {
      if (!consume('(') || !consume(')') || !consume_word("is")) return false;
      std::string_view type = spaced_identifier();
      if (type.empty()) return false;
      out.push_back(PathStep{PathStep::Kind::resolve_is, std::string(type), {}});
      return true;
    }
    pos_ = start;
    std::string_view field = spaced_identifier();
    if (field.empty() || !consume('=')) return false;
    skip_space();
    std::string literal;
    if (!string_literal(literal)) return false;
    out.push_back(PathStep{PathStep::Kind::where_equals, std::string(field), std::move(literal)});
    return true;
  }

  bool string_literal(std::string& out) {
    if (peek() != '\'') return false;
    ++pos_;
    while (!at_end()) {
      char c = text_[pos_++];
      if (c == '\'') return true;
      if (c == '\\') {
        if (at_end()) return false;
        c = text_[pos_++];
        switch (c) {
          case 'n':
            c = '\n';
            break;
          case 't':
            c = '\t';
            break;
          case 'r':
            c = '\r';
            break;
          case 'f':
            c = '\f';
            break;
          case '\'':
          case '"':
          case '`':
          case '\\':
          case '/':
            break;
          default:
            return false;
        }
      }
      out.push_back(c);
    }
    return false;
  }

  std::string_view text_;
  std::size_t pos_ = 0;
};

// Splits at `|` outside parentheses and string literals.
std::vector<std::string_view> split_union(std::string_view expression) {
  std::vector<std::string_view> parts;
  int depth = 0;
  bool in_string = false;
  std::size_t start = 0;
  for (std::size_t i = 0; i < expression.size(); ++i) {
    char c = expression[i];
    if (in_string) {
      if (c == '\\')
        ++i;
      else if (c == '\'')
        in_string = false;
    } else if (c == '\'') {
      in_string = true;
    } else if (c == '(') {
      ++depth;
    } else if (c == ')') {
      --depth;
    } else if (c == '|' && depth == 0) {
      parts.push_back(expression.substr(start, i - start));
      start = i + 1;
    }
  }
  parts.push_back(expression.substr(start));
  return parts;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

// Removes parentheses that enclose the whole branch, e.g. `(Patient.deceased as dateTime)`.
std::string_view strip_enclosing_parens(std::string_view s) {
  while (s.size() >= 2 && s.front() == '(' && s.back() == ')') {
    int depth = 0;
    bool in_string = false;
    bool encloses = true;
    for (std::size_t i = 0; i + 1 < s.size(); ++i) {
      char c = s[i];
      if (in_string) {
        if (c == '\\')
          ++i;
        else if (c == '\'')
          in_string = false;
      } else if (c == '\'') {
        in_string = true;
      } else if (c == '(') {
        ++depth;
      } else if (c == ')' && --depth == 0) {
        encloses = false;
        break;
      }
    }
    if (!encloses) break;
    s = trim(s.substr(1, s.size() - 2));
  }
  return s;
}

bool applies_to(std::string_view root, std::string_view resource_type) {
  return root == resource_type || root == "Resource" || root == "DomainResource";
}

struct Selected {
  const Node* node;
  std::string_view member;
};

void push_flattened(std::vector<Selected>& out, const Node& value, std::string_view member) {
  if (value.is_array()) {
    for (const Node& item : value.items()) out.push_back(Selected{&item, member});
  } else {
    out.push_back(Selected{&value, member});
  }
}

bool is_choice_member(std::string_view member, std::string_view element) {
  return member.size() > element.size() && member.starts_with(element) &&
         std::isupper(static_cast<unsigned char>(member[element.size()]));
}

bool is_choice_of_type(std::string_view member, std::string_view element, std::string_view type) {
  if (type.empty() || member.size() != element.size() + type.size() || !member.starts_with(element)) {
    return false;
  }
  std::string_view suffix = member.substr(element.size());
  return suffix[0] == std::toupper(static_cast<unsigned char>(type[0])) && suffix.substr(1) == type.substr(1);
}

struct ReferenceTarget {
  std::string_view type;
  std::string_view id;
};

// `Type/id`, an absolute URL ending in `/Type/id`, either optionally followed by `/_history/version`.
std::optional<ReferenceTarget> parse_reference(std::string_view reference) {
  if (std::size_t history = reference.find("/_history/"); history != std::string_view::npos) {
    reference = reference.substr(0, history);
  }
  std::size_t slash = reference.rfind('/');
  if (slash == std::string_view::npos || slash == 0) return std::nullopt;
  std::string_view id = reference.substr(slash + 1);
  std::string_view head = reference.substr(0, slash);
  std::size_t type_start = head.rfind('/');
  std::string_view type = type_start == std::string_view::npos ? head : head.substr(type_start + 1);
  if (id.empty() || type.empty() || !std::isupper(static_cast<unsigned char>(type[0]))) return std::nullopt;
  if (!std::all_of(type.begin(), type.end(),
                   [](char c) { return std::isalpha(static_cast<unsigned char>(c)); })) {
    return std::nullopt;
  }
  if (!is_valid_id(id)) return std::nullopt;
  return ReferenceTarget{type, id};
}

void apply_step(const PathStep& step, std::string_view last_child, const std::vector<Selected>& in,
                std::vector<Selected>& out) {
  out.clear();
  switch (step.kind) {
    case PathStep::Kind::child:
      for (const Selected& s : in) {
        if (!s.node->is_object()) continue;
        const Node::Member* exact = nullptr;
        for (const Node::Member& m : s.node->members()) {
          if (m.first == step.name) {
            exact = &m;
            break;
          }
        }
        if (exact) {
          push_flattened(out, exact->second, exact->first);
          continue;
        }
        for (const Node::Member& m : s.node->members()) {
          if (is_choice_member(m.first, step.name)) push_flattened(out, m.second, m.first);
        }
      }
      break;
    case PathStep::Kind::as_type:
      for (const Selected& s : in) {
        if (s.member == last_child || is_choice_of_type(s.member, last_child, step.name)) out.push_back(s);
      }
      break;
    case PathStep::Kind::resolve_is:
      for (const Selected& s : in) {
        if (!s.node->is_object()) continue;
        std::optional<ReferenceTarget> target = parse_reference(s.node->string_at("reference"));
        if (target && target->type == step.name) out.push_back(s);
      }
      break;
    case PathStep::Kind::where_equals:
      for (const Selected& s : in) {
        if (!s.node->is_object()) continue;
        const Node* field = s.node->find(step.name);
        if (field && field->is_string() && field->text() == step.literal) out.push_back(s);
      }
      break;
  }
}

void select(const SimplePath& path, const Node& resource, std::vector<const Node*>& out) {
  std::vector<Selected> current;
  std::vector<Selected> next;
  for (const auto& branch : path.branches) {
    current.assign(1, Selected{&resource, {}});
    std::string_view last_child;
    for (const PathStep& step : branch) {
      apply_step(step, last_child, current, next);
      current.swap(next);
      if (step.kind == PathStep::Kind::child) last_child = step.name;
      if (current.empty()) break;
    }
    for (const Selected& s : current) out.push_back(s.node);
  }
}

class Extractor {
 public:
  Extractor(const SearchParamDef& param, std::vector<IndexValue>& out) : param_(param), out_(out) {}

  void add(const Node& node) {
    switch (param_.type) {
      case SearchParamType::string:
        add_string(node);
        break;
      case SearchParamType::token:
        add_token(node);
        break;
      case SearchParamType::date:
        add_date(node);
        break;
      case SearchParamType::reference:
        add_reference(node);
        break;
      case SearchParamType::uri:
        if (node.is_string()) emit().exact = node.text();
        break;
    }
  }

 private:
  IndexValue& emit() {
    IndexValue& v = out_.emplace_back();
    v.param = &param_;
    return v;
  }

  void add_string_text(const std::string& text) {
    IndexValue& v = emit();
    v.normalized = normalize_for_search(text);
    v.exact = text;
  }

  void add_string(const Node& node) {
    if (node.is_string()) {
      add_string_text(node.text());
      return;
    }
    if (!node.is_object()) return;
    for (const Node::Member& m : node.members()) {
      if (!contains(kNameAndAddressParts, m.first)) continue;
      if (m.second.is_string()) {
        add_string_text(m.second.text());
      } else if (m.second.is_array()) {
        for (const Node& item : m.second.items()) {
          if (item.is_string()) add_string_text(item.text());
        }
      }
    }
  }

  void add_coding(const Node& coding) {
    const Node* code = coding.find("code");
    if (!code || !code->is_string()) return;
    IndexValue& v = emit();
    v.system = coding.string_at("system");
    v.exact = code->text();
  }

  void add_token(const Node& node) {
    if (node.is_string() || node.is_bool()) {
      emit().exact = node.text();
      return;
    }
    if (!node.is_object()) return;
    if (const Node* codings = node.find("coding")) {
      if (codings->is_array()) {
        for (const Node& coding : codings->items()) {
          if (coding.is_object()) add_coding(coding);
        }
      }
      return;
    }
    if (node.find("code")) {
      add_coding(node);
      return;
    }
    const Node* value = node.find("value");
    if (!value || !value->is_string()) return;
    std::string_view system = node.string_at("system");
    IndexValue& v = emit();
    if (!contains(kContactPointSystems, system)) v.system = system;
    v.exact = value->text();
  }

  void add_date(const Node& node) {
    if (node.is_string()) {
      if (std::optional<TimeRange> range = parse_time_range(node.text())) emit().range = *range;
      return;
    }
    if (!node.is_object()) return;
    const Node* start = node.find("start");
    const Node* end = node.find("end");
    if (!start && !end) return;
    TimeRange range{std::numeric_limits<std::int64_t>::min(), std::numeric_limits<std::int64_t>::max()};
    if (start) {
      std::optional<TimeRange> r = start->is_string() ? parse_time_range(start->text()) : std::nullopt;
      if (!r) return;
      range.low = r->low;
    }
    if (end) {
      std::optional<TimeRange> r = end->is_string() ? parse_time_range(end->text()) : std::nullopt;
      if (!r) return;
      range.high = r->high;
    }
    emit().range = range;
  }

  void add_reference(const Node& node) {
    const Node* reference = node.is_string() ? &node : node.find("reference");
    if (!reference || !reference->is_string()) return;
    IndexValue& v = emit();
    if (std::optional<ReferenceTarget> target = parse_reference(reference->text())) {
      v.system = target->type;
      v.exact = target->id;
    } else {
      v.exact = reference->text();
    }
  }

  const SearchParamDef& param_;
  std::vector<IndexValue>& out_;
};

bool same_value(const IndexValue& a, const IndexValue& b) {
  return a.exact == b.exact && a.system == b.system && a.range == b.range && a.normalized == b.normalized;
}

bool value_less(const IndexValue& a, const IndexValue& b) {
  if (int c = a.exact.compare(b.exact); c != 0) return c < 0;
  if (int c = a.system.compare(b.system); c != 0) return c < 0;
  if (a.range.low != b.range.low) return a.range.low < b.range.low;
  if (a.range.high != b.range.high) return a.range.high < b.range.high;
  return a.normalized < b.normalized;
}

// Removes repeated values from out[first, end), keeping the first occurrence of each in place.
void dedup_tail(std::vector<IndexValue>& out, std::size_t first) {
  std::size_t count = out.size() - first;
  if (count < 2) return;
  std::vector<bool> drop(count, false);
  if (count <= kLinearDedupLimit) {
    for (std::size_t i = 1; i < count; ++i) {
      for (std::size_t j = 0; j < i; ++j) {
        if (!drop[j] && same_value(out[first + i], out[first + j])) {
          drop[i] = true;
          break;
        }
      }
    }
  } else {
    std::vector<std::size_t> order(count);
    std::iota(order.begin(), order.end(), std::size_t{0});
    std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
      return value_less(out[first + a], out[first + b]);
    });
    for (std::size_t i = 1; i < count; ++i) {
      if (same_value(out[first + order[i]], out[first + order[i - 1]])) drop[order[i]] = true;
    }
  }
  std::size_t write = first;
  for (std::size_t i = 0; i < count; ++i) {
    if (drop[i]) continue;
    if (write != first + i) out[write] = std::move(out[first + i]);
    ++write;
  }
  out.erase(out.begin() + static_cast<std::ptrdiff_t>(write), out.end());
}

std::optional<SearchParamType> parse_param_type(std::string_view type) {
  if (type == "string") return SearchParamType::string;
  if (type == "token") return SearchParamType::token;
  if (type == "date") return SearchParamType::date;
  if (type == "reference") return SearchParamType::reference;
  if (type == "uri") return SearchParamType::uri;
  return std::nullopt;
}

std::vector<std::string> string_items(const Node* array) {
  std::vector<std::string> out;
  if (!array || !array->is_array()) return out;
  for (const Node& item : array->items()) {
    if (item.is_string()) out.push_back(item.text());
  }
  return out;
}

}  // namespace

const char* to_string(SearchParamType type) {
  switch (type) {
    case SearchParamType::string:
      return "string";
    case SearchParamType::token:
      return "token";
    case SearchParamType::date:
      return "date";
    case SearchParamType::reference:
      return "reference";
    case SearchParamType::uri:
      return "uri";
  }
  return "string";
}

std::optional<SimplePath> compile_path(std::string_view expression, std::string_view resource_type) {
  SimplePath path;
  for (std::string_view part : split_union(expression)) {
    std::string_view branch = strip_enclosing_parens(trim(part));
    BranchParser parser(branch);
    std::string_view root = parser.root();
    if (!applies_to(root, resource_type)) continue;
    std::vector<PathStep> steps;
    if (!parser.steps(steps)) return std::nullopt;
    path.branches.push_back(std::move(steps));
  }
  if (path.branches.empty()) return std::nullopt;
  return path;
}

std::vector<const Node*> evaluate(const SimplePath& path, const Node& resource) {
  std::vector<const Node*> out;
  select(path, resource, out);
  if (path.branches.size() > 1) {
    std::unordered_set<const Node*> seen;
    std::erase_if(out, [&seen](const Node* node) { return !seen.insert(node).second; });
  }
  return out;
}

Result<SearchParamRegistry> SearchParamRegistry::load(const Node& bundle,
                                                      const std::vector<std::string>& resource_types) {
  if (!bundle.is_object() || bundle.string_at("resourceType") != "Bundle") {
    return Error::make(ErrorCode::invalid_input, "search parameter definitions must be a Bundle");
  }
  SearchParamRegistry registry;
  auto add = [&registry](std::unique_ptr<SearchParamDef> def) {
    def->key = static_cast<std::uint32_t>(registry.params_.size());
    registry.by_name_.emplace(std::pair(def->resource_type, def->code), def.get());
    registry.params_.push_back(std::move(def));
  };

  const Node* entries = bundle.find("entry");
  if (entries && entries->is_array()) {
    for (const Node& entry : entries->items()) {
      const Node* resource = entry.is_object() ? entry.find("resource") : nullptr;
      if (!resource || !resource->is_object() || resource->string_at("resourceType") != "SearchParameter") {
        continue;
      }
      std::string_view code = resource->string_at("code");
      std::string_view expression = resource->string_at("expression");
      std::optional<SearchParamType> type = parse_param_type(resource->string_at("type"));
      if (code.empty() || expression.empty() || !type || contains(kExcludedCodes, code)) continue;
      std::vector<std::string> bases = string_items(resource->find("base"));
      for (const std::string& served : resource_types) {
        bool applies = std::any_of(bases.begin(), bases.end(),
                                   [&](const std::string& base) { return applies_to(base, served); });
        if (!applies || registry.find(served, code)) continue;
        std::optional<SimplePath> path = compile_path(expression, served);
        if (!path) continue;
        auto def = std::make_unique<SearchParamDef>();
        def->resource_type = served;
        def->code = code;
        def->type = *type;
        def->url = resource->string_at("url");
        def->expression = expression;
        def->description = resource->string_at("description");
        def->targets = string_items(resource->find("target"));
        def->path = std::move(*path);
        add(std::move(def));
      }
    }
  }

  for (const std::string& served : resource_types) {
    if (registry.find(served, "_id")) continue;
    auto def = std::make_unique<SearchParamDef>();
    def->resource_type = served;
    def->code = "_id";
    def->type = SearchParamType::token;
    def->url = "http://hl7.org/fhir/SearchParameter/Resource-id";
    def->expression = "Resource.id";
    def->description = "Logical id of this artifact";
    def->path.branches.push_back({PathStep{PathStep::Kind::child, "id", {}}});
    add(std::move(def));
  }
  return registry;
}

const SearchParamDef* SearchParamRegistry::find(std::string_view resource_type, std::string_view code) const {
  auto it = by_name_.find(NameKey{resource_type, code});
  return it == by_name_.end() ? nullptr : it->second;
}

std::vector<const SearchParamDef*> SearchParamRegistry::for_type(std::string_view resource_type) const {
  std::vector<const SearchParamDef*> out;
  for (auto it = by_name_.lower_bound(NameKey{resource_type, {}});
       it != by_name_.end() && it->first.first == resource_type; ++it) {
    out.push_back(it->second);
  }
  return out;
}

std::vector<IndexValue> extract_index(const SearchParamRegistry& registry, const Node& resource) {
  std::vector<IndexValue> out;
  if (!resource.is_object()) return out;
  std::vector<const Node*> nodes;
  for (const SearchParamDef* param : registry.for_type(resource.string_at("resourceType"))) {
    nodes.clear();
    select(param->path, resource, nodes);
    std::size_t first = out.size();
    Extractor extractor(*param, out);
    for (const Node* node : nodes) extractor.add(*node);
    dedup_tail(out, first);
  }
  return out;
}

}  // namespace fhirgate::fhir
