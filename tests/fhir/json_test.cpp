#include "fhir/json.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "tests/support/paths.hpp"

namespace fhirgate::fhir {
namespace {

Node parsed(std::string_view text) {
  auto r = parse_json(text);
  REQUIRE_MESSAGE(r.ok(), text);
  return std::move(r).value();
}

std::string round_trip(std::string_view text) {
  return write_json(parsed(text));
}

Issue parse_issue(std::string_view text, const JsonLimits& limits = {}) {
  auto r = parse_json(text, limits);
  REQUIRE_MESSAGE(!r.ok(), text);
  REQUIRE(r.error().code == ErrorCode::invalid_input);
  REQUIRE(r.error().issues.size() == 1);
  return r.error().issues.front();
}

Issue check_issue(std::string_view text) {
  const Status s = check_resource_json(parsed(text));
  REQUIRE_MESSAGE(!s.ok(), text);
  REQUIRE(s.error().code == ErrorCode::unprocessable);
  REQUIRE(s.error().issues.size() == 1);
  return s.error().issues.front();
}

bool passes_check(std::string_view text) {
  const Status s = check_resource_json(parsed(text));
  if (!s.ok()) MESSAGE(s.error().issues.front().diagnostics, " at ", s.error().issues.front().expression);
  return s.ok();
}

std::string nested_arrays(std::size_t depth) {
  return std::string(depth, '[') + std::string(depth, ']');
}

std::string read_all(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

TEST_CASE("Node: find, string_at, set and erase work on object members") {
  Node n = Node::object();
  n.set("resourceType", Node::string("Patient"));
  n.set("active", Node::boolean(true));
  REQUIRE(n.find("active") != nullptr);
  CHECK(n.find("active")->as_bool());
  CHECK(n.find("missing") == nullptr);
  CHECK(n.string_at("resourceType") == "Patient");
  CHECK(n.string_at("active").empty());
  CHECK(n.string_at("missing").empty());

  Node& replaced = n.set("resourceType", Node::string("Practitioner"));
  CHECK(replaced.text() == "Practitioner");
  REQUIRE(n.members().size() == 2);
  CHECK(n.members()[0].first == "resourceType");
  CHECK(n.string_at("resourceType") == "Practitioner");

  n.erase("resourceType");
  REQUIRE(n.members().size() == 1);
  CHECK(n.members()[0].first == "active");
  n.erase("not-there");
  CHECK(n.members().size() == 1);
}

TEST_CASE("parse_json: values become nodes of the right kind, members in document order") {
  const Node n = parsed(R"({"z":null,"b":true,"f":false,"n":-12.5,"s":"x","o":{"k":1},"a":[1,"two"]})");
  REQUIRE(n.is_object());
  const auto& m = n.members();
  REQUIRE(m.size() == 7);
  CHECK(m[0].first == "z");
  CHECK(m[0].second.is_null());
  CHECK(m[1].second.is_bool());
  CHECK(m[1].second.as_bool());
  CHECK_FALSE(m[2].second.as_bool());
  CHECK(m[3].second.is_number());
  CHECK(m[3].second.text() == "-12.5");
  CHECK(m[4].second.is_string());
  CHECK(m[4].second.text() == "x");
  CHECK(m[5].second.is_object());
  CHECK(m[5].second.string_at("k").empty());
  CHECK(m[5].second.find("k")->text() == "1");
  REQUIRE(m[6].second.is_array());
  REQUIRE(m[6].second.items().size() == 2);
  CHECK(m[6].second.items()[1].text() == "two");
}

TEST_CASE("parse_json: scalar documents are accepted") {
  CHECK(parsed("true").as_bool());
  CHECK(parsed(" 42 ").text() == "42");
  CHECK(parsed("\"s\"").text() == "s");
  CHECK(parsed("null").is_null());
}

TEST_CASE("round trip: decimals keep their exact text") {
  const std::string obs = R"({"resourceType":"Observation","valueQuantity":{"value":1.50}})";
  CHECK(round_trip(obs) == obs);
  CHECK(round_trip("[0.000001]") == "[0.000001]");
  CHECK(round_trip("[1e10,1E-7,-0,-0.0,0.10,12500.00,2.79264653987]") ==
        "[1e10,1E-7,-0,-0.0,0.10,12500.00,2.79264653987]");
  CHECK(parsed("1.50").text() == "1.50");
}

TEST_CASE("round trip: integers beyond 64 bits keep every digit") {
  CHECK(round_trip("[18446744073709551616,-9223372036854775809,123456789012345678901234567890]") ==
        "[18446744073709551616,-9223372036854775809,123456789012345678901234567890]");
}

TEST_CASE("round trip: non-ASCII text passes through unescaped") {
  const std::string text = "{\"family\":\"Müller-Łukasz 山田 😀\"}";
  CHECK(round_trip(text) == text);
  CHECK(parsed(R"("\u00e9\u5c71\ud83d\ude00")").text() == "é山😀");
  CHECK(round_trip(R"(["\u00e9\ud83d\ude00"])") == "[\"é😀\"]");
}

TEST_CASE("round trip: escapes are decoded and written back in short form") {
  const Node n = parsed(R"(["q\"b\\s\/n\nt\tr\rb\bf\f\u0001\u001F"])");
  CHECK(n.items()[0].text() == "q\"b\\s/n\nt\tr\rb\bf\f\x01\x1f");
  CHECK(write_json(n) == R"(["q\"b\\s/n\nt\tr\rb\bf\f\u0001\u001f"])");
}

TEST_CASE("append_json_string: escapes quote, backslash and control characters only") {
  std::string out = "x=";
  append_json_string(out, std::string_view("a\"b\\c/d\x7f\x00\x1b\n", 11));
  CHECK(out == "x=\"a\\\"b\\\\c/d\x7f\\u0000\\u001b\\n\"");
  out.clear();
  append_json_string(out, "");
  CHECK(out == "\"\"");
  out.clear();
  append_json_string(out, "plain text");
  CHECK(out == "\"plain text\"");
}

TEST_CASE("append_json_string: malformed UTF-8 becomes U+FFFD so the output is still valid JSON") {
  const std::string replacement = "\xEF\xBF\xBD";
  std::string out;
  append_json_string(out, "caf\xE9!");
  CHECK(out == "\"caf" + replacement + "!\"");
  out.clear();
  append_json_string(out, "\xC0\xAF|\xED\xA0\x80|\xF4\x90\x80\x80|\xE2\x82");
  CHECK(out == "\"" + replacement + replacement + "|" + replacement + replacement + replacement + "|" +
                   replacement + replacement + replacement + replacement + "|" + replacement + replacement +
                   "\"");
  out.clear();
  append_json_string(out, "\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80\xF4\x8F\xBF\xBF");
  CHECK(out == "\"\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80\xF4\x8F\xBF\xBF\"");
  CHECK(parse_json(write_json(Node::string("bad \xFF byte"))).ok());
}

TEST_CASE("write_json: compact output has no whitespace") {
  Node n = Node::object();
  n.set("resourceType", Node::string("Patient"));
  n.set("active", Node::boolean(false));
  Node& names = n.set("name", Node::array());
  Node& name = names.push(Node::object());
  name.set("given", Node::array()).push(Node::string("Jim"));
  n.set("deceased", Node::null());
  n.set("multipleBirthInteger", Node::number("2"));
  n.set("empty", Node::object());
  n.set("none", Node::array());
  CHECK(write_json(n) ==
        R"({"resourceType":"Patient","active":false,"name":[{"given":["Jim"]}],"deceased":null,)"
        R"("multipleBirthInteger":2,"empty":{},"none":[]})");
}

TEST_CASE("write_json: pretty output indents by two spaces with one space after the colon") {
  const Node n = parsed(
      R"({"resourceType":"Patient","active":true,"name":[{"family":"Chalmers","given":["Peter","James"]}],)"
      R"("extension":[],"meta":{},"deceasedBoolean":null,"n":1.50})");
  const std::string expected =
      "{\n"
      "  \"resourceType\": \"Patient\",\n"
      "  \"active\": true,\n"
      "  \"name\": [\n"
      "    {\n"
      "      \"family\": \"Chalmers\",\n"
      "      \"given\": [\n"
      "        \"Peter\",\n"
      "        \"James\"\n"
      "      ]\n"
      "    }\n"
      "  ],\n"
      "  \"extension\": [],\n"
      "  \"meta\": {},\n"
      "  \"deceasedBoolean\": null,\n"
      "  \"n\": 1.50\n"
      "}";
  CHECK(write_json(n, true) == expected);
  CHECK(write_json(parsed(expected)) == write_json(n));
  CHECK(write_json(parsed("[]"), true) == "[]");
  CHECK(write_json(parsed("\"a\\nb\""), true) == "\"a\\nb\"");
}

TEST_CASE("write_json: the out-parameter form appends") {
  std::string out = "prefix:";
  write_json(parsed(R"({"a":[1,2]})"), out);
  CHECK(out == R"(prefix:{"a":[1,2]})");
  write_json(parsed("true"), out, true);
  CHECK(out == R"(prefix:{"a":[1,2]}true)");
}

TEST_CASE("parse_json: a missing comma reports the line and column of the next token") {
  const Issue i = parse_issue("{\n  \"a\": 1,\n  \"b\": 2 \"c\": 3\n}");
  CHECK(i.line == 3);
  CHECK(i.column == 10);
  CHECK(i.diagnostics == "invalid JSON at line 3, column 10: Missing a comma or '}' after an object member.");
}

TEST_CASE("parse_json: columns count characters, and CRLF line ends count once") {
  const Issue multibyte = parse_issue("{\"é山😀\": 1 \"x\": 2}");
  CHECK(multibyte.line == 1);
  CHECK(multibyte.column == 11);
  const Issue crlf = parse_issue("[\r\n1,\r\n2 3]");
  CHECK(crlf.line == 3);
  CHECK(crlf.column == 3);
}

TEST_CASE("parse_json: syntax errors name the RapidJSON reason") {
  CHECK(parse_issue("[1,]").diagnostics == "invalid JSON at line 1, column 4: Invalid value.");
  CHECK(parse_issue("{'a':1}").diagnostics ==
        "invalid JSON at line 1, column 2: Missing a name for object member.");
  CHECK(parse_issue(R"({"a" 1})").diagnostics ==
        "invalid JSON at line 1, column 6: Missing a colon after a name of object member.");
  CHECK(parse_issue(R"({"a":[1,2})").diagnostics ==
        "invalid JSON at line 1, column 10: Missing a comma or ']' after an array element.");
  CHECK(parse_issue(R"(["abc)").diagnostics ==
        "invalid JSON at line 1, column 6: Missing a closing quotation mark in string.");
  CHECK(parse_issue(R"(["\q"])").diagnostics ==
        "invalid JSON at line 1, column 3: Invalid escape character in string.");
  CHECK(parse_issue("[01]").line == 1);
}

TEST_CASE("parse_json: an unescaped control character in a string is named as such") {
  const Issue i = parse_issue("[\"ab\x01\"]");
  CHECK(i.diagnostics == "invalid JSON at line 1, column 5: Control character in string must be escaped.");
}

TEST_CASE("parse_json: empty and whitespace-only input are errors") {
  const Issue empty = parse_issue("");
  CHECK(empty.diagnostics == "invalid JSON at line 1, column 1: The document is empty.");
  const Issue blank = parse_issue("  \n ");
  CHECK(blank.line == 2);
  CHECK(blank.column == 2);
  CHECK(blank.diagnostics.find("The document is empty.") != std::string::npos);
}

TEST_CASE("parse_json: anything after the document is an error") {
  const Issue garbage = parse_issue("{\"a\":1}\n x");
  CHECK(garbage.line == 2);
  CHECK(garbage.column == 2);
  CHECK(garbage.diagnostics.find("The document root must not be followed by other values.") !=
        std::string::npos);
  CHECK(parse_issue("{} {}").column == 4);
  const Issue nul = parse_issue(std::string_view("{\"a\":1}\0{}", 10));
  CHECK(nul.column == 8);
  CHECK(nul.diagnostics.find("must not be followed") != std::string::npos);
}

TEST_CASE("parse_json: the input need not be NUL-terminated") {
  const std::string buffer = R"({"a":1}{"b":2})";
  const auto r = parse_json(std::string_view(buffer).substr(0, 7));
  REQUIRE(r.ok());
  CHECK(write_json(*r) == R"({"a":1})");
  CHECK(!parse_json(std::string_view(buffer).substr(0, 6)).ok());
}

TEST_CASE("parse_json: a leading UTF-8 byte order mark is skipped") {
  CHECK(write_json(parsed("\xEF\xBB\xBF{\"a\":true}")) == R"({"a":true})");
  CHECK(parse_issue("\xEF\xBB\xBF{\"a\" true}").column == 6);
}

TEST_CASE("parse_json: strings must be valid UTF-8") {
  const Issue latin1 = parse_issue("{\"family\":\"M\xFCller\"}");
  CHECK(latin1.diagnostics == "invalid JSON at line 1, column 13: Invalid encoding in string.");
  CHECK(parse_issue("[\"\xC0\xAF\"]").diagnostics.find("Invalid encoding") != std::string::npos);
  CHECK(parse_issue("[\"\xED\xA0\x80\"]").diagnostics.find("Invalid encoding") != std::string::npos);
  CHECK(parse_issue("{\"k\xFF\":1}").diagnostics.find("Invalid encoding") != std::string::npos);
}

TEST_CASE("parse_json: unpaired surrogate escapes are rejected") {
  CHECK(parse_issue(R"(["\ud800"])").diagnostics.find("surrogate") != std::string::npos);
  const Issue low = parse_issue("[\n  \"x\\udc00\"]");
  CHECK(low.diagnostics.find("The surrogate pair in string is invalid.") != std::string::npos);
  CHECK(low.line == 2);
  CHECK(low.column == 3);
  CHECK(parse_issue(R"({"\udfff":1})").diagnostics.find("surrogate") != std::string::npos);
}

TEST_CASE("parse_json: nesting up to max_depth is accepted, one more is an error") {
  CHECK(parse_json(nested_arrays(3), JsonLimits{3}).ok());
  const Issue i = parse_issue(nested_arrays(4), JsonLimits{3});
  CHECK(i.diagnostics == "invalid JSON at line 1, column 4: JSON nesting deeper than 3");
  CHECK(i.column == 4);
  CHECK(parse_json(nested_arrays(128)).ok());
  CHECK(parse_issue(nested_arrays(129)).diagnostics.find("JSON nesting deeper than 128") !=
        std::string::npos);
  CHECK(parse_issue(R"({"a":{"b":{}}})", JsonLimits{2}).diagnostics.find("deeper than 2") !=
        std::string::npos);
}

TEST_CASE("parse_json: very deep input stops at the limit without exhausting the stack") {
  CHECK(parse_issue(nested_arrays(1000000)).diagnostics.find("deeper than 128") != std::string::npos);
  CHECK(parse_json(nested_arrays(5000), JsonLimits{5000}).ok());
}

TEST_CASE("parse_json: duplicate keys are rejected and named") {
  const Issue i = parse_issue("{\"resourceType\":\"Patient\",\n \"id\":\"a\", \"id\":\"b\"}");
  CHECK(i.diagnostics == "invalid JSON at line 2, column 12: duplicate key \"id\" in JSON object");
  CHECK(i.line == 2);
  CHECK(i.column == 12);
  CHECK(parse_issue(R"({"name":[{"given":["a"],"given":["b"]}]})")
            .diagnostics.find("duplicate key \"given\"") != std::string::npos);
  CHECK(parse_issue(R"({"a\"b":1,"a\"b":2})").diagnostics.find(R"(duplicate key "a\"b")") !=
        std::string::npos);
  CHECK(parse_issue(R"({"a\"b":1,"a\"b":2})").column == 11);
  CHECK(parse_json(R"({"a":{"x":1},"b":{"x":1},"x":[{"x":1},{"x":2}]})").ok());
}

