// Outbound delivery in every route format: FHIR REST, FHIR messaging, HL7 v2 over MLLP and a file drop,
// of stored resources, of resources of types the gateway does not hold, and of FHIR messages routed by
// event. The receivers are real: loopback partners, and a second fhirgate.
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>

#include "tests/integration/common.hpp"
#include "tests/support/fake_mllp_partner.hpp"
#include "tests/support/fake_partner.hpp"

namespace fhirgate::testing {
namespace {

namespace fs = std::filesystem;

const std::string kConsentScope =
    R"("status":"active","scope":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/consentscope","code":"patient-privacy"}]},"category":[{"coding":[{"system":"http://loinc.org","code":"59284-0"}]}],"dateTime":"2026-01-01","policyRule":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"OPTIN"}]})";

// The GP practice sends; the ambulance service takes FHIR messages, mental health HL7 v2 over MLLP, social
// care files, and the trust FHIR REST (a second fhirgate, or a loopback partner).
struct FormatsGateway {
  std::string dir = temp_dir();
  std::string drop = dir + "/social-care-in";
  std::string config = dir + "/gateway.json";
  std::string gp, operator_token;
  std::unique_ptr<GatewayProcess> gateway;

  FormatsGateway(const std::string& ambulance_url, std::uint16_t mllp_port, const std::string& trust_url) {
    fs::create_directories(drop);
    std::ofstream(config) << R"({
  "security": {"enabled": true, "consentPolicy": "opt-in"},
  "profilesDir": ")" + source_path("profiles") +
                                 R"(",
  "delivery": {"maxAttempts": 3, "baseDelayMs": 50, "maxDelayMs": 200},
  "partners": [
    {"id": "gp-practice", "name": "Riverside Medical Practice", "odsCode": "Y12345", "consentRegistrar": true,
     "access": {"Patient": ["create", "update", "delete", "read"], "Consent": ["create"],
                "Observation": ["create", "update"]},
     "inbound": ["fhir-rest", "fhir-message"]},
    {"id": "ambulance", "name": "Ambulance Service", "odsCode": "RYC",
     "endpoint": {"fhirBaseUrl": ")" +
                                 ambulance_url +
                                 R"(", "timeoutMs": 500}},
    {"id": "mental-health", "name": "Mental Health Trust", "odsCode": "RXT",
     "endpoint": {"mllp": {"host": "127.0.0.1", "port": )" +
                                 std::to_string(mllp_port) + R"(,
                           "receivingApplication": "RIO", "receivingFacility": "RXT"}, "timeoutMs": 500}},
    {"id": "social-care", "name": "Council Social Care", "odsCode": "W00001",
     "endpoint": {"dropFolder": "social-care-in"}},
    {"id": "acute-trust", "name": "Northfield Hospitals NHS Trust", "odsCode": "RX1",
     "endpoint": {"fhirBaseUrl": ")" +
                                 trust_url +
                                 R"(", "timeoutMs": 2000}}
  ],
  "roles": [{"id": "operator", "name": "Operations", "role": "operator", "access": {}}],
  "routes": [
    {"id": "patients-as-messages", "from": "gp-practice", "types": ["Patient"], "to": ["ambulance"], "format": "fhir-message"},
    {"id": "patients-as-adt", "from": "gp-practice", "types": ["Patient"], "to": ["mental-health"], "format": "hl7v2-mllp"},
    {"id": "patients-as-files", "from": "gp-practice", "types": ["Patient", "Observation"], "to": ["social-care"], "format": "file"},
    {"id": "to-the-trust", "from": "gp-practice", "types": ["Patient", "Observation"], "to": ["acute-trust"]},
    {"id": "admissions", "from": "*", "events": ["admit-notification"], "to": ["ambulance"], "format": "fhir-message"},
    {"id": "admissions-filed", "from": "*", "events": ["admit-notification"], "to": ["social-care"], "format": "file"}
  ]
})";
    gp = new_token(config, dir, "gp-practice");
    operator_token = new_token(config, dir, "operator");
    gateway = std::make_unique<GatewayProcess>(std::vector<std::string>{"--config", config}, dir);
  }

  fhir::Node deliveries(const std::string& query = "?_count=1000") {
    HttpClient http(gateway->port(), bearer(operator_token));
    const auto r = http.get("/_ops/deliveries" + query);
    REQUIRE_MESSAGE(r.status == 200, r.body);
    return json(r.body);
  }
  // Waits until the delivery of `resource` to `destination` has left the pending state; its row.
  std::optional<fhir::Node> settled(const std::string& resource, const std::string& destination) {
    for (int i = 0; i < 200; ++i) {
      const auto list = deliveries();
      if (const auto* rows = list.find("deliveries"))
        for (const auto& row : rows->items())
          if (row.string_at("resource") == resource && row.string_at("destination") == destination &&
              row.string_at("status") != "pending")
            return row;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return std::nullopt;
  }
};

