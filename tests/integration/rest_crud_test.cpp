// FHIR REST interactions over real HTTP: create, read, vread, update, delete, history, conditional
// create, Prefer, and every error path of the foundation.
#include <string>

#include "tests/integration/common.hpp"

namespace fhirgate::testing {
namespace {

std::string patient(const std::string& family, const std::string& extra = "") {
  return R"({"resourceType":"Patient","name":[{"family":")" + family +
         R"(","given":["Ann"]}],"gender":"female")" + extra + "}";
}

TEST_CASE("create answers 201 with Location, ETag, Last-Modified and the stored resource") {
  HttpClient http(shared_gateway().port());
  const auto r =
      http.send_json("POST", "/Patient", patient(unique_name("Create"), R"(,"id":"client-id-ignored")"));
  REQUIRE(r.status == 201);
  auto body = json(r.body);
  const std::string id(body.string_at("id"));
  CHECK(id != "client-id-ignored");
  CHECK(fhir::is_valid_id(id));
  CHECK(r.header("ETag") == "W/\"1\"");
  CHECK(r.header("Location") == shared_gateway().base_url() + "/Patient/" + id + "/_history/1");
  CHECK(r.header("Last-Modified").find("GMT") != std::string::npos);
  CHECK(r.header("Content-Type").find("application/fhir+json") == 0);
  CHECK(text_at(body, "meta.versionId") == "1");
  CHECK(text_at(body, "meta.lastUpdated").size() >= 20);

  const auto read = http.get("/Patient/" + id);
  CHECK(read.status == 200);
  CHECK(read.body == r.body);
  CHECK(read.header("ETag") == "W/\"1\"");
}

TEST_CASE("decimals and other numbers round-trip exactly as written") {
  HttpClient http(shared_gateway().port());
  const std::string numbers =
      R"(,"extension":[{"url":"http://example.org/a","valueDecimal":1.50},)"
      R"({"url":"http://example.org/b","valueDecimal":0.000001},{"url":"http://example.org/c","valueDecimal":1E+2},)"
      R"({"url":"http://example.org/d","valueInteger":-0}])";
  const auto r = http.send_json("POST", "/Patient", patient(unique_name("Decimal"), numbers));
  REQUIRE(r.status == 201);
  const auto read = http.get("/Patient/" + std::string(json(r.body).string_at("id")));
  CHECK(read.body.find(R"("valueDecimal":1.50})") != std::string::npos);
  CHECK(read.body.find(R"("valueDecimal":0.000001})") != std::string::npos);
  CHECK(read.body.find(R"("valueDecimal":1E+2})") != std::string::npos);
  CHECK(read.body.find(R"("valueInteger":-0})") != std::string::npos);
}

TEST_CASE("update creates versions, vread returns each, If-Match guards against lost updates") {
  HttpClient http(shared_gateway().port());
  const std::string family = unique_name("Update");
  const auto created = http.send_json("POST", "/Patient", patient(family));
  REQUIRE(created.status == 201);
  const std::string id(json(created.body).string_at("id"));

  const auto updated = http.send_json("PUT", "/Patient/" + id,
                                      R"({"resourceType":"Patient","id":")" + id +
                                          R"(","name":[{"family":")" + family + R"("}],"gender":"male"})",
                                      {{"If-Match", "W/\"1\""}});
  REQUIRE(updated.status == 200);
  CHECK(updated.header("ETag") == "W/\"2\"");
  CHECK(text_at(json(updated.body), "meta.versionId") == "2");

  const auto stale = http.send_json("PUT", "/Patient/" + id,
                                    R"({"resourceType":"Patient","id":")" + id + R"(","gender":"other"})",
                                    {{"If-Match", "W/\"1\""}});
  CHECK(stale.status == 412);
  CHECK(first_issue(stale).find("W/\"2\"") != std::string::npos);

  const auto v1 = http.get("/Patient/" + id + "/_history/1");
  CHECK(v1.status == 200);
  CHECK(json(v1.body).string_at("gender") == "female");
  const auto v2 = http.get("/Patient/" + id + "/_history/2");
  CHECK(json(v2.body).string_at("gender") == "male");
  CHECK(http.get("/Patient/" + id + "/_history/3").status == 404);
  CHECK(http.get("/Patient/" + id).header("ETag") == "W/\"2\"");
}

