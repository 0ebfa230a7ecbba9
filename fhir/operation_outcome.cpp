#include "fhir/operation_outcome.hpp"

#include <cstdio>
#include <string_view>

#include "fhir/utf8.hpp"

namespace fhirgate::fhir {
namespace {

// Diagnostics often quote what a client sent. Characters that JSON or XML cannot carry as they are
// (control characters other than tab, LF and CR; malformed UTF-8; U+FFFE/U+FFFF) are written as
// visible escapes, \u0008 or \xFF, so the outcome itself can always be serialized.
std::string readable(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  char escape[8];
  for (std::size_t i = 0; i < text.size();) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c >= 0x80) {
      const std::size_t len = xml_utf8_length(text, i);
      if (len > 0) {
        out.append(text.substr(i, len));
        i += len;
        continue;
      }
      std::snprintf(escape, sizeof escape, "\\x%02X", c);
      out += escape;
    } else if (c < 0x20 && c != '\t' && c != '\n' && c != '\r') {
      std::snprintf(escape, sizeof escape, "\\u%04X", c);
      out += escape;
    } else {
      out += static_cast<char>(c);
    }
    ++i;
  }
  return out;
}

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
    if (!issue.diagnostics.empty()) item.set("diagnostics", Node::string(readable(issue.diagnostics)));
    if (!issue.expression.empty())
      item.set("expression", Node::array()).push(Node::string(readable(issue.expression)));
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
  item.set("diagnostics", Node::string(readable(diagnostics)));
  oo.set("issue", Node::array()).push(std::move(item));
  return oo;
}

}  // namespace fhirgate::fhir