// A Patient and, when `consent`, a Consent permitting every partner; the Patient's id.
std::string register_patient(HttpClient& gp, const std::string& family, bool consent) {
  static unsigned registered = 0;  // one Patient per NHS number
  std::string entries =
      R"({"fullUrl":"urn:uuid:5e5e5e5e-0000-4000-8000-000000000002","resource":{"resourceType":"Patient","identifier":[{"system":"https://fhir.nhs.uk/Id/nhs-number","value":")" +
      nhs_number(++registered) + R"("}],"name":[{"family":")" + family +
      R"(","given":["Ann"]}],"gender":"female","birthDate":"1970-03-01"},"request":{"method":"POST","url":"Patient"}})";
  if (consent)
    entries +=
        R"(,{"resource":{"resourceType":"Consent",)" + kConsentScope +
        R"(,"patient":{"reference":"urn:uuid:5e5e5e5e-0000-4000-8000-000000000002"},"provision":{"type":"permit"}},"request":{"method":"POST","url":"Consent"}})";
  const auto r = gp.send_json("POST", "/",
                              R"({"resourceType":"Bundle","type":"transaction","entry":[)" + entries + "]}");
  REQUIRE_MESSAGE(r.status == 200, r.body);
  const std::string loc = text_at(json(r.body), "entry[0].response.location");
  return loc.substr(8, loc.find("/_history") - 8);
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// The files in the drop folder whose names contain `part`.
std::vector<fs::path> dropped(const std::string& folder, const std::string& part) {
  std::vector<fs::path> out;
  for (const auto& entry : fs::directory_iterator(folder))
    if (entry.path().filename().string().find(part) != std::string::npos) out.push_back(entry.path());
  std::sort(out.begin(), out.end());
  return out;
}

