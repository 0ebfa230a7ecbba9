#pragma once
// What the tests need to know about a sanitized build (CMake's FHIRGATE_SANITIZE, scripts/sanitize): which
// sanitizer this binary was built with, how much to stretch deadlines, and whether a child process's
// output holds a sanitizer report.
#include <chrono>
#include <string>
#include <string_view>

namespace fhirgate::testing {

// "address" (ASan + UBSan), "thread" (TSan) or "" (none), from the compiler's own macros.
std::string_view sanitizer();

// FHIRGATE_TEST_TIME_FACTOR from the environment (tests/CMakeLists.txt sets it in sanitized builds), at
// least 1: the factor by which deadlines that wait for the gateway are stretched.
int time_factor();

template <class Rep, class Period>
std::chrono::duration<Rep, Period> scaled(std::chrono::duration<Rep, Period> d) {
  return d * time_factor();
}

// The first sanitizer report in `output` (ASan, LeakSanitizer, UBSan's "runtime error:", TSan), from its
// first line to the end; empty when there is none.
std::string sanitizer_report(const std::string& output);

}  // namespace fhirgate::testing
