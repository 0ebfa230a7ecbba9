#include <doctest/doctest.h>

#include <string>
#include <string_view>
#include <vector>

#include "fhir/validator.hpp"
#include "tests/support/paths.hpp"
#include "tests/support/r4.hpp"

namespace fhirgate::fhir {
namespace {

std::shared_ptr<const Terminology> shared_terminology() {
  return testing::r4_terminology();
}

Node parsed(std::string_view json) {
  auto node = parse_json(json);
  REQUIRE(node.ok());
  return *node;
}

// "severity expression" of every error, warning (and information when asked), joined by "; "; the
// dom-6 narrative warning left out.
std::string check(const std::vector<std::string_view>& supporting, std::string_view resource,
                  bool with_information = false) {
  Validator validator(testing::r4_model(), shared_terminology());
  for (const std::string_view s : supporting) REQUIRE(validator.add_resource(parsed(s)).ok());
  const ValidationResult result = validator.validate(parsed(resource));
  std::string out;
  for (const Issue& issue : result.issues) {
    // dom-6 (no narrative) and the code systems only a terminology server holds are beside the point here.
    if (issue.diagnostics.starts_with("dom-6:") ||
        issue.diagnostics.find("needs a terminology server") != std::string::npos)
      continue;
    if (issue.severity == "information" && !with_information) continue;
    if (!out.empty()) out += "; ";
    out += issue.severity + " " + issue.expression;
  }
  return out;
}

constexpr std::string_view kSimple =
    R"({"resourceType":"Questionnaire","url":"http://example.org/q","status":"active",
  "item":[{"linkId":"name","type":"string","required":true},
          {"linkId":"age","type":"integer","extension":[
             {"url":"http://hl7.org/fhir/StructureDefinition/minValue","valueInteger":0},
             {"url":"http://hl7.org/fhir/StructureDefinition/maxValue","valueInteger":130}]},
          {"linkId":"note","type":"display"}]})";

TEST_CASE("Questionnaire: a response that follows its questionnaire has no issues") {
  CHECK(check({kSimple}, R"({"resourceType":"QuestionnaireResponse","questionnaire":"http://example.org/q",
    "status":"completed","item":[{"linkId":"name","answer":[{"valueString":"Ann"}]},
    {"linkId":"age","answer":[{"valueInteger":42}]}]})") == "");
}

TEST_CASE("Questionnaire: an unknown questionnaire is a warning, a contained one is used") {
  CHECK(check({}, R"({"resourceType":"QuestionnaireResponse","questionnaire":"http://example.org/q|2",
    "status":"completed"})") == "warning QuestionnaireResponse");
  CHECK(check({}, R"({"resourceType":"QuestionnaireResponse","questionnaire":"#q","status":"completed",
    "contained":[{"resourceType":"Questionnaire","id":"q","status":"active",
                  "item":[{"linkId":"a","type":"boolean"}]}],
    "item":[{"linkId":"a","answer":[{"valueString":"yes"}]}]})") ==
        "error QuestionnaireResponse.item[0].answer[0].value.ofType(string)");
}

TEST_CASE("Questionnaire: the questionnaire may come from the enclosing Bundle") {
  CHECK(check({}, R"({"resourceType":"Bundle","type":"collection","entry":[
    {"fullUrl":"http://example.org/Questionnaire/b","resource":{"resourceType":"Questionnaire","id":"b",
      "url":"http://example.org/b","version":"1","status":"active","item":[{"linkId":"a","type":"integer"}]}},
    {"fullUrl":"http://example.org/QuestionnaireResponse/r","resource":{"resourceType":"QuestionnaireResponse",
      "id":"r","questionnaire":"http://example.org/b|1","status":"completed",
      "item":[{"linkId":"a","answer":[{"valueDecimal":1.5}]}]}}]})") ==
        "error Bundle.entry[1].resource.item[0].answer[0].value.ofType(decimal)");
}

TEST_CASE("Questionnaire: attachment types and sizes") {
  const std::string_view q =
      R"({"resourceType":"Questionnaire","url":"http://example.org/a","status":"active",
    "item":[{"linkId":"a","type":"attachment","repeats":true,"extension":[
      {"url":"http://hl7.org/fhir/StructureDefinition/questionnaire-mimeType","valueCode":"image/png"},
      {"url":"http://hl7.org/fhir/StructureDefinition/questionnaire-maxSize","valueDecimal":1000}]}]})";
  CHECK(check({q}, R"({"resourceType":"QuestionnaireResponse","questionnaire":"http://example.org/a",
    "status":"completed","item":[{"linkId":"a","answer":[
      {"valueAttachment":{"contentType":"image/png","size":10}},
      {"valueAttachment":{"contentType":"image/jpeg","size":2000}}]}]})") ==
        "error QuestionnaireResponse.item[0].answer[1].value.ofType(Attachment); "
        "error QuestionnaireResponse.item[0].answer[1].value.ofType(Attachment)");
}

