// Extensions: every extension whose url names a known extension definition is checked against it —
// where it may be used (StructureDefinition.context and contextInvariant), modifierExtension against
// isModifier, its value[x] (required, forbidden, allowed types) and, for complex extensions, the
// sub-extensions (which urls, how many of each, their values). An unknown extension is an error when
// its url claims to be a core definition (http://hl7.org/fhir/StructureDefinition/...), which all
// are known; any other unknown url is information only, as the reference validator does.
//
// Definitions come from the validator's supporting resources first, then from the R4 core extension
// definitions (profiles/r4/extensions.json.gz: the official ones trimmed by scripts/extract-extensions
// to what is read here), read once per process on the first extension met (a few milliseconds) and
// kept as a compact table: url -> contexts, modifier flag, value rule, sub-extensions.
// Without a profiles directory (a Model built from bundles) the core table is absent, and unknown core
// urls are not reported.
//
// The walk: a quick untyped scan first, so that a resource without extensions costs one pass over its
// JSON and no allocation. Otherwise a typed walk keeps a stack of frames (the element, its type, its
// name in its parent) from the resource down to the element carrying the extension; a context such as
// `HumanName.family` or `Patient.name` is matched against the stack without building paths. Nested
// resources (contained, Bundle entries, Parameters) are left to their own pass of the resource rules.
#include "fhir/validator_extensions.hpp"

#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "fhir/fhirpath.hpp"
#include "fhir/files.hpp"