TEST_CASE("delivery formats: a Patient goes out as a FHIR message, an ADT^A31 over MLLP, a file and a PUT") {
  FakePartner ambulance;
  FakeMllpPartner mental_health;
  // The trust runs fhirgate too (no security: it takes what it is sent).
  GatewayProcess trust;
  FormatsGateway g(ambulance.base_url() + "/fhir", mental_health.port(), trust.base_url());
  HttpClient gp(g.gateway->port(), bearer(g.gp));
  const std::string id = register_patient(gp, "Formats", true);
  const std::string v1 = "Patient/" + id + "/_history/1";

  for (const char* to : {"ambulance", "mental-health", "social-care", "acute-trust"}) {
    const auto row = g.settled(v1, to);
    REQUIRE_MESSAGE(row, to);
    CHECK_MESSAGE(row->string_at("status") == "delivered", to, " ", row->string_at("lastError"));
  }

  // FHIR message: MessageHeader (event update, focus the Patient), then the Patient.
  REQUIRE(ambulance.wait_for_requests(1, std::chrono::seconds(5)));
  const auto posted = ambulance.requests().front();
  CHECK(posted.method == "POST");
  CHECK(posted.target == "/fhir/$process-message");
  const auto message = json(posted.body);
  CHECK(message.string_at("type") == "message");
  CHECK(text_at(message, "entry[0].resource.resourceType") == "MessageHeader");
  CHECK(text_at(message, "entry[0].resource.eventCoding.code") == "update");
  CHECK(text_at(message, "entry[0].resource.eventCoding.system") == "urn:fhirgate:resource-event");
  CHECK(text_at(message, "entry[0].resource.focus[0].reference") == "Patient/" + id);
  CHECK(text_at(message, "entry[0].resource.destination[0].name") == "Ambulance Service");
  CHECK(text_at(message, "entry[1].resource.id") == id);

  // HL7 v2: ADT^A31 with the receiver's application and facility and the NHS number.
  REQUIRE(mental_health.wait_for_messages(1, std::chrono::seconds(5)));
  const std::string adt = mental_health.messages().front().text;
  CHECK(adt.find("|ADT^A31") != std::string::npos);
  CHECK(adt.find("|RIO|RXT|") != std::string::npos);
  CHECK(adt.find(text_at(message, "entry[1].resource.identifier[0].value")) != std::string::npos);
  CHECK(adt.find("|Formats^Ann") != std::string::npos);

  // File: a one-entry transaction Bundle, written whole (no .part left).
  const auto files = dropped(g.drop, "-Patient-" + id);
  REQUIRE(files.size() == 1);
  CHECK(dropped(g.drop, ".part").empty());
  const auto bundle = json(read_file(files.front()));
  CHECK(bundle.string_at("type") == "transaction");
  CHECK(text_at(bundle, "entry[0].request.method") == "PUT");
  CHECK(text_at(bundle, "entry[0].request.url") == "Patient/" + id);
  CHECK(text_at(bundle, "entry[0].resource.name[0].family") == "Formats");

  // FHIR REST to a real FHIR server: it now holds the Patient under the same id.
  HttpClient at_trust(trust.port());
  const auto held = at_trust.get("/Patient/" + id);
  REQUIRE_MESSAGE(held.status == 200, held.body);
  CHECK(text_at(json(held.body), "name[0].family") == "Formats");

  // A deletion: a DELETE entry in a file, a delete event message, and no ADT form (a dead letter at once).
  REQUIRE(gp.request("DELETE", "/Patient/" + id).status == 204);
  const std::string v2 = "Patient/" + id + "/_history/2";
  const auto v2_file = g.settled(v2, "social-care");
  REQUIRE(v2_file);
  CHECK(v2_file->string_at("status") == "delivered");
  const auto delete_files = dropped(g.drop, "-Patient-" + id);
  REQUIRE(delete_files.size() == 2);
  CHECK(text_at(json(read_file(delete_files.back())), "entry[0].request.method") == "DELETE");
  const auto v2_adt = g.settled(v2, "mental-health");
  REQUIRE(v2_adt);
  CHECK(v2_adt->string_at("status") == "dead");
  CHECK(v2_adt->find("attempts")->text() == "1");
  CHECK(v2_adt->string_at("lastError").find("deletion") != std::string::npos);
  REQUIRE(g.settled(v2, "ambulance"));
  REQUIRE(ambulance.wait_for_requests(2, std::chrono::seconds(5)));
  CHECK(text_at(json(ambulance.requests()[1].body), "entry[0].resource.eventCoding.code") == "delete");
  REQUIRE(g.settled(v2, "acute-trust"));
  CHECK(at_trust.get("/Patient/" + id).status == 410);
}

TEST_CASE("delivery formats: a FHIR message sent to a FHIR server is validated and accepted there") {
  FakeMllpPartner mental_health;
  GatewayProcess trust;  // takes FHIR messages too; answers fatal-error for one it finds invalid
  FormatsGateway g(trust.base_url(), mental_health.port(), trust.base_url());
  HttpClient gp(g.gateway->port(), bearer(g.gp));
  const std::string id = register_patient(gp, "Conformant", true);
  const auto row = g.settled("Patient/" + id + "/_history/1", "ambulance");
  REQUIRE(row);
  CHECK_MESSAGE(row->string_at("status") == "delivered", row->string_at("lastError"));
}

