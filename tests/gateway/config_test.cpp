#include "gateway/config.hpp"

#include <doctest/doctest.h>

#include <fstream>
#include <stdexcept>

#include "tests/support/paths.hpp"

namespace fhirgate::gateway {
namespace {

std::string write(const std::string& text) {
  const std::string path = testing::temp_dir() + "/config.json";
  std::ofstream(path) << text;
  return path;
}

std::string load_error(const std::string& text) {
  try {
    load_config(write(text));
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "";
}

TEST_CASE("the sample configuration loads, with paths relative to its folder") {
  const Config c = load_config(testing::source_path("samples/gateway.json"));
  CHECK(c.server.port == 8080);
  CHECK(c.server.threads == 2);
  CHECK(c.server.body_limit_bytes == 10485760);
  CHECK(c.database_path == testing::source_path("var/fhirgate.db"));
  REQUIRE(c.seed_files.size() == 1);
  CHECK(c.seed_files[0] == testing::source_path("samples/patients.json"));
  CHECK(c.cached_types == std::vector<std::string>{"Patient", "Consent", "AuditEvent"});
}

TEST_CASE("configuration mistakes name the file, the key and the problem") {
  CHECK(load_error(R"({"server":{"prot":1}})").find("server.prot: unknown setting") != std::string::npos);
  CHECK(load_error(R"({"server":{"port":"80"}})").find("server.port: expected a number") !=
        std::string::npos);
  CHECK(load_error(R"({"server":{"port":70000}})").find("between 0 and 65535") != std::string::npos);
  CHECK(load_error(R"({"cachedTypes":[]})").find("cachedTypes") != std::string::npos);
  CHECK(load_error("{\n\"server\": {,}\n}").find(":2:") != std::string::npos);
  CHECK(load_error(R"({"database":{"path":"x.db"}})").empty());
}

}  // namespace
}  // namespace fhirgate::gateway