namespace fhirgate::fhir {

namespace {

constexpr std::string_view kCorePrefix = "http://hl7.org/fhir/StructureDefinition/";
constexpr std::string_view kToolsPrefix = "http://hl7.org/fhir/tools/StructureDefinition/";  // tooling
constexpr std::string_view kExtensionBase = "http://hl7.org/fhir/StructureDefinition/Extension";
constexpr std::uint32_t kUnbounded = ElementDef::kUnbounded;
constexpr int kMaxBaseDepth = 8;

struct ValueRule {
  std::uint32_t min = 0;
  std::uint32_t max = 1;
  std::vector<std::string> types;  // empty: any type
};

struct SubExtension {
  std::string name;  // the slice name
  std::string url;   // the fixed url; the slice name when the definition does not fix one
  std::uint32_t min = 0;
  std::uint32_t max = kUnbounded;
  ValueRule value;
};

struct ExtensionDefinition {
  enum class ContextKind : std::uint8_t { element, extension, fhirpath };
  struct Context {
    ContextKind kind = ContextKind::element;
    std::string expression;
  };
  std::string url;
  std::vector<Context> contexts;
  std::vector<std::string> invariants;  // contextInvariant
  bool modifier = false;
  ValueRule value;
  std::uint32_t extension_max = kUnbounded;  // Extension.extension
  bool closed = false;                       // the sub-extension slicing is closed
  std::vector<SubExtension> subs;
};

std::string_view strip_version(std::string_view url) {
  const auto bar = url.find('|');
  return bar == std::string_view::npos ? url : url.substr(0, bar);
}

std::uint32_t count_of(const Node* node, std::uint32_t fallback) {
  if (node == nullptr) return fallback;
  const std::string_view text = node->text();
  if (text == "*") return kUnbounded;
  if (text.empty()) return fallback;
  std::uint32_t out = 0;
  for (const char c : text) {
    if (c < '0' || c > '9') return fallback;
    out = out * 10 + static_cast<std::uint32_t>(c - '0');
  }
  return out;
}

void read_cardinality(const Node& element, std::uint32_t& min, std::uint32_t& max) {
  min = count_of(element.find("min"), min);
  max = count_of(element.find("max"), max);
}

// The value rule of an Extension.value[x] element (or Extension.valueString, which names its type).
void read_value(const Model& model, const Node& element, std::string_view member, ValueRule& rule) {
  read_cardinality(element, rule.min, rule.max);
  if (const Node* types = element.find("type"); types != nullptr && types->is_array()) {
    rule.types.clear();
    for (const Node& type : types->items()) {
      const std::string_view code = type.string_at("code");
      if (!code.empty()) rule.types.emplace_back(code);
    }
    return;
  }
  if (member == "value[x]" || member.size() <= 5) return;
  std::string type(member.substr(5));
  type[0] = static_cast<char>(type[0] - 'A' + 'a');
  const TypeDef* primitive = model.type(type);
  if (primitive == nullptr || primitive->kind != TypeDef::Kind::primitive) type[0] = member[5];
  rule.types = {std::move(type)};
}

SubExtension& sub_named(ExtensionDefinition& definition, std::string_view name) {
  for (SubExtension& sub : definition.subs) {
    if (sub.name == name) return sub;
  }
  SubExtension& sub = definition.subs.emplace_back();
  sub.name = name;
  sub.url = name;
  return sub;
}

// Overlays a StructureDefinition of type Extension onto `definition` (its base, or defaults): the
// snapshot when it has one, else the differential.
void read_definition(const Model& model, const Node& sd, ExtensionDefinition& definition) {
  definition.url = strip_version(sd.string_at("url"));
  if (const Node* contexts = sd.find("context"); contexts != nullptr && contexts->is_array()) {
    definition.contexts.clear();
    for (const Node& context : contexts->items()) {
      ExtensionDefinition::Context c;
      const std::string_view type = context.string_at("type");
      c.kind = type == "extension"  ? ExtensionDefinition::ContextKind::extension
               : type == "fhirpath" ? ExtensionDefinition::ContextKind::fhirpath
                                    : ExtensionDefinition::ContextKind::element;
      c.expression = context.string_at("expression");
      if (!c.expression.empty()) definition.contexts.push_back(std::move(c));
    }
  }
  if (const Node* invariants = sd.find("contextInvariant"); invariants != nullptr && invariants->is_array()) {
    definition.invariants.clear();
    for (const Node& invariant : invariants->items()) {
      if (invariant.is_string() && !invariant.text().empty())
        definition.invariants.push_back(invariant.text());
    }
  }
  const Node* snapshot = sd.find("snapshot");
  const Node* elements = snapshot == nullptr ? nullptr : snapshot->find("element");
  if (elements == nullptr || !elements->is_array() || elements->items().empty()) {
    const Node* differential = sd.find("differential");
    elements = differential == nullptr ? nullptr : differential->find("element");
  }
  if (elements == nullptr || !elements->is_array()) return;
  std::string slice;  // for elements without an id: the slice of Extension.extension being read
  for (const Node& element : elements->items()) {
    std::string id(element.string_at("id"));
    const std::string_view path = element.string_at("path");
    if (id.empty()) {
      if (path == "Extension.extension" && !element.string_at("sliceName").empty()) {
        slice = element.string_at("sliceName");
        id = "Extension.extension:" + slice;
      } else if (path.starts_with("Extension.extension.") && !slice.empty()) {
        id = "Extension.extension:" + slice + std::string(path.substr(19));
      } else {
        id = path;
      }
    }
    if (id == "Extension") {
      if (const Node* modifier = element.find("isModifier"); modifier != nullptr)
        definition.modifier = modifier->as_bool();
    } else if (id == "Extension.extension") {
      std::uint32_t min = 0;
      read_cardinality(element, min, definition.extension_max);
      if (const Node* slicing = element.find("slicing"); slicing != nullptr)
        definition.closed = slicing->string_at("rules") == "closed";
    } else if (id.starts_with("Extension.value") && id.find('.', 10) == std::string::npos &&
               id.find(':') == std::string::npos) {
      read_value(model, element, std::string_view(id).substr(10), definition.value);
    } else if (id.starts_with("Extension.extension:")) {
      const std::string_view rest = std::string_view(id).substr(20);
      const auto dot = rest.find('.');
      SubExtension& sub = sub_named(definition, rest.substr(0, dot));
      if (dot == std::string_view::npos) {
        read_cardinality(element, sub.min, sub.max);
        continue;
      }
      const std::string_view tail = rest.substr(dot + 1);
      if (tail == "url") {
        for (const char* fixed : {"fixedUri", "fixedString", "fixedUrl", "fixedCanonical"}) {
          if (const Node* url = element.find(fixed); url != nullptr && url->is_string())
            sub.url = url->text();
        }
      } else if (tail.starts_with("value") && tail.find('.') == std::string_view::npos &&
                 tail.find(':') == std::string_view::npos) {
        read_value(model, element, tail, sub.value);
      }
    }
  }
}

// Published corrections to R4 extension contexts, which R4 itself and later versions use: the FHIR type
// of an element is stated on ElementDefinition.type (R4 put it on .code; FHIR-13328).
void correct_contexts(ExtensionDefinition& definition) {
  if (definition.url == "http://hl7.org/fhir/StructureDefinition/structuredefinition-fhir-type") {
    definition.contexts.push_back({ExtensionDefinition::ContextKind::element, "ElementDefinition.type"});
  }
}

// The core extension definitions of one profiles directory, read on first use.
struct CoreExtensions {
  std::map<std::string, std::shared_ptr<const ExtensionDefinition>, std::less<>> by_url;
};

const CoreExtensions* core_extensions(const Model& model) {
  if (model.profiles_dir().empty()) return nullptr;
  static std::mutex mutex;
  static std::map<std::string, std::unique_ptr<CoreExtensions>, std::less<>> loaded;
  const std::lock_guard lock(mutex);
  const auto it = loaded.find(model.profiles_dir());
  if (it != loaded.end()) return it->second.get();
  std::unique_ptr<CoreExtensions> table;
  if (auto bundle = read_json_file(model.profiles_dir() + "/r4/extensions.json.gz"); bundle) {
    table = std::make_unique<CoreExtensions>();
    if (const Node* entries = bundle->find("entry"); entries != nullptr) {
      for (const Node& entry : entries->items()) {
        const Node* sd = entry.find("resource");
        if (sd == nullptr || sd->string_at("type") != "Extension") continue;
        auto definition = std::make_shared<ExtensionDefinition>();
        read_definition(model, *sd, *definition);
        correct_contexts(*definition);
        table->by_url.emplace(definition->url, std::move(definition));
      }
    }
  }
  return loaded.emplace(model.profiles_dir(), std::move(table)).first->second.get();
}

// The definition of the extension at `url`: a supporting StructureDefinition (over the definition
// of its base when that is another extension), else a core one; null when unknown.
std::shared_ptr<const ExtensionDefinition> find_definition(const Definitions& definitions, const Model& model,
                                                           const CoreExtensions* core, std::string_view url,
                                                           int depth = 0) {
  url = strip_version(url);
  if (const Node* sd = definitions.find(url, "StructureDefinition");
      sd != nullptr && sd->string_at("type") == "Extension" && depth < kMaxBaseDepth) {
    auto out = std::make_shared<ExtensionDefinition>();
    const std::string_view base = strip_version(sd->string_at("baseDefinition"));
    if (!base.empty() && base != kExtensionBase && base != url) {
      if (auto inherited = find_definition(definitions, model, core, base, depth + 1); inherited != nullptr)
        *out = *inherited;
    }
    read_definition(model, *sd, *out);
    return out;
  }
  if (core == nullptr) return nullptr;
  const auto it = core->by_url.find(url);
  return it == core->by_url.end() ? nullptr : it->second;
}

bool is_absolute(std::string_view url) {
  return url.find("://") != std::string_view::npos || url.starts_with("urn:");
}

// http://hl7.org/fhir/[version]/StructureDefinition/extension-[path]: an element of another FHIR
// version represented as an extension; its definition would come from that version's specification.
bool cross_version(std::string_view url) {
  constexpr std::string_view kPrefix = "http://hl7.org/fhir/";
  if (!url.starts_with(kPrefix)) return false;
  url.remove_prefix(kPrefix.size());
  const auto slash = url.find('/');
  if (slash == 0 || slash == std::string_view::npos) return false;
  for (const char c : url.substr(0, slash)) {
    if ((c < '0' || c > '9') && c != '.') return false;
  }
  return url.substr(slash).starts_with("/StructureDefinition/extension-");
}

class ExtensionWalk {
 public:
  ExtensionWalk(RuleContext& ctx, const CoreExtensions* core)
      : ctx_(ctx), model_(ctx.model), core_(core), extension_type_(ctx.model.type("Extension")) {}