TEST_CASE("Questionnaire: answers must have the item's type; display and group items take none") {
  CHECK(check({kSimple}, R"({"resourceType":"QuestionnaireResponse","questionnaire":"http://example.org/q",
    "status":"completed","item":[{"linkId":"name","answer":[{"valueInteger":1}]},
    {"linkId":"age","answer":[{"valueInteger":200}]},
    {"linkId":"note","answer":[{"valueString":"x"}]}]})") ==
        "error QuestionnaireResponse.item[0].answer[0].value.ofType(integer); "
        "error QuestionnaireResponse.item[1].answer[0].value.ofType(integer); error "
        "QuestionnaireResponse.item[2]");
}

TEST_CASE("Questionnaire: linkIds must be known, in order, and required items answered when completed") {
  const std::string_view out_of_order =
      R"({"resourceType":"QuestionnaireResponse","questionnaire":"http://example.org/q","status":"completed",
    "item":[{"linkId":"age","answer":[{"valueInteger":1}]},{"linkId":"name","answer":[{"valueString":"A"}]},
    {"linkId":"nope","answer":[{"valueString":"A"}]}]})";
  CHECK(check({kSimple}, out_of_order) ==
        "error QuestionnaireResponse.item[1]; error QuestionnaireResponse.item[2]");
  CHECK(check({kSimple}, R"({"resourceType":"QuestionnaireResponse","questionnaire":"http://example.org/q",
    "status":"completed"})") == "error QuestionnaireResponse");
  CHECK(check({kSimple}, R"({"resourceType":"QuestionnaireResponse","questionnaire":"http://example.org/q",
    "status":"in-progress"})") == "");
}

TEST_CASE("Questionnaire: groups, repeats and maxOccurs") {
  const std::string_view q =
      R"({"resourceType":"Questionnaire","url":"http://example.org/g","status":"active",
    "item":[{"linkId":"g","type":"group","required":true,"item":[
      {"linkId":"one","type":"string"},
      {"linkId":"many","type":"string","repeats":true,"extension":[
        {"url":"http://hl7.org/fhir/StructureDefinition/questionnaire-maxOccurs","valueInteger":2}]}]}]})";
  CHECK(check({q}, R"({"resourceType":"QuestionnaireResponse","questionnaire":"http://example.org/g",
    "status":"completed","item":[{"linkId":"g"}]})") == "error QuestionnaireResponse.item[0]");
  CHECK(check({q}, R"({"resourceType":"QuestionnaireResponse","questionnaire":"http://example.org/g",
    "status":"completed","item":[{"linkId":"g","item":[
      {"linkId":"one","answer":[{"valueString":"a"},{"valueString":"b"}]},
      {"linkId":"many","answer":[{"valueString":"a"},{"valueString":"b"},{"valueString":"c"}]}]}]})") ==
        "error QuestionnaireResponse.item[0].item[0]; error QuestionnaireResponse.item[0].item[1]");
}

TEST_CASE("Questionnaire: the items of a question are answered inside each of its answers") {
  const std::string_view q =
      R"({"resourceType":"Questionnaire","url":"http://example.org/n","status":"active",
    "item":[{"linkId":"p","type":"boolean","item":[{"linkId":"why","type":"string","required":true,
      "enableWhen":[{"question":"p","operator":"=","answerBoolean":true}]}]}]})";
  CHECK(check({q}, R"({"resourceType":"QuestionnaireResponse","questionnaire":"http://example.org/n",
    "status":"completed","item":[{"linkId":"p","answer":[{"valueBoolean":true,
      "item":[{"linkId":"why","answer":[{"valueString":"because"}]}]}]}]})") == "");
  CHECK(check({q}, R"({"resourceType":"QuestionnaireResponse","questionnaire":"http://example.org/n",
    "status":"completed","item":[{"linkId":"p","answer":[{"valueBoolean":false}]}]})") == "");
  CHECK(check({q}, R"({"resourceType":"QuestionnaireResponse","questionnaire":"http://example.org/n",
    "status":"completed","item":[{"linkId":"p","answer":[{"valueBoolean":true}]}]})") ==
        "error QuestionnaireResponse.item[0].answer[0]");
}