TEST_CASE("update with a client-chosen id creates the resource (update-as-create)") {
  HttpClient http(shared_gateway().port());
  const std::string id = unique_name("client-chosen");
  const auto r =
      http.send_json("PUT", "/Patient/" + id, R"({"resourceType":"Patient","id":")" + id + R"("})");
  CHECK(r.status == 201);
  CHECK(r.header("Location").find("/Patient/" + id + "/_history/1") != std::string::npos);
  CHECK(http.get("/Patient/" + id).status == 200);
  // If-Match on something that does not exist is a failed precondition, not a create.
  const std::string other = unique_name("not-there");
  CHECK(http.send_json("PUT", "/Patient/" + other, R"({"resourceType":"Patient","id":")" + other + R"("})",
                       {{"If-Match", "W/\"1\""}})
            .status == 412);
}

TEST_CASE("delete makes reads answer 410 Gone while history keeps the versions") {
  HttpClient http(shared_gateway().port());
  const auto created = http.send_json("POST", "/Consent",
                                      R"({"resourceType":"Consent","status":"active","scope":{"text":"x"},)"
                                      R"("category":[{"text":"y"}],"policyRule":{"text":"opt-in"}})");
  REQUIRE(created.status == 201);
  const std::string id(json(created.body).string_at("id"));
  const auto deleted = http.request("DELETE", "/Consent/" + id);
  CHECK(deleted.status == 204);
  CHECK(deleted.header("ETag") == "W/\"2\"");
  const auto gone = http.get("/Consent/" + id);
  CHECK(gone.status == 410);
  CHECK(json(gone.body).string_at("resourceType") == "OperationOutcome");
  CHECK(http.get("/Consent/" + id + "/_history/1").status == 200);
  CHECK(http.get("/Consent/" + id + "/_history/2").status == 410);
  // Deleting again (or something never stored) is idempotent.
  CHECK(http.request("DELETE", "/Consent/" + id).status == 204);

  const auto history = json(http.get("/Consent/" + id + "/_history").body);
  CHECK(text_at(history, "type") == "history");
  CHECK(text_at(history, "total") == "2");
  CHECK(text_at(history, "entry[0].request.method") == "DELETE");
  CHECK(at(history, "entry[0].resource") == nullptr);
  CHECK(text_at(history, "entry[1].request.method") == "POST");
  CHECK(text_at(history, "entry[1].response.etag") == "W/\"1\"");

  // Re-creating after delete continues the version numbers.
  const auto again =
      http.send_json("PUT", "/Consent/" + id,
                     R"({"resourceType":"Consent","id":")" + id +
                         R"(","status":"inactive","scope":{"text":"x"},"category":[{"text":"y"}],)"
                         R"("policyRule":{"text":"opt-in"}})");
  CHECK(again.status == 201);
  CHECK(again.header("ETag") == "W/\"3\"");
}

TEST_CASE("type history lists versions newest first with paging") {
  HttpClient http(shared_gateway().port());
  const auto before = json(http.get("/AuditEvent/_history?_count=1").body);
  const auto created = http.send_json(
      "POST", "/AuditEvent",
      R"({"resourceType":"AuditEvent","type":{"system":"http://dicom.nema.org/resources/ontology/DCM","code":"110110"},)"
      R"("recorded":"2026-01-01T10:00:00Z","agent":[{"requestor":true}],"source":{"observer":{"display":"x"}}})");
  REQUIRE(created.status == 201);
  const auto history = json(http.get("/AuditEvent/_history?_count=1").body);
  CHECK(text_at(history, "entry[0].resource.id") == json(created.body).string_at("id"));
  CHECK(text_at(history, "entry[0].request.method") == "POST");
  const int total = std::stoi(text_at(history, "total"));
  CHECK(total == (at(before, "total") ? std::stoi(text_at(before, "total")) : 0) + 1);
  if (total > 1) {
    CHECK(text_at(history, "link[1].relation") == "next");
    const std::string next = text_at(history, "link[1].url");
    const auto page2 = json(http.get(next.substr(next.find("/AuditEvent"))).body);
    CHECK(text_at(page2, "entry[0].resource.id") != json(created.body).string_at("id"));
  }
}