  void run() {
    const TypeDef* type = model_.type(ctx_.type);
    if (type == nullptr || extension_type_ == nullptr) return;
    frames_.push_back({type, {}, &ctx_.resource, &ctx_.resource, {}, 0});
    walk(ctx_.resource, *type);
  }

 private:
  struct Frame {
    const TypeDef* type;
    std::string_view name;  // the element's name in its parent (no [x]); empty for the resource
    const Node* value;      // the element's value (a primitive's value may be null)
    const Node* object;     // where its id and extensions are: the value, or a primitive's `_x`
    std::string_view url;   // Extension frames: the extension's url
    std::size_t path_end;   // the length of path_ at this element
  };

  class Scope {
   public:
    Scope(ExtensionWalk& walk, std::string_view name, std::size_t index, bool indexed)
        : walk_(walk), mark_(walk.path_.size()) {
      if (!walk.path_.empty()) walk.path_.push_back('.');
      walk.path_.append(name);
      if (indexed) {
        walk.path_.push_back('[');
        walk.path_.append(std::to_string(index));
        walk.path_.push_back(']');
      }
    }
    ~Scope() { walk_.path_.resize(mark_); }
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;

   private:
    ExtensionWalk& walk_;
    std::size_t mark_;
  };

  const TypeDef* element_type(const ElementDef& def, std::string_view choice_type) const {
    if (!choice_type.empty()) return model_.type(choice_type);
    if (def.inline_type != nullptr) return def.inline_type;
    if (def.types.empty()) return nullptr;
    return model_.type(def.types.front().code);
  }

