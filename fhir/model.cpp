// Building the type model.
//
// The snapshots list every element path in depth-first order, so one pass per StructureDefinition is
// enough: an element's parent is the TypeDef named by its path minus the last segment (the definition's
// own type, or an inline backbone created when an element turns out to have children, i.e. when the
// next path extends it). Constraint profiles (SimpleQuantity, MoneyQuantity) and logical models are
// skipped: R4 snapshots type elements with base codes and keep profiles as URLs, so no element needs them.
//
// Ordering matters for the string_view indexes: a TypeDef lives behind a unique_ptr and never moves, but
// its `elements` vector grows while the definition is read, so TypeDef::by_name_ (views into element
// names, some of them in the small-string buffer) is built only once every definition has been read.
// contentReference targets may appear later in the same snapshot, so they are resolved at the very end.
//
// For validation each element also keeps its binding, constraints, fixed/pattern/min/max values and
// maxLength, read in the same pass; constraint expressions are interned (Model::expressions) so a
// consumer compiles each of the few hundred distinct texts once rather than once per element.
//
// load_from parses and consumes one bundle at a time so only one parsed tree is alive at once; nothing
// of the trees is kept.
#include "fhir/model.hpp"

#include <algorithm>
#include <charconv>
#include <utility>

#include "fhir/files.hpp"

namespace fhirgate::fhir {

namespace {

constexpr std::string_view kFhirTypeExtension =
    "http://hl7.org/fhir/StructureDefinition/structuredefinition-fhir-type";
constexpr std::string_view kSystemPrefix = "http://hl7.org/fhirpath/System.";
constexpr std::string_view kRegexExtension = "http://hl7.org/fhir/StructureDefinition/regex";
constexpr std::string_view kBestPracticeExtension =
    "http://hl7.org/fhir/StructureDefinition/elementdefinition-bestpractice";

std::string system_type(std::string_view system) {
  if (system == "Boolean") return "boolean";
  if (system == "Integer") return "integer";
  if (system == "Decimal") return "decimal";
  if (system == "Date") return "date";
  if (system == "DateTime") return "dateTime";
  if (system == "Time") return "time";
  return "string";
}

std::vector<std::string> strings_of(const Node* array) {
  std::vector<std::string> out;
  if (array == nullptr) return out;
  out.reserve(array->items().size());
  for (const Node& item : array->items()) {
    if (item.is_string()) out.push_back(item.text());
  }
  return out;
}

TypeRef type_ref(const Node& type) {
  TypeRef ref;
  const std::string_view code = type.string_at("code");
  if (code.starts_with(kSystemPrefix)) {
    if (const Node* extensions = type.find("extension"); extensions != nullptr) {
      for (const Node& extension : extensions->items()) {
        if (extension.string_at("url") == kFhirTypeExtension) ref.code = extension.string_at("valueUrl");
      }
    }
    if (ref.code.empty()) ref.code = system_type(code.substr(kSystemPrefix.size()));
  } else {
    ref.code = code;
  }
  ref.target_profiles = strings_of(type.find("targetProfile"));
  ref.profiles = strings_of(type.find("profile"));
  return ref;
}

bool parse_count(std::string_view text, std::uint32_t& out) {
  const auto* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, out);
  return ec == std::errc() && ptr == end && !text.empty();
}

bool contains_string(const Node* array, std::string_view value) {
  if (array == nullptr) return false;
  return std::any_of(array->items().begin(), array->items().end(),
                     [&](const Node& item) { return item.is_string() && item.text() == value; });
}

std::string_view last_segment(std::string_view url) {
  const auto slash = url.rfind('/');
  return slash == std::string_view::npos ? url : url.substr(slash + 1);
}

bool matches_suffix(std::string_view code, std::string_view suffix) {
  if (code.empty() || code.size() != suffix.size()) return false;
  const char first = code[0] >= 'a' && code[0] <= 'z' ? static_cast<char>(code[0] - 'a' + 'A') : code[0];
  return first == suffix[0] && code.substr(1) == suffix.substr(1);
}

BindingStrength binding_strength(std::string_view strength) {
  if (strength == "required") return BindingStrength::required;
  if (strength == "extensible") return BindingStrength::extensible;
  if (strength == "preferred") return BindingStrength::preferred;
  if (strength == "example") return BindingStrength::example;
  return BindingStrength::none;
}

std::string regex_of(const Node& element) {
  const Node* types = element.find("type");
  if (types == nullptr) return {};
  for (const Node& type : types->items()) {
    const Node* extensions = type.find("extension");
    if (extensions == nullptr) continue;
    for (const Node& extension : extensions->items()) {
      if (extension.string_at("url") == kRegexExtension)
        return std::string(extension.string_at("valueString"));
    }
  }
  return {};
}

std::shared_ptr<const ValueConstraint> value_constraint(std::string_view type, const Node& value) {
  auto made = std::make_shared<ValueConstraint>();
  made->type = type;
  static constexpr std::string_view kPrimitives[] = {
      "base64Binary", "boolean",     "canonical", "code",     "date", "dateTime",    "decimal",
      "id",           "instant",     "integer",   "markdown", "oid",  "positiveInt", "string",
      "time",         "unsignedInt", "uri",       "url",      "uuid"};
  if (!made->type.empty()) {
    std::string lowered = made->type;
    lowered[0] = static_cast<char>(lowered[0] - 'A' + 'a');
    if (std::find(std::begin(kPrimitives), std::end(kPrimitives), lowered) != std::end(kPrimitives)) {
      made->type = std::move(lowered);
    }
  }
  made->value = value;
  return made;
}

Error definition_error(std::string_view id, std::string_view what) {
  Error e = Error::make(ErrorCode::invalid_input,
                        "StructureDefinition " + std::string(id) + ": " + std::string(what));
  e.internal = e.issues.front().diagnostics;
  return e;
}

}  // namespace