TEST_CASE("parse_json: duplicate keys are found in large objects too") {
  std::string big = "{";
  for (int i = 0; i < 100; ++i) big += "\"k" + std::to_string(i) + "\":" + std::to_string(i) + ",";
  CHECK(parse_json(big + "\"last\":0}").ok());
  const Issue early = parse_issue(big + "\"k3\":0}");
  CHECK(early.diagnostics.find("duplicate key \"k3\"") != std::string::npos);
  const Issue late = parse_issue(big + "\"k99\":0}");
  CHECK(late.diagnostics.find("duplicate key \"k99\"") != std::string::npos);
  CHECK(parse_issue(big + "\"z\":0,\"z\":1}").diagnostics.find("duplicate key \"z\"") != std::string::npos);
}

TEST_CASE("check_resource_json: a well-formed resource passes") {
  CHECK(passes_check(R"({
    "resourceType": "Patient", "id": "pat-1.A",
    "name": [{"id": "element id, any text", "family": " Chalmers ", "given": ["Peter", null, "Jim"],
              "_given": [null, {"extension": [{"url": "http://x", "valueCode": "masked"}]}, null]}],
    "_birthDate": {"extension": [{"url": "http://y", "valueBoolean": false}]},
    "multipleBirthInteger": 0,
    "contained": [{"resourceType": "Organization", "id": "org1", "name": "ACME"}]
  })"));
}

