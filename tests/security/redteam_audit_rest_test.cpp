// What a second outside tester found in the audit trail's REST side, each kept as a test that fails
// without its fix:
//  F6. a search by POST _search was audited without its form body: an NHS number probed by POST left no
//      trace in the AuditEvent's query ("POST /Patient/_search"), while the same search by GET did; the
//      privacy officer must see a probe whichever way it was sent, refused ones too;
//  F7. AuditEvent searches and history paged with plain sequence numbers (`_cursor=37142`), and an edited
//      cursor was accepted, though docs/security.md says a search's or history's cursors are sealed;
//  and GET /AuditEvent?_summary=count answered the entries and no total (R4: the total alone).
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

// The `relation` link of a Bundle as a target on the gateway ("/AuditEvent?..."); "" when absent.
std::string link_target(const fhir::Node& bundle, const std::string& relation) {
  if (const auto* links = at(bundle, "link"))
    for (const auto& l : links->items())
      if (l.string_at("relation") == relation) {
        const std::string url(l.string_at("url"));
        return url.substr(url.find('/', url.find("://") + 3));
      }
  return {};
}

// The `_cursor` value of a target; "" when none.
std::string cursor_of(const std::string& target) {
  const auto at = target.find("_cursor=");
  if (at == std::string::npos) return {};
  const auto start = at + 8;
  return target.substr(start, target.find('&', start) - start);
}

// `target` with its `_cursor` value replaced.
std::string with_cursor(const std::string& target, const std::string& cursor) {
  return replaced(target, "_cursor=" + cursor_of(target), "_cursor=" + cursor);
}

bool all_digits(const std::string& text) {
  return !text.empty() && std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
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

  // A form larger than a search URL may be is refused (413), and not copied into the trail.
  const std::string huge = "family=" + std::string(100 * 1024, 'x');
  const auto oversized = trust->request("POST", "/Patient/_search", huge,
                                        {{"Content-Type", kForm}, {"X-Correlation-Id", "f6-huge"}});
  CHECK(oversized.status == 413);
  const std::string huge_query = recorded_query(event_of(*officer, "f6-huge"));
  CHECK(huge_query.size() < 1024);
  CHECK(huge_query.find("not recorded") != std::string::npos);
}

TEST_CASE("redteam F7: AuditEvent searches and history page with sealed cursors; an edited one is refused") {
  Partnership p;
  auto gp = p.client("gp-practice");
  auto trust = p.client("acute-trust");
  auto officer = p.client("privacy-officer");
  const std::string nhs = nhs_number(1701);
  const std::string id = create_patient(*gp, "Paged", nhs);
  record_consent(*gp, id, permit("acute-trust"));
  for (int i = 0; i < 5; ++i) REQUIRE(trust->get("/Patient/" + id).status == 200);

  // Five reads, two to a page: three pages, every event once, each `next` opaque.
  std::set<std::string> paged;
  std::string next = "/AuditEvent?patient=Patient/" + id + "&agent=acute-trust&_count=2";
  std::string second_page;
  int pages = 0;
  while (!next.empty() && pages < 10) {
    const auto r = officer->get(next);
    REQUIRE_MESSAGE(r.status == 200, next << ": " << r.body);
    const auto bundle = json(r.body);
    const auto ids = ids_in(bundle);
    paged.insert(ids.begin(), ids.end());
    ++pages;
    next = link_target(bundle, "next");
    if (next.empty()) break;
    CHECK(ids.size() == 2);
    INFO(next);
    CHECK_FALSE(all_digits(cursor_of(next)));
    if (second_page.empty()) second_page = next;
  }
  CHECK(pages == 3);
  CHECK(paged.size() == 5);

  // The tester's edit: a sequence number of its choosing, or the sealed cursor with one character changed.
  REQUIRE_FALSE(second_page.empty());
  std::string one_changed = cursor_of(second_page);
  REQUIRE(one_changed.size() > 4);
  one_changed[4] = one_changed[4] == 'A' ? 'B' : 'A';
  for (const std::string& edited : {std::string("3"), one_changed}) {
    const auto r = officer->get(with_cursor(second_page, edited));
    CHECK_MESSAGE(r.status == 400, edited << ": " << r.body);
    if (r.status == 400) CHECK(first_issue(r) == "Invalid or expired paging cursor");
  }
  CHECK(officer->get(second_page).status == 200);  // the real one still pages

  // A cursor sealed for another paging (a Patient's history) does not open here either.
  REQUIRE(gp->send_json("PUT", "/Patient/" + id, patient_json("Paged", nhs, id)).status == 200);
  const auto patient_history = trust->get("/Patient/" + id + "/_history?_count=1");
  REQUIRE(patient_history.status == 200);
  const std::string foreign = cursor_of(link_target(json(patient_history.body), "next"));
  REQUIRE_FALSE(foreign.empty());
  CHECK(officer->get(with_cursor(second_page, foreign)).status == 400);

  // The trail's history pages the same way.
  const auto history = officer->get("/AuditEvent/_history?_count=2");
  REQUIRE(history.status == 200);
  const std::string history_next = link_target(json(history.body), "next");
  REQUIRE_FALSE(history_next.empty());
  CHECK_FALSE(all_digits(cursor_of(history_next)));
  CHECK(officer->get(history_next).status == 200);
  const auto edited_history = officer->get(with_cursor(history_next, "3"));
  CHECK(edited_history.status == 400);
  if (edited_history.status == 400) CHECK(first_issue(edited_history) == "Invalid or expired paging cursor");
}

