#include "fhir/storable.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "fhir/files.hpp"
#include "fhir/json.hpp"
#include "fhir/model.hpp"
#include "fhir/narrative.hpp"
#include "fhir/xml.hpp"
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

std::vector<Issue> problems(const Node& resource) {
  const Status status = check_storable(model(), resource);
  if (status) return {};
  CHECK(status.error().code == ErrorCode::unprocessable);
  for (const Issue& issue : status.error().issues) {
    CHECK(issue.severity == "error");
    CHECK(issue.code == "invalid");
  }
  return status.error().issues;
}

// The one issue the resource has.
Issue problem(const Node& resource) {
  const std::vector<Issue> issues = problems(resource);
  REQUIRE(issues.size() == 1);
  return issues.front();
}

Issue problem(std::string_view json) {
  return problem(parsed(json));
}

constexpr std::string_view kXhtml = R"(xmlns=\"http://www.w3.org/1999/xhtml\")";

// A Patient whose narrative div is `div` (written as in a JSON string literal).
std::string with_div(std::string_view div) {
  return R"({"resourceType":"Patient","text":{"status":"generated","div":")" + std::string(div) + R"("}})";
}

std::string div_of(std::string_view body) {
  return "<div " + std::string(kXhtml) + ">" + std::string(body) + "</div>";
}

TEST_CASE("storable: a typical Patient, with narrative, extensions and contained resources, passes") {
  const Node patient = parsed(
      R"({"resourceType":"Patient","id":"p1","meta":{"versionId":"1"},)"
      R"("text":{"status":"generated","div":"<div xmlns=\"http://www.w3.org/1999/xhtml\"><p>Peter &amp; <b>James</b> Chalmers &#160;é</p><table class=\"grid\"><tr><td style=\"color:red\" colspan=\"2\">x</td></tr></table><a href=\"https://example.org/p\">link</a><img src=\"data:image/png;base64,AAAA\" alt=\"\"/></div>"},)"
      R"("contained":[{"resourceType":"Organization","id":"o1","name":"Acme – Ünïcödé 𝄞"}],)"
      R"("name":[{"family":"Chalmers","given":["Peter",null],"_given":[null,{"extension":[{"url":"http://e.org/x","valueString":"tab\tline\nreturn\r"}]}]}],)"
      R"("multipleBirthInteger":2,"managingOrganization":{"reference":"#o1"}})");
  CHECK(check_storable(model(), patient).ok());
}