struct Model::Builder {
  struct PendingReference {
    TypeDef* owner;
    std::uint32_t index;
    std::string target;
  };

  Model& model;
  std::vector<PendingReference> references;
  std::unordered_map<std::string_view, TypeDef*> scope;  // the current definition's types, by path
  std::unordered_map<std::string, std::uint32_t> expression_ids;

  std::vector<Constraint> constraints_of(const Node& element) {
    std::vector<Constraint> out;
    const Node* list = element.find("constraint");
    if (list == nullptr) return out;
    out.reserve(list->items().size());
    for (const Node& item : list->items()) {
      Constraint c;
      c.key = item.string_at("key");
      c.error = item.string_at("severity") != "warning";
      c.human = item.string_at("human");
      c.expression = item.string_at("expression");
      if (c.expression.empty()) continue;
      if (const Node* extensions = item.find("extension"); extensions != nullptr) {
        for (const Node& extension : extensions->items()) {
          if (extension.string_at("url") == kBestPracticeExtension) {
            const Node* flag = extension.find("valueBoolean");
            c.best_practice = flag != nullptr && flag->as_bool();
          }
        }
      }
      const auto [it, added] =
          expression_ids.emplace(c.expression, static_cast<std::uint32_t>(model.expressions_.size()));
      if (added) model.expressions_.push_back(c.expression);
      c.expression_id = it->second;
      out.push_back(std::move(c));
    }
    return out;
  }

  void read_details(const Node& element, ElementDef& def) {
    for (const auto& [key, value] : element.members()) {
      if (key.empty()) continue;
      switch (key[0]) {
        case 'b':
          if (key == "binding") {
            def.binding.strength = binding_strength(value.string_at("strength"));
            def.binding.value_set = value.string_at("valueSet");
          }
          break;
        case 'c':
          if (key == "constraint") def.constraints = constraints_of(element);
          break;
        case 'f':
          if (key.starts_with("fixed")) def.fixed = value_constraint(std::string_view(key).substr(5), value);
          break;
        case 'p':
          if (key.starts_with("pattern"))
            def.pattern = value_constraint(std::string_view(key).substr(7), value);
          break;
        case 'm':
          if (key == "maxLength") {
            parse_count(value.text(), def.max_length);
          } else if (key.starts_with("minValue")) {
            def.min_value = value_constraint(std::string_view(key).substr(8), value);
          } else if (key.starts_with("maxValue")) {
            def.max_value = value_constraint(std::string_view(key).substr(8), value);
          }
          break;
        default:
          break;
      }
    }
  }

  TypeDef& add_type(std::string name, TypeDef::Kind kind) {
    auto type = std::make_unique<TypeDef>();
    type->name = std::move(name);
    type->kind = kind;
    TypeDef& stored = *model.types_.emplace_back(std::move(type));
    return stored;
  }

  bool register_name(TypeDef& type) { return model.by_name_.emplace(type.name, &type).second; }

  Status add_bundle(const Node& bundle) {
    const Node* entries = bundle.find("entry");
    if (entries == nullptr) return Ok{};
    for (const Node& entry : entries->items()) {
      const Node* resource = entry.find("resource");
      if (resource == nullptr) continue;
      if (resource->string_at("resourceType") == "CompartmentDefinition" &&
          resource->string_at("code") == "Patient")
        add_patient_compartment(*resource);
      if (resource->string_at("resourceType") != "StructureDefinition") continue;
      if (auto status = add_definition(*resource); !status) return status;
    }
    return Ok{};
  }

