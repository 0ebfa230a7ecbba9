// Issue 17, rule 11: what is stored can be served in every format. JSON that FHIR XML cannot carry (control
// characters, U+FFFF, a narrative that is not FHIR XHTML) is refused with 422 naming the element, also in
// Bundles; and a record that got into the database with such content anyway never turns a read or a search
// into a 500.
#include "tests/security/common.hpp"

namespace fhirgate::testing::security {
namespace {

// The expressions of an OperationOutcome's issues, joined.
std::string expressions(const std::string& body) {
  std::string out;
  const auto outcome = json(body);
  if (const auto* issues = at(outcome, "issue"))
    for (const auto& issue : issues->items())
      if (const auto* list = issue.find("expression"))
        for (const auto& e : list->items()) out += e.text() + " ";
  return out;
}

std::string with_family(const std::string& family) {
  return R"({"resourceType":"Patient","name":[{"family":")" + family + R"("}],"gender":"female"})";
}

std::string with_div(const std::string& div) {
  return R"({"resourceType":"Patient","text":{"status":"generated","div":")" + div +
         R"("},"name":[{"family":"Narrated"}],"gender":"female"})";
}

const char* kXhtml = R"(<div xmlns=\"http://www.w3.org/1999/xhtml\">)";

TEST_CASE("rule 11: strings and narratives FHIR XML cannot carry are refused with 422 naming the element") {
  Partnership p;
  auto gp = p.client("gp-practice");

  // Characters no XML document may hold, as JSON escapes: create and update(-as-create) alike.
  for (const std::string& family : std::vector<std::string>{"Ctl\\u0001x", "Non\\uFFFFchar", "Esc\\u001Bx"}) {
    CAPTURE(family);
    const auto created = gp->send_json("POST", "/Patient", with_family(family));
    CHECK(created.status == 422);
    CHECK(expressions(created.body).find("Patient.name[0].family") != std::string::npos);
    const auto put = gp->send_json(
        "PUT", "/Patient/rule11-put",
        R"({"resourceType":"Patient","id":"rule11-put","name":[{"family":")" + family + R"("}]})");
    CHECK(put.status == 422);
    CHECK(expressions(put.body).find("Patient.name[0].family") != std::string::npos);
  }
  CHECK(gp->get("/Patient/rule11-put").status == 404);

  // Narratives that are not FHIR XHTML: active content, event handlers, foreign-namespace attributes,
  // entities XML does not declare.
  const std::vector<std::string> divs = {
      std::string(kXhtml) + "<script>alert(1)</script></div>",
      std::string(kXhtml) + R"(<p onclick=\"steal()\">Ann</p></div>)",
      std::string(kXhtml) +
          R"(<a xmlns:xlink=\"http://www.w3.org/1999/xlink\" xlink:href=\"javascript:alert(1)\">Ann</a></div>)",
      std::string(kXhtml) + "<p>Ann&nbsp;Smith</p></div>",
      std::string(kXhtml) + "<p>Ann\\u0001</p></div>",
  };
  for (const auto& div : divs) {
    CAPTURE(div);
    const auto r = gp->send_json("POST", "/Patient", with_div(div));
    CHECK(r.status == 422);
    CHECK(expressions(r.body).find("Patient.text.div") != std::string::npos);
  }
  // A proper narrative still goes in.
  CHECK(gp->send_json("POST", "/Patient", with_div(std::string(kXhtml) + "<p>Ann <b>Smith</b></p></div>"))
            .status == 201);

  // In Bundles: a transaction is refused whole, naming the entry; a batch answers for the entry.
  const std::string good = with_family("Bundlegood");
  for (const std::string& bad :
       std::vector<std::string>{with_family("Bundle\\uFFFFbad"), with_div(divs[0])}) {
    CAPTURE(bad);
    const auto transaction =
        gp->send_json("POST", "/",
                      R"({"resourceType":"Bundle","type":"transaction","entry":[{"resource":)" + good +
                          R"(,"request":{"method":"POST","url":"Patient"}},{"resource":)" + bad +
                          R"(,"request":{"method":"POST","url":"Patient"}}]})");
    CHECK(transaction.status == 422);
    CHECK(expressions(transaction.body).find("Bundle.entry[1]") != std::string::npos);
    const auto batch =
        gp->send_json("POST", "/",
                      R"({"resourceType":"Bundle","type":"batch","entry":[{"resource":)" + bad +
                          R"(,"request":{"method":"PUT","url":"Patient/rule11-batch"}}]})");
    REQUIRE(batch.status == 200);
    CHECK(text_at(json(batch.body), "entry[0].response.status").starts_with("422"));
  }
  CHECK(text_at(json(gp->get("/Patient?family=Bundlegood&_summary=count").body), "total") == "0");
  CHECK(gp->get("/Patient/rule11-batch").status == 404);
}