  void walk(const Node& object, const TypeDef& type) {
    for (const auto& [key, value] : object.members()) {
      if (key == "resourceType") continue;
      if (key == "extension" || key == "modifierExtension") {
        if (!value.is_array()) continue;
        for (std::size_t i = 0; i < value.items().size(); ++i) {
          const Node& item = value.items()[i];
          if (!item.is_object()) continue;
          Scope s(*this, key, i, true);
          check_extension(item, key == "modifierExtension");
          frames_.push_back({extension_type_, key, &item, &item, item.string_at("url"), path_.size()});
          walk(item, *extension_type_);
          frames_.pop_back();
        }
        continue;
      }
      const bool companion = !key.empty() && key[0] == '_';
      const std::string_view name = companion ? std::string_view(key).substr(1) : std::string_view(key);
      std::string_view choice_type;
      const ElementDef* def = type.resolve(name, &choice_type);
      const TypeDef* t = def == nullptr ? nullptr : element_type(*def, choice_type);
      if (t == nullptr || t->kind == TypeDef::Kind::resource) continue;
      if ((t->kind == TypeDef::Kind::primitive) != companion) continue;
      const Node* values = companion ? object.find(name) : nullptr;
      if (!value.is_array()) {
        if (!value.is_object()) continue;
        Scope s(*this, name, 0, false);
        descend(*def, *t, companion ? values : &value, value);
        continue;
      }
      for (std::size_t i = 0; i < value.items().size(); ++i) {
        const Node& item = value.items()[i];
        if (!item.is_object()) continue;
        const Node* item_value = &item;
        if (companion) {
          item_value = values != nullptr && values->is_array() && i < values->items().size()
                           ? &values->items()[i]
                           : nullptr;
        }
        Scope s(*this, name, i, true);
        descend(*def, *t, item_value, item);
      }
    }
  }

