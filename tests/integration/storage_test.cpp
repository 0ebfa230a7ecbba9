// Storage failures (issue 10): a full disk makes the gateway answer 503 with an OperationOutcome (CE or AE
// for HL7 v2 over MLLP), keep serving reads, and write again once the space returns; a read-only database
// is refused at start with the reason. The database lives on a small tmpfs this test mounts, so it needs root
// (or CAP_SYS_ADMIN); elsewhere it says so and skips.
#include <doctest/doctest.h>
#include <sys/mount.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "tests/integration/common.hpp"
#include "tests/support/mllp_client.hpp"

namespace fhirgate::testing {
namespace {

namespace fs = std::filesystem;

// A tmpfs of `megabytes`, unmounted when done; empty when mounting is not allowed here.
class SmallDisk {
 public:
  explicit SmallDisk(int megabytes) : path_(temp_dir() + "/disk") {
    fs::create_directories(path_);
    const std::string options = "size=" + std::to_string(megabytes) + "m";
    mounted_ = ::mount("tmpfs", path_.c_str(), "tmpfs", 0, options.c_str()) == 0;
  }
  ~SmallDisk() {
    if (mounted_) ::umount2(path_.c_str(), MNT_DETACH);
  }
  bool mounted() const { return mounted_; }
  const std::string& path() const { return path_; }
  bool read_only(bool on) {
    return ::mount("tmpfs", path_.c_str(), "tmpfs", MS_REMOUNT | (on ? MS_RDONLY : 0), nullptr) == 0;
  }

 private:
  std::string path_;
  bool mounted_ = false;
};

// Writes zeros to `path` until the disk is full.
void fill(const std::string& path) {
  std::ofstream out(path, std::ios::binary);
  const std::string block(64 * 1024, '\0');
  while (out.write(block.data(), static_cast<std::streamsize>(block.size())) && out.flush()) {
  }
}

std::string patient(int i) {
  return R"({"resourceType":"Patient","name":[{"family":"Disk)" + std::to_string(i) + R"(","given":[")" +
         std::string(2000, 'x') + R"("]}]})";
}

std::string adt() {
  std::ifstream file(source_path("tests/data/adt_a01.hl7"));
  std::string text((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  for (auto& c : text)
    if (c == '\n') c = '\r';
  return text;
}

struct DiskGateway {
  SmallDisk disk{16};
  std::string dir = temp_dir();
  std::unique_ptr<GatewayProcess> gateway;
  bool start() {
    if (!disk.mounted()) {
      MESSAGE("skipped: cannot mount a tmpfs here (needs root)");
      return false;
    }
    std::ofstream(dir + "/gateway.json") << R"({"security": {"enabled": false},
      "mllp": {"listeners": [{"port": 0, "partner": "gp"}]},
      "partners": [{"id": "gp", "name": "GP", "inbound": ["hl7v2-mllp"]}]})";
    gateway = std::make_unique<GatewayProcess>(
        std::vector<std::string>{"--config", dir + "/gateway.json", "--db", disk.path() + "/fhirgate.db"},
        dir);
    return true;
  }
};

TEST_CASE("storage: a full disk gets 503 and AE, reads go on, and writes resume when space returns") {
  DiskGateway g;
  if (!g.start()) return;
  HttpClient http(g.gateway->port());
  const auto first = http.send_json("POST", "/Patient", patient(0));
  REQUIRE(first.status == 201);
  const std::string id(json(first.body).string_at("id"));
  fill(g.disk.path() + "/filler");
  int refused = 0;
  for (int i = 1; i <= 400 && refused == 0; ++i) {
    const auto r = http.send_json("POST", "/Patient", patient(i));
    if (r.status == 503) {
      ++refused;
      CHECK(json(r.body).string_at("resourceType") == "OperationOutcome");
    } else {
      REQUIRE_MESSAGE(r.status == 201, r.status, " ", r.body);
    }
  }
  REQUIRE(refused == 1);
  MllpClient mllp(g.gateway->mllp_port());
  mllp.send_raw(frame(adt()));
  const std::string ack = mllp.read_frame();
  // The message asks for enhanced acknowledgements (MSH-15 AL): commit error, the sender sends it again.
  CHECK_MESSAGE(ack.find("MSA|CE") != std::string::npos, ack);
  CHECK(http.get("/Patient/" + id).status == 200);
  CHECK(http.get("/metadata").status == 200);

  fs::remove(g.disk.path() + "/filler");
  CHECK(http.send_json("POST", "/Patient", patient(1000)).status == 201);
  mllp.send_raw(frame(adt()));
  CHECK(mllp.read_frame().find("MSA|CA") != std::string::npos);
}

TEST_CASE("storage: a read-only database is refused at start with the reason, not a crash") {
  DiskGateway g;
  if (!g.start()) return;
  HttpClient http(g.gateway->port());
  REQUIRE(http.send_json("POST", "/Patient", patient(0)).status == 201);
  REQUIRE(g.gateway->stop() == 0);
  REQUIRE(g.disk.read_only(true));
  const Run run = run_fhirgate("serve --port 0 --db " + g.disk.path() + "/fhirgate.db");
  CHECK(run.status == 1);
  CHECK(run.err.find("readonly database") != std::string::npos);
  REQUIRE(g.disk.read_only(false));
}

}  // namespace
}  // namespace fhirgate::testing
