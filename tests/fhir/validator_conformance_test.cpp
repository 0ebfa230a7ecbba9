// Conformance harness: the validator against the HL7 reference (Java) validator on the official test
// cases in ../shared/corpus/fhir-validator-tests (manifest-r4.json, the R4 half of FHIR/fhir-test-cases).
//
// Each case runs as `fhirgate validate` does: a Validator for the case, every `supporting` (and
// `profiles`) file given to Validator::add_resource, the case's file parsed as JSON or XML and validated,
// with the reference validator's options the case sets that fhirgate has too (security-checks, examples,
// validateReference, assumeValidRestReferences: the CLI's --security-checks, --no-example-urls,
// --resolve-references and, when the case does not assume valid REST references, --no-reference-types).
// A case's `profile` step is a second validation of the same file against the step's profile (with the
// step's own supporting files), compared with the step's own expected outcome.
//
// Compared with the reference outcome: the verdict (any error or fatal issue, or none) — the measure the
// targets are set on — and, as figures, the error count and the error locations (FHIRPath expressions,
// the reference's /*Type/id*/ comments removed). Cases that need IG packages (`packages`) are skipped:
// they need content this machine does not have. Steps whose every reference error is about a code of a
// system only a terminology server holds (LOINC, SNOMED CT displays and codes; read from the reference's
// messages) are counted, and reported apart as well. Reported per module; the test fails when a module's
// verdict agreement falls below its floor in kFloors (raise the floor when a module improves).
#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <memory>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "fhir/files.hpp"
#include "fhir/formats.hpp"
#include "fhir/validator.hpp"
#include "tests/support/paths.hpp"
#include "tests/support/r4.hpp"

