#include "gateway/routing/delivery_formats.hpp"

#include <doctest/doctest.h>

#include <string>

#include "fhir/json.hpp"

namespace fhirgate::gateway {
namespace {

store::Delivery delivery(const std::string& type, const std::string& id) {
  store::Delivery d;
  d.id = 42;
  d.created_ms = 1764064800000;
  d.type = type;
  d.resource_id = id;
  d.version = 3;
  return d;
}

std::string response_message(const std::string& code) {
  return R"({"resourceType":"Bundle","type":"message","entry":[{"resource":{"resourceType":"MessageHeader","response":{"identifier":"m1","code":")" +
         code + R"("}}}]})";
}

TEST_CASE("delivery formats: a receiver's response message decides, fatal-error for good") {
  CHECK(read_message_response(200, response_message("ok")).accepted);
  const auto transient = read_message_response(200, response_message("transient-error"));
  CHECK_FALSE(transient.accepted);
  CHECK_FALSE(transient.permanent);
  CHECK(transient.error == "response message: transient-error");
  const auto fatal = read_message_response(200, response_message("fatal-error"));
  CHECK_FALSE(fatal.accepted);
  CHECK(fatal.permanent);
  // 2xx without a response message: taken. Not 2xx: retried, whatever the body says.
  CHECK(read_message_response(202, "").accepted);
  CHECK(read_message_response(200, R"({"resourceType":"OperationOutcome"})").accepted);
  const auto failed = read_message_response(503, response_message("ok"));
  CHECK_FALSE(failed.accepted);
  CHECK_FALSE(failed.permanent);
  CHECK(failed.error == "HTTP 503");
}

TEST_CASE("delivery formats: the ACK's MSA-1 decides; AR and CR for good, AE and nonsense retried") {
  auto ack = [](const std::string& code, const std::string& text = "") {
    return "MSH|^~\\&|RIO|RXT|FHIRGATE|FHIRGATE|20261125100000||ACK^A31^ACK|A1|P|2.5.1\rMSA|" + code +
           "|FG42" + (text.empty() ? "" : "|" + text) + "\r";
  };
  CHECK(read_ack(ack("AA")).accepted);
  CHECK(read_ack(ack("CA")).accepted);
  const auto error = read_ack(ack("AE", "PID-3 missing"));
  CHECK_FALSE(error.accepted);
  CHECK_FALSE(error.permanent);
  CHECK(error.error == "ACK AE: PID-3 missing");
  CHECK(read_ack(ack("AR")).permanent);
  CHECK(read_ack(ack("CR")).permanent);
  const auto nonsense = read_ack("hello");
  CHECK_FALSE(nonsense.accepted);
  CHECK_FALSE(nonsense.permanent);
  CHECK(nonsense.error.find("unreadable ACK") == 0);
  CHECK(read_ack("MSH|^~\\&|A|B|C|D|20261125||ACK|1|P|2.5.1\r").error == "ACK without MSA-1");
}

TEST_CASE("delivery formats: what goes to a drop folder and over MLLP") {
  const auto patient = delivery("Patient", "p1");
  CHECK(drop_file_name(patient) == "000000000042-Patient-p1.json");
  auto message = delivery("Bundle", "msg-1");
  message.version = 0;
  message.event = "admit-notification";
  CHECK(drop_file_name(message) == "000000000042-message-msg-1.json");
  CHECK(drop_file_content(message, {"{\"resourceType\":\"Bundle\"}", false}) ==
        "{\"resourceType\":\"Bundle\"}");

  const auto put =
      fhir::parse_json(drop_file_content(patient, {R"({"resourceType":"Patient","id":"p1"})", false}));
  REQUIRE(put);
  CHECK(put->string_at("id") == "delivery-42-1764064800000");
  CHECK(put->string_at("type") == "transaction");
  CHECK(put->string_at("timestamp") ==
        "2025-11-25T10:00:00.000+00:00");  // the delivery's creation, on every attempt
  const auto& entry = put->find("entry")->items().front();
  CHECK(entry.find("request")->string_at("method") == "PUT");
  CHECK(entry.find("request")->string_at("url") == "Patient/p1");
  CHECK(entry.find("resource")->string_at("id") == "p1");
  const auto removed = fhir::parse_json(drop_file_content(patient, {"", true}));
  REQUIRE(removed);
  CHECK(removed->find("entry")->items().front().find("request")->string_at("method") == "DELETE");
  CHECK_FALSE(removed->find("entry")->items().front().find("resource"));

  PartnerConfig receiver;
  receiver.id = "mental-health";
  receiver.ods_code = "RXT";
  const auto adt = patient_adt(
      patient,
      {R"({"resourceType":"Patient","id":"p1","identifier":[{"system":"https://fhir.nhs.uk/Id/nhs-number","value":"9434765919"}],"name":[{"family":"Smith"}]})",
       false},
      receiver);
  REQUIRE(adt);
  CHECK(adt->find("|ADT^A31") != std::string::npos);
  CHECK(adt->find("|RXT|") != std::string::npos);   // MSH-6: the receiver's ODS code without a facility
  CHECK(adt->find("|FG42|") != std::string::npos);  // MSH-10: the same on every attempt
  CHECK(adt->find("|20251125100000") != std::string::npos);  // MSH-7: the delivery's creation
  CHECK(adt->find("9434765919") != std::string::npos);
  CHECK(adt->find("Smith") != std::string::npos);
  CHECK(patient_adt(patient, {"", true}, receiver).error().issues.front().diagnostics.find("deletion") !=
        std::string::npos);
  CHECK_FALSE(patient_adt(delivery("Consent", "c1"), {"{}", false}, receiver));
}

}  // namespace
}  // namespace fhirgate::gateway