TEST_CASE("Questionnaire: enableWhen is read within the repetition of a group") {
  const std::string_view q =
      R"({"resourceType":"Questionnaire","url":"http://example.org/e","status":"active",
    "item":[{"linkId":"g","type":"group","repeats":true,"item":[
      {"linkId":"c","type":"boolean","required":true},
      {"linkId":"d","type":"boolean","required":true,
       "enableWhen":[{"question":"c","operator":"=","answerBoolean":true}]}]}]})";
  CHECK(check({q}, R"({"resourceType":"QuestionnaireResponse","questionnaire":"http://example.org/e",
    "status":"completed","item":[
      {"linkId":"g","item":[{"linkId":"c","answer":[{"valueBoolean":true}]},{"linkId":"d","answer":[{"valueBoolean":false}]}]},
      {"linkId":"g","item":[{"linkId":"c","answer":[{"valueBoolean":false}]},{"linkId":"d","answer":[{"valueBoolean":false}]}]},
      {"linkId":"g","item":[{"linkId":"c","answer":[{"valueBoolean":true}]}]},
      {"linkId":"g","item":[{"linkId":"c","answer":[{"valueBoolean":false}]}]}]})") ==
        "error QuestionnaireResponse.item[1].item[1]; error QuestionnaireResponse.item[2]");
}

TEST_CASE("Questionnaire: answer options and answer value sets") {
  const std::string_view q =
      R"({"resourceType":"Questionnaire","url":"http://example.org/o","status":"active",
    "contained":[{"resourceType":"ValueSet","id":"yn","status":"active","compose":{"include":[
      {"system":"http://example.org/cs","concept":[{"code":"y"},{"code":"n"}]}]}}],
    "item":[{"linkId":"s","type":"string","repeats":true,"answerOption":[{"valueString":"a"},{"valueString":"b"}]},
            {"linkId":"c","type":"choice","repeats":true,"answerValueSet":"#yn"},
            {"linkId":"u","type":"choice","answerValueSet":"http://example.org/unknown"},
            {"linkId":"t","type":"choice","answerValueSet":"http://hl7.org/fhir/ValueSet/administrative-gender"}]})";
  CHECK(check({q}, R"({"resourceType":"QuestionnaireResponse","questionnaire":"http://example.org/o",
    "status":"completed","item":[
      {"linkId":"s","answer":[{"valueString":"a"},{"valueString":"c"}]},
      {"linkId":"c","answer":[{"valueCoding":{"system":"http://example.org/cs","code":"y"}},
                              {"valueCoding":{"system":"http://example.org/cs","code":"x"}}]},
      {"linkId":"u","answer":[{"valueCoding":{"system":"http://example.org/cs","code":"y"}}]},
      {"linkId":"t","answer":[{"valueCoding":{"system":"http://hl7.org/fhir/administrative-gender","code":"cat"}}]}]})") ==
        // 'cat' is also not a code of administrative-gender at all (the base walk's Coding check).
        "error QuestionnaireResponse.item[3].answer[0].valueCoding.code; "
        "error QuestionnaireResponse.item[0].answer[1].value.ofType(string); "
        "error QuestionnaireResponse.item[1].answer[1]; warning QuestionnaireResponse.item[2].answer[0]; "
        "error QuestionnaireResponse.item[3].answer[0]");
}

TEST_CASE(
    "Questionnaire: an open-choice answer may be free text, and a code outside its value set is a warning") {
  const std::string_view q =
      R"({"resourceType":"Questionnaire","url":"http://example.org/oc","status":"active",
    "item":[{"linkId":"c","type":"open-choice","repeats":true,
             "answerValueSet":"http://hl7.org/fhir/ValueSet/administrative-gender"}]})";
  CHECK(check({q}, R"({"resourceType":"QuestionnaireResponse","questionnaire":"http://example.org/oc",
    "status":"completed","item":[{"linkId":"c","answer":[{"valueString":"something else"},
      {"valueCoding":{"system":"http://example.org/animals","code":"cat"}}]}]})") ==
        "warning QuestionnaireResponse.item[0].answer[1]");
}

