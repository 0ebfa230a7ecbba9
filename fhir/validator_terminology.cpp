// Rules on the terminology resources themselves (CodeSystem, ValueSet, ConceptMap), from the R4
// terminology module (https://hl7.org/fhir/R4/terminology-module.html) and the concept-properties code
// system the reference validator uses:
// - a canonical resource's url is absolute (a contained one's too, when present);
// - CodeSystem.property: one definition per code and per URI; a standard property URI
//   (http://hl7.org/fhir/concept-properties#...) keeps its standard code and type, and a standard code
//   without its URI is ambiguous (warning);
// - CodeSystem.concept.property: declared in CodeSystem.property, with a value of the declared type;
//   a synonym names another code of the system;
// - a supplement has content = supplement and only adds to codes its base defines;
// - ValueSet.compose include/exclude: system and valueSet are absolute canonicals; a filter on a
//   property of a CodeSystem we hold names a property (or filter) that CodeSystem defines, and a value
//   of a Coding-typed property names a code that exists.
// Checks that need the content of a code system we do not hold (SNOMED CT, LOINC...) are not guessed:
// they say they could not be made.
#include "fhir/validator_terminology.hpp"

#include <array>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "fhir/fhirpath.hpp"

namespace fhirgate::fhir {
namespace {

constexpr std::string_view kPropertyUriPrefix = "http://hl7.org/fhir/concept-properties#";

struct KnownProperty {
  std::string_view code;
  std::string_view type;
};

// The standard concept properties (http://hl7.org/fhir/concept-properties) and their types.
constexpr std::array<KnownProperty, 14> kKnownProperties = {{
    {"status", "code"},
    {"inactive", "boolean"},
    {"effectiveDate", "dateTime"},
    {"deprecationDate", "dateTime"},
    {"retirementDate", "dateTime"},
    {"notSelectable", "boolean"},
    {"parent", "code"},
    {"child", "code"},
    {"partOf", "code"},
    {"synonym", "code"},
    {"comment", "string"},
    {"itemWeight", "decimal"},
    {"order", "decimal"},
    {"deprecated", "dateTime"},
}};

const KnownProperty* known_property(std::string_view code) {
  for (const KnownProperty& p : kKnownProperties) {
    if (p.code == code) return &p;
  }
  return nullptr;
}

// An RFC 3986 scheme: a letter, then letters, digits, '+', '-', '.' (case-insensitive).
bool is_scheme(std::string_view s) {
  const auto letter = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); };
  if (s.empty() || !letter(s.front())) return false;
  for (char c : s) {
    if (!(letter(c) || (c >= '0' && c <= '9') || c == '+' || c == '-' || c == '.')) return false;
  }
  return true;
}

std::string index_path(std::string_view name, std::size_t i) {
  return std::string(name) + "[" + std::to_string(i) + "]";
}

// The type a concept property value has, from its value[x] member.
std::string_view value_type(const Node& property) {
  for (const auto& [name, value] : property.members()) {
    if (name.size() > 5 && name.starts_with("value")) {
      static constexpr std::array<std::pair<std::string_view, std::string_view>, 7> kTypes = {{
          {"valueCode", "code"},
          {"valueCoding", "Coding"},
          {"valueString", "string"},
          {"valueInteger", "integer"},
          {"valueBoolean", "boolean"},
          {"valueDateTime", "dateTime"},
          {"valueDecimal", "decimal"},
      }};
      for (const auto& [member, type] : kTypes) {
        if (name == member) return type;
      }
      return std::string_view(name).substr(5);
    }
  }
  return {};
}

struct PropertyDefinition {
  std::string uri;
  std::string type;
};

