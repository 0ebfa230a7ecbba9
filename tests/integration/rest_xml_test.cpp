// FHIR XML on every endpoint: XML bodies in, XML out by _format or Accept, errors and /metadata too.
#include <string>

#include "tests/integration/common.hpp"

namespace fhirgate::testing {
namespace {

const std::string kXmlType = "application/fhir+xml";

std::string patient_xml(const std::string& family) {
  return R"(<?xml version="1.0" encoding="UTF-8"?>
<Patient xmlns="http://hl7.org/fhir">
  <text>
    <status value="generated"/>
    <div xmlns="http://www.w3.org/1999/xhtml"><p>Ann <b>)" +
         family + R"(</b></p></div>
  </text>
  <extension url="http://example.org/score">
    <valueDecimal value="1.50"/>
  </extension>
  <name>
    <family value=")" +
         family + R"("/>
    <given value="Ann"/>
    <given id="g2" value="Marie">
      <extension url="http://example.org/note">
        <valueString value="second"/>
      </extension>
    </given>
  </name>
  <gender value="female"/>
  <birthDate value="1970-03"/>
  <deceasedBoolean value="false"/>
</Patient>)";
}

TEST_CASE("a Patient created as XML reads back identically as XML and as the equivalent JSON") {
  HttpClient http(shared_gateway().port());
  const std::string family = unique_name("Xml");
  const auto created = http.request("POST", "/Patient", patient_xml(family),
                                    {{"Content-Type", kXmlType}, {"Accept", kXmlType}});
  REQUIRE_MESSAGE(created.status == 201, created.body);
  CHECK(created.header("Content-Type").find(kXmlType) == 0);
  CHECK(created.body.find("<Patient xmlns=\"http://hl7.org/fhir\">") != std::string::npos);
  const std::string location = created.header("Location");
  const std::string id = location.substr(location.find("/Patient/") + 9,
                                         location.find("/_history") - location.find("/Patient/") - 9);

  const auto as_xml = http.get("/Patient/" + id + "?_format=xml");
  CHECK(as_xml.status == 200);
  CHECK(as_xml.body == created.body);
  CHECK(as_xml.body.find(R"(<valueDecimal value="1.50"/>)") != std::string::npos);
  CHECK(as_xml.body.find(R"(<given id="g2" value="Marie">)") != std::string::npos);
  CHECK(as_xml.body.find(R"(<div xmlns="http://www.w3.org/1999/xhtml"><p>Ann <b>)" + family +
                         "</b></p></div>") != std::string::npos);

  const auto as_json = http.get("/Patient/" + id, {{"Accept", "application/fhir+json"}});
  auto j = json(as_json.body);
  CHECK(text_at(j, "name[0].given[1]") == "Marie");
  CHECK(text_at(j, "name[0]._given[1].id") == "g2");
  CHECK(at(j, "name[0]._given[0]")->is_null());
  CHECK(as_json.body.find(R"("valueDecimal":1.50)") != std::string::npos);
  CHECK(text_at(j, "deceasedBoolean") == "false");
  CHECK(at(j, "deceasedBoolean")->is_bool());
  CHECK(text_at(j, "birthDate") == "1970-03");

  // The same resource posted as JSON reads back as the same XML (but for id and meta).
  const auto search = http.get("/Patient?family=" + family + "&_format=application/fhir%2Bxml");
  CHECK(search.status == 200);
  CHECK(search.body.find("<Bundle xmlns=\"http://hl7.org/fhir\">") != std::string::npos);
  CHECK(search.body.find("<type value=\"searchset\"/>") != std::string::npos);
  const bool nested = search.body.find("<resource><Patient") != std::string::npos;
  CHECK(nested);
}