TEST_CASE(
    "delivery formats: HL7 v2 ACKs decide: AE is retried, AR is a dead letter at once, silence times out") {
  FakePartner ambulance;
  FakeMllpPartner mental_health;
  FakePartner trust;
  FormatsGateway g(ambulance.base_url(), mental_health.port(), trust.base_url());
  HttpClient gp(g.gateway->port(), bearer(g.gp));

  mental_health.fail_next(1);  // AE, then AA
  const std::string first = register_patient(gp, "Retried", true);
  const auto retried = g.settled("Patient/" + first + "/_history/1", "mental-health");
  REQUIRE(retried);
  CHECK(retried->string_at("status") == "delivered");
  CHECK(retried->find("attempts")->text() == "2");
  REQUIRE(mental_health.wait_for_messages(2, std::chrono::seconds(5)));
  const auto sent = mental_health.messages();
  // The same message both times (the same control id): a resend the receiver can recognise.
  CHECK(sent[0].text == sent[1].text);

  mental_health.set_mode(FakeMllpPartner::Mode::ar);
  const std::string refused = register_patient(gp, "Refused", true);
  const auto dead = g.settled("Patient/" + refused + "/_history/1", "mental-health");
  REQUIRE(dead);
  CHECK(dead->string_at("status") == "dead");
  CHECK(dead->find("attempts")->text() == "1");
  CHECK(dead->string_at("lastError").find("ACK AR") == 0);

  mental_health.set_mode(FakeMllpPartner::Mode::hang);
  const std::string silent = register_patient(gp, "Silent", true);
  for (int i = 0; i < 100; ++i) {
    const auto list = g.deliveries();
    bool tried = false;
    for (const auto& r : list.find("deliveries")->items())
      if (r.string_at("resource") == "Patient/" + silent + "/_history/1" &&
          r.string_at("destination") == "mental-health" && r.find("attempts")->text() != "0") {
        CHECK(r.string_at("lastError").find("timed out") != std::string::npos);
        tried = true;
      }
    if (tried) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  mental_health.set_mode(FakeMllpPartner::Mode::aa);
  const auto later = g.settled("Patient/" + silent + "/_history/1", "mental-health");
  REQUIRE(later);
  CHECK(later->string_at("status") == "delivered");
}

TEST_CASE("delivery formats: FHIR messages are routed by event and source, consent permitting") {
  FakePartner ambulance;
  FakeMllpPartner mental_health;
  FakePartner trust;
  FormatsGateway g(ambulance.base_url(), mental_health.port(), trust.base_url());
  HttpClient gp(g.gateway->port(), bearer(g.gp));
  const std::string shared = register_patient(gp, "Admitted", true);
  const std::string quiet = register_patient(gp, "Quiet", false);
  auto message = [](const std::string& id, const std::string& event, const std::string& patient) {
    return R"({"resourceType":"Bundle","id":")" + id +
           R"(","type":"message","timestamp":"2026-11-25T10:00:00Z","entry":[{"fullUrl":"urn:uuid:6f6f6f6f-0000-4000-8000-000000000001","resource":{"resourceType":"MessageHeader","eventCoding":{"system":"http://example.org/events","code":")" +
           event +
           R"("},"source":{"endpoint":"http://gp.example/fhir"},"focus":[{"reference":"urn:uuid:6f6f6f6f-0000-4000-8000-000000000002"}]}},{"fullUrl":"urn:uuid:6f6f6f6f-0000-4000-8000-000000000002","resource":{"resourceType":"Encounter","status":"in-progress","class":{"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"IMP"},"subject":{"reference":"Patient/)" +
           patient + R"("}}}]})";
  };
  const std::string admit = message("msg-admit-1", "admit-notification", shared);
  auto r = gp.send_json("POST", "/$process-message", admit);
  REQUIRE_MESSAGE(r.status == 200, r.body);
  CHECK(text_at(json(r.body), "entry[0].resource.response.code") == "ok");

  // To the ambulance service as it came; to social care as a file holding the message.
  const auto to_ambulance = g.settled("Bundle/msg-admit-1", "ambulance");
  REQUIRE(to_ambulance);
  CHECK(to_ambulance->string_at("status") == "delivered");
  CHECK(to_ambulance->string_at("event") == "admit-notification");
  CHECK(to_ambulance->string_at("patient") == "Patient/" + shared);
  REQUIRE(ambulance.wait_for_requests(2, std::chrono::seconds(5)));  // the Patient's message, then this
  bool forwarded = false;
  for (const auto& req : ambulance.requests())
    if (json(req.body).string_at("id") == "msg-admit-1") {
      forwarded = true;
      CHECK(req.target == "/$process-message");
      CHECK(json(req.body) == json(admit));
    }
  CHECK(forwarded);
  const auto to_council = g.settled("Bundle/msg-admit-1", "social-care");
  REQUIRE(to_council);
  CHECK(to_council->string_at("status") == "delivered");
  const auto files = dropped(g.drop, "-message-msg-admit-1");
  REQUIRE(files.size() == 1);
  CHECK(json(read_file(files.front())) == json(admit));

  // Sent again: answered as before, routed once.
  CHECK(gp.send_json("POST", "/$process-message", admit).status == 200);
  // Another event is not routed; a message about a patient without consent is withheld.
  CHECK(
      gp.send_json("POST", "/$process-message", message("msg-discharge-1", "discharge-notification", shared))
          .status == 200);
  REQUIRE(
      gp.send_json("POST", "/$process-message", message("msg-admit-2", "admit-notification", quiet)).status ==
      200);
  const auto withheld = g.settled("Bundle/msg-admit-2", "ambulance");
  REQUIRE(withheld);
  CHECK(withheld->string_at("status") == "withheld");
  CHECK(withheld->string_at("lastError").find("Encounter in the message") != std::string::npos);
  std::size_t admit_rows = 0, discharge_rows = 0;
  const auto list = g.deliveries();
  for (const auto& row : list.find("deliveries")->items()) {
    admit_rows += row.string_at("resource") == "Bundle/msg-admit-1";
    discharge_rows += row.string_at("resource") == "Bundle/msg-discharge-1";
  }
  CHECK(admit_rows == 2);
  CHECK(discharge_rows == 0);
}

