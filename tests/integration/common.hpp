#pragma once
// Shared helpers for the integration tests: one gateway process for the tests that only add their own
// data (each uses unique names), and JSON access to response bodies.
#include <doctest/doctest.h>
#include <sys/wait.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "fhir/json.hpp"
#include "tests/support/gateway_process.hpp"
#include "tests/support/http_client.hpp"
#include "tests/support/paths.hpp"
#include "tests/support/sanitizers.hpp"

namespace fhirgate::testing {

// A gateway with the default configuration, started on first use and stopped at exit.
inline GatewayProcess& shared_gateway() {
  static GatewayProcess gateway;
  return gateway;
}

inline fhir::Node json(const std::string& body) {
  auto parsed = fhir::parse_json(body);
  REQUIRE_MESSAGE(parsed.ok(), "not JSON: " << body);
  return std::move(*parsed);
}

// Follows a dotted path with [n] indexes, e.g. "entry[0].resource.id"; nullptr when absent.
inline const fhir::Node* at(const fhir::Node& root, const std::string& path) {
  const fhir::Node* n = &root;
  std::size_t pos = 0;
  while (n && pos < path.size()) {
    std::size_t end = path.find_first_of(".[", pos);
    if (end == std::string::npos) end = path.size();
    if (end > pos) n = n->find(path.substr(pos, end - pos));
    pos = end;
    while (n && pos < path.size() && path[pos] == '[') {
      const std::size_t close = path.find(']', pos);
      const std::size_t index = std::stoul(path.substr(pos + 1, close - pos - 1));
      n = n->is_array() && index < n->items().size() ? &n->items()[index] : nullptr;
      pos = close + 1;
    }
    if (pos < path.size() && path[pos] == '.') ++pos;
  }
  return n;
}

inline std::string text_at(const fhir::Node& root, const std::string& path) {
  const fhir::Node* n = at(root, path);
  return n ? n->text() : std::string("<absent>");
}

// A name no other test uses, so tests sharing one gateway do not see each other's data.
inline std::string unique_name(const std::string& stem) {
  static std::atomic<int> counter{0};
  return stem + "zq" + std::to_string(::getpid() % 1000) + "x" + std::to_string(counter++) + "q";
}

// A valid NHS number (mod 11 check digit), different for each n: the partnership keeps one Patient per
// NHS number, so tests that create Patients need their own.
inline std::string nhs_number(unsigned n) {
  for (unsigned k = n * 7 + 100000000;; ++k) {
    std::string digits = std::to_string(900000000 + k % 99999999);
    int sum = 0;
    for (int i = 0; i < 9; ++i) sum += (digits[static_cast<std::size_t>(i)] - '0') * (10 - i);
    const int check = 11 - sum % 11;
    if (check == 10) continue;
    return digits + std::to_string(check == 11 ? 0 : check);
  }
}

inline std::string first_issue(const Response& r) {
  auto oo = json(r.body);
  CHECK(oo.string_at("resourceType") == "OperationOutcome");
  return text_at(oo, "issue[0].diagnostics");
}

// Runs `fhirgate ARGS < stdin_text` and collects its exit status and output.
struct Run {
  int status;
  std::string out, err;
};

inline Run run_fhirgate(const std::string& args, const std::string& stdin_text = {}) {
  const std::string dir = temp_dir();
  std::ofstream(dir + "/in") << stdin_text;
  const std::string cmd =
      std::string(FHIRGATE_BINARY) + " " + args + " < " + dir + "/in > " + dir + "/out 2> " + dir + "/err";
  const int raw = std::system(cmd.c_str());
  auto slurp = [](const std::string& p) {
    std::ifstream in(p);
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
  };
  Run run{WEXITSTATUS(raw), slurp(dir + "/out"), slurp(dir + "/err")};
  CHECK_MESSAGE(sanitizer_report(run.err).empty(), "fhirgate " << args << " reported:\n" << run.err);
  return run;
}

// A new bearer token for `holder`, made with `fhirgate partner add-token` against the database a
// GatewayProcess in `dir` uses (the token is the last line of the output).
inline std::string new_token(const std::string& config, const std::string& dir, const std::string& holder) {
  const Run r =
      run_fhirgate("partner add-token " + holder + " --config " + config + " --db " + dir + "/fhirgate.db");
  REQUIRE_MESSAGE(r.status == 0, r.err);
  std::string out = r.out;
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out.substr(out.rfind('\n') + 1);
}

inline std::vector<std::pair<std::string, std::string>> bearer(const std::string& token) {
  return {{"Authorization", "Bearer " + token}};
}

// The gateway on samples/gateway.json with its own database (MLLP on a free port), and a bearer token for
// each holder asked for.
struct SampleGateway {
  std::string dir = temp_dir();
  std::string config = source_path("samples/gateway.json");
  std::map<std::string, std::string> tokens;
  std::unique_ptr<GatewayProcess> gateway;
  explicit SampleGateway(const std::vector<std::string>& holders) {
    for (const auto& holder : holders) tokens[holder] = new_token(config, dir, holder);
    gateway = std::make_unique<GatewayProcess>(
        std::vector<std::string>{"--config", config, "--mllp-port", "0"}, dir);
  }
  std::uint16_t port() const { return gateway->port(); }
};

}  // namespace fhirgate::testing