  void descend(const ElementDef& def, const TypeDef& type, const Node* value, const Node& object) {
    // Fixed, pattern and example values in element definitions are values of another element, so
    // their extensions are not in the context they appear in (as the reference validator also has it).
    const std::string_view parent = frames_.back().type->name;
    const bool example_value =
        (parent == "ElementDefinition" && (def.name == "fixed" || def.name == "pattern")) ||
        (parent == "ElementDefinition.example" && def.name == "value");
    if (example_value) ++inside_values_;
    frames_.push_back({&type, def.name, value, &object, {}, path_.size()});
    walk(object, type);
    frames_.pop_back();
    if (example_value) --inside_values_;
  }

  std::string relative(std::size_t end) const { return path_.substr(0, end); }

  // Definitions ---------------------------------------------------------------------------------

  std::shared_ptr<const ExtensionDefinition> definition(std::string_view url) const {
    return find_definition(ctx_.definitions, model_, core_, url);
  }

  // Checks ----------------------------------------------------------------------------------------

  void check_extension(const Node& extension, bool modifier) {
    const std::string_view url = extension.string_at("url");
    if (url.empty()) return;
    const Frame& host = frames_.back();
    // A relative url names a sub-extension: its complex extension checks it.
    if (host.type == extension_type_ && !is_absolute(url)) return;
    const auto def = definition(url);
    if (def == nullptr) {
      report_unknown(url);
      return;
    }
    if (def->modifier && !modifier) {
      ctx_.error("structure",
                 "The extension '" + std::string(url) +
                     "' must not be used as an extension (it's a modifierExtension)",
                 path_);
    } else if (!def->modifier && modifier) {
      ctx_.error("structure",
                 "The extension '" + std::string(url) +
                     "' must not be used as a modifierExtension (it's a regular extension)",
                 path_);
    }
    if (inside_values_ == 0) check_context(*def);
    check_content(*def, extension, url);
  }

  void report_unknown(std::string_view url) {
    if (cross_version(url) || url.starts_with(kToolsPrefix)) return;
    if (url.starts_with(kCorePrefix) && core_ != nullptr) {
      ctx_.error("structure",
                 "The extension " + std::string(url) + " could not be found so is not allowed here", path_);
      return;
    }
    ctx_.information("structure", "Unknown extension " + std::string(url), path_);
  }

  // Element contexts: `Element`, a type (or one it specialises), or a path from a type or the
  // resource, e.g. `Patient.name`, `HumanName.family`. A backbone element's type is named by its
  // definition path (`RequestGroup.action`, also for the recursive RequestGroup.action.action).
  bool element_matches(std::string_view expression) const {
    if (const auto hash = expression.find('#'); hash != std::string_view::npos) {
      expression.remove_prefix(hash + 1);  // a path in a structure named by its url: url#Patient.name
    } else if (expression.find("://") != std::string_view::npos) {
      return true;  // a profile: where it applies is not known here
    }
    if (expression == "Element" || expression == "Any") return true;
    const std::size_t host = frames_.size() - 1;
    for (const TypeDef* t = frames_[host].type; t != nullptr;
         t = t->base.empty() ? nullptr : model_.type(t->base)) {
      if (expression == t->name) return true;
      if (t->kind == TypeDef::Kind::backbone && expression == "BackboneElement") return true;
    }
    for (std::size_t j = 0; j < host; ++j) {
      const std::string_view start = frames_[j].type->name;
      if (expression.size() <= start.size() || !expression.starts_with(start) ||
          expression[start.size()] != '.')
        continue;
      std::string_view rest = expression.substr(start.size() + 1);
      std::size_t k = j + 1;
      bool match = true;
      while (match && !rest.empty()) {
        const auto dot = rest.find('.');
        std::string_view segment = rest.substr(0, dot);
        rest = dot == std::string_view::npos ? std::string_view() : rest.substr(dot + 1);
        if (segment.ends_with("[x]")) segment.remove_suffix(3);
        match = k <= host && frames_[k].name == segment;
        ++k;
      }
      if (match && k == host + 1) return true;
    }
    return false;
  }

  bool extension_matches(std::string_view url) const {
    for (std::size_t i = frames_.size(); i-- > 0;) {
      if (frames_[i].type == extension_type_) return strip_version(frames_[i].url) == strip_version(url);
    }
    return false;
  }