  void add_patient_compartment(const Node& definition) {
    const Node* members = definition.find("resource");
    if (members == nullptr || !members->is_array()) return;
    for (const Node& member : members->items()) {
      const Node* params = member.find("param");
      if (params == nullptr || !params->is_array() || params->items().empty()) continue;
      auto& names = model.patient_compartment_[std::string(member.string_at("code"))];
      for (const Node& param : params->items()) names.emplace_back(param.text());
    }
  }

  Status add_definition(const Node& sd) {
    const std::string_view id = sd.string_at("id");
    const std::string_view kind = sd.string_at("kind");
    if (sd.string_at("derivation") == "constraint") return Ok{};
    TypeDef::Kind type_kind;
    if (kind == "primitive-type") {
      type_kind = TypeDef::Kind::primitive;
    } else if (kind == "complex-type") {
      type_kind = TypeDef::Kind::complex;
    } else if (kind == "resource") {
      type_kind = TypeDef::Kind::resource;
    } else {
      return Ok{};
    }
    const std::string_view type_name = sd.string_at("type");
    if (type_name.empty()) return definition_error(id, "no type");
    const Node* snapshot = sd.find("snapshot");
    const Node* elements = snapshot == nullptr ? nullptr : snapshot->find("element");
    if (elements == nullptr || elements->items().empty()) return definition_error(id, "no snapshot elements");
    const auto& items = elements->items();
    if (items.front().string_at("path") != type_name)
      return definition_error(id, "snapshot root is not the type");

    TypeDef& root = add_type(std::string(type_name), type_kind);
    const Node* abstract = sd.find("abstract");
    root.abstract = abstract != nullptr && abstract->as_bool();
    root.base = last_segment(sd.string_at("baseDefinition"));
    root.url = sd.string_at("url");
    if (!register_name(root)) return definition_error(id, "type defined twice");
    root.constraints = constraints_of(items.front());
    scope.clear();
    scope.emplace(root.name, &root);

    for (std::size_t i = 1; i < items.size(); ++i) {
      const Node& element = items[i];
      const std::string_view path = element.string_at("path");
      const auto dot = path.rfind('.');
      if (dot == std::string_view::npos) return definition_error(id, "element path without parent");
      const auto parent_it = scope.find(path.substr(0, dot));
      if (parent_it == scope.end()) {
        return definition_error(id, "element " + std::string(path) + " has no parent element");
      }
      TypeDef& parent = *parent_it->second;

      ElementDef def;
      def.path = path;
      std::string_view name = path.substr(dot + 1);
      if (name.ends_with("[x]")) {
        name.remove_suffix(3);
        def.choice = true;
      }
      def.name = name;
      const Node* min = element.find("min");
      if (min != nullptr && !parse_count(min->text(), def.min))
        return definition_error(id, "bad min on " + def.path);
      const std::string_view max = element.string_at("max");
      if (max == "*") {
        def.max = ElementDef::kUnbounded;
      } else if (!max.empty() && !parse_count(max, def.max)) {
        return definition_error(id, "bad max on " + def.path);
      }
      const Node* representation = element.find("representation");
      def.xml_attribute = contains_string(representation, "xmlAttr");
      def.xhtml = contains_string(representation, "xhtml");
      if (const Node* types = element.find("type"); types != nullptr) {
        def.types.reserve(types->items().size());
        for (const Node& type : types->items()) {
          def.types.push_back(type_ref(type));
          if (def.types.back().code == "xhtml") def.xhtml = true;
        }
      }

      read_details(element, def);
      if (type_kind == TypeDef::Kind::primitive && def.name == "value" && dot == root.name.size()) {
        root.regex = regex_of(element);
      }

      const bool has_children = i + 1 < items.size() && [&] {
        const std::string_view next = items[i + 1].string_at("path");
        return next.size() > path.size() + 1 && next.starts_with(path) && next[path.size()] == '.';
      }();
      if (has_children) {
        TypeDef& backbone = add_type(def.path, TypeDef::Kind::backbone);
        backbone.base = def.types.empty() ? "BackboneElement" : def.types.front().code;
        backbone.url = root.url;
        if (!register_name(backbone)) return definition_error(id, "duplicate element " + def.path);
        scope.emplace(backbone.name, &backbone);
        def.inline_type = &backbone;
      }

      const std::string_view content_reference = element.string_at("contentReference");
      if (!content_reference.empty()) {
        if (!content_reference.starts_with('#')) {
          return definition_error(id, "unsupported contentReference on " + def.path);
        }
        references.push_back({&parent, static_cast<std::uint32_t>(parent.elements.size()),
                              std::string(content_reference.substr(1))});
      }
      parent.elements.push_back(std::move(def));
    }
    return Ok{};
  }

