#include "tests/support/sanitizers.hpp"

#include <algorithm>
#include <cstdlib>
#include <string>

namespace fhirgate::testing {

std::string_view sanitizer() {
#if defined(__SANITIZE_ADDRESS__)
  return "address";
#elif defined(__SANITIZE_THREAD__)
  return "thread";
#else
  return "";
#endif
}

int time_factor() {
  static const int factor = [] {
    const char* text = std::getenv("FHIRGATE_TEST_TIME_FACTOR");
    return text ? std::max(1, std::atoi(text)) : 1;
  }();
  return factor;
}

std::string sanitizer_report(const std::string& output) {
  std::size_t first = std::string::npos;
  for (const char* marker : {"ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                             "runtime error:", "WARNING: ThreadSanitizer", "ThreadSanitizer: "}) {
    first = std::min(first, output.find(marker));
  }
  if (first == std::string::npos) return {};
  const std::size_t line = output.rfind('\n', first);
  return output.substr(line == std::string::npos ? 0 : line + 1);
}

}  // namespace fhirgate::testing
