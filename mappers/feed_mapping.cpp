#include "mappers/feed_mapping.hpp"

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xpath.h>
#include <libxml/xpathInternals.h>

#include <algorithm>
#include <cassert>
#include <cctype>
#include <climits>
#include <ctime>
#include <functional>
#include <initializer_list>
#include <iterator>
#include <set>

#include "fhir/datetime.hpp"
#include "fhir/files.hpp"
#include "fhir/json_locate.hpp"

namespace fhirgate::mappers {
namespace {

using fhir::Node;

// A mapping mistake at a place in the mapping document ("fields[2].path"), located to a line later.
struct Mistake {
  std::string where;
  std::string reason;
};

std::string trim(std::string_view s) {
  const auto not_space = [](unsigned char c) { return !std::isspace(c); };
  auto b = std::find_if(s.begin(), s.end(), not_space);
  auto e = std::find_if(s.rbegin(), s.rend(), not_space).base();
  return b < e ? std::string(b, e) : std::string();
}

// Case mapping for ASCII and the Latin-1 letters (U+00C0-U+00FE, UTF-8 C3 80-BE, not the signs x and
// /), which covers the names of the partnership's records; other characters are kept as they are.
// `mode`: 'U' upper, 'L' lower, 'T' title (upper after the start, a space, hyphen or apostrophe).
std::string change_case(std::string_view s, char mode) {
  std::string out(s);
  bool start = true;
  for (std::size_t i = 0; i < out.size(); ++i) {
    const auto u = static_cast<unsigned char>(out[i]);
    bool letter = false, upper_wanted = mode == 'U' || (mode == 'T' && start);
    if (u < 0x80 && std::isalpha(u)) {
      letter = true;
      out[i] = static_cast<char>(upper_wanted ? std::toupper(u) : std::tolower(u));
    } else if (u == 0xC3 && i + 1 < out.size()) {
      const auto v = static_cast<unsigned char>(out[i + 1]);
      if (v >= 0x80 && v <= 0xBE && v != 0x97 && v != 0xB7 && v != 0x9F) {
        letter = true;
        const unsigned char base = v >= 0xA0 ? static_cast<unsigned char>(v - 0x20) : v;
        out[i + 1] = static_cast<char>(upper_wanted ? base : base + 0x20);
      }
      ++i;
    }
    if (letter) {
      start = false;
    } else if (u < 0x80) {
      start = u == ' ' || u == '-' || u == '\'' || u == '\t';
    }
  }
  return out;
}

// One token of a date format ("dd/mm/yyyy"): dd d mm m yyyy yy, anything else a literal character.
struct DateToken {
  enum class Part { day, month, year, literal };
  Part part = Part::literal;
  std::size_t length = 1;      // characters of the format
  std::size_t min_digits = 0;  // digits of the value
  std::size_t max_digits = 0;
};

DateToken date_token(std::string_view rest) {
  using P = DateToken::Part;
  if (rest.starts_with("yyyy")) return {P::year, 4, 4, 4};
  if (rest.starts_with("yy")) return {P::year, 2, 2, 2};
  if (rest.starts_with("dd")) return {P::day, 2, 2, 2};
  if (rest.starts_with("mm")) return {P::month, 2, 2, 2};
  if (rest[0] == 'd') return {P::day, 1, 1, 2};
  if (rest[0] == 'm') return {P::month, 1, 1, 2};
  return {};
}

// A year is needed; a day needs a month ("yyyy" and "mm/yyyy" give the partial dates FHIR allows).
bool valid_date_format(std::string_view format) {
  bool day = false, month = false, year = false;
  for (std::size_t i = 0; i < format.size();) {
    const DateToken t = date_token(format.substr(i));
    if (t.part == DateToken::Part::literal && std::isalpha(static_cast<unsigned char>(format[i])))
      return false;
    day |= t.part == DateToken::Part::day;
    month |= t.part == DateToken::Part::month;
    year |= t.part == DateToken::Part::year;
    i += t.length;
  }
  return year && (month || !day);
}

int current_two_digit_year() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  return (tm.tm_year + 1900) % 100;
}

// Parses `text` by `format`; the FHIR date (yyyy-mm-dd, yyyy-mm or yyyy) or nothing.
std::optional<std::string> parse_date(std::string_view text, std::string_view format) {
  int day = 0, month = 0, year = 0;
  std::size_t t = 0;
  for (std::size_t i = 0; i < format.size();) {
    const DateToken token = date_token(format.substr(i));
    if (token.part == DateToken::Part::literal) {
      if (t >= text.size() || text[t] != format[i]) return std::nullopt;
      ++t;
    } else {
      std::size_t n = 0;
      int value = 0;
      while (n < token.max_digits && t < text.size() && std::isdigit(static_cast<unsigned char>(text[t]))) {
        value = value * 10 + (text[t++] - '0');
        ++n;
      }
      if (n < token.min_digits) return std::nullopt;
      if (token.part == DateToken::Part::year && token.length == 2)
        value += value <= current_two_digit_year() ? 2000 : 1900;
      (token.part == DateToken::Part::day     ? day
       : token.part == DateToken::Part::month ? month
                                              : year) = value;
    }
    i += token.length;
  }
  const bool has_month = format.find('m') != std::string_view::npos;
  const bool has_day = format.find('d') != std::string_view::npos;
  if (t != text.size() || year < 1 || (has_month && (month < 1 || month > 12)) ||
      (has_day && (day < 1 || day > fhir::days_in_month(year, month))))
    return std::nullopt;
  char buf[40];
  if (has_day)
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02d", year, month, day);
  else if (has_month)
    std::snprintf(buf, sizeof buf, "%04d-%02d", year, month);
  else
    std::snprintf(buf, sizeof buf, "%04d", year);
  return std::string(buf);
}

// "name[0].given[*]" -> steps, checked against the model; the leaf's primitive type.
std::optional<Mistake> parse_path(const fhir::Model& model, const std::string& resource_type,
                                  const std::string& text, FeedField& field) {
  const fhir::TypeDef* type = model.type(resource_type);
  std::size_t pos = 0;
  std::string walked = resource_type;
  while (pos <= text.size()) {
    if (type == nullptr) return Mistake{"", "'" + walked + "' has no elements below it"};
    const std::size_t dot = text.find('.', pos);
    std::string segment = text.substr(pos, dot == std::string::npos ? std::string::npos : dot - pos);
    PathStep step;
    if (const auto open = segment.find('['); open != std::string::npos) {
      if (segment.back() != ']') return Mistake{"", "'" + segment + "' is not name or name[index]"};
      const std::string index = segment.substr(open + 1, segment.size() - open - 2);
      if (index == "*") {
        step.index = PathStep::kAll;
      } else if (!index.empty() && index.size() < 4 &&
                 std::all_of(index.begin(), index.end(), [](char c) { return c >= '0' && c <= '9'; })) {
        step.index = std::stoi(index);
      } else {
        return Mistake{"", "'" + segment + "': the index must be a number or *"};
      }
      segment.resize(open);
    }
    std::string_view choice;
    const fhir::ElementDef* element = type->resolve(segment, &choice);
    if (element == nullptr || segment.empty())
      return Mistake{"", "unknown element '" + segment + "' in " + walked};
    if (step.index != PathStep::kNone && !element->is_array())
      return Mistake{"", walked + "." + segment + " is not a list, so it takes no [index]"};
    if (step.index == PathStep::kNone && element->is_array()) step.index = 0;
    walked += "." + segment;
    step.name = segment;
    field.steps.push_back(step);
    const fhir::TypeDef* next = nullptr;
    if (!choice.empty()) {
      next = model.type(choice);
    } else if (element->inline_type != nullptr) {
      next = element->inline_type;
    } else if (element->types.size() == 1) {
      next = model.type(element->types.front().code);
    } else {
      return Mistake{"", walked + " has several types; name one (e.g. " + segment + "String)"};
    }
    if (dot == std::string::npos) {
      if (next == nullptr || next->kind != fhir::TypeDef::Kind::primitive)
        return Mistake{"", walked + " is not a primitive element; map its parts (e.g. " + walked + ".value)"};
      field.primitive_type = next->name;
      field.json = fhir::Model::json_primitive(next->name);
      break;
    }
    type = next;
    pos = dot + 1;
  }
  for (std::size_t i = 0; i + 1 < field.steps.size(); ++i) {
    if (field.steps[i].index == PathStep::kAll)
      return Mistake{"", "[*] is only allowed on the last list in the path"};
  }
  return std::nullopt;
}

// libxml2 error text into a string (XPath compile/eval errors).
void capture_error(void* user, xmlErrorPtr error) {
  if (user != nullptr && error != nullptr && error->message != nullptr) {
    auto* out = static_cast<std::string*>(user);
    if (out->empty()) *out = trim(error->message);
  }
}

struct XPathContextFree {
  void operator()(xmlXPathContext* c) const { xmlXPathFreeContext(c); }
};
struct XPathObjectFree {
  void operator()(xmlXPathObject* o) const { xmlXPathFreeObject(o); }
};
struct DocFree {
  void operator()(xmlDoc* d) const { xmlFreeDoc(d); }
};

std::unique_ptr<xmlXPathContext, XPathContextFree> xpath_context(const FeedMapping& mapping, xmlDoc* doc,
                                                                 std::string* errors) {
  std::unique_ptr<xmlXPathContext, XPathContextFree> ctx(xmlXPathNewContext(doc));
  if (!ctx) return ctx;
  for (const auto& [prefix, uri] : mapping.namespaces)
    xmlXPathRegisterNs(ctx.get(), reinterpret_cast<const xmlChar*>(prefix.c_str()),
                       reinterpret_cast<const xmlChar*>(uri.c_str()));
  ctx->error = capture_error;
  ctx->userData = errors;
  return ctx;
}

// Compiles an XPath and tries it once on an empty document, which finds undeclared prefixes.
std::optional<std::string> compile_xpath(const FeedMapping& mapping, const std::string& text,
                                         std::shared_ptr<void>& compiled) {
  std::string errors;
  std::unique_ptr<xmlDoc, DocFree> doc(xmlNewDoc(reinterpret_cast<const xmlChar*>("1.0")));
  xmlNode* root = xmlNewDocNode(doc.get(), nullptr, reinterpret_cast<const xmlChar*>("x"), nullptr);
  xmlDocSetRootElement(doc.get(), root);
  auto ctx = xpath_context(mapping, doc.get(), &errors);
  xmlXPathCompExpr* expr = xmlXPathCtxtCompile(ctx.get(), reinterpret_cast<const xmlChar*>(text.c_str()));
  if (expr == nullptr) return "XPath '" + text + "' does not compile" + (errors.empty() ? "" : ": " + errors);
  compiled =
      std::shared_ptr<void>(expr, [](void* e) { xmlXPathFreeCompExpr(static_cast<xmlXPathCompExpr*>(e)); });
  ctx->node = root;
  std::unique_ptr<xmlXPathObject, XPathObjectFree> result(xmlXPathCompiledEval(expr, ctx.get()));
  if (!result) return "XPath '" + text + "' cannot be evaluated" + (errors.empty() ? "" : ": " + errors);
  return std::nullopt;
}

std::vector<std::string> xpath_values(const FeedSource& source, xmlXPathContext* ctx, xmlNode* record) {
  ctx->node = record;
  std::vector<std::string> out;
  std::unique_ptr<xmlXPathObject, XPathObjectFree> result(
      xmlXPathCompiledEval(static_cast<xmlXPathCompExpr*>(source.compiled.get()), ctx));
  if (!result) return out;
  if (result->type == XPATH_NODESET) {
    if (result->nodesetval == nullptr) return out;
    for (int i = 0; i < result->nodesetval->nodeNr; ++i) {
      xmlChar* text = xmlNodeGetContent(result->nodesetval->nodeTab[i]);
      out.emplace_back(text ? reinterpret_cast<const char*>(text) : "");
      xmlFree(text);
    }
    return out;
  }
  xmlChar* text = xmlXPathCastToString(result.get());
  out.emplace_back(text ? reinterpret_cast<const char*>(text) : "");
  xmlFree(text);
  return out;
}

// A misspelt setting is a mistake, not something to ignore.
std::optional<Mistake> only_keys(const Node& object, const std::string& where,
                                 std::initializer_list<std::string_view> known) {
  for (const auto& [key, value] : object.members()) {
    if (std::find(known.begin(), known.end(), key) == known.end())
      return Mistake{where.empty() ? key : where + "." + key, "unknown setting '" + key + "'"};
  }
  return std::nullopt;
}

class MappingLoader {
 public:
  MappingLoader(const fhir::Model& model, FeedMapping& m) : model_(model), m_(m) {}

