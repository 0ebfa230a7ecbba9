// HL7 v2 ADT over MLLP into the real gateway: ACKs, storage, update without duplicates, rejections.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>

#include "tests/integration/common.hpp"

namespace fhirgate::testing {
namespace {

std::string frame(const std::string& message) {
  return "\x0b" + message + "\x1c\x0d";
}

class MllpClient {
 public:
  explicit MllpClient(std::uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  }
  ~MllpClient() { ::close(fd_); }
  MllpClient(const MllpClient&) = delete;
  MllpClient& operator=(const MllpClient&) = delete;

  void send_raw(const std::string& bytes) {
    REQUIRE(::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(bytes.size()));
  }
  // The next complete frame's message; empty on timeout or close.
  std::string read_frame() {
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    for (;;) {
      const auto start = buffer_.find('\x0b');
      if (start != std::string::npos) {
        const auto end = buffer_.find("\x1c\x0d", start);
        if (end != std::string::npos) {
          std::string message = buffer_.substr(start + 1, end - start - 1);
          buffer_.erase(0, end + 2);
          return message;
        }
      }
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now());
      pollfd p{fd_, POLLIN, 0};
      if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) <= 0) return {};
      char buf[4096];
      const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) return {};
      buffer_.append(buf, static_cast<std::size_t>(n));
    }
  }

 private:
  int fd_ = -1;
  std::string buffer_;
};

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (auto pos = s.find(from); pos != std::string::npos; pos = s.find(from, pos + to.size()))
    s.replace(pos, from.size(), to);
  return s;
}

// MSA-1 and MSA-2 of an ACK, e.g. "AA|MSG00001".
std::string msa(const std::string& ack) {
  const auto pos = ack.find("\rMSA|");
  if (pos == std::string::npos) return "<no MSA>";
  const auto rest = ack.substr(pos + 5);
  const auto first = rest.find('|');
  const auto second = rest.find_first_of("|\r", first + 1);
  return rest.substr(0, second);
}

GatewayProcess start_with_mllp() {
  const std::string dir = temp_dir();
  const std::string config = dir + "/gateway.json";
  std::ofstream(config) << R"({"mllp": {"bind": "127.0.0.1", "port": 0, "idleTimeoutMs": 30000,
    "maxMessageBytes": 65536, "nhsNumberAuthority": "NHS", "localIdentifierSystem": "https://example.org/rx1/mrn"}})";
  return GatewayProcess({"--config", config}, dir);
}

int patient_total(HttpClient& http, const std::string& nhs) {
  auto r = http.get("/Patient?identifier=https://fhir.nhs.uk/Id/nhs-number|" + nhs);
  REQUIRE(r.status == 200);
  return static_cast<int>(at(json(r.body), "entry") ? at(json(r.body), "entry")->items().size() : 0);
}

TEST_CASE("MLLP: an A01 is stored and acknowledged, an A08 updates the same Patient") {
  GatewayProcess gateway = start_with_mllp();
  REQUIRE(gateway.mllp_port() != 0);
  HttpClient http(gateway.port());
  MllpClient mllp(gateway.mllp_port());
  const std::string a01 = read_text(source_path("tests/data/adt_a01.hl7"));

  mllp.send_raw(frame(a01));
  const std::string ack = mllp.read_frame();
  CHECK(msa(ack) == "AA|MSG00001");
  CHECK(patient_total(http, "9434765919") == 1);

  std::string a08 = replace_all(a01, "ADT^A01^ADT_A01|MSG00001", "ADT^A08^ADT_A01|MSG00002");
  a08 = replace_all(a08, "EVN|A01", "EVN|A08");
  a08 = replace_all(a08, "CHALMERS^PETER", "CHALMERS^PETRA");
  mllp.send_raw(frame(a08));
  CHECK(msa(mllp.read_frame()) == "AA|MSG00002");
  auto bundle = json(http.get("/Patient?identifier=https://fhir.nhs.uk/Id/nhs-number|9434765919").body);
  REQUIRE(at(bundle, "entry"));
  CHECK(at(bundle, "entry")->items().size() == 1);
  CHECK(text_at(bundle, "entry[0].resource.name[0].given[0]") == "PETRA");
  CHECK(text_at(bundle, "entry[0].resource.meta.versionId") == "2");
}

TEST_CASE("MLLP: unsupported types and garbage are refused and nothing is stored") {
  GatewayProcess gateway = start_with_mllp();
  HttpClient http(gateway.port());
  MllpClient mllp(gateway.mllp_port());
  const std::string a01 = read_text(source_path("tests/data/adt_a01.hl7"));

  std::string oru = replace_all(a01, "ADT^A01^ADT_A01|MSG00001", "ORU^R01^ORU_R01|MSG00010");
  mllp.send_raw(frame(oru));
  CHECK(msa(mllp.read_frame()) == "AR|MSG00010");

  std::string bad_version = replace_all(a01, "|MSG00001|P|2.4|", "|MSG00011|P|9.9|");
  mllp.send_raw(frame(bad_version));
  CHECK(msa(mllp.read_frame()) == "AR|MSG00011");

  std::string a40 = replace_all(a01, "ADT^A01^ADT_A01|MSG00001", "ADT^A40^ADT_A39|MSG00012");
  mllp.send_raw(frame(a40));
  CHECK(msa(mllp.read_frame()) == "AR|MSG00012");

  std::string no_pid = a01.substr(0, a01.find("PID|"));
  no_pid = replace_all(no_pid, "MSG00001", "MSG00013");
  mllp.send_raw(frame(no_pid));
  const std::string ae = mllp.read_frame();
  CHECK(msa(ae) == "AE|MSG00013");
  CHECK(ae.find("\rERR|") != std::string::npos);

  CHECK(patient_total(http, "9434765919") == 0);

  mllp.send_raw(frame("this is not HL7 at all"));
  CHECK(mllp.read_frame().empty());  // nothing to acknowledge: the connection is closed
}

TEST_CASE("MLLP: two messages in one write are both acknowledged, in order") {
  GatewayProcess gateway = start_with_mllp();
  HttpClient http(gateway.port());
  MllpClient mllp(gateway.mllp_port());
  const std::string a01 = read_text(source_path("tests/data/adt_a01.hl7"));
  std::string a28 = replace_all(a01, "ADT^A01^ADT_A01|MSG00001", "ADT^A28^ADT_A05|MSG00021");
  a28 = replace_all(a28, "EVN|A01", "EVN|A28");
  std::string a31 = replace_all(a01, "ADT^A01^ADT_A01|MSG00001", "ADT^A31^ADT_A05|MSG00022");
  a31 = replace_all(a31, "EVN|A01", "EVN|A31");

  mllp.send_raw(frame(a28) + frame(a31));
  CHECK(msa(mllp.read_frame()) == "AA|MSG00021");
  CHECK(msa(mllp.read_frame()) == "AA|MSG00022");
  CHECK(patient_total(http, "9434765919") == 1);
}

}  // namespace
}  // namespace fhirgate::testing