// CodeSystem.property: duplicates and the standard properties' codes and types. Fills `by_code` with
// the first definition of each code (what concept properties are checked against).
void check_property_definitions(RuleContext& ctx, std::map<std::string, PropertyDefinition>& by_code) {
  const Node* list = ctx.resource.find("property");
  if (list == nullptr) return;
  std::map<std::string, std::size_t, std::less<>> uris;
  for (std::size_t i = 0; i < list->items().size(); ++i) {
    const Node& p = list->items()[i];
    const std::string at = index_path("property", i);
    const std::string_view uri = p.string_at("uri");
    const std::string_view code = p.string_at("code");
    const std::string_view type = p.string_at("type");
    const KnownProperty* by_uri = nullptr;
    if (!uri.empty()) {
      if (uris.count(uri)) {
        ctx.error("business-rule", "A property is already defined with the URI '" + std::string(uri) + "'",
                  at);
      } else {
        uris.emplace(std::string(uri), i);
        if (uri.starts_with(kPropertyUriPrefix))
          by_uri = known_property(uri.substr(kPropertyUriPrefix.size()));
      }
    }
    if (!code.empty()) {
      if (by_code.count(std::string(code))) {
        ctx.error("business-rule", "A property is already defined with the code '" + std::string(code) + "'",
                  at);
      } else {
        by_code.emplace(std::string(code), PropertyDefinition{std::string(uri), std::string(type)});
      }
    }
    if (by_uri != nullptr) {
      if (!code.empty() && code != by_uri->code) {
        ctx.error("business-rule",
                  "The URI '" + std::string(uri) + "' is normally assigned the code '" +
                      std::string(by_uri->code) + "'. Using the code '" + std::string(code) +
                      "' will usually create confusion in ValueSet filters etc",
                  at);
      }
      if (!type.empty() && type != by_uri->type) {
        ctx.error("business-rule",
                  "Wrong type '" + std::string(type) + "': The URI '" + std::string(uri) +
                      "' identifies a property that has the type '" + std::string(by_uri->type) + "'",
                  at);
      }
    }
    if (uri.empty() && !code.empty()) {
      if (const KnownProperty* by_code_known = known_property(code)) {
        ctx.warning("business-rule",
                    "This property has only the standard code ('" + std::string(code) +
                        "') but not the standard URI '" + std::string(kPropertyUriPrefix) +
                        std::string(code) +
                        "', so it has no clearly defined meaning in the terminology ecosystem",
                    at);
        if (!type.empty() && type != by_code_known->type) {
          ctx.warning("business-rule",
                      "Wrong type '" + std::string(type) + "': The code '" + std::string(code) +
                          "' identifies a property that has the type '" + std::string(by_code_known->type) +
                          "'",
                      at);
        }
      }
    }
  }
}

// Collects the codes of every concept (nested ones too); returns how many concepts there are.
std::size_t collect_codes(const Node& concepts, std::map<std::string, int, std::less<>>& codes) {
  std::size_t total = 0;
  for (const Node& c : concepts.items()) {
    ++total;
    if (const std::string_view code = c.string_at("code"); !code.empty()) codes.emplace(std::string(code), 0);
    if (const Node* sub = c.find("concept")) total += collect_codes(*sub, codes);
  }
  return total;
}

struct ConceptScope {
  const std::map<std::string, PropertyDefinition>& properties;
  const std::map<std::string, int, std::less<>>& codes;
  std::string_view language;  // CodeSystem.language
  bool hl7_defined;
  std::string_view supplements;  // the base code system, for a supplement
};

bool is_synonym(std::string_view code, const PropertyDefinition& def) {
  if (!def.uri.empty()) return def.uri == std::string(kPropertyUriPrefix) + "synonym";
  return code == "synonym";
}

