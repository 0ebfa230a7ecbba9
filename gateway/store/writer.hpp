#pragma once
// The single writer: group commit over the one read-write SQLite connection. See writer.cpp.
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "fhir/json.hpp"
#include "fhir/result.hpp"
#include "fhir/search_params.hpp"

namespace fhirgate::gateway::store {

class AuditKey;
class Connection;
class ParamKeys;
class WriteTxn;
struct VersionRecord;

// Told of every committed (or failed) batch: how many plans, and how long BEGIN to COMMIT took.
using CommitObserver = std::function<void(std::size_t plans, double seconds)>;

// A write plan: runs on the writer thread inside its own SAVEPOINT. An error rolls back this plan only.
using WritePlan = std::function<Status(WriteTxn&)>;
// Called on the writer thread once the plan's outcome is durable (or failed); must not block — post the
// continuation to the requester's executor.
using WriteDone = std::function<void(Status)>;

struct WriterOptions {
  std::size_t max_queue = 10000;  // plans waiting; beyond it submit() answers busy
  std::size_t max_batch = 512;    // plans per transaction
};

struct WriterStats {
  std::uint64_t batches = 0;
  std::uint64_t plans = 0;
};

class Writer {
 public:
  Writer(std::unique_ptr<Connection> db, const fhir::SearchParamRegistry& registry, const ParamKeys& keys,
         const AuditKey& audit_key, WriterOptions options = {});
  ~Writer();  // stops after draining the queue
  Writer(const Writer&) = delete;
  Writer& operator=(const Writer&) = delete;

  // Queues a plan; `done` is called later on the writer thread. Errors (returned now, `done` not called):
  // busy when the queue is full or the writer has stopped.
  Status submit(WritePlan plan, WriteDone done);
  // Submits and waits for the outcome (start-up and CLI use only; never on an io thread).
  Status run(WritePlan plan);
  // Finishes every queued plan, then stops the thread. Idempotent.
  void stop();

  WriterStats stats() const;
  // Set-up (any thread, also after plans ran): each batch uses the observer set when it was taken from
  // the queue.
  void set_commit_observer(CommitObserver observer);

 private:
  struct Job {
    WritePlan plan;
    WriteDone done;
  };
  void loop();
  void count_batch(std::size_t plans);
  void commit_batch(std::deque<Job>& batch);

  std::unique_ptr<Connection> db_;
  const fhir::SearchParamRegistry& registry_;
  const ParamKeys& keys_;
  const AuditKey& audit_key_;
  WriterOptions options_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Job> queue_;
  CommitObserver commit_observer_;  // under mutex_
  bool stopping_ = false;
  WriterStats stats_;
  std::int64_t last_ms_ = 0;
  std::thread thread_;
};

}  // namespace fhirgate::gateway::store
