// Transaction and batch Bundles (POST /) against the real gateway: all-or-nothing, urn:uuid references,
// conditional create and update, ifMatch, independent batch entries, types the gateway does not hold.
#include <doctest/doctest.h>

#include <string>

#include "tests/integration/common.hpp"

namespace fhirgate::testing {
namespace {

std::string patient(const std::string& family, const std::string& nhs = "") {
  return R"({"resourceType":"Patient",)" +
         (nhs.empty() ? std::string()
                      : R"("identifier":[{"system":"https://fhir.nhs.uk/Id/nhs-number","value":")" + nhs +
                            R"("}],)") +
         R"("name":[{"family":")" + family + R"("}],"gender":"female"})";
}

std::string consent_for(const std::string& reference) {
  return R"({"resourceType":"Consent","status":"active",)"
         R"("scope":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/consentscope","code":"patient-privacy"}]},)"
         R"("category":[{"coding":[{"system":"http://loinc.org","code":"59284-0"}]}],)"
         R"("patient":{"reference":")" +
         reference +
         R"("},"dateTime":"2026-01-01",)"
         R"("policyRule":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"OPTIN"}]},)"
         R"("provision":{"type":"permit"}})";
}

std::string entry(const std::string& method, const std::string& url, const std::string& resource = "",
                  const std::string& full_url = "", const std::string& extra_request = "") {
  std::string e = "{";
  if (!full_url.empty()) e += R"("fullUrl":")" + full_url + R"(",)";
  if (!resource.empty()) e += R"("resource":)" + resource + ",";
  return e + R"("request":{"method":")" + method + R"(","url":")" + url + "\"" + extra_request + "}}";
}

std::string bundle(const std::string& type, const std::vector<std::string>& entries) {
  std::string out = R"({"resourceType":"Bundle","type":")" + type + R"(","entry":[)";
  for (std::size_t i = 0; i < entries.size(); ++i) out += (i ? "," : "") + entries[i];
  return out + "]}";
}

int count(HttpClient& http, const std::string& query) {
  const auto r = http.get(query);
  REQUIRE_MESSAGE(r.status == 200, r.body);
  const auto bundle = json(r.body);
  const auto* entries = bundle.find("entry");
  return entries ? static_cast<int>(entries->items().size()) : 0;
}

TEST_CASE("transaction: entries reference each other by urn:uuid and are stored together") {
  HttpClient http(shared_gateway().port());
  const std::string family = unique_name("Txn");
  const auto existing = http.send_json("POST", "/Patient", patient(family + "Old"));
  REQUIRE(existing.status == 201);
  const std::string old_id = json(existing.body).string_at("id").data();
  const auto r = http.send_json(
      "POST", "/",
      bundle("transaction",
             {entry("POST", "Consent", consent_for("urn:uuid:11111111-1111-4111-8111-111111111111")),
              entry("POST", "Patient", patient(family), "urn:uuid:11111111-1111-4111-8111-111111111111"),
              entry("PUT", "Patient/" + old_id,
                    R"({"resourceType":"Patient","id":")" + old_id + R"(","name":[{"family":")" + family +
                        R"(New"}]})",
                    "", R"(,"ifMatch":"W/\"1\"")"),
              entry("GET", "Patient/" + old_id)}));
  REQUIRE_MESSAGE(r.status == 200, r.body);
  const auto out = json(r.body);
  CHECK(out.string_at("type") == "transaction-response");
  CHECK(text_at(out, "entry[0].response.status") == "201 Created");
  CHECK(text_at(out, "entry[1].response.status") == "201 Created");
  CHECK(text_at(out, "entry[2].response.status") == "200 OK");
  CHECK(text_at(out, "entry[2].response.etag") == "W/\"2\"");
  CHECK(text_at(out, "entry[3].response.status") == "200 OK");
  CHECK(text_at(out, "entry[3].resource.name[0].family") == family + "New");  // GET runs after the writes
  const std::string patient_location = text_at(out, "entry[1].response.location");
  const std::string patient_id = patient_location.substr(8, patient_location.find("/_history") - 8);
  // The Consent's reference now names the Patient's id.
  const std::string consent_location = text_at(out, "entry[0].response.location");
  const auto consent =
      json(http.get("/" + consent_location.substr(0, consent_location.find("/_history"))).body);
  CHECK(text_at(consent, "patient.reference") == "Patient/" + patient_id);
  CHECK(count(http, "/Consent?patient=" + patient_id) == 1);
}

