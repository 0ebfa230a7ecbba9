// $validate, validate-on-write and `fhirgate validate` against the real server and binary.
#include <sys/wait.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <tuple>

#include "tests/integration/common.hpp"

namespace fhirgate::testing {
namespace {

bool has_issue(const fhir::Node& oo, const std::string& severity, const std::string& expression_part) {
  const auto* issues = oo.find("issue");
  if (!issues) return false;
  for (const auto& issue : issues->items()) {
    if (issue.string_at("severity") != severity) continue;
    const auto* expr = issue.find("expression");
    const std::string e = expr && !expr->items().empty() ? expr->items()[0].text() : "";
    if (e.find(expression_part) != std::string::npos) return true;
  }
  return false;
}

const char* kBadPatient =
    R"({"resourceType":"Patient","gender":"Male","birthDate":"1970-13-01","name":[{"given":["A"],"colour":"red"}],)"
    R"("deceasedBoolean":false,"deceasedDateTime":"2020-01-01"})";

TEST_CASE("$validate answers 200 with every issue located by FHIRPath") {
  HttpClient http(shared_gateway().port());
  const auto r = http.send_json("POST", "/Patient/$validate", kBadPatient);
  REQUIRE(r.status == 200);
  const auto oo = json(r.body);
  CHECK(oo.string_at("resourceType") == "OperationOutcome");
  CHECK(has_issue(oo, "error", "Patient.gender"));     // not in the required AdministrativeGender binding
  CHECK(has_issue(oo, "error", "Patient.birthDate"));  // month 13
  CHECK(has_issue(oo, "error", "Patient.name[0]"));    // unknown element colour
  CHECK(has_issue(oo, "error", "Patient.deceased"));   // two choices of one element
  // JSON input: issues also carry line and column (the standard extensions).
  const bool located = r.body.find("operationoutcome-issue-line") != std::string::npos;
  CHECK(located);

  const auto ok = http.send_json("POST", "/Patient/$validate",
                                 R"({"resourceType":"Patient","gender":"male","birthDate":"1970-03"})");
  REQUIRE(ok.status == 200);
  const auto clean = json(ok.body);
  CHECK(!has_issue(clean, "error", ""));

  // Any resource type the model knows, also through Parameters and at the root.
  const auto obs =
      http.send_json("POST", "/$validate",
                     R"({"resourceType":"Parameters","parameter":[{"name":"resource","resource":)"
                     R"({"resourceType":"Observation","status":"final","code":{"text":"x"}}}]})");
  REQUIRE(obs.status == 200);
  CHECK(!has_issue(json(obs.body), "error", ""));
  const auto wrong = http.send_json("POST", "/Observation/$validate", R"({"resourceType":"Observation"})");
  REQUIRE(wrong.status == 200);
  CHECK(has_issue(json(wrong.body), "error", "Observation"));  // status and code are required

  const auto unreadable = http.send_json("POST", "/Patient/$validate", "{\"resourceType\":");
  CHECK(unreadable.status == 200);
  CHECK(has_issue(json(unreadable.body), "error", ""));
}

TEST_CASE("validate on write: an invalid resource is refused with 422 and nothing is stored") {
  HttpClient http(shared_gateway().port());
  const std::string family = unique_name("Invalid");
  const auto r =
      http.send_json("POST", "/Patient",
                     R"({"resourceType":"Patient","name":[{"family":")" + family + R"("}],"gender":"Male"})");
  CHECK(r.status == 422);
  CHECK(has_issue(json(r.body), "error", "Patient.gender"));
  CHECK(text_at(json(http.get("/Patient?family=" + family + "&_summary=count").body), "total") == "0");
  const auto put =
      http.send_json("PUT", "/Patient/" + family,
                     R"({"resourceType":"Patient","id":")" + family + R"(","birthDate":"1970-02-30"})");
  CHECK(put.status == 422);
  CHECK(http.get("/Patient/" + family).status == 404);
}

TEST_CASE("GET $validate on a stored instance") {
  HttpClient http(shared_gateway().port());
  const auto created = http.send_json("POST", "/Patient", R"({"resourceType":"Patient","active":true})");
  REQUIRE(created.status == 201);
  const auto r = http.get("/Patient/" + std::string(json(created.body).string_at("id")) + "/$validate");
  CHECK(r.status == 200);
  CHECK(!has_issue(json(r.body), "error", ""));
  CHECK(http.get("/Patient/nope/$validate").status == 404);
}

struct Run {
  int status;
  std::string out;
};

Run validate_cli(const std::string& args) {
  const std::string dir = temp_dir();
  const std::string cmd = std::string(FHIRGATE_BINARY) + " validate " + args + " > " + dir + "/out 2>&1";
  const int raw = std::system(cmd.c_str());
  std::ifstream in(dir + "/out");
  std::ostringstream ss;
  ss << in.rdbuf();
  const std::string out = ss.str();
  CHECK_MESSAGE(sanitizer_report(out).empty(), "fhirgate validate " << args << " reported:\n" << out);
  return {WEXITSTATUS(raw), out};
}

TEST_CASE("fhirgate validate: issues, a summary line and the exit status") {
  const std::string dir = temp_dir();
  std::ofstream(dir + "/good.json") << R"({"resourceType":"Patient","gender":"female"})";
  std::ofstream(dir + "/bad.json") << kBadPatient;
  std::ofstream(dir + "/many.ndjson") << R"({"resourceType":"Patient","gender":"male"})"
                                      << "\n"
                                      << R"({"resourceType":"Patient","gender":"boy"})"
                                      << "\n";
  const auto good = validate_cli(dir + "/good.json");
  CHECK(good.status == 0);
  CHECK(good.out.find("1 resource(s) validated: 0 error(s)") != std::string::npos);
  const auto bad = validate_cli(dir + "/good.json " + dir + "/bad.json");
  CHECK(bad.status == 1);
  CHECK(bad.out.find(dir + "/bad.json:1:") != std::string::npos);
  CHECK(bad.out.find("[Patient.gender]") != std::string::npos);
  const auto lines = validate_cli(dir + "/many.ndjson");
  CHECK(lines.status == 1);
  CHECK(lines.out.find(dir + "/many.ndjson:2:27: error:") != std::string::npos);  // at "gender" on line 2
  CHECK(lines.out.find("2 resource(s) validated") != std::string::npos);
  // The type a relative reference names is checked, unless --no-reference-types (the HL7 validator's
  // default).
  std::ofstream(dir + "/gp.json")
      << R"({"resourceType":"Patient","generalPractitioner":[{"reference":"Group/1"}]})";
  const auto typed = validate_cli(dir + "/gp.json");
  CHECK(typed.status == 1);
  CHECK(typed.out.find("[Patient.generalPractitioner[0].reference]") != std::string::npos);
  CHECK(validate_cli("--no-reference-types " + dir + "/gp.json").status == 0);
  CHECK(validate_cli(dir + "/missing.json").status == 2);
  CHECK(validate_cli("--bogus x").status == 2);
}

// One issue as both front ends show it: severity, location, line:column, message.
using Reported = std::tuple<std::string, std::string, int, int, std::string>;

std::multiset<Reported> from_outcome(const fhir::Node& oo) {
  std::multiset<Reported> out;
  const auto* issues = oo.find("issue");
  for (const auto& issue : issues ? issues->items() : std::vector<fhir::Node>{}) {
    int line = 0, column = 0;
    if (const auto* exts = issue.find("extension")) {
      for (const auto& e : exts->items()) {
        if (e.string_at("url").ends_with("issue-line")) line = std::stoi(e.find("valueInteger")->text());
        if (e.string_at("url").ends_with("issue-col")) column = std::stoi(e.find("valueInteger")->text());
      }
    }
    const auto* expr = issue.find("expression");
    out.emplace(std::string(issue.string_at("severity")), expr ? expr->items().at(0).text() : "", line,
                column, std::string(issue.string_at("diagnostics")));
  }
  return out;
}

// `FILE:LINE:COLUMN: severity: message [location]` lines of `fhirgate validate`.
std::multiset<Reported> from_cli(const std::string& out, const std::string& file) {
  std::multiset<Reported> issues;
  std::istringstream lines(out);
  std::string line;
  const std::regex pattern("^" + file + R"(:(\d+):(\d+): (\w+): (.*) \[(.*)\]$)");
  std::smatch m;
  while (std::getline(lines, line)) {
    if (std::regex_match(line, m, pattern))
      issues.emplace(m[3].str(), m[5].str(), std::stoi(m[1].str()), std::stoi(m[2].str()), m[4].str());
  }
  return issues;
}

TEST_CASE("fhirgate validate and $validate report the same issues at the same places, JSON and XML") {
  const std::string dir = temp_dir();
  HttpClient http(shared_gateway().port());
  const std::string json_patient =
      "{\n  \"resourceType\": \"Patient\",\n  \"gender\": \"Male\",\n  \"birthDate\": \"1970-13-01\",\n"
      "  \"name\": [{\"given\": [\"A\"], \"colour\": \"red\"}],\n  \"active\": \"yes\"\n}\n";
  const std::string xml_patient =
      "<Patient xmlns=\"http://hl7.org/fhir\">\n  <name>\n    <given value=\"A\"/>\n  </name>\n"
      "  <gender value=\"Male\"/>\n  <birthDate value=\"1970-13-01\"/>\n  <contact>\n    <gender "
      "value=\"x\"/>\n"
      "  </contact>\n</Patient>\n";
  for (const auto& document :
       {std::tuple{std::string("patient.json"), json_patient, std::string("application/fhir+json")},
        std::tuple{std::string("patient.xml"), xml_patient, std::string("application/fhir+xml")}}) {
    const auto& [name, body, media] = document;
    CAPTURE(std::get<0>(document));
    const std::string file = dir + "/" + name;
    std::ofstream(file) << body;
    const auto cli = from_cli(validate_cli(file).out, file);
    const auto r = http.send_json("POST", "/Patient/$validate", body, {{"Content-Type", media}});
    REQUIRE(r.status == 200);
    const auto rest = from_outcome(json(r.body));
    CHECK(cli.size() >= 3);
    CHECK(cli == rest);
    for (const auto& issue : rest) CHECK(std::get<2>(issue) >= 1);  // every issue has its line
    CHECK(std::any_of(rest.begin(), rest.end(), [](const Reported& i) { return std::get<2>(i) == 6; }));
  }
  // A resource sent inside Parameters is located inside the Parameters body.
  const std::string wrapped =
      "{\"resourceType\":\"Parameters\",\"parameter\":[{\"name\":\"resource\",\n"
      "\"resource\":{\"resourceType\":\"Patient\",\n\"gender\":\"Male\"}}]}";
  const auto r = http.send_json("POST", "/Patient/$validate", wrapped);
  REQUIRE(r.status == 200);
  const auto rest = from_outcome(json(r.body));
  REQUIRE(!rest.empty());
  CHECK(std::get<1>(*rest.begin()) == "Patient.gender");
  CHECK(std::get<2>(*rest.begin()) == 3);
}

}  // namespace
}  // namespace fhirgate::testing