TEST_CASE(
    "storable: a control character in a string at depth is refused at its location, without its value") {
  Issue i =
      problem(R"({"resourceType":"Patient","contact":[{"name":{"given":["Ann","Secret\u0001Name"]}}]})");
  CHECK(i.expression == "Patient.contact[0].name.given[1]");
  CHECK(i.diagnostics == "The value holds a character that FHIR XML cannot carry (U+0001)");
  CHECK(i.diagnostics.find("Secret") == std::string::npos);

  i = problem(R"({"resourceType":"Patient","id":"a\u001fb"})");
  CHECK(i.expression == "Patient.id");
  CHECK(i.diagnostics.find("U+001F") != std::string::npos);

  i = problem(R"({"resourceType":"Patient","birthDate":"1970","_birthDate":{"id":"x\u0000"}})");
  CHECK(i.expression == "Patient.birthDate.id");
  CHECK(i.diagnostics.find("U+0000") != std::string::npos);

  i = problem(
      R"({"resourceType":"Patient","name":[{"given":["A","B"],"_given":[null,{"extension":[{"url":"http://e.org/x","valueString":"\u0007"}]}]}]})");
  CHECK(i.expression == "Patient.name[0].given[1].extension[0].valueString");

  i = problem(R"({"resourceType":"Patient","extension":[{"url":"http://e.org/\u0008","valueCode":"x"}]})");
  CHECK(i.expression == "Patient.extension[0].url");
}

TEST_CASE("storable: U+FFFF and U+FFFE are refused") {
  Issue i = problem(R"({"resourceType":"Patient","name":[{"family":"Cha\uFFFFlmers"}]})");
  CHECK(i.expression == "Patient.name[0].family");
  CHECK(i.diagnostics == "The value holds a character that FHIR XML cannot carry (U+FFFF)");
  i = problem(R"({"resourceType":"Patient","name":[{"text":"\uFFFE"}]})");
  CHECK(i.diagnostics == "The value holds a character that FHIR XML cannot carry (U+FFFE)");
  // U+FFFD and characters beyond the BMP are fine.
  CHECK(
      check_storable(model(), parsed(R"({"resourceType":"Patient","name":[{"text":"\uFFFD \uD834\uDD1E"}]})"))
          .ok());
}

TEST_CASE("storable: malformed UTF-8 (a lone continuation byte, a cut sequence, a surrogate) is refused") {
  Node patient = parsed(R"({"resourceType":"Patient","name":[{"family":"F","given":["A","B"]}]})");
  Node& given = patient.find("name")->items()[0].find("given")->items()[1];
  given = Node::string("Jo\x80hn");
  Issue i = problem(patient);
  CHECK(i.expression == "Patient.name[0].given[1]");
  CHECK(i.diagnostics == "The value is not valid UTF-8 (byte 0x80 at offset 2)");
  given = Node::string("Jos\xC3");
  CHECK(problem(patient).diagnostics == "The value is not valid UTF-8 (byte 0xC3 at offset 3)");
  given = Node::string("\xED\xA0\x80");  // U+D800 encoded
  CHECK(problem(patient).diagnostics.find("not valid UTF-8") != std::string::npos);
  // A number's text too, as a tree built in code can hold anything.
  patient.set("multipleBirthInteger", Node::number("2\x01"));
  CHECK(problems(patient).size() == 2);
}

TEST_CASE("storable: a member name that XML cannot carry is refused, escaped in the expression") {
  Node patient = parsed(R"({"resourceType":"Patient","name":[{"family":"F"}]})");
  patient.find("name")->items()[0].set("fam\x01ily", Node::string("F"));
  const Issue i = problem(patient);
  CHECK(i.expression == "Patient.name[0].fam\\u0001ily");
  CHECK(i.diagnostics == "The name of a member holds a character that FHIR XML cannot carry (U+0001)");
}

TEST_CASE("storable: every problem is an issue of its own") {
  const std::vector<Issue> issues = problems(parsed(
      R"({"resourceType":"Patient","id":"\u0001","name":[{"family":"\u0002","given":["\u0003"]}],)"
      R"("text":{"status":"generated","div":"<div xmlns=\"http://www.w3.org/1999/xhtml\"><script>x</script><p onclick=\"y\">z</p></div>"}})"));
  std::vector<std::string> where;
  for (const Issue& issue : issues) where.push_back(issue.expression);
  CHECK(where == std::vector<std::string>{"Patient.id", "Patient.name[0].family", "Patient.name[0].given[0]",
                                          "Patient.text.div", "Patient.text.div"});
}

TEST_CASE("storable: at most 100 issues, then one saying there were more") {
  std::string json = R"({"resourceType":"Patient","name":[{"given":[)";
  for (int k = 0; k < 150; ++k) json += std::string(k == 0 ? "" : ",") + R"("\u0001")";
  json += "]}]}";
  const std::vector<Issue> issues = problems(parsed(json));
  REQUIRE(issues.size() == 101);
  CHECK(issues[99].expression == "Patient.name[0].given[99]");
  CHECK(issues[100].expression.empty());
  CHECK(issues[100].diagnostics.find("only the first 100") != std::string::npos);
}

TEST_CASE("storable: a narrative that is not FHIR XHTML is refused, each case at the div's location") {
  struct Case {
    std::string div;
    std::string expected;  // a part of the diagnostics
  };
  const Case cases[] = {
      {div_of("<p>a</p><script>alert(1)</script>"), "The element <script> is not allowed in narrative"},
      {div_of(R"(<p onclick=\"steal()\">a</p>)"), "The event attribute onclick of <p> is not allowed"},
      {div_of(R"(<p onMouseOver=\"steal()\">a</p>)"), "The event attribute onMouseOver of <p>"},
      {div_of(R"(<a xmlns:xlink=\"http://www.w3.org/1999/xlink\" xlink:href=\"https://e.org\">a</a>)"),
       "The attribute href of <a> is in the namespace http://www.w3.org/1999/xlink"},
      {div_of("<p>a&nbsp;b</p>"), "Entity 'nbsp' not defined"},
      {"<body " + std::string(kXhtml) + "><p>a</p></body>", "must be a <div> element in the XHTML namespace"},
      {div_of("<body>a</body>"), "The element <body> is not allowed in narrative"},
      {"<p " + std::string(kXhtml) + ">a</p>", "must be a <div> element in the XHTML namespace"},
      {"<div><p>a</p></div>", "must be a <div> element in the XHTML namespace"},
      {"<div " + std::string(kXhtml) + "/>", "The narrative has no content"},
      {div_of("  <p> \\n\\t</p> "), "The narrative has no content"},
      {div_of(R"(<a href=\" JavaScript:steal()\">a</a>)"),
       "The href of <a> is a javascript: or vbscript: URL"},
      {div_of(R"(<a href=\"java&#9;script:steal()\">a</a>)"), "is a javascript: or vbscript: URL"},
      {div_of(R"(<img src=\"vbscript:x\"/>)"), "The src of <img> is a javascript: or vbscript: URL"},
      {div_of("<style>p{}</style><p>a</p>"), "The element <style> is not allowed"},
      {div_of("<head><title>t</title></head><p>a</p>"), "The element <head> is not allowed"},
      {div_of(R"(<form><input type=\"text\"/></form>a)"), "The element <form> is not allowed"},
      {div_of(R"(<input type=\"text\"/>a)"), "The element <input> is not allowed"},
      {div_of(R"(<iframe src=\"https://e.org\"/>a)"), "The element <iframe> is not allowed"},
      {div_of(R"(<object data=\"x\"/>a)"), "The element <object> is not allowed"},
      {div_of(R"(<embed src=\"x\"/>a)"), "The element <embed> is not allowed"},
      {div_of(R"(<link rel=\"stylesheet\" href=\"x.css\"/>a)"), "The element <link> is not allowed"},
      {div_of(R"(<base href=\"https://e.org\"/>a)"), "The element <base> is not allowed"},
      {div_of("<font>a</font>"), "The element <font> is not allowed"},
      {div_of("<ins>a</ins>"), "The element <ins> is not allowed"},
      {div_of(R"(<p xml:base=\"https://e.org\">a</p>)"), "only xml:lang may have a namespace"},
      {div_of(R"(<p data-x=\"1\">a</p>)"), "The attribute data-x is not allowed on <p>"},
      {div_of(R"(<a target=\"_blank\" href=\"https://e.org\">a</a>)"),
       "The attribute target is not allowed on <a>"},
      {div_of(R"(<svg xmlns=\"http://www.w3.org/2000/svg\"/>a)"),
       "The element <svg> is not in the XHTML namespace"},
      {div_of("<p>a</b>"), "The narrative is not XML that FHIR accepts: XML is not well-formed"},
      // Read differently by an XML reader and a browser's HTML parser (found by the red team): inert in
      // XML, live markup once a browser ends them at their first '>'.
      {div_of("Note<?x ><img src=x onerror=steal()>?>"), "holds a processing instruction"},
      {div_of("Note<![CDATA[><img src=x onerror=steal()>]]>"), "holds a CDATA section"},
      {div_of(R"(<a href=\"data:text/html;base64,PHNjcmlwdD4=\">a</a>)"),
       "The href of <a> is a data: URL, which narrative may hold only as an image's src"},
      {div_of(R"(<img src=\"data:image/svg+xml;base64,PHN2Zz4=\"/>)"), "The src of <img> is a data: URL"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.div);
    const std::vector<Issue> issues = problems(parsed(with_div(c.div)));
    REQUIRE_FALSE(issues.empty());
    CHECK_MESSAGE(issues.front().diagnostics.find(c.expected) != std::string::npos,
                  issues.front().diagnostics);
    for (const Issue& i : issues) {
      CHECK(i.expression == "Patient.text.div");
      CHECK(i.diagnostics.find("steal") == std::string::npos);
    }
  }
}

TEST_CASE("storable: an image may be a data: URL of a raster image") {
  CHECK(problems(parsed(with_div(div_of(R"(<img src=\"data:image/png;base64,iVBORw0KGgo=\" alt=\"x\"/>)"))))
            .empty());
}

TEST_CASE("storable: an undeclared entity such as &nbsp; is told with the remedy and its place in the div") {
  const Issue i = problem(with_div(div_of("<p>a&nbsp;b</p>")));
  CHECK(i.diagnostics.find("&#160;") != std::string::npos);
  CHECK(i.diagnostics.find("(line 1, column ") != std::string::npos);
}

TEST_CASE("storable: narratives are found at any depth: contained, Bundle entries, Composition sections") {
  const std::string bad = div_of("<script>x</script>a");
  Issue i = problem(R"({"resourceType":"Patient","contained":[{"resourceType":"Organization","name":"A"},)"
                    R"({"resourceType":"Practitioner","text":{"status":"generated","div":")" +
                    bad + R"("}}]})");
  CHECK(i.expression == "Patient.contained[1].text.div");

  const std::string entry = R"({"resource":)" + with_div(div_of("ok")) + "}";
  i = problem(R"({"resourceType":"Bundle","type":"collection","entry":[)" + entry + "," + entry +
              R"(,{"resource":)" + with_div(bad) + "}]}");
  CHECK(i.expression == "Bundle.entry[2].resource.text.div");

  i = problem(
      R"({"resourceType":"Composition","section":[{"title":"a"},{"section":[{"text":{"status":"generated","div":")" +
      bad + R"("}}]}]})");
  CHECK(i.expression == "Composition.section[1].section[0].text.div");

  i = problem(R"({"resourceType":"Parameters","parameter":[{"name":"p","resource":)" + with_div(bad) + "}]}");
  CHECK(i.expression == "Parameters.parameter[0].resource.text.div");
}