TEST_CASE("transaction: a failing entry in the middle leaves the store unchanged and is named") {
  HttpClient http(shared_gateway().port());
  const std::string family = unique_name("Atomic");
  const auto r = http.send_json(
      "POST", "/",
      bundle("transaction", {entry("POST", "Patient", patient(family + "A")),
                             entry("POST", "Patient", R"({"resourceType":"Patient","gender":"sometimes"})"),
                             entry("POST", "Patient", patient(family + "C"))}));
  CHECK(r.status == 422);
  const auto oo = json(r.body);
  CHECK(text_at(oo, "issue[0].expression[0]").starts_with("Bundle.entry[1]"));
  CHECK(text_at(oo, "issue[0].diagnostics").starts_with("entry 1 (POST Patient/"));
  CHECK(count(http, "/Patient?family=" + family + "A") == 0);
  CHECK(count(http, "/Patient?family=" + family + "C") == 0);

  // Two entries with one fullUrl (R4 bdl-7).
  const auto twice =
      http.send_json("POST", "/",
                     bundle("transaction", {entry("POST", "Patient", patient(family + "E"),
                                                  "urn:uuid:33333333-3333-4333-8333-333333333333"),
                                            entry("POST", "Patient", patient(family + "F"),
                                                  "urn:uuid:33333333-3333-4333-8333-333333333333")}));
  CHECK(twice.status == 400);
  CHECK(text_at(json(twice.body), "issue[0].expression[0]") == "Bundle.entry[1]");
  CHECK(count(http, "/Patient?family=" + family + "E") == 0);

  // A version conflict found at write time rolls back the entries written before it.
  const auto held = http.send_json("POST", "/Patient", patient(family + "Held"));
  const std::string id = json(held.body).string_at("id").data();
  const auto conflict = http.send_json("POST", "/",
                                       bundle("transaction", {entry("POST", "Patient", patient(family + "D")),
                                                              entry("PUT", "Patient/" + id,
                                                                    R"({"resourceType":"Patient","id":")" +
                                                                        id + R"(","name":[{"family":"X"}]})",
                                                                    "", R"(,"ifMatch":"W/\"7\"")")}));
  CHECK(conflict.status == 412);
  CHECK(first_issue(conflict).find("version conflict") != std::string::npos);
  CHECK(count(http, "/Patient?family=" + family + "D") == 0);
  CHECK(json(http.get("/Patient/" + id).body).find("meta")->find("versionId")->text() == "1");
}

TEST_CASE("transaction: conditional create finds the held Patient; conditional update creates or updates") {
  HttpClient http(shared_gateway().port());
  const std::string family = unique_name("Cond");
  const std::string nhs = "9434765919";
  const std::string system = "https://fhir.nhs.uk/Id/nhs-number";
  const auto first = http.send_json(
      "POST", "/", bundle("transaction", {entry("PUT", "Patient?family=" + family, patient(family, nhs))}));
  REQUIRE_MESSAGE(first.status == 200, first.body);
  CHECK(text_at(json(first.body), "entry[0].response.status") == "201 Created");
  const std::string id = [&] {
    const std::string loc = text_at(json(first.body), "entry[0].response.location");
    return loc.substr(8, loc.find("/_history") - 8);
  }();
  const auto again = http.send_json(
      "POST", "/",
      bundle("transaction",
             {entry("POST", "Consent", consent_for("urn:uuid:22222222-2222-4222-8222-222222222222")),
              entry("POST", "Patient", patient(family, nhs), "urn:uuid:22222222-2222-4222-8222-222222222222",
                    R"(,"ifNoneExist":"family=)" + family + "\""),
              entry("PUT", "Patient?family=" + family, patient(family + "", "9999900011"))}));
  REQUIRE_MESSAGE(again.status == 200, again.body);
  const auto out = json(again.body);
  CHECK(text_at(out, "entry[1].response.status") == "200 OK");  // matched, nothing created
  CHECK(text_at(out, "entry[1].response.location") == "Patient/" + id + "/_history/1");
  // The Consent comes first in the Bundle and still names the matched Patient.
  const std::string consent_location = text_at(out, "entry[0].response.location");
  const auto consent =
      json(http.get("/" + consent_location.substr(0, consent_location.find("/_history"))).body);
  CHECK(text_at(consent, "patient.reference") == "Patient/" + id);
  CHECK(text_at(out, "entry[2].response.location") == "Patient/" + id + "/_history/2");
  CHECK(count(http, "/Patient?family=" + family) == 1);
}