  bool fhirpath_matches(std::string_view expression) const {
    auto compiled = fhirpath::compile(expression);
    if (!compiled) return true;
    fhirpath::EvalContext context{model_, &ctx_.resource, ctx_.type, &ctx_.resource, ctx_.type};
    auto items = fhirpath::evaluate(**compiled, ctx_.resource, ctx_.type, context);
    if (!items) return true;
    const Frame& host = frames_.back();
    for (const fhirpath::Item& item : *items) {
      if (item.node != nullptr && (item.node == host.value || item.node == host.object)) return true;
    }
    return false;
  }

  // The names the host element answers to, for the message.
  std::string host_names() const {
    std::vector<std::string> names;
    const std::size_t host = frames_.size() - 1;
    const TypeDef* type = frames_[host].type;
    if (type->kind == TypeDef::Kind::backbone) names.emplace_back("BackboneElement");
    names.push_back(type->name);
    for (std::size_t j = 0; j < host; ++j) {
      std::string path = frames_[j].type->name;
      for (std::size_t k = j + 1; k <= host; ++k) path += "." + std::string(frames_[k].name);
      if (std::find(names.begin(), names.end(), path) == names.end()) names.push_back(std::move(path));
    }
    for (std::size_t i = frames_.size(); i-- > 0;) {
      if (frames_[i].type == extension_type_ && !frames_[i].url.empty()) {
        names.emplace_back(frames_[i].url);
        break;
      }
    }
    std::string out;
    for (const std::string& name : names) out += (out.empty() ? "" : ", ") + name;
    return out;
  }

  void check_context(const ExtensionDefinition& def) {
    const Frame& host = frames_.back();
    const std::string where = relative(host.path_end);
    if (!def.contexts.empty()) {
      bool allowed = false;
      std::string listed;
      for (const ExtensionDefinition::Context& c : def.contexts) {
        switch (c.kind) {
          case ExtensionDefinition::ContextKind::element:
            listed += (listed.empty() ? "e:" : ", e:") + c.expression;
            allowed = allowed || element_matches(c.expression);
            break;
          case ExtensionDefinition::ContextKind::extension:
            listed += (listed.empty() ? "x:" : ", x:") + c.expression;
            allowed = allowed || extension_matches(c.expression);
            break;
          case ExtensionDefinition::ContextKind::fhirpath:
            listed += (listed.empty() ? "p:" : ", p:") + c.expression;
            allowed = allowed || fhirpath_matches(c.expression);
            break;
        }
      }
      if (!allowed) {
        ctx_.error("structure",
                   "The extension " + def.url +
                       " is not allowed to be used at this point (this element is [" + host_names() +
                       "]; allowed = " + listed + ")",
                   where);
        return;
      }
    }
    if (def.invariants.empty() || host.value == nullptr) return;
    fhirpath::EvalContext context{model_, &ctx_.resource, ctx_.type, &ctx_.resource, ctx_.type};
    if (host.object != host.value) context.focus_companion = host.object;
    for (const std::string& invariant : def.invariants) {
      auto compiled = fhirpath::compile(invariant);
      if (!compiled) continue;
      auto result = fhirpath::evaluate_boolean(**compiled, *host.value, host.type->name, context);
      if (!result || !result->has_value() || **result) continue;
      ctx_.error("structure",
                 "The extension " + def.url +
                     " is not allowed to be used at this point (based on context invariant '" + invariant +
                     "')",
                 where);
      return;
    }
  }

  // The value[x] member of an extension, and its type ("Boolean" -> boolean).
  std::string_view value_member(const Node& extension, std::string& type) const {
    for (const auto& [key, value] : extension.members()) {
      if (key.size() <= 5 || !key.starts_with("value")) continue;
      std::string_view choice;
      if (extension_type_->resolve(key, &choice) == nullptr || choice.empty()) continue;
      type = choice;
      return key;
    }
    return {};
  }

