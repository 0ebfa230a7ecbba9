// Issue 17, rule 9: nothing is kept that need not be. An unauthenticated request leaves an AuditEvent with
// its method and path only (not its query, not its body), a log line and a metric, and nothing else: no
// journal entry, no payload anywhere. Feed files in done/ and failed/ go once older than the retention.
// And what a client sent in an invalid field is named, never quoted, in the log, /_ops/stats and /metrics.
#include <filesystem>

#include "tests/security/common.hpp"

namespace fhirgate::testing::security {
namespace {

namespace fs = std::filesystem;

// A marker no other request holds: letters and digits only, so that it survives every encoding unchanged.
std::string marker(const std::string& stem) {
  return unique_name(stem) + "Mk" + std::to_string(::getpid());
}

const char* kClientsHeader =
    "Client ID,NHS Number,Surname,Forename,Date of Birth,Sex,Address Line 1,Town,Postcode,Status\r\n";

TEST_CASE(
    "rule 9: an unauthenticated request leaves an AuditEvent of its method and path, and no payload "
    "anywhere") {
  Partnership p;
  const std::string secret = marker("Anon");
  HttpClient anonymous(p.port());
  const std::string forged = "fg_0123456789abcdef_" + std::string(43, 'A');

  struct Attempt {
    std::string path;  // as the AuditEvent should name it
    Response response;
  };
  std::vector<Attempt> attempts;
  auto send = [&](const std::string& method, const std::string& path, const std::string& query,
                  const std::string& body, const std::string& content_type, const std::string& token) {
    std::vector<std::pair<std::string, std::string>> headers = {{"Content-Type", content_type}};
    if (!token.empty()) headers.emplace_back("Authorization", "Bearer " + token);
    const auto r = anonymous.request(method, path + "?" + query, body, headers);
    CHECK_MESSAGE(r.status == 401, method, " ", path, " -> ", r.status);
    attempts.push_back({path, r});
  };
  // No token, and a forged one; a create, a transaction, a message, an update, an HL7 v2 message, a feed.
  send("POST", "/Patient", "note=" + secret, patient_json(secret, nhs_number(901)), "application/fhir+json",
       "");
  send("POST", "/Patient", "note=" + secret, patient_json(secret, nhs_number(902)), "application/fhir+json",
       forged);
  send("POST", "/", "_format=json&note=" + secret,
       R"({"resourceType":"Bundle","type":"transaction","entry":[{"resource":)" + patient_json(secret) +
           R"(,"request":{"method":"POST","url":"Patient"}}]})",
       "application/fhir+json", "");
  send("POST", "/$process-message", "note=" + secret,
       R"({"resourceType":"Bundle","id":")" + secret + R"(","type":"message","entry":[]})",
       "application/fhir+json", forged);
  send("PUT", "/Patient/unauthenticated-put", "note=" + secret,
       patient_json(secret, "", "unauthenticated-put"), "application/fhir+json", "");
  send("POST", "/$ingest", "note=" + secret, adt("A01", secret, "GP1", nhs_number(903), secret),
       "x-application/hl7-v2+er7", "");
  send("POST", "/$ingest", "feed=clients&note=" + secret,
       std::string(kClientsHeader) + "WSC-1,999 990 0011," + secret +
           ",Ann,01/02/1950,F,1 Road,Town,WS1 1AA,Active\r\n",
       "text/csv", forged);

  // No journal entry for any of them, and nothing in the journal holds the marker.
  auto ops = p.client("operator");
  for (const auto& attempt : attempts) {
    const auto entries = ops->get("/_ops/journal?correlation=" + attempt.response.header("X-Correlation-Id"));
    REQUIRE(entries.status == 200);
    CHECK_MESSAGE(json(entries.body).find("entries")->items().empty(), attempt.path, " was journaled");
  }
  const auto journal = ops->get("/_ops/journal?_count=1000");
  REQUIRE(journal.status == 200);
  CHECK(journal.body.find(secret) == std::string::npos);
  const auto listed = json(journal.body);
  for (const auto& e : listed.find("entries")->items()) {
    const auto entry = ops->get("/_ops/journal/" + e.find("id")->text());
    CHECK_MESSAGE(entry.body.find(secret) == std::string::npos, "journal entry ", e.find("id")->text(),
                  " keeps what an unauthenticated caller sent");
  }
  // Nor the database (its file and its write-ahead log), nor the log.
  const std::string stored = file_bytes(p.db()) + file_bytes(p.db() + "-wal");
  CHECK_MESSAGE(stored.find(secret) == std::string::npos,
                "the database holds what an unauthenticated caller sent");
  const std::string log = p.gateway->stderr_text();
  CHECK(log.find(secret) == std::string::npos);

  // What is kept instead: a log line for each, and the refusals counted.
  for (const auto& attempt : attempts)
    CHECK_MESSAGE(log.find(attempt.response.header("X-Correlation-Id")) != std::string::npos,
                  "no log line for ", attempt.path);
  const auto metrics = ops->get("/metrics");
  REQUIRE(metrics.status == 200);
  CHECK(metrics.body.find("code=\"401\"") != std::string::npos);

  // The privacy officer finds each one: agent "unauthenticated", refused, its path, nothing of the marker.
  auto officer = p.client("privacy-officer");
  const auto trail = audit_events(*officer, "/AuditEvent?_count=1000");
  for (const auto& attempt : attempts) {
    CAPTURE(attempt.path);
    const std::string correlation = attempt.response.header("X-Correlation-Id");
    REQUIRE_FALSE(correlation.empty());
    const fhir::Node* event = nullptr;
    for (const auto& e : trail)
      if (correlation_of(e) == correlation) event = &e;
    REQUIRE_MESSAGE(event != nullptr, "no AuditEvent for the refused request ", correlation);
    CHECK(requested_by(*event, "unauthenticated"));
    CHECK(event->string_at("outcome") != "0");
    const std::string said = audit_text(*event);
    CHECK_MESSAGE(said.find(attempt.path) != std::string::npos,
                  "the event does not name the path: ", said.substr(0, 300));
    CHECK_MESSAGE(said.find(secret) == std::string::npos, "the event keeps what was sent");
  }
}

// Sets a file's modification time `days` days in the past.
void age(const std::string& path, int days) {
  fs::last_write_time(path, fs::file_time_type::clock::now() - std::chrono::hours(24 * days));
}

TEST_CASE("rule 9: feed files in done/ and failed/ older than the retention are deleted, newer ones kept") {
  Partnership p([](std::string config) {
    const std::string setting = R"("journal": {"payloadRetentionDays": 2},)";
    config.insert(config.find('{') + 1, setting);
    return config;
  });
  const std::string folder = p.dir + "/inbound/clients";
  // The gateway made done/ and failed/; stopped, it is given files from days ago, then started again.
  REQUIRE(fs::is_directory(folder + "/done"));
  REQUIRE(fs::is_directory(folder + "/failed"));
  REQUIRE(p.gateway->stop() == 0);
  const std::string row =
      std::string(kClientsHeader) + "WSC-1,999 990 0011,Old,Ann,01/02/1950,F,1 Road,Town,WS1 1AA,Active\r\n";
  const std::vector<std::string> old_files = {
      folder + "/done/2026-01-01-clients.csv", folder + "/done/2026-01-01-clients.csv.result.csv",
      folder + "/failed/2026-01-02-clients.csv", folder + "/failed/2026-01-02-clients.csv.result.csv"};
  const std::vector<std::string> kept_files = {folder + "/done/yesterday-clients.csv",
                                               folder + "/failed/yesterday-clients.csv.result.csv"};
  for (const auto& f : old_files) {
    std::ofstream(f, std::ios::binary) << row;
    age(f, 5);
  }
  for (const auto& f : kept_files) {
    std::ofstream(f, std::ios::binary) << row;
    age(f, 1);
  }
  p.gateway = std::make_unique<GatewayProcess>(std::vector<std::string>{"--config", p.config}, p.dir);

  const bool purged = poll_until([&] {
    return std::none_of(old_files.begin(), old_files.end(),
                        [](const std::string& f) { return fs::exists(f); });
  });
  for (const auto& f : old_files) CHECK_MESSAGE(!fs::exists(f), f, " is older than the retention but kept");
  CHECK(purged);
  for (const auto& f : kept_files) CHECK_MESSAGE(fs::exists(f), f, " is within the retention but gone");
}

TEST_CASE("rule 9: a value sent in an invalid field is never quoted in the log, /_ops/stats or /metrics") {
  Partnership p;
  auto gp = p.client("gp-practice");
  auto trust = p.client("acute-trust");
  const std::string secret = marker("Val");

  // REST: create, update, transaction entry, FHIR message; invalid gender and invalid birthDate.
  const std::string bad_gender = R"("gender":"x)" + secret + R"(")";
  const std::string bad_birth = R"("birthDate":"19)" + secret + R"(")";
  auto invalid_patient = [&](const std::string& invalid, const std::string& id = {}) {
    return R"({"resourceType":"Patient",)" + (id.empty() ? std::string() : R"("id":")" + id + R"(",)") +
           R"("name":[{"family":"Invalid"}],)" + invalid + "}";
  };
  CHECK(gp->send_json("POST", "/Patient", invalid_patient(bad_gender)).status == 422);
  CHECK(gp->send_json("POST", "/Patient", invalid_patient(bad_birth)).status == 422);
  const std::string id = create_patient(*gp, "Valid", nhs_number(910));
  CHECK(gp->send_json("PUT", "/Patient/" + id, invalid_patient(bad_gender, id)).status == 422);
  CHECK(gp->send_json("POST", "/",
                      R"({"resourceType":"Bundle","type":"transaction","entry":[{"resource":)" +
                          invalid_patient(bad_birth) + R"(,"request":{"method":"POST","url":"Patient"}}]})")
            .status == 422);
  const auto message = gp->send_json(
      "POST", "/$process-message",
      R"({"resourceType":"Bundle","id":")" + unique_name("m") +
          R"(","type":"message","entry":[{"fullUrl":"urn:uuid:9a9a9a9a-0000-4000-8000-000000000001","resource":{"resourceType":"MessageHeader","eventCoding":{"system":"http://example.org/fhir/message-events","code":"admit-notification"},"source":{"endpoint":"http://gp.example/fhir"}}},{"fullUrl":"urn:uuid:9a9a9a9a-0000-4000-8000-000000000002","resource":)" +
          invalid_patient(bad_gender) + "}]}");
  REQUIRE(message.status == 200);
  CHECK(text_at(json(message.body), "entry[0].resource.response.code") == "fatal-error");

  // HL7 v2, over MLLP and over HTTP: the marker as the sex (PID-8) and the date of birth (PID-7).
  std::string v2 = adt("A01", unique_name("R9"), "GP1", nhs_number(911), "Invalidv");
  v2.replace(v2.find("||19700101|F\r"), 13, "||19" + secret + "|x" + secret + "\r");
  const std::string ack = send_v2(p.mllp_port(0), v2);
  CHECK_MESSAGE(ack.find("\rMSA|") != std::string::npos, ack);
  std::string v2_http = adt("A01", unique_name("R9"), "GP1", nhs_number(912), "Invalidh");
  v2_http.replace(v2_http.find("||19700101|F\r"), 13, "||19" + secret + "|x" + secret + "\r");
  CHECK(gp->request("POST", "/$ingest", v2_http, {{"Content-Type", "x-application/hl7-v2+er7"}}).status <
        500);

  // A feed row whose date of birth is the marker: rejected, and the file's other row taken.
  const auto feed =
      trust->request("POST", "/$ingest?feed=clients",
                     std::string(kClientsHeader) + "WSC-1,999 990 0011,Feedrow,Ann,19" + secret +
                         ",F,1 Road,Town,WS1 1AA,Active\r\n" +
                         "WSC-2,999 990 0089,Feedok,Bob,03/11/1952,M,2 Road,Town,WS1 1AB,Active\r\n",
                     {{"Content-Type", "text/csv"}});
  REQUIRE_MESSAGE(feed.status == 200, feed.body);
  CHECK_FALSE(text_at(json(feed.body), "entry[0].response.status").starts_with("2"));

  auto ops = p.client("operator");
  const auto stats = ops->get("/_ops/stats?window=600&bucket=60");
  REQUIRE(stats.status == 200);
  const auto in_stats = stats.body.find(secret);
  CHECK_MESSAGE(in_stats == std::string::npos, "/_ops/stats quotes a client's value: ",
                (in_stats == std::string::npos
                     ? ""
                     : stats.body.substr(in_stats - std::min<std::size_t>(in_stats, 200), 260)));
  const auto metrics = ops->get("/metrics");
  REQUIRE(metrics.status == 200);
  CHECK(metrics.body.find(secret) == std::string::npos);
  const std::string log = p.gateway->stderr_text();
  const auto at_log = log.find(secret);
  CHECK_MESSAGE(
      at_log == std::string::npos, "the log quotes a client's value: ",
      (at_log == std::string::npos ? "" : log.substr(at_log - std::min<std::size_t>(at_log, 200), 300)));
}

}  // namespace
}  // namespace fhirgate::testing::security
