// QuestionnaireResponse against its Questionnaire (R4 Questionnaire and QuestionnaireResponse, with
// the core questionnaire extensions and the SDC quantity limits), and the one Questionnaire rule whose
// published expression is wrong (que-12, see check_enable_behavior).
//
// The Questionnaire is found by QuestionnaireResponse.questionnaire: a contained one for "#id", else
// among the definitions the validator was given (url or url|version), else an entry of an enclosing
// Bundle. Not found: a warning, nothing else can be checked.
//
// Items are matched level by level by linkId: a response item must name an item of the same level, in
// the Questionnaire's order, and only a repeating item may appear more than once. The items of a group
// are checked below the group; those of a question inside each of its answers. For each Questionnaire
// item, its enableWhen conditions are evaluated against the answers in the response: the answers to a
// condition's question are looked for first among the items beside the one evaluated (and their
// descendants), then one level up and so on, so that a condition inside a repeating group reads the
// answers of its own repetition. A condition on a question with no answer is false (except `exists`
// false). A disabled item must have no answers and disables its descendants; an enabled required item
// must be answered when the response is completed (the spec's meaning of `required`). Each answer is
// checked against the item's type, answerOption / answerValueSet (with the code's display where we know
// it), and the limits the item states: maxLength, minLength, regex, minValue, maxValue,
// maxDecimalPlaces, maxOccurs, unit options and unit value set, quantity limits (in comparable UCUM
// units: equal codes, or metric units that differ by a prefix), reference resource types, attachment
// types and sizes.
//
// Severities follow the reference validator: what the Questionnaire forbids is an error, and so is a
// quantity compared with a limit when either has no formal unit; what cannot be checked (an unknown
// value set, units that are not comparable) is a warning, and an item without options to check an
// answer against earns an information.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "fhir/datetime.hpp"
#include "fhir/regex.hpp"
#include "fhir/validator_rules.hpp"

