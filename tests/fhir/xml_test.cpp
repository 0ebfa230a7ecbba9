#include "fhir/xml.hpp"

#include <doctest/doctest.h>

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "fhir/formats.hpp"
#include "fhir/json.hpp"
#include "fhir/model.hpp"
#include "tests/support/paths.hpp"
#include "tests/support/r4.hpp"

namespace fhirgate::fhir {
namespace {

const Model& model() {
  return *testing::r4_model();
}

Node parsed(std::string_view text) {
  auto r = parse_json(text);
  REQUIRE_MESSAGE(r.ok(), text);
  return std::move(r).value();
}

std::string to_xml(std::string_view json, bool pretty = false, bool declaration = false) {
  auto r = json_to_xml(model(), parsed(json), pretty, declaration);
  REQUIRE_MESSAGE(
      r.ok(),
      (r.ok() ? "" : r.error().issues.front().diagnostics + " at " + r.error().issues.front().expression));
  return std::move(r).value();
}

Node to_json(std::string_view xml) {
  auto r = xml_to_json(model(), xml);
  REQUIRE_MESSAGE(
      r.ok(),
      (r.ok() ? "" : r.error().issues.front().diagnostics + " at " + r.error().issues.front().expression));
  return std::move(r).value();
}

Issue xml_issue(std::string_view xml, ErrorCode code, const XmlLimits& limits = {}) {
  auto r = xml_to_json(model(), xml, limits);
  REQUIRE_MESSAGE(!r.ok(), xml);
  CHECK(r.error().code == code);
  REQUIRE(r.error().issues.size() == 1);
  return r.error().issues.front();
}

Issue json_issue(std::string_view json) {
  auto r = json_to_xml(model(), parsed(json));
  REQUIRE_MESSAGE(!r.ok(), json);
  CHECK(r.error().code == ErrorCode::unprocessable);
  REQUIRE(r.error().issues.size() == 1);
  return r.error().issues.front();
}

std::string patient(std::string_view body) {
  return "<Patient xmlns=\"http://hl7.org/fhir\">" + std::string(body) + "</Patient>";
}

// Every construct of the representation, in model order, as compact JSON and the matching compact XML.
constexpr std::string_view kPatientJson =
    R"({"resourceType":"Patient","id":"p1","meta":{"versionId":"1"},)"
    R"("text":{"status":"generated","div":"<div xmlns=\"http://www.w3.org/1999/xhtml\"><p>Peter &amp; <b>James</b> &lt;3 &quot;x&quot;</p><br/></div>"},)"
    R"("contained":[{"resourceType":"Organization","id":"org1","name":"Acme"}],)"
    R"("extension":[{"url":"http://example.org/ext/a","valueDecimal":1.50}],)"
    R"("modifierExtension":[{"url":"http://example.org/ext/m","valueBoolean":true}],)"
    R"("active":true,)"
    R"("name":[{"id":"n1","family":"Chalmers","given":["Peter",null,"Jim"],)"
    R"("_given":[null,{"id":"g2","extension":[{"url":"http://example.org/ext/b","valueCode":"x"}]},{"id":"g3"}]}],)"
    R"("birthDate":"1974-12-25","_birthDate":{"id":"bd","extension":[{"url":"http://hl7.org/fhir/StructureDefinition/patient-birthTime","valueDateTime":"1974-12-25T14:35:45-05:00"}]},)"
    R"("deceasedBoolean":false,"multipleBirthInteger":2,"managingOrganization":{"reference":"#org1"}})";

constexpr std::string_view kPatientXml =
    R"(<Patient xmlns="http://hl7.org/fhir"><id value="p1"/><meta><versionId value="1"/></meta>)"
    R"(<text><status value="generated"/><div xmlns="http://www.w3.org/1999/xhtml"><p>Peter &amp; <b>James</b> &lt;3 &quot;x&quot;</p><br/></div></text>)"
    R"(<contained><Organization><id value="org1"/><name value="Acme"/></Organization></contained>)"
    R"(<extension url="http://example.org/ext/a"><valueDecimal value="1.50"/></extension>)"
    R"(<modifierExtension url="http://example.org/ext/m"><valueBoolean value="true"/></modifierExtension>)"
    R"(<active value="true"/>)"
    R"(<name id="n1"><family value="Chalmers"/><given value="Peter"/>)"
    R"(<given id="g2"><extension url="http://example.org/ext/b"><valueCode value="x"/></extension></given>)"
    R"(<given id="g3" value="Jim"/></name>)"
    R"(<birthDate id="bd" value="1974-12-25"><extension url="http://hl7.org/fhir/StructureDefinition/patient-birthTime"><valueDateTime value="1974-12-25T14:35:45-05:00"/></extension></birthDate>)"
    R"(<deceasedBoolean value="false"/><multipleBirthInteger value="2"/>)"
    R"(<managingOrganization><reference value="#org1"/></managingOrganization></Patient>)";

