// One recursive walk over the JSON tree, scanning every string. Typing the whole tree through the Model
// would cost more than the scan (two hash lookups per object member), and only the narratives need it,
// so it is done lazily: a string member called `div` is typed from the nearest enclosing resource (an
// object whose resourceType the model knows: the root, a contained resource, a Bundle entry's, a
// Parameters resource) down through the element names on the stack, and is a narrative when the model
// says that element is xhtml. Locations are kept on the stack and rendered only for an issue.
#include "fhir/storable.hpp"

#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "fhir/element_path.hpp"
#include "fhir/narrative.hpp"
#include "fhir/utf8.hpp"

namespace fhirgate::fhir {
namespace {

constexpr std::size_t kMaxIssues = 100;

// Where the walk is. The parent of an array item is the object holding the array.
struct Location {
  const Location* parent = nullptr;
  std::string_view name;  // a member name, without the `_` of a primitive's id/extension
  std::size_t index = kNoIndex;
  const Node* object = nullptr;  // the object here, when it is one
};

// Why the character at text[at] (found by first_unrepresentable) cannot be carried, naming the character
// but nothing else of the text.
std::string unrepresentable(std::string_view text, std::size_t at) {
  const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(text[at + k]); };
  char out[96];
  if (byte(0) < 0x80) {
    std::snprintf(out, sizeof out, "holds a character that FHIR XML cannot carry (U+%04X)", byte(0));
  } else if (utf8_sequence_length(text, at) == 3) {  // well-formed, so U+FFFE or U+FFFF
    const unsigned code = (byte(0) & 0x0Fu) << 12 | (byte(1) & 0x3Fu) << 6 | (byte(2) & 0x3Fu);
    std::snprintf(out, sizeof out, "holds a character that FHIR XML cannot carry (U+%04X)", code);
  } else {
    std::snprintf(out, sizeof out, "is not valid UTF-8 (byte 0x%02X at offset %zu)", byte(0), at);
  }
  return out;
}

class StorableCheck {
 public:
  explicit StorableCheck(const Model& model) : model_(model) {}

  Status run(const Node& resource) {
    const std::string_view type =
        resource.is_object() ? resource.string_at("resourceType") : std::string_view();
    const bool printable = !type.empty() && !has_unrepresentable(type);
    const Location root{nullptr, printable ? type : std::string_view("Resource")};
    value(resource, root);
    if (issues_.empty()) return Ok{};
    if (truncated_) {
      Issue more;
      more.code = "invalid";
      more.diagnostics =
          "More problems were found; only the first " + std::to_string(kMaxIssues) + " are listed";
      issues_.push_back(std::move(more));
    }
    Error e{ErrorCode::unprocessable, std::move(issues_), {}};
    const Issue& first = e.issues.front();
    e.internal = "storable: " + std::to_string(e.issues.size()) + " problem(s), the first at " +
                 first.expression + ": " + first.diagnostics;
    return e;
  }

 private:
  void value(const Node& node, const Location& at) {
    switch (node.kind()) {
      case Node::Kind::string:
      case Node::Kind::number:
        text(node.text(), at);
        return;
      case Node::Kind::object: {
        const Location here{at.parent, at.name, at.index, &node};
        object(node, here);
        return;
      }
      case Node::Kind::array:
        for (std::size_t i = 0; i < node.items().size() && !truncated_; ++i) {
          const Location item{at.parent, at.name, i};
          value(node.items()[i], item);
        }
        return;
      case Node::Kind::null:
      case Node::Kind::boolean:
        return;
    }
  }

  void object(const Node& object, const Location& at) {
    for (const auto& [key, child] : object.members()) {
      if (truncated_) return;
      if (const std::size_t bad = printable_ascii(key) ? std::string_view::npos : first_unrepresentable(key);
          bad != std::string_view::npos) {
        std::string expression;
        append_path(&at, expression);
        report("The name of a member " + unrepresentable(key, bad),
               expression + "." + with_visible_escapes(key));
        continue;
      }
      const bool extra = key.size() > 1 && key.front() == '_';
      const Location here{&at, extra ? std::string_view(key).substr(1) : std::string_view(key)};
      if (child.is_string() && text(child.text(), here) && key == "div" && is_narrative_of(at)) {
        narrative(child.text(), here);
      } else if (!child.is_string()) {
        value(child, here);
      }
    }
  }

  // Whether the object at `at` holds a narrative div: the model's type of it, from the nearest enclosing
  // resource down, has an xhtml `div`.
  bool is_narrative_of(const Location& at) const {
    const TypeDef* type = type_of(&at);
    const ElementDef* div = type == nullptr ? nullptr : type->element("div");
    return div != nullptr && div->xhtml;
  }

  const TypeDef* type_of(const Location* at) const {
    if (at == nullptr) return nullptr;
    if (at->object != nullptr) {
      const TypeDef* named = model_.type(at->object->string_at("resourceType"));
      if (named != nullptr && named->kind == TypeDef::Kind::resource) return named;
    }
    const TypeDef* parent = type_of(at->parent);
    return parent == nullptr ? nullptr : element_type(*parent, at->name);
  }

  // The type of the element `name` (a JSON member name, choice types expanded), or null when the model
  // does not say. For a primitive's `_name` it is the primitive type, whose id and extension follow.
  const TypeDef* element_type(const TypeDef& type, std::string_view name) const {
    std::string_view choice;
    const ElementDef* def = type.resolve(name, &choice);
    if (def == nullptr) return nullptr;
    if (!choice.empty()) return model_.type(choice);
    if (def->inline_type != nullptr) return def->inline_type;
    return def->types.size() == 1 ? model_.type(def->types.front().code) : nullptr;
  }

  bool text(std::string_view s, const Location& at) {
    if (printable_ascii(s)) return true;
    const std::size_t bad = first_unrepresentable(s);
    if (bad == std::string_view::npos) return true;
    report("The value " + unrepresentable(s, bad), at);
    return false;
  }

  void narrative(std::string_view div, const Location& at) {
    for (std::string& problem : narrative_problems(div)) report(std::move(problem), at);
  }

  void report(std::string diagnostics, const Location& at) {
    std::string expression;
    append_path(&at, expression);
    report(std::move(diagnostics), std::move(expression));
  }

  void report(std::string diagnostics, std::string expression) {
    if (issues_.size() == kMaxIssues) {
      truncated_ = true;
      return;
    }
    Issue issue;
    issue.code = "invalid";
    issue.diagnostics = std::move(diagnostics);
    issue.expression = std::move(expression);
    issues_.push_back(std::move(issue));
  }

  const Model& model_;
  std::vector<Issue> issues_;
  bool truncated_ = false;
};

}  // namespace

Status check_storable(const Model& model, const Node& resource) {
  return StorableCheck(model).run(resource);
}

}  // namespace fhirgate::fhir