void check_concepts(RuleContext& ctx, const Node& list, const std::string& at, const ConceptScope& scope,
                    bool& base_unavailable_reported) {
  for (std::size_t i = 0; i < list.items().size(); ++i) {
    const Node& concept_node = list.items()[i];
    const std::string here = at + index_path("concept", i);
    const std::string_view code = concept_node.string_at("code");
    if (!scope.supplements.empty() && !code.empty()) {
      const Terminology::Answer answer = ctx.terminology.defines(scope.supplements, code);
      if (answer == Terminology::Answer::not_member) {
        std::string message = "The code '" + std::string(code) + "' is not declared in the base CodeSystem " +
                              std::string(scope.supplements) + " so is not valid in the supplement";
        if (const std::string_view rule = Terminology::syntax_rule(scope.supplements); !rule.empty())
          message += " (" + std::string(rule) + ")";
        ctx.error("business-rule", std::move(message), here);
      } else if (answer == Terminology::Answer::unknown && !base_unavailable_reported) {
        base_unavailable_reported = true;
        ctx.warning("not-supported",
                    "The codes of this supplement cannot be checked against its base CodeSystem " +
                        std::string(scope.supplements) + " (cannot check: needs a terminology server)",
                    "supplements");
      }
    }
    if (scope.hl7_defined && concept_node.find("definition") == nullptr) {
      ctx.warning("business-rule",
                  "HL7 Defined CodeSystems should ensure that every concept has a definition", here);
    }
    if (const Node* designations = concept_node.find("designation")) {
      const std::string_view display = concept_node.string_at("display");
      for (std::size_t d = 0; d < designations->items().size(); ++d) {
        const Node& designation = designations->items()[d];
        if (display.empty() || designation.find("use") != nullptr) continue;
        std::string_view language = designation.string_at("language");
        if (language.empty()) language = scope.language;
        if (language.empty() || language != scope.language) continue;
        ctx.warning("business-rule",
                    "The designation '" + std::string(designation.string_at("value")) +
                        "' has no use and is in the same language ('" + std::string(language) +
                        "'), so is not differentiated from the base display ('" + std::string(display) + "')",
                    here + "." + index_path("designation", d));
      }
    }
    if (const Node* properties = concept_node.find("property")) {
      for (std::size_t p = 0; p < properties->items().size(); ++p) {
        const Node& property = properties->items()[p];
        const std::string where = here + "." + index_path("property", p);
        const std::string_view name = property.string_at("code");
        if (name.empty()) continue;
        const auto def = scope.properties.find(std::string(name));
        if (def == scope.properties.end()) {
          ctx.warning(
              "business-rule",
              "The property '" + std::string(name) +
                  "' has no definition in CodeSystem.property. Many terminology tools won't know what to "
                  "do with it",
              where);
          continue;
        }
        const std::string_view type = value_type(property);
        if (!def->second.type.empty() && !type.empty() && type != def->second.type) {
          ctx.error("business-rule",
                    "The property '" + std::string(name) + "' has the invalid type '" + std::string(type) +
                        "', when it is defined to have the type '" + def->second.type + "'",
                    where);
        }
        if (is_synonym(name, def->second)) {
          std::string value;
          for (const auto& [member, v] : property.members()) {
            if (member.starts_with("value"))
              value = v.is_object() ? std::string(v.string_at("code")) : v.text();
          }
          if (!value.empty() && !scope.codes.count(value)) {
            ctx.warning(
                "business-rule",
                "The synonym '" + value +
                    "' is not also defined in the code system. The Synonym property should only used to "
                    "declare equivalence to other existing codes",
                where);
          }
        }
      }
    }
    if (const Node* sub = concept_node.find("concept")) {
      check_concepts(ctx, *sub, here + ".", scope, base_unavailable_reported);
    }
  }
}

void check_code_system(RuleContext& ctx) {
  const Node& cs = ctx.resource;
  const std::string_view supplements = cs.string_at("supplements");
  if (supplements.empty() && cs.find("caseSensitive") == nullptr) {
    ctx.information(
        "business-rule",
        "CodeSystems SHOULD have a stated value for the caseSensitive element so that users know the "
        "status and meaning of the code system clearly");
  }
  if (!supplements.empty() && cs.string_at("content") != "supplement") {
    ctx.error("business-rule", "CodeSystem Supplements SHALL have a content value of 'supplement'",
              cs.find("content") != nullptr ? "content" : "");
  }
  std::map<std::string, PropertyDefinition> properties;
  check_property_definitions(ctx, properties);
  const Node* concepts = cs.find("concept");
  std::map<std::string, int, std::less<>> codes;
  const std::size_t total = concepts == nullptr ? 0 : collect_codes(*concepts, codes);
  if (const Node* count = cs.find("count"); count != nullptr && count->is_number() &&
                                            cs.string_at("content") == "complete" &&
                                            count->text() != std::to_string(total)) {
    ctx.error("business-rule",
              "The code system is complete, but the number of concepts (" + std::to_string(total) +
                  ") does not match the stated total number (" + count->text() + ")",
              "count");
  }
  if (concepts == nullptr) return;
  const std::string_view url = cs.string_at("url");
  const ConceptScope scope{
      properties, codes, cs.string_at("language"),
      url.starts_with("http://hl7.org/fhir") || url.starts_with("http://terminology.hl7.org"), supplements};
  bool base_unavailable_reported = false;
  check_concepts(ctx, *concepts, "", scope, base_unavailable_reported);
}

// A filter's property names something the code system defines: a property, a filter, or one of the
// properties every code system has.
bool filter_property_known(const Node& code_system, std::string_view property) {
  if (property == "concept" || property == "code" || known_property(property) != nullptr) return true;
  for (std::string_view list : {"property", "filter"}) {
    if (const Node* items = code_system.find(list)) {
      for (const Node& item : items->items()) {
        if (item.string_at("code") == property) return true;
      }
    }
  }
  return false;
}

