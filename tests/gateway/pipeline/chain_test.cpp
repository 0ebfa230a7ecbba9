// The chain of stages (pipeline/chain.hpp) without a server: where each stage runs, that the first error
// stops the chain while the commit, response and finish stages still run, and that an exception in a
// stage becomes the exchange's internal error. Also the one table of outcomes (pipeline/record.hpp).
#include "gateway/pipeline/chain.hpp"

#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "gateway/pipeline/record.hpp"

namespace fhirgate::gateway::pipeline {
namespace {

struct TestJob;
using Ran = std::vector<std::string>;

void io_stage(TestJob& job);
void failing_stage(TestJob& job);
void throwing_stage(TestJob& job);
void worker_stage(TestJob& job);
void respond_stage(TestJob& job);
bool never(const TestJob&) {
  return false;
}

struct TestJob final : Chain<TestJob, net::Job> {
  explicit TestJob(std::span<const Stage<TestJob>> stages) : Chain(stages) {}
  Exchange& exchange() { return ex; }
  store::WritePlan commit_plan() {
    ran.push_back("commit");
    return [](store::WriteTxn&) -> Status { return Ok{}; };
  }
  Exchange ex;
  Ran ran;
};

void io_stage(TestJob& job) {
  job.ran.push_back("io");
}
void failing_stage(TestJob& job) {
  job.ran.push_back("fail");
  job.ex.fail(Error::make(ErrorCode::forbidden, "no"));
}
void throwing_stage(TestJob&) {
  throw std::runtime_error("boom");
}
void worker_stage(TestJob& job) {
  job.ran.push_back("worker");
}
void respond_stage(TestJob& job) {
  job.ran.push_back("respond");
}

TEST_CASE("chain: stages run in order, each where its table says") {
  static constexpr Stage<TestJob> stages[] = {
      {"first", Where::io, false, io_stage},
      {"skipped", Where::worker, false, worker_stage, never},
      {"validate", Where::worker, false, worker_stage},
      {"commit", Where::commit, true, nullptr},
      {"respond", Where::io, true, respond_stage},
  };
  TestJob job(stages);
  CHECK(job.step() == net::Job::Next::worker);
  CHECK(job.ran == Ran{"io"});
  job.run_elsewhere();
  CHECK(job.step() == net::Job::Next::commit);
  CHECK(job.take_plan());
  job.committed(Ok{});
  CHECK(job.ex.committed);
  CHECK(job.step() == net::Job::Next::done);
  CHECK(job.ran == Ran{"io", "worker", "commit", "respond"});
}

TEST_CASE("chain: the first error stops the chain; commit, respond and finish still run") {
  static constexpr Stage<TestJob> stages[] = {
      {"refuse", Where::io, false, failing_stage}, {"validate", Where::worker, false, worker_stage},
      {"more", Where::io, false, io_stage},        {"commit", Where::commit, true, nullptr},
      {"respond", Where::io, true, respond_stage},
  };
  TestJob job(stages);
  CHECK(job.step() == net::Job::Next::commit);
  job.committed(Ok{});
  CHECK(job.step() == net::Job::Next::done);
  CHECK(job.ran == Ran{"fail", "commit", "respond"});
  CHECK(job.ex.error->code == ErrorCode::forbidden);
}

TEST_CASE("chain: a stage that throws is the exchange's internal error, not a crash") {
  static constexpr Stage<TestJob> stages[] = {
      {"throws", Where::worker, false, throwing_stage},
      {"respond", Where::io, true, respond_stage},
  };
  TestJob job(stages);
  CHECK(job.step() == net::Job::Next::worker);
  job.run_elsewhere();
  CHECK(job.step() == net::Job::Next::done);
  CHECK(job.ex.error->code == ErrorCode::internal);
  CHECK(job.ex.error->internal.find("boom") != std::string::npos);
  CHECK(job.ran == Ran{"respond"});
}

TEST_CASE("chain: a commit that fails leaves nothing stored, so a read's answer is the failure") {
  static constexpr Stage<TestJob> stages[] = {{"commit", Where::commit, true, nullptr}};
  TestJob job(stages);
  job.ex.audit.emplace();  // a read: nothing leaves without its AuditEvent
  CHECK(job.step() == net::Job::Next::commit);
  job.committed(Error::make(ErrorCode::busy, "disk full"));
  CHECK_FALSE(job.ex.committed);
  CHECK(job.ex.error->code == ErrorCode::busy);
  CHECK(job.ex.error->issues.front().diagnostics.find("could not be recorded") != std::string::npos);
}

TEST_CASE("record: one table of outcomes for the journal and the audit") {
  Exchange ok;
  CHECK(journal_status_of(ok, 0) == store::JournalStatus::stored);
  CHECK(journal_status_of(ok, 2) == store::JournalStatus::routed);
  CHECK(audit_outcome_of(ok) == AuditOutcome::success);
  Exchange refused;
  refused.fail(Error::make(ErrorCode::forbidden, "no"));
  CHECK(journal_status_of(refused, 0) == store::JournalStatus::rejected);
  CHECK(audit_outcome_of(refused) == AuditOutcome::minor_failure);
  Exchange broken;
  broken.fail(Error::make(ErrorCode::busy, "later"));
  CHECK(journal_status_of(broken, 0) == store::JournalStatus::failed);
  CHECK(audit_outcome_of(broken) == AuditOutcome::serious_failure);
  Exchange held;
  held.held = true;
  CHECK(journal_status_of(held, 0) == store::JournalStatus::held);
  CHECK(audit_outcome_of(held) == AuditOutcome::minor_failure);
  // The summary lists, stats and logs show: what and where, never the value.
  Error invalid =
      Error::make(ErrorCode::unprocessable, "The value 'Zq-secret' is not a valid date", "Patient.birthDate");
  invalid.internal = "validation failed";
  CHECK(error_summary(invalid) == "validation failed at Patient.birthDate");
  CHECK(error_summary(Error::make(ErrorCode::forbidden, "secret")) == "forbidden");
}

}  // namespace
}  // namespace fhirgate::gateway::pipeline
