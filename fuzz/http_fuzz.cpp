// The HTTP request path as the server drives it: the REST pipeline's job for a request built from the
// input, run to its end with its commit through the store's writer (net::run_inline), as the HTTP server
// does. Two gateways: the sample configuration (security on: bearer tokens, consent,
// audit) and the default one (security off), each on its own SQLite database in a temporary folder.
//
// Input: one flags byte, then an HTTP/1.1-like request with LF (or CRLF) line ends:
//     METHOD TARGET\nName: value\n...\n\nBODY
// Flags: bits 0-2 choose the bearer token (0 none, 1.. one per partner and role of the sample
// configuration, 7 a malformed one), bit 3 the gateway without security. Any 500 answer is a failure.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "fhir/validator.hpp"
#include "fuzz/common.hpp"
#include "gateway/config/config.hpp"
#include "gateway/net/job.hpp"
#include "gateway/security/tokens.hpp"
#include "gateway/server/gateway.hpp"
#include "gateway/store/store.hpp"

using namespace fhirgate;
using namespace fhirgate::gateway;

namespace {

// A folder for the databases (in $FUZZ_TMPDIR, else /dev/shm or /tmp), removed at exit; never destroyed
// itself, so the exit handler can use it.
const std::string& temp_root() {
  static const std::string* root = [] {
    const char* base = std::getenv("FUZZ_TMPDIR");
    if (base == nullptr) base = std::filesystem::is_directory("/dev/shm") ? "/dev/shm" : "/tmp";
    auto* made = new std::string(std::string(base) + "/fhirgate-http-fuzz-XXXXXX");
    if (!mkdtemp(made->data())) fuzz::fail("mkdtemp");
    std::atexit([] { std::filesystem::remove_all(temp_root()); });
    return made;
  }();
  return *root;
}

// Everything serve() builds in front of the HTTP server (gateway/server/gateway.hpp), and a token for
// every partner and role.
struct Fuzzed {
  explicit Fuzzed(Config c) : config(std::move(c)), gateway(config) {
    for (const auto& p : config.partners) {
      NewToken token = make_token(p.id);
      const Status stored =
          gateway.store().writer().run([credential = token.credential](store::WriteTxn& txn) -> Status {
            txn.add_credential(credential);
            return Ok{};
          });
      if (!stored) fuzz::fail("storing a token");
      tokens.push_back(token.token);
    }
  }
  Config config;
  gateway::Gateway gateway;
  std::vector<std::string> tokens;
};

// Never destroyed: the writer threads run until the process ends.
Fuzzed& secured() {
  static Fuzzed* g = [] {
    Config c = load_config(fuzz::source_path("samples/gateway.json"));
    c.database_path = temp_root() + "/secured.db";
    c.security.audit_key_file = temp_root() + "/secured.audit-key";
    c.routes.clear();
    return new Fuzzed(std::move(c));
  }();
  return *g;
}

Fuzzed& open() {
  static Fuzzed* g = [] {
    Config c = default_config();
    c.profiles_dir = fuzz::source_path("profiles");
    c.database_path = temp_root() + "/open.db";
    c.security.audit_key_file = temp_root() + "/open.audit-key";
    return new Fuzzed(std::move(c));
  }();
  return *g;
}

std::string_view next_line(std::string_view& text) {
  const std::size_t end = text.find('\n');
  std::string_view line = text.substr(0, end);
  text.remove_prefix(end == std::string_view::npos ? text.size() : end + 1);
  if (line.ends_with('\r')) line.remove_suffix(1);
  return line;
}

net::HttpRequest request_from(std::string_view text) {
  net::HttpRequest request;
  std::string_view start = next_line(text);
  const std::size_t space = start.find(' ');
  request.method = std::string(start.substr(0, space));
  if (space != std::string_view::npos) request.target = std::string(start.substr(space + 1));
  for (int n = 0; n < 32 && !text.empty(); ++n) {
    const std::string_view line = next_line(text);
    if (line.empty()) break;
    const std::size_t colon = line.find(':');
    std::string_view value = colon == std::string_view::npos ? std::string_view() : line.substr(colon + 1);
    while (value.starts_with(' ')) value.remove_prefix(1);
    request.headers.emplace_back(std::string(line.substr(0, colon)), std::string(value));
  }
  request.body = std::string(text);
  request.remote_address = "192.0.2.1";
  return request;
}

void report_exception(const std::exception& e) {
  static std::set<std::string> seen;
  if (seen.insert(e.what()).second) std::fprintf(stderr, "http_fuzz: handle threw: %s\n", e.what());
  if (std::getenv("FHIRGATE_FUZZ_EXCEPTIONS_FATAL")) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  (void)secured();
  (void)open();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const std::uint8_t flags = data[0];
  Fuzzed& fuzzed = (flags & 8) ? open() : secured();
  net::HttpRequest request =
      request_from(std::string_view(reinterpret_cast<const char*>(data + 1), size - 1));
  const std::size_t token = flags & 7;
  if (token == 7) {
    request.headers.emplace_back("Authorization", "Bearer fg_0123456789abcdef_nottherightsecret");
  } else if (token > 0 && token <= fuzzed.tokens.size()) {
    request.headers.emplace_back("Authorization", "Bearer " + fuzzed.tokens[token - 1]);
  }

  try {
    auto job = fuzzed.gateway.rest().start(request);
    net::run_inline(*job, fuzzed.gateway.store().writer());
    net::HttpResponse response = job->take_response();
    FUZZ_CHECK(response.status >= 100 && response.status <= 599);
    // A 500 is a bug: outside input must get a 4xx. FHIRGATE_FUZZ_ALLOW_500 tolerates those whose body
    // holds its text (any, when empty), to look past one already reported.
    if (response.status == 500) {
      const char* allowed = std::getenv("FHIRGATE_FUZZ_ALLOW_500");
      if (allowed == nullptr || response.body.find(allowed) == std::string::npos) {
        std::fprintf(stderr, "http_fuzz: 500 for %s %s: %s\n", request.method.c_str(), request.target.c_str(),
                     response.body.c_str());
        fuzz::fail("an internal server error");
      }
    }
  } catch (const std::exception& e) {
    report_exception(e);
  }
  return 0;
}