TEST_CASE("errors and the CapabilityStatement come back in XML when XML is asked for") {
  HttpClient http(shared_gateway().port());
  const auto missing = http.get("/Patient/not-there", {{"Accept", "application/fhir+xml"}});
  CHECK(missing.status == 404);
  CHECK(missing.header("Content-Type").find(kXmlType) == 0);
  CHECK(missing.body.find("<OperationOutcome xmlns=\"http://hl7.org/fhir\">") != std::string::npos);
  const auto metadata = http.get("/metadata?_format=xml&_pretty=true");
  CHECK(metadata.status == 200);
  CHECK(metadata.body.find(
            "<CapabilityStatement xmlns=\"http://hl7.org/fhir\">\n  <status value=\"active\"/>") !=
        std::string::npos);
  CHECK(metadata.body.find("<format value=\"application/fhir+xml\"/>") != std::string::npos);
}

TEST_CASE(
    "fuzz: http: an XML error outcome quoting a control character or bad UTF-8 shows it escaped, not a 500") {
  HttpClient http(shared_gateway().port());
  // The diagnostics quote the decoded search value: %08 is a backspace, %FF is not UTF-8.
  const auto control = http.get("/Patient?birthdate=%08&_format=xml");
  CHECK(control.status == 400);
  CHECK(control.body.find("<OperationOutcome xmlns=\"http://hl7.org/fhir\">") != std::string::npos);
  CHECK_MESSAGE(control.body.find("Invalid date '\\u0008'") != std::string::npos, control.body);
  const auto bad_utf8 = http.get("/Patient?gender:%FF=x", {{"Accept", kXmlType}});
  CHECK(bad_utf8.status == 400);
  CHECK_MESSAGE(bad_utf8.body.find("Modifier '\\xFF'") != std::string::npos, bad_utf8.body);
  const auto as_json = http.get("/Patient?birthdate=%08");
  CHECK(as_json.status == 400);
  CHECK_MESSAGE(as_json.body.find("Invalid date '\\\\u0008'") != std::string::npos, as_json.body);
}

TEST_CASE("malformed and hostile XML get a 400 OperationOutcome and nothing is stored") {
  HttpClient http(shared_gateway().port());
  const std::string family = unique_name("Hostile");
  const auto malformed =
      http.request("POST", "/Patient",
                   "<Patient xmlns=\"http://hl7.org/fhir\">\n  <name><family value=\"x\"></name>\n</Patient>",
                   {{"Content-Type", kXmlType}});
  CHECK(malformed.status == 400);
  auto oo = json(malformed.body);
  CHECK(text_at(oo, "issue[0].extension[0].valueInteger") == "2");

  const std::string xxe = R"(<?xml version="1.0"?>
<!DOCTYPE Patient [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<Patient xmlns="http://hl7.org/fhir"><name><family value=")" +
                          family + R"(&xxe;"/></name></Patient>)";
  const auto r1 = http.request("POST", "/Patient", xxe, {{"Content-Type", kXmlType}});
  CHECK(r1.status == 400);
  CHECK(r1.body.find("root:") == std::string::npos);

  std::string laughs = "<?xml version=\"1.0\"?>\n<!DOCTYPE lolz [<!ENTITY lol \"lol\">";
  for (int i = 1; i < 10; ++i) {
    laughs += "<!ENTITY lol" + std::to_string(i) + " \"";
    for (int j = 0; j < 10; ++j) laughs += "&lol" + (i == 1 ? std::string() : std::to_string(i - 1)) + ";";
    laughs += "\">";
  }
  laughs += "]>\n<Patient xmlns=\"http://hl7.org/fhir\"><name><family value=\"" + family +
            "&lol9;\"/></name></Patient>";
  const auto r2 = http.request("POST", "/Patient", laughs, {{"Content-Type", kXmlType}});
  CHECK(r2.status == 400);

  const auto unknown = http.request(
      "POST", "/Patient", "<Patient xmlns=\"http://hl7.org/fhir\"><colour value=\"red\"/></Patient>",
      {{"Content-Type", kXmlType}});
  CHECK(unknown.status == 422);
  CHECK(first_issue(unknown).find("colour") != std::string::npos);

  CHECK(text_at(json(http.get("/Patient?family=" + family + "&_summary=count").body), "total") == "0");
}

}  // namespace
}  // namespace fhirgate::testing
