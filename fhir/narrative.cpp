// What narrative may contain. R4 narrative.html: "The XHTML content SHALL NOT contain a head, a body,
// external stylesheet references, deprecated elements, scripts, forms, base/link/xlink, frames, iframes
// and objects or event related attributes (e.g. onClick)." And the invariant txt-1 on Narrative.div:
// "The narrative SHALL contain only the basic html formatting elements and attributes described in
// chapters 7-11 (except section 4 of chapter 9) and 15 of the HTML 4.0 standard, <a> elements (either
// name or href), images and internally contained style attributes".
//
// Hence the table below, read from HTML 4.01 (https://www.w3.org/TR/html401/): the elements of chapter 7
// (div, span, h1-h6, address; not html, head, title, meta or body), 8 (bdo), 9 without its section 4
// (so no ins or del), 10 (lists, without the deprecated dir and menu), 11 (tables) and 15 (tt, i, b, big,
// small, hr; not the deprecated font, basefont, center, strike, s or u), plus a and img. Each takes the
// attributes those chapters give it, chapter 15's presentational ones (align, bgcolor, width, ...)
// included since chapter 15 is where they are described, and every element takes the core and language
// attributes (id, class, style, title, lang, dir, xml:lang). Left out: the event attributes (onclick,
// ...), a's target (a frames attribute, chapter 16), and img's usemap and ismap (image maps are not
// narrative). Anything not listed (script, style, form controls, iframe, frame, object, embed, applet,
// base, link, meta, ...) is refused.
//
// Not enforced although txt-1 says it: that an <a> has a name or an href. The R4 examples themselves have
// hundreds of <a>Patient/example</a>, and such an <a> is harmless.
//
// Also refused, because an XML reader and a browser's HTML parser read them differently (the narrative is
// usually shown through innerHTML): processing instructions and CDATA sections, which an XML reader skips
// or takes as text but an HTML parser ends at their first `>`, so that markup hidden inside becomes live
// (`<?x ><img src=x onerror=...>?>`); and data: URLs but an image's, which can carry a whole HTML page.
#include "fhir/narrative.hpp"

#include <algorithm>
#include <cstddef>
#include <span>

#include "fhir/result.hpp"
#include "fhir/xml.hpp"

