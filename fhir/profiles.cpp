// Profiles: snapshot generation and compilation.
//
// Snapshot generation works on JSON ElementDefinitions. The base snapshot is either a registered
// profile's snapshot or rendered from the Model (which keeps every validation-relevant part of the base
// definitions: cardinality, types, bindings, constraints, fixed/pattern values), so the model never has
// to keep the parsed base bundles. Each differential element is located by id; ensure() creates what the
// base does not list yet: a slice is a copy of the sliced element's subtree under the slice's id, and
// the children of a complex-typed element (Identifier.system below Patient.identifier) are rendered from
// the datatype when a differential first reaches below it. Then the differential's members overwrite
// the base element's, except constraints, which are added: a profile cannot lift its base's
// constraints, so one with a key the base already has is kept beside the base's (only an identical one
// replaces it).
//
// Compilation reads a snapshot into ProfileElements linked by id. Element ids are required for
// slices' children; when an element has no id (old snapshots) one is rebuilt from its path and the
// slice most recently opened at each prefix.
#include "fhir/profiles.hpp"

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <map>
#include <optional>
#include <utility>

#include "fhir/fhirpath.hpp"
#include "fhir/files.hpp"
#include "fhir/validator.hpp"
#include "fhir/xml.hpp"

namespace fhirgate::fhir {

namespace {

constexpr std::string_view kCorePrefix = "http://hl7.org/fhir/StructureDefinition/";

Error profile_error(std::string_view url, std::string what) {
  Error e = Error::make(ErrorCode::invalid_input, "profile " + std::string(url) + ": " + what);
  e.internal = e.issues.front().diagnostics;
  return e;
}

std::string max_text(std::uint32_t max) {
  return max == ElementDef::kUnbounded ? std::string("*") : std::to_string(max);
}

std::string capitalised(std::string_view type) {
  std::string out(type);
  if (!out.empty() && out[0] >= 'a' && out[0] <= 'z') out[0] = static_cast<char>(out[0] - 'a' + 'A');
  return out;
}

Node type_node(const TypeRef& ref) {
  Node t = Node::object();
  t.set("code", Node::string(ref.code));
  for (const auto* list : {&ref.profiles, &ref.target_profiles}) {
    if (list->empty()) continue;
    Node array = Node::array();
    for (const std::string& url : *list) array.push(Node::string(url));
    t.set(list == &ref.profiles ? "profile" : "targetProfile", std::move(array));
  }
  return t;
}

Node constraints_node(const std::vector<Constraint>& constraints) {
  Node array = Node::array();
  for (const Constraint& c : constraints) {
    Node item = Node::object();
    item.set("key", Node::string(c.key));
    item.set("severity", Node::string(c.error ? "error" : "warning"));
    item.set("human", Node::string(c.human));
    item.set("expression", Node::string(c.expression));
    array.push(std::move(item));
  }
  return array;
}

const char* strength_text(BindingStrength s) {
  switch (s) {
    case BindingStrength::required:
      return "required";
    case BindingStrength::extensible:
      return "extensible";
    case BindingStrength::preferred:
      return "preferred";
    case BindingStrength::example:
      return "example";
    case BindingStrength::none:
      break;
  }
  return "";
}

Node element_node(const ElementDef& def, const std::string& id, const std::string& path) {
  Node e = Node::object();
  e.set("id", Node::string(id));
  e.set("path", Node::string(path));
  e.set("definition", Node::string("As " + def.path + " in the base specification."));
  e.set("min", Node::number(std::to_string(def.min)));
  e.set("max", Node::string(max_text(def.max)));
  Node base = Node::object();
  base.set("path", Node::string(def.path));
  base.set("min", Node::number(std::to_string(def.min)));
  base.set("max", Node::string(max_text(def.max)));
  e.set("base", std::move(base));
  if (def.inline_type != nullptr && def.inline_type->name != def.path) {
    e.set("contentReference", Node::string("#" + def.inline_type->name));
  } else if (!def.types.empty()) {
    Node types = Node::array();
    for (const TypeRef& ref : def.types) types.push(type_node(ref));
    e.set("type", std::move(types));
  }
  for (const auto& [prefix, value] :
       {std::pair{"fixed", def.fixed.get()}, std::pair{"pattern", def.pattern.get()},
        std::pair{"minValue", def.min_value.get()}, std::pair{"maxValue", def.max_value.get()}}) {
    if (value != nullptr) e.set(std::string(prefix) + capitalised(value->type), value->value);
  }
  if (def.max_length != 0) e.set("maxLength", Node::number(std::to_string(def.max_length)));
  if (!def.constraints.empty()) e.set("constraint", constraints_node(def.constraints));
  if (def.binding.strength != BindingStrength::none) {
    Node binding = Node::object();
    binding.set("strength", Node::string(strength_text(def.binding.strength)));
    if (!def.binding.value_set.empty()) binding.set("valueSet", Node::string(def.binding.value_set));
    e.set("binding", std::move(binding));
  }
  return e;
}

// Appends the elements of `type` (recursing into its inline backbones) below `id`/`path`.
void render_children(const TypeDef& type, const std::string& id, const std::string& path,
                     std::vector<Node>& out) {
  for (const ElementDef& def : type.elements) {
    const std::string segment = def.name + (def.choice ? "[x]" : "");
    out.push_back(element_node(def, id + "." + segment, path + "." + segment));
    if (def.inline_type != nullptr && def.inline_type->name == def.path) {
      render_children(*def.inline_type, id + "." + segment, path + "." + segment, out);
    }
  }
}

std::vector<Node> render_type(const TypeDef& type) {
  std::vector<Node> out;
  Node root = Node::object();
  root.set("id", Node::string(type.name));
  root.set("path", Node::string(type.name));
  root.set("definition", Node::string("As " + type.name + " in the base specification."));
  root.set("min", Node::number("0"));
  root.set("max", Node::string("*"));
  Node base = Node::object();
  base.set("path", Node::string(type.name));
  base.set("min", Node::number("0"));
  base.set("max", Node::string("*"));
  root.set("base", std::move(base));
  if (!type.constraints.empty()) root.set("constraint", constraints_node(type.constraints));
  out.push_back(std::move(root));
  render_children(type, type.name, type.name, out);
  return out;
}

bool in_subtree(std::string_view id, std::string_view base, bool with_slices) {
  if (!id.starts_with(base)) return false;
  if (id.size() == base.size()) return true;
  return id[base.size()] == '.' || (with_slices && id[base.size()] == ':');
}

// Splits an id at its last '.' that is not inside a slice name (slice names may not contain '.').
std::size_t last_dot(std::string_view id) {
  return id.rfind('.');
}

class SnapshotBuilder {
 public:
  SnapshotBuilder(const Model& model, std::string_view url, std::vector<Node> elements)
      : model_(model), url_(url), base_(elements), elements_(std::move(elements)) {}

