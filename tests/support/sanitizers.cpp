#include "tests/support/sanitizers.hpp"

#include <algorithm>
#include <cstdlib>
#include <string>

namespace fhirgate::testing {

// GCC defines __SANITIZE_*__; clang 14 answers __has_feature instead.
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FHIRGATE_ASAN 1
#endif
#if __has_feature(thread_sanitizer)
#define FHIRGATE_TSAN 1
#endif
#endif

std::string_view sanitizer() {
#if defined(__SANITIZE_ADDRESS__) || defined(FHIRGATE_ASAN)
  return "address";
#elif defined(__SANITIZE_THREAD__) || defined(FHIRGATE_TSAN)
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