TEST_CASE("delivery formats: resources of types not held are validated, routed and not stored") {
  FakePartner ambulance;
  FakeMllpPartner mental_health;
  FakePartner trust;
  FormatsGateway g(ambulance.base_url(), mental_health.port(), trust.base_url());
  HttpClient gp(g.gateway->port(), bearer(g.gp));
  const std::string id = register_patient(gp, "Observed", true);
  const auto r = gp.send_json(
      "POST", "/",
      R"({"resourceType":"Bundle","type":"transaction","entry":[{"resource":{"resourceType":"Observation","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"8867-4"}]},"subject":{"reference":"Patient/)" +
          id +
          R"("},"valueQuantity":{"value":72,"unit":"/min","system":"http://unitsofmeasure.org","code":"/min"}},"request":{"method":"POST","url":"Observation"}}]})");
  REQUIRE_MESSAGE(r.status == 200, r.body);
  const auto answer = json(r.body);
  CHECK(text_at(answer, "entry[0].response.status") == "202 Accepted");
  CHECK(text_at(answer, "entry[0].response.outcome.issue[0].diagnostics").find("routed, not stored") !=
        std::string::npos);

  REQUIRE(trust.wait_for_requests(2, std::chrono::seconds(5)));  // the Patient, then the Observation
  std::optional<FakePartner::Request> observation;
  for (const auto& req : trust.requests())
    if (req.target.rfind("/Observation/", 0) == 0) observation = req;
  REQUIRE(observation);
  CHECK(observation->method == "PUT");
  const auto body = json(observation->body);
  CHECK(body.string_at("resourceType") == "Observation");
  CHECK(observation->target == "/Observation/" + std::string(body.string_at("id")));
  CHECK(text_at(body, "subject.reference") == "Patient/" + id);
  const auto row = g.settled("Observation/" + std::string(body.string_at("id")), "acute-trust");
  REQUIRE(row);
  CHECK(row->string_at("status") == "delivered");
  CHECK(row->string_at("patient") == "Patient/" + id);
  CHECK(dropped(g.drop, "-Observation-").size() == 1);
}

}  // namespace
}  // namespace fhirgate::testing
