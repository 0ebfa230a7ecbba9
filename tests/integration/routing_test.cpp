// Outbound routing, first part: the deliveries a write causes are recorded in the write's own commit
// (the outbox), listed for operators; routes match the writing partner and the resource type.
#include <doctest/doctest.h>

#include <chrono>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "tests/integration/common.hpp"
#include "tests/support/fake_partner.hpp"

namespace fhirgate::testing {
namespace {

std::string routing_config(const std::string& trust_endpoint, const std::string& extra = "") {
  return R"({)" + extra + R"(
  "security": {"enabled": true, "consentPolicy": "opt-in"},
  "profilesDir": ")" +
         source_path("profiles") + R"(",
  "partners": [
    {"id": "gp-practice", "name": "Riverside Medical Practice", "odsCode": "Y12345", "consentRegistrar": true,
     "access": {"Patient": ["create", "update", "read"], "Consent": ["create"]}, "inbound": ["fhir-rest"]},
    {"id": "acute-trust", "name": "Northfield Hospitals NHS Trust", "odsCode": "RX1",
     "access": {"Patient": ["create", "read"]}, "inbound": ["fhir-rest"])" +
         trust_endpoint + R"(}
  ],
  "roles": [{"id": "operator", "name": "Operations", "role": "operator", "access": {}},
            {"id": "privacy-officer", "name": "Privacy", "role": "privacy-officer",
             "access": {"AuditEvent": ["read", "search-type"]}}],
  "routes": [{"id": "gp-patients-to-trust", "from": "gp-practice", "types": ["Patient"], "to": ["acute-trust"]}]
})";
}

struct RoutingGateway {
  std::string dir = temp_dir();
  std::string config = dir + "/gateway.json";
  std::string gp, trust, operator_token, officer;
  std::unique_ptr<GatewayProcess> gateway;
  // Deliveries go to `trust_base_url` (a FakePartner) or, by default, to a port nobody listens on.
  explicit RoutingGateway(const std::string& trust_base_url = "http://127.0.0.1:9") {
    std::ofstream(config) << routing_config(
        R"(, "endpoint": {"fhirBaseUrl": ")" + trust_base_url + R"(/fhir", "timeoutMs": 500})",
        R"("delivery": {"maxAttempts": 3, "baseDelayMs": 50, "maxDelayMs": 200},)");
    gp = new_token(config, dir, "gp-practice");
    trust = new_token(config, dir, "acute-trust");
    operator_token = new_token(config, dir, "operator");
    officer = new_token(config, dir, "privacy-officer");
    start();
  }
  void start() {
    gateway = std::make_unique<GatewayProcess>(std::vector<std::string>{"--config", config}, dir);
  }
  fhir::Node deliveries(const std::string& query = "") {
    HttpClient http(gateway->port(), bearer(operator_token));
    const auto r = http.get("/_ops/deliveries" + query);
    REQUIRE_MESSAGE(r.status == 200, r.body);
    CHECK(r.header("Content-Type") == "application/json");
    return json(r.body);
  }
};

std::size_t size_of(const fhir::Node& list) {
  const auto* rows = list.find("deliveries");
  return rows ? rows->items().size() : 0;
}

const std::string kPatient = R"({"resourceType":"Patient","name":[{"family":"Routed"}],"gender":"female"})";