TEST_CASE("Questionnaire: a coded answer from a value set must carry the code's display") {
  const std::string_view q =
      R"({"resourceType":"Questionnaire","url":"http://example.org/j","status":"active",
    "item":[{"linkId":"c","type":"choice","repeats":true,"answerValueSet":"http://hl7.org/fhir/ValueSet/jurisdiction"}]})";
  CHECK(check({q}, R"({"resourceType":"QuestionnaireResponse","questionnaire":"http://example.org/j",
    "status":"completed","item":[{"linkId":"c","answer":[
      {"valueCoding":{"system":"urn:iso:std:iso:3166","code":"BD","display":"Bangladesh"}},
      {"valueCoding":{"system":"urn:iso:std:iso:3166","code":"BD","display":"Australia"}}]}]})") ==
        "error QuestionnaireResponse.item[0].answer[1].value.ofType(Coding).display; "
        "error QuestionnaireResponse.item[0].answer[1]");
}

TEST_CASE("Questionnaire: a reference answer with white space is not a valid reference") {
  const std::string_view q =
      R"({"resourceType":"Questionnaire","url":"http://example.org/r","status":"active",
    "item":[{"linkId":"r","type":"reference"}]})";
  CHECK(check({q}, R"({"resourceType":"QuestionnaireResponse","questionnaire":"http://example.org/r",
    "status":"completed","item":[{"linkId":"r","answer":[
      {"valueReference":{"reference":"ht tps://example.org/Patient/1"}}]}]})") ==
        "error QuestionnaireResponse.item[0].answer[0].valueReference.reference");
  CHECK(check({q}, R"({"resourceType":"QuestionnaireResponse","questionnaire":"http://example.org/r",
    "status":"completed","item":[{"linkId":"r","answer":[
      {"valueReference":{"reference":"https://example.org/Patient/1"}}]}]})") == "");
}

TEST_CASE("Questionnaire: date limits, decimal places, quantity limits and units") {
  const std::string_view q =
      R"({"resourceType":"Questionnaire","url":"http://example.org/l","status":"active",
    "item":[{"linkId":"d","type":"dateTime","repeats":true,"extension":[
               {"url":"http://hl7.org/fhir/StructureDefinition/minValue","valueDateTime":"2020"},
               {"url":"http://hl7.org/fhir/StructureDefinition/maxValue","valueDateTime":"2022-06"}]},
            {"linkId":"x","type":"decimal","extension":[
               {"url":"http://hl7.org/fhir/StructureDefinition/maxDecimalPlaces","valueInteger":2}]},
            {"linkId":"q","type":"quantity","repeats":true,"extension":[
               {"url":"http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-minQuantity",
                "valueQuantity":{"value":1,"system":"http://unitsofmeasure.org","code":"km"}},
               {"url":"http://hl7.org/fhir/StructureDefinition/questionnaire-unitValueSet",
                "valueCanonical":"http://hl7.org/fhir/ValueSet/ucum-bodyweight"}]}]})";
  CHECK(check({q}, R"({"resourceType":"QuestionnaireResponse","questionnaire":"http://example.org/l",
    "status":"completed","item":[
      {"linkId":"d","answer":[{"valueDateTime":"2021"},{"valueDateTime":"2022-06-30"},{"valueDateTime":"1999"}]},
      {"linkId":"x","answer":[{"valueDecimal":1.234}]},
      {"linkId":"q","answer":[{"valueQuantity":{"value":2000,"system":"http://unitsofmeasure.org","code":"m"}},
                              {"valueQuantity":{"value":5,"unit":"km"}}]}]})") ==
        "error QuestionnaireResponse.item[0].answer[1].value.ofType(dateTime); "
        "error QuestionnaireResponse.item[0].answer[2].value.ofType(dateTime); "
        "error QuestionnaireResponse.item[1].answer[0].value.ofType(decimal); "
        "error QuestionnaireResponse.item[2].answer[0].value.ofType(Quantity); "
        "error QuestionnaireResponse.item[2].answer[1].value.ofType(Quantity); "
        "error QuestionnaireResponse.item[2].answer[1].value.ofType(Quantity)");
}

TEST_CASE("Questionnaire: two enableWhen conditions need an enableBehavior (que-12 as its text says)") {
  CHECK(check({}, R"({"resourceType":"Questionnaire","status":"active","item":[
    {"linkId":"a","type":"boolean"},{"linkId":"b","type":"boolean"},
    {"linkId":"c","type":"boolean","enableWhen":[{"question":"a","operator":"=","answerBoolean":true},
                                                 {"question":"b","operator":"=","answerBoolean":true}]},
    {"linkId":"d","type":"boolean","enableBehavior":"any",
     "enableWhen":[{"question":"a","operator":"=","answerBoolean":true},
                   {"question":"b","operator":"=","answerBoolean":true}]}]})") ==
        "error Questionnaire.item[2]");
}

}  // namespace
}  // namespace fhirgate::fhir