TEST_CASE("instance history pages with a sealed cursor: no version row number in the link, altered refused") {
  HttpClient http(shared_gateway().port());
  const auto created =
      http.send_json("POST", "/Patient", R"({"resourceType":"Patient","name":[{"family":"Paged"}]})");
  REQUIRE(created.status == 201);
  const std::string id(json(created.body).string_at("id"));
  REQUIRE(http.send_json("PUT", "/Patient/" + id,
                         R"({"resourceType":"Patient","id":")" + id + R"(","name":[{"family":"Paged2"}]})")
              .status == 200);
  const auto page1 = json(http.get("/Patient/" + id + "/_history?_count=1").body);
  CHECK(text_at(page1, "entry[0].response.etag") == "W/\"2\"");
  REQUIRE(text_at(page1, "link[1].relation") == "next");
  const std::string next = text_at(page1, "link[1].url");
  const std::string cursor = next.substr(next.find("_cursor=") + 8);
  CHECK(cursor.find_first_not_of("0123456789") != std::string::npos);  // not the store's row number
  const auto page2 = json(http.get(next.substr(next.find("/Patient"))).body);
  CHECK(text_at(page2, "entry[0].response.etag") == "W/\"1\"");
  const auto forged = http.get("/Patient/" + id + "/_history?_count=1&_cursor=12345");
  CHECK(forged.status == 400);
  CHECK(first_issue(forged).find("paging cursor") != std::string::npos);
}

TEST_CASE("AuditEvent is append-only: PUT and DELETE answer 405 with an OperationOutcome") {
  HttpClient http(shared_gateway().port());
  const auto put = http.send_json("PUT", "/AuditEvent/abc", R"({"resourceType":"AuditEvent","id":"abc"})");
  CHECK(put.status == 405);
  CHECK(json(put.body).string_at("resourceType") == "OperationOutcome");
  const auto del = http.request("DELETE", "/AuditEvent/abc");
  CHECK(del.status == 405);
  CHECK(first_issue(del).find("DELETE") != std::string::npos);
}

TEST_CASE("conditional create with If-None-Exist") {
  HttpClient http(shared_gateway().port());
  const std::string value = unique_name("nhs");
  const std::string body = R"({"resourceType":"Patient","identifier":[{"system":"urn:test","value":")" +
                           value + R"("}],"name":[{"family":")" + value + R"("}]})";
  const auto first =
      http.send_json("POST", "/Patient", body, {{"If-None-Exist", "identifier=urn:test|" + value}});
  CHECK(first.status == 201);
  const auto second =
      http.send_json("POST", "/Patient", body, {{"If-None-Exist", "identifier=urn:test|" + value}});
  CHECK(second.status == 200);
  CHECK(json(second.body).string_at("id") == json(first.body).string_at("id"));
  // The same identifier again, without a condition, is refused: one Patient per identifier.
  const auto duplicate = http.send_json("POST", "/Patient", body);
  CHECK(duplicate.status == 409);
  CHECK(first_issue(duplicate).find("conditional") != std::string::npos);
  // A condition that matches several is a failed precondition (another Patient of the same name).
  const std::string namesake = R"({"resourceType":"Patient","name":[{"family":")" + value + R"("}]})";
  CHECK(http.send_json("POST", "/Patient", namesake).status == 201);
  const auto third = http.send_json("POST", "/Patient", body, {{"If-None-Exist", "family:exact=" + value}});
  CHECK(third.status == 412);
  const auto bad = http.send_json("POST", "/Patient", body, {{"If-None-Exist", "nonsense=1"}});
  CHECK(bad.status == 400);
}

TEST_CASE("Prefer return=minimal and return=OperationOutcome") {
  HttpClient http(shared_gateway().port());
  const auto minimal =
      http.send_json("POST", "/Patient", patient(unique_name("Minimal")), {{"Prefer", "return=minimal"}});
  CHECK(minimal.status == 201);
  CHECK(minimal.body.empty());
  CHECK(!minimal.header("Location").empty());
  const auto outcome = http.send_json("POST", "/Patient", patient(unique_name("Outcome")),
                                      {{"Prefer", "return=OperationOutcome"}});
  CHECK(outcome.status == 201);
  auto oo = json(outcome.body);
  CHECK(oo.string_at("resourceType") == "OperationOutcome");
  CHECK(text_at(oo, "issue[0].severity") == "information");
}

TEST_CASE("malformed JSON is 400 with line and column") {
  HttpClient http(shared_gateway().port());
  const auto r =
      http.send_json("POST", "/Patient", "{\n  \"resourceType\": \"Patient\",\n  \"active\": tru\n}");
  CHECK(r.status == 400);
  auto oo = json(r.body);
  CHECK(text_at(oo, "issue[0].code") == "invalid");
  CHECK(text_at(oo, "issue[0].extension[0].valueInteger") == "3");
  CHECK(std::stoi(text_at(oo, "issue[0].extension[1].valueInteger")) >= 13);
}

