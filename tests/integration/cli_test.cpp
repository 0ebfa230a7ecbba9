// `fhirgate convert` as a user runs it: files and stdin, both directions, errors with file and position.
#include <sys/wait.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "tests/integration/common.hpp"

namespace fhirgate::testing {
namespace {

struct Run {
  int status;
  std::string out, err;
};

Run run(const std::string& args, const std::string& stdin_text = {}) {
  const std::string dir = temp_dir();
  std::ofstream(dir + "/in") << stdin_text;
  const std::string cmd =
      std::string(FHIRGATE_BINARY) + " " + args + " < " + dir + "/in > " + dir + "/out 2> " + dir + "/err";
  const int raw = std::system(cmd.c_str());
  auto slurp = [](const std::string& p) {
    std::ifstream in(p);
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
  };
  return {WEXITSTATUS(raw), slurp(dir + "/out"), slurp(dir + "/err")};
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

}  // namespace
}  // namespace fhirgate::testing
