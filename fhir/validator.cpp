// Validation: one recursive walk over the JSON tree, typed by the Model.
//
// A Run holds the per-call state: the issues, the stop flag of the fail-fast policy, and the current
// location. The location is one string that Path scopes extend and truncate on exit, so no call site
// concatenates paths and the walk allocates only when it reports. Each element instance is checked in
// the same order: its JSON shape (array or not, object or primitive, null placeholders), cardinality
// of its children, the type rules (primitive lexical form, Reference targets, nested resources), then
// binding, fixed/pattern, bounds and finally the invariants, which are the costly part.
//
// Invariants are FHIRPath, compiled once per distinct expression text when the Validator is built
// (the Model interns them) and evaluated with the focus typed as the element's type and %resource set
// to the innermost containing resource. Two invariants sit on nearly every element — ele-1 (no empty
// elements) and ext-1 (an extension has a value or children, not both) — and are checked natively
// instead, which is most of what makes invariant checking affordable on the write path. dom-3 (a
// contained resource is referenced) is checked by the resource rules (validator_bundle.cpp), which also
// see the narrative's links that FHIRPath cannot. A constraint that cannot be evaluated (an engine error) is
// reported as information, never as a failure of the resource.
//
// A time budget (ValidationOptions::deadline) bounds the whole run: every element instance and profile
// item visited is a step, the FHIRPath engine counts its own steps against the same Budget, and the
// clock is read once every few hundred steps, so that a deadline costs nothing measurable. When it
// passes, the run stops as the fail-fast policy does (the stop flag) and ends with one too-costly issue.
//
// Profiles are a second walk, run only for a resource that a profile applies to, after the base walk
// has checked it against its base definition. The walk follows the profile's element tree (not the
// JSON), with the Model's base element at each level so only what the profile adds is reported again:
// cardinality tighter than the base, fixed/pattern values, bindings and invariants the base does not
// have, narrowed types and reference targets, and slicing. Each repeating element's items are matched
// to slices by the discriminators; an item is then checked against the element and every slice it
// matches, and the slices' min/max count the items matched to them. An unknown profile is reported as
// a warning and the resource is checked against its base definition only.
#include "fhir/validator.hpp"

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <optional>
#include <string_view>
#include <unordered_map>
#include <utility>

#include "fhir/budget.hpp"
#include "fhir/datetime.hpp"
#include "fhir/fhirpath.hpp"
#include "fhir/narrative.hpp"
#include "fhir/profiles.hpp"
#include "fhir/regex.hpp"
#include "fhir/validator_primitives.hpp"
#include "fhir/validator_rules.hpp"
#include "fhir/validator_terminology.hpp"