  void check_value(const ValueRule& rule, const Node& extension, std::string_view url,
                   std::string_view what) {
    std::string type;
    const std::string_view member = value_member(extension, type);
    if (member.empty()) {
      if (rule.min > 0 && extension.find("extension") == nullptr) {
        ctx_.error("structure", std::string(what) + " " + std::string(url) + " requires a value", path_);
      }
      return;
    }
    if (rule.max == 0) {
      ctx_.error("structure",
                 std::string(what) + " " + std::string(url) + " does not allow a value (" +
                     std::string(member) + ")",
                 path_);
      return;
    }
    if (rule.types.empty()) return;
    for (const std::string& allowed : rule.types) {
      if (allowed == type) return;
    }
    std::string list;
    for (const std::string& allowed : rule.types) list += (list.empty() ? "" : ", ") + allowed;
    Scope s(*this, member, 0, false);
    ctx_.error("structure",
               "The type " + type + " is not allowed for the value of " + std::string(what) + " " +
                   std::string(url) + " (allowed: " + list + ")",
               path_);
  }

  void check_content(const ExtensionDefinition& def, const Node& extension, std::string_view url) {
    check_value(def.value, extension, url, "The extension");
    const Node* subs = extension.find("extension");
    const std::size_t count = subs != nullptr && subs->is_array() ? subs->items().size() : 0;
    if (count > 0 && def.extension_max == 0) {
      ctx_.error(
          "structure",
          "The extension " + std::string(url) + " is a simple extension: it allows no extensions inside it",
          path_);
      return;
    }
    if (def.subs.empty()) return;
    std::vector<std::uint32_t> found(def.subs.size(), 0);
    for (std::size_t i = 0; i < count; ++i) {
      const Node& sub = subs->items()[i];
      const std::string_view sub_url = sub.string_at("url");
      if (sub_url.empty()) continue;
      std::size_t s = 0;
      while (s < def.subs.size() && def.subs[s].url != sub_url) ++s;
      Scope scope(*this, "extension", i, true);
      if (s == def.subs.size()) {
        if (!is_absolute(sub_url)) {
          ctx_.error("invalid",
                     "Sub-extension url '" + std::string(sub_url) + "' is not defined by the extension " +
                         std::string(url),
                     path_);
        } else if (def.closed) {
          ctx_.error("structure",
                     "The extension " + std::string(sub_url) + " does not match any sub-extension of " +
                         std::string(url) + ", whose slicing is closed",
                     path_);
        } else {
          ctx_.information("informational",
                           "The extension " + std::string(sub_url) +
                               " does not match any sub-extension defined by " + std::string(url),
                           path_);
        }
        continue;
      }
      ++found[s];
      check_value(def.subs[s].value, sub, sub_url, "The sub-extension");
    }
    for (std::size_t s = 0; s < def.subs.size(); ++s) {
      const SubExtension& sub = def.subs[s];
      if (found[s] < sub.min) {
        ctx_.error("structure",
                   "The sub-extension '" + sub.url + "' is required (at least " + std::to_string(sub.min) +
                       ") in the extension " + std::string(url) + ", but found " + std::to_string(found[s]),
                   path_);
      } else if (found[s] > sub.max) {
        ctx_.error("structure",
                   "The sub-extension '" + sub.url + "' allows at most " + std::to_string(sub.max) +
                       " in the extension " + std::string(url) + ", but found " + std::to_string(found[s]),
                   path_);
      }
    }
  }

  RuleContext& ctx_;
  const Model& model_;
  const CoreExtensions* core_;
  const TypeDef* extension_type_;
  std::vector<Frame> frames_;
  int inside_values_ = 0;  // within fixed[x], pattern[x] or example values of element definitions
  std::string path_;       // relative to the resource
};

}  // namespace

std::optional<bool> extension_is_modifier(const RuleContext& ctx, std::string_view url) {
  const auto definition = find_definition(ctx.definitions, ctx.model, core_extensions(ctx.model), url);
  if (definition == nullptr) return std::nullopt;
  return definition->modifier;
}

void check_extensions(RuleContext& ctx) {
  if (!ctx.has_extensions) return;
  ExtensionWalk(ctx, core_extensions(ctx.model)).run();
}

}  // namespace fhirgate::fhir
