#include "fhir/budget.hpp"

#include <doctest/doctest.h>

namespace fhirgate::fhir {
namespace {

using Clock = Budget::Clock;

TEST_CASE("budget: without a deadline every step is allowed") {
  Budget budget;
  for (int k = 0; k < 100000; ++k) REQUIRE(budget.spend());
  CHECK(budget.spend(UINT64_MAX));
  CHECK(budget.read_clock());
  CHECK_FALSE(budget.exceeded());
}

TEST_CASE("budget: a passed deadline is seen at the next reading of the clock, and stays exceeded") {
  Budget budget(Clock::now() - std::chrono::seconds(1));
  std::uint64_t allowed = 0;
  while (budget.spend()) ++allowed;
  CHECK(allowed == Budget::kStepsPerClockRead - 1);
  CHECK(budget.exceeded());
  CHECK_FALSE(budget.spend());
  CHECK_FALSE(budget.read_clock());

  Budget now(Clock::now() - std::chrono::seconds(1));
  CHECK_FALSE(now.read_clock());
  Budget big_step(Clock::now() - std::chrono::seconds(1));
  CHECK_FALSE(big_step.spend(Budget::kStepsPerClockRead));
}

TEST_CASE("budget: a deadline ahead allows steps until it passes") {
  Budget budget(Clock::now() + std::chrono::hours(1));
  for (int k = 0; k < 100000; ++k) REQUIRE(budget.spend());
  CHECK(budget.read_clock());
  CHECK_FALSE(budget.exceeded());
}

}  // namespace
}  // namespace fhirgate::fhir