namespace fhirgate::fhir {

namespace {

constexpr std::string_view kCoreProfilePrefix = "http://hl7.org/fhir/StructureDefinition/";
constexpr std::size_t kNoIndex = static_cast<std::size_t>(-1);
constexpr int kMaxProfileDepth = 8;  // profiles reached through type profiles and profile discriminators

bool natively_checked(std::string_view key) {
  return key == "ele-1" || key == "ext-1" || key == "dom-3";
}

std::string_view last_segment(std::string_view url) {
  const auto slash = url.rfind('/');
  return slash == std::string_view::npos ? url : url.substr(slash + 1);
}

std::string_view strip_version(std::string_view url) {
  const auto bar = url.find('|');
  return bar == std::string_view::npos ? url : url.substr(0, bar);
}

std::size_t code_points(std::string_view s) {
  return static_cast<std::size_t>(std::count_if(
      s.begin(), s.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
}

bool subset_matches(const Node& pattern, const Node& value) {
  if (pattern.is_object()) {
    if (!value.is_object()) return false;
    for (const auto& [key, expected] : pattern.members()) {
      const Node* actual = value.find(key);
      if (actual == nullptr || !subset_matches(expected, *actual)) return false;
    }
    return true;
  }
  if (pattern.is_array()) {
    if (!value.is_array()) return false;
    return std::all_of(pattern.items().begin(), pattern.items().end(), [&](const Node& expected) {
      return std::any_of(value.items().begin(), value.items().end(),
                         [&](const Node& actual) { return subset_matches(expected, actual); });
    });
  }
  return !value.is_object() && !value.is_array() && pattern.text() == value.text();
}

bool exactly_matches(const Node& fixed, const Node& value) {
  if (fixed.is_object()) {
    return value.is_object() && fixed.members().size() == value.members().size() &&
           subset_matches(fixed, value);
  }
  if (fixed.is_array()) {
    if (!value.is_array() || fixed.items().size() != value.items().size()) return false;
    for (std::size_t i = 0; i < fixed.items().size(); ++i) {
      if (!exactly_matches(fixed.items()[i], value.items()[i])) return false;
    }
    return true;
  }
  return !value.is_object() && !value.is_array() && fixed.text() == value.text();
}

// Orders two bound values; nullopt when they cannot be compared.
std::optional<int> compare_values(std::string_view type, std::string_view a, std::string_view b) {
  if (type == "date" || type == "dateTime" || type == "instant") {
    const auto ra = parse_time_range(a);
    const auto rb = parse_time_range(b);
    if (!ra || !rb) return std::nullopt;
    return ra->low < rb->low ? -1 : (ra->low > rb->low ? 1 : 0);
  }
  if (type == "integer" || type == "positiveInt" || type == "unsignedInt" || type == "decimal") {
    const double da = std::strtod(std::string(a).c_str(), nullptr);
    const double db = std::strtod(std::string(b).c_str(), nullptr);
    return da < db ? -1 : (da > db ? 1 : 0);
  }
  if (type == "time") return a < b ? -1 : (a > b ? 1 : 0);
  return std::nullopt;
}

struct ValidatorState {
  std::shared_ptr<const Model> model;
  std::shared_ptr<const Terminology> terminology;
  std::shared_ptr<Terminology>
      own_terminology;      // a copy, once add_resource() brings a ValueSet or CodeSystem
  Definitions definitions;  // what add_resource() brought
  struct PendingProfile {
    Node definition;
    std::string problem;  // why it could not be compiled yet
  };
  std::vector<PendingProfile> pending_profiles;  // their base is not known yet, or they are wrong
  const Validator* validator = nullptr;
  std::vector<std::shared_ptr<const fhirpath::CompiledExpression>> compiled;  // by expression_id
  std::unordered_map<std::string_view, Regex> other_regexes;  // primitives without a native check
  std::unordered_map<std::string, std::shared_ptr<const Profile>> profiles;  // by canonical URL
  // ImplementationGuide.global: the profiles every resource of a type must conform to, by type.
  std::unordered_map<std::string, std::vector<std::string>> global_profiles;

  const Profile* profile(std::string_view url) const {
    if (profiles.empty()) return nullptr;
    const auto it = profiles.find(std::string(strip_version(url)));
    return it == profiles.end() ? nullptr : it->second.get();
  }
};

class Run {
 public:
  Run(const ValidatorState& impl, const ValidationOptions& options, std::vector<Issue>& issues)
      : impl_(impl), model_(*impl.model), options_(options), issues_(issues), budget_(options.deadline) {}

  // Validates the resource; false when the budget ran out first (the too-costly issue is then the last).
  bool validate(const Node& resource) {
    if (budget_.read_clock()) {
      check_resource(resource, nullptr, false);
    } else {
      over_budget();
    }
    if (too_many_issues_ && !over_budget_) {
      Issue issue;
      issue.severity = "error";
      issue.code = "too-costly";
      issue.diagnostics = "Validation was stopped after " + std::to_string(options_.max_issues) +
                          " issues: the resource has more, which are not listed";
      issue.expression = std::move(too_many_at_);
      issues_.push_back(std::move(issue));
    } else if (unlisted_ > 0 && !over_budget_) {
      Issue issue;
      issue.severity = "information";
      issue.code = "informational";
      issue.diagnostics = std::to_string(unlisted_) +
                          " more warnings and information are not listed (at most " +
                          std::to_string(options_.max_issues) + " issues are)";
      issues_.push_back(std::move(issue));
    }
    if (!over_budget_) return true;
    Issue issue;
    issue.severity = "error";
    issue.code = "too-costly";
    issue.diagnostics =
        "Validation was stopped: it exceeded its time budget. Only the issues found until then are listed";
    issue.expression = std::move(over_budget_at_);
    issues_.push_back(std::move(issue));
    return false;
  }

 private:
  // %resource, and %rootResource: the container of a contained resource, else the resource itself
  // (a Bundle entry's resource is its own root).
  struct ResourceScope {
    const Node* node;
    std::string_view type;
    const Node* root;
    std::string_view root_type;
  };

  // Extends the location for its lifetime: `.name` or `.name[index]`.
  class Path {
   public:
    Path(Run& run, std::string_view name, std::size_t index = kNoIndex) : run_(run), mark_(run.path_.size()) {
      if (!run.path_.empty()) run.path_.push_back('.');
      run.path_.append(name);
      if (index != kNoIndex) {
        run.path_.push_back('[');
        char digits[24];
        const auto [end, ec] = std::to_chars(digits, digits + sizeof digits, index);
        run.path_.append(digits, end);
        run.path_.push_back(']');
      }
    }
    ~Path() { run_.path_.resize(mark_); }
    Path(const Path&) = delete;
    Path& operator=(const Path&) = delete;

   private:
    Run& run_;
    std::size_t mark_;
  };

  // Counts one step of work; false (and the run stopped) once the budget is exceeded.
  bool spend() {
    if (budget_.spend()) return true;
    over_budget();
    return false;
  }

  // The issue list is full (ValidationOptions::max_issues): the run stops.
  void too_many_issues() {
    if (!too_many_issues_) too_many_at_ = path_;
    too_many_issues_ = true;
    stopped_ = true;
  }

  void over_budget() {
    if (!over_budget_) over_budget_at_ = path_;
    over_budget_ = true;
    stopped_ = true;
  }

  void report(std::string_view severity, std::string_view code, std::string diagnostics) {
    if (issues_.size() >= options_.max_issues) {
      if (severity == "error" || severity == "fatal") return too_many_issues();
      ++unlisted_;  // a warning or information past the limit: left out, the walk goes on for errors
      return;
    }
    Issue issue;
    issue.severity = severity;
    issue.code = code;
    issue.diagnostics = std::move(diagnostics);
    issue.expression = path_;
    issues_.push_back(std::move(issue));
    if (severity == "error" && options_.stop_at_first_error) stopped_ = true;
  }
  void error(std::string_view code, std::string diagnostics) {
    report("error", code, std::move(diagnostics));
  }

  // Resources --------------------------------------------------------------------------------------

  // `parent`: the scope of the enclosing resource, null for the root. `contained`: a resource in
  // DomainResource.contained, where the dom-* invariants do not apply (they are
  // evaluated on the container, and contained resources carry no narrative).
  void check_resource(const Node& node, const ResourceScope* parent, bool contained) {
    const bool root = parent == nullptr;
    if (!node.is_object()) {
      error("structure", "A resource must be a JSON object");
      return;
    }
    const Node* type_node = node.find("resourceType");
    if (type_node == nullptr || !type_node->is_string()) {
      error("structure", "The resource has no resourceType");
      return;
    }
    const std::string_view type_name = type_node->text();
    const TypeDef* type = model_.type(type_name);
    if (type == nullptr || !model_.is_resource(type_name)) {
      error("invalid", "Unknown resource type '" + std::string(type_name) + "'");
      return;
    }
    std::optional<Path> root_path;
    if (root) root_path.emplace(*this, type_name);
    const std::vector<const Profile*> profiles = check_profiles(node, *type, root);
    if (const Node* id = node.find("id"); id != nullptr && id->is_string() && !is_valid_id(id->text())) {
      Path p(*this, "id");
      error("value", "The id '" + id->text() + "' is not a valid FHIR id");
    }
    const ResourceScope scope = contained ? ResourceScope{&node, type_name, parent->root, parent->root_type}
                                          : ResourceScope{&node, type_name, &node, type_name};
    enclosing_.push_back(EnclosingResource{&node, type_name});
    check_object(node, *type, scope, true);
    const bool has_extensions = enclosing_.back().has_extensions;
    const bool has_element_ids = enclosing_.back().has_element_ids;
    enclosing_.pop_back();
    if (stopped_) return;
    if (!contained) {
      check_invariants(nullptr, &type->constraints, node, type_name, scope);
    } else if (options_.check_invariants) {
      for (const Constraint& c : type->constraints) {
        if (stopped_) return;
        if (!c.key.starts_with("dom-")) evaluate(c, node, type_name, scope);
      }
    }
    for (const Profile* profile : profiles) {
      if (stopped_) return;
      check_profile_item(*profile, profile->root(), &node, nullptr, *type, nullptr, scope, 0);
    }
    if (stopped_) return;
    RuleContext rules{model_,
                      *impl_.terminology,
                      impl_.definitions,
                      *impl_.validator,
                      options_,
                      node,
                      type_name,
                      path_,
                      enclosing_,
                      contained,
                      references_,
                      reference_paths_,
                      has_extensions,
                      has_element_ids,
                      budget_,
                      issues_};
    run_resource_rules(rules);
    if (budget_.exceeded()) return over_budget();
    unlisted_ += rules.unlisted;
    if (rules.full) return too_many_issues();
    if (rules.has_errors() && options_.stop_at_first_error) stopped_ = true;
  }

  // The registered profiles that apply to the resource (each once); warns about unknown ones.
  std::vector<const Profile*> check_profiles(const Node& node, const TypeDef& type, bool root) {
    std::vector<const Profile*> applicable;
    const auto check = [&](std::string_view url) {
      const std::string_view bare = strip_version(url);
      if (bare == type.url) return;
      const Profile* profile = impl_.profile(bare);
      if (profile == nullptr) {
        report("warning", "not-supported",
               "profile " + std::string(bare) +
                   " is not known; validated against the base definition only (cannot check: its "
                   "StructureDefinition, or the implementation guide package that has it, was not given)");
        return;
      }
      if (profile->type != type.name) {
        error("structure",
              "The profile " + profile->url + " constrains " + profile->type + ", not " + type.name);
        return;
      }
      if (std::find(applicable.begin(), applicable.end(), profile) == applicable.end())
        applicable.push_back(profile);
    };
    if (root) {
      for (const std::string& url : options_.profiles) check(url);
    }
    if (!impl_.global_profiles.empty()) {
      if (const auto it = impl_.global_profiles.find(type.name); it != impl_.global_profiles.end()) {
        for (const std::string& url : it->second) check(url);
      }
    }
    const Node* meta = node.find("meta");
    const Node* profiles = meta == nullptr ? nullptr : meta->find("profile");
    if (profiles == nullptr || !profiles->is_array()) return applicable;
    Path m(*this, "meta");
    for (std::size_t i = 0; i < profiles->items().size(); ++i) {
      const Node& url = profiles->items()[i];
      if (!url.is_string()) continue;
      Path p(*this, "profile", i);
      check(url.text());
    }
    return applicable;
  }

  // Profiles ------------------------------------------------------------------------------------

  // One instance of an element in the JSON: the value, and for primitives the `_name` companion.
  struct Instance {
    const Node* value;
    const Node* extras;
    std::string_view json_name;
    std::size_t index;             // kNoIndex when the element does not repeat
    std::string_view choice_type;  // the [x] type of a choice element's instance
  };

  static std::string in_profile(const Profile& profile) { return " (profile " + profile.url + ")"; }

  static bool same_value(const std::shared_ptr<const ValueConstraint>& a,
                         const std::shared_ptr<const ValueConstraint>& b) {
    return a != nullptr && b != nullptr && a->value == b->value;
  }

  const TypeDef* instance_type(const ElementDef& base, const Instance& instance) const {
    const TypeDef* t = element_type(base, instance.choice_type);
    if (t != nullptr && t->kind == TypeDef::Kind::resource && instance.value != nullptr &&
        instance.value->is_object()) {
      const TypeDef* actual = model_.type(instance.value->string_at("resourceType"));
      if (actual != nullptr && actual->kind == TypeDef::Kind::resource) return actual;
    }
    return t;
  }

  std::vector<Instance> instances_of(const Node* object, const ElementDef& base,
                                     const TypeDef& parent) const {
    std::vector<Instance> out;
    if (object == nullptr || !object->is_object()) return out;
    if (!base.choice) {
      const Node* value = object->find(base.name);
      const Node* extras = underscore_member(*object, base.name);
      if (!base.is_array()) {
        if ((value != nullptr && value->is_array()) || (extras != nullptr && extras->is_array())) return out;
        if (value != nullptr || extras != nullptr) out.push_back({value, extras, base.name, kNoIndex, {}});
        return out;
      }
      if ((value != nullptr && !value->is_array()) || (extras != nullptr && !extras->is_array())) return out;
      const std::size_t count = std::max(node_count(value), node_count(extras));
      for (std::size_t i = 0; i < count; ++i) {
        const Node* v = value != nullptr && i < value->items().size() ? &value->items()[i] : nullptr;
        const Node* x = extras != nullptr && i < extras->items().size() ? &extras->items()[i] : nullptr;
        if (v != nullptr && v->is_null()) v = nullptr;
        if (x != nullptr && x->is_null()) x = nullptr;
        out.push_back({v, x, base.name, i, {}});
      }
      return out;
    }
    for (const auto& [key, value] : object->members()) {
      if (key.empty() || key[0] == '_') continue;
      std::string_view choice_type;
      if (parent.resolve(key, &choice_type) != &base) continue;
      out.push_back({&value, underscore_member(*object, key), key, kNoIndex, choice_type});
      break;
    }
    if (out.empty()) {
      for (const auto& [key, value] : object->members()) {
        if (key.size() < 2 || key[0] != '_') continue;
        std::string_view choice_type;
        if (parent.resolve(std::string_view(key).substr(1), &choice_type) != &base) continue;
        out.push_back({nullptr, &value, std::string_view(key).substr(1), kNoIndex, choice_type});
        break;
      }
    }
    return out;
  }

  void check_profile_item(const Profile& profile, const ProfileElement& pe, const Node* value,
                          const Node* extras, const TypeDef& type, const ElementDef* base,
                          const ResourceScope& scope, int depth) {
    if (stopped_ || !spend()) return;
    if (!pe.types.empty() && (base == nullptr || base->choice || type.kind == TypeDef::Kind::resource)) {
      const bool allowed = std::any_of(pe.types.begin(), pe.types.end(), [&](const TypeRef& t) {
        const bool code_ok = t.code == type.name || (type.kind == TypeDef::Kind::resource &&
                                                     (t.code == "Resource" || t.code == "DomainResource"));
        if (!code_ok) return false;
        bool core_profile = false;
        for (const std::string& url : t.profiles) {
          const std::string_view bare = strip_version(url);
          if (!bare.starts_with(kCoreProfilePrefix) || model_.type(last_segment(bare)) == nullptr) continue;
          if (last_segment(bare) == type.name) return true;
          core_profile = true;
        }
        return !core_profile;
      });
      if (!allowed) {
        std::string list;
        for (const TypeRef& t : pe.types) list += (list.empty() ? "" : ", ") + t.code;
        error("structure",
              "The type " + type.name + " is not allowed here (allowed: " + list + ")" + in_profile(profile));
        return;
      }
    }
    if (type.kind == TypeDef::Kind::primitive && (pe.min_length != 0 || !pe.value_alternatives.empty()))
      check_profile_primitive(profile, pe, value, extras);
    if (type.name == "Narrative" && value != nullptr && value->is_object() &&
        (!pe.narrative_source_control.empty() || !pe.narrative_languages.empty()))
      check_narrative_controls(profile, pe, *value, scope);
    if (pe.fixed != nullptr && (base == nullptr || !same_value(pe.fixed, base->fixed))) {
      if (value == nullptr) {
        error("value", "A value is required to match the fixed value " + write_json(pe.fixed->value) +
                           in_profile(profile));
      } else if (!exactly_matches(pe.fixed->value, *value)) {
        error("value", "The value does not match the fixed value " + write_json(pe.fixed->value) +
                           in_profile(profile));
      }
    }
    if (pe.pattern != nullptr && (base == nullptr || !same_value(pe.pattern, base->pattern))) {
      if (value == nullptr || !subset_matches(pe.pattern->value, *value)) {
        error("value",
              "The value does not match the pattern " + write_json(pe.pattern->value) + in_profile(profile));
      }
    }
    if (stopped_) return;
    if (options_.check_bindings && value != nullptr && pe.binding.strength != BindingStrength::none &&
        (base == nullptr || base->binding.value_set != pe.binding.value_set ||
         base->binding.strength != pe.binding.strength)) {
      if (type.kind == TypeDef::Kind::primitive) {
        if (type.name == "code" || type.name == "string" || type.name == "uri") {
          report_binding(pe.binding,
                         impl_.terminology->contains(pe.binding.value_set, std::string_view(), value->text()),
                         "The code '" + value->text() + "' is not", in_profile(profile));
        }
      } else if (value->is_object()) {
        check_coded(pe.binding, type, *value, in_profile(profile));
      }
    }
    if (type.name == "Reference" && value != nullptr && value->is_object() && base != nullptr &&
        std::any_of(pe.types.begin(), pe.types.end(),
                    [](const TypeRef& t) { return !t.target_profiles.empty(); })) {
      const bool narrowed = pe.types.size() != base->types.size() ||
                            !std::equal(pe.types.begin(), pe.types.end(), base->types.begin(),
                                        [](const TypeRef& a, const TypeRef& b) {
                                          return a.target_profiles == b.target_profiles;
                                        });
      if (narrowed) {
        ElementDef narrowed_def;
        narrowed_def.types = pe.types;
        check_reference(narrowed_def, *value);
      }
    }
    if (value != nullptr && type.kind == TypeDef::Kind::primitive && base != nullptr &&
        (pe.min_value != nullptr || pe.max_value != nullptr || pe.max_length != 0)) {
      ElementDef bounds;
      if (!same_value(pe.min_value, base->min_value)) bounds.min_value = pe.min_value;
      if (!same_value(pe.max_value, base->max_value)) bounds.max_value = pe.max_value;
      check_bounds(bounds, type.name, value->text());
      if (pe.max_length != 0 && pe.max_length != base->max_length &&
          code_points(value->text()) > pe.max_length) {
        error("value", "The value is longer than the maximum length " + std::to_string(pe.max_length) +
                           in_profile(profile));
      }
    }
    if (value != nullptr && type.name == "Quantity" && value->is_object() &&
        (pe.min_value != nullptr || pe.max_value != nullptr)) {
      const Node* quantity_value = value->find("value");
      if (quantity_value != nullptr && quantity_value->is_number()) {
        ElementDef bounds;
        for (const auto& [limit, target] :
             {std::pair{&pe.min_value, &bounds.min_value}, std::pair{&pe.max_value, &bounds.max_value}}) {
          if (*limit == nullptr) continue;
          const Node* limit_value = (*limit)->value.find("value");
          if (limit_value == nullptr) continue;
          auto made = std::make_shared<ValueConstraint>();
          made->type = "decimal";
          made->value = *limit_value;
          *target = std::move(made);
        }
        check_bounds(bounds, "decimal", quantity_value->text());
      }
    }
    if (options_.check_invariants && value != nullptr) {
      for (const ProfileConstraint& pc : pe.constraints) {
        if (stopped_) return;
        if (pc.compiled == nullptr || natively_checked(pc.constraint.key)) continue;
        const auto has_key = [&](const std::vector<Constraint>& list) {
          return std::any_of(list.begin(), list.end(), [&](const Constraint& c) {
            return c.key == pc.constraint.key && c.expression == pc.constraint.expression;
          });
        };
        if ((base != nullptr && has_key(base->constraints)) || has_key(type.constraints)) continue;
        evaluate_profile_constraint(profile, pc, *value, type.name, scope);
      }
    }
    if (depth < kMaxProfileDepth && value != nullptr)
      check_type_profiles(profile, pe, *value, extras, type, base, scope, depth);
    if (pe.children.empty() || stopped_) return;
    const Node* object = type.kind == TypeDef::Kind::primitive ? extras : value;
    const ResourceScope inner = type.kind == TypeDef::Kind::resource && value != nullptr && base != nullptr
                                    ? ResourceScope{value, type.name, scope.root, scope.root_type}
                                    : scope;
    for (const ProfileElement* child : pe.children) {
      if (stopped_) return;
      if (type.kind == TypeDef::Kind::primitive && child->name == "value") continue;
      check_profile_child(profile, *child, object, type, inner, depth);
    }
  }

  // The primitive rules a profile may add through extensions: minLength, and the R5 valueAlternatives
  // (a primitive without a value must carry one of the listed extensions instead).
  void check_profile_primitive(const Profile& profile, const ProfileElement& pe, const Node* value,
                               const Node* extras) {
    if (value == nullptr && !pe.value_alternatives.empty()) {
      const Node* extensions = extras == nullptr ? nullptr : extras->find("extension");
      const bool found =
          extensions != nullptr && extensions->is_array() &&
          std::any_of(extensions->items().begin(), extensions->items().end(), [&](const Node& e) {
            const std::string_view url = e.string_at("url");
            return std::find(pe.value_alternatives.begin(), pe.value_alternatives.end(), url) !=
                   pe.value_alternatives.end();
          });
      if (!found) {
        std::string list;
        for (const std::string& url : pe.value_alternatives) list += (list.empty() ? "" : ", ") + url;
        error("required",
              "Without a value, the element must carry one of the extensions " + list + in_profile(profile));
      }
    }
    if (value != nullptr && pe.min_length != 0 && code_points(value->text()) < pe.min_length) {
      error("value", "The value is shorter than the minimum length " + std::to_string(pe.min_length) +
                         in_profile(profile));
    }
  }

  // The narrative controls of a profile: each part directly inside the div says its source in its class,
  // and the narrative has a section (an element with lang) for each required language. The source
  // control's value is meant as the level of the issue, but the reference validator reports an error
  // whatever it says (its test profile says warning), and so does this.
  void check_narrative_controls(const Profile& profile, const ProfileElement& pe, const Node& narrative,
                                const ResourceScope& scope) {
    const Node* div = narrative.find("div");
    if (div == nullptr || !div->is_string()) return;
    const std::vector<NarrativePart> parts = narrative_parts(div->text());
    if (!pe.narrative_source_control.empty()) {
      for (const NarrativePart& part : parts) {
        if (part.element && has_source_class(part.css_class)) continue;
        error("business-rule", "The narrative part '" + part.excerpt +
                                   "' does not say its source (a class boilerplate, generated, original, "
                                   "extensions or additional)" +
                                   in_profile(profile));
      }
    }
    for (const std::string& language : pe.narrative_languages) {
      const std::string_view wanted = language == "_resource" ? scope.node->string_at("language") : language;
      if (wanted.empty()) continue;
      std::vector<std::string_view> found;
      for (const NarrativePart& part : parts) {
        if (!part.element || part.lang.empty()) continue;
        const std::string_view lang = part.lang;
        if (lang == wanted ||
            (lang.starts_with(wanted) && lang.size() > wanted.size() && lang[wanted.size()] == '-'))
          return;
        if (std::find(found.begin(), found.end(), lang) == found.end()) found.push_back(lang);
      }
      std::sort(found.begin(), found.end());
      std::string list;
      for (const std::string_view lang : found)
        list += std::string(list.empty() ? "" : ", ") + std::string(lang);
      error("business-rule",
            "The narrative has no section for the language " + std::string(wanted) +
                (list.empty() ? std::string(" (it has no language sections)") : " (found " + list + ")") +
                in_profile(profile));
    }
  }

  static bool has_source_class(std::string_view css_class) {
    while (!css_class.empty()) {
      const std::size_t space = css_class.find(' ');
      const std::string_view word = css_class.substr(0, space);
      if (word == "boilerplate" || word == "generated" || word == "original" || word == "extensions" ||
          word == "additional")
        return true;
      if (space == std::string_view::npos) break;
      css_class.remove_prefix(space + 1);
    }
    return false;
  }

  // A type profile to check an item against: a profile's root, or one element of it (a backbone
  // element profiled through the extension elementdefinition-profile-element).
  struct TypeProfile {
    const Profile* profile;
    const ProfileElement* element;
  };

  static const ProfileElement* element_by_id(const Profile& profile, std::string_view id) {
    for (const auto& element : profile.elements) {
      if (element->id == id) return element.get();
    }
    return nullptr;
  }

  static const ProfileElement* profile_element_for(const ProfileElement& pe, const Profile& typed) {
    for (const auto& [url, id] : pe.profile_elements) {
      if (strip_version(url) == typed.url) return element_by_id(typed, id);
    }
    return nullptr;
  }

  // An element's type profiles are alternatives: the item must conform to one of those for its type.
  // When one of them is not registered, none is checked.
  void check_type_profiles(const Profile& profile, const ProfileElement& pe, const Node& value,
                           const Node* extras, const TypeDef& type, const ElementDef* base,
                           const ResourceScope& scope, int depth) {
    std::vector<TypeProfile> candidates;
    for (const TypeRef& t : pe.types) {
      const bool backbone = type.kind == TypeDef::Kind::backbone && t.code == "BackboneElement";
      if (t.code != type.name && !backbone && !(type.kind == TypeDef::Kind::resource && t.code == "Resource"))
        continue;
      for (const std::string& url : t.profiles) {
        if (strip_version(url) == type.url) continue;
        const Profile* typed = impl_.profile(url);
        if (typed == nullptr) return;
        if (const ProfileElement* element = profile_element_for(pe, *typed); element != nullptr) {
          candidates.push_back({typed, element});
        } else if (typed != &profile && typed->type == type.name) {
          candidates.push_back({typed, &typed->root()});
        }
      }
    }
    if (candidates.empty()) return;
    if (candidates.size() == 1) {
      check_profile_item(*candidates.front().profile, *candidates.front().element, &value, extras, type, base,
                         scope, depth + 1);
      return;
    }
    std::string choices;
    for (const TypeProfile& candidate : candidates) {
      if (conforms(*candidate.profile, *candidate.element, value, extras, type, base, scope, depth + 1))
        return;
      choices += (choices.empty() ? "" : ", ") + candidate.profile->url;
    }
    error("structure", "The item conforms to none of the profiles " + choices + in_profile(profile));
    const std::size_t mark = issues_.size();
    for (const TypeProfile& candidate : candidates) {
      if (stopped_) return;
      check_profile_item(*candidate.profile, *candidate.element, &value, extras, type, base, scope,
                         depth + 1);
    }
    drop_repeated_issues(mark);
  }

  // Removes, from the issues after `mark`, those that repeat an earlier one of them at the same location
  // with the same text but for the profile named (the same failure found through several profiles).
  void drop_repeated_issues(std::size_t mark) {
    const auto bare = [](const std::string& diagnostics) {
      return std::string_view(diagnostics).substr(0, diagnostics.rfind(" (profile "));
    };
    std::vector<Issue> kept;
    for (std::size_t i = mark; i < issues_.size(); ++i) {
      const Issue& issue = issues_[i];
      const bool repeated = std::any_of(kept.begin(), kept.end(), [&](const Issue& k) {
        return k.expression == issue.expression && k.severity == issue.severity &&
               bare(k.diagnostics) == bare(issue.diagnostics);
      });
      if (!repeated) kept.push_back(std::move(issues_[i]));
    }
    issues_.resize(mark);
    for (Issue& issue : kept) issues_.push_back(std::move(issue));
  }

  // Does the item conform to the profile (or one element of it)? Checked on trial: the issues found are
  // discarded.
  bool conforms(const Profile& profile, const ProfileElement& element, const Node& value, const Node* extras,
                const TypeDef& type, const ElementDef* base, const ResourceScope& scope, int depth) {
    const std::size_t mark = issues_.size();
    const bool was_stopped = stopped_;
    check_profile_item(profile, element, &value, extras, type, base, scope, depth);
    const bool ok = std::none_of(issues_.begin() + static_cast<std::ptrdiff_t>(mark), issues_.end(),
                                 [](const Issue& i) { return i.severity == "error"; });
    issues_.resize(mark);
    stopped_ = was_stopped || over_budget_;
    return ok;
  }

  void check_profile_child(const Profile& profile, const ProfileElement& pe, const Node* object,
                           const TypeDef& parent, const ResourceScope& scope, int depth) {
    const ElementDef* base = parent.element(pe.name);
    if (base == nullptr) return;
    const std::vector<Instance> instances = instances_of(object, *base, parent);
    const std::size_t count = instances.size();
    if (count < pe.min && count >= base->min) {
      Path p(*this, pe.name);
      error("required", "Element '" + pe.id + "' requires at least " + std::to_string(pe.min) +
                            " item(s), but found " + std::to_string(count) + in_profile(profile));
    }
    if (count > pe.max && count <= base->max) {
      Path p(*this, pe.name);
      error("structure", "Element '" + pe.id + "' allows at most " + std::to_string(pe.max) +
                             " item(s), but found " + std::to_string(count) + in_profile(profile));
    }
    if (count == 0 && pe.slices.empty()) return;
    std::vector<std::vector<const ProfileElement*>> matched(count);
    std::vector<std::size_t> slice_counts(pe.slices.size(), 0);
    for (std::size_t i = 0; i < count && !stopped_; ++i) {
      const TypeDef* t = instance_type(*base, instances[i]);
      if (t == nullptr) continue;
      for (std::size_t s = 0; s < pe.slices.size(); ++s) {
        if (slice_matches(pe, *pe.slices[s], instances[i], *t, scope, depth)) {
          matched[i].push_back(pe.slices[s]);
          ++slice_counts[s];
        }
      }
      Path p(*this, instances[i].json_name, instances[i].index);
      if (pe.sliced && pe.rules == ProfileElement::Rules::closed && matched[i].empty() &&
          !pe.slices.empty()) {
        error("structure", "The item does not match any slice of '" + pe.path +
                               "' and the slicing is closed" + in_profile(profile));
      }
      check_profile_item(profile, pe, instances[i].value, instances[i].extras, *t, base, scope, depth);
      for (const ProfileElement* slice : matched[i]) {
        if (stopped_) return;
        check_profile_item(profile, *slice, instances[i].value, instances[i].extras, *t, base, scope, depth);
      }
    }
    for (std::size_t s = 0; s < pe.slices.size() && !stopped_; ++s) {
      const ProfileElement& slice = *pe.slices[s];
      if (slice_counts[s] < slice.min) {
        Path p(*this, pe.name);
        error("required", "Slice '" + slice.slice_name + "' requires at least " + std::to_string(slice.min) +
                              " item(s), but found " + std::to_string(slice_counts[s]) + in_profile(profile));
      } else if (slice_counts[s] > slice.max) {
        Path p(*this, pe.name);
        error("structure", "Slice '" + slice.slice_name + "' allows at most " + std::to_string(slice.max) +
                               " item(s), but found " + std::to_string(slice_counts[s]) +
                               in_profile(profile));
      }
    }
  }

  // The JSON nodes at a discriminator path below `start` (arrays flattened, choice names expanded).
  static void navigate(const Node& start, std::string_view segment, std::vector<const Node*>& out) {
    const auto add = [&](const Node& n) {
      if (n.is_array()) {
        for (const Node& item : n.items()) out.push_back(&item);
      } else {
        out.push_back(&n);
      }
    };
    if (!start.is_object()) return;
    if (segment.starts_with("extension(")) {
      const auto open = segment.find_first_of("'\"");
      const auto close = segment.find_last_of("'\"");
      if (open == std::string_view::npos || close <= open) return;
      const std::string_view url = segment.substr(open + 1, close - open - 1);
      const Node* extensions = start.find("extension");
      if (extensions == nullptr || !extensions->is_array()) return;
      for (const Node& e : extensions->items()) {
        if (e.string_at("url") == url) out.push_back(&e);
      }
      return;
    }
    if (const Node* exact = start.find(segment); exact != nullptr) {
      add(*exact);
      return;
    }
    for (const auto& [key, value] : start.members()) {
      if (key.size() > segment.size() && std::string_view(key).starts_with(segment) &&
          key[segment.size()] >= 'A' && key[segment.size()] <= 'Z') {
        add(value);
      }
    }
  }

  static const ProfileElement* child_named(const ProfileElement& parent, std::string_view name) {
    for (const ProfileElement* child : parent.children) {
      if (child->name == name) return child;
    }
    return nullptr;
  }

  bool slice_matches(const ProfileElement& sliced, const ProfileElement& slice, const Instance& instance,
                     const TypeDef& type, const ResourceScope& scope, int depth) {
    if (sliced.discriminators.empty()) return false;
    for (const Discriminator& d : sliced.discriminators) {
      if (!discriminator_matches(d, slice, instance, type, scope, depth)) return false;
    }
    return true;
  }

  bool discriminator_matches(const Discriminator& d, const ProfileElement& slice, const Instance& instance,
                             const TypeDef& type, const ResourceScope& scope, int depth) {
    std::string_view path = d.path;
    if (path.find("resolve()") != std::string_view::npos) return true;
    if (path.starts_with("$this")) path.remove_prefix(std::min<std::size_t>(path.size(), 6));
    const ProfileElement* target = &slice;
    std::vector<const Node*> nodes;
    if (instance.value != nullptr) nodes.push_back(instance.value);
    while (!path.empty()) {
      const auto dot = path.find('.');
      const std::string_view segment = path.substr(0, dot);
      path = dot == std::string_view::npos ? std::string_view() : path.substr(dot + 1);
      if (segment.starts_with("ofType(")) continue;
      std::vector<const Node*> next;
      for (const Node* n : nodes) navigate(*n, segment, next);
      nodes = std::move(next);
      if (target == nullptr) continue;
      if (segment.starts_with("extension(")) {
        const ProfileElement* extension = child_named(*target, "extension");
        const ProfileElement* found = nullptr;
        if (extension != nullptr) {
          for (const ProfileElement* s : extension->slices) {
            for (const TypeRef& t : s->types) {
              for (const std::string& url : t.profiles) {
                if (segment.find(url) != std::string_view::npos) found = s;
              }
            }
          }
        }
        target = found;
      } else {
        target = child_named(*target, segment);
      }
    }
    switch (d.kind) {
      case Discriminator::Kind::value:
      case Discriminator::Kind::pattern: {
        const ValueConstraint* expected = nullptr;
        if (target != nullptr)
          expected = target->fixed != nullptr ? target->fixed.get() : target->pattern.get();
        if (expected == nullptr && !slice.profile_elements.empty()) {
          if (const ProfileElement* typed = in_element_profile(slice, d.path); typed != nullptr) {
            target = typed;
            expected = target->fixed != nullptr ? target->fixed.get() : target->pattern.get();
          }
        }
        if (expected == nullptr) {
          if (d.path == "url" && !slice.types.empty() && !slice.types.front().profiles.empty()) {
            const std::string& url = slice.types.front().profiles.front();
            return std::any_of(nodes.begin(), nodes.end(), [&](const Node* n) { return n->text() == url; });
          }
          return true;
        }
        const bool exact = d.kind == Discriminator::Kind::value && target->fixed != nullptr;
        return std::any_of(nodes.begin(), nodes.end(), [&](const Node* n) {
          return exact ? exactly_matches(expected->value, *n) : subset_matches(expected->value, *n);
        });
      }
      case Discriminator::Kind::exists:
        if (target == nullptr) return true;
        if (target->min >= 1) return !nodes.empty();
        if (target->max == 0) return nodes.empty();
        return true;
      case Discriminator::Kind::type: {
        const ProfileElement* typed = target != nullptr ? target : &slice;
        if (typed->types.empty()) return true;
        std::string_view actual;
        if (d.path == "$this" || d.path.empty()) {
          actual = instance.choice_type.empty() ? std::string_view(type.name) : instance.choice_type;
        } else if (nodes.size() == 1 && nodes.front()->is_object()) {
          actual = nodes.front()->string_at("resourceType");
        }
        if (actual.empty()) return true;
        return std::any_of(typed->types.begin(), typed->types.end(),
                           [&](const TypeRef& t) { return t.code == actual; });
      }
      case Discriminator::Kind::profile: {
        if (target == nullptr || target->types.empty() || depth >= kMaxProfileDepth) return true;
        return std::any_of(nodes.begin(), nodes.end(), [&](const Node* n) {
          const TypeDef* actual = n->is_object() ? model_.type(n->string_at("resourceType")) : nullptr;
          if (actual == nullptr) actual = element_type_of(*target);
          if (actual == nullptr) return true;
          return std::any_of(target->types.begin(), target->types.end(), [&](const TypeRef& t) {
            if (t.code != actual->name && t.code != "Resource") return false;
            return std::all_of(t.profiles.begin(), t.profiles.end(), [&](const std::string& url) {
              const Profile* p = impl_.profile(url);
              return p == nullptr || p->type != actual->name ||
                     conforms(*p, p->root(), *n, nullptr, *actual, nullptr, scope, depth + 1);
            });
          });
        });
      }
    }
    return true;
  }

  // The element at a discriminator path inside the profile element a slice's type names (extension
  // elementdefinition-profile-element); null when there is none.
  const ProfileElement* in_element_profile(const ProfileElement& slice, std::string_view path) const {
    if (path.starts_with("$this")) path.remove_prefix(std::min<std::size_t>(path.size(), 6));
    for (const auto& [url, id] : slice.profile_elements) {
      const Profile* typed = impl_.profile(url);
      const ProfileElement* target = typed == nullptr ? nullptr : element_by_id(*typed, id);
      std::string_view rest = path;
      while (target != nullptr && !rest.empty()) {
        const auto dot = rest.find('.');
        const std::string_view segment = rest.substr(0, dot);
        rest = dot == std::string_view::npos ? std::string_view() : rest.substr(dot + 1);
        if (segment.starts_with("ofType(")) continue;
        target = segment.find('(') == std::string_view::npos ? child_named(*target, segment) : nullptr;
      }
      if (target != nullptr) return target;
    }
    return nullptr;
  }

  const TypeDef* element_type_of(const ProfileElement& pe) const {
    return pe.types.size() == 1 ? model_.type(pe.types.front().code) : nullptr;
  }

  void evaluate_profile_constraint(const Profile& profile, const ProfileConstraint& pc, const Node& focus,
                                   std::string_view focus_type, const ResourceScope& scope) {
    auto result = fhirpath::evaluate_boolean(*pc.compiled, focus, focus_type, eval_context(scope));
    if (!result && budget_.exceeded()) {
      over_budget();
      return;
    }
    if (!result) {
      const auto& issues = result.error().issues;
      report("information", "processing",
             "The constraint " + pc.constraint.key + " could not be evaluated: " +
                 (issues.empty() ? std::string("error") : issues.front().diagnostics) + in_profile(profile));
      return;
    }
    if (!result->has_value() || **result) return;
    report(pc.constraint.error ? "error" : "warning", "invariant",
           pc.constraint.key + ": " + pc.constraint.human + in_profile(profile));
  }

  // Objects: members and cardinality --------------------------------------------------------------

  static const Node* underscore_member(const Node& object, std::string_view name) {
    for (const auto& [key, value] : object.members()) {
      if (key.size() == name.size() + 1 && key[0] == '_' && std::string_view(key).substr(1) == name)
        return &value;
    }
    return nullptr;
  }

  const TypeDef* element_type(const ElementDef& def, std::string_view choice_type) const {
    if (!choice_type.empty()) return model_.type(choice_type);
    if (def.inline_type != nullptr) return def.inline_type;
    if (def.types.empty()) return nullptr;
    return model_.type(def.types.front().code);
  }

  void check_object(const Node& object, const TypeDef& type, const ResourceScope& scope, bool resource) {
    const ElementDef* seen_choices[8];
    std::size_t choice_count = 0;
    for (const auto& [key, value] : object.members()) {
      if (stopped_) return;
      if (resource && key == "resourceType") continue;
      const std::string_view name = key;
      if (!name.empty() && name[0] == '_') {
        std::string_view choice_type;
        const ElementDef* def = type.resolve(name.substr(1), &choice_type);
        const TypeDef* t = def == nullptr ? nullptr : element_type(*def, choice_type);
        if (t == nullptr || t->kind != TypeDef::Kind::primitive || def->xhtml) {
          Path p(*this, name);
          error("structure", "Unknown element '" + key + "'");
          continue;
        }
        if (object.find(name.substr(1)) == nullptr) {
          check_element(*def, *t, name.substr(1), nullptr, &value, scope);
        }
        continue;
      }
      std::string_view choice_type;
      const ElementDef* def = type.resolve(name, &choice_type);
      const TypeDef* t = def == nullptr ? nullptr : element_type(*def, choice_type);
      if (def == nullptr || t == nullptr) {
        Path p(*this, name);
        error("structure", "Unknown element '" + key + "'");
        continue;
      }
      if (!enclosing_.empty()) note_member(name, resource);
      if (def->choice) {
        const bool duplicate =
            std::find(seen_choices, seen_choices + choice_count, def) != seen_choices + choice_count;
        if (duplicate) {
          Path p(*this, name);
          error("structure", "Only one value is allowed for " + def->name + "[x]");
          continue;
        }
        if (choice_count < std::size(seen_choices)) seen_choices[choice_count++] = def;
      }
      const Node* extras = t->kind == TypeDef::Kind::primitive ? underscore_member(object, name) : nullptr;
      check_element(*def, *t, name, &value, extras, scope);
    }
    if (stopped_) return;
    for (const ElementDef& def : type.elements) {
      if (def.min == 0) continue;
      const std::size_t found = present_count(object, def, type);
      if (found < def.min) {
        Path p(*this, def.name);
        error("required", "Missing required element '" + def.name + (def.choice ? "[x]" : "") +
                              "': minimum required = " + std::to_string(def.min) + ", but only found " +
                              std::to_string(found));
        if (stopped_) return;
      }
    }
  }

  // Notes, for the resource rules, that the resource being walked has extensions or element ids.
  void note_member(std::string_view name, bool resource_level) {
    EnclosingResource& current = enclosing_.back();
    if (name == "extension" || name == "modifierExtension")
      current.has_extensions = true;
    else if (name == "id" && !resource_level)
      current.has_element_ids = true;
  }

  static std::size_t node_count(const Node* node) {
    if (node == nullptr) return 0;
    return node->is_array() ? node->items().size() : 1;
  }

  std::size_t present_count(const Node& object, const ElementDef& def, const TypeDef& type) const {
    if (!def.choice) {
      return std::max(node_count(object.find(def.name)), node_count(underscore_member(object, def.name)));
    }
    std::size_t found = 0;
    for (const auto& [key, value] : object.members()) {
      std::string_view name = key;
      if (!name.empty() && name[0] == '_') name.remove_prefix(1);
      if (name.starts_with(def.name) && type.resolve(name) == &def) found = std::max<std::size_t>(found, 1);
    }
    return found;
  }

  // One element (all its instances) --------------------------------------------------------------

  void check_element(const ElementDef& def, const TypeDef& type, std::string_view json_name,
                     const Node* value, const Node* extras, const ResourceScope& scope) {
    const bool repeating = def.is_array();
    const bool primitive = type.kind == TypeDef::Kind::primitive;
    for (const Node* node : {value, extras}) {
      if (node == nullptr) continue;
      if (node->is_array() && !repeating) {
        Path p(*this, node == extras ? "_" + std::string(json_name) : std::string(json_name));
        error("structure", "The element '" + std::string(json_name) +
                               "' is not repeating: an array is not allowed (max allowed = 1)");
        return;
      }
      if (!node->is_array() && repeating) {
        Path p(*this, node == extras ? "_" + std::string(json_name) : std::string(json_name));
        error("structure", "The element '" + std::string(json_name) + "' repeats: it must be a JSON array");
        return;
      }
      if (node->is_array() && node->items().empty()) {
        Path p(*this, json_name);
        error("structure", "An array must not be empty");
        return;
      }
    }
    if (value != nullptr && extras != nullptr && repeating &&
        value->items().size() != extras->items().size()) {
      Path p(*this, json_name);
      error("structure", "The arrays '" + std::string(json_name) + "' and '_" + std::string(json_name) +
                             "' must have the same length");
      return;
    }
    const std::size_t count = repeating ? std::max(node_count(value), node_count(extras)) : 1;
    if (count > def.max) {
      Path p(*this, json_name);
      error("structure", "Too many values for '" + std::string(json_name) + "': max allowed = " +
                             std::to_string(def.max) + ", but found " + std::to_string(count));
      if (stopped_) return;
    }
    for (std::size_t i = 0; i < count && !stopped_ && spend(); ++i) {
      const Node* item = value == nullptr ? nullptr : (repeating ? &value->items()[i] : value);
      const Node* item_extras = extras == nullptr ? nullptr : (repeating ? &extras->items()[i] : extras);
      Path p(*this, json_name, repeating ? i : kNoIndex);
      if (primitive) {
        check_primitive(def, type, item, item_extras, scope);
      } else if (item == nullptr || item->is_null()) {
        error("structure", "null is not a valid value of '" + std::string(json_name) + "'");
      } else if (type.kind == TypeDef::Kind::resource) {
        check_resource(*item, &scope, def.name == "contained");
      } else {
        check_complex(def, type, *item, scope);
      }
    }
  }

  // Primitives ----------------------------------------------------------------------------------

  void check_primitive(const ElementDef& def, const TypeDef& type, const Node* item, const Node* extras,
                       const ResourceScope& scope) {
    const bool has_value = item != nullptr && !item->is_null();
    const bool has_extras = extras != nullptr && !extras->is_null();
    if (!has_value && !has_extras) {
      error("structure", "A primitive element must have a value or extensions (null on both sides)");
      return;
    }
    if (has_extras) {
      if (!extras->is_object()) {
        error("structure", "The '_' member of a primitive must be an object");
      } else if (extras->find("value") != nullptr) {
        Path p(*this, "value");
        error("structure", "Unknown element 'value'");
      } else if (extras->members().empty() ||
                 (extras->members().size() == 1 && extras->find("id") != nullptr && !has_value)) {
        error("invariant", "ele-1: All FHIR elements must have a @value or children");
      } else {
        check_object(*extras, type, scope, false);
      }
      if (stopped_) return;
    }
    if (!has_value) {
      if (options_.check_bindings && def.binding.strength == BindingStrength::required &&
          type.name == "code" && impl_.terminology->knows_value_set(def.binding.value_set)) {
        if (const std::string_view alternative = cross_version_code(*extras); !alternative.empty()) {
          report("warning", "code-invalid",
                 "Though a code is required, no code has been provided; instead, an alternative code '" +
                     std::string(alternative) + "' is provided in a cross-version extension");
        } else {
          error("code-invalid",
                "No code provided, and a code is required from the value set " + def.binding.value_set);
        }
      }
      return;
    }
    if (def.xhtml) {
      check_xhtml(*item);
      return;
    }
    const JsonPrimitive expected = Model::json_primitive(type.name);
    const bool kind_ok = (expected == JsonPrimitive::string && item->is_string()) ||
                         (expected == JsonPrimitive::number && item->is_number()) ||
                         (expected == JsonPrimitive::boolean && item->is_bool());
    if (!kind_ok) {
      const char* want = expected == JsonPrimitive::string
                             ? "a JSON string"
                             : (expected == JsonPrimitive::number ? "a JSON number" : "a JSON boolean");
      error("structure", "The value of a " + type.name + " must be " + std::string(want));
      return;
    }
    const std::string& text = item->text();
    if (text.empty()) {
      error("value", "A primitive value cannot be empty");
      return;
    }
    if (!lexically_valid(type, text)) {
      error("value", "The value '" + text + "' is not a valid " + type.name);
      return;
    }
    if (def.max_length != 0 && code_points(text) > def.max_length) {
      error("value", "The value is longer than the maximum length " + std::to_string(def.max_length));
    }
    check_bounds(def, type.name, text);
    check_fixed_pattern(def, *item);
    if (options_.check_bindings && def.binding.strength != BindingStrength::none &&
        (type.name == "code" || type.name == "string" || type.name == "uri")) {
      const Terminology::Answer answer =
          impl_.terminology->contains(def.binding.value_set, std::string_view(), text);
      report_binding(def.binding, answer, "The code '" + text + "' is not");
    }
    if (!def.constraints.empty()) check_invariants(&def.constraints, nullptr, *item, type.name, scope);
  }

  bool lexically_valid(const TypeDef& type, std::string_view text) const {
    if (const auto native = valid_primitive(type.name, text); native.has_value()) return *native;
    const auto it = impl_.other_regexes.find(type.name);
    return it == impl_.other_regexes.end() || it->second.full_match(text);
  }

  void check_xhtml(const Node& item) {
    if (!item.is_string()) {
      error("structure", "The narrative div must be a JSON string");
      return;
    }
    std::string_view div = item.text();
    while (!div.empty() &&
           (div.front() == ' ' || div.front() == '\n' || div.front() == '\r' || div.front() == '\t'))
      div.remove_prefix(1);
    if (!div.starts_with("<div")) {
      error("value", "The narrative must be an XHTML div element");
      return;
    }
    const std::string_view tag = div.substr(0, div.find('>'));
    const auto xmlns = tag.find("xmlns=");
    if (xmlns == std::string_view::npos || xmlns + 35 > tag.size() ||
        tag.substr(xmlns + 7, 28) != "http://www.w3.org/1999/xhtml" ||
        (tag[xmlns + 6] != '"' && tag[xmlns + 6] != '\'')) {
      error("value",
            "The narrative div must be in the XHTML namespace (xmlns=\"http://www.w3.org/1999/xhtml\")");
    }
  }

  void check_bounds(const ElementDef& def, std::string_view type, std::string_view text) {
    if (def.min_value != nullptr) {
      const auto order = compare_values(type, text, def.min_value->value.text());
      if (order && *order < 0)
        error("value",
              "The value " + std::string(text) + " is below the minimum " + def.min_value->value.text());
    }
    if (def.max_value != nullptr) {
      const auto order = compare_values(type, text, def.max_value->value.text());
      if (order && *order > 0)
        error("value",
              "The value " + std::string(text) + " is above the maximum " + def.max_value->value.text());
    }
  }

  void check_fixed_pattern(const ElementDef& def, const Node& item) {
    if (def.fixed != nullptr && !exactly_matches(def.fixed->value, item)) {
      error("value", "The value does not match the fixed value " + write_json(def.fixed->value));
    }
    if (def.pattern != nullptr && !subset_matches(def.pattern->value, item)) {
      error("value", "The value does not match the pattern " + write_json(def.pattern->value));
    }
  }

  // Complex types -------------------------------------------------------------------------------

  void check_complex(const ElementDef& def, const TypeDef& type, const Node& item,
                     const ResourceScope& scope) {
    if (!item.is_object()) {
      error("structure", "The value of a " + type.name + " must be a JSON object");
      return;
    }
    if (item.members().empty() || (item.members().size() == 1 && item.find("id") != nullptr)) {
      error("invariant", "ele-1: All FHIR elements must have a @value or children");
      return;
    }
    check_object(item, type, scope, false);
    if (stopped_) return;
    if (type.name == "Extension") {
      const bool has_extensions = item.find("extension") != nullptr;
      const bool has_value = std::any_of(
          item.members().begin(), item.members().end(),
          [](const Node::Member& m) { return m.first.size() > 5 && m.first.starts_with("value"); });
      if (has_extensions == has_value) {
        error("invariant", "ext-1: Must have either extensions or value[x], not both");
      }
    } else if (type.name == "Reference") {
      check_reference(def, item);
      collect_reference(def, item);
    } else if (type.name == "Coding" && options_.check_bindings) {
      check_coding(item);
    }
    if (options_.check_bindings && def.binding.strength != BindingStrength::none)
      check_coded(def.binding, type, item);
    check_fixed_pattern(def, item);
    check_invariants(&def.constraints, type.kind == TypeDef::Kind::backbone ? nullptr : &type.constraints,
                     item, type.name, scope);
  }

  // Keeps a Reference for the rules that resolve references inside a Bundle or Parameters (SeenReference).
  void collect_reference(const ElementDef& def, const Node& item) {
    if (!std::any_of(enclosing_.begin(), enclosing_.end(),
                     [](const EnclosingResource& e) { return e.type == "Bundle" || e.type == "Parameters"; }))
      return;
    const std::string_view reference = item.string_at("reference");
    if (reference.empty()) return;
    references_.push_back(SeenReference{enclosing_.back().node, reference_paths_.size(), path_.size(),
                                        reference, item.string_at("type"), &def});
    reference_paths_.append(path_);
  }

  void check_reference(const ElementDef& def, const Node& item) {
    const Node* reference = item.find("reference");
    if (reference == nullptr || !reference->is_string()) return;
    const std::string_view text = reference->text();
    if (text.find_first_of(" \t\r\n") != std::string_view::npos) {
      Path p(*this, "reference");
      error("structure", "The reference '" + std::string(text) +
                             "' is not a valid reference (a URL, relative or absolute, has no white space)");
      return;
    }
    if (text.empty() || text.starts_with('#') || text.starts_with("urn:") ||
        text.find('?') != std::string_view::npos)
      return;
    const auto colon = text.find(':');
    const bool absolute =
        colon != std::string_view::npos && colon < text.find('/');  // a scheme: http:, resource:
    std::vector<std::string_view> segments;
    std::size_t start = 0;
    while (start <= text.size()) {
      const auto slash = text.find('/', start);
      const auto end = slash == std::string_view::npos ? text.size() : slash;
      segments.push_back(text.substr(start, end - start));
      if (slash == std::string_view::npos) break;
      start = slash + 1;
    }
    std::string_view target;
    if (segments.size() >= 4 && segments[segments.size() - 2] == "_history") {
      target = segments[segments.size() - 4];
    } else if (segments.size() >= 2) {
      target = segments[segments.size() - 2];
    }
    if (!model_.is_resource(target)) {
      if (absolute) return;
      Path p(*this, "reference");
      // No '/' at all: not a relative reference (Type/id) but a bare id, which no rule resolves.
      report(segments.size() == 1 ? "error" : "warning", "structure",
             "The reference '" + std::string(text) + "' is not of the form Type/id with a known type");
      return;
    }
    if (!options_.check_reference_types) return;
    std::vector<std::string_view> allowed;
    for (const TypeRef& ref : def.types) {
      if (ref.code != "Reference") continue;
      for (const std::string& profile : ref.target_profiles) {
        const std::string_view name = last_segment(profile);
        if (name == "Resource" || !std::string_view(profile).starts_with(kCoreProfilePrefix) ||
            model_.type(name) == nullptr) {
          return;
        }
        allowed.push_back(name);
      }
    }
    if (allowed.empty() || std::find(allowed.begin(), allowed.end(), target) != allowed.end()) return;
    std::string list;
    for (const std::string_view name : allowed) {
      if (!list.empty()) list += ", ";
      list += name;
    }
    Path p(*this, "reference");
    error("structure", "The type '" + std::string(target) + "' of the reference '" + std::string(text) +
                           "' is not a valid target for this element (must be one of " + list + ")");
  }

  // The code a cross-version extension (http://hl7.org/fhir/<version>/StructureDefinition/extension-...)
  // gives in place of a missing primitive code, if any.
  static std::string_view cross_version_code(const Node& extras) {
    const Node* extensions = extras.find("extension");
    if (extensions == nullptr) return {};
    for (const Node& x : extensions->items()) {
      std::string_view url = x.string_at("url");
      constexpr std::string_view kPrefix = "http://hl7.org/fhir/";
      if (!url.starts_with(kPrefix)) continue;
      url.remove_prefix(kPrefix.size());
      const auto slash = url.find('/');
      if (slash == std::string_view::npos || slash == 0 || !(url[0] >= '0' && url[0] <= '9') ||
          !url.substr(slash).starts_with("/StructureDefinition/extension-"))
        continue;
      if (const std::string_view code = x.string_at("valueCode"); !code.empty()) return code;
    }
    return {};
  }

  // Codings -------------------------------------------------------------------------------------

  // Coding.system names a code system: absolute, not a value set, not a supplement; and the code is one
  // the code system defines, where that can be known without a terminology server (where it cannot, one
  // warning per code system says so).
  // What a Coding.system is, decided once per system and validation (a Bundle repeats a few systems in
  // thousands of Codings).
  enum class SystemKind : std::uint8_t { code_system, unknown, relative, supplement, value_set };

  SystemKind system_kind(std::string_view system) {
    for (const auto& [seen, kind] : system_kinds_)
      if (seen == system) return kind;
    const Terminology& terminology = *impl_.terminology;
    SystemKind kind = SystemKind::code_system;
    if (!terminology.knows_code_system(system)) {
      kind = !is_absolute_url(system)              ? SystemKind::relative
             : terminology.is_supplement(system)   ? SystemKind::supplement
             : terminology.knows_value_set(system) ? SystemKind::value_set
                                                   : SystemKind::unknown;
    }
    system_kinds_.emplace_back(system, kind);
    return kind;
  }

  void check_coding(const Node& coding) {
    const std::string_view system = coding.string_at("system");
    if (system.empty()) return;
    const Terminology& terminology = *impl_.terminology;
    const std::string_view code = coding.string_at("code");
    switch (system_kind(system)) {
      case SystemKind::code_system:
      case SystemKind::unknown:
        break;
      case SystemKind::relative: {
        Path p(*this, "system");
        error("code-invalid", "Coding.system must be an absolute reference, not a local reference");
        return;
      }
      case SystemKind::supplement: {
        Path p(*this, "system");
        error("code-invalid", "CodeSystem " + std::string(system) +
                                  " is a supplement, so can't be used as a value in Coding.system");
        return;
      }
      case SystemKind::value_set: {
        Path p(*this, "system");
        error("code-invalid",
              "The Coding references a value set, not a code system ('" + std::string(system) + "')");
        return;
      }
    }
    if (code.empty()) return;
    const Terminology::Answer answer = terminology.defines(system, code);
    if (answer == Terminology::Answer::not_member) {
      Path p(*this, "code");
      std::string message =
          "Unknown code '" + std::string(code) + "' in the CodeSystem '" + std::string(system) + "'";
      if (const std::string_view rule = Terminology::syntax_rule(system); !rule.empty())
        message += " (" + std::string(rule) + ")";
      error("code-invalid", std::move(message));
    } else if (answer == Terminology::Answer::unknown &&
               std::find(unchecked_systems_.begin(), unchecked_systems_.end(), system) ==
                   unchecked_systems_.end()) {
      unchecked_systems_.emplace_back(system);
      Path p(*this, "system");
      report("warning", "not-supported",
             terminology.knows_code_system(system)
                 ? "The content of CodeSystem '" + std::string(system) +
                       "' is not available here, so its codes (here '" + std::string(code) +
                       "') cannot be validated (cannot check: needs a terminology server)"
                 : "A definition for CodeSystem '" + std::string(system) +
                       "' could not be found, so its codes cannot be validated (cannot check: needs a "
                       "terminology server)");
    }
  }

  // Bindings ------------------------------------------------------------------------------------

  Terminology::Answer coding_answer(const Binding& binding, const Node& coding) const {
    const std::string_view code = coding.string_at("code");
    if (code.empty()) return Terminology::Answer::unknown;
    return impl_.terminology->contains(binding.value_set, coding.string_at("system"), code);
  }

  void check_coded(const Binding& binding, const TypeDef& type, const Node& item,
                   std::string_view suffix = {}) {
    if (type.name == "Coding" || type.name == "Quantity") {
      if (type.name == "Quantity" && item.string_at("system").empty()) return;
      report_binding(binding, coding_answer(binding, item),
                     "The code '" + std::string(item.string_at("code")) + "' is not", suffix);
      return;
    }
    if (type.name != "CodeableConcept") return;
    const Node* codings = item.find("coding");
    if (codings == nullptr || !codings->is_array() || codings->items().empty()) {
      if (binding.strength == BindingStrength::required &&
          impl_.terminology->knows_value_set(binding.value_set)) {
        report_binding(binding, Terminology::Answer::not_member, "A concept with no coding is not", suffix);
      }
      return;
    }
    Terminology::Answer overall = Terminology::Answer::unknown;
    std::string first_code;
    for (const Node& coding : codings->items()) {
      const Terminology::Answer answer = coding_answer(binding, coding);
      if (answer == Terminology::Answer::member) return;
      if (answer == Terminology::Answer::not_member && overall == Terminology::Answer::unknown) {
        overall = answer;
        first_code = coding.string_at("code");
      }
    }
    report_binding(binding, overall, "No coding (e.g. '" + first_code + "') is", suffix);
  }

  void report_binding(const Binding& binding, Terminology::Answer answer, std::string subject,
                      std::string_view suffix = {}) {
    if (answer != Terminology::Answer::not_member) return;
    const char* severity = nullptr;
    const char* strength = nullptr;
    switch (binding.strength) {
      case BindingStrength::required:
        severity = "error";
        strength = "required";
        break;
      case BindingStrength::extensible:
        severity = "warning";
        strength = "extensible";
        break;
      case BindingStrength::preferred:
        severity = "information";
        strength = "preferred";
        break;
      case BindingStrength::example:
      case BindingStrength::none:
        return;
    }
    report(severity, "code-invalid",
           std::move(subject) + " in the value set " + binding.value_set + " (" + strength + " binding)" +
               std::string(suffix));
  }

  // Invariants ----------------------------------------------------------------------------------

  void check_invariants(const std::vector<Constraint>* element, const std::vector<Constraint>* type,
                        const Node& focus, std::string_view focus_type, const ResourceScope& scope) {
    if (!options_.check_invariants) return;
    if (element != nullptr) {
      for (const Constraint& c : *element) {
        if (stopped_) return;
        evaluate(c, focus, focus_type, scope);
      }
    }
    if (type == nullptr) return;
    for (const Constraint& c : *type) {
      if (stopped_) return;
      if (element != nullptr &&
          std::any_of(element->begin(), element->end(), [&](const Constraint& e) { return e.key == c.key; }))
        continue;
      evaluate(c, focus, focus_type, scope);
    }
  }

  fhirpath::EvalContext eval_context(const ResourceScope& scope) {
    fhirpath::EvalContext context{model_, scope.node, scope.type, scope.root, scope.root_type};
    context.budget = &budget_;
    return context;
  }

  void evaluate(const Constraint& c, const Node& focus, std::string_view focus_type,
                const ResourceScope& scope) {
    if (natively_checked(c.key)) return;
    const auto& compiled = impl_.compiled[c.expression_id];
    if (compiled == nullptr) return;
    auto result = fhirpath::evaluate_boolean(*compiled, focus, focus_type, eval_context(scope));
    if (!result && budget_.exceeded()) {
      over_budget();
      return;
    }
    if (!result) {
      const auto& issues = result.error().issues;
      report("information", "processing",
             "The constraint " + c.key + " could not be evaluated: " +
                 (issues.empty() ? std::string("error") : issues.front().diagnostics));
      return;
    }
    if (!result->has_value() || **result) return;
    report(c.error ? "error" : "warning", "invariant", c.key + ": " + c.human);
  }

  const ValidatorState& impl_;
  const Model& model_;
  const ValidationOptions& options_;
  std::vector<Issue>& issues_;
  std::string path_;
  std::vector<EnclosingResource> enclosing_;  // the resources around the one being walked, outermost first
  std::vector<SeenReference> references_;     // see collect_reference()
  std::string reference_paths_;
  bool stopped_ = false;
  Budget budget_;
  bool over_budget_ = false;
  bool too_many_issues_ = false;
  std::size_t unlisted_ = 0;    // warnings and information left out past ValidationOptions::max_issues
  std::string too_many_at_;     // where the issue list filled up
  std::string over_budget_at_;  // the location where the budget ran out
  // Code systems already reported as not checkable here (one warning per system and validation).
  std::vector<std::string> unchecked_systems_;
  std::vector<std::pair<std::string_view, SystemKind>> system_kinds_;  // see system_kind()
};

}  // namespace

struct Validator::Impl : ValidatorState {};

bool ValidationResult::has_errors() const {
  return std::any_of(issues.begin(), issues.end(),
                     [](const Issue& i) { return i.severity == "error" || i.severity == "fatal"; });
}

Validator::Validator(std::shared_ptr<const Model> model, std::shared_ptr<const Terminology> terminology)
    : impl_(std::make_unique<Impl>()) {
  impl_->model = std::move(model);
  impl_->terminology = std::move(terminology);
  impl_->validator = this;
  const auto& expressions = impl_->model->expressions();
  impl_->compiled.reserve(expressions.size());
  for (const std::string& expression : expressions) {
    auto compiled = fhirpath::compile(expression);
    impl_->compiled.push_back(compiled ? *compiled : nullptr);
  }
  for (const TypeDef* type : impl_->model->types()) {
    if (type->kind != TypeDef::Kind::primitive || type->regex.empty()) continue;
    if (valid_primitive(type->name, "x").has_value()) continue;
    auto regex = Regex::compile(type->regex);
    if (regex) impl_->other_regexes.emplace(type->name, std::move(regex).value());
  }
}

Validator::~Validator() = default;

std::size_t Validator::uncompiled_constraints() const {
  return static_cast<std::size_t>(std::count(impl_->compiled.begin(), impl_->compiled.end(), nullptr));
}

Status Validator::add_profile(const Node& structure_definition) {
  const std::string_view url = structure_definition.string_at("url");
  if (structure_definition.string_at("resourceType") != "StructureDefinition" || url.empty()) {
    return Error::make(ErrorCode::invalid_input, "a profile must be a StructureDefinition with a url");
  }
  const std::string_view derivation = structure_definition.string_at("derivation");
  const std::string_view base = structure_definition.string_at("baseDefinition");
  const bool constraint = derivation == "constraint" ||
                          (!base.empty() && last_segment(base) == structure_definition.string_at("type"));
  if (!constraint) {
    return Error::make(ErrorCode::invalid_input,
                       "the StructureDefinition " + std::string(url) +
                           " is not a constraint profile (derivation = constraint)");
  }
  const Node* snapshot = structure_definition.find("snapshot");
  const Node* elements = snapshot == nullptr ? nullptr : snapshot->find("element");
  Result<std::shared_ptr<const Profile>> compiled = [&]() -> Result<std::shared_ptr<const Profile>> {
    if (elements != nullptr && elements->is_array() && !elements->items().empty()) {
      return compile_profile(*impl_->model, structure_definition);
    }
    auto generated = generate_snapshot(structure_definition);
    if (!generated) return std::move(generated).error();
    return compile_profile(*impl_->model, *generated);
  }();
  if (!compiled) return std::move(compiled).error();
  impl_->profiles[std::string(url)] = std::move(*compiled);
  return Ok{};
}

Status Validator::add_resource(const Node& resource) {
  if (!resource.is_object()) return Error::make(ErrorCode::invalid_input, "expected a resource");
  const std::string_view type = resource.string_at("resourceType");
  if (type == "Bundle") {
    const Node* entries = resource.find("entry");
    if (entries != nullptr) {
      for (const Node& entry : entries->items()) {
        const Node* inner = entry.find("resource");
        if (inner == nullptr || !inner->is_object()) continue;
        if (auto added = add_resource(*inner); !added) return added;
      }
    }
    return Ok{};
  }
  if (type.empty()) return Error::make(ErrorCode::invalid_input, "the resource has no resourceType");
  impl_->definitions.add(resource);
  if (type == "ValueSet" || type == "CodeSystem") {
    if (impl_->own_terminology == nullptr) {
      impl_->own_terminology = impl_->terminology->copy();
      impl_->terminology = impl_->own_terminology;
    }
    return impl_->own_terminology->add(resource);
  }
  if (type == "ImplementationGuide") {
    if (const Node* global = resource.find("global"); global != nullptr && global->is_array()) {
      for (const Node& entry : global->items()) {
        const std::string_view on = entry.string_at("type");
        const std::string_view profile = entry.string_at("profile");
        if (!on.empty() && !profile.empty()) impl_->global_profiles[std::string(on)].emplace_back(profile);
      }
    }
    return Ok{};
  }
  if (type != "StructureDefinition") return Ok{};
  // Constraint profiles are compiled; their bases may come later, so those wait until they do. Other
  // StructureDefinitions (logical models, specialisations) are kept as definitions only. A definition
  // that says specialization but keeps its base's type is a profile all the same (a new type would
  // need a new name).
  const std::string_view derivation = resource.string_at("derivation");
  if (resource.string_at("kind") == "logical") return Ok{};
  if (derivation == "specialization" &&
      last_segment(resource.string_at("baseDefinition")) != resource.string_at("type"))
    return Ok{};
  if (auto added = add_profile(resource); !added) {
    impl_->pending_profiles.push_back({resource, added.error().issues.front().diagnostics});
    return Ok{};
  }
  bool progress = true;
  while (progress && !impl_->pending_profiles.empty()) {
    progress = false;
    std::vector<ValidatorState::PendingProfile> waiting;
    for (auto& pending : impl_->pending_profiles) {
      if (auto added = add_profile(pending.definition); added) {
        progress = true;
      } else {
        pending.problem = added.error().issues.front().diagnostics;
        waiting.push_back(std::move(pending));
      }
    }
    impl_->pending_profiles = std::move(waiting);
  }
  return Ok{};
}

std::vector<Issue> Validator::unresolved_definitions() const {
  std::vector<Issue> issues;
  for (const auto& pending : impl_->pending_profiles) {
    Issue issue;
    issue.severity = "warning";
    issue.code = "not-supported";
    issue.diagnostics = "The profile " + std::string(pending.definition.string_at("url")) +
                        " could not be used: " + pending.problem;
    issues.push_back(std::move(issue));
  }
  return issues;
}

const Definitions& Validator::definitions() const {
  return impl_->definitions;
}

bool Validator::knows_profile(std::string_view url) const {
  return impl_->profile(url) != nullptr;
}

Result<Node> Validator::generate_snapshot(const Node& structure_definition) const {
  return fhir::generate_snapshot(*impl_->model, structure_definition,
                                 [this](std::string_view url) -> const Node* {
                                   const Profile* profile = impl_->profile(url);
                                   return profile == nullptr ? nullptr : &profile->snapshot;
                                 });
}

ValidationResult Validator::validate(const Node& resource, const ValidationOptions& options) const {
  ValidationResult result;
  result.budget_exceeded = !Run(*impl_, options, result.issues).validate(resource);
  return result;
}

}  // namespace fhirgate::fhir