  Status merge(const Node& diff) {
    auto index = ensure(diff_id(diff));
    if (!index) return std::move(index).error();
    Node& target = elements_[*index];
    for (const auto& [key, value] : diff.members()) {
      if (key == "id" || key == "path") continue;
      if (key == "constraint") {
        Node* existing = target.find("constraint");
        if (existing == nullptr) existing = &target.set("constraint", Node::array());
        for (const Node& c : value.items()) {
          auto& items = existing->items();
          items.erase(std::remove_if(items.begin(), items.end(),
                                     [&](const Node& e) {
                                       return e.string_at("key") == c.string_at("key") &&
                                              e.string_at("expression") == c.string_at("expression");
                                     }),
                      items.end());
          existing->push(c);
        }
        continue;
      }
      if (key.starts_with("fixed") || key.starts_with("pattern")) {
        const std::string prefix = key.starts_with("fixed") ? "fixed" : "pattern";
        auto& members = target.members();
        members.erase(std::remove_if(members.begin(), members.end(),
                                     [&](const Node::Member& m) { return m.first.starts_with(prefix); }),
                      members.end());
      }
      target.set(key, value);
    }
    return Ok{};
  }

  std::vector<Node> take() { return std::move(elements_); }

 private:
  std::string diff_id(const Node& diff) {
    if (const std::string_view id = diff.string_at("id"); !id.empty()) return std::string(id);
    const std::string path(diff.string_at("path"));
    std::string id;
    std::size_t start = 0;
    while (start <= path.size()) {
      const auto dot = path.find('.', start);
      const std::string prefix = path.substr(0, dot);
      id += (id.empty() ? "" : ".") +
            path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
      if (dot == std::string::npos) break;
      if (auto it = open_slices_.find(prefix); it != open_slices_.end()) id += ":" + it->second;
      start = dot + 1;
    }
    if (const std::string_view slice = diff.string_at("sliceName"); !slice.empty()) {
      open_slices_[path] = slice;
      id += ":" + std::string(slice);
    } else {
      open_slices_.erase(path);
    }
    return id;
  }