TEST_CASE("check_resource_json: the root must be an object with a string resourceType") {
  const Status array = check_resource_json(parsed("[1]"));
  REQUIRE(!array.ok());
  CHECK(array.error().code == ErrorCode::unprocessable);
  CHECK(array.error().issues.front().diagnostics == "a FHIR resource must be a JSON object");
  CHECK(check_issue(R"({"id":"a"})").diagnostics == "resource has no resourceType");
  CHECK(check_issue(R"({"resourceType":7})").diagnostics == "resource has no resourceType");
  CHECK(check_issue(R"({"resourceType":""})").diagnostics == "resource has no resourceType");
  CHECK(check_issue("{}").diagnostics == "resource has no resourceType");
  const Issue bad_type = check_issue(R"({"resourceType":"Pat.ient"})");
  CHECK(bad_type.diagnostics == "resourceType must be a resource type name");
  CHECK(bad_type.expression == "Pat.ient.resourceType");
}

TEST_CASE("check_resource_json: null members are not allowed") {
  const Issue i = check_issue(R"({"resourceType":"Patient","name":[{"family":null}]})");
  CHECK(i.diagnostics == "null is not allowed here");
  CHECK(i.expression == "Patient.name[0].family");
  CHECK(check_issue(R"({"resourceType":"Patient","_birthDate":null})").expression == "Patient._birthDate");
}