namespace fhirgate::fhir {
namespace {

struct AllowedElement {
  std::string_view name;
  std::string_view attributes;  // besides kCommonAttributes; separated by spaces
};

constexpr std::string_view kCommonAttributes = "id class style title lang dir";
constexpr std::string_view kCellAlign = "align char charoff valign";

// clang-format off
constexpr AllowedElement kAllowedElements[] = {
    // HTML 4.01 chapter 7, the global structure of a document
    {"div", "align"}, {"span", ""}, {"address", ""},
    {"h1", "align"}, {"h2", "align"}, {"h3", "align"}, {"h4", "align"}, {"h5", "align"}, {"h6", "align"},
    // chapter 8, language and direction
    {"bdo", ""},
    // chapter 9, text (without 9.4: ins, del)
    {"em", ""}, {"strong", ""}, {"dfn", ""}, {"code", ""}, {"samp", ""}, {"kbd", ""}, {"var", ""},
    {"cite", ""}, {"abbr", ""}, {"acronym", ""}, {"blockquote", "cite"}, {"q", "cite"}, {"sub", ""},
    {"sup", ""}, {"p", "align"}, {"br", "clear"}, {"pre", "width"},
    // chapter 10, lists
    {"ul", "type compact"}, {"ol", "type compact start"}, {"li", "type value"}, {"dl", "compact"},
    {"dt", ""}, {"dd", ""},
    // chapter 11, tables
    {"table", "summary width border frame rules cellspacing cellpadding align bgcolor"},
    {"caption", "align"},
    {"colgroup", "span width align char charoff valign"}, {"col", "span width align char charoff valign"},
    {"thead", kCellAlign}, {"tbody", kCellAlign}, {"tfoot", kCellAlign},
    {"tr", "align char charoff valign bgcolor"},
    {"th", "abbr axis headers scope rowspan colspan align char charoff valign nowrap bgcolor width height"},
    {"td", "abbr axis headers scope rowspan colspan align char charoff valign nowrap bgcolor width height"},
    // chapter 15, font styles and rules
    {"tt", ""}, {"i", ""}, {"b", ""}, {"big", ""}, {"small", ""}, {"hr", "align noshade size width"},
    // links (chapter 12) and images (chapter 13)
    {"a", "name href hreflang type rel rev charset"},
    {"img", "src alt longdesc name height width align border hspace vspace"},
};
// clang-format on

// Attributes that hold a URL, where a script scheme could run.
constexpr std::string_view kUrlAttributes[] = {"href", "src", "longdesc", "cite"};

constexpr std::string_view kXhtmlNamespace = "http://www.w3.org/1999/xhtml";
constexpr std::string_view kXmlNamespace = "http://www.w3.org/XML/1998/namespace";
constexpr std::size_t kMaxProblems = 8;

bool listed(std::string_view list, std::string_view word) {
  while (!list.empty()) {
    const std::size_t space = list.find(' ');
    if (list.substr(0, space) == word) return true;
    if (space == std::string_view::npos) break;
    list.remove_prefix(space + 1);
  }
  return false;
}

const AllowedElement* allowed_element(std::string_view name) {
  const auto* end = std::end(kAllowedElements);
  const auto* found = std::find_if(std::begin(kAllowedElements), end,
                                   [&](const AllowedElement& e) { return e.name == name; });
  return found == end ? nullptr : found;
}

char ascii_lower(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

bool is_event_attribute(std::string_view name) {
  return name.size() > 2 && ascii_lower(name[0]) == 'o' && ascii_lower(name[1]) == 'n';
}

// The scheme as a browser reads it (leading controls and spaces skipped, tabs and line breaks dropped
// anywhere, case ignored) and what follows it, lowercased, up to `keep` characters.
std::string url_scheme(std::string_view url, std::string* rest = nullptr, std::size_t keep = 0) {
  std::string scheme;
  for (std::size_t i = 0; i < url.size(); ++i) {
    const char c = url[i];
    if (scheme.empty() && static_cast<unsigned char>(c) <= 0x20) continue;
    if (c == '\t' || c == '\n' || c == '\r') continue;
    if (c == ':') {
      if (rest)
        for (std::size_t j = i + 1; j < url.size() && rest->size() < keep; ++j)
          if (url[j] != '\t' && url[j] != '\n' && url[j] != '\r') *rest += ascii_lower(url[j]);
      return scheme;
    }
    if (scheme.size() == 12) return {};
    scheme += ascii_lower(c);
  }
  return {};
}

bool is_script_url(std::string_view url) {
  const std::string scheme = url_scheme(url);
  return scheme == "javascript" || scheme == "vbscript";
}

// A data: URL that is not an image a browser shows as one (SVG can hold scripts).
bool is_page_data_url(std::string_view url, std::string_view attribute, std::string_view element) {
  std::string type;
  if (url_scheme(url, &type, 16) != "data") return false;
  const bool image = attribute == "src" && element == "<img>" &&
                     (type.rfind("image/png", 0) == 0 || type.rfind("image/jpeg", 0) == 0 ||
                      type.rfind("image/gif", 0) == 0 || type.rfind("image/webp", 0) == 0 ||
                      type.rfind("image/bmp", 0) == 0);
  return !image;
}

bool is_blank(std::string_view text) {
  return std::all_of(text.begin(), text.end(),
                     [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; });
}

class NarrativeRules final : public XmlMarkupVisitor {
 public:
  bool element(std::string_view ns, std::string_view name,
               std::span<const XmlAttribute> attributes) override {
    const std::string tag = "<" + std::string(name) + ">";
    if (root_) {
      root_ = false;
      if (name != "div" || ns != kXhtmlNamespace) {
        add("The narrative must be a <div> element in the XHTML namespace");
        return listening();
      }
    }
    if (ns != kXhtmlNamespace) {
      add("The element " + tag + " is not in the XHTML namespace");
      return listening();
    }
    const AllowedElement* allowed = allowed_element(name);
    if (allowed == nullptr) {
      add("The element " + tag + " is not allowed in narrative");
      return listening();
    }
    if (name == "img") content_ = true;
    for (const XmlAttribute& attribute : attributes) check(tag, *allowed, attribute);
    return listening();
  }

  bool text(std::string_view text) override {
    if (!content_ && !is_blank(text)) content_ = true;
    return listening();
  }

  std::vector<std::string> finish() {
    if (!content_ && listening())
      add("The narrative has no content: it needs some non-whitespace text or an image");
    return std::move(problems_);
  }

 private:
  void check(const std::string& tag, const AllowedElement& allowed, const XmlAttribute& attribute) {
    const std::string name(attribute.name);
    if (!attribute.ns.empty()) {
      if (attribute.ns == kXmlNamespace && attribute.name == "lang") return;
      add("The attribute " + name + " of " + tag + " is in the namespace " + std::string(attribute.ns) +
          ": only xml:lang may have a namespace in narrative");
      return;
    }
    if (is_event_attribute(attribute.name)) {
      add("The event attribute " + name + " of " + tag + " is not allowed in narrative");
      return;
    }
    if (!listed(kCommonAttributes, attribute.name) && !listed(allowed.attributes, attribute.name)) {
      add("The attribute " + name + " is not allowed on " + tag + " in narrative");
      return;
    }
    const bool url = std::find(std::begin(kUrlAttributes), std::end(kUrlAttributes), attribute.name) !=
                     std::end(kUrlAttributes);
    if (url && is_script_url(attribute.value)) {
      add("The " + name + " of " + tag + " is a javascript: or vbscript: URL, which narrative may not hold");
    } else if (url && is_page_data_url(attribute.value, attribute.name, tag)) {
      add("The " + name + " of " + tag + " is a data: URL, which narrative may hold only as an image's src");
    }
  }

  void add(std::string problem) {
    if (std::find(problems_.begin(), problems_.end(), problem) == problems_.end() && listening())
      problems_.push_back(std::move(problem));
  }

  bool listening() const { return problems_.size() < kMaxProblems; }

  bool root_ = true;
  bool content_ = false;
  std::vector<std::string> problems_;
};

}  // namespace

std::vector<std::string> narrative_problems(std::string_view div) {
  // Before the markup: what the XML reader does not show the visitor.
  std::vector<std::string> early;
  if (div.find("<?") != std::string_view::npos)
    early.emplace_back(
        "The narrative holds a processing instruction (<?...?>), which narrative may not hold");
  if (div.find("<![CDATA[") != std::string_view::npos)
    early.emplace_back("The narrative holds a CDATA section (<![CDATA[...]]>), which narrative may not hold");
  if (!early.empty()) return early;
  NarrativeRules rules;
  const Status read = read_xml_markup(div, rules);
  if (read) return rules.finish();
  const Issue& issue = read.error().issues.front();
  std::string problem = "The narrative is not XML that FHIR accepts: " + issue.diagnostics;
  if (issue.diagnostics.find("Entity '") != std::string::npos) {
    problem +=
        " (narrative has only XML's own entities: write a character reference such as &#160; for &nbsp;)";
  }
  if (issue.line > 0) {
    problem +=
        " (line " + std::to_string(issue.line) + ", column " + std::to_string(issue.column) + " of the div)";
  }
  return {std::move(problem)};
}

namespace {

// The value of attribute `name` (unprefixed or with any prefix, e.g. xml:lang) in a start tag's
// attribute text.
std::string attribute_value(std::string_view attributes, std::string_view name) {
  std::size_t i = 0;
  while (i < attributes.size()) {
    while (i < attributes.size() && is_blank(attributes.substr(i, 1))) ++i;
    const std::size_t name_start = i;
    while (i < attributes.size() && attributes[i] != '=' && !is_blank(attributes.substr(i, 1))) ++i;
    std::string_view attribute = attributes.substr(name_start, i - name_start);
    while (i < attributes.size() && attributes[i] != '=') ++i;
    while (i < attributes.size() && attributes[i] != '"' && attributes[i] != '\'') ++i;
    if (i >= attributes.size()) break;
    const char quote = attributes[i++];
    const std::size_t value_start = i;
    while (i < attributes.size() && attributes[i] != quote) ++i;
    const std::string_view value = attributes.substr(value_start, i - value_start);
    ++i;
    if (const auto colon = attribute.find(':'); colon != std::string_view::npos)
      attribute.remove_prefix(colon + 1);
    if (attribute == name) return std::string(value);
  }
  return {};
}

void append_excerpt(std::string& excerpt, std::string_view text) {
  for (const char c : text) {
    if (excerpt.size() >= 60) return;
    const bool blank = c == ' ' || c == '\t' || c == '\n' || c == '\r';
    if (blank) {
      if (!excerpt.empty() && excerpt.back() != ' ') excerpt.push_back(' ');
    } else {
      excerpt.push_back(c);
    }
  }
}

}  // namespace

std::vector<NarrativePart> narrative_parts(std::string_view div) {
  std::vector<NarrativePart> parts;
  std::size_t i = div.find("<div");
  if (i == std::string_view::npos) return parts;
  i = div.find('>', i);
  if (i == std::string_view::npos || div[i - 1] == '/') return parts;
  ++i;
  int depth = 0;  // below the root div
  constexpr std::size_t kNone = static_cast<std::size_t>(-1);
  std::size_t text_part = kNone;  // the text run being read directly below the root
  while (i < div.size()) {
    if (div[i] != '<') {
      const std::size_t end = std::min(div.find('<', i), div.size());
      const std::string_view text = div.substr(i, end - i);
      if (depth == 0 && !is_blank(text)) {
        if (text_part == kNone) {
          text_part = parts.size();
          parts.emplace_back();
        }
        append_excerpt(parts[text_part].excerpt, text);
      } else if (depth > 0 && !parts.empty()) {
        append_excerpt(parts.back().excerpt, text);
      }
      i = end;
      continue;
    }
    const std::string_view rest = div.substr(i);
    std::size_t end = std::string_view::npos;
    if (rest.starts_with("<!--")) {
      end = div.find("-->", i);
      i = end == std::string_view::npos ? div.size() : end + 3;
      continue;
    }
    if (rest.starts_with("<![CDATA[") || rest.starts_with("<?")) {
      end = div.find(rest.starts_with("<?") ? "?>" : "]]>", i);
      i = end == std::string_view::npos ? div.size() : end + 2;
      continue;
    }
    // A tag: find its end outside quoted attribute values.
    char quote = 0;
    for (end = i + 1; end < div.size(); ++end) {
      if (quote != 0) {
        if (div[end] == quote) quote = 0;
      } else if (div[end] == '"' || div[end] == '\'') {
        quote = div[end];
      } else if (div[end] == '>') {
        break;
      }
    }
    if (end >= div.size()) break;
    const std::string_view tag = div.substr(i + 1, end - i - 1);
    i = end + 1;
    if (tag.starts_with('/')) {
      if (--depth < 0) break;
      continue;
    }
    const bool empty = tag.ends_with('/');
    if (depth == 0) {
      text_part = kNone;
      NarrativePart& part = parts.emplace_back();
      part.element = true;
      const std::size_t name_end = std::min(tag.find_first_of(" \t\r\n/"), tag.size());
      const std::string_view attributes = tag.substr(name_end);
      part.css_class = attribute_value(attributes, "class");
      part.lang = attribute_value(attributes, "lang");
    }
    if (!empty) ++depth;
  }
  for (NarrativePart& part : parts) {
    if (!part.excerpt.empty() && part.excerpt.back() == ' ') part.excerpt.pop_back();
  }
  return parts;
}

}  // namespace fhirgate::fhir
