// What operators see (issue 9, docs/operators.md): the message journal of every inbound request and
// message and every outbound delivery, with correlation ids that tie them to their AuditEvents; retrying
// and discarding from it; the dashboard's counts; /metrics; the JSON request log; and the CLI.
#include <doctest/doctest.h>

#include <chrono>
#include <fstream>
#include <optional>
#include <string>
#include <thread>

#include "tests/integration/common.hpp"
#include "tests/support/fake_partner.hpp"
#include "tests/support/mllp_client.hpp"

namespace fhirgate::testing {
namespace {

const std::string kPatient =
    R"({"resourceType":"Patient","identifier":[{"system":"https://fhir.nhs.uk/Id/nhs-number","value":"9434765919"}],"name":[{"family":"Journal"}],"gender":"female"})";

struct OpsGateway {
  std::string dir = temp_dir();
  std::string config = dir + "/gateway.json";
  std::string gp, operator_token;
  std::unique_ptr<GatewayProcess> gateway;
  explicit OpsGateway(const std::string& trust_url) {
    std::ofstream(config) << R"({
  "security": {"enabled": true, "consentPolicy": "opt-out"},
  "profilesDir": ")" + source_path("profiles") +
                                 R"(",
  "delivery": {"maxAttempts": 2, "baseDelayMs": 50, "maxDelayMs": 100},
  "partners": [
    {"id": "gp-practice", "name": "Riverside Medical Practice", "odsCode": "Y12345",
     "access": {"Patient": ["create", "update", "read"]}, "inbound": ["fhir-rest", "hl7v2-mllp"],
     "hl7v2": {"nhsNumberAuthority": "NHS"}},
    {"id": "acute-trust", "name": "Northfield Hospitals NHS Trust", "odsCode": "RX1",
     "endpoint": {"fhirBaseUrl": ")" +
                                 trust_url +
                                 R"(", "timeoutMs": 500}}
  ],
  "roles": [{"id": "operator", "name": "Operations", "role": "operator", "access": {}}],
  "mllp": {"listeners": [{"port": 0, "partner": "gp-practice"}]},
  "routes": [{"id": "to-trust", "from": "gp-practice", "types": ["Patient"], "to": ["acute-trust"]}]
})";
    gp = new_token(config, dir, "gp-practice");
    operator_token = new_token(config, dir, "operator");
    gateway = std::make_unique<GatewayProcess>(std::vector<std::string>{"--config", config}, dir);
  }
  fhir::Node ops(const std::string& target) {
    HttpClient http(gateway->port(), bearer(operator_token));
    const auto r = http.get(target);
    REQUIRE_MESSAGE(r.status == 200, target, " ", r.body);
    return json(r.body);
  }
  // The newest journal entry matching `query` once `done` holds for it.
  template <class Done>
  std::optional<fhir::Node> wait_entry(const std::string& query, Done done) {
    for (int i = 0; i < 100; ++i) {
      const auto list = ops("/_ops/journal?" + query);
      for (const auto& e : list.find("entries")->items())
        if (done(e)) return e;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return std::nullopt;
  }
};

TEST_CASE("journal: a REST write, its delivery and its AuditEvent share one correlation id") {
  FakePartner trust;
  trust.set_mode(FakePartner::Mode::fail);
  OpsGateway g(trust.base_url());
  HttpClient gp(g.gateway->port(), bearer(g.gp));
  const auto created = gp.send_json("POST", "/Patient", kPatient, {{"X-Correlation-Id", "req-0001"}});
  REQUIRE(created.status == 201);
  CHECK(created.header("X-Correlation-Id") == "req-0001");
  const std::string id(json(created.body).string_at("id"));
  // A request without one gets one made up; an unusable one is replaced.
  CHECK(gp.get("/Patient/" + id).header("X-Correlation-Id").size() == 36);
  CHECK(gp.get("/Patient/" + id, {{"X-Correlation-Id", "no spaces allowed"}}).header("X-Correlation-Id") !=
        "no spaces allowed");

  const auto in = g.wait_entry("correlation=req-0001&direction=in", [](const fhir::Node&) { return true; });
  REQUIRE(in);
  CHECK(in->string_at("partner") == "gp-practice");
  CHECK(in->string_at("transport") == "http");
  CHECK(in->string_at("format") == "fhir-rest");
  CHECK(in->string_at("type") == "create Patient");
  CHECK(in->string_at("status") == "routed");  // stored, and a delivery recorded
  CHECK(text_at(*in, "resources[0]") == "Patient/" + id + "/_history/1");
  CHECK(text_at(*in, "stages[0].stage") == "received");
  CHECK(text_at(*in, "stages[2].stage") == "stored");
  CHECK(in->find("size")->text() == std::to_string(kPatient.size()));

  // The entry in full: the payload as received and the exchange's AuditEvent.
  const auto full = g.ops("/_ops/journal/" + in->find("id")->text());
  CHECK(full.string_at("payload") == kPatient);
  // The create's AuditEvent; the delivery's attempts carry the same correlation id, so theirs are listed
  // too once the worker has tried (a race with this request in a fast build).
  const fhir::Node* create_audit = nullptr;
  int creates = 0;
  for (const auto& event : full.find("auditEvents")->items()) {
    if (event.string_at("action") != "C") continue;
    create_audit = &event;
    ++creates;
  }
  REQUIRE(creates == 1);
  bool tagged = false;
  for (const auto& entity : create_audit->find("entity")->items())
    tagged = tagged || (entity.find("what") && text_at(entity, "what.identifier.value") == "req-0001");
  CHECK(tagged);

  // The delivery: its own entry, same correlation id, failing, then a dead letter with its attempts.
  const auto dead = g.wait_entry("correlation=req-0001&direction=out",
                                 [](const fhir::Node& e) { return e.string_at("status") == "dead-letter"; });
  REQUIRE(dead);
  CHECK(dead->string_at("partner") == "acute-trust");
  CHECK(dead->string_at("type") == "Patient/" + id + "/_history/1");
  CHECK(dead->string_at("error") == "HTTP 500");
  CHECK(text_at(*dead, "stages[0].stage") == "routed");
  CHECK(text_at(*dead, "stages[1].stage") == "attempt 1 failed");
  CHECK(text_at(*dead, "stages[2].stage") == "dead-letter (attempt 2 failed)");
  const auto sent = g.ops("/_ops/journal/" + dead->find("id")->text());
  CHECK(json(sent.string_at("payload").data()).string_at("id") == id);  // what was sent
  // The write's AuditEvent and one per delivery attempt.
  CHECK(sent.find("auditEvents")->items().size() == 3);

  // Retried from the journal: pending again, then delivered once the partner is back.
  trust.set_mode(FakePartner::Mode::ok);
  HttpClient ops(g.gateway->port(), bearer(g.operator_token));
  const auto retried = ops.request("POST", "/_ops/journal/" + dead->find("id")->text() + "/$retry");
  REQUIRE_MESSAGE(retried.status == 200, retried.body);
  CHECK(json(retried.body).string_at("status") != "dead-letter");
  const auto delivered = g.wait_entry("correlation=req-0001&direction=out", [](const fhir::Node& e) {
    return e.string_at("status") == "delivered";
  });
  REQUIRE(delivered);
  CHECK(ops.request("POST", "/_ops/journal/" + delivered->find("id")->text() + "/$retry").status == 409);

  // Refused requests are journaled too: rejected, with the reason.
  const auto invalid = gp.send_json("POST", "/Patient", R"({"resourceType":"Patient","gender":"sometimes"})");
  CHECK(invalid.status == 422);
  const auto rejected = g.ops("/_ops/journal?status=rejected");
  REQUIRE(rejected.find("entries")->items().size() == 1);
  CHECK(text_at(rejected, "entries[0].correlationId") == invalid.header("X-Correlation-Id"));
  CHECK_FALSE(text_at(rejected, "entries[0].error").empty());
  // A REST request is its sender's to send again; discarding it is the operator's.
  const std::string rejected_id = rejected.find("entries")->items()[0].find("id")->text();
  CHECK(ops.request("POST", "/_ops/journal/" + rejected_id + "/$retry").status == 409);
  const auto discarded = ops.request("DELETE", "/_ops/journal/" + rejected_id);
  REQUIRE(discarded.status == 200);
  CHECK(json(discarded.body).string_at("status") == "discarded");
  CHECK(ops.request("DELETE", "/_ops/journal/" + rejected_id).status == 409);

  // Reads carry no data in: not journaled. Partners may not look; bad parameters are named.
  CHECK(g.ops("/_ops/journal?direction=in").find("entries")->items().size() == 2);
  CHECK(gp.get("/_ops/journal").status == 403);
  CHECK(ops.get("/_ops/journal?colour=red").status == 400);
  CHECK(ops.get("/_ops/journal?direction=sideways").status == 400);
  CHECK(ops.get("/_ops/journal/999999").status == 404);
  const auto page = g.ops("/_ops/journal?_count=1");
  REQUIRE(page.find("entries")->items().size() == 1);
  CHECK(page.string_at("next").find("before=") != std::string::npos);

  // The request log: one JSON line per request, with the correlation id.
  CHECK(g.gateway->stderr_text().find(R"("event":"request")") != std::string::npos);
  CHECK(g.gateway->stderr_text().find(R"("correlationId":"req-0001")") != std::string::npos);
}

TEST_CASE("journal: HL7 v2 over MLLP is journaled; a rejected message is retried and discarded from it") {
  FakePartner trust;
  OpsGateway g(trust.base_url());
  MllpClient mllp(g.gateway->mllp_port());
  std::ifstream file(source_path("tests/data/adt_a01.hl7"));
  std::string adt((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  for (auto& c : adt)
    if (c == '\n') c = '\r';
  mllp.send_raw(frame(adt));
  REQUIRE(mllp.read_frame().find("MSA|CA") != std::string::npos);
  const auto stored = g.wait_entry("partner=gp-practice",
                                   [](const fhir::Node& e) { return e.string_at("transport") == "mllp"; });
  REQUIRE(stored);
  CHECK(stored->string_at("format") == "hl7v2");
  CHECK(stored->string_at("type") == "ADT^A01");
  CHECK(stored->string_at("status") == "routed");
  CHECK(text_at(*stored, "resources[0]").rfind("Patient/", 0) == 0);
  CHECK(text_at(*stored, "stages[1].stage") == "mapped");

  // Without a PID: rejected (AE), kept with its payload; a retry processes it again (a new entry naming
  // the first), and it can then be discarded.
  std::string broken = adt.substr(0, adt.find("\rPID|")) + "\r";
  for (auto pos = broken.find("MSG00001"); pos != std::string::npos; pos = broken.find("MSG00001"))
    broken.replace(pos, 8, "MSG00002");
  mllp.send_raw(frame(broken));
  REQUIRE(mllp.read_frame().find("MSA|C") != std::string::npos);
  const auto rejected = g.wait_entry("status=rejected", [](const fhir::Node&) { return true; });
  REQUIRE(rejected);
  CHECK(rejected->string_at("transport") == "mllp");
  CHECK_FALSE(rejected->string_at("error").empty());
  HttpClient ops(g.gateway->port(), bearer(g.operator_token));
  const std::string first = rejected->find("id")->text();
  const auto retried = ops.request("POST", "/_ops/journal/" + first + "/$retry");
  REQUIRE_MESSAGE(retried.status == 200, retried.body);
  const auto again = json(retried.body);
  CHECK(again.find("retryOf")->text() == first);
  CHECK(again.string_at("status") == "rejected");  // still no PID
  CHECK(again.string_at("correlationId") != rejected->string_at("correlationId"));
  CHECK(json(ops.request("DELETE", "/_ops/journal/" + first).body).string_at("status") == "discarded");

  // The dashboard's counts: per partner and bucket, by status, the latest errors, the queues.
  const auto stats = g.ops("/_ops/stats?window=600&bucket=60");
  CHECK(stats.find("bucketSeconds")->text() == "60");
  std::int64_t gp_in = 0;
  for (const auto& p : stats.find("partners")->items()) {
    CHECK(p.find("in")->items().size() == 10);
    if (p.string_at("partner") == "gp-practice")
      for (const auto& n : p.find("in")->items()) gp_in += std::stoll(n.text());
  }
  CHECK(gp_in == 3);
  CHECK(stats.find("byStatus")->find("discarded")->text() == "1");
  CHECK(stats.find("byStatus")->find("rejected")->text() == "1");
  CHECK(text_at(stats, "latestErrors[0].status") == "rejected");
  REQUIRE(stats.find("queues")->items().size() == 1);  // every destination, empty ones too
  CHECK(text_at(stats, "queues[0].destination") == "acute-trust");
  CHECK(ops.get("/_ops/stats?window=0").status == 400);

  // The command line, over the same database.
  const std::string cli = "--config " + g.config + " --db " + g.dir + "/fhirgate.db";
  const Run tail = run_fhirgate("ops tail --limit 2 " + cli);
  CHECK(tail.status == 0);
  CHECK(tail.out.find("in  gp-practice  mllp/hl7v2  ADT^A01") != std::string::npos);
  const Run stats_cli = run_fhirgate("ops stats " + cli);
  CHECK(stats_cli.status == 0);
  CHECK(stats_cli.out.find("gp-practice\t3\t") != std::string::npos);
  CHECK(stats_cli.out.find("discarded\t1") != std::string::npos);
}

TEST_CASE("metrics: Prometheus text for operators: requests, messages, consent, commits, queues, memory") {
  FakePartner trust;
  trust.set_mode(FakePartner::Mode::hang);  // deliveries stay queued
  OpsGateway g(trust.base_url());
  HttpClient gp(g.gateway->port(), bearer(g.gp));
  REQUIRE(gp.send_json("POST", "/Patient", kPatient).status == 201);
  REQUIRE(gp.send_json("POST", "/Patient", R"({"resourceType":"Patient","gender":"x"})").status == 422);
  CHECK(gp.get("/metrics").status == 403);
  HttpClient ops(g.gateway->port(), bearer(g.operator_token));
  const auto r = ops.get("/metrics");
  REQUIRE(r.status == 200);
  CHECK(r.header("Content-Type").find("text/plain; version=0.0.4") == 0);
  const std::string& m = r.body;
  CHECK(m.find(R"(fhirgate_http_requests_total{interaction="create",resource="Patient",code="201"} 1)") !=
        std::string::npos);
  CHECK(m.find(R"(fhirgate_http_requests_total{interaction="create",resource="Patient",code="422"} 1)") !=
        std::string::npos);
  CHECK(m.find(R"(fhirgate_http_request_duration_seconds_bucket{interaction="create",le="+Inf"} 2)") !=
        std::string::npos);
  CHECK(m.find(R"(fhirgate_messages_total{partner="gp-practice",direction="in",status="routed"} 1)") !=
        std::string::npos);
  CHECK(m.find(R"(fhirgate_messages_total{partner="gp-practice",direction="in",status="rejected"} 1)") !=
        std::string::npos);
  CHECK(m.find(R"(fhirgate_validation_failures_total{resource="Patient"} 1)") != std::string::npos);
  CHECK(m.find("fhirgate_sqlite_commit_seconds_count") != std::string::npos);
  CHECK(m.find(R"(fhirgate_delivery_queue_depth{destination="acute-trust"} 1)") != std::string::npos);
  CHECK(m.find("fhirgate_process_resident_memory_bytes ") != std::string::npos);
  CHECK(m.find("fhirgate_http_open_connections ") != std::string::npos);
  // A read of the Patient asks consent as the trust would not: the gp supplied it. A consent decision
  // is counted when one is made from Consents.
  CHECK(m.find("# TYPE fhirgate_consent_decisions_total counter") != std::string::npos);

  // The dashboard's files are open (they hold no data).
  HttpClient anyone(g.gateway->port());
  const auto page = anyone.get("/_ops/");
  CHECK(page.status == 200);
  CHECK(page.header("Content-Type").find("text/html") == 0);
  CHECK(anyone.get("/_ops/app.js").status == 200);
  const auto bare = anyone.get("/_ops");
  CHECK(bare.status == 301);
  CHECK(bare.header("Location") == "/_ops/");
  CHECK(anyone.get("/_ops/journal").status == 401);
  CHECK(anyone.get("/_ops/nothing-here.js").status == 401);
}

}  // namespace
}  // namespace fhirgate::testing
