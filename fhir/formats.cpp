#include "fhir/formats.hpp"

#include "fhir/json_locate.hpp"
#include "fhir/xml.hpp"

namespace fhirgate::fhir {

const char* media_type(Format format) {
  return format == Format::xml ? "application/fhir+xml" : "application/fhir+json";
}

Format detect_format(std::string_view text) {
  if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);  // UTF-8 byte-order mark
  const auto first = text.find_first_not_of(" \t\r\n");
  return first != std::string_view::npos && text[first] == '<' ? Format::xml : Format::json;
}

Result<Node> parse_resource(const Model& model, std::string_view text, Format format) {
  auto node = format == Format::xml ? xml_to_json(model, text) : parse_json(text);
  if (!node) return node;
  if (auto rules = check_resource_json(*node); !rules) return std::move(rules).error();
  return node;
}

void locate_issues(std::string_view text, Format format, std::vector<Issue>& issues) {
  if (format == Format::xml)
    locate_xml_issues(text, issues);
  else
    locate_issues(text, issues);
}

Result<std::string> write_resource(const Model& model, const Node& resource, Format format, bool pretty) {
  if (format == Format::xml) return json_to_xml(model, resource, pretty);
  return write_json(resource, pretty);
}

}  // namespace fhirgate::fhir
