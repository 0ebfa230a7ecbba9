// MllpOut against the loopback FakeMllpPartner: replies, keep-alive, reconnecting, timeouts, partner down.
#include "gateway/net/mllp_out.hpp"

#include <doctest/doctest.h>

#include <chrono>
#include <memory>
#include <string>

#include "mappers/hl7v2.hpp"
#include "tests/support/fake_mllp_partner.hpp"

namespace fhirgate::gateway {
namespace {

using namespace std::chrono_literals;
using testing::FakeMllpPartner;
using Clock = std::chrono::steady_clock;

constexpr unsigned kTimeoutMs = 5000;  // generous: only the timeout tests wait it out

std::string adt(const std::string& control_id) {
  return "MSH|^~\\&|FHIRGATE|HOSP|LAB|LABFAC|20240514092133||ADT^A01^ADT_A01|" + control_id +
         "|P|2.5\rPID|1||12345^^^HOSP^MR||Doe^Jane\r";
}

// The value at `path` in the reply's ACK; "<unparsable>" when it is not an HL7 v2 message.
std::string ack_value(const MllpReply& reply, std::string_view path) {
  auto ack = mappers::Message::parse(reply.ack);
  return ack ? ack->value(path) : "<unparsable>";
}

std::chrono::milliseconds since(Clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
}

}  // namespace

TEST_SUITE("mllp_out") {
  TEST_CASE("MllpOut: an AA reply comes back unframed, answering the message sent") {
    FakeMllpPartner partner;
    MllpOut out;
    const auto before = Clock::now();
    const MllpReply reply = out.send("127.0.0.1", partner.port(), adt("MSG1"), kTimeoutMs);
    const auto after = Clock::now();
    CHECK(reply.error.empty());
    CHECK(reply.ack.starts_with("MSH|^~\\&|LAB|LABFAC|FHIRGATE|HOSP|"));
    CHECK(reply.ack.ends_with("\rMSA|AA|MSG1\r"));
    CHECK(ack_value(reply, "MSA-1") == "AA");
    CHECK(ack_value(reply, "MSA-2") == "MSG1");
    CHECK(ack_value(reply, "MSH-9") == "ACK");
    CHECK(ack_value(reply, "MSH-9.2") == "A01");
    CHECK(ack_value(reply, "MSH-9.3") == "ACK");
    CHECK(ack_value(reply, "MSH-10") == "ACK1");
    CHECK(ack_value(reply, "MSH-11") == "P");
    CHECK(ack_value(reply, "MSH-12") == "2.5");

    const auto messages = partner.messages();
    REQUIRE(messages.size() == 1);
    CHECK(messages[0].text == adt("MSG1"));
    CHECK(messages[0].at >= before);
    CHECK(messages[0].at <= after);
  }

  TEST_CASE("MllpOut: AE and AR replies, and fail_next answering AE before the mode applies again") {
    FakeMllpPartner partner;
    MllpOut out;
    partner.set_mode(FakeMllpPartner::Mode::ae);
    const MllpReply ae = out.send("127.0.0.1", partner.port(), adt("E1"), kTimeoutMs);
    CHECK(ae.error.empty());
    CHECK(ack_value(ae, "MSA-1") == "AE");
    CHECK(ack_value(ae, "MSA-2") == "E1");

    partner.set_mode(FakeMllpPartner::Mode::ar);
    const MllpReply ar = out.send("127.0.0.1", partner.port(), adt("R1"), kTimeoutMs);
    CHECK(ack_value(ar, "MSA-1") == "AR");
    CHECK(ack_value(ar, "MSA-2") == "R1");

    partner.set_mode(FakeMllpPartner::Mode::aa);
    partner.fail_next(2);
    CHECK(ack_value(out.send("127.0.0.1", partner.port(), adt("F1"), kTimeoutMs), "MSA-1") == "AE");
    CHECK(ack_value(out.send("127.0.0.1", partner.port(), adt("F2"), kTimeoutMs), "MSA-1") == "AE");
    CHECK(ack_value(out.send("127.0.0.1", partner.port(), adt("F3"), kTimeoutMs), "MSA-1") == "AA");
    CHECK(partner.messages().size() == 5);
  }

  TEST_CASE("MllpOut: keep-alive: sends share one connection, and two clients are served at once") {
    FakeMllpPartner partner;
    MllpOut first;
    MllpOut second;
    CHECK(ack_value(first.send("127.0.0.1", partner.port(), adt("K1"), kTimeoutMs), "MSA-2") == "K1");
    CHECK(ack_value(first.send("127.0.0.1", partner.port(), adt("K2"), kTimeoutMs), "MSA-2") == "K2");
    CHECK(partner.connections() == 1);
    CHECK(ack_value(second.send("127.0.0.1", partner.port(), adt("K3"), kTimeoutMs), "MSA-2") == "K3");
    CHECK(ack_value(first.send("127.0.0.1", partner.port(), adt("K4"), kTimeoutMs), "MSA-2") == "K4");
    CHECK(ack_value(second.send("127.0.0.1", partner.port(), adt("K5"), kTimeoutMs), "MSA-2") == "K5");
    CHECK(partner.connections() == 2);
    CHECK(partner.messages().size() == 5);
  }

  TEST_CASE("MllpOut: a new target gets a new connection") {
    FakeMllpPartner a;
    FakeMllpPartner b;
    MllpOut out;
    CHECK(ack_value(out.send("127.0.0.1", a.port(), adt("T1"), kTimeoutMs), "MSA-1") == "AA");
    CHECK(ack_value(out.send("127.0.0.1", b.port(), adt("T2"), kTimeoutMs), "MSA-1") == "AA");
    CHECK(ack_value(out.send("localhost", b.port(), adt("T3"), kTimeoutMs), "MSA-1") == "AA");
    CHECK(ack_value(out.send("127.0.0.1", a.port(), adt("T4"), kTimeoutMs), "MSA-1") == "AA");
    CHECK(a.connections() == 2);
    CHECK(b.connections() == 2);
  }

  TEST_CASE("MllpOut: a kept connection the partner closed between sends is reopened transparently") {
    FakeMllpPartner partner;
    MllpOut out;
    CHECK(ack_value(out.send("127.0.0.1", partner.port(), adt("C1"), kTimeoutMs), "MSA-2") == "C1");
    partner.drop_connections();
    const MllpReply reply = out.send("127.0.0.1", partner.port(), adt("C2"), kTimeoutMs);
    CHECK(reply.error.empty());
    CHECK(ack_value(reply, "MSA-2") == "C2");
    CHECK(partner.connections() == 2);
    CHECK(partner.messages().size() == 2);  // C2 arrived once, on the new connection
  }

  TEST_CASE("MllpOut: a partner that closes without answering is an error") {
    FakeMllpPartner partner;
    MllpOut out;
    partner.set_mode(FakeMllpPartner::Mode::close);
    const MllpReply fresh = out.send("127.0.0.1", partner.port(), adt("X1"), kTimeoutMs);
    CHECK(fresh.ack.empty());
    CHECK(fresh.error == "connection closed");
    CHECK(partner.messages().size() == 1);

    // On a kept connection the close looks like an idle one: the message is sent once more, then given up.
    partner.set_mode(FakeMllpPartner::Mode::aa);
    CHECK(ack_value(out.send("127.0.0.1", partner.port(), adt("X2"), kTimeoutMs), "MSA-1") == "AA");
    partner.set_mode(FakeMllpPartner::Mode::close);
    const MllpReply kept = out.send("127.0.0.1", partner.port(), adt("X3"), kTimeoutMs);
    CHECK(kept.error == "connection closed");
    const auto messages = partner.messages();
    REQUIRE(messages.size() == 4);
    CHECK(messages[2].text == adt("X3"));
    CHECK(messages[3].text == adt("X3"));
  }

  TEST_CASE("MllpOut: a partner that never answers times out within the timeout; the next send reconnects") {
    FakeMllpPartner partner;
    MllpOut out;
    partner.set_mode(FakeMllpPartner::Mode::hang);
    const auto start = Clock::now();
    const MllpReply reply = out.send("127.0.0.1", partner.port(), adt("H1"), 300);
    const auto took = since(start);
    CHECK(reply.ack.empty());
    CHECK(reply.error == "timed out after 300 ms");
    CHECK(took >= 300ms);
    CHECK(took < 1300ms);
    CHECK(partner.messages().size() == 1);

    partner.set_mode(FakeMllpPartner::Mode::aa);
    const MllpReply next = out.send("127.0.0.1", partner.port(), adt("H2"), kTimeoutMs);
    CHECK(next.error.empty());
    CHECK(ack_value(next, "MSA-2") == "H2");  // not a late answer to H1
    CHECK(partner.connections() == 2);
  }

  TEST_CASE("MllpOut: a stopped partner is an error at once; back on the same port, sends work again") {
    auto partner = std::make_unique<FakeMllpPartner>();
    const std::uint16_t port = partner->port();
    MllpOut out;
    CHECK(ack_value(out.send("127.0.0.1", port, adt("D1"), kTimeoutMs), "MSA-1") == "AA");
    partner->stop();

    for (const char* id : {"D2", "D3"}) {  // first on the kept connection, then on a fresh attempt
      const auto start = Clock::now();
      const MllpReply down = out.send("127.0.0.1", port, adt(id), kTimeoutMs);
      CHECK(down.ack.empty());
      CHECK(down.error == "Connection refused");
      CHECK(since(start) < 1000ms);
    }

    partner = std::make_unique<FakeMllpPartner>(port);
    const MllpReply back = out.send("127.0.0.1", port, adt("D4"), kTimeoutMs);
    CHECK(back.error.empty());
    CHECK(ack_value(back, "MSA-2") == "D4");
    CHECK(partner->connections() == 1);
  }

  TEST_CASE("fake MLLP partner: the ACK keeps the sender's separators and swaps the applications") {
    const std::string received = "MSH#$~\\&#APP#FAC#GATE#GFAC#20240101##ORU$R01$ORU_R01#C42#T#2.6\nOBR#1\n";
    const std::string ack = FakeMllpPartner::make_ack(received, "AE", "A7");
    const auto msh = ack.substr(0, ack.find('\r'));
    CHECK(msh.starts_with("MSH#$~\\&#GATE#GFAC#APP#FAC#"));
    CHECK(msh.ends_with("##ACK$R01$ACK#A7#T#2.6"));
    CHECK(ack.ends_with("\rMSA#AE#C42\r"));
    CHECK(FakeMllpPartner::make_ack("garbage", "AA", "A8").ends_with("||ACK^^ACK|A8||\rMSA|AA|\r"));
  }
}

}  // namespace fhirgate::gateway
