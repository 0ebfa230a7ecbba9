// Hostile clients (issue 10): each is bounded by a limit or a timeout, costs bounded memory, and leaves
// the gateway serving everyone else. (Slowloris, oversized headers and bodies with a Content-Length are in
// server_test.cpp.)
#include <doctest/doctest.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/common.hpp"
#include "tests/support/mllp_client.hpp"

namespace fhirgate::testing {
namespace {

// A gateway without security, with short timeouts and an MLLP listener.
struct HostileGateway {
  std::string dir = temp_dir();
  std::unique_ptr<GatewayProcess> gateway;
  HostileGateway() {
    std::ofstream(dir + "/gateway.json") << R"({"security": {"enabled": false},
      "server": {"headerTimeoutMs": 1000, "bodyTimeoutMs": 1000, "bodyLimitBytes": 1048576},
      "mllp": {"listeners": [{"port": 0, "partner": "gp"}], "idleTimeoutMs": 1000, "maxMessageBytes": 65536},
      "partners": [{"id": "gp", "name": "GP", "inbound": ["hl7v2-mllp"]}]})";
    gateway =
        std::make_unique<GatewayProcess>(std::vector<std::string>{"--config", dir + "/gateway.json"}, dir);
  }
  // A gauge from /metrics.
  double metric(const std::string& name) {
    HttpClient http(gateway->port());
    const std::string body = http.get("/metrics").body;
    const auto at = body.find("\n" + name + " ");
    REQUIRE_MESSAGE(at != std::string::npos, name);
    return std::stod(body.substr(at + name.size() + 2));
  }
  void serves_others() {
    HttpClient fine(gateway->port());
    const auto start = std::chrono::steady_clock::now();
    CHECK(fine.get("/metadata").status == 200);
    CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(2));
  }
};

TEST_CASE("hostile: a client that never reads its responses is dropped; memory stays bounded") {
  HostileGateway g;
  const double rss_before = g.metric("fhirgate_process_resident_memory_bytes");
  HttpClient greedy(g.gateway->port());
  std::string requests;
  for (int i = 0; i < 2000; ++i) requests += "GET /metadata HTTP/1.1\r\nHost: x\r\n\r\n";
  greedy.send_raw(requests);  // ~2000 CapabilityStatements: far more than the socket buffers hold
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  g.serves_others();
  // The server gave up on it after the body timeout: fewer than all answers arrive, then the end.
  int answered = 0;
  while (greedy.read_response(std::chrono::seconds(3))) ++answered;
  CHECK(answered < 2000);
  CHECK(g.metric("fhirgate_process_resident_memory_bytes") < rss_before + 64 * 1024 * 1024);
}

TEST_CASE("hostile: 10,000 idle connections are held, then closed by the idle timeout") {
  rlimit files{};
  getrlimit(RLIMIT_NOFILE, &files);
  if (files.rlim_max < 10300) {
    MESSAGE("skipped: the hard limit on open files is " << files.rlim_max << ", below 10,300");
    return;
  }
  files.rlim_cur = files.rlim_max;
  setrlimit(RLIMIT_NOFILE, &files);  // this process's; the gateway raises its own at start
  HostileGateway g;
  std::vector<int> idle;
  for (int i = 0; i < 10000; ++i) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(g.gateway->port());
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    idle.push_back(fd);
  }
  g.serves_others();
  CHECK(g.metric("fhirgate_http_open_connections") > 1000);
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));  // the idle timeout is 1 s
  CHECK(g.metric("fhirgate_http_open_connections") < 10);
  int closed = 0;
  for (int fd : idle) {
    pollfd p{fd, POLLIN, 0};
    char byte;
    if (::poll(&p, 1, 0) == 1 && ::recv(fd, &byte, 1, MSG_DONTWAIT) == 0) ++closed;
    ::close(fd);
  }
  CHECK(closed == 10000);
}

TEST_CASE("hostile: a 2 GB body is refused at its first bytes, declared or chunked, and nothing is stored") {
  HostileGateway g;
  HttpClient declared(g.gateway->port());
  declared.send_raw(
      "POST /Patient HTTP/1.1\r\nHost: x\r\nContent-Type: application/fhir+json\r\nContent-Length: "
      "2147483648\r\n\r\n" +
      std::string(65536, ' '));
  const auto r = declared.read_response(std::chrono::seconds(5));
  REQUIRE(r.has_value());
  CHECK(r->status == 413);
  CHECK(json(r->body).string_at("resourceType") == "OperationOutcome");

  HttpClient chunked(g.gateway->port());
  chunked.send_raw(
      "POST /Patient HTTP/1.1\r\nHost: x\r\nContent-Type: application/fhir+json\r\nTransfer-Encoding: "
      "chunked\r\n\r\n");
  const std::string chunk = "10000\r\n" + std::string(65536, ' ') + "\r\n";
  std::optional<Response> refused;
  for (int i = 0; i < 32768 && !refused; ++i) {  // up to 2 GB, until the server answers
    if (::send(chunked.fd(), chunk.data(), chunk.size(), MSG_NOSIGNAL) < 0) break;
    if (i % 16 == 15) refused = chunked.read_response(std::chrono::milliseconds(1));
  }
  if (!refused) refused = chunked.read_response(std::chrono::seconds(5));
  REQUIRE(refused.has_value());
  CHECK(refused->status == 413);
  HttpClient http(g.gateway->port());
  CHECK(text_at(json(http.get("/Patient?_summary=count").body), "total") == "0");
}

