// Checks of string content that the reference validator makes by option, for contexts stricter than
// exchanging examples:
// - security checks (R4 security.html, "narrative and other strings"; ValidationOptions::security_checks):
//   a string that looks like it carries HTML markup (a tag such as <script> or <img ...>) is an error,
//   since content rendered without sanitising is a path for active content. The narrative
//   (Narrative.div, XHTML by definition) is left to the narrative rules.
// - example URLs (ValidationOptions::allow_example_urls off): an http(s) URL on a domain reserved for
//   examples (RFC 2606: example.org, example.com, example.net and their subdomains) is an error.
// With neither option nothing is walked, so the write path pays nothing.
#include <cctype>
#include <string>
#include <string_view>

#include "fhir/validator.hpp"
#include "fhir/validator_rules.hpp"

namespace fhirgate::fhir {

namespace {

// `<` followed by a tag name (or `/name`, `!`), closed by a later `>`: "<script>", "</b>", "<img src=x>".
bool looks_like_markup(std::string_view text) {
  for (auto at = text.find('<'); at != std::string_view::npos; at = text.find('<', at + 1)) {
    std::size_t name = at + 1;
    if (name < text.size() && (text[name] == '/' || text[name] == '!')) ++name;
    if (name >= text.size() || std::isalpha(static_cast<unsigned char>(text[name])) == 0) continue;
    if (text.find('>', name) != std::string_view::npos) return true;
  }
  return false;
}

bool example_url(std::string_view text) {
  if (text.starts_with("http://")) {
    text.remove_prefix(7);
  } else if (text.starts_with("https://")) {
    text.remove_prefix(8);
  } else {
    return false;
  }
  std::string_view host = text.substr(0, text.find_first_of("/?#"));
  host = host.substr(0, host.find(':'));
  for (const std::string_view domain : {"example.org", "example.com", "example.net"}) {
    if (host == domain || (host.size() > domain.size() && host.ends_with(domain) &&
                           host[host.size() - domain.size() - 1] == '.'))
      return true;
  }
  return false;
}

void walk(RuleContext& ctx, const Node& node, std::string& path, bool root) {
  if (node.is_string()) {
    if (!ctx.options.allow_example_urls && example_url(node.text()))
      ctx.error("invalid", "Example URLs are not allowed in this context (" + node.text() + ")", path);
    if (ctx.options.security_checks && looks_like_markup(node.text()))
      ctx.error("invalid",
                "The string value contains text that looks like embedded HTML tags, which are not allowed "
                "for security reasons in this context",
                path);
    return;
  }
  if (node.is_array()) {
    for (std::size_t i = 0; i < node.items().size(); ++i) {
      const std::size_t mark = path.size();
      path += "[" + std::to_string(i) + "]";
      walk(ctx, node.items()[i], path, false);
      path.resize(mark);
    }
    return;
  }
  if (!node.is_object() || (!root && node.find("resourceType") != nullptr)) return;
  for (const auto& [key, value] : node.members()) {
    if (key == "div" || key == "resourceType") continue;
    const std::size_t mark = path.size();
    if (!path.empty()) path.push_back('.');
    path.append(key.starts_with('_') ? std::string_view(key).substr(1) : std::string_view(key));
    walk(ctx, value, path, false);
    path.resize(mark);
  }
}

}  // namespace

void check_security(RuleContext& ctx) {
  if (!ctx.options.security_checks && ctx.options.allow_example_urls) return;
  std::string path;
  walk(ctx, ctx.resource, path, true);
}

}  // namespace fhirgate::fhir
