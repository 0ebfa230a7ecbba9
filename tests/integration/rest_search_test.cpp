// FHIR search over real HTTP: every parameter of the foundation, modifiers, prefixes, paging, sorting,
// totals, _elements and unknown-parameter handling.
#include <set>
#include <string>
#include <vector>

#include "fhir/base64.hpp"
#include "tests/integration/common.hpp"

namespace fhirgate::testing {
namespace {

std::set<std::string> ids_of(const fhir::Node& bundle) {
  std::set<std::string> ids;
  if (const auto* entries = bundle.find("entry")) {
    for (const auto& e : entries->items()) ids.insert(std::string(e.find("resource")->string_at("id")));
  }
  return ids;
}

struct People {
  std::string stem;  // every family name starts with it
  std::string smith, smithson, nunez, okafor;
};

// Four patients whose family names share a unique stem.
People& people() {
  static People p = [] {
    People made;
    made.stem = unique_name("Srch");
    HttpClient http(shared_gateway().port());
    auto make = [&](const std::string& body) {
      const auto r = http.send_json("POST", "/Patient", body);
      REQUIRE(r.status == 201);
      return std::string(json(r.body).string_at("id"));
    };
    made.smith = make(
        R"({"resourceType":"Patient","identifier":[{"system":"https://fhir.nhs.uk/Id/nhs-number","value":")" +
        made.stem + R"(1"}],"active":true,"name":[{"family":")" + made.stem +
        R"(Smith","given":["Alice","Mary"]}],"telecom":[{"system":"phone","value":"0113 496 0001"},)"
        R"({"system":"email","value":"alice@example.org"}],"gender":"female","birthDate":"1970-03-04",)"
        R"("address":[{"postalCode":"LS1 4AP","city":"Leeds"}],"generalPractitioner":[{"reference":"Organization/gp1"}]})");
    made.smithson = make(R"({"resourceType":"Patient","identifier":[{"system":"urn:local","value":")" +
                         made.stem + R"(2"}],"active":false,"name":[{"family":")" + made.stem +
                         R"(Smithson","given":["Peter"]}],"gender":"male","birthDate":"1970-11",)"
                         R"("generalPractitioner":[{"reference":"Practitioner/dr1"}]})");
    made.nunez = make(R"({"resourceType":"Patient","name":[{"family":")" + made.stem +
                      R"(Núñez","given":["José"]}],"gender":"male","birthDate":"1985-06-15"})");
    made.okafor = make(R"({"resourceType":"Patient","name":[{"family":")" + made.stem +
                       R"(Okafor","given":["Chiamaka"]}],"gender":"female","birthDate":"2001"})");
    return made;
  }();
  return p;
}

std::set<std::string> search(const std::string& query) {
  HttpClient http(shared_gateway().port());
  const auto r = http.get("/Patient?" + query);
  REQUIRE_MESSAGE(r.status == 200, query << " -> " << r.body);
  const auto bundle = json(r.body);
  CHECK(bundle.string_at("type") == "searchset");
  return ids_of(bundle);
}

TEST_CASE("string search: starts-with, case- and accent-insensitive, :exact and :contains") {
  const auto& p = people();
  const std::string lower_stem = [&] {
    std::string s = p.stem;
    for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
  }();
  CHECK(search("family=" + p.stem + "Smith") == std::set<std::string>{p.smith, p.smithson});
  CHECK(search("family=" + lower_stem + "SMITH") == std::set<std::string>{p.smith, p.smithson});
  CHECK(search("family=" + p.stem + "nunez") == std::set<std::string>{p.nunez});
  CHECK(search("family:exact=" + p.stem + "Smith") == std::set<std::string>{p.smith});
  CHECK(search("family:exact=" + p.stem + "smith").empty());
  CHECK(search("family:exact=" + p.stem + "N%C3%BA%C3%B1ez") == std::set<std::string>{p.nunez});
  CHECK(search("family:contains=kafo&name=" + p.stem) == std::set<std::string>{p.okafor});
  CHECK(search("given=jose&family=" + p.stem) == std::set<std::string>{p.nunez});
  CHECK(search("name=" + p.stem + "Smith") == std::set<std::string>{p.smith, p.smithson});
  CHECK(search("name=mary&family=" + p.stem) == std::set<std::string>{p.smith});
  // Comma means OR; repeating a parameter means AND.
  CHECK(search("family=" + p.stem + "Okafor," + p.stem + "Nunez") ==
        std::set<std::string>{p.okafor, p.nunez});
  CHECK(search("family=" + p.stem + "Smith&family=" + p.stem + "Smiths") ==
        std::set<std::string>{p.smithson});
}