TEST_CASE("routing: a routed write records its delivery in the same commit; others record none") {
  RoutingGateway g;
  HttpClient gp(g.gateway->port(), bearer(g.gp));
  const auto created = gp.send_json("POST", "/Patient", kPatient);
  REQUIRE(created.status == 201);
  const std::string id = json(created.body).string_at("id").data();
  auto list = g.deliveries();
  REQUIRE(size_of(list) == 1);
  CHECK(text_at(list, "deliveries[0].destination") == "acute-trust");
  CHECK(text_at(list, "deliveries[0].route") == "gp-patients-to-trust");
  CHECK(text_at(list, "deliveries[0].resource") == "Patient/" + id + "/_history/1");
  CHECK(text_at(list, "deliveries[0].patient") == "Patient/" + id);
  CHECK(text_at(list, "deliveries[0].status") != "delivered");  // nobody listens at its endpoint
  CHECK(text_at(list, "deliveries[0].format") == "fhir-rest");

  // An update is delivered too (newest first).
  const auto updated = gp.send_json(
      "PUT", "/Patient/" + id,
      R"({"resourceType":"Patient","id":")" + id + R"(","name":[{"family":"Routed2"}],"gender":"female"})");
  REQUIRE(updated.status == 200);
  list = g.deliveries();
  REQUIRE(size_of(list) == 2);
  CHECK(text_at(list, "deliveries[0].resource") == "Patient/" + id + "/_history/2");

  // Not routed: a Consent (type), a Patient the trust writes itself (origin), a failed write.
  CHECK(
      gp.send_json(
            "POST", "/Consent",
            R"({"resourceType":"Consent","status":"active","scope":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/consentscope","code":"patient-privacy"}]},"category":[{"coding":[{"system":"http://loinc.org","code":"59284-0"}]}],"patient":{"reference":"Patient/)" +
                id +
                R"("},"dateTime":"2026-01-01","policyRule":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"OPTIN"}]},"provision":{"type":"permit"}})")
          .status == 201);
  HttpClient trust(g.gateway->port(), bearer(g.trust));
  CHECK(trust.send_json("POST", "/Patient", kPatient).status == 201);
  const auto failed = gp.send_json(
      "POST", "/",
      R"({"resourceType":"Bundle","type":"transaction","entry":[{"resource":)" + kPatient +
          R"(,"request":{"method":"POST","url":"Patient"}},{"resource":{"resourceType":"Patient","gender":"sometimes"},"request":{"method":"POST","url":"Patient"}}]})");
  CHECK(failed.status == 422);
  CHECK(size_of(g.deliveries()) == 2);

  // A transaction's Patients are each routed, in the transaction's commit.
  const auto txn =
      gp.send_json("POST", "/",
                   R"({"resourceType":"Bundle","type":"transaction","entry":[{"resource":)" + kPatient +
                       R"(,"request":{"method":"POST","url":"Patient"}},{"resource":)" + kPatient +
                       R"(,"request":{"method":"POST","url":"Patient"}}]})");
  CHECK(txn.status == 200);
  CHECK(size_of(g.deliveries()) == 4);
  CHECK(size_of(g.deliveries("?destination=acute-trust&_count=3")) == 3);
  CHECK(size_of(g.deliveries("?destination=gp-practice")) == 0);
}

