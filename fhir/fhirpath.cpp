// The FHIRPath evaluator.
//
// Why it looks like this. Invariants run on every write, once per element for ele-1, so evaluation
// must be cheap: expressions are parsed once into an immutable tree (fhirpath_ast.hpp) and evaluated
// by a tree walk over collections of small, non-owning items (fhirpath_value.hpp). Navigation never
// copies the document: an element item is a pointer to its JSON value, a pointer to its `_name`
// companion (a primitive's id/extension) and its TypeDef, found through the Model as we descend (choice
// elements by base name via TypeDef::resolve; `Resource`-typed elements by their `resourceType`).
// Computed strings (substring(), toString(), ...) live in a per-evaluation arena that dies with the
// evaluation, after the results have been rendered into caller-owned Items.
//
// Errors the spec calls runtime errors (a multi-item collection where a singleton is required, an
// operator on mismatched types, an unknown type name) end the whole evaluation: they are thrown as
// EvalFailure inside this file and turned into a Result at the public boundary, so the hot path does
// not test a status after every step. So does an exceeded budget (EvalContext::budget): each expression
// node evaluated is a step, and so is each item that navigation, descendants() or repeat() produce or
// that a membership test (distinct(), union, in, subsetOf(), ...) compares, so that what only loops
// over collections without evaluating anything is counted too.
//
// Type tests follow the R4 test suite: `is` walks the TypeDef base chain (code is string, Age is
// Quantity, Patient is DomainResource); `as`/ofType do the same for complex types but need an exact
// match for primitives (a `code` is not returned by as(string)). FHIR primitives are not System types:
// `gender is String` is false, `'a' is String` is true. The as() function filters a whole collection
// like ofType() because R4's own dom-3 applies it to descendants(); the `as` operator stays
// singleton-only as the spec says.
//
// One fusion keeps ele-1 (`children().count() > id.count()`, on every element) cheap: the parser turns
// children().count() into a count of members that builds no items.
#include "fhir/fhirpath.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <ctime>
#include <limits>
#include <utility>

#include "fhir/fhirpath_ast.hpp"
#include "fhir/fhirpath_value.hpp"

namespace fhirgate::fhir::fhirpath {

class CompiledExpression {
 public:
  CompiledExpression(std::unique_ptr<const Expr> root, std::string text)
      : root_(std::move(root)), text_(std::move(text)) {}
  const Expr& root() const { return *root_; }
  const std::string& text() const { return text_; }