TEST_CASE("token search: identifier forms, gender, telecom, active, _id") {
  const auto& p = people();
  CHECK(search("identifier=https://fhir.nhs.uk/Id/nhs-number|" + p.stem + "1") ==
        std::set<std::string>{p.smith});
  CHECK(search("identifier=" + p.stem + "2") == std::set<std::string>{p.smithson});
  CHECK(search("identifier=urn:other|" + p.stem + "2").empty());
  CHECK(search("identifier=|" + p.stem + "2").empty());
  CHECK(search("identifier=urn:local|&family=" + p.stem) == std::set<std::string>{p.smithson});
  CHECK(search("gender=female&family=" + p.stem) == std::set<std::string>{p.smith, p.okafor});
  CHECK(search("gender:not=female&family=" + p.stem) == std::set<std::string>{p.smithson, p.nunez});
  CHECK(search("telecom=alice@example.org&family=" + p.stem) == std::set<std::string>{p.smith});
  CHECK(search("telecom=0113%20496%200001&family=" + p.stem) == std::set<std::string>{p.smith});
  CHECK(search("active=false&family=" + p.stem) == std::set<std::string>{p.smithson});
  CHECK(search("_id=" + p.nunez + "," + p.okafor) == std::set<std::string>{p.nunez, p.okafor});
  CHECK(search("address-postalcode=ls1&family=" + p.stem) == std::set<std::string>{p.smith});
}

TEST_CASE("reference search: general-practitioner by id or Type/id") {
  const auto& p = people();
  CHECK(search("general-practitioner=Organization/gp1&family=" + p.stem) == std::set<std::string>{p.smith});
  CHECK(search("general-practitioner=dr1&family=" + p.stem) == std::set<std::string>{p.smithson});
  CHECK(search("general-practitioner=Organization/dr1&family=" + p.stem).empty());
}

TEST_CASE("date search: prefixes over partial-date ranges") {
  const auto& p = people();
  const std::string f = "&family=" + p.stem;
  CHECK(search("birthdate=1970" + f) == std::set<std::string>{p.smith, p.smithson});
  CHECK(search("birthdate=1970-03" + f) == std::set<std::string>{p.smith});
  CHECK(search("birthdate=eq1970-03-04" + f) == std::set<std::string>{p.smith});
  CHECK(search("birthdate=ne1970" + f) == std::set<std::string>{p.nunez, p.okafor});
  CHECK(search("birthdate=lt1970-06" + f) == std::set<std::string>{p.smith});
  CHECK(search("birthdate=gt1985-06-15" + f) == std::set<std::string>{p.okafor});
  CHECK(search("birthdate=ge1985-06-15" + f) == std::set<std::string>{p.nunez, p.okafor});
  CHECK(search("birthdate=le1970-11-30" + f) == std::set<std::string>{p.smith, p.smithson});
  CHECK(search("birthdate=sa1970" + f) == std::set<std::string>{p.nunez, p.okafor});
  CHECK(search("birthdate=eb1985" + f) == std::set<std::string>{p.smith, p.smithson});
  CHECK(search("birthdate=ap2001-06-01" + f) == std::set<std::string>{p.okafor});
  CHECK(search("birthdate=ge1980&birthdate=lt2000" + f) == std::set<std::string>{p.nunez});
  HttpClient http(shared_gateway().port());
  const auto bad = http.get("/Patient?birthdate=1970-13");
  CHECK(bad.status == 400);
  CHECK(first_issue(bad).find("birthdate") != std::string::npos);
  CHECK(search("_lastUpdated=gt2020-01-01" + f).size() == 4);
  CHECK(search("_lastUpdated=lt2020-01-01" + f).empty());
}

