#pragma once
// A time budget for one piece of CPU-bound work (validating a resource, evaluating FHIRPath), so that one
// pathological invariant or a huge Bundle cannot run unbounded. The work counts its steps (an element
// visited, an expression evaluated, an item compared) and the steady clock is read only once every
// kStepsPerClockRead steps: counting a step costs a subtraction and a comparison, and without a deadline
// the clock is never read at all.
#include <chrono>
#include <cstdint>

namespace fhirgate::fhir {

class Budget {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr std::uint64_t kStepsPerClockRead = 256;

  // time_point::max() (the default) means no deadline.
  explicit Budget(Clock::time_point deadline = Clock::time_point::max())
      : deadline_(deadline), left_(deadline == Clock::time_point::max() ? kUnlimited : kStepsPerClockRead) {}

  // Counts `steps` steps of work. False once the deadline has passed (as far as the last reading of the
  // clock knows), and from then on. Not thread-safe: one Budget per piece of work.
  bool spend(std::uint64_t steps = 1) {
    if (steps < left_) {
      left_ -= steps;
      return true;
    }
    return read_clock();
  }

  // Reads the clock now, whatever the steps counted. False once the deadline has passed.
  bool read_clock() {
    if (exceeded_) return false;
    if (deadline_ == Clock::time_point::max()) {
      left_ = kUnlimited;
      return true;
    }
    if (Clock::now() >= deadline_) {
      exceeded_ = true;
      left_ = 0;
      return false;
    }
    left_ = kStepsPerClockRead;
    return true;
  }

  bool exceeded() const { return exceeded_; }

 private:
  static constexpr std::uint64_t kUnlimited = UINT64_MAX;

  Clock::time_point deadline_;
  std::uint64_t left_;
  bool exceeded_ = false;
};

}  // namespace fhirgate::fhir