  std::optional<Mistake> load(const Node& doc) {
    if (!doc.is_object()) return Mistake{"", "a mapping is a JSON object"};
    for (const auto& [key, value] : doc.members()) {
      static const std::set<std::string, std::less<>> known = {"resourceType", "format", "csv",        "xml",
                                                               "skipWhen",     "fields", "description"};
      if (!known.contains(key)) return Mistake{key, "unknown member '" + key + "'"};
    }
    m_.resource_type = std::string(doc.string_at("resourceType"));
    if (m_.resource_type != "Patient" && m_.resource_type != "Consent")
      return Mistake{"resourceType", "resourceType must be Patient or Consent"};
    const std::string format(doc.string_at("format"));
    if (format == "csv")
      m_.format = FeedMapping::Format::csv;
    else if (format == "xml")
      m_.format = FeedMapping::Format::xml;
    else
      return Mistake{"format", "format must be csv or xml"};
    if (auto mistake =
            m_.format == FeedMapping::Format::csv ? load_csv(doc.find("csv")) : load_xml(doc.find("xml")))
      return mistake;
    if (const Node* skip = doc.find("skipWhen")) {
      if (!skip->is_array()) return Mistake{"skipWhen", "skipWhen must be a list"};
      for (std::size_t i = 0; i < skip->items().size(); ++i) {
        const std::string where = "skipWhen[" + std::to_string(i) + "]";
        if (auto mistake = load_condition(skip->items()[i], where)) return mistake;
      }
    }
    const Node* fields = doc.find("fields");
    if (fields == nullptr || !fields->is_array() || fields->items().empty())
      return Mistake{"fields", "fields must be a non-empty list"};
    for (std::size_t i = 0; i < fields->items().size(); ++i) {
      if (auto mistake = load_field(fields->items()[i], "fields[" + std::to_string(i) + "]")) return mistake;
    }
    return std::nullopt;
  }