TEST_CASE("_sort, _count paging with next/previous links, _total and _summary=count") {
  const auto& p = people();
  HttpClient http(shared_gateway().port());
  auto page1 = json(http.get("/Patient?family=" + p.stem + "&_sort=-birthdate&_count=2").body);
  CHECK(text_at(page1, "total") == "4");
  CHECK(text_at(page1, "entry[0].resource.id") == p.okafor);
  CHECK(text_at(page1, "entry[1].resource.id") == p.nunez);
  CHECK(text_at(page1, "link[0].relation") == "self");
  REQUIRE(text_at(page1, "link[1].relation") == "next");
  const std::string next = text_at(page1, "link[1].url");
  CHECK(next.find("_cursor=") != std::string::npos);
  // The cursor is sealed: no row number or sort value shows through, and an altered one is refused.
  const std::string cursor = next.substr(next.find("_cursor=") + 8);
  const auto opened = fhir::base64url_decode(cursor);
  CHECK(
      (!opened || (opened->find(p.nunez) == std::string::npos && opened->find("1985") == std::string::npos)));
  std::string altered = cursor;
  altered[altered.size() / 2] = altered[altered.size() / 2] == 'A' ? 'B' : 'A';
  const auto refused =
      http.get("/Patient?family=" + p.stem + "&_sort=-birthdate&_count=2&_cursor=" + altered);
  CHECK(refused.status == 400);
  CHECK(first_issue(refused).find("paging cursor") != std::string::npos);

  // A write between pages does not shift the next page.
  const auto late = http.send_json(
      "POST", "/Patient",
      R"({"resourceType":"Patient","name":[{"family":")" + p.stem + R"(Adams"}],"birthDate":"1990-01-01"})");
  REQUIRE(late.status == 201);
  auto page2 = json(http.get(next.substr(next.find("/Patient"))).body);
  CHECK(text_at(page2, "entry[0].resource.id") == p.smithson);
  CHECK(text_at(page2, "entry[1].resource.id") == p.smith);
  CHECK(text_at(page2, "total") == "5");
  const fhir::Node* links = page2.find("link");
  std::string previous;
  for (const auto& l : links->items()) {
    if (l.string_at("relation") == "previous") previous = l.string_at("url");
    CHECK(l.string_at("relation") != "next");
  }
  REQUIRE(!previous.empty());
  auto back = json(http.get(previous.substr(previous.find("/Patient"))).body);
  // The new 1990 patient sorts between 2001 and 1985, so the previous page now shows it.
  CHECK(text_at(back, "entry[0].resource.id") == json(late.body).string_at("id"));
  CHECK(text_at(back, "entry[1].resource.id") == p.nunez);

  auto by_family = json(http.get("/Patient?family=" + p.stem + "&_sort=family&_total=none").body);
  CHECK(at(by_family, "total") == nullptr);
  CHECK(text_at(by_family, "entry[0].resource.id") == json(late.body).string_at("id"));
  CHECK(text_at(by_family, "entry[1].resource.id") == p.nunez);

  auto count = json(http.get("/Patient?family=" + p.stem + "&_summary=count").body);
  CHECK(text_at(count, "total") == "5");
  CHECK(at(count, "entry") == nullptr);

  CHECK(http.get("/Patient?_sort=nonsense").status == 400);
  CHECK(http.get("/Patient?_count=abc").status == 400);
}

