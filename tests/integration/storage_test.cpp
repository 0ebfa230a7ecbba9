// Storage failures (issue 10): a full disk makes the gateway answer 503 with an OperationOutcome (CE or AE
// for HL7 v2 over MLLP), keep serving reads, and write again once the space returns; a disk that turns
// read-only under it gets the same answers, and after the operator's repair and a restart every
// acknowledged write is there; a read-only database is refused at start with the reason. The database lives
// on a small tmpfs or a loop-mounted ext4 image this test mounts, so it needs root (or CAP_SYS_ADMIN) and
// loop devices; elsewhere it says so and skips.
#include <doctest/doctest.h>
#include <sys/mount.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
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

// An ext4 filesystem in a loop-mounted image of `megabytes`, mounted errors=remount-ro: on its first error
// the kernel turns it read-only under the open database, as it does with a failing disk. Not mounted when
// loop devices, mkfs.ext4 or mounting are not available here.
class Ext4Disk {
 public:
  explicit Ext4Disk(int megabytes) : image_(temp_dir() + "/ext4.img"), path_(temp_dir() + "/ext4") {
    fs::create_directories(path_);
    std::ofstream(image_).close();
    fs::resize_file(image_, static_cast<std::uintmax_t>(megabytes) << 20);
    const std::string out = temp_dir() + "/losetup";
    if (shell("losetup -f --show " + image_ + " > " + out + " 2>/dev/null") != 0) return;
    std::getline(std::ifstream(out), device_);
    if (device_.empty() || shell("mkfs.ext4 -q " + device_ + " >/dev/null 2>&1") != 0) return;
    mounted_ = mount();
  }
  ~Ext4Disk() {
    if (mounted_) ::umount2(path_.c_str(), MNT_DETACH);
    if (!device_.empty()) shell("losetup -d " + device_ + " 2>/dev/null");
  }
  bool mounted() const { return mounted_; }
  const std::string& path() const { return path_; }
  bool can_fail() const { return mounted_ && fs::exists(trigger_path()); }
  // Records a filesystem error (ext4's trigger_fs_error), upon which the kernel remounts it read-only.
  bool fail() {
    std::ofstream trigger(trigger_path());
    trigger << "storage_test\n";
    trigger.flush();
    return static_cast<bool>(trigger);
  }
  // What an operator does after such an error: unmount, e2fsck, mount again writable.
  bool repair() {
    mounted_ = false;
    if (::umount(path_.c_str()) != 0) return false;
    if (shell("e2fsck -fy " + device_ + " >/dev/null 2>&1") > 1) return false;  // 1: errors corrected
    mounted_ = mount();
    return mounted_;
  }

 private:
  static int shell(const std::string& command) {
    const int raw = std::system(command.c_str());
    return WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
  }
  bool mount() { return ::mount(device_.c_str(), path_.c_str(), "ext4", 0, "errors=remount-ro") == 0; }
  std::string trigger_path() const {
    return "/sys/fs/ext4/" + fs::path(device_).filename().string() + "/trigger_fs_error";
  }

  std::string image_;
  std::string path_;
  std::string device_;
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

// A gateway (security off, an MLLP listener for the GP) in `dir` with its database in `db_dir`.
std::unique_ptr<GatewayProcess> start_gateway(const std::string& dir, const std::string& db_dir) {
  std::ofstream(dir + "/gateway.json") << R"({"security": {"enabled": false},
      "mllp": {"listeners": [{"port": 0, "partner": "gp"}]},
      "partners": [{"id": "gp", "name": "GP", "inbound": ["hl7v2-mllp"]}]})";
  return std::make_unique<GatewayProcess>(
      std::vector<std::string>{"--config", dir + "/gateway.json", "--db", db_dir + "/fhirgate.db"}, dir);
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
    gateway = start_gateway(dir, disk.path());
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