 private:
  std::optional<Mistake> load_csv(const Node* csv) {
    if (csv == nullptr || !csv->is_object())
      return Mistake{"csv", "a csv mapping needs \"csv\": {\"columns\": [...]}"};
    if (auto mistake = only_keys(*csv, "csv", {"delimiter", "encoding", "columns"})) return mistake;
    const std::string delimiter(csv->string_at("delimiter"));
    if (delimiter.size() > 1) return Mistake{"csv.delimiter", "the delimiter is one character"};
    if (!delimiter.empty()) m_.csv.delimiter = delimiter[0];
    const std::string encoding(csv->string_at("encoding"));
    if (encoding == "windows-1252")
      m_.csv.encoding = TextEncoding::windows1252;
    else if (!encoding.empty() && encoding != "utf-8")
      return Mistake{"csv.encoding", "encoding must be utf-8 or windows-1252"};
    const Node* columns = csv->find("columns");
    if (columns == nullptr || !columns->is_array() || columns->items().empty())
      return Mistake{"csv.columns", "csv.columns must list the header's column names"};
    for (const auto& c : columns->items()) {
      if (!c.is_string() || c.text().empty())
        return Mistake{"csv.columns", "column names are non-empty strings"};
      m_.columns.push_back(c.text());
    }
    return std::nullopt;
  }