TEST_CASE("_elements returns only the asked elements and marks the result SUBSETTED") {
  const auto& p = people();
  HttpClient http(shared_gateway().port());
  auto bundle = json(http.get("/Patient?_id=" + p.smith + "&_elements=gender,birthDate").body);
  const auto* resource = at(bundle, "entry[0].resource");
  REQUIRE(resource);
  CHECK(resource->string_at("gender") == "female");
  CHECK(resource->string_at("birthDate") == "1970-03-04");
  CHECK(resource->find("name") == nullptr);
  CHECK(text_at(*resource, "meta.tag[0].code") == "SUBSETTED");
}

TEST_CASE("unknown parameters are ignored and left out of the self link unless handling=strict") {
  const auto& p = people();
  HttpClient http(shared_gateway().port());
  auto lenient = json(http.get("/Patient?family=" + p.stem + "Okafor&frobnicate=1").body);
  CHECK(ids_of(lenient) == std::set<std::string>{p.okafor});
  const std::string self = text_at(lenient, "link[0].url");
  CHECK(self.find("frobnicate") == std::string::npos);
  CHECK(self.find("family=" + p.stem + "Okafor") != std::string::npos);
  const auto strict = http.get("/Patient?family=x&frobnicate=1", {{"Prefer", "handling=strict"}});
  CHECK(strict.status == 400);
  CHECK(text_at(json(strict.body), "issue[0].expression[0]") == "frobnicate");
  CHECK(http.get("/Patient?family:fuzzy=x").status == 400);
}

TEST_CASE("POST _search takes form-encoded parameters") {
  const auto& p = people();
  HttpClient http(shared_gateway().port());
  const auto r = http.request("POST", "/Patient/_search", "family=" + p.stem + "Smith&gender=male",
                              {{"Content-Type", "application/x-www-form-urlencoded"}});
  REQUIRE(r.status == 200);
  CHECK(ids_of(json(r.body)) == std::set<std::string>{p.smithson});
  CHECK(http.request("POST", "/Patient/_search", "{}", {{"Content-Type", "application/fhir+json"}}).status ==
        415);
}

TEST_CASE("Consent search parameters") {
  HttpClient http(shared_gateway().port());
  const std::string pid = unique_name("consent-patient");
  auto make = [&](const std::string& status, const std::string& date, const std::string& actor) {
    const auto r = http.send_json(
        "POST", "/Consent",
        R"({"resourceType":"Consent","status":")" + status +
            R"(","scope":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/consentscope","code":"patient-privacy"}]},)"
            R"("category":[{"coding":[{"system":"http://loinc.org","code":"59284-0"}]}],"patient":{"reference":"Patient/)" +
            pid + R"("},"dateTime":")" + date +
            R"(","policyRule":{"text":"opt-in"},"provision":{"period":{"start":")" + date.substr(0, 10) +
            R"("},"actor":[{"role":{"text":"recipient"},"reference":{"reference":"Organization/)" + actor +
            R"("}}]}})");
    REQUIRE(r.status == 201);
    return std::string(json(r.body).string_at("id"));
  };
  const auto a = make("active", "2026-01-10T09:30:00Z", "acute-trust");
  const auto b = make("inactive", "2025-05-01T12:00:00Z", "social-care");
  auto consents = [&](const std::string& q) {
    const auto r = http.get("/Consent?patient=" + pid + "&" + q);
    REQUIRE_MESSAGE(r.status == 200, r.body);
    return ids_of(json(r.body));
  };
  CHECK(consents("") == std::set<std::string>{a, b});
  CHECK(consents("status=active") == std::set<std::string>{a});
  CHECK(consents("scope=http://terminology.hl7.org/CodeSystem/consentscope|patient-privacy") ==
        std::set<std::string>{a, b});
  CHECK(consents("category=59284-0") == std::set<std::string>{a, b});
  CHECK(consents("date=ge2026") == std::set<std::string>{a});
  CHECK(consents("actor=Organization/social-care") == std::set<std::string>{b});
  CHECK(consents("period=lt2026") == std::set<std::string>{b});
  CHECK(consents("patient=Patient/" + pid + "&_sort=date").size() == 2);
  auto sorted = json(http.get("/Consent?patient=" + pid + "&_sort=date").body);
  CHECK(text_at(sorted, "entry[0].resource.id") == b);
}