TEST_CASE("check_resource_json: a null array item needs a value at the same index of the _ sibling") {
  const Issue alone = check_issue(R"({"resourceType":"Patient","name":[{"given":["a",null]}]})");
  CHECK(alone.expression == "Patient.name[0].given[1]");
  CHECK(alone.diagnostics ==
        "null is only allowed in an array as a placeholder for a value at the same index in _given");

  const Issue both_null =
      check_issue(R"({"resourceType":"Patient","name":[{"given":["a",null],"_given":[{"id":"x"},null]}]})");
  CHECK(both_null.expression == "Patient.name[0].given[1]");

  const Issue underscore_alone =
      check_issue(R"({"resourceType":"Patient","name":[{"_given":[null,{"id":"x"}]}]})");
  CHECK(underscore_alone.expression == "Patient.name[0]._given[0]");
  CHECK(underscore_alone.diagnostics.find("at the same index in given") != std::string::npos);

  const Issue underscore_first =
      check_issue(R"({"resourceType":"Patient","name":[{"_given":[null,{"id":"x"}],"given":[null,"b"]}]})");
  CHECK(underscore_first.expression == "Patient.name[0]._given[0]");

  const Issue not_array =
      check_issue(R"({"resourceType":"Patient","name":[{"given":[null],"_given":{"id":"x"}}]})");
  CHECK(not_array.expression == "Patient.name[0].given[0]");
}

