// Outbound routing, first part: the deliveries a write causes are recorded in the write's own commit
// (the outbox), listed for operators; routes match the writing partner and the resource type.
#include <doctest/doctest.h>

#include <fstream>
#include <memory>
#include <string>

#include "tests/integration/common.hpp"

namespace fhirgate::testing {
namespace {

std::string routing_config(const std::string& trust_endpoint) {
  return R"({
  "security": {"enabled": true, "consentPolicy": "opt-in"},
  "profilesDir": ")" +
         source_path("profiles") + R"(",
  "partners": [
    {"id": "gp-practice", "name": "Riverside Medical Practice", "odsCode": "Y12345",
     "access": {"Patient": ["create", "update", "read"], "Consent": ["create"]}, "inbound": ["fhir-rest"]},
    {"id": "acute-trust", "name": "Northfield Hospitals NHS Trust", "odsCode": "RX1",
     "access": {"Patient": ["create", "read"]}, "inbound": ["fhir-rest"])" +
         trust_endpoint + R"(}
  ],
  "roles": [{"id": "operator", "name": "Operations", "role": "operator", "access": {}}],
  "routes": [{"id": "gp-patients-to-trust", "from": "gp-practice", "types": ["Patient"], "to": ["acute-trust"]}]
})";
}

struct RoutingGateway {
  std::string dir = temp_dir();
  std::string config = dir + "/gateway.json";
  std::string gp, trust, operator_token;
  std::unique_ptr<GatewayProcess> gateway;
  RoutingGateway() {
    std::ofstream(config) << routing_config(R"(, "endpoint": {"fhirBaseUrl": "http://127.0.0.1:9/fhir"})");
    gp = new_token(config, dir, "gp-practice");
    trust = new_token(config, dir, "acute-trust");
    operator_token = new_token(config, dir, "operator");
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
  CHECK(text_at(list, "deliveries[0].status") == "pending");
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
  CHECK(size_of(g.deliveries("?status=pending&destination=acute-trust&_count=3")) == 3);
  CHECK(size_of(g.deliveries("?status=dead")) == 0);
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