TEST_CASE("AuditEvent search parameters") {
  HttpClient http(shared_gateway().port());
  const std::string pid = unique_name("audit-patient");
  const auto r = http.send_json(
      "POST", "/AuditEvent",
      R"({"resourceType":"AuditEvent","type":{"system":"http://terminology.hl7.org/CodeSystem/audit-event-type","code":"rest"},)"
      R"("subtype":[{"system":"http://hl7.org/fhir/restful-interaction","code":"read"}],"action":"R",)"
      R"("recorded":"2026-03-01T08:00:00Z","outcome":"0",)"
      R"("agent":[{"who":{"reference":"Practitioner/dr-who"},"requestor":true}],)"
      R"("source":{"observer":{"reference":"Organization/acute-trust"}},)"
      R"("entity":[{"what":{"reference":"Patient/)" +
          pid + R"("}}]})");
  REQUIRE(r.status == 201);
  const std::string id(json(r.body).string_at("id"));
  auto events = [&](const std::string& q) {
    const auto res = http.get("/AuditEvent?patient=" + pid + "&" + q);
    REQUIRE_MESSAGE(res.status == 200, res.body);
    return ids_of(json(res.body));
  };
  const std::set<std::string> just{id};
  CHECK(events("") == just);
  CHECK(events("entity=Patient/" + pid) == just);
  CHECK(events("agent=Practitioner/dr-who") == just);
  CHECK(events("agent=Practitioner/other").empty());
  CHECK(events("date=2026-03-01") == just);
  CHECK(events("date=lt2026-03-01").empty());
  CHECK(events("action=R") == just);
  CHECK(events("action=C").empty());
  CHECK(events("outcome=0") == just);
  CHECK(events("outcome=4").empty());
  CHECK(events("date=ge2026-03-01T08:00:00Z&date=le2026-03-01T08:00:00Z") == just);
  // Parameters the audit trail is not searched by are refused when the client asks for strictness.
  CHECK(http.get("/AuditEvent?type=rest", {{"Prefer", "handling=strict"}}).status == 400);
}

TEST_CASE("the CapabilityStatement lists exactly the served types, interactions and search parameters") {
  HttpClient http(shared_gateway().port());
  const auto r = http.get("/metadata");
  REQUIRE(r.status == 200);
  auto cs = json(r.body);
  CHECK(cs.string_at("fhirVersion") == "4.0.1");
  CHECK(cs.string_at("kind") == "instance");
  const auto* resources = at(cs, "rest[0].resource");
  REQUIRE(resources);
  std::set<std::string> types;
  for (const auto& res : resources->items()) {
    const std::string type(res.string_at("type"));
    types.insert(type);
    std::set<std::string> interactions, params;
    for (const auto& i : res.find("interaction")->items())
      interactions.insert(std::string(i.string_at("code")));
    for (const auto& sp : res.find("searchParam")->items()) params.insert(std::string(sp.string_at("name")));
    if (type == "AuditEvent") {
      CHECK(interactions.count("update") == 0);
      CHECK(interactions.count("delete") == 0);
      CHECK(params == std::set<std::string>{"patient", "entity", "agent", "date", "action", "outcome"});
    }
    if (type == "Patient") {
      CHECK(interactions.count("delete") == 1);
      for (const char* code : {"_id", "_lastUpdated", "identifier", "family", "given", "name", "birthdate",
                               "gender", "telecom", "address-postalcode", "general-practitioner", "active"}) {
        CHECK_MESSAGE(params.count(code) == 1, code);
      }
      CHECK(params.count("phonetic") == 0);
    }
    if (type == "Consent") {
      for (const char* code : {"patient", "status", "scope", "category", "date", "actor", "period"}) {
        CHECK_MESSAGE(params.count(code) == 1, code);
      }
    }
  }
  CHECK(types == std::set<std::string>{"AuditEvent", "Consent", "Patient"});
}

}  // namespace
}  // namespace fhirgate::testing
