// $validate, validate-on-write and `fhirgate validate` against the real server and binary.
#include <sys/wait.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

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
  CHECK(validate_cli(dir + "/missing.json").status == 2);
  CHECK(validate_cli("--bogus x").status == 2);
}

}  // namespace
}  // namespace fhirgate::testing
