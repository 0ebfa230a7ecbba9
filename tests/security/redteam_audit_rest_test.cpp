// What a second outside tester found in the audit trail's REST side, each kept as a test that fails
// without its fix:
//  F6. a search by POST _search was audited without its form body: an NHS number probed by POST left no
//      trace in the AuditEvent's query ("POST /Patient/_search"), while the same search by GET did; the
//      privacy officer must see a probe whichever way it was sent, refused ones too.
#include "tests/security/common.hpp"

namespace fhirgate::testing::security {
namespace {

constexpr const char* kForm = "application/x-www-form-urlencoded";

// The request an AuditEvent keeps as its query entity (BALP: role 24, base64), decoded; "" when none.
std::string recorded_query(const fhir::Node& event) {
  if (const auto* entities = event.find("entity"); entities && entities->is_array())
    for (const auto& e : entities->items())
      if (text_at(e, "role.code") == "24")
        if (const auto* q = e.find("query"); q && q->is_string())
          if (auto decoded = fhir::base64_decode(q->text())) return *decoded;
  return {};
}

// The one AuditEvent of the exchange with this correlation id, as the privacy officer reads it.
fhir::Node event_of(HttpClient& officer, const std::string& correlation) {
  std::vector<fhir::Node> found;
  for (auto& e : audit_events(officer, "/AuditEvent?_count=500"))
    if (correlation_of(e) == correlation) found.push_back(std::move(e));
  REQUIRE_MESSAGE(found.size() == 1, found.size() << " events with correlation " << correlation);
  return std::move(found.front());
}

// What follows the '?' of a request or target.
std::string parameters_of(const std::string& request) {
  const auto qmark = request.find('?');
  return qmark == std::string::npos ? std::string() : request.substr(qmark + 1);
}

TEST_CASE("redteam F6: a search by POST _search is audited with its form parameters, as the same by GET") {
  Partnership p;
  auto gp = p.client("gp-practice");
  auto trust = p.client("acute-trust");
  auto officer = p.client("privacy-officer");
  const std::string nhs = nhs_number(1601);
  const std::string id = create_patient(*gp, "Probed", nhs);
  record_consent(*gp, id, permit("acute-trust"));
  const std::string probe = std::string("identifier=") + kNhsSystem + "|" + nhs;

  // The tester's probe, by GET and by POST: the same parameters, in the same form, in both events.
  const auto by_get = trust->get("/Patient?" + probe, {{"X-Correlation-Id", "f6-get"}});
  REQUIRE_MESSAGE(by_get.status == 200, by_get.body);
  const auto by_post = trust->request("POST", "/Patient/_search", probe,
                                      {{"Content-Type", kForm}, {"X-Correlation-Id", "f6-post"}});
  REQUIRE_MESSAGE(by_post.status == 200, by_post.body);
  CHECK(ids_in(json(by_post.body)) == std::set<std::string>{id});
  const std::string get_query = recorded_query(event_of(*officer, "f6-get"));
  const std::string post_query = recorded_query(event_of(*officer, "f6-post"));
  CHECK(get_query == "GET /Patient?" + probe);
  CHECK(post_query == "POST /Patient/_search?" + probe);
  CHECK(post_query.find(nhs) != std::string::npos);
  CHECK(parameters_of(post_query) == parameters_of(get_query));

  // Parameters in the URL and in the body: both, the URL's first, as the search applies them.
  const auto split = trust->request("POST", "/Patient/_search?family=Probed", "birthdate=1970-01-01",
                                    {{"Content-Type", kForm}, {"X-Correlation-Id", "f6-split"}});
  REQUIRE_MESSAGE(split.status == 200, split.body);
  CHECK(ids_in(json(split.body)) == std::set<std::string>{id});
  CHECK(recorded_query(event_of(*officer, "f6-split")) ==
        "POST /Patient/_search?family=Probed&birthdate=1970-01-01");

  // A search the agreement refuses is recorded with what it asked for too (mental health may not touch
  // Consents).
  auto mental_health = p.client("mental-health");
  const auto refused = mental_health->request("POST", "/Consent/_search", "patient=Patient/" + id,
                                              {{"Content-Type", kForm}, {"X-Correlation-Id", "f6-refused"}});
  CHECK(refused.status == 403);
  const auto refused_event = event_of(*officer, "f6-refused");
  CHECK(refused_event.string_at("outcome") == "4");
  CHECK(recorded_query(refused_event) == "POST /Consent/_search?patient=Patient/" + id);

  // The audit trail's own search by POST: its form body counts and is recorded; any other body is 415,
  // as for every other type.
  const auto report = officer->request("POST", "/AuditEvent/_search", "patient=Patient/" + id + "&_count=50",
                                       {{"Content-Type", kForm}, {"X-Correlation-Id", "f6-report"}});
  REQUIRE_MESSAGE(report.status == 200, report.body);
  CHECK(!ids_in(json(report.body)).empty());
  CHECK(recorded_query(event_of(*officer, "f6-report")) ==
        "POST /AuditEvent/_search?patient=Patient/" + id + "&_count=50");
  CHECK(officer->request("POST", "/AuditEvent/_search", "{}", {{"Content-Type", "application/fhir+json"}})
            .status == 415);
}

}  // namespace
}  // namespace fhirgate::testing::security