namespace fhirgate::fhir {
namespace {

constexpr std::string_view kCoreExtension = "http://hl7.org/fhir/StructureDefinition/";
constexpr std::string_view kSdcExtension = "http://hl7.org/fhir/uv/sdc/StructureDefinition/";
constexpr std::string_view kUcum = "http://unitsofmeasure.org";

const std::vector<Node>& items_of(const Node* array) {
  static const std::vector<Node> kNone;
  return array != nullptr && array->is_array() ? array->items() : kNone;
}

const std::vector<Node>& children(const Node& node, std::string_view key) {
  return items_of(node.find(key));
}

// The extension of `node` with this url (core or SDC name), or nullptr.
const Node* extension(const Node& node, std::string_view name) {
  for (const Node& ext : children(node, "extension")) {
    const std::string_view url = ext.string_at("url");
    if ((url.starts_with(kCoreExtension) && url.substr(kCoreExtension.size()) == name) ||
        (url.starts_with(kSdcExtension) && url.substr(kSdcExtension.size()) == name))
      return &ext;
  }
  return nullptr;
}

// The value[x] member of an element: its type suffix ("Coding") and value.
struct TypedValue {
  std::string_view type;
  const Node* value = nullptr;
};

TypedValue value_of(const Node& element, std::string_view prefix = "value") {
  for (const auto& [key, value] : element.members()) {
    if (key.size() > prefix.size() && key.starts_with(prefix) && key[prefix.size()] >= 'A' &&
        key[prefix.size()] <= 'Z')
      return {std::string_view(key).substr(prefix.size()), &value};
  }
  return {};
}

// The FHIR type name of a value[x] suffix: primitives start lower case.
std::string type_name(std::string_view suffix) {
  std::string name(suffix);
  static constexpr std::string_view kPrimitives[] = {
      "Boolean", "Decimal", "Integer",   "Date", "DateTime", "Time", "String",
      "Uri",     "Url",     "Canonical", "Code", "Instant",  "Id",   "Base64Binary"};
  if (std::find(std::begin(kPrimitives), std::end(kPrimitives), suffix) != std::end(kPrimitives) &&
      !name.empty())
    name[0] = static_cast<char>(name[0] - 'A' + 'a');
  return name;
}

std::optional<double> number(const Node* node) {
  if (node == nullptr || !node->is_number()) return std::nullopt;
  char* end = nullptr;
  const std::string& text = node->text();
  const double v = std::strtod(text.c_str(), &end);
  if (end == text.c_str()) return std::nullopt;
  return v;
}

// Orders two date, dateTime or time values by their start; nullopt when either does not parse.
std::optional<int> compare_temporal(std::string_view type, std::string_view a, std::string_view b) {
  if (type == "Time") return a < b ? -1 : (a > b ? 1 : 0);
  const auto ra = parse_time_range(a);
  const auto rb = parse_time_range(b);
  if (!ra || !rb) return std::nullopt;
  return ra->low < rb->low ? -1 : (ra->low > rb->low ? 1 : 0);
}

// The power of ten of a UCUM prefix, or nullopt.
std::optional<int> ucum_prefix(std::string_view p) {
  static constexpr std::pair<std::string_view, int> kPrefixes[] = {
      {"Y", 24}, {"Z", 21}, {"E", 18}, {"P", 15}, {"T", 12}, {"G", 9},  {"M", 6},   {"k", 3},   {"h", 2},
      {"da", 1}, {"d", -1}, {"c", -2}, {"m", -3}, {"u", -6}, {"n", -9}, {"p", -12}, {"f", -15}, {"a", -18}};
  for (const auto& [name, power] : kPrefixes) {
    if (name == p) return power;
  }
  return std::nullopt;
}

bool metric_atom(std::string_view atom) {
  static constexpr std::string_view kAtoms[] = {"m", "g",  "s", "l", "L", "mol", "A",  "K",   "cd",
                                                "N", "Pa", "J", "W", "V", "Hz",  "eq", "kat", "bar"};
  return std::find(std::begin(kAtoms), std::end(kAtoms), atom) != std::end(kAtoms);
}

// The factor that turns a value in UCUM unit `from` into unit `to`, for equal codes and metric units
// that differ only by their prefix; nullopt otherwise.
std::optional<double> ucum_factor(std::string_view from, std::string_view to) {
  if (from == to) return 1.0;
  const auto split = [](std::string_view code) {
    std::vector<std::pair<int, std::string_view>> out;
    if (metric_atom(code)) out.emplace_back(0, code);
    for (std::size_t n = 1; n <= 2 && n < code.size(); ++n) {
      const auto power = ucum_prefix(code.substr(0, n));
      if (power && metric_atom(code.substr(n))) out.emplace_back(*power, code.substr(n));
    }
    return out;
  };
  for (const auto& [pf, af] : split(from)) {
    for (const auto& [pt, at] : split(to)) {
      if (af == at) return std::pow(10.0, pf - pt);
    }
  }
  return std::nullopt;
}

std::string quantity_text(const Node& q) {
  std::string text = q.find("value") != nullptr ? q.find("value")->text() : std::string("?");
  const std::string_view unit = q.string_at("unit").empty() ? q.string_at("code") : q.string_at("unit");
  if (!unit.empty()) text.append(" ").append(unit);
  return text;
}

// Membership of system|code in a ValueSet given inline (a contained one): enumerated concepts or an
// expansion; nullopt when the set cannot be enumerated that way.
std::optional<bool> local_membership(const Node& value_set, std::string_view system, std::string_view code) {
  if (const Node* expansion = value_set.find("expansion"); expansion != nullptr) {
    std::vector<const Node*> stack;
    for (const Node& c : children(*expansion, "contains")) stack.push_back(&c);
    while (!stack.empty()) {
      const Node* c = stack.back();
      stack.pop_back();
      if (c->string_at("code") == code && (system.empty() || c->string_at("system") == system)) return true;
      for (const Node& sub : children(*c, "contains")) stack.push_back(&sub);
    }
    return false;
  }
  const Node* compose = value_set.find("compose");
  if (compose == nullptr || compose->find("exclude") != nullptr) return std::nullopt;
  bool found = false;
  for (const Node& include : children(*compose, "include")) {
    const Node* concepts = include.find("concept");
    if (concepts == nullptr || include.find("filter") != nullptr || include.find("valueSet") != nullptr)
      return std::nullopt;
    if (!system.empty() && include.string_at("system") != system) continue;
    for (const Node& c : items_of(concepts)) {
      if (c.string_at("code") == code) found = true;
    }
  }
  return found;
}

bool equal_ignoring_case(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

bool same_coding(const Node& expected, const Node& actual) {
  if (expected.string_at("code") != actual.string_at("code")) return false;
  const std::string_view system = expected.string_at("system");
  return system.empty() || system == actual.string_at("system");
}

// Are two values of the same value[x] type equal (Coding by system and code, Quantity by value and
// unit, Reference by reference, primitives by their text)?
bool same_value(std::string_view type, const Node& a, const Node& b) {
  if (type == "Coding") return same_coding(a, b);
  if (type == "Reference") return a.string_at("reference") == b.string_at("reference");
  if (type == "Quantity") {
    const auto va = number(a.find("value"));
    const auto vb = number(b.find("value"));
    return va && vb && *va == *vb && a.string_at("code") == b.string_at("code");
  }
  if (type == "Decimal" || type == "Integer") {
    const auto va = number(&a);
    const auto vb = number(&b);
    return va && vb && *va == *vb;
  }
  return a.text() == b.text();
}

// Orders two values of the same value[x] type; nullopt for unordered types.
std::optional<int> order_values(std::string_view type, const Node& a, const Node& b) {
  if (type == "Decimal" || type == "Integer") {
    const auto va = number(&a);
    const auto vb = number(&b);
    if (!va || !vb) return std::nullopt;
    return *va < *vb ? -1 : (*va > *vb ? 1 : 0);
  }
  if (type == "Date" || type == "DateTime" || type == "Time")
    return compare_temporal(type, a.text(), b.text());
  if (type == "String") return a.text() < b.text() ? -1 : (a.text() > b.text() ? 1 : 0);
  if (type == "Quantity" && a.string_at("code") == b.string_at("code")) {
    const auto va = number(a.find("value"));
    const auto vb = number(b.find("value"));
    if (!va || !vb) return std::nullopt;
    return *va < *vb ? -1 : (*va > *vb ? 1 : 0);
  }
  return std::nullopt;
}

// The value[x] suffixes an answer to an item of this type may have; empty for items that take no answers.
std::vector<std::string_view> answer_types(std::string_view item_type) {
  if (item_type == "boolean") return {"Boolean"};
  if (item_type == "decimal") return {"Decimal"};
  if (item_type == "integer") return {"Integer"};
  if (item_type == "date") return {"Date"};
  if (item_type == "dateTime") return {"DateTime", "Date"};
  if (item_type == "time") return {"Time"};
  if (item_type == "string" || item_type == "text") return {"String"};
  if (item_type == "url") return {"Uri"};
  if (item_type == "choice") return {"Coding", "String", "Integer", "Date", "Time", "Reference"};
  if (item_type == "open-choice") return {"Coding", "String", "Integer", "Date", "Time", "Reference"};
  if (item_type == "attachment") return {"Attachment"};
  if (item_type == "reference") return {"Reference"};
  if (item_type == "quantity") return {"Quantity"};
  return {};
}

class ResponseChecker {
 public:
  ResponseChecker(RuleContext& context, const Node& questionnaire)
      : context_(context),
        questionnaire_(questionnaire),
        completed_(context.resource.string_at("status") == "completed") {}

  void run() {
    check_period();
    check_level(questionnaire_.find("item"), context_.resource, "", true);
  }

 private:
  void check_period() {
    const std::string_view authored = context_.resource.string_at("authored");
    const Node* period = questionnaire_.find("effectivePeriod");
    if (authored.empty() || period == nullptr) return;
    const auto when = parse_time_range(authored);
    if (!when) return;
    const std::string_view start = period->string_at("start");
    const std::string_view end = period->string_at("end");
    if (const auto s = parse_time_range(start); s && when->high < s->low) {
      context_.warning("invariant",
                       "The authored date '" + std::string(authored) +
                           "' is before the start of the permitted period defined in the Questionnaire ('" +
                           std::string(start) + "')",
                       "authored");
    }
    if (const auto e = parse_time_range(end); e && when->low > e->high) {
      context_.warning("invariant",
                       "The authored date '" + std::string(authored) +
                           "' is after the end of the permitted period defined in the Questionnaire ('" +
                           std::string(end) + "')",
                       "authored");
    }
  }

  // The response items of `holder` (the response, an item or an answer, at `at`) against the
  // Questionnaire items `q_items`.
  void check_level(const Node* q_items, const Node& holder, const std::string& at, bool parent_enabled) {
    scopes_.push_back(&holder);
    const auto& questions = items_of(q_items);
    const auto& responses = children(holder, "item");
    std::vector<std::vector<std::size_t>> matched(questions.size());
    std::size_t last = 0;
    for (std::size_t i = 0; i < responses.size(); ++i) {
      if (!context_.spend(questions.size() + 1)) {  // over budget: the run ends as too costly
        scopes_.pop_back();
        return;
      }
      const std::string_view link_id = responses[i].string_at("linkId");
      const auto q = std::find_if(questions.begin(), questions.end(),
                                  [&](const Node& item) { return item.string_at("linkId") == link_id; });
      const std::string where = join(at, "item[" + std::to_string(i) + "]");
      if (q == questions.end()) {
        if (find_anywhere(questionnaire_.find("item"), link_id)) {
          context_.error("structure",
                         "The item with linkId '" + std::string(link_id) +
                             "' is not at the level where the Questionnaire defines it",
                         where);
        } else {
          context_.error("structure", "LinkId '" + std::string(link_id) + "' not found in questionnaire",
                         where);
        }
        continue;
      }
      const auto index = static_cast<std::size_t>(q - questions.begin());
      if (index < last) {
        context_.error("structure",
                       "Structural error: the item with linkId '" + std::string(link_id) +
                           "' is out of order (the Questionnaire puts it earlier)",
                       where);
      }
      last = std::max(last, index);
      matched[index].push_back(i);
    }
    for (std::size_t qi = 0; qi < questions.size(); ++qi) {
      const Node& question = questions[qi];
      const bool enabled = parent_enabled && is_enabled(question);
      const auto& found = matched[qi];
      if (found.empty()) {
        if (enabled && completed_ && question.find("required") != nullptr &&
            question.find("required")->as_bool()) {
          context_.error("required",
                         "No response answer found for required item '" +
                             std::string(question.string_at("linkId")) + "'",
                         at);
        }
        continue;
      }
      const bool repeats = question.find("repeats") != nullptr && question.find("repeats")->as_bool();
      for (std::size_t n = 0; n < found.size(); ++n) {
        const std::size_t i = found[n];
        const std::string where = join(at, "item[" + std::to_string(i) + "]");
        if (n > 0 && !repeats) {
          context_.error("structure",
                         "Only one response item with linkId '" + std::string(question.string_at("linkId")) +
                             "' is allowed, as the item does not repeat",
                         where);
        }
        check_item(question, responses[i], where, enabled);
      }
    }
    scopes_.pop_back();
  }

  void check_item(const Node& question, const Node& response, const std::string& at, bool enabled) {
    const std::string_view type = question.string_at("type");
    const auto& answers = children(response, "answer");
    if (!enabled && !answers.empty()) {
      context_.error("structure",
                     "Item has answer, even though it is not enabled (item id = '" +
                         std::string(question.string_at("linkId")) + "')",
                     at);
    }
    if (type == "group") {
      if (!answers.empty()) context_.error("structure", "Items of type group should not have answers", at);
      if (enabled && completed_ && response.find("item") == nullptr && question.find("required") != nullptr &&
          question.find("required")->as_bool()) {
        context_.error("required", "No sub-items found for required group", at);
      }
      check_level(question.find("item"), response, at, enabled);
      return;
    }
    const auto allowed = answer_types(type);
    if (allowed.empty()) {
      if (!answers.empty()) {
        context_.error("structure", "Items of type " + std::string(type) + " should not have answers", at);
      }
      if (type == "display") return;
      check_level(question.find("item"), response, at, enabled);
      return;
    }
    const bool repeats = question.find("repeats") != nullptr && question.find("repeats")->as_bool();
    if (answers.size() > 1 && !repeats) {
      context_.error("structure", "Only one response answer item with this linkId allowed", at);
    }
    if (const Node* max = extension(question, "questionnaire-maxOccurs"); max != nullptr) {
      if (const auto limit = number(max->find("valueInteger"));
          limit && static_cast<double>(answers.size()) > *limit) {
        context_.error("structure",
                       "The maximum number of answers is " + max->find("valueInteger")->text() +
                           " but this has " + std::to_string(answers.size()) + " answers",
                       at);
      }
    }
    if (const Node* min = extension(question, "questionnaire-minOccurs");
        min != nullptr && enabled && completed_) {
      if (const auto limit = number(min->find("valueInteger"));
          limit && !answers.empty() && static_cast<double>(answers.size()) < *limit) {
        context_.error("structure",
                       "The minimum number of answers is " + min->find("valueInteger")->text() +
                           " but this has " + std::to_string(answers.size()) + " answers",
                       at);
      }
    }
    for (std::size_t j = 0; j < answers.size(); ++j) {
      const std::string where = at + ".answer[" + std::to_string(j) + "]";
      check_answer(question, type, allowed, answers[j], where);
      if (answers[j].find("item") != nullptr || question.find("item") != nullptr)
        check_level(question.find("item"), answers[j], where, enabled);
    }
    if (response.find("item") != nullptr) check_level(question.find("item"), response, at, enabled);
  }

  void check_answer(const Node& question, std::string_view item_type,
                    const std::vector<std::string_view>& allowed, const Node& answer, const std::string& at) {
    const TypedValue value = value_of(answer);
    if (value.value == nullptr) return;
    const std::string where = at + ".value.ofType(" + type_name(value.type) + ")";
    if (std::find(allowed.begin(), allowed.end(), value.type) == allowed.end()) {
      context_.error(
          "structure",
          "Answer value must be of the type " + type_name(allowed.front()) + " not " + type_name(value.type),
          where);
      return;
    }
    const Node& v = *value.value;
    const bool choice = item_type == "choice" || item_type == "open-choice";
    if (question.find("answerOption") != nullptr) {
      check_option(question, item_type, value, at, where);
    } else if (const std::string_view vs = question.string_at("answerValueSet"); !vs.empty()) {
      if (value.type == "Coding") {
        check_value_set(vs, v, at, where, item_type == "open-choice" ? "warning" : "error");
      } else if (item_type == "open-choice" && value.type == "String") {
        context_.information("informational",
                             "Cannot validate string answer option because no option list is provided", at);
      }
    } else if (choice) {
      context_.information("informational",
                           "Cannot validate options because no option or options are provided", at);
    }
    if (value.type == "String") check_string(question, item_type, v.text(), where);
    if (value.type == "Decimal" || value.type == "Integer" || value.type == "Date" ||
        value.type == "DateTime" || value.type == "Time")
      check_limits(question, value, where);
    if (value.type == "Decimal") check_decimal_places(question, v, where);
    if (value.type == "Quantity") check_quantity(question, v, where);
    if (value.type == "Reference") check_reference(question, v, where);
    if (value.type == "Attachment") check_attachment(question, v, where);
  }

  void check_option(const Node& question, std::string_view item_type, const TypedValue& value,
                    const std::string& at, const std::string& where) {
    bool typed_options = false;
    for (const Node& option : children(question, "answerOption")) {
      const TypedValue o = value_of(option);
      if (o.value == nullptr || o.type != value.type) continue;
      typed_options = true;
      if (same_value(value.type, *o.value, *value.value)) return;
    }
    const Node& v = *value.value;
    if (item_type == "open-choice" && value.type == "String") return;
    if (!typed_options && item_type == "open-choice") return;
    const std::string_view severity = item_type == "open-choice" ? "warning" : "error";
    if (value.type == "Coding") {
      context_.report(severity, "code-invalid",
                      "The code '" + std::string(v.string_at("code")) + "' in the system '" +
                          std::string(v.string_at("system")) +
                          "' is not in the options specified by the questionnaire",
                      at);
    } else if (value.type == "Reference") {
      context_.report(
          severity, "code-invalid",
          "The reference " + std::string(v.string_at("reference")) + " is not in the set of permitted values",
          where);
    } else {
      context_.report(
          severity, "code-invalid",
          "The " + type_name(value.type) + " " + v.text() + " is not in the set of permitted values", where);
    }
  }

  // `severity`: for a code outside the value set (a warning for open-choice items, whose codes may be
  // drawn from elsewhere).
  void check_value_set(std::string_view value_set, const Node& coding, const std::string& at,
                       const std::string& where, std::string_view severity) {
    const std::string_view system = coding.string_at("system");
    const std::string_view code = coding.string_at("code");
    if (code.empty()) return;
    std::optional<bool> member;
    std::string title;
    if (value_set.starts_with('#')) {
      const Node* contained = contained_resource(questionnaire_, value_set.substr(1), "ValueSet");
      if (contained == nullptr) {
        context_.warning("not-found", "ValueSet '" + std::string(value_set) + "' not found", at);
        return;
      }
      member = local_membership(*contained, system, code);
      title = name_of(*contained);
    } else {
      if (!context_.terminology.knows_value_set(value_set)) {
        context_.warning("not-found", "ValueSet '" + std::string(value_set) + "' not found", at);
        return;
      }
      const auto answer = context_.terminology.contains(value_set, system, code);
      if (answer != Terminology::Answer::unknown) member = answer == Terminology::Answer::member;
      if (const Node* vs = context_.definitions.find(value_set, "ValueSet"); vs != nullptr)
        title = name_of(*vs);
    }
    std::string wrong_display;
    if (const std::string_view display = coding.string_at("display");
        member.value_or(true) && !display.empty() && !value_set.starts_with('#')) {
      if (const auto expected = context_.terminology.display(system, code);
          expected && !equal_ignoring_case(*expected, display)) {
        wrong_display = "Wrong Display Name '" + std::string(display) + "' for " + std::string(system) + "#" +
                        std::string(code) + ". Valid display is '" + *expected + "'";
        context_.error("invalid", wrong_display, where + ".display");
        member = false;
      }
    }
    if (!member || *member) return;
    context_.report(severity, "code-invalid",
                    "The code '" + std::string(code) + "' in the system '" + std::string(system) +
                        "' is not in the options value set (" +
                        (title.empty() ? std::string(value_set) : title) +
                        ") specified by the questionnaire" +
                        (wrong_display.empty() ? "" : ". Terminology Error: " + wrong_display),
                    at);
  }

  void check_string(const Node& question, std::string_view item_type, std::string_view text,
                    const std::string& where) {
    if (item_type == "string" && text.find_first_of("\r\n") != std::string_view::npos) {
      context_.warning("business-rule", "The answer should not contain new line characters", where);
    }
    const auto length = static_cast<double>(std::count_if(
        text.begin(), text.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
    if (const auto max = number(question.find("maxLength")); max && length > *max) {
      context_.error("too-long",
                     "The answer is " + std::to_string(static_cast<long long>(length)) +
                         " characters long, more than the maximum length " +
                         question.find("maxLength")->text(),
                     where);
    }
    if (const Node* min = extension(question, "minLength"); min != nullptr) {
      if (const auto limit = number(min->find("valueInteger")); limit && length < *limit) {
        context_.error("too-long",
                       "The answer is " + std::to_string(static_cast<long long>(length)) +
                           " characters long, less than the minimum length " +
                           min->find("valueInteger")->text(),
                       where);
      }
    }
    if (const Node* regex = extension(question, "regex"); regex != nullptr) {
      const std::string_view pattern = regex->string_at("valueString");
      if (auto compiled = Regex::compile(pattern); compiled.ok() && !compiled->full_match(text)) {
        context_.error("invalid",
                       "The answer '" + std::string(text) + "' does not match the pattern '" +
                           std::string(pattern) + "'",
                       where);
      }
    }
  }

  void check_limits(const Node& question, const TypedValue& value, const std::string& where) {
    const bool temporal = value.type == "Date" || value.type == "DateTime" || value.type == "Time";
    const auto compare = [&](const Node& limit) -> std::optional<int> {
      const TypedValue l = value_of(limit);
      if (l.value == nullptr) return std::nullopt;
      if (temporal) {
        if (value.type == "Time" ? l.type != "Time" : (l.type != "Date" && l.type != "DateTime"))
          return std::nullopt;
        return compare_temporal(value.type, value.value->text(), l.value->text());
      }
      if (l.type != "Decimal" && l.type != "Integer") return std::nullopt;
      return order_values("Decimal", *value.value, *l.value);
    };
    if (const Node* min = extension(question, "minValue"); min != nullptr) {
      if (const auto c = compare(*min); c && *c < 0) {
        context_.error("value",
                       "The value " + value.value->text() + " is less than the allowed minimum of " +
                           value_of(*min).value->text(),
                       where);
      }
    }
    if (const Node* max = extension(question, "maxValue"); max != nullptr) {
      if (const auto c = compare(*max); c && *c > 0) {
        context_.error("value",
                       "The value " + value.value->text() + " is greater than the allowed maximum of " +
                           value_of(*max).value->text(),
                       where);
      }
    }
  }

  void check_decimal_places(const Node& question, const Node& value, const std::string& where) {
    const Node* ext = extension(question, "maxDecimalPlaces");
    if (ext == nullptr) return;
    const auto limit = number(ext->find("valueInteger"));
    if (!limit) return;
    const std::string& text = value.text();
    const auto dot = text.find('.');
    if (dot == std::string::npos) return;
    const auto exponent = text.find_first_of("eE", dot);
    const std::size_t places = (exponent == std::string::npos ? text.size() : exponent) - dot - 1;
    if (static_cast<double>(places) > *limit) {
      context_.error("value",
                     "The value " + text +
                         " has too many decimal places (limit = " + ext->find("valueInteger")->text() + ")",
                     where);
    }
  }

  void check_quantity(const Node& question, const Node& quantity, const std::string& where) {
    const std::string_view system = quantity.string_at("system");
    const std::string_view code = quantity.string_at("code");
    const std::string unit_text = quantity_text(quantity) + " (" +
                                  (system == kUcum ? std::string("UCUM") : std::string(system)) + "#" +
                                  (code.empty() ? std::string("null") : std::string(code)) + ")";
    bool has_options = false;
    bool in_options = false;
    for (const Node& ext : children(question, "extension")) {
      if (ext.string_at("url") != std::string(kCoreExtension) + "questionnaire-unitOption") continue;
      const Node* coding = ext.find("valueCoding");
      if (coding == nullptr) continue;
      has_options = true;
      if (same_coding(*coding, quantity)) in_options = true;
    }
    if (has_options && !in_options) {
      context_.error("code-invalid",
                     "The value " + unit_text + " has a unit that is not one of the unit options", where);
    }
    if (const Node* ext = extension(question, "questionnaire-unitValueSet"); ext != nullptr) {
      const std::string_view vs = ext->string_at("valueCanonical");
      if (!vs.empty() && context_.terminology.knows_value_set(vs)) {
        const auto answer =
            code.empty() ? Terminology::Answer::not_member : context_.terminology.contains(vs, system, code);
        if (answer == Terminology::Answer::not_member) {
          context_.error("code-invalid",
                         "The value " + unit_text + " has a unit that is not in the unit value set '" +
                             std::string(vs) + "'",
                         where);
        }
      }
    }
    check_quantity_limit(quantity, extension(question, "sdc-questionnaire-minQuantity"), true, where);
    check_quantity_limit(quantity, extension(question, "sdc-questionnaire-maxQuantity"), false, where);
  }

  void check_quantity_limit(const Node& quantity, const Node* ext, bool minimum, const std::string& where) {
    if (ext == nullptr) return;
    const Node* limit = ext->find("valueQuantity");
    if (limit == nullptr) return;
    const std::string bound = minimum ? "minimum" : "maximum";
    const auto value = number(quantity.find("value"));
    const auto limit_value = number(limit->find("value"));
    if (!value || !limit_value) return;
    const auto describe = [](const Node& q) {
      std::string text = quantity_text(q);
      const std::string_view system = q.string_at("system");
      if (!system.empty()) {
        text += " (" + (system == kUcum ? std::string("UCUM") : std::string(system)) + "#" +
                std::string(q.string_at("code")) + ")";
      }
      return text;
    };
    if (quantity.string_at("system").empty() || quantity.string_at("code").empty() ||
        limit->string_at("system").empty() || limit->string_at("code").empty()) {
      context_.error("business-rule",
                     "The quantity " + describe(quantity) + " cannot be compared to the allowed " + bound +
                         " of " + describe(*limit) + " because no formal units are specified",
                     where);
      return;
    }
    std::optional<double> factor;
    if (quantity.string_at("system") == limit->string_at("system")) {
      factor = quantity.string_at("code") == limit->string_at("code")
                   ? std::optional<double>(1.0)
                   : (quantity.string_at("system") == kUcum
                          ? ucum_factor(quantity.string_at("code"), limit->string_at("code"))
                          : std::nullopt);
    }
    if (!factor) {
      context_.warning("business-rule",
                       "The quantity " + describe(quantity) + " cannot be compared to the allowed " + bound +
                           " of " + describe(*limit) + " because the units are not comparable",
                       where);
      return;
    }
    const double converted = *value * *factor;
    if (minimum ? converted < *limit_value : converted > *limit_value) {
      context_.error("value",
                     "The quantity " + describe(quantity) + " is " + (minimum ? "less" : "greater") +
                         " than the allowed " + bound + " of " + describe(*limit),
                     where);
    }
  }

  void check_reference(const Node& question, const Node& reference, const std::string& where) {
    std::vector<std::string_view> types;
    for (const Node& ext : children(question, "extension")) {
      if (ext.string_at("url") == std::string(kCoreExtension) + "questionnaire-referenceResource")
        types.push_back(ext.string_at("valueCode"));
    }
    const std::string_view text = reference.string_at("reference");
    if (types.empty() || text.empty() || text.starts_with('#') || text.starts_with("urn:")) return;
    std::string_view target = text;
    if (const auto history = target.find("/_history/"); history != std::string_view::npos)
      target = target.substr(0, history);
    const auto slash = target.rfind('/');
    if (slash == std::string_view::npos) return;
    target = target.substr(0, slash);
    target = target.substr(target.rfind('/') == std::string_view::npos ? 0 : target.rfind('/') + 1);
    if (!context_.model.is_resource(target)) return;
    if (std::find(types.begin(), types.end(), target) != types.end() ||
        std::find(types.begin(), types.end(), "Resource") != types.end())
      return;
    context_.error("structure",
                   "The reference '" + std::string(text) + "' points to a " + std::string(target) +
                       ", which is not a resource type the questionnaire allows",
                   where);
  }

  void check_attachment(const Node& question, const Node& attachment, const std::string& where) {
    std::vector<std::string_view> types;
    for (const Node& ext : children(question, "extension")) {
      if (ext.string_at("url") == std::string(kCoreExtension) + "questionnaire-mimeType")
        types.push_back(ext.string_at("valueCode"));
    }
    std::string_view content_type = attachment.string_at("contentType");
    content_type = content_type.substr(0, content_type.find(';'));
    while (!content_type.empty() && content_type.back() == ' ') content_type.remove_suffix(1);
    if (!types.empty() && !content_type.empty() &&
        std::none_of(types.begin(), types.end(),
                     [&](std::string_view t) { return equal_ignoring_case(t, content_type); })) {
      context_.error("structure",
                     "The attachment's content type '" + std::string(content_type) +
                         "' is not one of the types the questionnaire allows",
                     where);
    }
    if (const Node* ext = extension(question, "questionnaire-maxSize"); ext != nullptr) {
      const auto limit = number(ext->find("valueDecimal"));
      const auto size = number(attachment.find("size"));
      if (limit && size && *size > *limit) {
        context_.error("too-long",
                       "The attachment is " + attachment.find("size")->text() +
                           " bytes, more than the maximum size " + ext->find("valueDecimal")->text(),
                       where);
      }
    }
  }

  // enableWhen ---------------------------------------------------------------------------------------

  bool is_enabled(const Node& question) {
    const auto& conditions = children(question, "enableWhen");
    if (conditions.empty()) return true;
    const bool any = question.string_at("enableBehavior") == "any";
    for (const Node& condition : conditions) {
      const bool met = condition_met(condition);
      if (any && met) return true;
      if (!any && !met) return false;
    }
    return !any;
  }

  bool condition_met(const Node& condition) {
    const std::string_view link_id = condition.string_at("question");
    std::vector<const Node*> answers;
    for (auto scope = scopes_.rbegin(); scope != scopes_.rend() && answers.empty(); ++scope) {
      bool found_item = false;
      collect_answers(**scope, link_id, answers, found_item);
      if (context_.budget.exceeded()) return false;
      if (found_item) break;
    }
    const std::string_view op = condition.string_at("operator");
    const TypedValue expected = value_of(condition, "answer");
    if (expected.value == nullptr) return false;
    if (op == "exists") return expected.value->as_bool() == !answers.empty();
    for (const Node* answer : answers) {
      const TypedValue actual = value_of(*answer);
      if (actual.value == nullptr) continue;
      if (op == "=" || op == "!=") {
        const bool equal =
            actual.type == expected.type && same_value(actual.type, *actual.value, *expected.value);
        if (equal == (op == "=")) return true;
        continue;
      }
      if (actual.type != expected.type) continue;
      const auto order = order_values(actual.type, *actual.value, *expected.value);
      if (!order) continue;
      if ((op == ">" && *order > 0) || (op == "<" && *order < 0) || (op == ">=" && *order >= 0) ||
          (op == "<=" && *order <= 0))
        return true;
    }
    return false;
  }

  void collect_answers(const Node& holder, std::string_view link_id, std::vector<const Node*>& answers,
                       bool& found_item) {
    for (const Node& item : children(holder, "item")) {
      if (!context_.spend()) return;
      if (item.string_at("linkId") == link_id) {
        found_item = true;
        for (const Node& answer : children(item, "answer")) answers.push_back(&answer);
      }
      collect_answers(item, link_id, answers, found_item);
      for (const Node& answer : children(item, "answer"))
        collect_answers(answer, link_id, answers, found_item);
    }
  }

  // Helpers ------------------------------------------------------------------------------------------

  static std::string join(const std::string& at, const std::string& relative) {
    return at.empty() ? relative : at + "." + relative;
  }

  static bool find_anywhere(const Node* q_items, std::string_view link_id) {
    for (const Node& item : items_of(q_items)) {
      if (item.string_at("linkId") == link_id || find_anywhere(item.find("item"), link_id)) return true;
    }
    return false;
  }

  static const Node* contained_resource(const Node& resource, std::string_view id, std::string_view type) {
    for (const Node& c : children(resource, "contained")) {
      if (c.string_at("id") == id && c.string_at("resourceType") == type) return &c;
    }
    return nullptr;
  }

  static std::string name_of(const Node& resource) {
    const std::string_view title = resource.string_at("title");
    return std::string(title.empty() ? resource.string_at("name") : title);
  }

  RuleContext& context_;
  const Node& questionnaire_;
  const bool completed_;
  std::vector<const Node*> scopes_;  // the response, then the items and answers holding the current level
};

// A Questionnaire with this canonical (url or url|version) among the entries of an enclosing Bundle.
const Node* in_bundles(const RuleContext& context, std::string_view canonical) {
  const auto bar = canonical.find('|');
  const std::string_view url = canonical.substr(0, bar);
  const std::string_view version =
      bar == std::string_view::npos ? std::string_view() : canonical.substr(bar + 1);
  for (const EnclosingResource& enclosing : context.enclosing) {
    if (enclosing.type != "Bundle") continue;
    for (const Node& entry : children(*enclosing.node, "entry")) {
      const Node* resource = entry.find("resource");
      if (resource != nullptr && resource->string_at("resourceType") == "Questionnaire" &&
          resource->string_at("url") == url && (version.empty() || resource->string_at("version") == version))
        return resource;
    }
  }
  return nullptr;
}

void check_response(RuleContext& context) {
  const std::string_view canonical = context.resource.string_at("questionnaire");
  if (canonical.empty()) return;
  const Node* questionnaire = nullptr;
  if (canonical.starts_with('#')) {
    for (const Node& c : children(context.resource, "contained")) {
      if (c.string_at("id") == canonical.substr(1) && c.string_at("resourceType") == "Questionnaire")
        questionnaire = &c;
    }
  } else {
    questionnaire = context.definitions.find(canonical, "Questionnaire");
    if (questionnaire == nullptr) questionnaire = in_bundles(context, canonical);
  }
  if (questionnaire == nullptr) {
    context.warning(
        "required",
        "The questionnaire '" + std::string(canonical) +
            "' could not be resolved, so no validation can be performed against the base questionnaire");
    return;
  }
  ResponseChecker(context, *questionnaire).run();
}

// que-12 as its text states it ("if there are more than one enableWhen, enableBehavior must be
// specified"): R4 published the expression with `> 2`, which the base invariant check evaluates; the
// case of exactly two is checked here.
void check_enable_behavior(RuleContext& context, const Node& holder, const std::string& at) {
  const auto& items = children(holder, "item");
  for (std::size_t i = 0; i < items.size(); ++i) {
    const std::string where = (at.empty() ? "" : at + ".") + "item[" + std::to_string(i) + "]";
    if (children(items[i], "enableWhen").size() == 2 && items[i].find("enableBehavior") == nullptr) {
      context.error(
          "invariant",
          "Constraint failed: que-12: 'If there are more than one enableWhen, enableBehavior must be "
          "specified'",
          where);
    }
    check_enable_behavior(context, items[i], where);
  }
}

}  // namespace

void check_questionnaire(RuleContext& context) {
  if (context.type == "QuestionnaireResponse") {
    check_response(context);
  } else if (context.type == "Questionnaire") {
    check_enable_behavior(context, context.resource, "");
  }
}

}  // namespace fhirgate::fhir