TEST_CASE("check_resource_json: nulls matched in either direction are allowed") {
  CHECK(
      passes_check(R"({"resourceType":"Patient","name":[{"given":["a","b"],"_given":[null,{"id":"x"}]}]})"));
  CHECK(
      passes_check(R"({"resourceType":"Patient","name":[{"_given":[{"id":"x"},null],"given":[null,"b"]}]})"));
  CHECK(
      passes_check(R"({"resourceType":"Patient","name":[{"given":[null,"b"],"_given":[{"id":"x"},null]}]})"));
}

TEST_CASE("check_resource_json: paired arrays must have the same length") {
  const Issue i =
      check_issue(R"({"resourceType":"Patient","name":[{"given":["a"],"_given":[{"id":"t"},null]}]})");
  CHECK(i.expression == "Patient.name[0]._given");
  CHECK(i.diagnostics == "arrays given and _given must have the same number of items");
}

TEST_CASE("check_resource_json: null inside a nested array is not allowed") {
  const Issue i = check_issue(R"({"resourceType":"Basic","x":[[1,null]],"_x":[[1,2]]})");
  CHECK(i.expression == "Basic.x[0][1]");
  CHECK(i.diagnostics == "null is not allowed here");
}

TEST_CASE("check_resource_json: empty strings, objects and arrays are not allowed") {
  const Issue str = check_issue(R"({"resourceType":"Patient","name":[{"given":["Jim",""]}]})");
  CHECK(str.diagnostics == "empty string is not allowed in FHIR JSON");
  CHECK(str.expression == "Patient.name[0].given[1]");

  const Issue member = check_issue(R"({"resourceType":"Patient","gender":""})");
  CHECK(member.expression == "Patient.gender");

  const Issue object = check_issue(R"({"resourceType":"Patient","meta":{}})");
  CHECK(object.diagnostics == "empty object is not allowed in FHIR JSON");
  CHECK(object.expression == "Patient.meta");

  const Issue array = check_issue(R"({"resourceType":"Patient","name":[{"given":[]}]})");
  CHECK(array.diagnostics == "empty array is not allowed in FHIR JSON");
  CHECK(array.expression == "Patient.name[0].given");

  const Issue item = check_issue(R"({"resourceType":"Patient","identifier":[{"system":"s"},{}]})");
  CHECK(item.expression == "Patient.identifier[1]");
  CHECK(item.diagnostics == "empty object is not allowed in FHIR JSON");
}

