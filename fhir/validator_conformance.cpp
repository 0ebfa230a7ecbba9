// Rules on conformance resources, beyond their element definitions.
//
// StructureDefinition: every element path starts with the type the structure defines (for a logical
// model whose type is a URL, its last segment); a specialisation defines a type other than its base's;
// a type profile is a profile of that type (ElementDefinition.type.profile); a constraint does not
// change a value its base fixes (the fixed url of a derived extension, say); an extension usable on
// any Element is worth a second look (warning).
//
// SearchParameter: a composite parameter has at least two components; a parameter derived from
// another (derivedFrom) keeps its type. The base parameter comes from the supporting resources or the
// R4 SearchParameters (profiles/r4/search-parameters.json.gz, read once per process on first need).
#include <algorithm>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "fhir/files.hpp"
#include "fhir/validator.hpp"
#include "fhir/validator_extensions.hpp"
#include "fhir/validator_rules.hpp"

namespace fhirgate::fhir {

namespace {

constexpr std::string_view kCorePrefix = "http://hl7.org/fhir/StructureDefinition/";

std::string_view strip_version(std::string_view url) {
  const auto bar = url.find('|');
  return bar == std::string_view::npos ? url : url.substr(0, bar);
}

std::string_view last_segment(std::string_view url) {
  const auto slash = url.rfind('/');
  return slash == std::string_view::npos ? url : url.substr(slash + 1);
}

std::string indexed(std::string_view name, std::size_t index) {
  return std::string(name) + "[" + std::to_string(index) + "]";
}

// The fixed[x] member of an element definition, if any.
const Node* fixed_value(const Node& element, std::string_view* member = nullptr) {
  for (const auto& [key, value] : element.members()) {
    if (key.size() > 5 && key.starts_with("fixed")) {
      if (member != nullptr) *member = key;
      return &value;
    }
  }
  return nullptr;
}

// StructureDefinition ----------------------------------------------------------------------------

// The type a profile URL constrains, when known: a supporting StructureDefinition or a core type.
std::string_view profiled_type(const RuleContext& ctx, std::string_view url) {
  url = strip_version(url);
  if (const Node* sd = ctx.definitions.find(url, "StructureDefinition"); sd != nullptr)
    return sd->string_at("type");
  if (url.starts_with(kCorePrefix)) {
    const TypeDef* type = ctx.model.type(url.substr(kCorePrefix.size()));
    if (type != nullptr && type->kind != TypeDef::Kind::backbone) return type->name;
  }
  return {};
}

// A resource type for an element typed with an abstract resource (Resource, DomainResource). Other
// specialisations do not count: a profile of Count is not a profile of Quantity.
bool is_resource_of(const Model& model, std::string_view type, std::string_view abstract_type) {
  const TypeDef* base = model.type(abstract_type);
  if (base == nullptr || base->kind != TypeDef::Kind::resource || !base->abstract) return false;
  for (const TypeDef* t = model.type(type); t != nullptr;
       t = t->base.empty() ? nullptr : model.type(t->base)) {
    if (t == base) return true;
  }
  return false;
}

void check_element_list(RuleContext& ctx, const Node& sd, std::string_view list_name,
                        std::string_view type_name) {
  const Node* list = sd.find(list_name);
  const Node* elements = list == nullptr ? nullptr : list->find("element");
  if (elements == nullptr || !elements->is_array()) return;
  const std::string prefix = std::string(list_name) + ".element";
  for (std::size_t i = 0; i < elements->items().size(); ++i) {
    const Node& element = elements->items()[i];
    const std::string at = indexed(prefix, i);
    const std::string_view path = element.string_at("path");
    if (!type_name.empty() && !path.empty() && path != type_name &&
        !(path.starts_with(type_name) && path.size() > type_name.size() && path[type_name.size()] == '.')) {
      ctx.error("not-found",
                "The path " + std::string(path) + " must start with the type of the structure " +
                    std::string(type_name),
                at);
    }
    const Node* types = element.find("type");
    if (types == nullptr || !types->is_array()) continue;
    for (std::size_t t = 0; t < types->items().size(); ++t) {
      const Node& type = types->items()[t];
      const std::string_view code = type.string_at("code");
      const Node* profiles = type.find("profile");
      if (code.empty() || code.find(':') != std::string_view::npos || profiles == nullptr ||
          !profiles->is_array())
        continue;
      const bool on_extension = path.ends_with(".extension");
      const bool on_modifier = path.ends_with(".modifierExtension");
      for (std::size_t p = 0; p < profiles->items().size(); ++p) {
        const std::string_view profile = profiles->items()[p].text();
        if (code == "Extension" && (on_extension || on_modifier)) {
          const std::optional<bool> modifier = extension_is_modifier(ctx, profile);
          if (modifier.has_value() && *modifier != on_modifier) {
            ctx.error("invalid",
                      "Profile " + std::string(profile) + (*modifier ? " is" : " is not") +
                          " for a modifier extension, but the " + std::string(path) + " element " +
                          (on_modifier ? "is" : "is not") + " a modifier",
                      at + "." + indexed("type", t) + "." + indexed("profile", p));
          }
        }
        const std::string_view profiled = profiled_type(ctx, profile);
        if (profiled.empty() || profiled == code || is_resource_of(ctx.model, profiled, code)) continue;
        ctx.error("invalid",
                  "Profile " + std::string(profile) + " is for type " + std::string(profiled) + ", but the " +
                      std::string(path) + " element has type " + std::string(code),
                  at + "." + indexed("type", t) + "." + indexed("profile", p));
      }
    }
  }
}

// A constraint's differential may not change a value its base fixes.
void check_fixed_against_base(RuleContext& ctx, const Node& sd) {
  const std::string_view base_url = strip_version(sd.string_at("baseDefinition"));
  const Node* base = base_url.empty() ? nullptr : ctx.definitions.find(base_url, "StructureDefinition");
  const Node* differential = sd.find("differential");
  const Node* elements = differential == nullptr ? nullptr : differential->find("element");
  if (base == nullptr || elements == nullptr || !elements->is_array()) return;
  const bool has_fixed = std::any_of(elements->items().begin(), elements->items().end(),
                                     [](const Node& e) { return fixed_value(e) != nullptr; });
  if (!has_fixed) return;
  const Node* snapshot = base->find("snapshot");
  const Node* base_elements = snapshot == nullptr ? nullptr : snapshot->find("element");
  std::optional<Result<Node>> generated;
  if (base_elements == nullptr || !base_elements->is_array() || base_elements->items().empty()) {
    generated.emplace(ctx.validator.generate_snapshot(*base));
    if (!*generated) return;
    snapshot = (*generated)->find("snapshot");
    base_elements = snapshot == nullptr ? nullptr : snapshot->find("element");
    if (base_elements == nullptr || !base_elements->is_array()) return;
  }
  for (std::size_t i = 0; i < elements->items().size(); ++i) {
    const Node& element = elements->items()[i];
    std::string_view member;
    const Node* fixed = fixed_value(element, &member);
    if (fixed == nullptr) continue;
    const std::string_view id =
        element.string_at("id").empty() ? element.string_at("path") : element.string_at("id");
    for (const Node& candidate : base_elements->items()) {
      const std::string_view candidate_id =
          candidate.string_at("id").empty() ? candidate.string_at("path") : candidate.string_at("id");
      if (candidate_id != id) continue;
      const Node* base_fixed = fixed_value(candidate);
      if (base_fixed != nullptr && !(*base_fixed == *fixed)) {
        ctx.error("value",
                  "Value is '" + (fixed->is_string() ? fixed->text() : write_json(*fixed)) +
                      "' but is fixed to '" +
                      (base_fixed->is_string() ? base_fixed->text() : write_json(*base_fixed)) +
                      "' in the base definition " + std::string(base_url) + " (" + std::string(id) + ")",
                  "differential." + indexed("element", i) + "." + std::string(member));
      }
      break;
    }
  }
}

void check_structure_definition(RuleContext& ctx) {
  const Node& sd = ctx.resource;
  const std::string_view type = sd.string_at("type");
  const std::string_view type_name = last_segment(type);
  const std::string_view base_url = strip_version(sd.string_at("baseDefinition"));
  if (sd.string_at("derivation") == "specialization" && !base_url.empty()) {
    std::string_view base_type;
    if (const Node* base = ctx.definitions.find(base_url, "StructureDefinition"); base != nullptr) {
      base_type = base->string_at("type");
    } else if (base_url.starts_with(kCorePrefix) && ctx.model.type(last_segment(base_url)) != nullptr) {
      base_type = last_segment(base_url);
    }
    if (!base_type.empty() && base_type == type) {
      ctx.error("not-found", "The type " + std::string(type) +
                                 " must not be the same as the type in the base structure " +
                                 std::string(base_url) + " that is being specialised");
    }
  }
  check_element_list(ctx, sd, "differential", type_name);
  check_element_list(ctx, sd, "snapshot", type_name);
  if (sd.string_at("derivation") == "constraint") check_fixed_against_base(ctx, sd);
  if (type == "Extension") {
    if (const Node* contexts = sd.find("context"); contexts != nullptr && contexts->is_array()) {
      for (std::size_t i = 0; i < contexts->items().size(); ++i) {
        const Node& context = contexts->items()[i];
        if (context.string_at("type") == "element" && context.string_at("expression") == "Element") {
          ctx.warning("business-rule",
                      "Review the extension type for " + std::string(sd.string_at("id")) +
                          ": extensions should not have a context of Element unless it's really intended "
                          "that they can be used anywhere",
                      indexed("context", i));
        }
      }
    }
  }
}

// SearchParameter --------------------------------------------------------------------------------

// The type of each R4 SearchParameter, by url.
const std::map<std::string, std::string, std::less<>>* core_search_parameter_types(const Model& model) {
  if (model.profiles_dir().empty()) return nullptr;
  static std::mutex mutex;
  static std::map<std::string, std::unique_ptr<std::map<std::string, std::string, std::less<>>>, std::less<>>
      loaded;
  const std::lock_guard lock(mutex);
  const auto it = loaded.find(model.profiles_dir());
  if (it != loaded.end()) return it->second.get();
  std::unique_ptr<std::map<std::string, std::string, std::less<>>> table;
  if (auto bundle = read_json_file(model.profiles_dir() + "/r4/search-parameters.json.gz"); bundle) {
    table = std::make_unique<std::map<std::string, std::string, std::less<>>>();
    if (const Node* entries = bundle->find("entry"); entries != nullptr) {
      for (const Node& entry : entries->items()) {
        const Node* sp = entry.find("resource");
        if (sp == nullptr || sp->string_at("resourceType") != "SearchParameter") continue;
        table->emplace(sp->string_at("url"), sp->string_at("type"));
      }
    }
  }
  return loaded.emplace(model.profiles_dir(), std::move(table)).first->second.get();
}

void check_search_parameter(RuleContext& ctx) {
  const Node& sp = ctx.resource;
  const std::string_view type = sp.string_at("type");
  if (type == "composite") {
    const Node* components = sp.find("component");
    const std::size_t count =
        components != nullptr && components->is_array() ? components->items().size() : 0;
    if (count < 2) {
      ctx.error(
          "business-rule",
          "When the SearchParameter has a type of 'composite', then the SearchParameter must define two "
          "or more components");
    }
  }
  const std::string_view derived_from = strip_version(sp.string_at("derivedFrom"));
  if (derived_from.empty() || type.empty()) return;
  std::string_view base_type;
  if (const Node* base = ctx.definitions.find(derived_from, "SearchParameter"); base != nullptr) {
    base_type = base->string_at("type");
  } else if (const auto* core = core_search_parameter_types(ctx.model); core != nullptr) {
    if (const auto it = core->find(derived_from); it != core->end()) base_type = it->second;
  }
  if (!base_type.empty() && base_type != type) {
    ctx.error("business-rule", "The type " + std::string(type) + " is different to the type " +
                                   std::string(base_type) + " of " + std::string(derived_from) +
                                   ", the SearchParameter it is derived from");
  }
}

}  // namespace

void check_conformance(RuleContext& ctx) {
  if (ctx.type == "StructureDefinition") {
    check_structure_definition(ctx);
  } else if (ctx.type == "SearchParameter") {
    check_search_parameter(ctx);
  }
}

}  // namespace fhirgate::fhir
