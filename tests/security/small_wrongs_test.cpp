// Issue 17, "small wrongs": answers that are wrong in a way a careful client notices. XML cut short is a
// parse error (400), not a namespace problem; a 405 says in Allow what the endpoint does allow; a FHIR
// version other than R4 in Accept is 406; an unknown operation is named as one.
#include <algorithm>
#include <cctype>
#include <set>

#include "tests/security/common.hpp"

namespace fhirgate::testing::security {
namespace {

std::string lower(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(), [](unsigned char c) { return std::tolower(c); });
  return text;
}

// The methods an Allow header lists.
std::set<std::string> allowed(const Response& r) {
  std::set<std::string> methods;
  const std::string header = r.header("Allow");
  std::size_t from = 0;
  while (from < header.size()) {
    const auto comma = header.find(',', from);
    std::string method = header.substr(from, comma == std::string::npos ? std::string::npos : comma - from);
    method.erase(0, method.find_first_not_of(' '));
    method.erase(method.find_last_not_of(' ') + 1);
    if (!method.empty()) methods.insert(method);
    if (comma == std::string::npos) break;
    from = comma + 1;
  }
  return methods;
}

TEST_CASE("small wrong: XML cut short is a 400 with the parse error, not a namespace complaint") {
  Partnership p;
  auto gp = p.client("gp-practice");
  const std::vector<std::pair<std::string, std::string>> xml = {{"Content-Type", "application/fhir+xml"}};
  struct Case {
    std::string method, target, body;
  };
  const std::vector<Case> cases = {
      {"POST", "/Patient", "<Patient"},
      {"POST", "/Patient", "<Patient "},
      {"POST", "/Patient", "<Patient xmlns"},
      {"PUT", "/Patient/cut-short", "<Patient"},
      {"POST", "/", "<Bundle"},
      {"POST", "/$process-message", "<Bundle"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.method);
    CAPTURE(c.target);
    CAPTURE(c.body);
    const auto r = gp->request(c.method, c.target, c.body, xml);
    CHECK(r.status == 400);
    const std::string diagnostics = first_issue(r);
    CHECK_FALSE(diagnostics.empty());
    CHECK(lower(diagnostics).find("namespace") == std::string::npos);
  }
  CHECK(gp->get("/Patient/cut-short").status == 404);
}

TEST_CASE("small wrong: a 405 names in Allow the methods the endpoint allows") {
  Partnership p;
  auto gp = p.client("gp-practice");
  auto officer = p.client("privacy-officer");
  const std::string id = create_patient(*gp, "Allowed", nhs_number(1301));
  // PUT on the type is the conditional update (PUT Patient?identifier=...).
  const std::set<std::string> type_level{"GET", "POST", "PUT"}, instance{"GET", "PUT", "DELETE"},
      read_only{"GET"};
  struct Case {
    HttpClient* who;
    std::string method, target;
    std::set<std::string> allow;
  };
  const std::vector<Case> cases = {
      {gp.get(), "DELETE", "/Patient", type_level},
      {gp.get(), "POST", "/Patient/" + id, instance},
      {officer.get(), "PUT", "/AuditEvent/1", read_only},
      {officer.get(), "DELETE", "/AuditEvent/1", read_only},
      {gp.get(), "POST", "/metadata", read_only},
      {gp.get(), "DELETE", "/metadata", read_only},
      {gp.get(), "POST", "/Patient/_history", read_only},
  };
  for (const auto& c : cases) {
    CAPTURE(c.method);
    CAPTURE(c.target);
    const auto r =
        c.who->request(c.method, c.target, c.method == "DELETE" ? "" : patient_json("Allowed", "", id),
                       {{"Content-Type", "application/fhir+json"}});
    REQUIRE(r.status == 405);
    CHECK_MESSAGE(allowed(r) == c.allow, "Allow: ", r.header("Allow"));
  }
}

TEST_CASE("small wrong: Accept with a FHIR version other than R4 is 406; fhirVersion=4.0 is served") {
  Partnership p;
  auto gp = p.client("gp-practice");
  const std::string id = create_patient(*gp, "Versioned", nhs_number(1302));
  for (const std::string& target :
       std::vector<std::string>{"/Patient/" + id, "/Patient?family=Versioned", "/metadata"}) {
    CAPTURE(target);
    CHECK(gp->get(target, {{"Accept", "application/fhir+json; fhirVersion=3.0"}}).status == 406);
    CHECK(gp->get(target, {{"Accept", "application/fhir+xml; fhirVersion=3.0"}}).status == 406);
    CHECK(gp->get(target, {{"Accept", "application/fhir+json; fhirVersion=1.0"}}).status == 406);
    CHECK(gp->get(target, {{"Accept", "application/fhir+json; fhirVersion=4.0"}}).status == 200);
  }
}

TEST_CASE("small wrong: an unknown type-level operation is answered as an unknown operation, by name") {
  Partnership p;
  auto gp = p.client("gp-practice");
  struct Case {
    std::string method, target, name;
  };
  const std::vector<Case> cases = {
      {"POST", "/Patient/$match", "$match"},
      {"POST", "/Consent/$frobnicate", "$frobnicate"},
      {"GET", "/Patient/$everything", "$everything"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.target);
    const auto r =
        gp->request(c.method, c.target, c.method == "POST" ? R"({"resourceType":"Parameters"})" : "",
                    {{"Content-Type", "application/fhir+json"}});
    CHECK((r.status == 404 || r.status == 400));
    const std::string diagnostics = first_issue(r);
    CHECK_MESSAGE(lower(diagnostics).find("unknown operation") != std::string::npos, diagnostics);
    CHECK(diagnostics.find(c.name) != std::string::npos);
    CHECK(diagnostics.find("not a valid resource id") == std::string::npos);
  }
}

}  // namespace
}  // namespace fhirgate::testing::security
