#include "fhir/operation_outcome.hpp"

#include "fhir/utf8.hpp"

namespace fhirgate::fhir {
namespace {

Node integer_extension(const char* url, int value) {
  Node ext = Node::object();
  ext.set("url", Node::string(url));
  ext.set("valueInteger", Node::number(std::to_string(value)));
  return ext;
}

}  // namespace

Node operation_outcome(const Error& error) {
  Node oo = Node::object();
  oo.set("resourceType", Node::string("OperationOutcome"));
  Node& issues = oo.set("issue", Node::array());
  for (const auto& issue : error.issues) {
    Node item = Node::object();
    if (issue.line > 0) {
      Node& exts = item.set("extension", Node::array());
      exts.push(integer_extension("http://hl7.org/fhir/StructureDefinition/operationoutcome-issue-line",
                                  issue.line));
      exts.push(integer_extension("http://hl7.org/fhir/StructureDefinition/operationoutcome-issue-col",
                                  issue.column));
    }
    item.set("severity", Node::string(issue.severity.empty() ? "error" : issue.severity));
    item.set("code", Node::string(issue.code.empty() ? issue_type(error.code) : issue.code));
    if (!issue.diagnostics.empty())
      item.set("diagnostics", Node::string(with_visible_escapes(issue.diagnostics)));
    if (!issue.expression.empty())
      item.set("expression", Node::array()).push(Node::string(with_visible_escapes(issue.expression)));
    issues.push(std::move(item));
  }
  if (error.issues.empty()) {
    Node item = Node::object();
    item.set("severity", Node::string("error"));
    item.set("code", Node::string(issue_type(error.code)));
    issues.push(std::move(item));
  }
  return oo;
}

Node informational_outcome(const std::string& diagnostics) {
  Node oo = Node::object();
  oo.set("resourceType", Node::string("OperationOutcome"));
  Node item = Node::object();
  item.set("severity", Node::string("information"));
  item.set("code", Node::string("informational"));
  item.set("diagnostics", Node::string(with_visible_escapes(diagnostics)));
  oo.set("issue", Node::array()).push(std::move(item));
  return oo;
}

}  // namespace fhirgate::fhir