 private:
  std::unique_ptr<const Expr> root_;
  std::string text_;
};

namespace {

struct EvalFailure {
  std::string message;
  bool too_costly = false;  // the budget ran out
};

// matches() and replaceMatches() take at most instructions × (characters + 1) steps (fhir/regex.hpp);
// this many is about 0.1 s, yet `^[a-z]+$` (7 instructions) may still run on 2 million characters and
// FHIR's dateTime rule (117) on 140,000. replaceMatches() searches again after each match, which can be
// quadratic, so its own count of steps is held to the same bound. (There is no separate input limit:
// the engine needs no stack per character.)
constexpr std::uint64_t kMaxRegexWork = std::uint64_t{1} << 24;

[[noreturn]] void fail(std::string message) {
  throw EvalFailure{std::move(message)};
}

constexpr std::string_view kSystemNames[] = {"Boolean", "String",   "Integer", "Decimal",
                                             "Date",    "DateTime", "Time",    "Quantity"};

std::string_view system_name(VKind k) {
  switch (k) {
    case VKind::boolean:
      return "Boolean";
    case VKind::integer:
      return "Integer";
    case VKind::decimal:
      return "Decimal";
    case VKind::string:
      return "String";
    case VKind::date:
      return "Date";
    case VKind::datetime:
      return "DateTime";
    case VKind::time:
      return "Time";
    case VKind::quantity:
      return "Quantity";
    case VKind::node:
      break;
  }
  return {};
}

std::string_view output_type_name(VKind k) {
  switch (k) {
    case VKind::boolean:
      return "boolean";
    case VKind::integer:
      return "integer";
    case VKind::decimal:
      return "decimal";
    case VKind::string:
      return "string";
    case VKind::date:
      return "date";
    case VKind::datetime:
      return "dateTime";
    case VKind::time:
      return "time";
    case VKind::quantity:
      return "Quantity";
    case VKind::node:
      break;
  }
  return {};
}

bool is_system_name(std::string_view n) {
  return std::find(std::begin(kSystemNames), std::end(kSystemNames), n) != std::end(kSystemNames);
}

// An Integer result: nullopt (the result is empty) when the value is not finite or needs more than 64 bits.
std::optional<std::int64_t> exact_integer(long double v) {
  if (!std::isfinite(v) || v < -0x1p63L || v >= 0x1p63L) return std::nullopt;
  return static_cast<std::int64_t>(v);
}

Collection integer_or_empty(long double v) {
  const std::optional<std::int64_t> i = exact_integer(v);
  if (!i) return {};
  return {Value::integer_of(*i)};
}

// The fewest decimal places (at most 8) that show a computed decimal as precisely as 8 do.
int minimal_scale(long double v) {
  if (!std::isfinite(v)) return 0;
  int s = 8;
  while (s > 0 && round_to(v, s - 1) == round_to(v, 8)) --s;
  return s;
}

std::string base64_encode(std::string_view in, bool url) {
  static constexpr char kStd[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  static constexpr char kUrl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  const char* table = url ? kUrl : kStd;
  std::string out;
  std::size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    const unsigned v = (static_cast<unsigned char>(in[i]) << 16) |
                       (static_cast<unsigned char>(in[i + 1]) << 8) | static_cast<unsigned char>(in[i + 2]);
    out += table[(v >> 18) & 63];
    out += table[(v >> 12) & 63];
    out += table[(v >> 6) & 63];
    out += table[v & 63];
  }
  if (i < in.size()) {
    unsigned v = static_cast<unsigned char>(in[i]) << 16;
    if (i + 1 < in.size()) v |= static_cast<unsigned char>(in[i + 1]) << 8;
    out += table[(v >> 18) & 63];
    out += table[(v >> 12) & 63];
    out += i + 1 < in.size() ? table[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

std::optional<std::string> base64_decode(std::string_view in) {
  std::string out;
  unsigned buffer = 0;
  int bits = 0;
  for (char c : in) {
    int v;
    if (c >= 'A' && c <= 'Z')
      v = c - 'A';
    else if (c >= 'a' && c <= 'z')
      v = c - 'a' + 26;
    else if (c >= '0' && c <= '9')
      v = c - '0' + 52;
    else if (c == '+' || c == '-')
      v = 62;
    else if (c == '/' || c == '_')
      v = 63;
    else if (c == '=')
      break;
    else
      return std::nullopt;
    buffer = (buffer << 6) | static_cast<unsigned>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((buffer >> bits) & 0xFF);
    }
  }
  return out;
}

class Evaluator {
 public:
  Evaluator(const EvalContext& context, Value root)
      : model_(context.model),
        context_(context),
        root_(root),
        budget_(context.budget != nullptr ? context.budget : &unlimited_) {}
  Evaluator(const Evaluator&) = delete;  // budget_ may point at unlimited_
  Evaluator& operator=(const Evaluator&) = delete;

  Collection run(const Expr& e) {
    Collection focus{root_};
    return eval(e, focus);
  }

  std::string_view keep(std::string s) {
    return *arena_.emplace_back(std::make_unique<std::string>(std::move(s)));
  }

 private:
  const Model& model_;
  const EvalContext& context_;
  Value root_;
  std::vector<std::unique_ptr<std::string>> arena_;
  std::int64_t index_ = 0;
  const Collection* total_ = nullptr;
  Budget unlimited_;
  Budget* budget_;

  void step(std::uint64_t steps = 1) const {
    if (!budget_->spend(steps)) throw EvalFailure{"the evaluation exceeded its time budget", true};
  }

  const TypeDef* type_named(std::string_view name) const { return model_.type(name); }

  const TypeDef* child_type(const ElementDef& el, std::string_view choice, const Node* value) const {
    if (!choice.empty()) return type_named(choice);
    if (el.inline_type != nullptr) return el.inline_type;
    if (el.types.empty()) return nullptr;
    const std::string& code = el.types.front().code;
    if ((code == "Resource" || code == "DomainResource") && value != nullptr && value->is_object()) {
      const std::string_view rt = value->string_at("resourceType");
      if (!rt.empty()) {
        if (const TypeDef* t = type_named(rt)) return t;
      }
    }
    return type_named(code);
  }

  bool derives_from(const TypeDef* t, std::string_view name) const {
    for (int guard = 0; t != nullptr && guard < 32; ++guard) {
      if (t->name == name) return true;
      if (t->base.empty()) return false;
      t = type_named(t->base);
    }
    return false;
  }

  void require_known_type(const TypeName& spec) const {
    const bool fhir_known = spec.ns != "System" && type_named(spec.name) != nullptr;
    const bool system_known = spec.ns != "FHIR" && is_system_name(spec.name);
    if (!fhir_known && !system_known) fail("unknown type '" + spec.name + "'");
  }

  // True when the value is of type `spec`; `exact_primitives` for as()/ofType().
  bool has_type(const Value& v, const TypeName& spec, bool exact_primitives) const {
    const bool fhir_known = spec.ns != "System" && type_named(spec.name) != nullptr;
    const bool system_known = spec.ns != "FHIR" && is_system_name(spec.name);
    if (!fhir_known && !system_known) fail("unknown type '" + spec.name + "'");
    if (v.kind != VKind::node) return system_known && system_name(v.kind) == spec.name;
    if (v.type == nullptr) return false;
    // A FHIR primitive is also of the System type it maps to when the names differ only in the first
    // letter (boolean ~ Boolean, dateTime ~ DateTime): R4's que-7 writes `answer is Boolean`. A code is
    // not a String, so `gender is String` stays false.
    if (!fhir_known) {
      return v.type->kind == TypeDef::Kind::primitive && !spec.name.empty() &&
             v.type->name.size() == spec.name.size() && v.type->name.substr(1) == spec.name.substr(1) &&
             v.type->name.front() == static_cast<char>(spec.name.front() - 'A' + 'a');
    }
    if (v.type->kind == TypeDef::Kind::primitive && exact_primitives) return v.type->name == spec.name;
    if (spec.name == "BackboneElement" || spec.name == "Element") {
      if (v.type->kind == TypeDef::Kind::backbone) return true;
    }
    return derives_from(v.type, spec.name);
  }

  void push_values(Collection& out, const Node* value, const Node* companion, const TypeDef* type) const {
    if (value != nullptr && value->is_array()) {
      const auto& items = value->items();
      const bool paired = companion != nullptr && companion->is_array();
      for (std::size_t i = 0; i < items.size(); ++i) {
        Value v;
        v.node = items[i].is_null() ? nullptr : &items[i];
        if (paired && i < companion->items().size() && !companion->items()[i].is_null()) {
          v.companion = &companion->items()[i];
        }
        v.type = v.node != nullptr && items[i].is_object() && type != nullptr &&
                         type->kind == TypeDef::Kind::resource
                     ? resource_type_of(items[i], type)
                     : type;
        if (v.node != nullptr || v.companion != nullptr) out.push_back(v);
      }
      return;
    }
    if (value == nullptr && companion != nullptr && companion->is_array()) {
      for (const Node& c : companion->items()) {
        if (c.is_null()) continue;
        Value v;
        v.companion = &c;
        v.type = type;
        out.push_back(v);
      }
      return;
    }
    if (value == nullptr && companion == nullptr) return;
    Value v;
    v.node = value != nullptr && !value->is_null() ? value : nullptr;
    v.companion = companion;
    v.type = v.node != nullptr && type != nullptr && type->kind == TypeDef::Kind::resource
                 ? resource_type_of(*v.node, type)
                 : type;
    if (v.node != nullptr || v.companion != nullptr) out.push_back(v);
  }

  const TypeDef* resource_type_of(const Node& n, const TypeDef* fallback) const {
    const std::string_view rt = n.string_at("resourceType");
    if (rt.empty() || rt == fallback->name) return fallback;
    const TypeDef* t = type_named(rt);
    return t != nullptr ? t : fallback;
  }

  // The object whose members are the item's children: the value for complex items, the `_name`
  // companion for primitives.
  static const Node* container_of(const Value& item) {
    if (item.kind != VKind::node) return nullptr;
    if (item.type != nullptr && item.type->kind == TypeDef::Kind::primitive) return item.companion;
    if (item.node != nullptr && item.node->is_object()) return item.node;
    return item.companion != nullptr && item.companion->is_object() ? item.companion : nullptr;
  }

  static void find_pair(const Node& object, const Expr& e, const Node*& value, const Node*& companion) {
    for (const auto& [key, member] : object.members()) {
      if (key.size() == e.text.size() && key == e.text) {
        value = &member;
      } else if (key.size() == e.underscore.size() && key == e.underscore) {
        companion = &member;
      }
    }
  }

  // children().count() without building the children.
  static std::int64_t count_children(const Value& item) {
    const Node* object = container_of(item);
    if (object == nullptr) return 0;
    std::int64_t n = 0;
    for (const auto& [key, value] : object->members()) {
      std::string_view k = key;
      if (k == "resourceType") continue;
      if (k.starts_with('_')) {
        k.remove_prefix(1);
        if (object->find(k) != nullptr) {
          if (value.is_array()) {
            const Node* base = object->find(k);
            if (base->is_array()) {
              for (std::size_t i = 0; i < value.items().size() && i < base->items().size(); ++i) {
                if (base->items()[i].is_null() && !value.items()[i].is_null()) ++n;
              }
            }
          }
          continue;
        }
        if (!value.is_array()) {
          n += value.is_null() ? 0 : 1;
          continue;
        }
      }
      if (!value.is_array()) {
        n += value.is_null() ? 0 : 1;
        continue;
      }
      for (const Node& v : value.items()) n += v.is_null() ? 0 : 1;
    }
    return n;
  }

  void navigate(Collection& out, const Value& item, const Expr& e) const {
    const Node* object = container_of(item);
    if (object == nullptr) return;
    const TypeDef* t = item.type;
    if (t == nullptr) {
      const Node* value = nullptr;
      const Node* companion = nullptr;
      find_pair(*object, e, value, companion);
      push_values(out, value, companion, nullptr);
      return;
    }
    const ElementDef* el = t->element(e.text);
    if (el == nullptr) {
      std::string_view choice;
      const ElementDef* c = t->resolve(e.text, &choice);
      if (c != nullptr && c->choice) {
        fail("'" + e.text + "' is not an element of " + t->name + "; choice elements are navigated by '" +
             c->name + "'");
      }
      return;
    }
    if (!el->choice) {
      const Node* value = nullptr;
      const Node* companion = nullptr;
      find_pair(*object, e, value, companion);
      if (value == nullptr && companion == nullptr) return;
      push_values(out, value, companion, child_type(*el, {}, value));
      return;
    }
    for (const auto& [key, value] : object->members()) {
      std::string_view k = key;
      const bool underscore = k.starts_with('_');
      if (underscore) k.remove_prefix(1);
      if (k.size() <= e.text.size() || !k.starts_with(e.text)) continue;
      std::string_view choice;
      if (t->resolve(k, &choice) != el) continue;
      if (underscore) {
        if (object->find(k) != nullptr) continue;
        push_values(out, nullptr, &value, type_named(choice));
      } else {
        const Node* companion = object->find(std::string("_") + std::string(k));
        push_values(out, &value, companion, child_type(*el, choice, &value));
      }
    }
  }

  void children_of(Collection& out, const Value& item) const {
    const Node* object = container_of(item);
    if (object == nullptr) return;
    for (const auto& [key, value] : object->members()) {
      std::string_view k = key;
      if (k == "resourceType") continue;
      const bool underscore = k.starts_with('_');
      if (underscore) {
        k.remove_prefix(1);
        if (object->find(k) != nullptr) continue;
      }
      const TypeDef* type = nullptr;
      if (item.type != nullptr) {
        std::string_view choice;
        if (const ElementDef* el = item.type->resolve(k, &choice)) {
          type = child_type(*el, choice, underscore ? nullptr : &value);
        }
      }
      if (underscore) {
        push_values(out, nullptr, &value, type);
      } else {
        const Node* companion = object->find(std::string("_") + std::string(k));
        push_values(out, &value, companion, type);
      }
    }
  }

  void descendants_of(Collection& out, const Value& item, int depth) const {
    if (depth > 256) fail("descendants(): document too deep");
    Collection kids;
    children_of(kids, item);
    step(kids.size() + 1);
    for (const Value& k : kids) {
      out.push_back(k);
      descendants_of(out, k, depth + 1);
    }
  }

  static const Value* singleton(const Collection& c, std::string_view what) {
    if (c.empty()) return nullptr;
    if (c.size() > 1) fail(std::string(what) + " needs a single item, got " + std::to_string(c.size()));
    return &c.front();
  }

  // Singleton evaluation in a Boolean context.
  static std::optional<bool> truth(const Collection& c, std::string_view what) {
    const Value* v = singleton(c, what);
    if (v == nullptr) return std::nullopt;
    Value s;
    if (to_system(*v, s) && s.kind == VKind::boolean) return s.flag;
    return true;
  }

  static Collection from_bool(std::optional<bool> b) {
    if (!b) return {};
    return Collection{Value::boolean(*b)};
  }

  // The System value of a singleton; nullopt when empty or valueless.
  static std::optional<Value> system_value(const Collection& c, std::string_view what) {
    const Value* v = singleton(c, what);
    if (v == nullptr) return std::nullopt;
    Value s;
    if (!to_system(*v, s)) return std::nullopt;
    return s;
  }

  static std::optional<std::string_view> string_input(const Collection& c, std::string_view what) {
    auto v = system_value(c, what);
    if (!v) {
      if (!c.empty() && (c.front().type == nullptr || c.front().type->kind != TypeDef::Kind::primitive)) {
        fail(std::string(what) + " needs a string");
      }
      return std::nullopt;
    }
    if (v->kind != VKind::string) fail(std::string(what) + " needs a string");
    return v->text;
  }

  std::optional<std::string_view> string_arg(const Expr& arg, const Collection& focus,
                                             std::string_view what) {
    return string_input(eval(arg, focus), what);
  }

  std::optional<std::int64_t> integer_arg(const Expr& arg, const Collection& focus, std::string_view what) {
    auto v = system_value(eval(arg, focus), what);
    if (!v) return std::nullopt;
    if (v->kind != VKind::integer) fail(std::string(what) + " needs an integer");
    return v->integer;
  }

  bool contains_value(const Collection& c, const Value& v) const {
    step(c.size() + 1);
    return std::any_of(c.begin(), c.end(),
                       [&](const Value& x) { return equal_values(x, v).value_or(false); });
  }

  void add_distinct(Collection& out, const Value& v) const {
    if (!contains_value(out, v)) out.push_back(v);
  }

  Value make_string(std::string s) { return Value::string_of(keep(std::move(s))); }

 public:
  Collection eval(const Expr& e, const Collection& focus) {
    step();
    switch (e.kind) {
      case ExprKind::empty:
        return {};
      case ExprKind::boolean:
        return {Value::boolean(e.boolean)};
      case ExprKind::string:
        return {Value::string_of(e.text)};
      case ExprKind::integer:
        return {Value::integer_of(e.integer)};
      case ExprKind::decimal:
        return {Value::decimal_of(e.decimal, e.scale)};
      case ExprKind::date:
      case ExprKind::datetime:
      case ExprKind::time: {
        const VKind k = e.kind == ExprKind::date       ? VKind::date
                        : e.kind == ExprKind::datetime ? VKind::datetime
                                                       : VKind::time;
        if (!parse_moment(e.text, k)) fail("invalid date/time literal @" + e.text);
        Value v;
        v.kind = k;
        v.text = e.text;
        return {v};
      }
      case ExprKind::quantity: {
        Value v;
        v.kind = VKind::quantity;
        v.decimal = e.decimal;
        v.scale = e.scale;
        v.text = e.text;
        v.flag = e.boolean;
        return {v};
      }
      case ExprKind::variable:
        return variable(e, focus);
      case ExprKind::member:
        return member(e, focus);
      case ExprKind::indexer: {
        Collection input = eval(*e.source, focus);
        auto index = integer_arg(*e.args.front(), focus, "indexer");
        if (!index || *index < 0 || static_cast<std::size_t>(*index) >= input.size()) return {};
        return {input[static_cast<std::size_t>(*index)]};
      }
      case ExprKind::function: {
        if (e.source) {
          Collection input = eval(*e.source, focus);
          return function(e, input, focus);
        }
        return function(e, focus, focus);
      }
      case ExprKind::unary:
        return unary(e, focus);
      case ExprKind::binary:
        return binary(e, focus);
      case ExprKind::type_op: {
        Collection input = eval(*e.source, focus);
        if (e.fn == Fn::is) {
          const Value* v = singleton(input, "is");
          if (v == nullptr) return {};
          return {Value::boolean(has_type(*v, e.type, false))};
        }
        const Value* v = singleton(input, "as");
        if (v == nullptr || !has_type(*v, e.type, true)) return {};
        return {*v};
      }
    }
    return {};
  }

 private:
  Collection variable(const Expr& e, const Collection& focus) {
    const std::string& n = e.text;
    if (n == "$this") return focus;
    if (n == "$index") return {Value::integer_of(index_)};
    if (n == "$total") return total_ != nullptr ? *total_ : Collection{};
    if (n == "%context") return {root_};
    if (n == "%resource" || n == "%rootResource") {
      const bool root = n == "%rootResource";
      const Node* node = root ? context_.root_resource : context_.resource;
      std::string_view type = root ? context_.root_type : context_.resource_type;
      if (root && node == nullptr) {
        node = context_.resource;
        type = context_.resource_type;
      }
      if (node == nullptr) return {root_};
      Value v;
      v.node = node;
      v.type = type_named(type.empty() ? node->string_at("resourceType") : type);
      return {v};
    }
    if (n == "%ucum") return {Value::string_of("http://unitsofmeasure.org")};
    if (n == "%sct") return {Value::string_of("http://snomed.info/sct")};
    if (n == "%loinc") return {Value::string_of("http://loinc.org")};
    if (n == "%us-zip") return {Value::string_of("[0-9]{5}(-[0-9]{4}){0,1}")};
    if (n.starts_with("%vs-")) return {make_string("http://hl7.org/fhir/ValueSet/" + n.substr(4))};
    if (n.starts_with("%ext-"))
      return {make_string("http://hl7.org/fhir/StructureDefinition/" + n.substr(5))};
    fail("unknown variable " + n);
  }

  Collection member(const Expr& e, const Collection& focus) {
    Collection input_storage;
    const Collection* input = &focus;
    if (e.source) {
      input_storage = eval(*e.source, focus);
      input = &input_storage;
    } else if (!e.text.empty() && std::isupper(static_cast<unsigned char>(e.text[0])) &&
               type_named(e.text) != nullptr) {
      Collection out;
      const TypeName spec{{}, e.text};
      for (const Value& v : focus) {
        if (v.kind == VKind::node && has_type(v, spec, false)) out.push_back(v);
      }
      return out;
    }
    Collection out;
    for (const Value& item : *input) navigate(out, item, e);
    step(out.size());
    return out;
  }

  // Evaluates `criteria` once per item with $this and $index set.
  template <class F>
  void for_each_item(const Collection& input, const Expr& criteria, F&& f) {
    const std::int64_t saved = index_;
    Collection one(1);
    for (std::size_t i = 0; i < input.size(); ++i) {
      one[0] = input[i];
      index_ = static_cast<std::int64_t>(i);
      Collection r = eval(criteria, one);
      if (!f(input[i], r)) break;
    }
    index_ = saved;
  }

  Collection unary(const Expr& e, const Collection& focus) {
    Collection input = eval(*e.source, focus);
    auto v = system_value(input, "unary operator");
    if (!v) return {};
    if (e.sign == '+') {
      if (v->kind != VKind::integer && v->kind != VKind::decimal && v->kind != VKind::quantity) {
        fail("unary + needs a number");
      }
      return {*v};
    }
    switch (v->kind) {
      case VKind::integer:
        if (v->integer == std::numeric_limits<std::int64_t>::min()) return {};
        v->integer = -v->integer;
        break;
      case VKind::decimal:
      case VKind::quantity:
        v->decimal = -v->decimal;
        break;
      default:
        fail("unary - needs a number");
    }
    return {*v};
  }

  Collection binary(const Expr& e, const Collection& focus) {
    const Expr& l = *e.args[0];
    const Expr& r = *e.args[1];
    switch (e.op) {
      case BinaryOp::and_: {
        auto a = truth(eval(l, focus), "and");
        if (a == false) return from_bool(false);
        auto b = truth(eval(r, focus), "and");
        if (b == false) return from_bool(false);
        if (a && b) return from_bool(true);
        return {};
      }
      case BinaryOp::or_: {
        auto a = truth(eval(l, focus), "or");
        if (a == true) return from_bool(true);
        auto b = truth(eval(r, focus), "or");
        if (b == true) return from_bool(true);
        if (a && b) return from_bool(false);
        return {};
      }
      case BinaryOp::xor_: {
        auto a = truth(eval(l, focus), "xor");
        auto b = truth(eval(r, focus), "xor");
        if (!a || !b) return {};
        return from_bool(*a != *b);
      }
      case BinaryOp::implies: {
        auto a = truth(eval(l, focus), "implies");
        if (a == false) return from_bool(true);
        auto b = truth(eval(r, focus), "implies");
        if (b == true) return from_bool(true);
        if (a == true && b == false) return from_bool(false);
        return {};
      }
      default:
        break;
    }
    Collection a = eval(l, focus);
    Collection b = eval(r, focus);
    switch (e.op) {
      case BinaryOp::union_: {
        Collection out;
        out.reserve(a.size() + b.size());
        for (const Value& v : a) add_distinct(out, v);
        for (const Value& v : b) add_distinct(out, v);
        return out;
      }
      case BinaryOp::eq:
      case BinaryOp::ne: {
        if (a.empty() || b.empty()) return {};
        auto eq = collections_equal(a, b);
        if (!eq) return {};
        return from_bool(e.op == BinaryOp::eq ? *eq : !*eq);
      }
      case BinaryOp::equiv:
      case BinaryOp::not_equiv: {
        const bool eq = collections_equivalent(a, b);
        return from_bool(e.op == BinaryOp::equiv ? eq : !eq);
      }
      case BinaryOp::in:
      case BinaryOp::contains: {
        const Collection& item = e.op == BinaryOp::in ? a : b;
        const Collection& set = e.op == BinaryOp::in ? b : a;
        const Value* v = singleton(item, e.op == BinaryOp::in ? "in" : "contains");
        if (v == nullptr) return {};
        return from_bool(contains_value(set, *v));
      }
      case BinaryOp::lt:
      case BinaryOp::gt:
      case BinaryOp::le:
      case BinaryOp::ge: {
        auto x = system_value(a, "comparison");
        auto y = system_value(b, "comparison");
        if (!x || !y) return {};
        auto c = compare(*x, *y);
        if (!c) return {};
        switch (e.op) {
          case BinaryOp::lt:
            return from_bool(*c < 0);
          case BinaryOp::gt:
            return from_bool(*c > 0);
          case BinaryOp::le:
            return from_bool(*c <= 0);
          default:
            return from_bool(*c >= 0);
        }
      }
      case BinaryOp::concat: {
        auto x = system_value(a, "&");
        auto y = system_value(b, "&");
        std::string s;
        if (x) s += to_text(*x);
        if (y) s += to_text(*y);
        return {make_string(std::move(s))};
      }
      default:
        break;
    }
    auto x = system_value(a, "arithmetic");
    auto y = system_value(b, "arithmetic");
    if (!x || !y) return {};
    return arithmetic(e.op, *x, *y);
  }

  std::optional<bool> collections_equal(const Collection& a, const Collection& b) const {
    if (a.size() != b.size()) return false;
    step(a.size());
    bool unknown = false;
    for (std::size_t i = 0; i < a.size(); ++i) {
      auto eq = equal_values(a[i], b[i]);
      if (!eq) {
        unknown = true;
      } else if (!*eq) {
        return false;
      }
    }
    if (unknown) return std::nullopt;
    return true;
  }

  bool collections_equivalent(const Collection& a, const Collection& b) const {
    if (a.size() != b.size()) return false;
    std::vector<bool> used(b.size(), false);
    for (const Value& x : a) {
      step(b.size());
      bool found = false;
      for (std::size_t j = 0; j < b.size(); ++j) {
        if (!used[j] && equivalent_values(x, b[j])) {
          used[j] = true;
          found = true;
          break;
        }
      }
      if (!found) return false;
    }
    return true;
  }

  static std::optional<int> compare(const Value& x, const Value& y) {
    const bool xn = x.kind == VKind::integer || x.kind == VKind::decimal;
    const bool yn = y.kind == VKind::integer || y.kind == VKind::decimal;
    if (xn && yn) {
      if (x.kind == VKind::integer && y.kind == VKind::integer) {
        return x.integer < y.integer ? -1 : x.integer > y.integer ? 1 : 0;
      }
      const long double a = x.kind == VKind::integer ? static_cast<long double>(x.integer) : x.decimal;
      const long double b = y.kind == VKind::integer ? static_cast<long double>(y.integer) : y.decimal;
      const int s =
          std::max<int>(x.kind == VKind::integer ? 0 : x.scale, y.kind == VKind::integer ? 0 : y.scale);
      const long double ra = round_to(a, s);
      const long double rb = round_to(b, s);
      return ra < rb ? -1 : ra > rb ? 1 : 0;
    }
    if (x.kind == VKind::string && y.kind == VKind::string) {
      const int c = x.text.compare(y.text);
      return c < 0 ? -1 : c > 0 ? 1 : 0;
    }
    const bool xd = x.kind == VKind::date || x.kind == VKind::datetime;
    const bool yd = y.kind == VKind::date || y.kind == VKind::datetime;
    if ((xd && yd) || (x.kind == VKind::time && y.kind == VKind::time)) {
      auto a = parse_moment(x.text, x.kind);
      auto b = parse_moment(y.text, y.kind);
      if (!a || !b) fail("invalid date/time value");
      return compare_moments(*a, *b);
    }
    if (x.kind == VKind::quantity && y.kind == VKind::quantity) {
      if (x.text == y.text && x.flag == y.flag)
        return x.decimal < y.decimal ? -1 : x.decimal > y.decimal ? 1 : 0;
      long double fa = 0;
      long double fb = 0;
      std::string_view da;
      std::string_view db;
      if (!unit_factor(x.text, x.flag, fa, da) || !unit_factor(y.text, y.flag, fb, db) || da != db) {
        return std::nullopt;
      }
      const long double a = x.decimal * fa;
      const long double b = y.decimal * fb;
      return a < b ? -1 : a > b ? 1 : 0;
    }
    fail("cannot compare " + std::string(system_name(x.kind)) + " with " + std::string(system_name(y.kind)));
  }

  Collection arithmetic(BinaryOp op, const Value& x, const Value& y) {
    const bool xn = x.kind == VKind::integer || x.kind == VKind::decimal;
    const bool yn = y.kind == VKind::integer || y.kind == VKind::decimal;
    if (xn && yn) {
      const bool ints = x.kind == VKind::integer && y.kind == VKind::integer;
      const long double a = x.kind == VKind::integer ? static_cast<long double>(x.integer) : x.decimal;
      const long double b = y.kind == VKind::integer ? static_cast<long double>(y.integer) : y.decimal;
      const int sa = x.kind == VKind::integer ? 0 : x.scale;
      const int sb = y.kind == VKind::integer ? 0 : y.scale;
      std::int64_t r = 0;
      switch (op) {
        case BinaryOp::add:
          if (ints) {
            if (__builtin_add_overflow(x.integer, y.integer, &r)) return {};
            return {Value::integer_of(r)};
          }
          return {Value::decimal_of(a + b, std::max(sa, sb))};
        case BinaryOp::sub:
          if (ints) {
            if (__builtin_sub_overflow(x.integer, y.integer, &r)) return {};
            return {Value::integer_of(r)};
          }
          return {Value::decimal_of(a - b, std::max(sa, sb))};
        case BinaryOp::mul:
          if (ints) {
            if (__builtin_mul_overflow(x.integer, y.integer, &r)) return {};
            return {Value::integer_of(r)};
          }
          return {Value::decimal_of(a * b, std::min(sa + sb, 30))};
        case BinaryOp::div: {
          if (b == 0) return {};
          return {Value::decimal_of(a / b, minimal_scale(a / b))};
        }
        case BinaryOp::int_div:
          if (b == 0) return {};
          return integer_or_empty(std::trunc(a / b));
        case BinaryOp::mod:
          if (b == 0) return {};
          if (ints) return {Value::integer_of(y.integer == -1 ? 0 : x.integer % y.integer)};
          return {Value::decimal_of(round_to(std::fmod(a, b), std::max(sa, sb)), std::max(sa, sb))};
        default:
          break;
      }
    }
    if (op == BinaryOp::add && x.kind == VKind::string && y.kind == VKind::string) {
      return {make_string(std::string(x.text) + std::string(y.text))};
    }
    const bool xt = x.kind == VKind::date || x.kind == VKind::datetime || x.kind == VKind::time;
    if (xt && y.kind == VKind::quantity && (op == BinaryOp::add || op == BinaryOp::sub)) {
      auto m = parse_moment(x.text, x.kind);
      if (!m) fail("invalid date/time value");
      if (!is_calendar_duration(y.text)) fail("'" + std::string(y.text) + "' is not a calendar duration");
      auto r = add_duration(*m, op == BinaryOp::add ? y.decimal : -y.decimal, y.text);
      if (!r) return {};  // beyond the year 9999 (or before 0000)
      Value v;
      v.kind = x.kind;
      v.text = keep(format_moment(*r));
      return {v};
    }
    if (x.kind == VKind::quantity && y.kind == VKind::quantity && x.text == y.text &&
        (op == BinaryOp::add || op == BinaryOp::sub)) {
      Value v = x;
      v.decimal = op == BinaryOp::add ? x.decimal + y.decimal : x.decimal - y.decimal;
      v.scale = std::max(x.scale, y.scale);
      return {v};
    }
    if (x.kind == VKind::quantity && yn && (op == BinaryOp::mul || op == BinaryOp::div)) {
      const long double b = y.kind == VKind::integer ? static_cast<long double>(y.integer) : y.decimal;
      if (op == BinaryOp::div && b == 0) return {};
      Value v = x;
      v.decimal = op == BinaryOp::mul ? x.decimal * b : x.decimal / b;
      v.scale = static_cast<std::int8_t>(
          op == BinaryOp::mul ? std::min(x.scale + (y.kind == VKind::integer ? 0 : y.scale), 30)
                              : minimal_scale(v.decimal));
      return {v};
    }
    if (xn && y.kind == VKind::quantity && op == BinaryOp::mul) return arithmetic(op, y, x);
    fail("operator not defined for " + std::string(system_name(x.kind)) + " and " +
         std::string(system_name(y.kind)));
  }

  Collection function(const Expr& e, const Collection& input, const Collection& focus) {
    const auto arg = [&](std::size_t i) -> const Expr& { return *e.args[i]; };
    switch (e.fn) {
      case Fn::empty:
        return from_bool(input.empty());
      case Fn::exists: {
        if (e.args.empty()) return from_bool(!input.empty());
        bool any = false;
        for_each_item(input, arg(0), [&](const Value&, const Collection& r) {
          any = truth(r, "exists") == true;
          return !any;
        });
        return from_bool(any);
      }
      case Fn::all: {
        bool all = true;
        for_each_item(input, arg(0), [&](const Value&, const Collection& r) {
          all = truth(r, "all") == true;
          return all;
        });
        return from_bool(all);
      }
      case Fn::all_true:
      case Fn::any_true:
      case Fn::all_false:
      case Fn::any_false: {
        const bool want = e.fn == Fn::all_true || e.fn == Fn::any_true;
        const bool every = e.fn == Fn::all_true || e.fn == Fn::all_false;
        bool result = every;
        for (const Value& v : input) {
          Value s;
          if (!to_system(v, s) || s.kind != VKind::boolean) fail(e.text + "() needs booleans");
          if (every && s.flag != want) result = false;
          if (!every && s.flag == want) result = true;
        }
        return from_bool(result);
      }
      case Fn::subset_of:
      case Fn::superset_of: {
        Collection other = eval(arg(0), focus);
        const Collection& sub = e.fn == Fn::subset_of ? input : other;
        const Collection& super = e.fn == Fn::subset_of ? other : input;
        return from_bool(
            std::all_of(sub.begin(), sub.end(), [&](const Value& v) { return contains_value(super, v); }));
      }
      case Fn::count:
        return {Value::integer_of(static_cast<std::int64_t>(input.size()))};
      case Fn::children_count: {
        std::int64_t n = 0;
        for (const Value& v : input) n += count_children(v);
        return {Value::integer_of(n)};
      }
      case Fn::distinct: {
        Collection out;
        for (const Value& v : input) add_distinct(out, v);
        return out;
      }
      case Fn::is_distinct: {
        Collection out;
        for (const Value& v : input) add_distinct(out, v);
        return from_bool(out.size() == input.size());
      }
      case Fn::where: {
        Collection out;
        for_each_item(input, arg(0), [&](const Value& v, const Collection& r) {
          if (truth(r, "where") == true) out.push_back(v);
          return true;
        });
        return out;
      }
      case Fn::select: {
        Collection out;
        for_each_item(input, arg(0), [&](const Value&, const Collection& r) {
          out.insert(out.end(), r.begin(), r.end());
          return true;
        });
        return out;
      }
      case Fn::repeat: {
        Collection out;
        Collection current = input;
        for (int round = 0; !current.empty() && round < 1000; ++round) {
          Collection next;
          for_each_item(current, arg(0), [&](const Value&, const Collection& r) {
            for (const Value& v : r) {
              step(out.size() + 1);
              const bool seen = std::any_of(out.begin(), out.end(), [&](const Value& o) {
                return v.kind == VKind::node ? o.node == v.node && o.companion == v.companion
                                             : equal_values(o, v).value_or(false);
              });
              if (!seen) {
                out.push_back(v);
                next.push_back(v);
              }
            }
            return true;
          });
          current = std::move(next);
        }
        return out;
      }
      case Fn::of_type: {
        Collection out;
        for (const Value& v : input) {
          if (has_type(v, e.type, true)) out.push_back(v);
        }
        if (input.empty()) require_known_type(e.type);
        return out;
      }
      case Fn::as: {
        Collection out;
        for (const Value& v : input) {
          if (has_type(v, e.type, true)) out.push_back(v);
        }
        if (input.empty()) require_known_type(e.type);
        return out;
      }
      case Fn::is: {
        const Value* v = singleton(input, "is()");
        if (v == nullptr) return {};
        return {Value::boolean(has_type(*v, e.type, false))};
      }
      case Fn::single: {
        const Value* v = singleton(input, "single()");
        if (v == nullptr) return {};
        return {*v};
      }
      case Fn::first:
        if (input.empty()) return {};
        return {input.front()};
      case Fn::last:
        if (input.empty()) return {};
        return {input.back()};
      case Fn::tail:
        if (input.size() <= 1) return {};
        return Collection(input.begin() + 1, input.end());
      case Fn::skip:
      case Fn::take: {
        auto n = integer_arg(arg(0), focus, e.text);
        if (!n) return {};
        const std::size_t k = *n <= 0 ? 0 : std::min<std::size_t>(static_cast<std::size_t>(*n), input.size());
        if (e.fn == Fn::skip) return Collection(input.begin() + static_cast<std::ptrdiff_t>(k), input.end());
        return Collection(input.begin(), input.begin() + static_cast<std::ptrdiff_t>(k));
      }
      case Fn::intersect: {
        Collection other = eval(arg(0), focus);
        Collection out;
        for (const Value& v : input) {
          if (contains_value(other, v)) add_distinct(out, v);
        }
        return out;
      }
      case Fn::exclude: {
        Collection other = eval(arg(0), focus);
        Collection out;
        for (const Value& v : input) {
          if (!contains_value(other, v)) out.push_back(v);
        }
        return out;
      }
      case Fn::union_: {
        Collection other = eval(arg(0), focus);
        Collection out;
        for (const Value& v : input) add_distinct(out, v);
        for (const Value& v : other) add_distinct(out, v);
        return out;
      }
      case Fn::combine: {
        Collection out = input;
        Collection other = eval(arg(0), focus);
        out.insert(out.end(), other.begin(), other.end());
        return out;
      }
      case Fn::iif: {
        if (input.size() > 1) fail("iif() on a collection of more than one item");
        const Collection& scope = e.source ? input : focus;
        Collection c = eval(arg(0), scope);
        const Value* v = singleton(c, "iif()");
        std::optional<bool> b;
        if (v != nullptr) {
          Value s;
          if (!to_system(*v, s) || s.kind != VKind::boolean) fail("iif() criterion is not a Boolean");
          b = s.flag;
        }
        if (b == true) return eval(arg(1), scope);
        if (e.args.size() > 2) return eval(arg(2), scope);
        return {};
      }
      case Fn::to_boolean:
      case Fn::converts_to_boolean: {
        auto v = system_value(input, e.text);
        if (!v) return {};
        auto b = convert_boolean(*v);
        if (e.fn == Fn::converts_to_boolean) return from_bool(b.has_value());
        return from_bool(b);
      }
      case Fn::to_integer:
      case Fn::converts_to_integer: {
        auto v = system_value(input, e.text);
        if (!v) return {};
        std::optional<std::int64_t> r;
        if (v->kind == VKind::integer) r = v->integer;
        if (v->kind == VKind::boolean) r = v->flag ? 1 : 0;
        if (v->kind == VKind::string) {
          std::string_view t = v->text;
          if (t.starts_with('+')) t.remove_prefix(1);
          std::int64_t i = 0;
          auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), i);
          if (ec == std::errc() && p == t.data() + t.size() && !t.empty()) r = i;
        }
        if (e.fn == Fn::converts_to_integer) return from_bool(r.has_value());
        if (!r) return {};
        return {Value::integer_of(*r)};
      }
      case Fn::to_decimal:
      case Fn::converts_to_decimal: {
        auto v = system_value(input, e.text);
        if (!v) return {};
        std::optional<Value> r;
        if (v->kind == VKind::integer) r = Value::decimal_of(static_cast<long double>(v->integer), 0);
        if (v->kind == VKind::decimal) r = *v;
        if (v->kind == VKind::boolean) r = Value::decimal_of(v->flag ? 1 : 0, 1);
        if (v->kind == VKind::string) r = parse_decimal(v->text);
        if (e.fn == Fn::converts_to_decimal) return from_bool(r.has_value());
        if (!r) return {};
        return {*r};
      }
      case Fn::to_string:
      case Fn::converts_to_string: {
        auto v = system_value(input, e.text);
        if (!v) return {};
        if (e.fn == Fn::converts_to_string) return from_bool(true);
        if (v->kind == VKind::string) return {*v};
        return {make_string(to_text(*v))};
      }
      case Fn::to_date:
      case Fn::converts_to_date:
      case Fn::to_datetime:
      case Fn::converts_to_datetime:
      case Fn::to_time:
      case Fn::converts_to_time: {
        auto v = system_value(input, e.text);
        if (!v) return {};
        const VKind target = (e.fn == Fn::to_date || e.fn == Fn::converts_to_date)   ? VKind::date
                             : (e.fn == Fn::to_time || e.fn == Fn::converts_to_time) ? VKind::time
                                                                                     : VKind::datetime;
        const bool converts =
            e.fn == Fn::converts_to_date || e.fn == Fn::converts_to_datetime || e.fn == Fn::converts_to_time;
        std::optional<Value> r;
        if (v->kind == target) r = *v;
        if (!r && target == VKind::datetime && v->kind == VKind::date) {
          r = *v;
          r->kind = VKind::datetime;
        }
        if (!r && target == VKind::date && v->kind == VKind::datetime) {
          auto m = parse_moment(v->text, VKind::datetime);
          if (m) {
            m->precision = std::min(m->precision, 3);
            m->has_zone = false;
            Value d;
            d.kind = VKind::date;
            d.text = keep(format_moment(*m));
            r = d;
          }
        }
        if (!r && v->kind == VKind::string) {
          std::string_view t = v->text;
          if (target == VKind::time && t.starts_with('T')) t.remove_prefix(1);
          if (target == VKind::datetime && t.ends_with('T')) t.remove_suffix(1);
          if (parse_moment(t, target)) {
            Value d;
            d.kind = target;
            d.text = t;
            r = d;
          }
        }
        if (converts) return from_bool(r.has_value());
        if (!r) return {};
        return {*r};
      }
      case Fn::to_quantity:
      case Fn::converts_to_quantity: {
        auto v = system_value(input, e.text);
        if (!v) return {};
        std::optional<Value> r;
        if (v->kind == VKind::quantity) r = *v;
        if (v->kind == VKind::integer || v->kind == VKind::decimal) {
          Value q;
          q.kind = VKind::quantity;
          q.decimal = v->kind == VKind::integer ? static_cast<long double>(v->integer) : v->decimal;
          q.scale = v->kind == VKind::integer ? 0 : v->scale;
          q.text = "1";
          r = q;
        }
        if (v->kind == VKind::boolean) {
          Value q;
          q.kind = VKind::quantity;
          q.decimal = v->flag ? 1 : 0;
          q.scale = 1;
          q.text = "1";
          r = q;
        }
        if (v->kind == VKind::string) r = parse_quantity(v->text);
        if (r && e.args.size() == 1) {
          auto unit = string_arg(arg(0), focus, e.text);
          if (unit && *unit != r->text) {
            long double fa = 0;
            long double fb = 0;
            std::string_view da;
            std::string_view db;
            if (unit_factor(r->text, r->flag, fa, da) && unit_factor(*unit, false, fb, db) && da == db) {
              r->decimal = r->decimal * fa / fb;
              r->text = *unit;
              r->flag = false;
            } else {
              r.reset();
            }
          }
        }
        if (e.fn == Fn::converts_to_quantity) return from_bool(r.has_value());
        if (!r) return {};
        return {*r};
      }
      case Fn::index_of: {
        auto s = string_input(input, e.text);
        auto sub = string_arg(arg(0), focus, e.text);
        if (!s || !sub) return {};
        const auto p = s->find(*sub);
        return {Value::integer_of(p == std::string_view::npos ? -1 : static_cast<std::int64_t>(p))};
      }
      case Fn::substring: {
        auto s = string_input(input, e.text);
        auto start = integer_arg(arg(0), focus, e.text);
        if (!s || !start) return {};
        if (*start < 0 || static_cast<std::size_t>(*start) >= s->size()) return {};
        std::size_t len = std::string_view::npos;
        if (e.args.size() > 1) {
          auto l = integer_arg(arg(1), focus, e.text);
          if (!l) return {Value::string_of(s->substr(static_cast<std::size_t>(*start)))};
          len = *l < 0 ? 0 : static_cast<std::size_t>(*l);
        }
        return {Value::string_of(s->substr(static_cast<std::size_t>(*start), len))};
      }
      case Fn::starts_with:
      case Fn::ends_with:
      case Fn::contains: {
        auto s = string_input(input, e.text);
        auto sub = string_arg(arg(0), focus, e.text);
        if (!s || !sub) return {};
        if (e.fn == Fn::starts_with) return from_bool(s->starts_with(*sub));
        if (e.fn == Fn::ends_with) return from_bool(s->ends_with(*sub));
        return from_bool(s->find(*sub) != std::string_view::npos);
      }
      case Fn::upper:
      case Fn::lower: {
        auto s = string_input(input, e.text);
        if (!s) return {};
        std::string out(*s);
        for (char& c : out) {
          c = static_cast<char>(e.fn == Fn::upper ? std::toupper(static_cast<unsigned char>(c))
                                                  : std::tolower(static_cast<unsigned char>(c)));
        }
        return {make_string(std::move(out))};
      }
      case Fn::replace: {
        auto s = string_input(input, e.text);
        auto pattern = string_arg(arg(0), focus, e.text);
        auto with = string_arg(arg(1), focus, e.text);
        if (!s || !pattern || !with) return {};
        std::string out;
        if (pattern->empty()) {
          out += *with;
          for (char c : *s) {
            out += c;
            out += *with;
          }
        } else {
          std::size_t pos = 0;
          while (true) {
            const auto hit = s->find(*pattern, pos);
            if (hit == std::string_view::npos) break;
            out += s->substr(pos, hit - pos);
            out += *with;
            pos = hit + pattern->size();
          }
          out += s->substr(pos);
        }
        return {make_string(std::move(out))};
      }
      case Fn::matches:
      case Fn::replace_matches: {
        auto s = string_input(input, e.text);
        auto pattern = string_arg(arg(0), focus, e.text);
        std::optional<std::string_view> with;
        if (e.fn == Fn::replace_matches) {
          with = string_arg(arg(1), focus, e.text);
          if (!with) return {};
        }
        if (!s || !pattern) return {};
        if (e.fn == Fn::replace_matches && pattern->empty()) return {Value::string_of(*s)};
        std::shared_ptr<const Regex> re = e.regex;
        if (!re) {
          auto compiled = compile_regex(*pattern);
          if (!compiled) fail(compiled.error().issues.front().diagnostics);
          re = std::move(compiled).value();
        }
        if (re->size() * (s->size() + 1) > kMaxRegexWork) {
          fail(e.text + "(): the input (" + std::to_string(s->size()) +
               " bytes) is too long for this regular expression");
        }
        if (e.fn == Fn::matches) return from_bool(re->search(*s));
        auto out = re->replace_all(*s, *with, kMaxRegexWork);
        if (!out) fail(e.text + "(): the regular expression takes too long on the input");
        return {make_string(std::move(*out))};
      }
      case Fn::length: {
        auto s = string_input(input, e.text);
        if (!s) return {};
        return {Value::integer_of(static_cast<std::int64_t>(s->size()))};
      }
      case Fn::to_chars: {
        auto s = string_input(input, e.text);
        if (!s) return {};
        Collection out;
        for (std::size_t i = 0; i < s->size(); ++i) out.push_back(Value::string_of(s->substr(i, 1)));
        return out;
      }
      case Fn::split: {
        auto s = string_input(input, e.text);
        auto sep = string_arg(arg(0), focus, e.text);
        if (!s || !sep) return {};
        Collection out;
        if (sep->empty()) {
          for (std::size_t i = 0; i < s->size(); ++i) out.push_back(Value::string_of(s->substr(i, 1)));
          return out;
        }
        std::size_t pos = 0;
        while (true) {
          const auto hit = s->find(*sep, pos);
          out.push_back(Value::string_of(s->substr(pos, hit == std::string_view::npos ? hit : hit - pos)));
          if (hit == std::string_view::npos) break;
          pos = hit + sep->size();
        }
        return out;
      }
      case Fn::join: {
        std::string_view sep;
        if (!e.args.empty()) {
          auto s = string_arg(arg(0), focus, e.text);
          if (s) sep = *s;
        }
        std::string out;
        for (std::size_t i = 0; i < input.size(); ++i) {
          if (i > 0) out += sep;
          out += to_text(input[i]);
        }
        return {make_string(std::move(out))};
      }
      case Fn::trim: {
        auto s = string_input(input, e.text);
        if (!s) return {};
        std::string_view t = *s;
        while (!t.empty() && std::isspace(static_cast<unsigned char>(t.front()))) t.remove_prefix(1);
        while (!t.empty() && std::isspace(static_cast<unsigned char>(t.back()))) t.remove_suffix(1);
        return {Value::string_of(t)};
      }
      case Fn::encode:
      case Fn::decode: {
        auto s = string_input(input, e.text);
        auto format = string_arg(arg(0), focus, e.text);
        if (!s || !format) return {};
        if (*format == "hex") {
          std::string out;
          static constexpr char kHex[] = "0123456789abcdef";
          if (e.fn == Fn::encode) {
            for (unsigned char c : *s) {
              out += kHex[c >> 4];
              out += kHex[c & 15];
            }
          } else {
            if (s->size() % 2 != 0) return {};
            for (std::size_t i = 0; i < s->size(); i += 2) {
              unsigned v = 0;
              auto [p, ec] = std::from_chars(s->data() + i, s->data() + i + 2, v, 16);
              if (ec != std::errc() || p != s->data() + i + 2) return {};
              out += static_cast<char>(v);
            }
          }
          return {make_string(std::move(out))};
        }
        if (*format == "base64" || *format == "urlbase64") {
          if (e.fn == Fn::encode) return {make_string(base64_encode(*s, *format == "urlbase64"))};
          auto d = base64_decode(*s);
          if (!d) return {};
          return {make_string(std::move(*d))};
        }
        fail("unknown encoding '" + std::string(*format) + "'");
      }
      case Fn::children: {
        Collection out;
        for (const Value& v : input) children_of(out, v);
        step(out.size());
        return out;
      }
      case Fn::descendants: {
        Collection out;
        for (const Value& v : input) descendants_of(out, v, 0);
        return out;
      }
      case Fn::not_: {
        auto b = truth(input, "not()");
        if (!b) return {};
        return from_bool(!*b);
      }
      case Fn::trace:
        return input;
      case Fn::today:
      case Fn::now:
      case Fn::time_of_day:
        return {clock_value(e.fn)};
      case Fn::extension: {
        auto url = string_arg(arg(0), focus, e.text);
        if (!url) return {};
        static const Expr kExtension = [] {
          Expr x;
          x.kind = ExprKind::member;
          x.text = "extension";
          x.underscore = "_extension";
          return x;
        }();
        Collection all;
        for (const Value& v : input) navigate(all, v, kExtension);
        Collection out;
        for (const Value& v : all) {
          if (v.node != nullptr && v.node->string_at("url") == *url) out.push_back(v);
        }
        return out;
      }
      case Fn::has_value: {
        if (input.size() != 1) return from_bool(false);
        const Value& v = input.front();
        if (v.kind != VKind::node) return from_bool(true);
        return from_bool(v.type != nullptr && v.type->kind == TypeDef::Kind::primitive && v.node != nullptr);
      }
      case Fn::get_value: {
        if (input.size() != 1) return {};
        const Value& v = input.front();
        if (v.kind != VKind::node) return {v};
        if (v.type == nullptr || v.type->kind != TypeDef::Kind::primitive) return {};
        Value s;
        if (!to_system(v, s)) return {};
        return {s};
      }
      case Fn::resolve: {
        Collection out;
        for (const Value& v : input) resolve(out, v);
        return out;
      }
      case Fn::conforms_to: {
        auto url = string_arg(arg(0), focus, e.text);
        const Value* v = singleton(input, "conformsTo()");
        if (!url || v == nullptr) return {};
        constexpr std::string_view kCore = "http://hl7.org/fhir/StructureDefinition/";
        if (url->starts_with(kCore)) {
          const std::string_view name = url->substr(kCore.size());
          if (type_named(name) == nullptr) return from_bool(false);
          return from_bool(has_type(*v, TypeName{"FHIR", std::string(name)}, false));
        }
        if (url->find("/StructureDefinition/") != std::string_view::npos) return {};
        fail("conformsTo(): '" + std::string(*url) + "' is not a StructureDefinition URL");
      }
      case Fn::member_of:
        return {};
      case Fn::html_checks:
        return from_bool(true);
      case Fn::aggregate: {
        Collection total;
        if (e.args.size() > 1) total = eval(arg(1), focus);
        const Collection* saved = total_;
        total_ = &total;
        const std::int64_t saved_index = index_;
        Collection one(1);
        for (std::size_t i = 0; i < input.size(); ++i) {
          one[0] = input[i];
          index_ = static_cast<std::int64_t>(i);
          Collection next = eval(arg(0), one);
          total = std::move(next);
        }
        index_ = saved_index;
        total_ = saved;
        return total;
      }
      case Fn::abs:
      case Fn::ceiling:
      case Fn::exp:
      case Fn::floor:
      case Fn::ln:
      case Fn::log:
      case Fn::power:
      case Fn::round:
      case Fn::sqrt:
      case Fn::truncate:
        return math(e, input, focus);
      case Fn::comparable: {
        auto a = system_value(input, e.text);
        auto b = system_value(eval(arg(0), focus), e.text);
        if (!a || !b) return {};
        if (a->kind != VKind::quantity || b->kind != VKind::quantity) fail("comparable() needs quantities");
        long double fa = 0;
        long double fb = 0;
        std::string_view da;
        std::string_view db;
        return from_bool(unit_factor(a->text, a->flag, fa, da) && unit_factor(b->text, b->flag, fb, db) &&
                         da == db);
      }
    }
    fail("function not implemented: " + e.text);
  }

  Collection math(const Expr& e, const Collection& input, const Collection& focus) {
    auto v = system_value(input, e.text);
    if (!v) return {};
    if (e.fn == Fn::abs && v->kind == VKind::quantity) {
      v->decimal = std::fabs(v->decimal);
      return {*v};
    }
    if (v->kind != VKind::integer && v->kind != VKind::decimal) fail(e.text + "() needs a number");
    const long double x = v->kind == VKind::integer ? static_cast<long double>(v->integer) : v->decimal;
    const auto dec = [](long double r, int s) -> Collection {
      if (!std::isfinite(r)) return {};
      return {Value::decimal_of(r, s)};
    };
    const auto computed = [&](long double r) { return dec(r, minimal_scale(r)); };
    switch (e.fn) {
      case Fn::abs:
        if (v->kind == VKind::integer) return integer_or_empty(std::fabs(x));
        return dec(std::fabs(x), v->scale);
      case Fn::ceiling:
        return integer_or_empty(std::ceil(x));
      case Fn::floor:
        return integer_or_empty(std::floor(x));
      case Fn::truncate:
        return integer_or_empty(std::trunc(x));
      case Fn::exp:
        return computed(std::exp(x));
      case Fn::ln:
        return computed(x > 0 ? std::log(x) : NAN);
      case Fn::sqrt:
        return computed(x >= 0 ? std::sqrt(x) : NAN);
      case Fn::log: {
        auto b = system_value(eval(*e.args[0], focus), e.text);
        if (!b) return {};
        const long double base =
            b->kind == VKind::integer ? static_cast<long double>(b->integer) : b->decimal;
        return computed(std::log(x) / std::log(base));
      }
      case Fn::power: {
        auto b = system_value(eval(*e.args[0], focus), e.text);
        if (!b) return {};
        if (v->kind == VKind::integer && b->kind == VKind::integer && b->integer >= 0)
          return integer_or_empty(std::pow(x, static_cast<long double>(b->integer)));
        const long double p = b->kind == VKind::integer ? static_cast<long double>(b->integer) : b->decimal;
        return computed(std::pow(x, p));
      }
      case Fn::round: {
        std::int64_t precision = 0;
        if (!e.args.empty()) {
          auto p = integer_arg(*e.args[0], focus, e.text);
          if (!p) return {};
          precision = *p;
        }
        if (precision < 0) fail("round() precision must be non-negative");
        precision = std::min<std::int64_t>(precision, 30);  // what a decimal keeps
        return dec(round_to(x, static_cast<int>(precision)), static_cast<int>(precision));
      }
      default:
        break;
    }
    return {};
  }

  static std::optional<bool> convert_boolean(const Value& v) {
    if (v.kind == VKind::boolean) return v.flag;
    if (v.kind == VKind::integer) {
      if (v.integer == 1) return true;
      if (v.integer == 0) return false;
      return std::nullopt;
    }
    if (v.kind == VKind::decimal) {
      if (v.decimal == 1) return true;
      if (v.decimal == 0) return false;
      return std::nullopt;
    }
    if (v.kind == VKind::string) {
      std::string s(v.text);
      for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      if (s == "true" || s == "t" || s == "yes" || s == "y" || s == "1" || s == "1.0") return true;
      if (s == "false" || s == "f" || s == "no" || s == "n" || s == "0" || s == "0.0") return false;
    }
    return std::nullopt;
  }

  static std::optional<Value> parse_decimal(std::string_view t) {
    std::size_t i = 0;
    if (i < t.size() && (t[i] == '+' || t[i] == '-')) ++i;
    const std::size_t digits = i;
    while (i < t.size() && std::isdigit(static_cast<unsigned char>(t[i]))) ++i;
    if (i == digits) return std::nullopt;
    int scale = 0;
    if (i < t.size() && t[i] == '.') {
      ++i;
      const std::size_t frac = i;
      while (i < t.size() && std::isdigit(static_cast<unsigned char>(t[i]))) ++i;
      if (i == frac) return std::nullopt;
      scale = static_cast<int>(i - frac);
    }
    if (i != t.size()) return std::nullopt;
    return Value::decimal_of(std::strtold(std::string(t).c_str(), nullptr), scale);
  }

  static std::optional<Value> parse_quantity(std::string_view t) {
    const auto space = t.find(' ');
    auto number = parse_decimal(space == std::string_view::npos ? t : t.substr(0, space));
    if (!number) return std::nullopt;
    Value q;
    q.kind = VKind::quantity;
    q.decimal = number->decimal;
    q.scale = number->scale;
    q.text = "1";
    if (space != std::string_view::npos) {
      std::string_view unit = t.substr(space + 1);
      while (unit.starts_with(' ')) unit.remove_prefix(1);
      if (unit.size() >= 2 && unit.front() == '\'' && unit.back() == '\'') {
        q.text = unit.substr(1, unit.size() - 2);
      } else {
        long double f = 0;
        std::string_view d;
        if (!unit_factor(unit, true, f, d)) return std::nullopt;
        q.text = unit;
        q.flag = true;
      }
    }
    return q;
  }

  Value clock_value(Fn fn) {
    const auto now = std::chrono::system_clock::now();
    const std::time_t t = std::chrono::system_clock::to_time_t(now);
    const auto ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
    std::tm local{};
    localtime_r(&t, &local);
    Moment m;
    m.part[0] = local.tm_year + 1900;
    m.part[1] = local.tm_mon + 1;
    m.part[2] = local.tm_mday;
    m.part[3] = local.tm_hour;
    m.part[4] = local.tm_min;
    m.part[5] = local.tm_sec;
    m.part[6] = static_cast<int>(ms);
    Value v;
    if (fn == Fn::today) {
      m.precision = 3;
      v.kind = VKind::date;
    } else if (fn == Fn::now) {
      m.precision = 7;
      m.has_zone = true;
      m.zone_minutes = static_cast<int>(local.tm_gmtoff / 60);
      v.kind = VKind::datetime;
    } else {
      m.precision = 7;
      m.time_only = true;
      v.kind = VKind::time;
    }
    v.text = keep(format_moment(m));
    return v;
  }

  void resolve(Collection& out, const Value& v) {
    std::string_view ref;
    if (v.kind == VKind::string) {
      ref = v.text;
    } else if (v.kind == VKind::node && v.node != nullptr) {
      if (v.node->is_string()) {
        ref = v.node->text();
      } else if (v.node->is_object()) {
        ref = v.node->string_at("reference");
      }
    }
    if (ref.empty()) return;
    if (ref.starts_with('#')) {
      const std::string_view id = ref.substr(1);
      for (const Node* container : {context_.resource, context_.root_resource}) {
        if (container == nullptr) continue;
        if (id.empty()) {
          Value r;
          r.node = container;
          r.type = type_named(container->string_at("resourceType"));
          out.push_back(r);
          return;
        }
        if (const Node* contained = container->find("contained");
            contained != nullptr && contained->is_array()) {
          for (const Node& c : contained->items()) {
            if (c.string_at("id") == id) {
              Value r;
              r.node = &c;
              r.type = type_named(c.string_at("resourceType"));
              out.push_back(r);
              return;
            }
          }
        }
      }
      return;
    }
    const Node* root = context_.root_resource;
    if (root != nullptr && root->string_at("resourceType") == "Bundle") {
      if (const Node* entries = root->find("entry"); entries != nullptr && entries->is_array()) {
        for (const Node& entry : entries->items()) {
          const Node* resource = entry.find("resource");
          if (resource == nullptr) continue;
          const std::string_view full = entry.string_at("fullUrl");
          bool hit = full == ref;
          if (!hit) {
            const std::string local = std::string(resource->string_at("resourceType")) + "/" +
                                      std::string(resource->string_at("id"));
            hit = ref == local || (ref.ends_with("/" + local) && full.ends_with(local));
          }
          if (hit) {
            Value r;
            r.node = resource;
            r.type = type_named(resource->string_at("resourceType"));
            out.push_back(r);
            return;
          }
        }
      }
    }
    std::string_view path = ref;
    if (const auto history = path.find("/_history/"); history != std::string_view::npos)
      path = path.substr(0, history);
    const auto slash = path.rfind('/');
    if (slash == std::string_view::npos || slash == 0) return;
    std::string_view type = path.substr(0, slash);
    if (const auto prev = type.rfind('/'); prev != std::string_view::npos) type = type.substr(prev + 1);
    if (!model_.is_resource(type)) return;
    Value r;
    r.type = type_named(type);
    out.push_back(r);
  }
};

Item render(const Value& v) {
  Item item;
  if (v.kind != VKind::node) {
    item.type = std::string(output_type_name(v.kind));
    item.text = to_text(v);
    return item;
  }
  item.node = v.node;
  if (v.type != nullptr) item.type = v.type->name;
  if (v.type != nullptr && v.type->kind == TypeDef::Kind::primitive && v.node != nullptr)
    item.text = v.node->text();
  return item;
}

Value root_value(const Node& focus, std::string_view focus_type, const EvalContext& context) {
  Value root;
  const TypeDef* type = context.model.type(focus_type);
  if (type == nullptr && focus.is_object()) type = context.model.type(focus.string_at("resourceType"));
  root.type = type;
  root.node = focus.is_null() ? nullptr : &focus;
  root.companion = context.focus_companion;
  return root;
}

Error eval_error(const CompiledExpression& expression, const std::string& message, bool too_costly = false) {
  Error e = Error::make(ErrorCode::unprocessable,
                        "FHIRPath evaluation of '" + expression.text() + "' failed: " + message);
  if (too_costly) e.issues.front().code = "too-costly";
  e.internal = e.issues.front().diagnostics;
  return e;
}

}  // namespace

Result<std::shared_ptr<const CompiledExpression>> compile(std::string_view expression) {
  auto parsed = parse(expression);
  if (!parsed) return std::move(parsed).error();
  return std::shared_ptr<const CompiledExpression>(
      std::make_shared<const CompiledExpression>(std::move(*parsed), std::string(expression)));
}

Result<std::vector<Item>> evaluate(const CompiledExpression& expression, const Node& focus,
                                   std::string_view focus_type, const EvalContext& context) {
  try {
    Evaluator evaluator(context, root_value(focus, focus_type, context));
    Collection result = evaluator.run(expression.root());
    std::vector<Item> out;
    out.reserve(result.size());
    for (const Value& v : result) out.push_back(render(v));
    return out;
  } catch (const EvalFailure& failure) {
    return eval_error(expression, failure.message, failure.too_costly);
  }
}

Result<std::optional<bool>> evaluate_boolean(const CompiledExpression& expression, const Node& focus,
                                             std::string_view focus_type, const EvalContext& context) {
  try {
    Evaluator evaluator(context, root_value(focus, focus_type, context));
    Collection result = evaluator.run(expression.root());
    if (result.empty()) return std::optional<bool>();
    if (result.size() > 1) return eval_error(expression, "the result is not a single boolean");
    Value s;
    if (to_system(result.front(), s) && s.kind == VKind::boolean) return std::optional<bool>(s.flag);
    return std::optional<bool>(true);
  } catch (const EvalFailure& failure) {
    return eval_error(expression, failure.message, failure.too_costly);
  }
}

}  // namespace fhirgate::fhir::fhirpath