void check_filter(RuleContext& ctx, const Node& filter, std::string_view system, const Node* code_system,
                  const std::string& at) {
  const std::string_view property = filter.string_at("property");
  if (code_system == nullptr || property.empty()) return;
  if (!filter_property_known(*code_system, property)) {
    ctx.warning("business-rule",
                "The property '" + std::string(property) + "' is not defined by the CodeSystem " +
                    std::string(system) +
                    ", so the filter may not be understood by the terminology ecosystem",
                at);
    return;
  }
  std::string_view type;
  if (const Node* properties = code_system->find("property")) {
    for (const Node& p : properties->items()) {
      if (p.string_at("code") == property) type = p.string_at("type");
    }
  }
  const std::string_view value = filter.string_at("value");
  if (type != "Coding" || value.empty()) return;
  const auto hash = value.find('#');
  const std::string_view value_system = hash == std::string_view::npos ? system : value.substr(0, hash);
  const std::string_view value_code = hash == std::string_view::npos ? value : value.substr(hash + 1);
  if (ctx.terminology.defines(value_system, value_code) == Terminology::Answer::not_member) {
    ctx.error("code-invalid",
              "The value for a filter based on property '" + std::string(property) + "' is '" +
                  std::string(value) + "' which is not a valid code (Unknown code '" +
                  std::string(value_code) + "' in the CodeSystem '" + std::string(value_system) + "')",
              at);
  }
}

// A syntax check of SNOMED CT Expression Constraint Language (ECL 2, brief syntax) for the `constraint`
// filter of a SNOMED CT value set: focus concepts (identifier with optional |term|, *, or a bracketed
// constraint) under constraint operators (<, <<, <!, <<!, >, >>, >!, >>!, !!<, !!>) and member-of (^),
// joined by AND / OR / MINUS / ",", refined after ':' by attributes ([cardinality] [R] name
// comparator value), attribute groups ({...}) and dotted attributes. Constructs it does not read
// (filters {{...}}, alternate identifiers, concrete values of unusual forms) leave the answer open:
// only a definite syntax error is reported.
class EclChecker {
 public:
  explicit EclChecker(std::string_view text) : s_(text) {}
  // nullopt: well formed, or not decidable here; otherwise the position of the error.
  std::optional<std::size_t> error() {
    ws();
    if (!expression() || unsupported_) return unsupported_ ? std::nullopt : std::optional(pos_);
    ws();
    if (pos_ != s_.size()) return pos_;
    return std::nullopt;
  }

 private:
  bool at_end() const { return pos_ >= s_.size(); }
  char peek(std::size_t ahead = 0) const { return pos_ + ahead < s_.size() ? s_[pos_ + ahead] : '\0'; }
  void ws() {
    while (!at_end()) {
      if (peek() == ' ' || peek() == '\t' || peek() == '\n' || peek() == '\r') {
        ++pos_;
      } else if (peek() == '/' && peek(1) == '*') {
        const auto end = s_.find("*/", pos_ + 2);
        pos_ = end == std::string_view::npos ? s_.size() : end + 2;
      } else {
        return;
      }
    }
  }
  bool take(std::string_view token) {
    if (s_.substr(pos_).starts_with(token)) {
      pos_ += token.size();
      return true;
    }
    return false;
  }
  // A keyword (case-insensitive) followed by a space or a bracket.
  bool keyword(std::string_view word) {
    if (pos_ + word.size() > s_.size()) return false;
    for (std::size_t i = 0; i < word.size(); ++i) {
      char c = s_[pos_ + i];
      if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
      if (c != word[i]) return false;
    }
    const char after = pos_ + word.size() < s_.size() ? s_[pos_ + word.size()] : '\0';
    if (after != ' ' && after != '\t' && after != '\n' && after != '\r' && after != '(') return false;
    pos_ += word.size();
    return true;
  }
  bool digits(std::size_t min, std::size_t max) {
    const std::size_t start = pos_;
    while (!at_end() && peek() >= '0' && peek() <= '9') ++pos_;
    return pos_ - start >= min && pos_ - start <= max;
  }

  bool expression() {
    if (!sub_expression()) return false;
    ws();
    if (peek() == ':') {
      ++pos_;
      ws();
      return refinement();
    }
    if (peek() == '.') {
      while (peek() == '.') {
        ++pos_;
        ws();
        if (!sub_expression()) return false;
        ws();
      }
      return true;
    }
    while (true) {
      const std::size_t mark = pos_;
      if (keyword("AND") || keyword("OR") || keyword("MINUS") || take(",")) {
        ws();
        if (!sub_expression()) return false;
        ws();
        continue;
      }
      pos_ = mark;
      return true;
    }
  }