  std::optional<Mistake> load_xml(const Node* xml) {
    if (xml == nullptr || !xml->is_object())
      return Mistake{"xml", "an xml mapping needs \"xml\": {\"record\": ...}"};
    if (auto mistake = only_keys(*xml, "xml", {"namespaces", "record"})) return mistake;
    if (const Node* ns = xml->find("namespaces")) {
      if (!ns->is_object()) return Mistake{"xml.namespaces", "namespaces maps prefixes to URIs"};
      for (const auto& [prefix, uri] : ns->members()) m_.namespaces[prefix] = uri.text();
    }
    m_.record_xpath = std::string(xml->string_at("record"));
    if (m_.record_xpath.empty()) return Mistake{"xml.record", "xml.record is the XPath of each record"};
    if (auto problem = compile_xpath(m_, m_.record_xpath, m_.record_compiled))
      return Mistake{"xml.record", *problem};
    return std::nullopt;
  }

  std::optional<Mistake> load_source(const Node& spec, const std::string& where, FeedSource& source) {
    const Node* column = spec.find("column");
    const Node* xpath = spec.find("xpath");
    const Node* constant = spec.find("constant");
    if ((column != nullptr) + (xpath != nullptr) + (constant != nullptr) != 1)
      return Mistake{where, "give exactly one of column, xpath or constant"};
    if (column != nullptr) {
      if (m_.format != FeedMapping::Format::csv)
        return Mistake{where + ".column", "column is for csv mappings"};
      source.kind = FeedSource::Kind::column;
      source.text = column->text();
      const auto it = std::find(m_.columns.begin(), m_.columns.end(), source.text);
      if (it == m_.columns.end())
        return Mistake{where + ".column", "unknown column '" + source.text + "' (not in csv.columns)"};
      source.column = static_cast<std::size_t>(it - m_.columns.begin());
    } else if (xpath != nullptr) {
      if (m_.format != FeedMapping::Format::xml)
        return Mistake{where + ".xpath", "xpath is for xml mappings"};
      source.kind = FeedSource::Kind::xpath;
      source.text = xpath->text();
      if (auto problem = compile_xpath(m_, source.text, source.compiled))
        return Mistake{where + ".xpath", *problem};
    } else {
      if (!constant->is_string() && !constant->is_bool() && !constant->is_number())
        return Mistake{where + ".constant", "a constant is a string, number or boolean"};
      source.kind = FeedSource::Kind::constant;
      source.constant = *constant;
    }
    return std::nullopt;
  }

  std::optional<Mistake> load_condition(const Node& spec, const std::string& where) {
    FeedCondition c;
    if (!spec.is_object()) return Mistake{where, "a condition is an object"};
    if (auto mistake = only_keys(spec, where, {"column", "xpath", "constant", "empty", "equals"}))
      return mistake;
    if (auto mistake = load_source(spec, where, c.source)) return mistake;
    if (const Node* empty = spec.find("empty"); empty && empty->as_bool()) {
      c.when_empty = true;
    } else if (const Node* equals = spec.find("equals"); equals && equals->is_string()) {
      c.value = equals->text();
    } else {
      return Mistake{where, "a condition needs \"empty\": true or \"equals\": \"...\""};
    }
    m_.skip_when.push_back(std::move(c));
    return std::nullopt;
  }