TEST_CASE("storable: a member called div that is not a narrative is only a string") {
  // Patient has no `div`; the check leaves unknown members to the validator.
  CHECK(check_storable(model(), parsed(R"({"resourceType":"Patient","div":"<script/>"})")).ok());
  CHECK(
      check_storable(
          model(),
          parsed(R"({"resourceType":"Basic","extension":[{"url":"http://e.org/div","valueString":"<p>"}]})"))
          .ok());
}

TEST_CASE("narrative: valid narrative has no problems; problems are listed once each") {
  CHECK(narrative_problems("<div xmlns=\"http://www.w3.org/1999/xhtml\"><img src=\"x.png\"/></div>").empty());
  CHECK(narrative_problems(
            "<div xmlns=\"http://www.w3.org/1999/xhtml\" xml:lang=\"en\" lang=\"en\" dir=\"ltr\">"
            "<h1 align=\"center\">t</h1><ol start=\"2\"><li>a</li></ol><hr noshade=\"noshade\"/>"
            "<a name=\"n\">x</a><a>Patient/example</a><blockquote cite=\"https://e.org\">q</blockquote>"
            "<table border=\"1\" cellpadding=\"2\"><tr><th scope=\"col\" bgcolor=\"#fff\">h</th></tr></table>"
            "</div>")
            .empty());
  const auto twice = narrative_problems(
      "<div xmlns=\"http://www.w3.org/1999/xhtml\"><font>a</font><font>b</font><u>c</u></div>");
  CHECK(twice == std::vector<std::string>{"The element <font> is not allowed in narrative",
                                          "The element <u> is not allowed in narrative"});
}

// The official R4 examples (../shared/corpus) must all pass: they are what FHIR itself calls valid.
TEST_CASE("storable corpus: every R4 specification example and Synthea Bundle passes") {
  const std::string dir = testing::shared_path("corpus/fhir-r4-spec-examples");
  if (dir.empty()) {
    MESSAGE("skipped: ../shared/corpus/fhir-r4-spec-examples is not present");
    return;
  }
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() == ".json") files.push_back(entry.path());
  }
  if (const std::string synthea = testing::shared_path("corpus/synthea-r4"); !synthea.empty()) {
    for (const auto& entry : std::filesystem::directory_iterator(synthea)) {
      if (entry.path().extension() == ".json") files.push_back(entry.path());
    }
  }
  std::sort(files.begin(), files.end());
  std::size_t passed = 0;
  for (const auto& file : files) {
    CAPTURE(file.filename().string());
    auto node = read_json_file(file.string());
    REQUIRE(node.ok());
    const Status status = check_storable(model(), *node);
    std::string found;
    if (!status) {
      for (const Issue& issue : status.error().issues)
        found += issue.expression + ": " + issue.diagnostics + "\n";
    }
    CHECK_MESSAGE(status.ok(), found);
    if (status) ++passed;
  }
  MESSAGE("storable: " << passed << " of " << files.size() << " corpus files pass");
  CHECK(files.size() >= 102);
}