TEST_CASE("FHIR JSON rule violations are 422 naming the element") {
  HttpClient http(shared_gateway().port());
  struct Case {
    const char* body;
    const char* expression;
  };
  const Case cases[] = {
      {R"({"resourceType":"Patient","gender":null})", "Patient.gender"},
      {R"({"resourceType":"Patient","name":[{"family":""}]})", "Patient.name[0].family"},
      {R"({"resourceType":"Patient","name":[{}]})", "Patient.name[0]"},
      {R"({"resourceType":"Patient","name":[]})", "Patient.name"},
      {R"({"resourceType":"Patient","id":"bad id!"})", "Patient.id"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.body);
    const auto r = http.send_json("POST", "/Patient", c.body);
    CHECK(r.status == 422);
    CHECK(text_at(json(r.body), "issue[0].expression[0]") == c.expression);
  }
  const auto wrong_type = http.send_json("POST", "/Patient", R"({"resourceType":"Consent"})");
  CHECK(wrong_type.status == 422);
  CHECK(first_issue(wrong_type).find("Consent") != std::string::npos);
  const auto no_type = http.send_json("POST", "/Patient", R"({"name":[{"family":"x"}]})");
  CHECK(no_type.status == 422);
  const auto not_object = http.send_json("POST", "/Patient", R"([1,2])");
  CHECK(not_object.status == 422);
}

TEST_CASE("update id rules: body id must match the URL id") {
  HttpClient http(shared_gateway().port());
  const auto mismatch = http.send_json("PUT", "/Patient/abc", R"({"resourceType":"Patient","id":"xyz"})");
  CHECK(mismatch.status == 422);
  CHECK(text_at(json(mismatch.body), "issue[0].expression[0]") == "Patient.id");
  CHECK(http.send_json("PUT", "/Patient/abc", R"({"resourceType":"Patient"})").status == 400);
  CHECK(http.send_json("PUT", "/Patient/bad$id", R"({"resourceType":"Patient","id":"bad$id"})").status ==
        400);
}

TEST_CASE("unknown ids, types and routes are 404; wrong methods 405") {
  HttpClient http(shared_gateway().port());
  CHECK(http.get("/Patient/does-not-exist").status == 404);
  const auto unknown_type = http.get("/Observation/1");
  CHECK(unknown_type.status == 404);
  CHECK(first_issue(unknown_type).find("Observation") != std::string::npos);
  CHECK(http.get("/Nonsense").status == 404);
  CHECK(http.get("/Patient/1/_history/1/extra").status == 404);
  const auto patch = http.request("PATCH", "/Patient/1", "{}", {{"Content-Type", "application/fhir+json"}});
  CHECK(patch.status == 405);
  CHECK(http.request("DELETE", "/metadata").status == 405);
}

TEST_CASE("content negotiation: 415 for bodies that are not FHIR, 406 for unacceptable formats") {
  HttpClient http(shared_gateway().port());
  const std::string body = patient(unique_name("Negotiate"));
  CHECK(http.send_json("POST", "/Patient", body, {{"Content-Type", "text/plain"}}).status == 415);
  CHECK(http.send_json("POST", "/Patient", body,
                       {{"Content-Type", "application/fhir+json; charset=iso-8859-1"}})
            .status == 415);
  CHECK(http.send_json("POST", "/Patient", body, {{"Content-Type", "application/json; charset=UTF-8"}})
            .status == 201);
  CHECK(http.request("POST", "/Patient", body).status == 415);  // no Content-Type at all

  const auto not_acceptable = http.get("/metadata", {{"Accept", "text/html"}});
  CHECK(not_acceptable.status == 406);
  CHECK(json(not_acceptable.body).string_at("resourceType") == "OperationOutcome");
  CHECK(http.get("/Patient?_format=turtle").status == 406);
  CHECK(http.get("/metadata", {{"Accept", "text/html, application/fhir+json;q=0.5"}}).status == 200);
  CHECK(http.get("/metadata", {{"Accept", "*/*"}}).status == 200);
  CHECK(http.get("/metadata", {{"Accept", "application/fhir+json;q=0"}}).status == 406);
  CHECK(http.get("/metadata?_format=json").status == 200);

  const auto pretty = http.get("/metadata?_pretty=true");
  CHECK(pretty.body.find("\n  \"resourceType\": \"CapabilityStatement\"") != std::string::npos);
}

}  // namespace
}  // namespace fhirgate::testing