TEST_CASE("xml: a Patient with every construct converts to the exact XML and back to the same JSON") {
  CHECK(to_xml(kPatientJson) == kPatientXml);
  const Node back = to_json(kPatientXml);
  CHECK(back == parsed(kPatientJson));
  CHECK(write_json(back) == kPatientJson);
  CHECK(check_resource_json(back).ok());
}

TEST_CASE("xml: the declaration is written when asked for") {
  const std::string xml = to_xml(R"({"resourceType":"Patient","active":true})", false, true);
  CHECK(
      xml ==
      R"(<?xml version="1.0" encoding="UTF-8"?><Patient xmlns="http://hl7.org/fhir"><active value="true"/></Patient>)");
  CHECK(to_json(xml) == parsed(R"({"resourceType":"Patient","active":true})"));
}

TEST_CASE("xml: decimals keep their lexical form both ways") {
  const std::string json =
      R"({"resourceType":"Observation","status":"final","code":{"text":"x"},)"
      R"("valueQuantity":{"value":1.50,"unit":"mmol/L"},"component":[{"code":{"text":"y"},"valueQuantity":{"value":1.0e2}}]})";
  const std::string xml = to_xml(json);
  CHECK(xml.find(R"(<valueQuantity><value value="1.50"/><unit value="mmol/L"/></valueQuantity>)") !=
        std::string::npos);
  CHECK(xml.find(R"(<value value="1.0e2"/>)") != std::string::npos);
  const Node back = to_json(xml);
  CHECK(back == parsed(json));
  CHECK(back.find("valueQuantity")->find("value")->text() == "1.50");
}

TEST_CASE("xml: elements come out in model order whatever the input order") {
  const Node json = parsed(
      R"({"birthDate":"1970","name":[{"given":["A"],"family":"B"}],"id":"x","resourceType":"Patient"})");
  CHECK(to_xml(write_json(json)) ==
        patient(
            R"(<id value="x"/><name><family value="B"/><given value="A"/></name><birthDate value="1970"/>)"));
  const Node back = to_json(patient(
      R"(<birthDate value="1970"/><name><given value="A"/><family value="B"/></name><id value="x"/>)"));
  CHECK(write_json(back) ==
        R"({"resourceType":"Patient","id":"x","name":[{"family":"B","given":["A"]}],"birthDate":"1970"})");
}

TEST_CASE("xml: one occurrence of a repeating element is still a JSON array; a single element is not") {
  const Node n = to_json(patient(R"(<name><given value="A"/></name><gender value="male"/>)"));
  CHECK(n.find("name")->is_array());
  CHECK(n.find("name")->items()[0].find("given")->is_array());
  CHECK(n.find("gender")->is_string());
}

TEST_CASE("xml: a primitive with only extensions has no value member and a null in value arrays") {
  const Node n = to_json(patient(
      R"(<name><given><extension url="http://e.org/a"><valueString value="x"/></extension></given></name>)"
      R"(<birthDate><extension url="http://hl7.org/fhir/StructureDefinition/data-absent-reason"><valueCode value="unknown"/></extension></birthDate>)"));
  CHECK(
      write_json(n) ==
      R"({"resourceType":"Patient","name":[{"_given":[{"extension":[{"url":"http://e.org/a","valueString":"x"}]}]}],)"
      R"("_birthDate":{"extension":[{"url":"http://hl7.org/fhir/StructureDefinition/data-absent-reason","valueCode":"unknown"}]}})");
}

TEST_CASE("xml: a Bundle carries nested resources both ways") {
  const std::string json =
      R"({"resourceType":"Bundle","id":"b1","type":"collection","entry":[)"
      R"({"fullUrl":"urn:uuid:1","resource":{"resourceType":"Patient","id":"p","contained":[{"resourceType":"Practitioner","id":"pr","active":false}],"active":true}},)"
      R"({"fullUrl":"urn:uuid:2","resource":{"resourceType":"Observation","id":"o","status":"final","code":{"text":"t"},"subject":{"reference":"urn:uuid:1"},"valueQuantity":{"value":37.50}}},)"
      R"({"resource":{"resourceType":"Bundle","type":"collection","entry":[{"resource":{"resourceType":"Basic","code":{"text":"c"}}}]}}]})";
  const std::string xml = to_xml(json);
  CHECK(xml.starts_with(
      R"(<Bundle xmlns="http://hl7.org/fhir"><id value="b1"/><type value="collection"/><entry><fullUrl value="urn:uuid:1"/><resource><Patient><id value="p"/><contained><Practitioner>)"));
  CHECK(
      xml.find(
          R"(<resource><Bundle><type value="collection"/><entry><resource><Basic><code><text value="c"/></code></Basic></resource></entry></Bundle></resource>)") !=
      std::string::npos);
  const Node back = to_json(xml);
  CHECK(back == parsed(json));
}

TEST_CASE("xml: pretty output indents by two spaces and keeps the div as it is") {
  const std::string json =
      R"({"resourceType":"Patient","id":"x","text":{"status":"generated","div":"<div xmlns=\"http://www.w3.org/1999/xhtml\">\n  <p>Hi <b>there</b></p>\n</div>"},)"
      R"("_active":{"id":"a"},"name":[{"family":"F","given":["A","B"]}]})";
  const std::string expected = R"(<?xml version="1.0" encoding="UTF-8"?>
<Patient xmlns="http://hl7.org/fhir">
  <id value="x"/>
  <text>
    <status value="generated"/>
    <div xmlns="http://www.w3.org/1999/xhtml">
  <p>Hi <b>there</b></p>
</div>
  </text>
  <active id="a"/>
  <name>
    <family value="F"/>
    <given value="A"/>
    <given value="B"/>
  </name>
</Patient>
)";
  CHECK(to_xml(json, true, true) == expected);
  CHECK(to_json(expected) == parsed(json));
}

TEST_CASE("xml: attribute values escape markup and keep tabs and line breaks") {
  const std::string json = R"({"resourceType":"Patient","name":[{"text":"a&b<c>\"d'\n\te\r\nf"}]})";
  const std::string xml = to_xml(json);
  CHECK(xml == patient(R"(<name><text value="a&amp;b&lt;c&gt;&quot;d'&#10;&#9;e&#13;&#10;f"/></name>)"));
  CHECK(to_json(xml) == parsed(json));
}

TEST_CASE("xml: the div is taken from XML as XHTML text with its namespace declared on it") {
  const Node n = to_json(
      R"(<Patient xmlns="http://hl7.org/fhir" xmlns:h="http://www.w3.org/1999/xhtml"><text><status value="generated"/>)"
      R"(<h:div><h:p class="c" xml:lang="en">a<!-- note --><![CDATA[<b>&]]><h:br/></h:p><?pi x?></h:div></text></Patient>)");
  CHECK(
      n.find("text")->string_at("div") ==
      R"(<div xmlns="http://www.w3.org/1999/xhtml"><p class="c" xml:lang="en">a&lt;b&gt;&amp;<br/></p></div>)");
}

TEST_CASE("xml: comments, processing instructions, whitespace and xsi attributes are ignored") {
  const Node n = to_json(
      "<?xml version=\"1.0\"?>\n<!-- c -->\n<?pi x?>\n<Patient xmlns=\"http://hl7.org/fhir\" "
      "xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xsi:schemaLocation=\"http://hl7.org/fhir "
      "patient.xsd\">\n"
      "  <!-- c --><active value=\"true\"/>\n  <?pi y?>\n</Patient>\n");
  CHECK(write_json(n) == R"({"resourceType":"Patient","active":true})");
}

TEST_CASE("xml: malformed XML is invalid_input with line and column") {
  const Issue i = xml_issue("<Patient xmlns=\"http://hl7.org/fhir\">\n  <id value=\"x\">\n</Patient>",
                            ErrorCode::invalid_input);
  CHECK(i.line == 3);
  CHECK(i.column > 0);
  CHECK(i.diagnostics.find("not well-formed") != std::string::npos);
  CHECK(xml_issue("", ErrorCode::invalid_input).diagnostics.find("empty") != std::string::npos);
  CHECK(xml_issue("{\"resourceType\":\"Patient\"}", ErrorCode::invalid_input).line == 1);
  CHECK(xml_issue(patient("<id value=\"&undefined;\"/>"), ErrorCode::invalid_input)
            .diagnostics.find("undefined") != std::string::npos);
}

// Regression: XML cut short was answered 422 with a FHIR complaint ("<Patient> is not in the FHIR
// namespace", "unknown element <foo>") instead of 400 with the parse error, because libxml2 reports the
// start tags it has read before it finds that the document ends too early, and the reader stopped the
// parser at its first complaint.
TEST_CASE(
    "xml: regression: XML cut short is invalid_input with the parser's line and column, not a FHIR "
    "complaint") {
  for (const std::string& cut :
       {std::string("<Patient"), std::string("<Patient xmlns=\"http://hl7.org/fhir\"><id value=\"1\"/>"),
        std::string("<Patient><id value=\"1\"/>"),
        std::string("<Patient xmlns=\"http://hl7.org/fhir\"><foo/>"),
        std::string("<Patient xmlns=\"http://hl7.org/fhir\"><foo/></Patient"),
        std::string("<Foo xmlns=\"http://hl7.org/fhir\"><bar>")}) {
    CAPTURE(cut);
    const Issue i = xml_issue(cut, ErrorCode::invalid_input);
    CHECK(i.diagnostics.starts_with("XML is not well-formed: "));
    CHECK(i.line == 1);
    CHECK(i.column > 0);
    CHECK(i.expression.empty());
    auto parsed = parse_resource(model(), cut, Format::xml);
    REQUIRE_FALSE(parsed.ok());
    CHECK(parsed.error().code == ErrorCode::invalid_input);
    CHECK(http_status(parsed.error().code) == 400);
  }
}

TEST_CASE("xml: regression: a FHIR complaint early in a document does not hide a parse error later on") {
  const Issue i =
      xml_issue("<Patient xmlns=\"urn:not-fhir\">\n<foo value=\"x\"/>\n<active value=\"true\">\n</Patient>",
                ErrorCode::invalid_input);
  CHECK(i.line == 4);
  CHECK(i.column > 0);
  CHECK(i.diagnostics.find("mismatch") != std::string::npos);
  // Well-formed documents still get the FHIR-level error, with its location.
  const Issue fhir = xml_issue(patient("<foo/>"), ErrorCode::unprocessable);
  CHECK(fhir.expression == "Patient.foo");
}

TEST_CASE("xml: a DOCTYPE is refused before parsing, so XXE gets nowhere") {
  const Issue i = xml_issue(
      "<?xml version=\"1.0\"?>\n<!DOCTYPE Patient [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]>\n"
      "<Patient xmlns=\"http://hl7.org/fhir\"><id value=\"&xxe;\"/></Patient>",
      ErrorCode::invalid_input);
  CHECK(i.diagnostics == "DTDs are not allowed in FHIR XML");
  CHECK(i.line == 2);
  CHECK(i.column == 1);
  CHECK(xml_issue("\xEF\xBB\xBF<!-- a --><!DOCTYPE Patient SYSTEM \"http://example.org/x.dtd\"><Patient/>",
                  ErrorCode::invalid_input)
            .diagnostics == "DTDs are not allowed in FHIR XML");
  // Not UTF-8: the byte scan cannot read it, the parser refuses it.
  const std::string utf16("\xFF\xFE<\0!\0D\0O\0C\0T\0Y\0P\0E\0 \0P\0>\0", 24);
  xml_issue(utf16, ErrorCode::invalid_input);
}

TEST_CASE("xml: billion laughs is refused without expanding anything") {
  std::string xml = "<?xml version=\"1.0\"?>\n<!DOCTYPE lolz [\n <!ENTITY lol \"lol\">\n";
  for (int k = 1; k <= 9; ++k) {
    xml += " <!ENTITY lol" + std::to_string(k) + " \"";
    for (int r = 0; r < 10; ++r) xml += k == 1 ? "&lol;" : "&lol" + std::to_string(k - 1) + ";";
    xml += "\">\n";
  }
  xml += "]>\n<Patient xmlns=\"http://hl7.org/fhir\"><id value=\"&lol9;\"/></Patient>";
  const Issue i = xml_issue(xml, ErrorCode::invalid_input);
  CHECK(i.diagnostics == "DTDs are not allowed in FHIR XML");
}

TEST_CASE("xml: elements the model does not know are unprocessable with their location") {
  Issue i = xml_issue(patient(R"(<name><family value="F"/></name><name><foo value="x"/></name>)"),
                      ErrorCode::unprocessable);
  CHECK(i.expression == "Patient.name[1].foo");
  CHECK(i.diagnostics == "unknown element <foo>");
  i = xml_issue(patient(R"(<name foo="x"/>)"), ErrorCode::unprocessable);
  CHECK(i.expression == "Patient.name[0].foo");
  i = xml_issue(patient(R"(<birthDate value="1970" foo="x"/>)"), ErrorCode::unprocessable);
  CHECK(i.expression == "Patient.birthDate");
  i = xml_issue(patient(R"(<valueString value="x"/>)"), ErrorCode::unprocessable);
  CHECK(i.expression == "Patient.valueString");
  i = xml_issue(patient(R"(<deceasedString value="x"/>)"), ErrorCode::unprocessable);
  CHECK(i.expression == "Patient.deceasedString");
  i = xml_issue(patient(R"(<birthDate>1970</birthDate>)"), ErrorCode::unprocessable);
  CHECK(i.expression == "Patient.birthDate");
  i = xml_issue(patient(R"(<name>Peter</name>)"), ErrorCode::unprocessable);
  CHECK(i.expression == "Patient.name[0]");
  i = xml_issue(R"(<Foo xmlns="http://hl7.org/fhir"/>)", ErrorCode::unprocessable);
  CHECK(i.diagnostics == "<Foo> is not a FHIR resource type");
  i = xml_issue(R"(<DomainResource xmlns="http://hl7.org/fhir"/>)", ErrorCode::unprocessable);
  i = xml_issue(patient(R"(<contained><Foo/></contained>)"), ErrorCode::unprocessable);
  CHECK(i.expression == "Patient.contained[0]");
  i = xml_issue(patient(R"(<contained/>)"), ErrorCode::unprocessable);
  CHECK(i.expression == "Patient.contained[0]");
}

TEST_CASE("xml: the FHIR and XHTML namespaces are required where they belong") {
  Issue i = xml_issue(R"(<Patient><active value="true"/></Patient>)", ErrorCode::unprocessable);
  CHECK(i.diagnostics.find("FHIR namespace") != std::string::npos);
  CHECK(i.expression == "Patient");
  i = xml_issue(R"(<Patient xmlns="http://hl7.org/fhir/other"/>)", ErrorCode::unprocessable);
  i = xml_issue(patient(R"(<active xmlns="urn:x" value="true"/>)"), ErrorCode::unprocessable);
  CHECK(i.expression == "Patient.active");
  i = xml_issue(patient(R"(<text><status value="generated"/><div><p>x</p></div></text>)"),
                ErrorCode::unprocessable);
  CHECK(i.expression == "Patient.text.div");
  i = xml_issue(
      patient(
          R"(<text><status value="generated"/><div xmlns="http://www.w3.org/1999/xhtml"><svg xmlns="http://www.w3.org/2000/svg"/></div></text>)"),
      ErrorCode::unprocessable);
  CHECK(i.expression == "Patient.text.div");
  i = xml_issue(patient(R"(<active xmlns="http://www.w3.org/1999/xhtml" value="true"/>)"),
                ErrorCode::unprocessable);
}

TEST_CASE("xml: a single element given twice is unprocessable") {
  Issue i = xml_issue(patient("<birthDate value=\"1970\"/>\n<birthDate value=\"1971\"/>"),
                      ErrorCode::unprocessable);
  CHECK(i.expression == "Patient.birthDate");
  CHECK(i.line == 2);
  i = xml_issue(patient(R"(<deceasedBoolean value="true"/><deceasedDateTime value="2020"/>)"),
                ErrorCode::unprocessable);
  CHECK(i.expression == "Patient.deceasedDateTime");
  i = xml_issue(patient(R"(<name><family value="a"/><family value="b"/></name>)"), ErrorCode::unprocessable);
  CHECK(i.expression == "Patient.name[0].family");
}

TEST_CASE("xml: values that do not fit their JSON type are unprocessable") {
  Issue i = xml_issue(patient(R"(<multipleBirthInteger value="+2"/>)"), ErrorCode::unprocessable);
  CHECK(i.expression == "Patient.multipleBirthInteger");
  i = xml_issue(patient(R"(<extension url="http://e.org/x"><valueDecimal value=".5"/></extension>)"),
                ErrorCode::unprocessable);
  CHECK(i.expression == "Patient.extension[0].valueDecimal");
  CHECK(i.diagnostics == "value is not a valid decimal");
  for (const char* bad : {"1.", "01", "1e", "NaN", "1,5", " 1"}) {
    xml_issue(patient(std::string("<extension url=\"http://e.org/x\"><valueDecimal value=\"") + bad +
                      "\"/></extension>"),
              ErrorCode::unprocessable);
  }
  i = xml_issue(patient(R"(<active value="yes"/>)"), ErrorCode::unprocessable);
  CHECK(i.expression == "Patient.active");
  i = xml_issue(patient(R"(<gender value=""/>)"), ErrorCode::unprocessable);
  CHECK(i.expression == "Patient.gender");
  i = xml_issue(patient(R"(<gender/>)"), ErrorCode::unprocessable);
  CHECK(i.expression == "Patient.gender");
}

TEST_CASE("xml: nesting deeper than the limit is invalid_input") {
  std::string nested;
  for (int k = 0; k < 10; ++k) nested += "<extension url=\"http://e.org/x\">";
  nested += "<valueString value=\"x\"/>";
  for (int k = 0; k < 10; ++k) nested += "</extension>";
  CHECK(to_json(patient(nested)).is_object());
  XmlLimits limits;
  limits.max_depth = 8;
  Issue i = xml_issue(patient(nested), ErrorCode::invalid_input, limits);
  CHECK(i.diagnostics == "XML is nested deeper than 8 elements");
  CHECK(i.line == 1);
  CHECK(i.column > 0);
  std::string deep = "<Patient xmlns=\"http://hl7.org/fhir\">";
  for (int k = 0; k < 100000; ++k) deep += "<extension url=\"http://e.org/x\">";
  CHECK(xml_issue(deep, ErrorCode::invalid_input).diagnostics == "XML is nested deeper than 128 elements");
  std::string div = "<text><status value=\"generated\"/><div xmlns=\"http://www.w3.org/1999/xhtml\">";
  for (int k = 0; k < 20; ++k) div += "<span>";
  for (int k = 0; k < 20; ++k) div += "</span>";
  div += "</div></text>";
  limits.max_depth = 16;
  xml_issue(patient(div), ErrorCode::invalid_input, limits);
}

TEST_CASE("xml: input larger than the limit is refused") {
  XmlLimits limits;
  limits.max_bytes = 16;
  const Issue i = xml_issue(patient(R"(<active value="true"/>)"), ErrorCode::invalid_input, limits);
  CHECK(i.diagnostics.find("larger than 16 bytes") != std::string::npos);
}

TEST_CASE("xml: JSON the model cannot place is unprocessable with its location") {
  Issue i = json_issue(R"({"resourceType":"Patient","name":[{"family":"F"},{"foo":"x"}]})");
  CHECK(i.expression == "Patient.name[1].foo");
  i = json_issue(R"({"resourceType":"Patient","_foo":{"id":"x"}})");
  CHECK(i.expression == "Patient._foo");
  i = json_issue(R"({"resourceType":"Foo"})");
  CHECK(i.expression == "Foo.resourceType");
  i = json_issue(R"({"resourceType":"DomainResource"})");
  i = json_issue(R"({"id":"x"})");
  CHECK(i.diagnostics == "resource has no resourceType");
  i = json_issue(R"({"resourceType":"Patient","contained":[{"id":"x"}]})");
  CHECK(i.expression == "Patient.contained[0].resourceType");
  i = json_issue(R"({"resourceType":"Patient","name":{"family":"F"}})");
  CHECK(i.expression == "Patient.name");
  i = json_issue(R"({"resourceType":"Patient","birthDate":["1970"]})");
  CHECK(i.expression == "Patient.birthDate");
  i = json_issue(R"({"resourceType":"Patient","birthDate":{"value":"1970"}})");
  CHECK(i.expression == "Patient.birthDate");
  i = json_issue(R"({"resourceType":"Patient","_birthDate":{"foo":1}})");
  CHECK(i.expression == "Patient._birthDate.foo");
  i = json_issue(R"({"resourceType":"Patient","name":[{"given":["a",null],"_given":[null]}]})");
  CHECK(i.expression == "Patient.name[0]._given");
  i = json_issue(R"({"resourceType":"Patient","name":[{"given":["a",null]}]})");
  CHECK(i.expression == "Patient.name[0].given[1]");
  i = json_issue(R"({"resourceType":"Patient","deceasedBoolean":true,"deceasedDateTime":"2020"})");
  CHECK(i.expression == "Patient.deceasedDateTime");
  i = json_issue(R"({"resourceType":"Patient","extension":[{"url":"http://e.org/x","_url":{"id":"u"}}]})");
  CHECK(i.expression == "Patient.extension[0]._url");
  i = json_issue(R"({"resourceType":"Patient","name":[{"text":"a\u0001b"}]})");
  CHECK(i.expression == "Patient.name[0].text");
  i = json_issue(
      R"({"resourceType":"Patient","text":{"status":"generated","div":"<div xmlns=\"http://www.w3.org/1999/xhtml\"><p></div>"}})");
  CHECK(i.expression == "Patient.text.div");
  i = json_issue(
      R"({"resourceType":"Patient","text":{"status":"generated","div":"<p xmlns=\"http://www.w3.org/1999/xhtml\">x</p>"}})");
  CHECK(i.expression == "Patient.text.div");
  i = json_issue(R"({"resourceType":"Patient","text":{"status":"generated","div":"<div>x</div>"}})");
  CHECK(i.expression == "Patient.text.div");
  i = json_issue(
      R"({"resourceType":"Patient","text":{"status":"generated","div":"<!DOCTYPE div [<!ENTITY x \"y\">]><div xmlns=\"http://www.w3.org/1999/xhtml\">&x;</div>"}})");
  CHECK(i.expression == "Patient.text.div");
  CHECK(i.diagnostics.find("DTDs are not allowed") != std::string::npos);
}

TEST_CASE("xml: conversions run concurrently") {
  std::vector<std::thread> threads;
  std::vector<int> ok(8, 0);
  const Node json = parsed(kPatientJson);
  for (std::size_t t = 0; t < ok.size(); ++t) {
    threads.emplace_back([&, t] {
      for (int k = 0; k < 200; ++k) {
        auto xml = json_to_xml(model(), json);
        auto back = xml.ok() ? xml_to_json(model(), *xml) : Result<Node>(Error{});
        auto bad = xml_to_json(model(), "<Patient xmlns=\"http://hl7.org/fhir\"><id></Patient>");
        if (back.ok() && *back == json && !bad.ok() && bad.error().issues.front().line == 1) ++ok[t];
      }
    });
  }
  for (auto& th : threads) th.join();
  for (const int n : ok) CHECK(n == 200);
}

TEST_CASE("xml: issue locations are placed on the line of their element, through nested resources") {
  const std::string xml =
      "<Bundle xmlns=\"http://hl7.org/fhir\">\n"                                              // 1
      "  <type value=\"collection\"/>\n"                                                      // 2
      "  <entry>\n"                                                                           // 3
      "    <resource>\n"                                                                      // 4
      "      <Patient>\n"                                                                     // 5
      "        <text><status value=\"generated\"/>\n"                                         // 6
      "          <div xmlns=\"http://www.w3.org/1999/xhtml\"><p>x</p><name/></div></text>\n"  // 7
      "        <name><given value=\"A\"/></name>\n"                                           // 8
      "        <name>\n"                                                                      // 9
      "          <given value=\"B\"/>\n"                                                      // 10
      "          <given value=\"C\"/>\n"                                                      // 11
      "        </name>\n"                                                                     // 12
      "      </Patient>\n"                                                                    // 13
      "    </resource>\n"                                                                     // 14
      "  </entry>\n"                                                                          // 15
      "</Bundle>\n";
  std::vector<Issue> issues(5);
  issues[0].expression = "Bundle.entry[0].resource.name[1].given[1]";
  issues[1].expression = "Bundle.entry[0].resource.name[1]";
  issues[2].expression = "Bundle.type";
  issues[3].expression = "Bundle.entry[0].resource.birthDate";  // absent: its parent's line
  issues[4].expression = "Bundle.entry[0].resource.name[2]";    // absent: the resource's line
  locate_issues(xml, Format::xml, issues);
  CHECK(issues[0].line == 11);
  CHECK(issues[1].line == 9);
  CHECK(issues[2].line == 2);
  CHECK(issues[3].line == 5);
  CHECK(issues[4].line == 5);
  CHECK(issues[0].column > 1);
}

}  // namespace
}  // namespace fhirgate::fhir