TEST_CASE("hostile: deeply nested JSON and XML are refused with an OperationOutcome, not a crash") {
  HostileGateway g;
  HttpClient http(g.gateway->port());
  const auto nested_json =
      http.send_json("POST", "/Patient", std::string(200000, '[') + std::string(200000, ']'));
  CHECK(nested_json.status == 400);
  CHECK(json(nested_json.body).string_at("resourceType") == "OperationOutcome");
  std::string xml = "<Patient xmlns=\"http://hl7.org/fhir\">";
  for (int i = 0; i < 20000; ++i) xml += "<extension>";
  for (int i = 0; i < 20000; ++i) xml += "</extension>";
  xml += "</Patient>";
  const auto nested_xml = http.request("POST", "/Patient", xml, {{"Content-Type", "application/fhir+xml"}});
  CHECK(nested_xml.status == 400);
  CHECK(nested_xml.body.find("OperationOutcome") != std::string::npos);
  g.serves_others();
}

TEST_CASE("hostile: a search with thousands of parameters or values gets 400, not a storage error") {
  HostileGateway g;
  HttpClient http(g.gateway->port());
  std::string many, fine;  // 1,000 parameters: the URL still fits the 16 KiB header limit
  for (int i = 0; i < 1000; ++i) many += (i ? "&" : "") + std::string("family=f") + std::to_string(i);
  for (int i = 0; i < 200; ++i) fine += (i ? "&" : "") + std::string("family=f") + std::to_string(i);
  const auto refused = http.get("/Patient?" + many);
  CHECK(refused.status == 400);
  CHECK(first_issue(refused).find("at most 200") != std::string::npos);
  std::string values = "family=";
  for (int i = 0; i < 2000; ++i) values += (i ? "," : "") + std::string("f") + std::to_string(i);
  CHECK(http.get("/Patient?" + values).status == 400);
  CHECK(http.get("/Patient?" + fine).status == 200);  // the limit itself works
  // A form body: the same term limit, and at most as many bytes as a URL (16 KiB).
  const auto posted =
      http.request("POST", "/Patient/_search", many, {{"Content-Type", "application/x-www-form-urlencoded"}});
  CHECK(posted.status == 400);
  CHECK(first_issue(posted).find("at most 200") != std::string::npos);
  std::string form;
  for (int i = 0; i < 20000; ++i) form += (i ? "&" : "") + std::string("family=f") + std::to_string(i);
  const auto oversized =
      http.request("POST", "/Patient/_search", form, {{"Content-Type", "application/x-www-form-urlencoded"}});
  CHECK(oversized.status == 413);
  CHECK(first_issue(oversized).find("at most 16384 bytes") != std::string::npos);
}

TEST_CASE("hostile: MLLP frames without an end marker end at the idle timeout") {
  // Past maxMessageBytes only the head is held (the deframer unit tests); one going on for 64 MiB past the
  // limit is closed at once (mllp_test.cpp).
  HostileGateway g;
  {
    MllpClient endless(g.gateway->mllp_port());
    endless.send_raw("\x0b" + std::string(200000, 'A'));  // past maxMessageBytes, never ended
    CHECK(endless.read_frame().empty());                  // no ACK: the connection is closed
  }
  {
    MllpClient silent(g.gateway->mllp_port());
    silent.send_raw("\x0bMSH|^~\\&|A|B|C|D|20240101||ADT^A01|1|P|2.5\r");  // half a frame, then nothing
    const auto start = std::chrono::steady_clock::now();
    CHECK(silent.read_frame().empty());
    CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(5));
  }
  std::ifstream file(source_path("tests/data/adt_a01.hl7"));
  std::string adt((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  for (auto& c : adt)
    if (c == '\n') c = '\r';
  MllpClient fine(g.gateway->mllp_port());
  fine.send_raw(frame(adt));
  CHECK(fine.read_frame().find("MSA|CA") != std::string::npos);
}

}  // namespace
}  // namespace fhirgate::testing
