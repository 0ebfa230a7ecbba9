#pragma once
// A chain of stages: how every entry point processes an exchange (../shared/DESIGN.md "The pipeline").
//
// Design note
// -----------
// Each entry point (REST, HL7 v2, feed file, delivery) declares its chain once, as a table of small
// stages in order (rest/rest_job.cpp, inbound/v2_job.cpp, ...). A stage is a plain function of the job;
// it records a failure on the job's Exchange (Exchange::fail), which stops the chain: the stages after it
// are skipped, except those marked `always` — the commit (which still records the exchange's AuditEvent
// and journal entry), the response and the finish (metrics, log line). So a refused request leaves the
// same records as an answered one, written in one place.
//
// A stage runs where its table says: on the io thread (most), on a worker (validation: CPU work that must
// not stall the io threads), in the background (a feed file, which waits on the writer), or as the commit
// on the store's writer thread. Chain implements net::Job for the network sessions, which carry each
// step where it belongs and resume the chain on their own strand; nothing here knows Asio. An exception
// thrown by a stage ends as an internal error of the exchange, never as a crash of a worker thread.
//
// The Job type (CRTP) provides: `pipeline::Exchange& exchange()` and `store::WritePlan commit_plan()`
// (the plan of its commit stage, null when there is nothing to commit).
#include <cstddef>
#include <exception>
#include <span>
#include <utility>

#include "gateway/net/job.hpp"
#include "gateway/pipeline/exchange.hpp"
#include "gateway/pipeline/record.hpp"

namespace fhirgate::gateway::pipeline {

enum class Where : std::uint8_t { io, worker, background, commit };

template <class Job>
struct Stage {
  const char* name;
  Where where;
  bool always;            // runs after an error too
  void (*run)(Job& job);  // null for the commit stage
  // Whether the stage has anything to do for this job (a worker stage with nothing to validate is not
  // sent to a worker); null: always.
  bool (*wanted)(const Job& job) = nullptr;
};

template <class Job, class Base>
class Chain : public Base {
 public:
  explicit Chain(std::span<const Stage<Job>> stages) : stages_(stages) {}

  net::Job::Next step() override {
    while (next_ < stages_.size()) {
      const Stage<Job>& stage = stages_[next_++];
      if (self().exchange().failed() && !stage.always) continue;
      if (stage.wanted && !stage.wanted(self())) continue;
      switch (stage.where) {
        case Where::io:
          run(stage);
          break;
        case Where::worker:
          elsewhere_ = &stage;
          return net::Job::Next::worker;
        case Where::background:
          elsewhere_ = &stage;
          return net::Job::Next::background;
        case Where::commit:
          try {
            plan_ = self().commit_plan();
          } catch (const std::exception& e) {
            self().exchange().fail(internal_error(stage, e));
          }
          if (plan_) return net::Job::Next::commit;
          break;
      }
    }
    return net::Job::Next::done;
  }

  void run_elsewhere() override {
    if (elsewhere_) run(*std::exchange(elsewhere_, nullptr));
  }
  store::WritePlan take_plan() override { return std::move(plan_); }
  void committed(Status outcome) override { after_commit(self().exchange(), outcome); }

 private:
  Job& self() { return static_cast<Job&>(*this); }
  static Error internal_error(const Stage<Job>& stage, const std::exception& e) {
    Error err = Error::make(ErrorCode::internal, "Internal server error");
    err.internal = std::string("stage ") + stage.name + ": " + e.what();
    return err;
  }
  void run(const Stage<Job>& stage) {
    try {
      stage.run(self());
    } catch (const std::exception& e) {
      self().exchange().fail(internal_error(stage, e));
    }
  }

  std::span<const Stage<Job>> stages_;
  std::size_t next_ = 0;
  const Stage<Job>* elsewhere_ = nullptr;
  store::WritePlan plan_;
};

}  // namespace fhirgate::gateway::pipeline