TEST_CASE(
    "storage: a disk turned read-only under the gateway gets 503 and CE, reads go on, and after repair and a "
    "restart every acknowledged write is there") {
  Ext4Disk disk(64);
  if (!disk.can_fail()) {
    MESSAGE("skipped: cannot mount an ext4 loop device with ext4's trigger_fs_error here (needs root)");
    return;
  }
  const std::string dir = temp_dir();
  auto gateway = start_gateway(dir, disk.path());
  HttpClient http(gateway->port());
  const auto created = http.send_json("POST", "/Patient", patient(0));
  REQUIRE(created.status == 201);
  const std::string id(json(created.body).string_at("id"));
  MllpClient mllp(gateway->mllp_port());
  mllp.send_raw(frame(adt()));
  REQUIRE(mllp.read_frame().find("MSA|CA") != std::string::npos);

  REQUIRE(disk.fail());
  for (int i = 1; i <= 3; ++i) {
    const auto refused = http.send_json("POST", "/Patient", patient(i));
    CHECK(refused.status == 503);
    CHECK(json(refused.body).string_at("resourceType") == "OperationOutcome");
    CHECK_MESSAGE(first_issue(refused).find("retry later") != std::string::npos, refused.body);
  }
  mllp.send_raw(frame(adt()));
  const std::string ack = mllp.read_frame();
  CHECK_MESSAGE(ack.find("MSA|CE") != std::string::npos, ack);
  CHECK(http.get("/Patient/" + id).status == 200);
  CHECK(text_at(json(http.get("/Patient?_summary=count").body), "total") == "2");
  // The operator's log says why: the SQLite error behind the 503.
  CHECK_MESSAGE(gateway->stderr_text().find(R"("cause":"sqlite error)") != std::string::npos,
                gateway->stderr_text());
  gateway->stop();

  // Repaired and restarted on the same database: both acknowledged writes, and writes go on.
  REQUIRE(disk.repair());
  gateway = start_gateway(dir, disk.path());
  HttpClient again(gateway->port());
  CHECK(again.get("/Patient/" + id).status == 200);
  CHECK(text_at(json(again.get("/Patient?_summary=count").body), "total") == "2");
  CHECK(again.send_json("POST", "/Patient", patient(100)).status == 201);
  const Run check =
      run_fhirgate("audit verify --config " + dir + "/gateway.json --db " + disk.path() + "/fhirgate.db");
  CHECK_MESSAGE(check.status == 0, check.out, check.err);
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
  CHECK_MESSAGE(run.err.find("cannot open the database " + g.disk.path() +
                             "/fhirgate.db for writing: Read-only") != std::string::npos,
                run.err);
  REQUIRE(g.disk.read_only(false));
}

// One gateway per database, whatever the path: the lock is on the database file itself (red team: a hard
// link, or the audit log files moved aside, let a second gateway serve reads whose AuditEvents never
// reached the trail).
TEST_CASE("storage: a second gateway is refused on the same database through any path") {
  GatewayProcess serving;
  const std::string db = serving.dir() + "/fhirgate.db";
  const std::string other = temp_dir();
  std::filesystem::create_symlink(db, other + "/link.db");
  std::ofstream(other + "/gateway.json") << R"({"security": {"enabled": false},
      "partners": [{"id": "gp", "name": "GP", "inbound": ["fhir-rest"]}]})";
  const std::string add_token = "partner add-token gp --config " + other + "/gateway.json --db ";
  auto second = [&](const std::string& path) {
    // `timeout`: a second gateway that started would serve until killed (status 124).
    const std::string cmd = "timeout 20 " + std::string(FHIRGATE_BINARY) +
                            " serve --port 0 --bind 127.0.0.1 --db " + path + " > " + other + "/out 2> " +
                            other + "/err";
    const int raw = std::system(cmd.c_str());
    std::ifstream in(other + "/err");
    std::stringstream err;
    err << in.rdbuf();
    return std::pair{WEXITSTATUS(raw), err.str()};
  };
  for (const std::string& path : {db, other + "/link.db"}) {
    CAPTURE(path);
    const auto [status, err] = second(path);
    CHECK(status == 1);
    CHECK_MESSAGE(err.find("in use by another fhirgate process") != std::string::npos, err);
  }
  std::filesystem::create_hard_link(db, other + "/hard.db");
  // A hard link is refused before SQLite opens it (it would start a database of its own in a write-ahead
  // log named after the link, and a later open through the link could overwrite the real one).
  const auto [linked_status, linked_err] = second(other + "/hard.db");
  CHECK(linked_status == 1);
  CHECK_MESSAGE(linked_err.find("hard links") != std::string::npos, linked_err);
  CHECK_FALSE(std::filesystem::exists(other + "/hard.db-wal"));
  const Run linked_token = run_fhirgate(add_token + other + "/hard.db");
  CHECK(linked_token.status == 1);
  CHECK_MESSAGE(linked_token.err.find("hard links") != std::string::npos, linked_token.err);
  CHECK_FALSE(std::filesystem::exists(other + "/hard.db-wal"));
  std::filesystem::remove(other + "/hard.db");
  // A command beside the serving gateway (not its owner) still works through any other path.
  CHECK(run_fhirgate(add_token + other + "/link.db").status == 0);
  // The audit log files moved aside, as a careless log rotation would.
  for (const char* log : {".audit-log", ".audit-log.2"}) {
    std::filesystem::rename(db + log, db + log + ".old");
    std::ofstream(db + log).close();
  }
  const auto [status, err] = second(db);
  CHECK(status == 1);
  CHECK_MESSAGE(err.find("in use by another fhirgate process") != std::string::npos, err);
  HttpClient http(serving.port());
  CHECK(http.get("/metadata").status == 200);
  CHECK(serving.stop() == 0);
}