// A transaction registering a Patient (and, when `consent`, its Consent permitting the trust); its id.
std::string register_patient(HttpClient& gp, const std::string& family, bool consent) {
  std::string entries =
      R"({"fullUrl":"urn:uuid:5e5e5e5e-0000-4000-8000-000000000001","resource":{"resourceType":"Patient","name":[{"family":")" +
      family + R"("}],"gender":"female"},"request":{"method":"POST","url":"Patient"}})";
  if (consent)
    entries +=
        R"(,{"resource":{"resourceType":"Consent","status":"active","scope":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/consentscope","code":"patient-privacy"}]},"category":[{"coding":[{"system":"http://loinc.org","code":"59284-0"}]}],"patient":{"reference":"urn:uuid:5e5e5e5e-0000-4000-8000-000000000001"},"dateTime":"2026-01-01","policyRule":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"OPTIN"}]},"provision":{"type":"permit","actor":[{"role":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v3-ParticipationType","code":"IRCP"}]},"reference":{"reference":"Organization/acute-trust"}}]}},"request":{"method":"POST","url":"Consent"}})";
  const auto r = gp.send_json("POST", "/",
                              R"({"resourceType":"Bundle","type":"transaction","entry":[)" + entries + "]}");
  REQUIRE_MESSAGE(r.status == 200, r.body);
  const std::string loc = text_at(json(r.body), "entry[0].response.location");
  return loc.substr(8, loc.find("/_history") - 8);
}

// Waits until the delivery of `resource` (Type/id/_history/v) has `status`; the row, or null.
std::optional<fhir::Node> wait_for_status(RoutingGateway& g, const std::string& resource,
                                          const std::string& status) {
  for (int i = 0; i < 100; ++i) {
    const auto list = g.deliveries("?_count=1000");
    if (const auto* rows = list.find("deliveries"))
      for (const auto& row : rows->items())
        if (row.string_at("resource") == resource && row.string_at("status") == status) return row;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return std::nullopt;
}

TEST_CASE(
    "delivery: a routed Patient is PUT to the receiving partner when its consent permits, withheld when "
    "not") {
  FakePartner trust;
  RoutingGateway g(trust.base_url());
  HttpClient gp(g.gateway->port(), bearer(g.gp));
  const std::string shared = register_patient(gp, "Shared", true);
  const auto delivered = wait_for_status(g, "Patient/" + shared + "/_history/1", "delivered");
  REQUIRE(delivered);
  CHECK(delivered->find("attempts")->text() == "1");
  REQUIRE(trust.wait_for_requests(1, std::chrono::seconds(5)));
  const auto sent = trust.requests().front();
  CHECK(sent.method == "PUT");
  CHECK(sent.target == "/fhir/Patient/" + shared);
  CHECK(json(sent.body).string_at("id") == shared);
  CHECK(text_at(json(sent.body), "name[0].family") == "Shared");

  const std::string private_id = register_patient(gp, "Private", false);  // opt-in policy, no consent
  const auto withheld = wait_for_status(g, "Patient/" + private_id + "/_history/1", "withheld");
  REQUIRE(withheld);
  CHECK(withheld->string_at("lastError").find("withheld by consent") != std::string::npos);
  CHECK(trust.requests().size() == 1);  // nothing left for the private Patient

  // Each attempt is audited, the withheld one as a minor failure.
  HttpClient officer(g.gateway->port(), bearer(g.officer));
  auto audited = [&](const std::string& id) {
    const auto r = officer.get("/AuditEvent?entity=Patient/" + id + "/_history/1");
    REQUIRE_MESSAGE(r.status == 200, r.body);
    return json(r.body);
  };
  CHECK(text_at(audited(shared), "entry[0].resource.outcome") == "0");
  CHECK(text_at(audited(private_id), "entry[0].resource.outcome") == "4");
}

TEST_CASE(
    "delivery: failures are retried with backoff in order, then dead-lettered; nothing is lost over a "
    "restart") {
  FakePartner trust;
  trust.fail_next(2);
  RoutingGateway g(trust.base_url());
  HttpClient gp(g.gateway->port(), bearer(g.gp));
  const std::string id = register_patient(gp, "Retried", true);
  // A second version while the first is being retried: sent after it.
  const auto v2 = gp.send_json(
      "PUT", "/Patient/" + id,
      R"({"resourceType":"Patient","id":")" + id + R"(","name":[{"family":"Retried2"}],"gender":"female"})");
  REQUIRE(v2.status == 200);
  const auto first = wait_for_status(g, "Patient/" + id + "/_history/1", "delivered");
  REQUIRE(first);
  CHECK(first->find("attempts")->text() == "3");  // 500, 500, 200
  REQUIRE(wait_for_status(g, "Patient/" + id + "/_history/2", "delivered"));
  const auto requests = trust.requests();
  REQUIRE(requests.size() == 4);
  CHECK(json(requests[2].body).find("meta")->string_at("versionId") == "1");
  CHECK(json(requests[3].body).find("meta")->string_at("versionId") == "2");
  CHECK(requests[1].at - requests[0].at >= std::chrono::milliseconds(20));  // backed off

  // The partner goes down: three attempts, then a dead letter naming the error.
  trust.stop();
  const std::string lost = register_patient(gp, "Unlucky", true);
  const auto dead = wait_for_status(g, "Patient/" + lost + "/_history/1", "dead");
  REQUIRE(dead);
  CHECK(dead->find("attempts")->text() == "3");
  CHECK_FALSE(dead->string_at("lastError").empty());

  // Operators retry a dead letter (a fresh round of attempts) or discard it.
  HttpClient ops(g.gateway->port(), bearer(g.operator_token));
  const std::string dead_id = dead->find("id")->text();
  CHECK(gp.request("POST", "/_ops/deliveries/" + dead_id + "/$retry").status == 403);
  const auto retried = ops.request("POST", "/_ops/deliveries/" + dead_id + "/$retry");
  REQUIRE_MESSAGE(retried.status == 200, retried.body);
  CHECK(json(retried.body).string_at("status") == "pending");
  const auto dead_again = wait_for_status(g, "Patient/" + lost + "/_history/1", "dead");
  REQUIRE(dead_again);
  CHECK(dead_again->find("attempts")->text() == "3");
  CHECK(json(ops.request("DELETE", "/_ops/deliveries/" + dead_id).body).string_at("status") == "discarded");
  CHECK(ops.request("DELETE", "/_ops/deliveries/" + dead_id).status == 409);
  const std::string delivered_id = first->find("id")->text();
  CHECK(ops.request("POST", "/_ops/deliveries/" + delivered_id + "/$retry").status == 409);
  CHECK(ops.request("POST", "/_ops/deliveries/999999/$retry").status == 404);
  CHECK(size_of(g.deliveries("?status=discarded")) == 1);

  // A delivery pending when the gateway stops is delivered after it starts again.
  std::uint16_t port = 0;
  {
    FakePartner placeholder;  // a free port, then nobody listening on it
    port = placeholder.port();
  }
  std::ofstream(g.config) << routing_config(
      R"(, "endpoint": {"fhirBaseUrl": "http://127.0.0.1:)" + std::to_string(port) +
          R"(/fhir", "timeoutMs": 500})",
      R"("delivery": {"maxAttempts": 50, "baseDelayMs": 1000, "maxDelayMs": 1000},)");
  g.gateway.reset();
  g.start();
  HttpClient gp2(g.gateway->port(), bearer(g.gp));
  const std::string later = register_patient(gp2, "Later", true);
  std::optional<fhir::Node> tried;
  for (int i = 0; i < 100 && !tried; ++i) {
    const auto row = wait_for_status(g, "Patient/" + later + "/_history/1", "pending");
    if (row && row->find("attempts")->text() != "0") tried = row;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  REQUIRE(tried);
  CHECK(g.gateway->stop(SIGTERM) == 0);
  FakePartner back(port);
  g.start();
  REQUIRE(wait_for_status(g, "Patient/" + later + "/_history/1", "delivered"));
  CHECK(back.requests().size() == 1);

  // The same from the command line (gateway stopped).
  CHECK(g.gateway->stop(SIGTERM) == 0);
  const std::string cli = "ops deliveries --config " + g.config + " --db " + g.dir + "/fhirgate.db";
  const Run discarded = run_fhirgate(cli + " --status discarded");
  CHECK(discarded.status == 0);
  CHECK(discarded.out.find(dead_id + "\t") == 0);
  CHECK(discarded.out.find("1 deliveries") != std::string::npos);
  const Run retry = run_fhirgate(cli + " --retry " + dead_id);
  CHECK(retry.status == 0);
  CHECK(retry.out.find("delivery " + dead_id + " is pending") != std::string::npos);
  const Run unknown = run_fhirgate(cli + " --discard 999999");
  CHECK(unknown.status == 1);
  CHECK(unknown.out.find("No delivery 999999") != std::string::npos);
}

TEST_CASE("delivery: a partner that does not answer is timed out and tried again on a new connection") {
  FakePartner trust;
  trust.set_mode(FakePartner::Mode::hang);
  RoutingGateway g(trust.base_url());
  HttpClient gp(g.gateway->port(), bearer(g.gp));
  const std::string id = register_patient(gp, "Patient", true);
  REQUIRE(trust.wait_for_requests(1, std::chrono::seconds(5)));
  trust.set_mode(FakePartner::Mode::ok);
  const auto row = wait_for_status(g, "Patient/" + id + "/_history/1", "delivered");
  REQUIRE(row);
  CHECK(row->find("attempts")->text() == "2");
  const auto requests = trust.requests();
  REQUIRE(requests.size() == 2);
  CHECK(requests[1].at - requests[0].at >= std::chrono::milliseconds(500));  // the timeout, then backoff
}

TEST_CASE("delivery: a partner that hangs holds up only its own deliveries") {
  FakePartner slow, quick;
  slow.set_mode(FakePartner::Mode::hang);
  const std::string dir = temp_dir();
  const std::string config = dir + "/gateway.json";
  std::ofstream(config) << R"({
  "security": {"enabled": true, "consentPolicy": "opt-out"},
  "profilesDir": ")" + source_path("profiles") +
                               R"(",
  "partners": [
    {"id": "gp-practice", "name": "GP", "odsCode": "Y12345", "access": {"Patient": ["create"]}},
    {"id": "acute-trust", "name": "Trust", "odsCode": "RX1",
     "endpoint": {"fhirBaseUrl": ")" +
                               slow.base_url() +
                               R"(", "timeoutMs": 3000}},
    {"id": "social-care", "name": "Council", "odsCode": "W00001",
     "endpoint": {"fhirBaseUrl": ")" +
                               quick.base_url() +
                               R"(", "timeoutMs": 3000}}],
  "routes": [{"id": "patients", "from": "gp-practice", "types": ["Patient"], "to": ["acute-trust", "social-care"]}]
})";
  const std::string gp = new_token(config, dir, "gp-practice");
  GatewayProcess gateway({"--config", config}, dir);
  HttpClient http(gateway.port(), bearer(gp));
  const auto start = std::chrono::steady_clock::now();
  REQUIRE(http.send_json("POST", "/Patient", kPatient).status == 201);
  REQUIRE(quick.wait_for_requests(1, std::chrono::seconds(2)));
  CHECK(std::chrono::steady_clock::now() - start <
        std::chrono::milliseconds(1500));  // not after the slow one's 3 s
  CHECK(slow.wait_for_requests(1, std::chrono::seconds(2)));
}

TEST_CASE("routing: the outbox is for operators; routes naming unknown partners or no endpoint are refused") {
  RoutingGateway g;
  HttpClient gp(g.gateway->port(), bearer(g.gp));
  CHECK(gp.get("/_ops/deliveries").status == 403);
  HttpClient ops(g.gateway->port(), bearer(g.operator_token));
  CHECK(ops.get("/_ops/deliveries?colour=red").status == 400);
  CHECK(ops.request("DELETE", "/_ops/deliveries").status == 405);

  const std::string dir = temp_dir();
  std::ofstream(dir + "/no-endpoint.json") << routing_config("");
  const Run r = run_fhirgate("serve --port 0 --config " + dir + "/no-endpoint.json --db " + dir + "/x.db");
  CHECK(r.status != 0);
  CHECK(r.err.find("has no endpoint.fhirBaseUrl") != std::string::npos);
}

}  // namespace
}  // namespace fhirgate::testing