  std::optional<std::size_t> find(std::string_view id) const {
    for (std::size_t i = 0; i < elements_.size(); ++i) {
      if (elements_[i].string_at("id") == id) return i;
    }
    return std::nullopt;
  }

  Result<std::size_t> ensure(const std::string& id) {
    if (auto found = find(id)) return *found;
    const auto dot = last_dot(id);
    if (dot == std::string::npos) return profile_error(url_, "element " + id + " is not in the base");
    const std::string parent_id = id.substr(0, dot);
    const std::string segment = id.substr(dot + 1);
    auto parent = ensure(parent_id);
    if (!parent) return std::move(parent).error();
    const auto colon = segment.find(':');
    if (colon != std::string::npos) {
      const std::string base_id = parent_id + "." + segment.substr(0, colon);
      auto base = ensure(base_id);
      if (!base) return std::move(base).error();
      // A new slice starts from the sliced element as the base has it, not as this differential
      // constrains it: the sliced element's cardinality counts all the slices together.
      const std::vector<Node>* source = &elements_;
      std::size_t from = *base;
      for (std::size_t i = 0; i < base_.size(); ++i) {
        if (base_[i].string_at("id") == base_id) {
          source = &base_;
          from = i;
          break;
        }
      }
      std::vector<Node> copies;
      std::size_t insert_at = *base + 1;
      for (std::size_t i = *base; i < elements_.size(); ++i) {
        if (!in_subtree(elements_[i].string_at("id"), base_id, true)) break;
        insert_at = i + 1;
      }
      for (std::size_t i = from; i < source->size(); ++i) {
        const std::string_view other = (*source)[i].string_at("id");
        if (!in_subtree(other, base_id, true)) break;
        if (!in_subtree(other, base_id, false)) continue;
        Node copy = (*source)[i];
        copy.set("id", Node::string(id + std::string(other.substr(base_id.size()))));
        if (i == from) {
          copy.erase("slicing");
          copy.set("sliceName", Node::string(segment.substr(colon + 1)));
        }
        copies.push_back(std::move(copy));
      }
      elements_.insert(elements_.begin() + static_cast<std::ptrdiff_t>(insert_at), copies.begin(),
                       copies.end());
      return insert_at;
    }
    if (auto renamed = renamed_choice(parent_id, segment)) return *renamed;
    const Node& parent_node = elements_[*parent];
    const bool has_children = *parent + 1 < elements_.size() &&
                              in_subtree(elements_[*parent + 1].string_at("id"), parent_id + ".", false);
    const Node* types = parent_node.find("type");
    if (has_children || types == nullptr || types->items().size() != 1) {
      return profile_error(url_, "element " + id + " is not in the base");
    }
    const TypeDef* type = model_.type(types->items().front().string_at("code"));
    if (type == nullptr || type->kind == TypeDef::Kind::primitive) {
      return profile_error(url_, "element " + id + " is not in the base");
    }
    std::vector<Node> children;
    render_children(*type, parent_id, std::string(parent_node.string_at("path")), children);
    elements_.insert(elements_.begin() + static_cast<std::ptrdiff_t>(*parent + 1), children.begin(),
                     children.end());
    if (auto found = find(id)) return *found;
    return profile_error(url_, "element " + id + " is not in the base");
  }

  // `Observation.valueQuantity` names `Observation.value[x]` restricted to Quantity.
  std::optional<std::size_t> renamed_choice(const std::string& parent_id, std::string_view segment) {
    for (std::size_t i = 0; i < elements_.size(); ++i) {
      const std::string_view other = elements_[i].string_at("id");
      if (!other.starts_with(parent_id) || other.size() <= parent_id.size() + 4 ||
          other[parent_id.size()] != '.' || !other.ends_with("[x]")) {
        continue;
      }
      const std::string_view name = other.substr(parent_id.size() + 1, other.size() - parent_id.size() - 4);
      if (name.find('.') != std::string_view::npos || !segment.starts_with(name)) continue;
      const std::string_view suffix = segment.substr(name.size());
      Node* types = elements_[i].find("type");
      if (types == nullptr) continue;
      for (const Node& type : types->items()) {
        if (capitalised(type.string_at("code")) != suffix) continue;
        Node narrowed = Node::array();
        narrowed.push(type);
        *types = std::move(narrowed);
        return i;
      }
    }
    return std::nullopt;
  }