  std::optional<Mistake> load_transform(const Node& spec, const std::string& where, FeedTransform& t) {
    using K = FeedTransform::Kind;
    if (spec.is_string()) {
      static const std::map<std::string, K, std::less<>> named = {{"trim", K::trim},
                                                                  {"upper", K::upper},
                                                                  {"lower", K::lower},
                                                                  {"title", K::title},
                                                                  {"nhs-number", K::nhs_number}};
      const auto it = named.find(spec.text());
      if (it == named.end()) return Mistake{where, "unknown transform '" + spec.text() + "'"};
      t.kind = it->second;
      return std::nullopt;
    }
    if (!spec.is_object() || spec.members().empty())
      return Mistake{where, "a transform is a name or an object"};
    // The member naming the kind, wherever it stands; "otherwise" goes with "map".
    static constexpr std::string_view kKinds[] = {"date", "map", "default", "patientByIdentifier"};
    const Node::Member* kind = nullptr;
    for (const auto& member : spec.members()) {
      if (std::find(std::begin(kKinds), std::end(kKinds), member.first) == std::end(kKinds)) continue;
      if (kind != nullptr)
        return Mistake{where,
                       "a transform object names one kind (" + kind->first + " or " + member.first + ")"};
      kind = &member;
    }
    if (kind == nullptr) return Mistake{where, "unknown transform '" + spec.members().front().first + "'"};
    if (auto mistake =
            only_keys(spec, where, {kind->first, kind->first == "map" ? "otherwise" : kind->first}))
      return mistake;
    const std::string& key = kind->first;
    const Node& arg = kind->second;
    if (key == "date") {
      t.kind = K::date;
      if (arg.is_string()) t.date_formats.push_back(arg.text());
      for (const auto& f : arg.items()) t.date_formats.push_back(f.text());
      if (t.date_formats.empty()) return Mistake{where + ".date", "date needs a format such as dd/mm/yyyy"};
      for (const auto& f : t.date_formats) {
        if (!valid_date_format(f))
          return Mistake{
              where + ".date",
              "date format '" + f + "' needs yy/yyyy (and m/mm for a day) and no letters but d, m and y"};
      }
    } else if (key == "map") {
      t.kind = K::map;
      if (!arg.is_object() || arg.members().empty())
        return Mistake{where + ".map", "map is an object of value: code"};
      for (const auto& [from, to] : arg.members()) t.table[from] = to.text();
      if (const Node* otherwise = spec.find("otherwise")) t.otherwise = otherwise->text();
    } else if (key == "default") {
      t.kind = K::default_value;
      t.text = arg.text();
    } else if (key == "patientByIdentifier") {
      t.kind = K::patient_by_identifier;
      t.text = arg.text();
      if (t.text.empty()) return Mistake{where, "patientByIdentifier names the identifier system"};
    } else {
      return Mistake{where, "unknown transform '" + key + "'"};
    }
    return std::nullopt;
  }

  std::optional<Mistake> load_field(const Node& spec, const std::string& where) {
    if (!spec.is_object()) return Mistake{where, "a field is an object with path and a source"};
    if (auto mistake = only_keys(
            spec, where, {"path", "column", "xpath", "constant", "transforms", "required", "description"}))
      return mistake;
    FeedField f;
    f.path = std::string(spec.string_at("path"));
    if (f.path.empty()) return Mistake{where, "a field needs a path"};
    if (auto mistake = parse_path(model_, m_.resource_type, f.path, f))
      return Mistake{where + ".path", mistake->reason};
    if (auto mistake = load_source(spec, where, f.source)) return mistake;
    if (f.steps.back().index == PathStep::kAll && f.source.kind != FeedSource::Kind::xpath)
      return Mistake{where + ".path", "[*] takes every node of an xpath source"};
    if (const Node* required = spec.find("required")) f.required = required->as_bool();
    if (const Node* transforms = spec.find("transforms")) {
      if (!transforms->is_array()) return Mistake{where + ".transforms", "transforms is a list"};
      for (std::size_t i = 0; i < transforms->items().size(); ++i) {
        FeedTransform t;
        if (auto mistake =
                load_transform(transforms->items()[i], where + ".transforms[" + std::to_string(i) + "]", t))
          return mistake;
        f.transforms.push_back(std::move(t));
      }
    }
    for (const auto& t : f.transforms) {
      if (t.kind == FeedTransform::Kind::patient_by_identifier && f.primitive_type != "string")
        return Mistake{where, "patientByIdentifier fills a reference (e.g. patient.reference)"};
    }
    if (f.source.kind != FeedSource::Kind::constant) {
      std::string prefix = m_.resource_type;
      for (const auto& step : f.steps) {
        prefix += "." + step.name;
        if (step.index >= 0) {
          prefix += "[" + std::to_string(step.index) + "]";
          if (std::find(m_.data_items.begin(), m_.data_items.end(), prefix) == m_.data_items.end())
            m_.data_items.push_back(prefix);
        }
      }
    }
    m_.fields.push_back(std::move(f));
    return std::nullopt;
  }

