// HttpOut against the loopback FakePartner: responses, keep-alive, reconnecting, timeouts, partner down.
#include "gateway/net/http_out.hpp"

#include <doctest/doctest.h>

#include <chrono>
#include <memory>
#include <string>

#include "tests/support/fake_partner.hpp"

namespace fhirgate::gateway {
namespace {

using namespace std::chrono_literals;
using testing::FakePartner;
using Clock = std::chrono::steady_clock;

constexpr unsigned kTimeoutMs = 5000;  // generous: only the timeout test waits it out
constexpr const char* kJson = "application/fhir+json";

std::string patient(const std::string& id) {
  return R"({"resourceType":"Patient","id":")" + id + R"("})";
}

std::chrono::milliseconds since(Clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
}

}  // namespace

TEST_SUITE("http_out") {
  TEST_CASE("HttpOut: a request arrives as sent and its response comes back") {
    FakePartner partner;
    HttpOut out;
    const OutboundReply reply =
        out.send("PUT", partner.base_url() + "/fhir/Patient/p1", kJson, patient("p1"), kTimeoutMs);
    CHECK(reply.error.empty());
    CHECK(reply.status == 200);
    CHECK(reply.body.find("OperationOutcome") != std::string::npos);
    const auto requests = partner.requests();
    REQUIRE(requests.size() == 1);
    CHECK(requests[0].method == "PUT");
    CHECK(requests[0].target == "/fhir/Patient/p1");
    CHECK(requests[0].body == patient("p1"));
    CHECK(requests[0].header("content-type") == kJson);
    CHECK(requests[0].header("host") == "127.0.0.1:" + std::to_string(partner.port()));

    partner.fail_next(1);
    const OutboundReply failed =
        out.send("POST", partner.base_url() + "/fhir/Patient", kJson, patient("p2"), kTimeoutMs);
    CHECK(failed.error.empty());
    CHECK(failed.status == 500);
    CHECK(failed.body.find("exception") != std::string::npos);
  }

  TEST_CASE("HttpOut: a partner that closes without answering is an error, after one retry on a kept one") {
    FakePartner partner;
    HttpOut out;
    partner.set_mode(FakePartner::Mode::close);
    const OutboundReply fresh =
        out.send("POST", partner.base_url() + "/Patient", kJson, patient("a"), kTimeoutMs);
    CHECK(fresh.status == 0);
    CHECK_FALSE(fresh.error.empty());
    CHECK(partner.requests().size() == 1);

    // On a kept connection the close looks like an idle one the partner closed: sent once more, then given
    // up.
    partner.set_mode(FakePartner::Mode::ok);
    CHECK(out.send("POST", partner.base_url() + "/Patient", kJson, patient("b"), kTimeoutMs).status == 201);
    partner.set_mode(FakePartner::Mode::close);
    const OutboundReply kept =
        out.send("POST", partner.base_url() + "/Patient", kJson, patient("c"), kTimeoutMs);
    CHECK(kept.status == 0);
    CHECK_FALSE(kept.error.empty());
    const auto requests = partner.requests();
    REQUIRE(requests.size() == 4);
    CHECK(requests[2].body == patient("c"));
    CHECK(requests[3].body == patient("c"));

    partner.set_mode(FakePartner::Mode::ok);  // and then the next send reconnects
    CHECK(out.send("POST", partner.base_url() + "/Patient", kJson, patient("d"), kTimeoutMs).status == 201);
  }

  TEST_CASE("HttpOut: a partner that never answers times out within the timeout; the next send reconnects") {
    FakePartner partner;
    HttpOut out;
    partner.set_mode(FakePartner::Mode::hang);
    const auto start = Clock::now();
    const OutboundReply reply = out.send("POST", partner.base_url() + "/Patient", kJson, patient("h1"), 300);
    const auto took = since(start);
    CHECK(reply.status == 0);
    CHECK(reply.error == "timed out after 300 ms");
    CHECK(took >= 300ms);
    CHECK(took < 1300ms);

    partner.set_mode(FakePartner::Mode::ok);
    const OutboundReply next =
        out.send("POST", partner.base_url() + "/Patient", kJson, patient("h2"), kTimeoutMs);
    CHECK(next.error.empty());
    CHECK(next.status == 201);
    const auto requests = partner.requests();
    REQUIRE(requests.size() == 2);
    CHECK(requests[1].body == patient("h2"));
  }

  TEST_CASE("HttpOut: a stopped partner is an error at once; back on the same port, sends work again") {
    auto partner = std::make_unique<FakePartner>();
    const std::string url = partner->base_url() + "/Patient";
    const std::uint16_t port = partner->port();
    HttpOut out;
    CHECK(out.send("POST", url, kJson, patient("d1"), kTimeoutMs).status == 201);
    partner->stop();
    for (const char* id : {"d2", "d3"}) {  // first on the kept connection, then on a fresh attempt
      const auto start = Clock::now();
      const OutboundReply down = out.send("POST", url, kJson, patient(id), kTimeoutMs);
      CHECK(down.status == 0);
      CHECK(down.error == "Connection refused");
      CHECK(since(start) < 1000ms);
    }
    partner = std::make_unique<FakePartner>(port);
    const OutboundReply back = out.send("POST", url, kJson, patient("d4"), kTimeoutMs);
    CHECK(back.error.empty());
    CHECK(back.status == 201);
  }

  TEST_CASE("HttpOut: a URL that is not http://host[:port]/path is refused without a connection") {
    HttpOut out;
    for (const char* url :
         {"https://partner.example/fhir", "ftp://x/y", "http://", "http://:80/x", "partner"}) {
      CAPTURE(url);
      const OutboundReply reply = out.send("POST", url, kJson, "{}", kTimeoutMs);
      CHECK(reply.status == 0);
      CHECK(reply.error == std::string("not an http:// URL: ") + url);
    }
  }
}

}  // namespace fhirgate::gateway