TEST_CASE("batch: entries succeed or fail on their own; types not held are validated, not stored") {
  HttpClient http(shared_gateway().port());
  const std::string family = unique_name("Batch");
  const auto r = http.send_json(
      "POST", "/",
      bundle("batch",
             {entry("POST", "Patient", patient(family + "A")),
              entry("POST", "Patient", R"({"resourceType":"Patient","gender":"sometimes"})"),
              entry("GET", "Patient/does-not-exist"), entry("DELETE", "Patient/does-not-exist-either"),
              entry("POST", "Observation",
                    R"({"resourceType":"Observation","status":"final","code":{"text":"weight"}})"),
              entry("PATCH", "Patient/x"), entry("PUT", "Patient/not an id!", patient(family + "Z")),
              entry("POST", "Patient", patient(family + "B"))}));
  REQUIRE_MESSAGE(r.status == 200, r.body);
  const auto out = json(r.body);
  CHECK(out.string_at("type") == "batch-response");
  CHECK(text_at(out, "entry[0].response.status") == "201 Created");
  CHECK(text_at(out, "entry[1].response.status") == "422");
  CHECK(text_at(out, "entry[1].response.outcome.issue[0].expression[0]").starts_with("Bundle.entry[1]"));
  CHECK(text_at(out, "entry[2].response.status") == "404");
  CHECK(text_at(out, "entry[3].response.status") == "204 No Content");
  CHECK(text_at(out, "entry[4].response.status") == "202 Accepted");
  CHECK(text_at(out, "entry[4].response.outcome.issue[0].diagnostics").find("not stored") !=
        std::string::npos);
  CHECK(text_at(out, "entry[5].response.status") == "405");
  CHECK(text_at(out, "entry[6].response.status") == "400");
  CHECK(text_at(out, "entry[7].response.status") == "201 Created");
  CHECK(count(http, "/Patient?family=" + family + "A") == 1);
  CHECK(count(http, "/Patient?family=" + family + "B") == 1);

  // A deleted resource read in a batch answers 410, as GET /Patient/{id} does (and 404 for one never held).
  const std::string created = text_at(out, "entry[0].response.location");
  const std::string id = created.substr(8, created.find("/_history") - 8);  // Patient/{id}/_history/1
  const auto again = http.send_json(
      "POST", "/", bundle("batch", {entry("DELETE", "Patient/" + id), entry("GET", "Patient/" + id)}));
  REQUIRE_MESSAGE(again.status == 200, again.body);
  CHECK(text_at(json(again.body), "entry[0].response.status") == "204 No Content");
  CHECK(text_at(json(again.body), "entry[1].response.status") == "410");
  CHECK(http.get("/Patient/" + id).status == 410);

  // The audit trail cannot be written or read through a Bundle.
  const auto audit = http.send_json("POST", "/", bundle("batch", {entry("GET", "AuditEvent/1")}));
  CHECK(text_at(json(audit.body), "entry[0].response.status") == "405");
  // A Bundle of another type, or not a Bundle, is refused.
  CHECK(http.send_json("POST", "/", R"({"resourceType":"Bundle","type":"collection"})").status == 400);
  CHECK(http.send_json("POST", "/", patient(family)).status == 422);
  CHECK(http.request("GET", "/").status == 405);
}

TEST_CASE("transaction: the sharing agreement applies to each entry, and each write is audited") {
  SampleGateway sample({"social-care", "acute-trust", "gp-practice", "privacy-officer"});
  const std::string social = sample.tokens["social-care"], gp = sample.tokens["gp-practice"];
  HttpClient http(sample.port());
  const std::string family = unique_name("Agreement");
  // The acute trust may not delete Patients: its transaction is refused, naming the entry.
  const auto refused =
      http.request("POST", "/", bundle("transaction", {entry("DELETE", "Patient/pat-001", "")}),
                   {{"Authorization", "Bearer " + sample.tokens["acute-trust"]},
                    {"Content-Type", "application/fhir+json"}});
  CHECK(refused.status == 403);
  CHECK(first_issue(refused).find("entry 0") != std::string::npos);
  // The council sends what it holds as feeds, not over REST: its agreement's inbound formats say so.
  const auto door = http.request(
      "POST", "/", bundle("transaction", {entry("POST", "Patient", patient(family, "9434765919"))}),
      {{"Authorization", "Bearer " + social}, {"Content-Type", "application/fhir+json"}});
  CHECK(door.status == 403);
  CHECK(first_issue(door).find("FHIR REST") != std::string::npos);
  const auto done = http.request(
      "POST", "/",
      bundle(
          "transaction",
          {entry(
              "POST", "Patient",
              R"({"resourceType":"Patient","identifier":[{"system":"https://fhir.nhs.uk/Id/nhs-number","value":"9000000009"}],"name":[{"family":")" +
                  family + R"("}],"birthDate":"1970-01-01"})")}),
      {{"Authorization", "Bearer " + gp}, {"Content-Type", "application/fhir+json"}});
  REQUIRE_MESSAGE(done.status == 200, done.body);
  const std::string loc = text_at(json(done.body), "entry[0].response.location");
  const std::string id = loc.substr(8, loc.find("/_history") - 8);
  const std::string officer = sample.tokens["privacy-officer"];
  const auto audit = http.get("/AuditEvent?entity=Patient/" + id, {{"Authorization", "Bearer " + officer}});
  REQUIRE_MESSAGE(audit.status == 200, audit.body);
  CHECK(text_at(json(audit.body), "entry[0].resource.subtype[0].code") == "create");
}

}  // namespace
}  // namespace fhirgate::testing