  const fhir::Model& model_;
  FeedMapping& m_;
};

std::string source_name(const FeedSource& s) {
  return s.kind == FeedSource::Kind::column ? "column '" + s.text + "'" : "xpath '" + s.text + "'";
}

std::vector<std::string> source_values(const FeedSource& source, const FeedRecord& record) {
  if (source.kind == FeedSource::Kind::constant) return {source.constant.text()};
  return record.values(source);
}

// Applies the transforms; a reason when the value cannot be used.
std::optional<std::string> transform(const FeedField& field, std::string& value,
                                     std::optional<FeedLookup>& lookup) {
  using K = FeedTransform::Kind;
  for (const auto& t : field.transforms) {
    switch (t.kind) {
      case K::trim:
        value = trim(value);
        break;
      case K::upper:
        value = change_case(value, 'U');
        break;
      case K::lower:
        value = change_case(value, 'L');
        break;
      case K::title:
        value = change_case(value, 'T');
        break;
      case K::default_value:
        if (value.empty()) value = t.text;
        break;
      case K::nhs_number: {
        if (value.empty()) break;
        std::string digits;
        for (char c : value) {
          if (c != ' ' && c != '-') digits += c;
        }
        if (!valid_nhs_number(digits))
          return "'" + value + "' is not a valid NHS number (ten digits with the Modulus 11 check digit)";
        value = digits;
        break;
      }
      case K::date: {
        if (value.empty()) break;
        std::optional<std::string> date;
        for (const auto& f : t.date_formats) {
          if ((date = parse_date(value, f))) break;
        }
        if (!date) {
          std::string formats;
          for (const auto& f : t.date_formats) formats += (formats.empty() ? "" : " or ") + f;
          return "'" + value + "' is not a date in the form " + formats;
        }
        value = *date;
        break;
      }
      case K::map: {
        if (value.empty()) break;
        if (const auto it = t.table.find(value); it != t.table.end()) {
          value = it->second;
        } else if (t.otherwise) {
          value = *t.otherwise;
        } else {
          return "'" + value + "' is not one of the mapped values";
        }
        break;
      }
      case K::patient_by_identifier:
        if (value.empty()) break;
        lookup = FeedLookup{field.steps, field.path, t.text, value};
        value = "Patient/pending-lookup";
        break;
    }
  }
  return std::nullopt;
}

std::optional<Node> typed_value(const FeedField& field, const std::string& value) {
  switch (field.json) {
    case fhir::JsonPrimitive::boolean:
      if (value == "true" || value == "false") return Node::boolean(value == "true");
      return std::nullopt;
    case fhir::JsonPrimitive::number: {
      char* end = nullptr;
      errno = 0;
      std::strtod(value.c_str(), &end);
      if (value.empty() || end != value.c_str() + value.size() || errno != 0) return std::nullopt;
      return Node::number(value);
    }
    case fhir::JsonPrimitive::string:
      return Node::string(value);
  }
  return std::nullopt;
}

std::string item_prefix(const std::string& type, const std::vector<PathStep>& steps, std::size_t upto) {
  std::string p = type;
  for (std::size_t i = 0; i <= upto; ++i) {
    p += "." + steps[i].name;
    if (steps[i].index >= 0) p += "[" + std::to_string(steps[i].index) + "]";
  }
  return p;
}

// Removes the data items (see the header) that no data reached, deepest first.
void drop_empty_items(const FeedMapping& m, const std::set<std::string>& reached, Node& resource) {
  for (auto it = m.data_items.rbegin(); it != m.data_items.rend(); ++it) {
    if (reached.contains(*it)) continue;
    // Walk to the array that holds the item.
    std::string path = it->substr(m.resource_type.size() + 1);
    Node* at = &resource;
    std::size_t pos = 0;
    bool found = true;
    int last_index = -1;
    Node* array = nullptr;
    while (found && pos < path.size()) {
      const std::size_t dot = path.find('.', pos);
      std::string seg = path.substr(pos, dot == std::string::npos ? std::string::npos : dot - pos);
      int index = -1;
      if (const auto open = seg.find('['); open != std::string::npos) {
        index = std::stoi(seg.substr(open + 1));
        seg.resize(open);
      }
      Node* child = at->find(seg);
      if (child == nullptr) {
        found = false;
        break;
      }
      if (index >= 0) {
        if (!child->is_array() || static_cast<std::size_t>(index) >= child->items().size()) {
          found = false;
          break;
        }
        array = child;
        last_index = index;
        at = &child->items()[static_cast<std::size_t>(index)];
      } else {
        at = child;
      }
      pos = dot == std::string::npos ? path.size() : dot + 1;
    }
    if (!found || array == nullptr) continue;
    array->items().erase(array->items().begin() + last_index);
  }
  // Arrays and objects left empty go too.
  std::function<bool(Node&)> prune = [&](Node& n) -> bool {
    if (n.is_object()) {
      auto& members = n.members();
      members.erase(
          std::remove_if(members.begin(), members.end(), [&](auto& member) { return prune(member.second); }),
          members.end());
      return members.empty();
    }
    if (n.is_array()) {
      auto& items = n.items();
      items.erase(std::remove_if(items.begin(), items.end(), [&](Node& i) { return prune(i); }), items.end());
      return items.empty();
    }
    return false;
  };
  for (auto& member : resource.members()) prune(member.second);
  auto& members = resource.members();
  members.erase(std::remove_if(members.begin(), members.end(),
                               [](auto& member) {
                                 return (member.second.is_object() && member.second.members().empty()) ||
                                        (member.second.is_array() && member.second.items().empty());
                               }),
                members.end());
}

}  // namespace

