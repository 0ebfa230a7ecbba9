#include "fhir/validator_rules.hpp"

#include "fhir/validator.hpp"

namespace fhirgate::fhir {

std::string RuleContext::location(std::string_view relative) const {
  std::string at(path);
  if (relative.empty()) return at;
  if (!at.empty() && relative.front() != '[') at.push_back('.');
  at.append(relative);
  return at;
}

void RuleContext::report(std::string_view severity, std::string_view code, std::string diagnostics,
                         std::string_view relative) {
  Issue issue;
  issue.severity = severity;
  issue.code = code;
  issue.diagnostics = std::move(diagnostics);
  issue.expression = location(relative);
  if (severity == "error" || severity == "fatal") ++errors;
  if (issues.size() >= options.max_issues) {  // the validator then says the list is full
    if (severity == "error" || severity == "fatal")
      full = true;
    else
      ++unlisted;
    return;
  }
  issues.push_back(std::move(issue));
}

void run_resource_rules(RuleContext& context) {
  check_questionnaire(context);
  check_extensions(context);
  check_conformance(context);
  check_terminology(context);
  check_measure(context);
  check_bundle_and_references(context);
  check_security(context);
}

}  // namespace fhirgate::fhir
