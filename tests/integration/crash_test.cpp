// Crash consistency (issue 10): the gateway under concurrent writes (REST creates, transaction Bundles,
// HL7 v2 over MLLP) and audited reads is killed with SIGKILL at random moments, again and again, and
// restarted on the same database. After each kill: every acknowledged write is there (201, a
// transaction-response, an ACK CA); every answered read has its AuditEvent (issue 18: reads' events are
// in the audit log file until moved into the tables, so the kill usually finds some there, and
// `audit verify` runs on what the kill left, before a restart moves them); no transaction is
// half-applied; the outbox holds exactly one delivery per committed version that a route matches; the
// audit chain verifies; SQLite's integrity check is ok.
// CRASH_ITERATIONS (default 4) sets how many kills.
#include <doctest/doctest.h>
#include <signal.h>
#include <sqlite3.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/common.hpp"
#include "tests/support/mllp_client.hpp"

namespace fhirgate::testing {
namespace {

// NHS numbers (Modulus 11) from a running counter, so every HL7 v2 message is a new patient.
std::string nhs_number(long long n) {
  for (long long stem = 900000000 + n * 7;; ++stem) {
    const std::string digits = std::to_string(stem);
    int sum = 0;
    for (int i = 0; i < 9; ++i) sum += (digits[static_cast<std::size_t>(i)] - '0') * (10 - i);
    const int check = 11 - sum % 11;
    if (check == 10) continue;
    return digits + std::to_string(check == 11 ? 0 : check);
  }
}

// What the gateway acknowledged, across all runs.
struct Acknowledged {
  std::mutex mutex;
  std::vector<std::string> rest;                                  // Patient ids
  std::vector<std::pair<std::string, std::string>> transactions;  // Patient id, Consent id
  std::vector<std::string> v2;                                    // NHS numbers
};

std::int64_t scalar(sqlite3* db, const std::string& sql) {
  sqlite3_stmt* stmt = nullptr;
  REQUIRE_MESSAGE(sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr) == SQLITE_OK, sql);
  REQUIRE(sqlite3_step(stmt) == SQLITE_ROW);
  const auto v = sqlite3_column_int64(stmt, 0);
  sqlite3_finalize(stmt);
  return v;
}

TEST_CASE(
    "crash: SIGKILL under concurrent writes loses no acknowledged write and leaves a consistent store") {
  const int iterations = std::getenv("CRASH_ITERATIONS") ? std::atoi(std::getenv("CRASH_ITERATIONS")) : 4;
  const std::string dir = temp_dir();
  const std::string config = dir + "/gateway.json";
  std::ofstream(config) << R"({
  "security": {"enabled": true, "consentPolicy": "opt-out"},
  "profilesDir": ")" + source_path("profiles") +
                               R"(",
  "delivery": {"maxAttempts": 1000, "baseDelayMs": 200, "maxDelayMs": 1000},
  "partners": [
    {"id": "gp-practice", "name": "GP", "odsCode": "Y12345", "consentRegistrar": true,
     "access": {"Patient": ["create", "read", "search-type"], "Consent": ["create", "read", "search-type"]},
     "inbound": ["fhir-rest", "hl7v2-mllp"]},
    {"id": "acute-trust", "name": "Trust", "odsCode": "RX1", "endpoint": {"fhirBaseUrl": "http://127.0.0.1:9", "timeoutMs": 200}}],
  "mllp": {"listeners": [{"port": 0, "partner": "gp-practice"}]},
  "routes": [{"id": "patients", "from": "gp-practice", "types": ["Patient"], "to": ["acute-trust"]}]
})";
  const std::string gp = new_token(config, dir, "gp-practice");
  std::ifstream file(source_path("tests/data/adt_a01.hl7"));
  std::string adt((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  for (auto& c : adt)
    if (c == '\n') c = '\r';
  const auto nhs_at = adt.find("9434765919");
  const auto control_at = adt.find("MSG00001");
  const auto local_at = adt.find("RX1-0042731");  // the hospital number: unique too, or it matches

  // The Patient the readers read, created (and the gateway stopped cleanly) before the kills begin.
  std::string read_target;
  {
    GatewayProcess gateway({"--config", config}, dir);
    HttpClient http(gateway.port(), bearer(gp));
    const auto r =
        http.send_json("POST", "/Patient", R"({"resourceType":"Patient","name":[{"family":"Read"}]})");
    REQUIRE(r.status == 201);
    read_target = json(r.body).string_at("id");
    CHECK(gateway.stop() == 0);
  }
  std::atomic<long long> reads_answered{0};
  int kills_with_logged_events = 0;

  Acknowledged acked;
  std::atomic<long long> counter{0};
  std::mt19937 random(12345);
  for (int run = 0; run < iterations; ++run) {
    GatewayProcess gateway({"--config", config}, dir);
    std::atomic<bool> stop{false};
    // Runs `step` until it says no or throws: the gateway was killed mid-request.
    auto until_killed = [&stop](auto step) {
      return [&stop, step]() mutable {
        try {
          while (!stop && step()) {
          }
        } catch (const std::exception&) {
        }
      };
    };
    std::vector<std::thread> load;
    for (int t = 0; t < 2; ++t) {
      load.emplace_back(until_killed([&, http = std::make_shared<HttpClient>(gateway.port(), bearer(gp))] {
        const auto r = http->send_json(
            "POST", "/Patient",
            R"({"resourceType":"Patient","name":[{"family":"R)" + std::to_string(counter++) + R"("}]})");
        if (r.status != 201) return false;
        std::lock_guard lock(acked.mutex);
        acked.rest.emplace_back(json(r.body).string_at("id"));
        return true;
      }));
    }
    // Transactions: a Patient and its Consent, or neither.
    load.emplace_back(until_killed([&, http = std::make_shared<HttpClient>(gateway.port(), bearer(gp))] {
      const auto r = http->send_json(
          "POST", "/",
          R"({"resourceType":"Bundle","type":"transaction","entry":[{"fullUrl":"urn:uuid:7a7a7a7a-0000-4000-8000-000000000001","resource":{"resourceType":"Patient","name":[{"family":"T)" +
              std::to_string(counter++) +
              R"("}]},"request":{"method":"POST","url":"Patient"}},{"resource":{"resourceType":"Consent","status":"active","scope":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/consentscope","code":"patient-privacy"}]},"category":[{"coding":[{"system":"http://loinc.org","code":"59284-0"}]}],"patient":{"reference":"urn:uuid:7a7a7a7a-0000-4000-8000-000000000001"},"dateTime":"2026-01-01","policyRule":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"OPTIN"}]},"provision":{"type":"permit"}},"request":{"method":"POST","url":"Consent"}}]})");
      if (r.status != 200) return false;
      const auto answer = json(r.body);
      auto id_of = [&](const std::string& at) {
        const std::string location = text_at(answer, at);
        const auto slash = location.find('/');
        return location.substr(slash + 1, location.find("/_history") - slash - 1);
      };
      std::lock_guard lock(acked.mutex);
      acked.transactions.emplace_back(id_of("entry[0].response.location"),
                                      id_of("entry[1].response.location"));
      return true;
    }));
    // Audited reads, on two connections: each 200 is a promise that its AuditEvent is durable.
    for (int t = 0; t < 2; ++t) {
      load.emplace_back(until_killed([&, http = std::make_shared<HttpClient>(gateway.port(), bearer(gp))] {
        if (http->get("/Patient/" + read_target).status != 200) return false;
        ++reads_answered;
        return true;
      }));
    }
    // HL7 v2 over MLLP, each message a new patient.
    load.emplace_back(until_killed([&, mllp = std::make_shared<MllpClient>(gateway.mllp_port())] {
      const auto n = counter++;
      std::string message = adt;
      const std::string nhs = nhs_number(n);
      message.replace(nhs_at, 10, nhs);
      message.replace(local_at, 11, "RX1-" + std::to_string(n + 1000000));
      message.replace(control_at, 8, "C" + std::to_string(n + 1000000));
      if (!mllp->try_send(frame(message))) return false;
      if (mllp->read_frame().find("MSA|CA") == std::string::npos) return false;
      std::lock_guard lock(acked.mutex);
      acked.v2.push_back(nhs);
      return true;
    }));
    std::this_thread::sleep_for(std::chrono::milliseconds(200 + random() % 600));
    CHECK(gateway.stop(SIGKILL) == -SIGKILL);
    stop = true;
    for (auto& t : load) t.join();
    // What the kill left, before a restart moves the logged events: the chain runs through both places.
    std::error_code ec;
    std::uintmax_t logged_bytes = 0;
    for (const char* log_file : {"/fhirgate.db.audit-log", "/fhirgate.db.audit-log.2"}) {
      const auto size = std::filesystem::file_size(dir + log_file, ec);
      if (!ec) logged_bytes += size;
    }
    if (logged_bytes > 0) ++kills_with_logged_events;
    const Run verify = run_fhirgate("audit verify --config " + config + " --db " + dir + "/fhirgate.db");
    CHECK_MESSAGE(verify.status == 0, "after kill ", run, ": ", verify.out, verify.err);
  }

  // After the last kill: start once more and check everything acknowledged is there.
  {
    GatewayProcess gateway({"--config", config}, dir);
    HttpClient http(gateway.port(), bearer(gp));
    MESSAGE(acked.rest.size() << " creates, " << acked.transactions.size() << " transactions and "
                              << acked.v2.size() << " HL7 v2 messages acknowledged over " << iterations
                              << " kills");
    CHECK(acked.rest.size() + acked.transactions.size() + acked.v2.size() > 0);
    for (const auto& id : acked.rest) CHECK_MESSAGE(http.get("/Patient/" + id).status == 200, id);
    for (const auto& [patient, consent] : acked.transactions) {
      CHECK(http.get("/Patient/" + patient).status == 200);
      CHECK(http.get("/Consent/" + consent).status == 200);
    }
    for (const auto& nhs : acked.v2)
      CHECK_MESSAGE(text_at(json(http.get("/Patient?identifier=https://fhir.nhs.uk/Id/nhs-number|" + nhs +
                                          "&_summary=count")
                                     .body),
                            "total") == "1",
                    nhs);
    CHECK(gateway.stop() == 0);
  }
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open_v2((dir + "/fhirgate.db").c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
  sqlite3_stmt* check = nullptr;
  REQUIRE(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &check, nullptr) == SQLITE_OK);
  REQUIRE(sqlite3_step(check) == SQLITE_ROW);
  CHECK(std::string(reinterpret_cast<const char*>(sqlite3_column_text(check, 0))) == "ok");
  sqlite3_finalize(check);
  // No half transaction: every Patient of a transaction (family T...) has its Consent.
  CHECK(
      scalar(
          db,
          "SELECT count(*) FROM resource r JOIN resource_version v ON v.vid = r.vid WHERE r.type = 'Patient' "
          "AND json_extract(v.body, '$.name[0].family') LIKE 'T%' AND NOT EXISTS (SELECT 1 FROM resource c "
          "JOIN resource_version cv ON cv.vid = c.vid WHERE c.type = 'Consent' AND "
          "json_extract(cv.body, '$.patient.reference') = 'Patient/' || r.id)") == 0);
  // The outbox: one delivery per Patient version, none for a version that does not exist.
  CHECK(scalar(db,
               "SELECT count(*) FROM resource_version v JOIN resource r ON r.rid = v.rid WHERE v.type = "
               "'Patient' AND "
               "(SELECT count(*) FROM delivery d WHERE d.type = 'Patient' AND d.resource_id = r.id AND "
               "d.version = v.version) <> 1") == 0);
  CHECK(scalar(db,
               "SELECT count(*) FROM delivery d WHERE NOT EXISTS (SELECT 1 FROM resource r JOIN "
               "resource_version v ON "
               "v.rid = r.rid WHERE r.type = d.type AND r.id = d.resource_id AND v.version = d.version)") ==
        0);
  CHECK(scalar(db, "SELECT count(*) FROM resource WHERE type = 'Patient'") >=
        static_cast<std::int64_t>(acked.rest.size() + acked.transactions.size() + acked.v2.size()));
  // Every answered read has its AuditEvent (the final clean stop moved them all into the table).
  MESSAGE(reads_answered.load() << " audited reads answered; " << kills_with_logged_events << " of "
                                << iterations << " kills found AuditEvents still in the audit log file");
  CHECK(reads_answered > 0);
  CHECK(kills_with_logged_events > 0);
  CHECK(scalar(db, "SELECT count(*) FROM audit_event WHERE action = 'R' AND entity LIKE 'Patient/" +
                       read_target + "%'") >= reads_answered.load());
  sqlite3_close(db);
  const Run verify = run_fhirgate("audit verify --config " + config + " --db " + dir + "/fhirgate.db");
  CHECK_MESSAGE(verify.status == 0, verify.out, verify.err);
}

}  // namespace
}  // namespace fhirgate::testing
