// The sanitized builds (scripts/sanitize) rely on the test support noticing a report from a fhirgate
// process: these tests hold that up in every build, sanitized or not.
#include <signal.h>

#include <fstream>
#include <string>

#include "tests/integration/common.hpp"

namespace fhirgate::testing {
namespace {

TEST_CASE("sanitizer_report finds ASan, LeakSanitizer, UBSan and TSan reports, and nothing in plain logs") {
  CHECK(sanitizer_report("fhirgate listening on http://127.0.0.1:1/\n{\"level\":\"error\"}\n").empty());
  CHECK(sanitizer_report("a\n==7==ERROR: AddressSanitizer: heap-use-after-free\n#0 x\n") ==
        "==7==ERROR: AddressSanitizer: heap-use-after-free\n#0 x\n");
  CHECK(sanitizer_report("==7==ERROR: LeakSanitizer: detected memory leaks\n") ==
        "==7==ERROR: LeakSanitizer: detected memory leaks\n");
  CHECK(sanitizer_report("log\ngateway/x.cpp:1:2: runtime error: signed integer overflow\n") ==
        "gateway/x.cpp:1:2: runtime error: signed integer overflow\n");
  CHECK(sanitizer_report("WARNING: ThreadSanitizer: data race (pid=1)\n") ==
        "WARNING: ThreadSanitizer: data race (pid=1)\n");
}

// A report already in the stderr.log the gateway appends to stands for one the gateway itself wrote.
TEST_CASE("a sanitizer report in a gateway's stderr fails the test that started it" *
          doctest::should_fail()) {
  const std::string dir = temp_dir();
  std::ofstream(dir + "/stderr.log") << "==1==ERROR: LeakSanitizer: detected memory leaks\n";
  GatewayProcess gateway({}, dir);
  CHECK(gateway.stop(SIGTERM) == 0);
}

}  // namespace
}  // namespace fhirgate::testing