TEST_CASE("check_resource_json: whitespace-only strings are not allowed") {
  const Issue i = check_issue("{\"resourceType\":\"Patient\",\"name\":[{\"text\":\" \\t\\r\\n \"}]}");
  CHECK(i.diagnostics == "a string of only whitespace is not allowed in FHIR JSON");
  CHECK(i.expression == "Patient.name[0].text");
  CHECK(passes_check(R"({"resourceType":"Patient","name":[{"text":"  x  "}]})"));
}

TEST_CASE("check_resource_json: the id of every resource must be a valid id") {
  const Issue root = check_issue(R"({"resourceType":"Patient","id":"a_b"})");
  CHECK(root.expression == "Patient.id");
  CHECK(root.diagnostics.find("not a valid FHIR id") != std::string::npos);
  CHECK(check_issue(R"({"resourceType":"Patient","id":12})").expression == "Patient.id");
  CHECK(check_issue(R"({"resourceType":"Patient","id":")" + std::string(65, 'a') + "\"}").expression ==
        "Patient.id");

  const Issue contained =
      check_issue(R"({"resourceType":"Patient","contained":[{"resourceType":"Organization","id":"ok"},)"
                  R"({"resourceType":"Practitioner","id":"bad id"}]})");
  CHECK(contained.expression == "Patient.contained[1].id");

  const Issue entry = check_issue(
      R"({"resourceType":"Bundle","type":"batch","entry":[{"resource":{"resourceType":"Patient","id":"p1"}},)"
      R"({"fullUrl":"urn:uuid:1","resource":{"resourceType":"Patient","id":"p/2"}}]})");
  CHECK(entry.expression == "Bundle.entry[1].resource.id");

  CHECK(passes_check(R"({"resourceType":"Patient","name":[{"id":"element ids are not resource ids"}]})"));
}

