// `fhirgate convert` as a user runs it: files and stdin, both directions, errors with file and position.
#include <sys/wait.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "tests/integration/common.hpp"

namespace fhirgate::testing {
namespace {

Run run(const std::string& args, const std::string& stdin_text = {}) {
  return run_fhirgate(args, stdin_text);
}

TEST_CASE("convert turns JSON into XML and back, from files and stdin") {
  const std::string dir = temp_dir();
  const std::string json_text =
      R"({"resourceType":"Patient","id":"p1","extension":[{"url":"http://example.org/x","valueDecimal":0.10}],)"
      R"("name":[{"family":"Ng","given":["Li"]}],"birthDate":"2001-02-03"})";
  std::ofstream(dir + "/p.json") << json_text;
  const auto to_xml = run("convert --to xml " + dir + "/p.json");
  REQUIRE(to_xml.status == 0);
  CHECK(to_xml.out.find("<Patient xmlns=\"http://hl7.org/fhir\">") != std::string::npos);
  CHECK(to_xml.out.find("<valueDecimal value=\"0.10\"/>") != std::string::npos);
  const auto back = run("convert --to json -", to_xml.out);
  REQUIRE(back.status == 0);
  CHECK(json(back.out) == json(json_text));
}

TEST_CASE("convert reports the file, position and reason of each failure and exits 1") {
  const std::string dir = temp_dir();
  std::ofstream(dir + "/bad.xml") << "<Patient xmlns=\"http://hl7.org/fhir\">\n<name>\n</Patient>";
  std::ofstream(dir + "/good.json") << R"({"resourceType":"Patient","active":true})";
  const auto r = run("convert --to json " + dir + "/bad.xml " + dir + "/good.json");
  CHECK(r.status == 1);
  CHECK(r.err.find(dir + "/bad.xml:3:") != std::string::npos);
  CHECK(r.out.find("\"active\":true") != std::string::npos);  // the good file is still converted
  CHECK(run("convert --to yaml x").status == 2);
  CHECK(run("convert --help").out.find("--to xml|json") != std::string::npos);
}

TEST_CASE("convert shows the Patient an ADT message maps to, and a Patient as ADT^A31") {
  const auto to_json = run("convert --to json " + source_path("tests/data/adt_a01.hl7"));
  REQUIRE(to_json.status == 0);
  const auto patient = json(to_json.out);
  CHECK(patient.string_at("resourceType") == "Patient");
  CHECK(text_at(patient, "identifier[0].system") == "https://fhir.nhs.uk/Id/nhs-number");
  CHECK(text_at(patient, "identifier[0].value") == "9434765919");
  CHECK(text_at(patient, "name[0].family") == "CHALMERS");

  const std::string dir = temp_dir();
  std::ofstream(dir + "/p.json") << to_json.out;
  const auto to_v2 = run("convert --to hl7v2 " + dir + "/p.json");
  REQUIRE(to_v2.status == 0);
  CHECK(to_v2.out.rfind("MSH|^~\\&|", 0) == 0);
  CHECK(to_v2.out.find("ADT^A31^ADT_A05") != std::string::npos);
  CHECK(to_v2.out.find("PID|1||9434765919^^^NHS^NH") != std::string::npos);
  const auto back = run("convert --to json -", to_v2.out);
  REQUIRE(back.status == 0);
  CHECK(text_at(json(back.out), "name[0].family") == "CHALMERS");
  CHECK(text_at(json(back.out), "birthDate") == text_at(patient, "birthDate"));

  const auto not_adt = run("convert --to json -", "MSH|^~\\&|A|B|C|D|20240101||ORU^R01|1|P|2.5\rOBR|1\r");
  CHECK(not_adt.status == 1);
  CHECK(not_adt.err.find("MSH-9") != std::string::npos);
}

}  // namespace
}  // namespace fhirgate::testing