TEST_CASE("redteam: AuditEvent?_summary=count answers the total alone, of what the caller may see") {
  Partnership p;
  auto gp = p.client("gp-practice");
  auto trust = p.client("acute-trust");
  auto officer = p.client("privacy-officer");
  const std::string id = create_patient(*gp, "Counted", nhs_number(1801));
  REQUIRE(trust->get("/Patient/" + id).status == 404);  // before the patient's consent: a refused read
  record_consent(*gp, id, permit("acute-trust"));
  for (int i = 0; i < 3; ++i) REQUIRE(trust->get("/Patient/" + id).status == 200);
  for (int i = 0; i < 2; ++i) REQUIRE(gp->get("/Patient/" + id).status == 200);

  auto total = [](HttpClient& who, const std::string& query) {
    const auto r = who.get("/AuditEvent?" + query + "&_summary=count");
    REQUIRE_MESSAGE(r.status == 200, query << ": " << r.body);
    const auto bundle = json(r.body);
    CHECK(text_at(bundle, "type") == "searchset");
    CHECK(at(bundle, "entry") == nullptr);
    return text_at(bundle, "total");
  };
  // The reads of the record (action R): the officer sees all six, the refused one too.
  const std::string reads = "patient=Patient/" + id + "&action=R";
  CHECK(total(*officer, reads) == "6");
  CHECK(total(*officer, reads + "&agent=gp-practice") == "2");
  CHECK(total(*officer, reads + "&outcome=4") == "1");
  CHECK(audit_events(*officer, "/AuditEvent?" + reads + "&_count=100").size() == 6);
  // The trust only its own, and of those not the refusal, which is not found by its patient; as many as
  // its entries.
  CHECK(total(*trust, reads) == "3");
  CHECK(audit_events(*trust, "/AuditEvent?" + reads + "&_count=100").size() == 3);
  CHECK(total(*trust, reads + "&agent=gp-practice") == "0");
  CHECK(total(*trust, reads + "&outcome=4") == "0");

  const auto unsupported = officer->get("/AuditEvent?" + reads + "&_summary=text");
  CHECK(unsupported.status == 400);
  CHECK(first_issue(unsupported) == "_summary=text is not supported");
  CHECK(audit_events(*officer, "/AuditEvent?" + reads + "&_summary=false").size() == 6);
}

}  // namespace
}  // namespace fhirgate::testing::security
