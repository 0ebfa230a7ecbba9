// Rules on Measure and MeasureReport (https://hl7.org/fhir/R4/measure.html,
// https://hl7.org/fhir/R4/measurereport.html), as the reference validator applies them:
// - a Measure's libraries are absolute canonicals; a stratifier's CQL criteria need a Library to live
//   in (one, or the one the expression's `Library.` prefix names);
// - a MeasureReport is checked against its Measure (MeasureReport.measure, found among the loaded
//   definitions or the report's contained resources): its groups, their populations and stratifiers
//   match the Measure's by code (a single group on both sides may be anonymous), none twice, none of
//   the Measure's missing (a data-collection report may omit groups); a report that is not a
//   subject-list lists no subjects and gives counts; the measureScore follows Measure.scoring (none for
//   cohort or data-collection; required for proportion, ratio and continuous-variable on a complete
//   report; a proportion is a unitless number from 0 to 1); a report's improvementNotation is its
//   Measure's (warning).
// Nothing is checked when the Measure is not available (a warning says so).
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "fhir/validator_terminology.hpp"

namespace fhirgate::fhir {
namespace {

constexpr std::string_view kMeasurePopulation = "http://terminology.hl7.org/CodeSystem/measure-population";

std::string index_path(std::string_view name, std::size_t i) {
  return std::string(name) + "[" + std::to_string(i) + "]";
}

const std::vector<Node>& items_of(const Node& parent, std::string_view name) {
  static const std::vector<Node> kNone;
  const Node* list = parent.find(name);
  return list != nullptr && list->is_array() ? list->items() : kNone;
}

bool has_coding(const Node& concept_node, std::string_view system, std::string_view code) {
  for (const Node& c : items_of(concept_node, "coding")) {
    if (c.string_at("system") == system && c.string_at("code") == code) return true;
  }
  return false;
}

// Do two CodeableConcepts name the same thing: a coding in common, or (neither having codings) the
// same text?
bool same_concept(const Node* a, const Node* b) {
  if (a == nullptr || b == nullptr) return false;
  const auto& codings = items_of(*b, "coding");
  for (const Node& c : codings) {
    if (has_coding(*a, c.string_at("system"), c.string_at("code"))) return true;
  }
  if (codings.empty() && items_of(*a, "coding").empty()) {
    const std::string_view text = a->string_at("text");
    return !text.empty() && text == b->string_at("text");
  }
  return false;
}

std::string describe(const Node* concept_node) {
  if (concept_node == nullptr) return {};
  if (const std::string_view text = concept_node->string_at("text"); !text.empty()) return std::string(text);
  for (const Node& c : items_of(*concept_node, "coding")) {
    if (const std::string_view display = c.string_at("display"); !display.empty())
      return std::string(display);
    if (const std::string_view code = c.string_at("code"); !code.empty()) return std::string(code);
  }
  return {};
}

// Measure --------------------------------------------------------------------------------------------

void check_criteria(RuleContext& ctx, const Node& criteria, const std::vector<const Node*>& libraries,
                    const std::string& at) {
  const std::string_view language = criteria.string_at("language");
  if (language.empty()) return;
  if (language != "text/cql" && language != "text/cql.identifier") {
    ctx.warning(
        "not-supported",
        "The expression language '" + std::string(language) + "' is not supported, so can't be validated",
        at);
    return;
  }
  if (libraries.empty()) {
    ctx.error("invalid", "No CQL Libraries found on this Measure", at);
    return;
  }
  const std::string_view expression = criteria.string_at("expression");
  const auto dot = expression.find('.');
  if (dot == std::string_view::npos) {
    if (libraries.size() != 1) {
      ctx.error("invalid",
                "This Measure has more than one CQL library, so the expression '" + std::string(expression) +
                    "' must name its library ('Library.expression')",
                at);
    }
    return;
  }
  const std::string_view name = expression.substr(0, dot);
  int found = 0;
  for (const Node* library : libraries) {
    if (library->string_at("name") == name) ++found;
  }
  if (found == 0) {
    ctx.error("invalid", "No matching Library found for the namespace '" + std::string(name) + "'", at);
  } else if (found > 1) {
    ctx.error("invalid", "More than one Library on this Measure has the name '" + std::string(name) + "'",
              at);
  }
}

void check_measure_definition(RuleContext& ctx) {
  check_canonical_url(ctx);
  std::vector<const Node*> libraries;
  const auto& library_refs = items_of(ctx.resource, "library");
  for (std::size_t i = 0; i < library_refs.size(); ++i) {
    const Node& ref = library_refs[i];
    if (!ref.is_string() || ref.text().empty()) continue;
    const std::string& url = ref.text();
    if (!url.starts_with('#') && !is_absolute_url(url)) {
      ctx.error("invalid",
                "Canonical URLs must be absolute URLs if they are not fragment references (" + url + ")",
                index_path("library", i));
    }
    if (const Node* library = ctx.definitions.find(url, "Library")) {
      libraries.push_back(library);
    } else {
      ctx.information("not-found", "The Library " + url +
                                       " could not be resolved, so expression validation may not be correct");
    }
  }
  const auto& groups = items_of(ctx.resource, "group");
  for (std::size_t g = 0; g < groups.size(); ++g) {
    const auto& stratifiers = items_of(groups[g], "stratifier");
    for (std::size_t s = 0; s < stratifiers.size(); ++s) {
      const std::string at = index_path("group", g) + "." + index_path("stratifier", s);
      if (const Node* criteria = stratifiers[s].find("criteria"); criteria && criteria->is_object()) {
        check_criteria(ctx, *criteria, libraries, at + ".criteria");
      }
      const auto& components = items_of(stratifiers[s], "component");
      for (std::size_t c = 0; c < components.size(); ++c) {
        if (const Node* criteria = components[c].find("criteria"); criteria && criteria->is_object()) {
          check_criteria(ctx, *criteria, libraries, at + "." + index_path("component", c) + ".criteria");
        }
      }
    }
  }
}

// MeasureReport ----------------------------------------------------------------------------------------

struct ReportScope {
  std::string_view scoring;  // Measure.scoring's code
  std::string_view report_type;
  bool complete;
};

// Matches each of the report group's `name` items (populations, stratifiers) to one of the measure
// group's by code; reports unknown, duplicate and missing ones. `at` is the report group's location.
template <typename Each>
void match_parts(RuleContext& ctx, const Node& report_group, const Node& measure_group, std::string_view name,
                 const std::string& at, std::string_view unknown_message, std::string_view missing_kind,
                 bool skip_observations, Each&& each) {
  const auto& defined = items_of(measure_group, name);
  std::vector<bool> seen(defined.size(), false);
  const auto& reported = items_of(report_group, name);
  for (std::size_t i = 0; i < reported.size(); ++i) {
    const std::string here = at + "." + index_path(name, i);
    // MeasureReport.group.stratifier.code repeats (0..*); population.code does not.
    std::vector<const Node*> codes;
    if (const Node* code = reported[i].find("code"); code != nullptr && code->is_array()) {
      for (const Node& c : code->items()) codes.push_back(&c);
    } else if (code != nullptr) {
      codes.push_back(code);
    }
    std::size_t match = defined.size();
    for (std::size_t d = 0; d < defined.size() && match == defined.size(); ++d) {
      for (const Node* code : codes) {
        if (same_concept(code, defined[d].find("code"))) {
          match = d;
          break;
        }
      }
    }
    if (match == defined.size()) {
      ctx.error("business-rule", std::string(unknown_message), here);
      continue;
    }
    if (seen[match]) {
      ctx.error("business-rule", "The code for this " + std::string(missing_kind) + " is duplicated", here);
      continue;
    }
    seen[match] = true;
    each(reported[i], defined[match], here);
  }
  for (std::size_t d = 0; d < defined.size(); ++d) {
    if (seen[d]) continue;
    const Node* code = defined[d].find("code");
    if (skip_observations && code != nullptr && has_coding(*code, kMeasurePopulation, "measure-observation"))
      continue;
    std::string message = "The MeasureReport does not include a " + std::string(missing_kind) + " for the " +
                          std::string(missing_kind) + " with code '" + describe(code) + "'";
    if (const std::string_view id = defined[d].string_at("id"); !id.empty())
      message += " (id = '" + std::string(id) + "')";
    ctx.error("business-rule", message, at);
  }
}

void check_score(RuleContext& ctx, const ReportScope& scope, const Node& group, const std::string& at) {
  const Node* score = group.find("measureScore");
  const std::string score_at = at + ".measureScore";
  if (scope.report_type == "data-collection") {
    if (score != nullptr)
      ctx.error("business-rule",
                "A measureScore is not allowed when the MeasureReport type is 'data-collection'", score_at);
    return;
  }
  if (scope.scoring == "cohort") {
    if (score != nullptr)
      ctx.error("business-rule", "A measureScore is not allowed when the Measure scoring is 'cohort'",
                score_at);
    return;
  }
  if (scope.scoring != "proportion" && scope.scoring != "ratio" && scope.scoring != "continuous-variable")
    return;
  if (score == nullptr) {
    if (scope.complete)
      ctx.error("business-rule",
                "A measureScore is required when the Measure scoring is '" + std::string(scope.scoring) + "'",
                at);
    return;
  }
  const Node* value = score->find("value");
  if (value == nullptr) {
    ctx.error(
        "business-rule",
        "A measureScore value is required when the Measure scoring is '" + std::string(scope.scoring) + "'",
        score_at);
    return;
  }
  if (scope.scoring != "proportion") return;
  for (std::string_view unit : {"unit", "system", "code"}) {
    if (score->find(unit) != nullptr)
      ctx.error("business-rule", "A measureScore for a proportion measure has no units",
                score_at + "." + std::string(unit));
  }
  if (!value->is_number()) return;
  const double number = std::strtod(value->text().c_str(), nullptr);
  if (number < 0 || number > 1) {
    ctx.error("business-rule", "A measureScore for a proportion measure must be between 0 and 1",
              score_at + ".value");
  }
}

void check_population(RuleContext& ctx, const ReportScope& scope, const Node& population,
                      const std::string& at) {
  if (scope.report_type == "subject-list") return;
  if (population.find("subjectResults") != nullptr)
    ctx.error("business-rule", "Reports where type is not 'subject-list' don't have subjects listed", at);
  if (population.find("count") == nullptr)
    ctx.warning("business-rule", "Count should be present for reports where type is not 'subject-list'", at);
}

void check_group(RuleContext& ctx, const ReportScope& scope, const Node& group, const Node& definition,
                 const std::string& at) {
  match_parts(ctx, group, definition, "population", at,
              "The code for this population has no match in the measure definition", "population", true,
              [&](const Node& population, const Node&, const std::string& here) {
                check_population(ctx, scope, population, here);
              });
  check_score(ctx, scope, group, at);
  match_parts(ctx, group, definition, "stratifier", at,
              "Group should have a code that matches the group stratifier definition in the measure",
              "stratifier", false, [](const Node&, const Node&, const std::string&) {});
}

const Node* find_measure(const RuleContext& ctx, std::string_view reference) {
  if (reference.starts_with('#')) {
    for (const Node& contained : items_of(ctx.resource, "contained")) {
      if (contained.string_at("resourceType") == "Measure" &&
          contained.string_at("id") == reference.substr(1))
        return &contained;
    }
    return nullptr;
  }
  return ctx.definitions.find(reference, "Measure");
}

void check_measure_report(RuleContext& ctx) {
  const std::string_view reference = ctx.resource.string_at("measure");
  if (reference.empty()) return;
  const Node* measure = find_measure(ctx, reference);
  if (measure == nullptr) {
    ctx.warning("not-found",
                "The Measure '" + std::string(reference) +
                    "' could not be found, so the report cannot be checked against it",
                "measure");
    return;
  }
  std::string_view scoring;
  if (const Node* s = measure->find("scoring")) {
    for (const Node& c : items_of(*s, "coding")) {
      if (c.string_at("system") == "http://terminology.hl7.org/CodeSystem/measure-scoring")
        scoring = c.string_at("code");
    }
  }
  if (scoring != "proportion" && scoring != "ratio" && scoring != "continuous-variable" &&
      scoring != "cohort") {
    ctx.information(
        "business-rule",
        "The scoring system in this measure is unknown, so the measureScore values cannot be checked",
        "measure");
  }
  if (const Node* noted = ctx.resource.find("improvementNotation")) {
    const Node* defined_notation = measure->find("improvementNotation");
    if (defined_notation != nullptr && !same_concept(noted, defined_notation)) {
      ctx.warning("business-rule",
                  "The improvementNotation of this report ('" + describe(noted) +
                      "') is not the one its Measure defines ('" + describe(defined_notation) + "')",
                  "improvementNotation");
    }
  }
  const ReportScope scope{scoring, ctx.resource.string_at("type"),
                          ctx.resource.string_at("status") == "complete"};
  const auto& groups = items_of(ctx.resource, "group");
  const auto& defined = items_of(*measure, "group");
  if (groups.size() == 1 && defined.size() == 1) {
    const Node* code = groups[0].find("code");
    const Node* defined_code = defined[0].find("code");
    if (code != nullptr && defined_code != nullptr) {
      bool usable = false;
      for (const Node& c : items_of(*code, "coding")) {
        usable = usable || (!c.string_at("system").empty() && !c.string_at("code").empty());
      }
      if (!usable) {
        ctx.error("business-rule", "The group's code has no coding with both a system and a code",
                  "group[0]");
      } else if (!same_concept(code, defined_code)) {
        ctx.error("business-rule",
                  "The code for this group ('" + describe(code) +
                      "') does not match the code of the Measure's group ('" + describe(defined_code) + "')",
                  "group[0]");
      }
    }
    check_group(ctx, scope, groups[0], defined[0], "group[0]");
    return;
  }
  std::vector<bool> seen(defined.size(), false);
  for (std::size_t i = 0; i < groups.size(); ++i) {
    const std::string at = index_path("group", i);
    const Node* code = groups[i].find("code");
    if (code == nullptr) {
      ctx.error("business-rule", "Group should have a code that matches the group definition in the measure",
                at);
      continue;
    }
    std::size_t match = defined.size();
    for (std::size_t d = 0; d < defined.size(); ++d) {
      if (same_concept(code, defined[d].find("code"))) {
        match = d;
        break;
      }
    }
    if (match == defined.size()) {
      ctx.error("business-rule", "The code for this group has no match in the measure definition", at);
    } else if (seen[match]) {
      ctx.error("business-rule", "The code for this group is duplicated with another group", at);
    } else {
      seen[match] = true;
      check_group(ctx, scope, groups[i], defined[match], at);
    }
  }
  if (scope.report_type == "data-collection") return;
  for (std::size_t d = 0; d < defined.size(); ++d) {
    if (!seen[d])
      ctx.error("business-rule", "The MeasureReport does not include a group for the group with code '" +
                                     describe(defined[d].find("code")) + "'");
  }
}

}  // namespace

void check_measure(RuleContext& ctx) {
  if (ctx.type == "MeasureReport") {
    check_measure_report(ctx);
  } else if (ctx.type == "Measure") {
    check_measure_definition(ctx);
  }
}

}  // namespace fhirgate::fhir