bool valid_nhs_number(std::string_view digits) {
  if (digits.size() != 10 ||
      !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return false;
  int sum = 0;
  for (int i = 0; i < 9; ++i) sum += (digits[static_cast<std::size_t>(i)] - '0') * (10 - i);
  int check = 11 - sum % 11;
  if (check == 11) check = 0;
  return check != 10 && check == digits[9] - '0';
}

void set_at(Node& root, const std::vector<PathStep>& steps, Node value) {
  Node* at = &root;
  for (std::size_t i = 0; i < steps.size(); ++i) {
    const PathStep& step = steps[i];
    const bool last = i + 1 == steps.size();
    Node* child = at->find(step.name);
    if (step.index == PathStep::kNone) {
      if (last) {
        at->set(step.name, std::move(value));
        return;
      }
      if (child == nullptr || !child->is_object()) child = &at->set(step.name, Node::object());
      at = child;
      continue;
    }
    if (child == nullptr || !child->is_array()) child = &at->set(step.name, Node::array());
    if (step.index == PathStep::kAll) {
      child->push(std::move(value));
      return;
    }
    const auto index = static_cast<std::size_t>(step.index);
    while (child->items().size() <= index) child->push(last ? Node::null() : Node::object());
    if (last) {
      child->items()[index] = std::move(value);
      return;
    }
    at = &child->items()[index];
    if (!at->is_object()) *at = Node::object();
  }
}

Result<std::shared_ptr<const FeedMapping>> load_feed_mapping(const fhir::Model& model,
                                                             std::string_view json_text,
                                                             const std::string& file) {
  auto fail = [&](const std::string& where, const std::string& reason, int line) -> Error {
    std::string text = file + (line > 0 ? ":" + std::to_string(line) : "") + ": " + reason;
    Error e = Error::make(ErrorCode::invalid_input, text);
    e.internal = text;
    (void)where;
    return e;
  };
  auto doc = fhir::parse_json(json_text);
  if (!doc) {
    const auto& issue = doc.error().issues.front();
    return fail("", "not JSON: " + issue.diagnostics, issue.line);
  }
  auto mapping = std::make_shared<FeedMapping>();
  mapping->file = file;
  MappingLoader loader(model, *mapping);
  if (auto mistake = loader.load(*doc)) {
    // Located like a resource's issue: the document's resourceType (when it has one) is the root.
    std::string root(doc->string_at("resourceType"));
    if (root.empty()) root = "mapping";
    std::vector<Issue> issues(1);
    issues[0].expression = mistake->where.empty() ? root : root + "." + mistake->where;
    fhir::locate_issues(json_text, issues, "mapping");
    return fail(mistake->where, mistake->reason, issues[0].line);
  }
  return std::shared_ptr<const FeedMapping>(std::move(mapping));
}

Result<std::shared_ptr<const FeedMapping>> load_feed_mapping_file(const fhir::Model& model,
                                                                  const std::string& path) {
  auto text = fhir::read_file(path);
  if (!text) return Error::make(ErrorCode::invalid_input, path + ": cannot be read");
  return load_feed_mapping(model, *text, path);
}

Result<CsvHeader> CsvHeader::bind(const FeedMapping& mapping, const std::vector<std::string>& header) {
  CsvHeader h;
  h.width_ = header.size();
  std::string missing;
  for (const auto& column : mapping.columns) {
    std::size_t found = SIZE_MAX;
    for (std::size_t i = 0; i < header.size(); ++i) {
      if (trim(header[i]) == column) {
        found = i;
        break;
      }
    }
    if (found == SIZE_MAX) missing += (missing.empty() ? "'" : ", '") + column + "'";
    h.positions_.push_back(found);
  }
  if (!missing.empty())
    return Error::make(ErrorCode::invalid_input,
                       "the header row lacks the column(s) " + missing + " that " + mapping.file + " maps");
  return h;
}

std::vector<std::string> CsvFeedRecord::values(const FeedSource& source) const {
  const std::size_t at = header_.position(source.column);
  return {at < fields_.size() ? fields_[at] : std::string()};
}

MappedRecord map_record(const FeedMapping& mapping, const FeedRecord& record) {
  MappedRecord out;
  for (const auto& condition : mapping.skip_when) {
    const auto values = source_values(condition.source, record);
    const std::string value = values.empty() ? std::string() : trim(values.front());
    if (condition.when_empty ? value.empty() : value == condition.value) {
      out.kind = MappedRecord::Kind::skipped;
      out.reason =
          source_name(condition.source) + (condition.when_empty ? " is empty" : " is '" + value + "'");
      return out;
    }
  }
  out.resource = Node::object();
  out.resource.set("resourceType", Node::string(mapping.resource_type));
  std::set<std::string> reached;
  for (const auto& field : mapping.fields) {
    auto values = source_values(field.source, record);
    // One value per element unless the path ends in [*]: the first node an XPath selects, as XPath does.
    if (values.size() > 1 && field.steps.back().index != PathStep::kAll) values.resize(1);
    bool any = false;
    for (auto& value : values) {
      std::optional<FeedLookup> lookup;
      if (auto problem = transform(field, value, lookup)) {
        out.kind = MappedRecord::Kind::rejected;
        out.reason = source_name(field.source) + " (" + field.path + "): " + *problem;
        return out;
      }
      if (value.empty()) continue;
      auto typed = typed_value(field, value);
      if (!typed) {
        out.kind = MappedRecord::Kind::rejected;
        out.reason = (field.source.kind == FeedSource::Kind::constant ? std::string("constant")
                                                                      : source_name(field.source)) +
                     " (" + field.path + "): '" + value + "' is not a " + field.primitive_type;
        return out;
      }
      set_at(out.resource, field.steps, std::move(*typed));
      if (lookup) out.lookups.push_back(std::move(*lookup));
      any = true;
      if (field.source.kind != FeedSource::Kind::constant) {
        for (std::size_t i = 0; i < field.steps.size(); ++i) {
          if (field.steps[i].index >= 0) reached.insert(item_prefix(mapping.resource_type, field.steps, i));
        }
      }
    }
    if (!any && field.required) {
      out.kind = MappedRecord::Kind::rejected;
      out.reason = source_name(field.source) + " (" + field.path + ") is required but empty";
      return out;
    }
  }
  drop_empty_items(mapping, reached, out.resource);
  return out;
}

struct XmlFeedDocument::Impl {
  const FeedMapping* mapping = nullptr;
  std::unique_ptr<xmlDoc, DocFree> doc;
  std::unique_ptr<xmlXPathContext, XPathContextFree> ctx;
  std::unique_ptr<xmlXPathObject, XPathObjectFree> records;
  std::string errors;
};

namespace {
class XmlFeedRecord : public FeedRecord {
 public:
  XmlFeedRecord(xmlXPathContext* ctx, xmlNode* node) : ctx_(ctx), node_(node) {}
  std::vector<std::string> values(const FeedSource& source) const override {
    return xpath_values(source, ctx_, node_);
  }

 private:
  xmlXPathContext* ctx_;
  xmlNode* node_;
};
}  // namespace

Result<std::unique_ptr<XmlFeedDocument>> XmlFeedDocument::parse(const FeedMapping& mapping,
                                                                std::string_view xml, std::size_t max_bytes) {
  if (xml.size() > max_bytes || xml.size() > static_cast<std::size_t>(INT_MAX))
    return Error::make(ErrorCode::invalid_input,
                       "the XML document is larger than " + std::to_string(max_bytes) + " bytes");
  if (const auto at = xml.find("<!DOCTYPE"); at != std::string_view::npos) {
    Error e = Error::make(ErrorCode::invalid_input, "DTDs are not allowed in feed documents");
    e.issues.front().line =
        static_cast<int>(std::count(xml.begin(), xml.begin() + static_cast<long>(at), '\n')) + 1;
    return e;
  }
  std::unique_ptr<xmlParserCtxt, void (*)(xmlParserCtxtPtr)> parser(xmlNewParserCtxt(), xmlFreeParserCtxt);
  if (!parser) return Error::make(ErrorCode::internal, "cannot create an XML parser");
  std::unique_ptr<xmlDoc, DocFree> doc(
      xmlCtxtReadMemory(parser.get(), xml.data(), static_cast<int>(xml.size()), nullptr, nullptr,
                        XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING));
  if (!doc || !parser->wellFormed) {
    const xmlError* err = xmlCtxtGetLastError(parser.get());
    Error e = Error::make(ErrorCode::invalid_input,
                          "the XML is not well-formed: " +
                              (err && err->message ? trim(err->message) : std::string("empty document")));
    if (err) {
      e.issues.front().line = err->line;
      e.issues.front().column = err->int2;
    }
    return e;
  }
  auto self = std::unique_ptr<XmlFeedDocument>(new XmlFeedDocument());
  self->impl_ = std::make_unique<Impl>();
  auto& impl = *self->impl_;
  impl.mapping = &mapping;
  impl.doc = std::move(doc);
  impl.ctx = xpath_context(mapping, impl.doc.get(), &impl.errors);
  impl.ctx->node = xmlDocGetRootElement(impl.doc.get());
  impl.records.reset(
      xmlXPathCompiledEval(static_cast<xmlXPathCompExpr*>(mapping.record_compiled.get()), impl.ctx.get()));
  if (!impl.records || impl.records->type != XPATH_NODESET)
    return Error::make(ErrorCode::invalid_input,
                       "xml.record '" + mapping.record_xpath + "' does not select elements");
  return self;
}

XmlFeedDocument::~XmlFeedDocument() = default;

std::size_t XmlFeedDocument::size() const {
  const auto* set = impl_->records->nodesetval;
  return set == nullptr ? 0 : static_cast<std::size_t>(set->nodeNr);
}

long XmlFeedDocument::line(std::size_t i) const {
  return xmlGetLineNo(impl_->records->nodesetval->nodeTab[i]);
}

MappedRecord XmlFeedDocument::map(std::size_t i) const {
  assert(i < size());
  XmlFeedRecord record(impl_->ctx.get(), impl_->records->nodesetval->nodeTab[i]);
  return map_record(*impl_->mapping, record);
}

}  // namespace fhirgate::mappers