// Not a benchmark (the unit build is not a release build, and the machine is shared): a rough figure for
// the cost on the write path, printed beside that of a bare walk of the same tree.
std::size_t count_nodes(const Node& node) {
  std::size_t n = 1;
  for (const auto& member : node.members()) n += count_nodes(member.second);
  for (const Node& item : node.items()) n += count_nodes(item);
  return n;
}

template <class F>
double nanoseconds_per_call(int runs, F&& f) {
  const auto start = std::chrono::steady_clock::now();
  for (int k = 0; k < runs; ++k) f();
  return std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - start).count() / runs;
}

TEST_CASE("storable: timing on a typical Patient, one with narrative, and a 1 MB Bundle") {
  std::vector<std::pair<std::string, int>> files = {{testing::source_path("bench/data/patient.json"), 20000}};
  if (const std::string example = testing::shared_path("corpus/fhir-r4-spec-examples/patient-example.json");
      !example.empty()) {
    files.emplace_back(example, 2000);
  }
  if (const std::string synthea = testing::shared_path("corpus/synthea-r4"); !synthea.empty()) {
    std::vector<std::filesystem::path> bundles;
    for (const auto& entry : std::filesystem::directory_iterator(synthea)) bundles.push_back(entry.path());
    const auto largest = std::max_element(bundles.begin(), bundles.end(), [](const auto& a, const auto& b) {
      return std::filesystem::file_size(a) < std::filesystem::file_size(b);
    });
    if (largest != bundles.end()) files.emplace_back(largest->string(), 20);
  }
  const Model& loaded = model();
  for (const auto& [file, runs] : files) {
    auto node = read_json_file(file);
    REQUIRE(node.ok());
    std::size_t sink = 0;
    const double walk = nanoseconds_per_call(runs, [&] { sink += count_nodes(*node); });
    const double check =
        nanoseconds_per_call(runs, [&] { sink += check_storable(loaded, *node).ok() ? 1 : 0; });
    CHECK(sink > 0);
    MESSAGE("check_storable on " << std::filesystem::path(file).filename().string() << ": " << check
                                 << " ns per call; a bare walk of the tree: " << walk << " ns");
  }
}

}  // namespace
}  // namespace fhirgate::fhir
