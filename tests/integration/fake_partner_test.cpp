// The loopback partner endpoint that outbound delivery tests send to: what it records, how each mode
// answers, keep-alive, and that stopping it (even with a hung request) is prompt and refuses connections.
#include "tests/support/fake_partner.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <memory>
#include <stdexcept>
#include <thread>
#include <vector>

#include "tests/integration/common.hpp"

namespace fhirgate::testing {
namespace {

using namespace std::chrono_literals;

// 0 when a TCP connect to 127.0.0.1:port succeeds, else its errno.
int connect_error(std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const int result = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 ? 0 : errno;
  ::close(fd);
  return result;
}

std::string put_request(const std::string& target, const std::string& body, const std::string& extra = {}) {
  return "PUT " + target + " HTTP/1.1\r\nHost: partner\r\nContent-Type: application/fhir+json\r\n" + extra +
         "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

}  // namespace

TEST_CASE("fake partner: ok mode records method, target, body and headers; 201 for POST, 200 otherwise") {
  FakePartner partner;
  CHECK(partner.base_url() == "http://127.0.0.1:" + std::to_string(partner.port()));
  HttpClient client(partner.port());
  const auto before = std::chrono::steady_clock::now();

  const Response put = client.send_json("PUT", "/fhir/Patient/p1", R"({"resourceType":"Patient","id":"p1"})",
                                        {{"X-Request-Id", "r-1"}});
  CHECK(put.status == 200);
  CHECK(put.header("Content-Type") == "application/fhir+json");
  CHECK(put.header("Content-Length") == std::to_string(put.body.size()));
  const auto ok = json(put.body);
  CHECK(ok.string_at("resourceType") == "OperationOutcome");
  CHECK(text_at(ok, "issue[0].severity") == "information");
  CHECK(text_at(ok, "issue[0].code") == "informational");
  CHECK(text_at(ok, "issue[0].diagnostics") == "ok");
  CHECK(client.send_json("POST", "/fhir/Observation", R"({"resourceType":"Observation"})").status == 201);
  CHECK(client.get("/fhir/metadata").status == 200);

  const auto requests = partner.requests();
  REQUIRE(requests.size() == 3);
  CHECK(requests[0].method == "PUT");
  CHECK(requests[0].target == "/fhir/Patient/p1");
  CHECK(requests[0].body == R"({"resourceType":"Patient","id":"p1"})");
  CHECK(requests[0].header("x-request-id") == "r-1");
  CHECK(requests[0].header("Content-Type") == "application/fhir+json");
  CHECK(requests[0].header("Host") == "127.0.0.1:" + std::to_string(partner.port()));
  CHECK(requests[0].header("Authorization").empty());
  REQUIRE(requests[0].headers.size() == 4);
  CHECK(requests[0].headers[1] == std::pair<std::string, std::string>("X-Request-Id", "r-1"));
  CHECK(requests[1].method == "POST");
  CHECK(requests[1].target == "/fhir/Observation");
  CHECK(requests[2].method == "GET");
  CHECK(requests[2].body.empty());
  CHECK(before <= requests[0].at);
  CHECK(requests[0].at <= requests[1].at);
  CHECK(requests[1].at <= requests[2].at);
  CHECK(requests[2].at <= std::chrono::steady_clock::now());
}

TEST_CASE("fake partner: fail_next(2) answers 500, 500, then the current mode again; set_mode(fail) stays") {
  FakePartner partner;
  HttpClient client(partner.port());
  partner.fail_next(2);
  const Response first = client.send_json("PUT", "/Patient/a", "{}");
  CHECK(first.status == 500);
  const auto oo = json(first.body);
  CHECK(oo.string_at("resourceType") == "OperationOutcome");
  CHECK(text_at(oo, "issue[0].severity") == "error");
  CHECK(text_at(oo, "issue[0].code") == "exception");
  CHECK(client.send_json("PUT", "/Patient/b", "{}").status == 500);
  CHECK(client.send_json("PUT", "/Patient/c", "{}").status == 200);

  partner.set_mode(FakePartner::Mode::fail);
  CHECK(client.send_json("PUT", "/Patient/d", "{}").status == 500);
  CHECK(client.send_json("PUT", "/Patient/e", "{}").status == 500);
  partner.set_mode(FakePartner::Mode::ok);
  CHECK(client.send_json("PUT", "/Patient/f", "{}").status == 200);

  const auto requests = partner.requests();
  REQUIRE(requests.size() == 6);
  CHECK(requests[0].target == "/Patient/a");
  CHECK(requests[5].target == "/Patient/f");
}

TEST_CASE("fake partner: close mode reads the request and closes the connection without answering") {
  FakePartner partner;
  partner.set_mode(FakePartner::Mode::close);
  HttpClient client(partner.port());
  client.send_raw(put_request("/Patient/x", "{}"));
  CHECK_FALSE(client.read_response(2s).has_value());
  CHECK(client.closed_by_peer(100ms));  // end of stream, not a timeout
  const auto requests = partner.requests();
  REQUIRE(requests.size() == 1);
  CHECK(requests[0].target == "/Patient/x");
  CHECK(requests[0].body == "{}");

  HttpClient retrying(partner.port());  // request() retries once on a new connection, then gives up
  CHECK_THROWS_AS(retrying.send_json("PUT", "/Patient/y", "{}"), std::runtime_error);
  CHECK(partner.requests().size() == 3);
}

TEST_CASE("fake partner: hang mode never answers, and the destructor still returns promptly") {
  auto partner = std::make_unique<FakePartner>();
  partner->set_mode(FakePartner::Mode::hang);
  HttpClient client(partner->port());
  client.send_raw(put_request("/Patient/slow", "{}"));
  CHECK_FALSE(client.read_response(200ms).has_value());
  CHECK(partner->wait_for_requests(1, 2s));
  CHECK(partner->requests().at(0).target == "/Patient/slow");

  const auto start = std::chrono::steady_clock::now();
  partner.reset();
  CHECK(std::chrono::steady_clock::now() - start < 2s);
  CHECK(client.closed_by_peer(1s));
}

TEST_CASE("fake partner: after stop() open connections are closed and new connects are refused") {
  FakePartner partner;
  HttpClient client(partner.port());
  CHECK(client.get("/metadata").status == 200);
  CHECK(connect_error(partner.port()) == 0);

  partner.stop();
  CHECK(client.closed_by_peer(1s));
  CHECK(connect_error(partner.port()) == ECONNREFUSED);
  HttpClient later(partner.port());
  CHECK_THROWS_AS(later.get("/metadata"), std::runtime_error);
  partner.stop();  // idempotent, as the destructor calls it again
  CHECK(partner.requests().size() == 1);
}

TEST_CASE("fake partner: a stopped partner can come back on the same port") {
  auto partner = std::make_unique<FakePartner>();
  const std::uint16_t port = partner->port();
  {
    HttpClient client(port);
    CHECK(client.get("/metadata").status == 200);
  }
  partner->stop();
  partner = std::make_unique<FakePartner>(port);
  CHECK(partner->port() == port);
  HttpClient client(port);
  CHECK(client.get("/metadata").status == 200);
}

TEST_CASE("fake partner: keep-alive serves several requests on one connection, pipelined ones too") {
  FakePartner partner;
  HttpClient client(partner.port());
  client.connect();
  for (int i = 0; i < 3; ++i) {  // send_raw and read_response never reconnect once connected
    client.send_raw(put_request("/Patient/k" + std::to_string(i), "{}"));
    const auto response = client.read_response(2s);
    REQUIRE(response.has_value());
    CHECK(response->status == 200);
    CHECK(response->header("Connection") == "keep-alive");
  }
  client.send_raw(put_request("/Patient/k3", "{}") + "GET /metadata HTTP/1.1\r\nHost: partner\r\n\r\n" +
                  put_request("/Patient/k4", "{\"a\":1}"));
  for (int i = 0; i < 3; ++i) {
    const auto response = client.read_response(2s);
    REQUIRE(response.has_value());
    CHECK(response->status == 200);
  }
  const auto requests = partner.requests();
  REQUIRE(requests.size() == 6);
  CHECK(requests[0].target == "/Patient/k0");
  CHECK(requests[3].target == "/Patient/k3");
  CHECK(requests[4].method == "GET");
  CHECK(requests[5].body == "{\"a\":1}");
}

TEST_CASE("fake partner: Connection: close is honoured; a chunked body is recorded decoded") {
  FakePartner partner;
  HttpClient client(partner.port());
  client.send_raw(put_request("/Patient/c1", "{}", "Connection: close\r\n"));
  const auto closing = client.read_response(2s);
  REQUIRE(closing.has_value());
  CHECK(closing->header("Connection") == "close");

  client.connect();
  client.send_raw(
      "POST /Bundle HTTP/1.1\r\nHost: partner\r\ntransfer-encoding: chunked\r\n\r\n"
      "5\r\n{\"a\":\r\n3;ext=1\r\n1}\n\r\n0\r\nX-Trailer: t\r\n\r\n");
  const auto chunked = client.read_response(2s);
  REQUIRE(chunked.has_value());
  CHECK(chunked->status == 201);
  const auto requests = partner.requests();
  REQUIRE(requests.size() == 2);
  CHECK(requests[1].body == "{\"a\":1}\n");
}

TEST_CASE("fake partner: a malformed request gets 400 with Connection: close and is not recorded") {
  FakePartner partner;
  HttpClient client(partner.port());
  client.send_raw("NONSENSE\r\n\r\n");
  const auto response = client.read_response(2s);
  REQUIRE(response.has_value());
  CHECK(response->status == 400);
  client.connect();
  client.send_raw("PUT /Patient/z HTTP/1.1\r\nContent-Length: nine\r\n\r\n");
  const auto bad_length = client.read_response(2s);
  REQUIRE(bad_length.has_value());
  CHECK(bad_length->status == 400);
  CHECK(bad_length->header("Connection") == "close");
  CHECK(partner.requests().empty());
}

TEST_CASE("fake partner: concurrent clients are all recorded; wait_for_requests times out when short") {
  FakePartner partner;
  CHECK_FALSE(partner.wait_for_requests(1, 20ms));
  constexpr int kClients = 4;
  constexpr int kEach = 10;
  std::vector<std::thread> clients;
  std::atomic<int> answered{0};
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&partner, &answered, c] {
      HttpClient client(partner.port());
      for (int i = 0; i < kEach; ++i) {
        const std::string target = "/Patient/c" + std::to_string(c) + "-" + std::to_string(i);
        try {
          if (client.send_json("PUT", target, "{}").status == 200) ++answered;
        } catch (const std::runtime_error&) {
        }
      }
    });
  }
  for (auto& t : clients) t.join();
  CHECK(answered.load() == kClients * kEach);
  CHECK(partner.wait_for_requests(kClients * kEach, 1s));
  CHECK(partner.requests().size() == kClients * kEach);
  CHECK_FALSE(partner.wait_for_requests(kClients * kEach + 1, 20ms));
}

}  // namespace fhirgate::testing