TEST_CASE(
    "rule 11: a record stored with characters XML cannot carry never makes a read or a search answer 500") {
  Partnership p;
  auto gp = p.client("gp-practice");
  const std::string family = "Storedxml";
  auto create = [&](const std::string& given) {
    const auto r = gp->send_json("POST", "/Patient",
                                 R"({"resourceType":"Patient","name":[{"family":")" + family +
                                     R"(","given":[")" + given + R"("]}],"gender":"female"})");
    REQUIRE_MESSAGE(r.status == 201, r.body);
    return std::string(json(r.body).string_at("id"));
  };
  const std::string clean = create("Clean");
  const std::string control = create("Controlone");
  const std::string nonchar = create("Noncharone");
  // Behind the gateway's back, as a bug or an older version might have stored them.
  auto corrupt = [&](const std::string& id, const std::string& from, const std::string& to) {
    const int changed = sql_exec(p, "UPDATE resource_version SET body = replace(body, '" + from + "', '" +
                                        to + "') WHERE body LIKE '%" + from +
                                        "%' AND rid = (SELECT rid FROM resource WHERE type = "
                                        "'Patient' AND id = '" +
                                        id + "')");
    REQUIRE(changed == 1);
  };
  corrupt(control, "Controlone", "Control\\u0001one");  // the JSON escape, as JSON text holds it
  corrupt(nonchar, "Noncharone", "Nonchar\\uFFFFone");

  for (const auto& id : std::vector<std::string>{control, nonchar}) {
    CAPTURE(id);
    for (const std::string& target : std::vector<std::string>{"/Patient/" + id + "?_format=xml",
                                                              "/Patient/" + id + "/_history/1?_format=xml"}) {
      CAPTURE(target);
      const auto r = gp->get(target);
      CHECK_MESSAGE((r.status == 406 || r.status == 422), r.status, " ", r.body);
      CHECK(r.body.find("OperationOutcome") != std::string::npos);
    }
    const auto as_accept = gp->get("/Patient/" + id, {{"Accept", "application/fhir+xml"}});
    CHECK((as_accept.status == 406 || as_accept.status == 422));
    CHECK(gp->get("/Patient/" + id).status != 500);
    CHECK(gp->get("/Patient/" + id + "/_history?_format=xml").status != 500);
    const auto batch = gp->request(
        "POST", "/?_format=xml",
        R"({"resourceType":"Bundle","type":"batch","entry":[{"request":{"method":"GET","url":"Patient/)" +
            id + R"("}}]})",
        {{"Content-Type", "application/fhir+json"}});
    CHECK(batch.status != 500);
  }

  // A search in XML answers with the others.
  const auto search = gp->get("/Patient?family=" + family + "&_format=xml");
  CHECK_MESSAGE(search.status == 200, search.body);
  CHECK(search.body.find(clean) != std::string::npos);
  CHECK(gp->get("/Patient/_history?_format=xml").status != 500);
}

}  // namespace
}  // namespace fhirgate::testing::security