namespace fhirgate::fhir {
namespace {

// Module -> the fewest verdicts (cases plus profile steps) that must agree with the reference validator.
// One module per line (clang-format off) so that floors raised on different branches merge cleanly.
const std::map<std::string, int>& floors() {
  // clang-format off
  static const std::map<std::string, int> kFloors = {
      {"api", 2},
      {"base", 0},
      {"bundle", 6},
      {"cda", 1},
      {"cdshooks", 6},
      {"dsig", 1},
      {"extensions", 8},
      {"fmt", 3},
      {"general", 13},
      {"invariants", 1},
      {"json5", 3},
      {"logical", 1},
      {"matchetype", 11},
      {"measure", 4},
      {"profile", 66},
      {"questionnaire", 31},
      {"references", 11},
      {"sd", 5},
      {"security", 2},
      {"shc", 2},
      {"tx", 13},
      {"tx-advanced", 1},
      {"xhtml", 8},
      {"xver", 3},
      {"(none)", 0},
  };
  // clang-format on
  return kFloors;
}

// The modules the issue sets the higher target on.
const std::set<std::string> kCoreModules = {"general",    "profile", "bundle", "references",
                                            "extensions", "xhtml",   "fmt",    "sd"};

struct Expected {
  int errors = 0;
  int terminology_errors = 0;       // about codes of a system only a terminology server holds (see below)
  std::set<std::string> locations;  // of the errors, where the outcome gives them
  bool has_locations = false;
};

std::string normalise_location(std::string expression) {
  static const std::regex comment(R"(/\*[^*]*\*/)");
  return std::regex_replace(expression, comment, "");
}

std::shared_ptr<const Terminology> base_terminology();

// Whether a reference error is about a code of a code system this machine does not hold (LOINC, SNOMED CT
// ...): a wrong display or an unknown code, which only a terminology server can decide. Read from the
// reference's own message: "Wrong Display Name 'x' for SYSTEM#CODE" or "Unknown code 'CODE' in the
// CodeSystem 'SYSTEM'".
bool needs_terminology_server(std::string_view message) {
  static const std::regex display(R"(^Wrong Display Name '.*' for ([^#\s]+)#([^ .]+))");
  static const std::regex unknown(R"(^Unknown code '([^']+)' in the CodeSystem '([^']+)')");
  std::match_results<std::string_view::const_iterator> m;
  std::string system, code;
  if (std::regex_search(message.begin(), message.end(), m, display)) {
    system = m[1].str();
    code = m[2].str();
  } else if (std::regex_search(message.begin(), message.end(), m, unknown)) {
    code = m[1].str();
    system = m[2].str();
  } else {
    return false;
  }
  return base_terminology()->defines(system, code) == Terminology::Answer::unknown;
}

void count_outcome(const Node& outcome, Expected& expected) {
  const Node* issues = outcome.find("issue");
  if (issues == nullptr) return;
  expected.has_locations = true;
  for (const Node& issue : issues->items()) {
    const std::string_view severity = issue.string_at("severity");
    if (severity != "error" && severity != "fatal") continue;
    ++expected.errors;
    if (const Node* details = issue.find("details"); details != nullptr)
      expected.terminology_errors += needs_terminology_server(details->string_at("text"));
    if (const Node* expression = issue.find("expression"); expression && !expression->items().empty())
      expected.locations.insert(normalise_location(expression->items().front().text()));
  }
}

// The reference validator's outcome for a step (the `java` member); false when there is none to use.
bool expected_outcome(const std::string& dir, const Node* java, Expected& expected) {
  if (java == nullptr || java->is_null()) return false;
  if (java->is_string()) {
    auto text = read_file(dir + "/outcomes/" + java->text());
    if (!text.ok()) return false;
    auto outcome = parse_json(*text);
    if (!outcome.ok()) return false;
    count_outcome(*outcome, expected);
    return true;
  }
  if (!java->is_object()) return false;
  if (const Node* errors = java->find("errorCount"); errors != nullptr) {
    expected.errors = std::stoi(errors->text());
    if (const Node* fatals = java->find("fatalCount"); fatals != nullptr)
      expected.errors += std::stoi(fatals->text());
    return true;
  }
  if (const Node* outcome = java->find("outcome"); outcome != nullptr) {
    count_outcome(*outcome, expected);
    return true;
  }
  return false;
}

struct Actual {
  int errors = 0;
  std::set<std::string> locations;
  std::string first_error;  // for the report
};

Result<Node> read_resource(const std::string& path) {
  auto text = read_file(path);
  if (!text.ok()) return std::move(text).error();
  return parse_resource(*testing::r4_model(), *text, detect_format(*text));
}

std::shared_ptr<const Terminology> base_terminology() {
  return testing::r4_terminology();
}

// Validates `file` as the CLI does, with the supporting files loaded and the profile (if any) applied.
// `rest_references`: the case's assumeValidRestReferences.
Actual run_case(const std::string& dir, const std::vector<std::string>& supporting, const std::string& file,
                const std::string& profile_file, const Node& test, bool rest_references) {
  Validator validator(testing::r4_model(), base_terminology());
  Actual actual;
  auto fail = [&](const std::string& why) {
    actual.errors = 1;
    actual.first_error = why;
  };
  for (const std::string& support : supporting) {
    auto resource = read_resource(dir + "/" + support);
    if (!resource.ok()) return fail(support + ": " + resource.error().issues.front().diagnostics), actual;
    if (auto added = validator.add_resource(*resource); !added.ok())
      return fail(support + ": " + added.error().issues.front().diagnostics), actual;
  }
  ValidationOptions options;
  options.check_reference_types = rest_references;
  // The reference validator's options the case sets.
  if (const Node* security = test.find("security-checks"); security != nullptr)
    options.security_checks = security->as_bool();
  if (const Node* examples = test.find("examples"); examples != nullptr)
    options.allow_example_urls = examples->as_bool();
  if (const Node* references = test.find("validateReference"); references != nullptr)
    options.resolve_references = references->text() != "IGNORE";
  if (!profile_file.empty() && !std::filesystem::exists(dir + "/" + profile_file)) {
    options.profiles.push_back(profile_file);  // a canonical URL rather than a file
  } else if (!profile_file.empty()) {
    auto profile = read_resource(dir + "/" + profile_file);
    if (!profile.ok()) return fail(profile_file + ": " + profile.error().issues.front().diagnostics), actual;
    if (auto added = validator.add_resource(*profile); !added.ok())
      return fail(profile_file + ": " + added.error().issues.front().diagnostics), actual;
    options.profiles.emplace_back(profile->string_at("url"));
  }
  auto resource = read_resource(dir + "/" + file);
  if (!resource.ok()) return fail(resource.error().issues.front().diagnostics), actual;
  for (const Issue& issue : validator.validate(*resource, options).issues) {
    if (issue.severity != "error" && issue.severity != "fatal") continue;
    if (actual.errors++ == 0) actual.first_error = issue.expression + ": " + issue.diagnostics;
    actual.locations.insert(issue.expression);
  }
  return actual;
}

struct Tally {
  int verdicts = 0, agree = 0, counts = 0, located = 0, with_locations = 0;
  int missed = 0, false_errors = 0;
  int terminology_only = 0, terminology_only_agree = 0;  // every reference error needs a terminology server
};

TEST_CASE("Conformance: verdicts agree with the HL7 reference validator on the official test cases") {
  const std::string dir = testing::shared_path("corpus/fhir-validator-tests");
  if (dir.empty()) return;
  auto manifest_text = read_file(dir + "/manifest-r4.json");
  REQUIRE(manifest_text.ok());
  auto manifest = parse_json(*manifest_text);
  REQUIRE(manifest.ok());
  std::map<std::string, Tally> modules;
  Tally all, core;
  int skipped_packages = 0;
  std::ostringstream disagreements;
  auto strings = [](const Node* list) {
    std::vector<std::string> out;
    if (list != nullptr)
      for (const Node& item : list->items()) out.emplace_back(item.text());
    return out;
  };
  for (const Node& test : manifest->find("test-cases")->items()) {
    const std::string name(test.string_at("name"));
    const std::string module =
        test.string_at("module").empty() ? "(none)" : std::string(test.string_at("module"));
    if (const Node* use = test.find("use-test"); use != nullptr && !use->as_bool()) continue;
    if (test.find("packages") != nullptr) {
      ++skipped_packages;
      continue;
    }
    std::vector<std::string> supporting = strings(test.find("supporting"));
    for (const std::string& more : strings(test.find("profiles"))) supporting.push_back(more);
    struct Step {
      std::string label, profile;
      std::vector<std::string> supporting;
      const Node* java;
      bool rest_references;
    };
    const auto rest_references = [](const Node& step) {
      const Node* flag = step.find("assumeValidRestReferences");
      return flag != nullptr && flag->as_bool();
    };
    std::vector<Step> steps{{name, "", supporting, test.find("java"), rest_references(test)}};
    if (const Node* profile = test.find("profile"); profile != nullptr) {
      std::vector<std::string> with = supporting;
      for (const std::string& more : strings(profile->find("supporting"))) with.push_back(more);
      steps.push_back({name + " (profile)", std::string(profile->string_at("source")), with,
                       profile->find("java"), rest_references(test) || rest_references(*profile)});
    }
    for (const Step& step : steps) {
      Expected expected;
      if (!expected_outcome(dir, step.java, expected)) continue;
      const Actual actual = run_case(dir, step.supporting, std::string(test.string_at("file")), step.profile,
                                     test, step.rest_references);
      const bool agree = (expected.errors > 0) == (actual.errors > 0);
      const bool same_count = expected.errors == actual.errors;
      std::set<std::string> expected_locations;
      for (const std::string& l : expected.locations) expected_locations.insert(l);
      const bool same_locations = expected.has_locations && expected_locations == actual.locations;
      for (Tally* t : {&modules[module], &all, kCoreModules.count(module) ? &core : nullptr}) {
        if (t == nullptr) continue;
        ++t->verdicts;
        t->agree += agree;
        t->counts += same_count;
        t->with_locations += expected.has_locations;
        t->located += same_locations;
        t->missed += !agree && expected.errors > 0;
        t->false_errors += !agree && expected.errors == 0;
        const bool terminology_only = expected.errors > 0 && expected.terminology_errors == expected.errors;
        t->terminology_only += terminology_only;
        t->terminology_only_agree += terminology_only && agree;
      }
      if (!agree) {
        if (expected.errors > 0 && expected.terminology_errors == expected.errors)
          disagreements << "  (needs a terminology server)";
        disagreements << "  " << module << " " << step.label << ": reference " << expected.errors
                      << " errors, we " << actual.errors
                      << (actual.first_error.empty() ? "" : " (" + actual.first_error + ")") << "\n";
      }
    }
  }
  auto line = [](const std::string& label, const Tally& t) {
    std::ostringstream out;
    out << label << ": " << t.agree << "/" << t.verdicts << " verdicts agree ("
        << (t.verdicts ? 100 * t.agree / t.verdicts : 0) << "%), " << t.missed << " missed errors, "
        << t.false_errors << " false errors; error counts equal " << t.counts << "; error locations equal "
        << t.located << "/" << t.with_locations;
    if (t.terminology_only > 0) {
      const int verdicts = t.verdicts - t.terminology_only;
      const int agree = t.agree - t.terminology_only_agree;
      out << "; without the " << t.terminology_only
          << " whose every error needs a terminology server: " << agree << "/" << verdicts << " ("
          << (verdicts ? 100 * agree / verdicts : 0) << "%)";
    }
    out << "\n";
    return out.str();
  };
  std::string report =
      line("all R4 cases without packages", all) + line(
                                                       "general, profile, bundle, references, "
                                                       "extensions, xhtml, fmt, sd",
                                                       core);
  for (const auto& [module, tally] : modules) report += line("  " + module, tally);
  MESSAGE(report << "skipped (need IG packages): " << skipped_packages << "\ndisagreements:\n"
                 << disagreements.str());
  for (const auto& entry : modules) {  // (no structured bindings: clang 14 cannot capture them)
    const std::string& module = entry.first;
    const Tally& tally = entry.second;
    CAPTURE(module);
    const auto floor = floors().find(module);
    CHECK_MESSAGE(floor != floors().end(), "module without a floor: " << module);
    if (floor == floors().end()) continue;
    CHECK_MESSAGE(tally.agree >= floor->second,
                  module << ": " << tally.agree << " verdicts agree, floor " << floor->second);
    if (tally.agree > floor->second) MESSAGE("raise the floor of " << module << " to " << tally.agree);
  }
}

}  // namespace
}  // namespace fhirgate::fhir
