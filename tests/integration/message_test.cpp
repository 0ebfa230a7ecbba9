// FHIR messaging (POST /$process-message) against the real gateway: the response message, problems
// located in the request, re-sent messages answered once, and the sharing agreement.
#include <doctest/doctest.h>

#include <string>

#include "tests/integration/common.hpp"

namespace fhirgate::testing {
namespace {

std::string message(const std::string& id, const std::string& patient_json) {
  return R"({"resourceType":"Bundle","id":")" + id +
         R"(","type":"message","timestamp":"2026-01-01T00:00:00Z","entry":[)"
         R"({"fullUrl":"urn:uuid:0a0a0a0a-0000-4000-8000-000000000001","resource":{"resourceType":"MessageHeader",)"
         R"("eventCoding":{"system":"http://example.org/fhir/message-events","code":"admit-notification"},)"
         R"("source":{"endpoint":"http://gp.example/fhir"},)"
         R"("focus":[{"reference":"urn:uuid:0a0a0a0a-0000-4000-8000-000000000002"}]}},)"
         R"({"fullUrl":"urn:uuid:0a0a0a0a-0000-4000-8000-000000000002","resource":)" +
         patient_json + "}]}";
}

const std::string kGoodPatient =
    R"({"resourceType":"Patient","name":[{"family":"Message"}],"gender":"female"})";

TEST_CASE(
    "messaging: a message is answered with a response message naming it; a re-send gets the same answer") {
  HttpClient http(shared_gateway().port());
  const std::string id = unique_name("msg");
  const auto r = http.send_json("POST", "/$process-message", message(id, kGoodPatient));
  REQUIRE_MESSAGE(r.status == 200, r.body);
  const auto out = json(r.body);
  CHECK(out.string_at("type") == "message");
  CHECK(text_at(out, "entry[0].resource.resourceType") == "MessageHeader");
  CHECK(text_at(out, "entry[0].resource.response.identifier") == id);
  CHECK(text_at(out, "entry[0].resource.response.code") == "ok");
  CHECK(text_at(out, "entry[0].resource.eventCoding.code") == "admit-notification");
  CHECK(text_at(out, "entry[0].resource.destination[0].endpoint") == "http://gp.example/fhir");
  CHECK_FALSE(at(out, "entry[1]"));
  const auto again = http.send_json("POST", "/$process-message", message(id, kGoodPatient));
  REQUIRE(again.status == 200);
  CHECK(again.body == r.body);  // the first answer, not a second processing
}

TEST_CASE("messaging: problems in the message give fatal-error with an OperationOutcome locating them") {
  HttpClient http(shared_gateway().port());
  const std::string id = unique_name("bad");
  const auto r = http.send_json("POST", "/$process-message",
                                message(id, R"({"resourceType":"Patient","gender":"sometimes"})"));
  REQUIRE_MESSAGE(r.status == 200, r.body);
  const auto out = json(r.body);
  CHECK(text_at(out, "entry[0].resource.response.code") == "fatal-error");
  CHECK(text_at(out, "entry[0].resource.response.details.reference") ==
        "OperationOutcome/" + text_at(out, "entry[1].resource.id"));
  CHECK(text_at(out, "entry[1].resource.issue[0].expression[0]") == "Bundle.entry[1].resource.gender");
  // A failed message is not remembered as accepted: fixed and re-sent with the same id, it is processed.
  const auto fixed = http.send_json("POST", "/$process-message", message(id, kGoodPatient));
  CHECK(text_at(json(fixed.body), "entry[0].resource.response.code") == "ok");

  CHECK(http.send_json("POST", "/$process-message", R"({"resourceType":"Bundle","type":"message"})").status ==
        400);
  CHECK(
      http.send_json("POST", "/$process-message", R"({"resourceType":"Bundle","id":"x","type":"collection"})")
          .status == 400);
  CHECK(http.send_json("POST", "/$process-message?async=true", message(unique_name("a"), kGoodPatient))
            .status == 405);
  CHECK(http.get("/$process-message").status == 405);
}

TEST_CASE("the CapabilityStatement names transactions, batches and $process-message, and is valid R4") {
  HttpClient http(shared_gateway().port());
  const auto r = http.get("/metadata");
  REQUIRE(r.status == 200);
  const auto cs = json(r.body);
  CHECK(text_at(cs, "rest[0].interaction[0].code") == "transaction");
  CHECK(text_at(cs, "rest[0].interaction[1].code") == "batch");
  CHECK(text_at(cs, "rest[0].operation[1].name") == "process-message");
  const auto checked = http.send_json("POST", "/CapabilityStatement/$validate", r.body);
  REQUIRE(checked.status == 200);
  CHECK(checked.body.find("\"severity\":\"error\"") == std::string::npos);
}

TEST_CASE("messaging: only partners whose agreement lists fhir-message may send messages") {
  SampleGateway sample({"social-care", "gp-practice"});
  const std::string social = sample.tokens["social-care"], gp = sample.tokens["gp-practice"];
  HttpClient http(sample.port());
  const std::string patient =
      R"({"resourceType":"Patient","identifier":[{"system":"https://fhir.nhs.uk/Id/nhs-number","value":"9434765919"}],)"
      R"("name":[{"family":"Message"}],"birthDate":"1970-01-01"})";
  const auto refused =
      http.request("POST", "/$process-message", message("m1", patient),
                   {{"Authorization", "Bearer " + social}, {"Content-Type", "application/fhir+json"}});
  CHECK(refused.status == 403);
  const auto taken =
      http.request("POST", "/$process-message", message("m1", patient),
                   {{"Authorization", "Bearer " + gp}, {"Content-Type", "application/fhir+json"}});
  REQUIRE_MESSAGE(taken.status == 200, taken.body);
  CHECK(text_at(json(taken.body), "entry[0].resource.response.code") == "ok");
}

}  // namespace
}  // namespace fhirgate::testing