  Status finish() {
    for (auto& type : model.types_) {
      type->by_name_.reserve(type->elements.size());
      for (std::uint32_t i = 0; i < type->elements.size(); ++i) {
        type->by_name_.emplace(type->elements[i].name, i);
        if (type->elements[i].choice) type->choices_.push_back(i);
      }
    }
    for (const PendingReference& reference : references) {
      ElementDef& element = reference.owner->elements[reference.index];
      const TypeDef* target = model.type(reference.target);
      if (target == nullptr || target->kind != TypeDef::Kind::backbone) {
        return definition_error(reference.owner->name,
                                "contentReference of " + element.path + " does not name an inline type");
      }
      element.inline_type = target;
      const auto dot = reference.target.rfind('.');
      const TypeDef* target_parent = model.type(std::string_view(reference.target).substr(0, dot));
      const ElementDef* target_element =
          target_parent == nullptr
              ? nullptr
              : target_parent->element(std::string_view(reference.target).substr(dot + 1));
      if (target_element != nullptr && element.types.empty()) element.types = target_element->types;
    }
    return Ok{};
  }
};

const ElementDef* TypeDef::element(std::string_view element_name) const {
  const auto it = by_name_.find(element_name);
  return it == by_name_.end() ? nullptr : &elements[it->second];
}

const ElementDef* TypeDef::resolve(std::string_view member, std::string_view* choice_type) const {
  if (const auto it = by_name_.find(member); it != by_name_.end()) {
    const ElementDef& exact = elements[it->second];
    if (!exact.choice) {
      if (choice_type != nullptr) *choice_type = {};
      return &exact;
    }
  }
  const ElementDef* best = nullptr;
  std::string_view best_type;
  for (const std::uint32_t index : choices_) {
    const ElementDef& candidate = elements[index];
    if (member.size() <= candidate.name.size() || !member.starts_with(candidate.name)) continue;
    if (best != nullptr && best->name.size() >= candidate.name.size()) continue;
    const std::string_view suffix = member.substr(candidate.name.size());
    for (const TypeRef& type : candidate.types) {
      if (matches_suffix(type.code, suffix)) {
        best = &candidate;
        best_type = type.code;
        break;
      }
    }
  }
  if (choice_type != nullptr) *choice_type = best_type;
  return best;
}

Result<std::shared_ptr<const Model>> Model::load(const std::vector<const Node*>& bundles) {
  auto model = std::make_shared<Model>();
  Builder builder{*model, {}, {}, {}};
  for (const Node* bundle : bundles) {
    if (bundle == nullptr) continue;
    if (auto status = builder.add_bundle(*bundle); !status) return std::move(status).error();
  }
  if (auto status = builder.finish(); !status) return std::move(status).error();
  return std::shared_ptr<const Model>(std::move(model));
}

Result<std::shared_ptr<const Model>> Model::load_from(const std::string& profiles_dir) {
  auto model = std::make_shared<Model>();
  Builder builder{*model, {}, {}, {}};
  for (const char* file : {"/r4/profiles-types.json.gz", "/r4/profiles-resources.json.gz"}) {
    auto bundle = read_json_file(profiles_dir + file);
    if (!bundle) return std::move(bundle).error();
    if (auto status = builder.add_bundle(*bundle); !status) return std::move(status).error();
  }
  if (auto status = builder.finish(); !status) return std::move(status).error();
  model->profiles_dir_ = profiles_dir;
  return std::shared_ptr<const Model>(std::move(model));
}

const TypeDef* Model::type(std::string_view name) const {
  const auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : it->second;
}

const std::vector<std::string>* Model::patient_compartment(std::string_view type) const {
  const auto it = patient_compartment_.find(std::string(type));
  return it == patient_compartment_.end() ? nullptr : &it->second;
}

bool Model::is_resource(std::string_view name) const {
  const TypeDef* t = type(name);
  return t != nullptr && t->kind == TypeDef::Kind::resource && !t->abstract;
}

std::vector<std::string_view> Model::resource_names() const {
  std::vector<std::string_view> names;
  for (const auto& t : types_) {
    if (t->kind == TypeDef::Kind::resource && !t->abstract) names.emplace_back(t->name);
  }
  std::sort(names.begin(), names.end());
  return names;
}

std::vector<const TypeDef*> Model::types() const {
  std::vector<const TypeDef*> out;
  out.reserve(types_.size());
  for (const auto& t : types_) out.push_back(t.get());
  return out;
}

JsonPrimitive Model::json_primitive(std::string_view primitive_type) {
  if (primitive_type == "boolean") return JsonPrimitive::boolean;
  if (primitive_type == "integer" || primitive_type == "positiveInt" || primitive_type == "unsignedInt" ||
      primitive_type == "decimal") {
    return JsonPrimitive::number;
  }
  return JsonPrimitive::string;
}

}  // namespace fhirgate::fhir