  bool sub_expression() {
    if (++steps_ > kMaxSteps) {
      unsupported_ = true;
      return false;
    }
    if (take("!!<") || take("!!>") || take("<<!") || take(">>!") || take("<<") || take(">>") || take("<!") ||
        take(">!") || take("<") || take(">")) {
      ws();
    }
    if (take("^")) {
      ws();
      if (peek() == '[') {
        unsupported_ = true;
        return false;
      }
    }
    if (!focus()) return false;
    ws();
    if (s_.substr(pos_).starts_with("{{")) {
      unsupported_ = true;
      return false;
    }
    return true;
  }

  bool focus() {
    if (take("*")) return true;
    if (take("(")) {
      if (++depth_ > kMaxDepth) {
        unsupported_ = true;
        return false;
      }
      ws();
      if (!expression()) return false;
      ws();
      --depth_;
      return take(")");
    }
    if (!(peek() >= '0' && peek() <= '9')) {
      if ((peek() >= 'a' && peek() <= 'z') || (peek() >= 'A' && peek() <= 'Z')) unsupported_ = true;
      return false;
    }
    if (!digits(6, 18)) return false;
    const std::size_t mark = pos_;
    ws();
    if (take("|")) {
      const auto end = s_.find('|', pos_);
      if (end == std::string_view::npos) return false;
      pos_ = end + 1;
    } else {
      pos_ = mark;
    }
    return true;
  }

  bool refinement() {
    if (!sub_refinement()) return false;
    ws();
    while (true) {
      const std::size_t mark = pos_;
      if (keyword("AND") || keyword("OR") || take(",")) {
        ws();
        if (!sub_refinement()) return false;
        ws();
        continue;
      }
      pos_ = mark;
      return true;
    }
  }

  bool sub_refinement() {
    if (++depth_ > kMaxDepth) {
      unsupported_ = true;
      return false;
    }
    const bool ok = sub_refinement_at_depth();
    --depth_;
    return ok;
  }

  bool sub_refinement_at_depth() {
    if (peek() == '(') {
      const std::size_t mark = pos_;
      ++pos_;
      ws();
      if (refinement()) {
        ws();
        if (take(")")) return true;
      }
      if (unsupported_) return false;
      pos_ = mark;
    }
    if (peek() == '[') {
      const std::size_t mark = pos_;
      if (!cardinality()) return false;
      ws();
      if (peek() != '{') pos_ = mark;
    }
    if (take("{")) {
      ws();
      if (!refinement()) return false;
      ws();
      return take("}");
    }
    return attribute();
  }

  bool cardinality() {
    if (!take("[")) return false;
    ws();
    if (!digits(1, 18)) return false;
    if (!take("..")) return false;
    if (!take("*") && !digits(1, 18)) return false;
    ws();
    return take("]");
  }

  bool attribute() {
    if (peek() == '[') {
      if (!cardinality()) return false;
      ws();
    }
    if (peek() == 'R' && (peek(1) == ' ' || peek(1) == '<' || (peek(1) >= '0' && peek(1) <= '9'))) {
      ++pos_;
      ws();
    }
    if (!sub_expression()) return false;
    ws();
    if (take("!=") || take("=")) {
      ws();
      if (peek() == '#' || peek() == '"' || peek() == 't' || peek() == 'f' || peek() == 'T' ||
          peek() == 'F') {
        unsupported_ = true;
        return false;
      }
      return sub_expression();
    }
    if (take("<=") || take(">=") || take("<") || take(">")) {
      unsupported_ = true;
      return false;
    }
    return false;
  }

  static constexpr int kMaxDepth = 64;       // brackets and nested refinements: deeper is left undecided
  static constexpr int kMaxSteps = 100'000;  // and so is anything that takes more work than this

  std::string_view s_;
  std::size_t pos_ = 0;
  int depth_ = 0;
  int steps_ = 0;
  bool unsupported_ = false;
};

void check_snomed_filter(RuleContext& ctx, const Node& filter, const std::string& at) {
  if (filter.string_at("property") != "constraint") return;
  const std::string_view value = filter.string_at("value");
  if (value.empty()) return;
  if (const auto position = EclChecker(value).error()) {
    ctx.error("invalid",
              "The value '" + std::string(value) + "' for the filter constraint is invalid: Invalid ECL: '" +
                  std::string(value) + "' - parse error at position " + std::to_string(*position + 1),
              at);
  }
}