  const Model& model_;
  std::string url_;
  const std::vector<Node> base_;  // the base's snapshot, before the differential
  std::vector<Node> elements_;
  std::map<std::string, std::string> open_slices_;
};

std::uint32_t parse_count(std::string_view text, std::uint32_t fallback) {
  if (text == "*") return ElementDef::kUnbounded;
  std::uint32_t out = 0;
  const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && ptr == text.data() + text.size() && !text.empty() ? out : fallback;
}

std::shared_ptr<const ValueConstraint> value_of(const Model& model, std::string_view type,
                                                const Node& value) {
  auto made = std::make_shared<ValueConstraint>();
  made->type = type;
  if (!made->type.empty() && made->type[0] >= 'A' && made->type[0] <= 'Z') {
    const std::string lowered = static_cast<char>(made->type[0] - 'A' + 'a') + made->type.substr(1);
    const TypeDef* primitive = model.type(lowered);
    if (primitive != nullptr && primitive->kind == TypeDef::Kind::primitive) made->type = lowered;
  }
  made->value = value;
  return made;
}

std::vector<std::string> strings_of(const Node* array) {
  std::vector<std::string> out;
  if (array == nullptr) return out;
  for (const Node& item : array->items()) {
    if (item.is_string()) out.push_back(item.text());
  }
  return out;
}

BindingStrength strength_of(std::string_view s) {
  if (s == "required") return BindingStrength::required;
  if (s == "extensible") return BindingStrength::extensible;
  if (s == "preferred") return BindingStrength::preferred;
  if (s == "example") return BindingStrength::example;
  return BindingStrength::none;
}

constexpr std::string_view kMinLength = "http://hl7.org/fhir/StructureDefinition/minLength";
constexpr std::string_view kValueAlternatives =
    "http://hl7.org/fhir/5.0/StructureDefinition/extension-ElementDefinition.valueAlternatives";
constexpr std::string_view kNarrativeSourceControl =
    "http://hl7.org/fhir/StructureDefinition/narrative-source-control";
constexpr std::string_view kNarrativeLanguageControl =
    "http://hl7.org/fhir/StructureDefinition/narrative-language-control";
constexpr std::string_view kProfileElement =
    "http://hl7.org/fhir/StructureDefinition/elementdefinition-profile-element";

// The profile-element extensions on a type's profiles (`_profile` in JSON, parallel to `profile`).
void read_profile_elements(const Node& type, std::vector<std::pair<std::string, std::string>>& out) {
  const Node* profiles = type.find("profile");
  const Node* extras = type.find("_profile");
  if (profiles == nullptr || extras == nullptr || !profiles->is_array() || !extras->is_array()) return;
  for (std::size_t i = 0; i < profiles->items().size() && i < extras->items().size(); ++i) {
    const Node* extensions = extras->items()[i].find("extension");
    if (extensions == nullptr || !extensions->is_array()) continue;
    for (const Node& extension : extensions->items()) {
      if (extension.string_at("url") != kProfileElement) continue;
      const std::string_view element = extension.string_at("valueString");
      if (!element.empty()) out.emplace_back(profiles->items()[i].text(), element);
    }
  }
}

Discriminator::Kind discriminator_kind(std::string_view type) {
  if (type == "pattern") return Discriminator::Kind::pattern;
  if (type == "type") return Discriminator::Kind::type;
  if (type == "exists") return Discriminator::Kind::exists;
  if (type == "profile") return Discriminator::Kind::profile;
  return Discriminator::Kind::value;
}

}  // namespace

Result<Node> generate_snapshot(const Model& model, const Node& structure_definition,
                               const SnapshotLookup& lookup) {
  const std::string url(structure_definition.string_at("url"));
  const std::string_view base_url = structure_definition.string_at("baseDefinition");
  std::vector<Node> base;
  if (const Node* registered = lookup ? lookup(base_url) : nullptr; registered != nullptr) {
    base = registered->items();
  } else if (base_url.starts_with(kCorePrefix) &&
             model.type(base_url.substr(kCorePrefix.size())) != nullptr) {
    base = render_type(*model.type(base_url.substr(kCorePrefix.size())));
  } else {
    return profile_error(url, "unknown base definition " + std::string(base_url));
  }
  SnapshotBuilder builder(model, url, std::move(base));
  const Node* differential = structure_definition.find("differential");
  const Node* diff_elements = differential == nullptr ? nullptr : differential->find("element");
  if (diff_elements != nullptr) {
    for (const Node& element : diff_elements->items()) {
      if (auto status = builder.merge(element); !status) return std::move(status).error();
    }
  }
  Node out = structure_definition;
  Node elements = Node::array();
  for (Node& element : builder.take()) elements.push(std::move(element));
  Node snapshot = Node::object();
  snapshot.set("element", std::move(elements));
  out.erase("snapshot");
  out.set("snapshot", std::move(snapshot));
  return out;
}

Result<std::shared_ptr<const Profile>> compile_profile(const Model& model, const Node& structure_definition) {
  auto profile = std::make_shared<Profile>();
  profile->url = structure_definition.string_at("url");
  profile->type = structure_definition.string_at("type");
  const Node* snapshot = structure_definition.find("snapshot");
  const Node* elements = snapshot == nullptr ? nullptr : snapshot->find("element");
  if (elements == nullptr || !elements->is_array() || elements->items().empty()) {
    return profile_error(profile->url, "no snapshot");
  }
  profile->snapshot = *elements;
  std::map<std::string, ProfileElement*, std::less<>> by_id;
  std::map<std::string, std::string> open_slices;
  for (const Node& element : elements->items()) {
    auto pe = std::make_unique<ProfileElement>();
    pe->path = element.string_at("path");
    pe->slice_name = element.string_at("sliceName");
    pe->id = element.string_at("id");
    if (pe->id.empty()) {
      std::size_t start = 0;
      while (start <= pe->path.size()) {
        const auto dot = pe->path.find('.', start);
        pe->id += (pe->id.empty() ? "" : ".") +
                  pe->path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
        if (dot == std::string::npos) break;
        if (auto it = open_slices.find(pe->path.substr(0, dot)); it != open_slices.end())
          pe->id += ":" + it->second;
        start = dot + 1;
      }
      if (!pe->slice_name.empty()) {
        pe->id += ":" + pe->slice_name;
        open_slices[pe->path] = pe->slice_name;
      } else {
        open_slices.erase(pe->path);
      }
    }
    const auto dot = pe->path.rfind('.');
    pe->name = dot == std::string::npos ? pe->path : pe->path.substr(dot + 1);
    if (pe->name.ends_with("[x]")) {
      pe->name.resize(pe->name.size() - 3);
      pe->choice = true;
    }
    pe->min = parse_count(element.find("min") ? element.find("min")->text() : "0", 0);
    pe->max = parse_count(element.string_at("max"), ElementDef::kUnbounded);
    if (const Node* types = element.find("type"); types != nullptr) {
      for (const Node& t : types->items()) {
        TypeRef ref;
        ref.code = t.string_at("code");
        ref.profiles = strings_of(t.find("profile"));
        ref.target_profiles = strings_of(t.find("targetProfile"));
        read_profile_elements(t, pe->profile_elements);
        pe->types.push_back(std::move(ref));
      }
    }
    if (const Node* extensions = element.find("extension"); extensions != nullptr && extensions->is_array()) {
      for (const Node& extension : extensions->items()) {
        const std::string_view url = extension.string_at("url");
        if (url == kMinLength) {
          if (const Node* v = extension.find("valueInteger"); v != nullptr)
            pe->min_length = parse_count(v->text(), 0);
        } else if (url == kValueAlternatives) {
          if (const std::string_view v = extension.string_at("valueCanonical"); !v.empty())
            pe->value_alternatives.emplace_back(v);
        } else if (url == kNarrativeSourceControl) {
          pe->narrative_source_control = extension.string_at("valueCode");
        } else if (url == kNarrativeLanguageControl) {
          if (const std::string_view v = extension.string_at("valueCode"); !v.empty())
            pe->narrative_languages.emplace_back(v);
        }
      }
    }
    for (const auto& [key, value] : element.members()) {
      if (key.starts_with("fixed")) pe->fixed = value_of(model, std::string_view(key).substr(5), value);
      if (key.starts_with("pattern")) pe->pattern = value_of(model, std::string_view(key).substr(7), value);
      if (key.starts_with("minValue"))
        pe->min_value = value_of(model, std::string_view(key).substr(8), value);
      if (key.starts_with("maxValue"))
        pe->max_value = value_of(model, std::string_view(key).substr(8), value);
      if (key == "maxLength") pe->max_length = parse_count(value.text(), 0);
    }
    if (const Node* binding = element.find("binding"); binding != nullptr) {
      pe->binding.strength = strength_of(binding->string_at("strength"));
      pe->binding.value_set = binding->string_at("valueSet");
    }
    if (const Node* constraints = element.find("constraint"); constraints != nullptr) {
      for (const Node& c : constraints->items()) {
        ProfileConstraint pc;
        pc.constraint.key = c.string_at("key");
        pc.constraint.error = c.string_at("severity") != "warning";
        pc.constraint.human = c.string_at("human");
        pc.constraint.expression = c.string_at("expression");
        if (pc.constraint.expression.empty()) continue;
        auto compiled = fhirpath::compile(pc.constraint.expression);
        if (compiled) pc.compiled = *compiled;
        pe->constraints.push_back(std::move(pc));
      }
    }
    if (const Node* slicing = element.find("slicing"); slicing != nullptr) {
      pe->sliced = true;
      const std::string_view rules = slicing->string_at("rules");
      pe->rules = rules == "closed" ? ProfileElement::Rules::closed
                                    : (rules == "openAtEnd" ? ProfileElement::Rules::open_at_end
                                                            : ProfileElement::Rules::open);
      if (const Node* discriminators = slicing->find("discriminator"); discriminators != nullptr) {
        for (const Node& d : discriminators->items()) {
          pe->discriminators.push_back(
              {discriminator_kind(d.string_at("type")), std::string(d.string_at("path"))});
        }
      }
    }
    ProfileElement* stored = pe.get();
    if (!profile->elements.empty()) {
      const std::string_view id = stored->id;
      const auto parent_dot = id.rfind('.');
      const auto colon = id.rfind(':');
      if (!stored->slice_name.empty() && colon != std::string_view::npos &&
          (parent_dot == std::string_view::npos || colon > parent_dot)) {
        const auto sliced = by_id.find(id.substr(0, colon));
        if (sliced == by_id.end())
          return profile_error(profile->url, "slice " + stored->id + " has no sliced element");
        sliced->second->slices.push_back(stored);
      } else {
        const auto parent =
            parent_dot == std::string_view::npos ? by_id.end() : by_id.find(id.substr(0, parent_dot));
        if (parent == by_id.end())
          return profile_error(profile->url, "element " + stored->id + " has no parent");
        parent->second->children.push_back(stored);
      }
    }
    by_id.emplace(stored->id, stored);
    profile->elements.push_back(std::move(pe));
  }
  return std::shared_ptr<const Profile>(std::move(profile));
}

Status load_profiles_dir(Validator& validator, const Model& model, const std::string& dir) {
  std::error_code ec;
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    const auto ext = entry.path().extension();
    if (ext == ".json" || ext == ".xml") files.push_back(entry.path());
  }
  if (ec) return Error::make(ErrorCode::invalid_input, "cannot read the profile directory " + dir);
  std::sort(files.begin(), files.end());
  std::vector<Node> pending;
  for (const auto& file : files) {
    auto text = read_file(file.string());
    if (!text) return std::move(text).error();
    Result<Node> node = file.extension() == ".xml" ? xml_to_json(model, *text) : parse_json(*text);
    if (!node) return std::move(node).error();
    if (node->string_at("resourceType") != "StructureDefinition") continue;
    pending.push_back(std::move(*node));
  }
  // Bases first: retry while progress is made.
  while (!pending.empty()) {
    std::vector<Node> later;
    std::optional<Error> last;
    for (Node& sd : pending) {
      auto status = validator.add_profile(sd);
      if (!status) {
        last = std::move(status).error();
        later.push_back(std::move(sd));
      }
    }
    if (later.size() == pending.size()) return std::move(*last);
    pending = std::move(later);
  }
  return Ok{};
}

}  // namespace fhirgate::fhir