// Red team: with the database file replaced under a serving gateway (cp + mv), a second start, refused,
// had already opened SQLite on the new file: it took over the serving gateway's write-ahead log and
// deleted it, so writes acknowledged afterwards were lost. Nothing opens such a file now.
TEST_CASE("storage: a database file replaced under a serving gateway is opened by nothing else") {
  GatewayProcess serving;
  const std::string db = serving.dir() + "/fhirgate.db";
  HttpClient http(serving.port());
  REQUIRE(http.send_json("POST", "/Patient", patient(1)).status == 201);
  std::filesystem::copy_file(db, db + ".copy");
  std::filesystem::rename(db + ".copy", db);
  const std::string cmd = "timeout 20 " + std::string(FHIRGATE_BINARY) +
                          " serve --port 0 --bind 127.0.0.1 --db " + db + " > /dev/null 2> " + serving.dir() +
                          "/second.err";
  CHECK(WEXITSTATUS(std::system(cmd.c_str())) == 1);
  std::ifstream in(serving.dir() + "/second.err");
  std::stringstream err;
  err << in.rdbuf();
  CHECK_MESSAGE(err.str().find("was replaced or moved while that gateway runs") != std::string::npos,
                err.str());
  std::ofstream(serving.dir() + "/gateway.json") << R"({"security": {"enabled": false},
      "partners": [{"id": "gp", "name": "GP", "inbound": ["fhir-rest"]}]})";
  const Run token =
      run_fhirgate("partner add-token gp --config " + serving.dir() + "/gateway.json --db " + db);
  CHECK(token.status == 1);
  CHECK_MESSAGE(token.err.find("was replaced or moved") != std::string::npos, token.err);
  // The serving gateway's write-ahead log is untouched: what it acknowledges now is still there after it.
  CHECK(std::filesystem::exists(db + "-wal"));
  const auto created = http.send_json("POST", "/Patient", patient(2));
  REQUIRE(created.status == 201);
  const std::string id(json(created.body).string_at("id"));
  CHECK(http.get("/Patient/" + id).status == 200);
  // audit verify, which takes no lock, is refused on it too (it would read the wrong file).
  const Run verify = run_fhirgate("audit verify --config " + serving.dir() + "/gateway.json --db " + db);
  CHECK(verify.status == 2);
  CHECK(serving.stop() == 0);
}

// Red team, third round: with the file moved away, a refused command made an empty file at the path, which
// the serving gateway's next connections opened: SQLite deleted its write-ahead log, and everything in it.
TEST_CASE(
    "storage: a database file moved away under a serving gateway: nothing makes a new one in its place") {
  GatewayProcess serving;
  const std::string db = serving.dir() + "/fhirgate.db";
  HttpClient http(serving.port());
  REQUIRE(http.send_json("POST", "/Patient", patient(1)).status == 201);
  std::filesystem::rename(db, db + ".moved");
  const std::string cmd = "timeout 20 " + std::string(FHIRGATE_BINARY) +
                          " serve --port 0 --bind 127.0.0.1 --db " + db + " > /dev/null 2> " + serving.dir() +
                          "/second.err";
  CHECK(WEXITSTATUS(std::system(cmd.c_str())) == 1);
  CHECK_FALSE(std::filesystem::exists(db));
  CHECK(std::filesystem::exists(db + "-wal"));
  std::filesystem::rename(db + ".moved", db);
  CHECK(http.get("/metadata").status == 200);
  CHECK(serving.stop() == 0);
}

}  // namespace
}  // namespace fhirgate::testing