// A filter value given as an expression (the cqf-expression extension on a parameterised value set's
// filter value): a FHIRPath one must parse.
void check_filter_expression(RuleContext& ctx, const Node& filter, const std::string& at) {
  const Node* value = filter.find("_value");
  if (value == nullptr || !value->is_object()) return;
  const Node* extensions = value->find("extension");
  if (extensions == nullptr) return;
  for (std::size_t i = 0; i < extensions->items().size(); ++i) {
    const Node& x = extensions->items()[i];
    if (x.string_at("url") != "http://hl7.org/fhir/StructureDefinition/cqf-expression") continue;
    const Node* expression = x.find("valueExpression");
    if (expression == nullptr || expression->string_at("language") != "text/fhirpath") continue;
    const std::string_view text = expression->string_at("expression");
    if (text.empty()) continue;
    if (auto compiled = fhirpath::compile(text); !compiled) {
      const auto& issues = compiled.error().issues;
      ctx.error("invalid",
                "The value of the expression '" + std::string(text) + "' is not a valid FHIRPath: " +
                    (issues.empty() ? std::string("syntax error") : issues.front().diagnostics),
                at + ".value." + index_path("extension", i) + ".value.ofType(Expression)");
    }
  }
}

void check_compose_part(RuleContext& ctx, const Node& part, const std::string& at) {
  const std::string_view system = part.string_at("system");
  if (!system.empty() && !is_absolute_url(system)) {
    ctx.error("invalid",
              "URI values in ValueSet.compose.include.system must be absolute. To reference a contained code "
              "system, use the full CodeSystem URL and reference it using the "
              "http://hl7.org/fhir/StructureDefinition/valueset-system extension",
              at);
  }
  if (const Node* value_sets = part.find("valueSet")) {
    for (std::size_t i = 0; i < value_sets->items().size(); ++i) {
      const Node& v = value_sets->items()[i];
      if (v.is_string() && !v.text().starts_with('#') && !is_absolute_url(v.text())) {
        ctx.error(
            "invalid",
            "Canonical URLs must be absolute URLs if they are not fragment references (" + v.text() + ")",
            at + "." + index_path("valueSet", i));
      }
    }
  }
  const Node* filters = part.find("filter");
  if (filters == nullptr) return;
  const Node* code_system = system.empty() ? nullptr : ctx.definitions.find(system, "CodeSystem");
  for (std::size_t i = 0; i < filters->items().size(); ++i) {
    const std::string here = at + "." + index_path("filter", i);
    check_filter_expression(ctx, filters->items()[i], here);
    if (system == "http://snomed.info/sct") check_snomed_filter(ctx, filters->items()[i], here);
    if (!system.empty()) check_filter(ctx, filters->items()[i], system, code_system, here);
  }
}

void check_value_set(RuleContext& ctx) {
  const Node* compose = ctx.resource.find("compose");
  if (compose == nullptr) return;
  for (std::string_view list : {"include", "exclude"}) {
    if (const Node* parts = compose->find(list)) {
      for (std::size_t i = 0; i < parts->items().size(); ++i) {
        check_compose_part(ctx, parts->items()[i], "compose." + index_path(list, i));
      }
    }
  }
}

}  // namespace

bool is_absolute_url(std::string_view url) {
  const auto colon = url.find(':');
  if (colon == std::string_view::npos) return false;
  const std::string_view scheme = url.substr(0, colon);
  const std::string_view rest = url.substr(colon + 1);
  return is_scheme(scheme) && !rest.empty() && rest.find(' ') == std::string_view::npos;
}

void check_canonical_url(RuleContext& ctx) {
  const std::string_view url = ctx.resource.string_at("url");
  if (url.empty() || is_absolute_url(url)) return;
  if (ctx.contained) {
    ctx.error(
        "invalid",
        "Canonical URLs in contained resources must be absolute URLs if present (" + std::string(url) + ")",
        "url");
  } else if (!url.starts_with('#')) {
    ctx.error(
        "invalid",
        "Canonical URLs must be absolute URLs if they are not fragment references (" + std::string(url) + ")",
        "url");
  }
}

void check_terminology(RuleContext& ctx) {
  if (ctx.type == "CodeSystem") {
    check_canonical_url(ctx);
    check_code_system(ctx);
  } else if (ctx.type == "ValueSet") {
    check_canonical_url(ctx);
    check_value_set(ctx);
  } else if (ctx.type == "ConceptMap") {
    check_canonical_url(ctx);
  }
}

}  // namespace fhirgate::fhir