TEST_CASE("check_resource_json: nested resources are checked with their location") {
  const Issue i = check_issue(
      R"({"resourceType":"Bundle","entry":[{"resource":{"resourceType":"Patient","name":[{"given":[""]}]}}]})");
  CHECK(i.expression == "Bundle.entry[0].resource.name[0].given[0]");

  const Issue untyped = check_issue(R"({"resourceType":"Patient","contained":[{"id":"x"}]})");
  CHECK(untyped.diagnostics == "contained resource has no resourceType");
  CHECK(untyped.expression == "Patient.contained[0]");
  CHECK(check_issue(R"({"resourceType":"Patient","contained":["Organization"]})").expression ==
        "Patient.contained[0]");

  const Issue bad_type =
      check_issue(R"({"resourceType":"Patient","contained":[{"resourceType":"Org anization"}]})");
  CHECK(bad_type.expression == "Patient.contained[0].resourceType");
}

TEST_CASE("check_resource_json: the first offence in document order is reported") {
  const Issue i = check_issue(R"({"resourceType":"Patient","gender":"","meta":{},"id":"?"})");
  CHECK(i.expression == "Patient.gender");
  const Issue j = check_issue(R"({"resourceType":"Patient","id":"?","gender":""})");
  CHECK(j.expression == "Patient.id");
}

TEST_CASE("is_valid_id: 1 to 64 letters, digits, '-' and '.'") {
  CHECK(is_valid_id("a"));
  CHECK(is_valid_id("example"));
  CHECK(is_valid_id("A-1.b-Z.9"));
  CHECK(is_valid_id(std::string(64, 'x')));
  CHECK_FALSE(is_valid_id(""));
  CHECK_FALSE(is_valid_id(std::string(65, 'x')));
  CHECK_FALSE(is_valid_id("a_b"));
  CHECK_FALSE(is_valid_id("a b"));
  CHECK_FALSE(is_valid_id("a/b"));
  CHECK_FALSE(is_valid_id("é"));
  CHECK_FALSE(is_valid_id("a:b"));
}

TEST_CASE("corpus: every FHIR R4 spec example parses, checks and survives write_json") {
  const std::string dir = testing::shared_path("corpus/fhir-r4-spec-examples");
  if (dir.empty()) {
    MESSAGE("corpus/fhir-r4-spec-examples not present; skipped");
    return;
  }
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() == ".json") files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  REQUIRE(!files.empty());
  const auto start = std::chrono::steady_clock::now();
  std::size_t checked = 0;
  for (const auto& path : files) {
    INFO(path.filename().string());
    const std::string text = read_all(path);
    auto original = parse_json(text);
    REQUIRE(original.ok());
    const Status status = check_resource_json(*original);
    CHECK_MESSAGE(status.ok(), (status.ok() ? std::string() : status.error().issues.front().expression));
    auto compact = parse_json(write_json(*original));
    REQUIRE(compact.ok());
    CHECK(*compact == *original);
    auto pretty = parse_json(write_json(*original, true));
    REQUIRE(pretty.ok());
    CHECK(*pretty == *original);
    ++checked;
  }
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start).count();
  MESSAGE("checked ", checked, " spec examples in ", ms, " ms");
  CHECK(checked == files.size());
}

}  // namespace
}  // namespace fhirgate::fhir
