#pragma once
// The single writer: group commit over the one read-write SQLite connection. See writer.cpp.
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "fhir/json.hpp"
#include "fhir/result.hpp"
#include "fhir/search_params.hpp"
#include "gateway/store/audit_log.hpp"
#include "gateway/store/audit_spool.hpp"

namespace fhirgate::gateway::store {

class AuditSpool;
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

// A plan that only records AuditEvents (a read's). When the writer owns the audit spool it appends the
// records to the audit log file instead of running the plan (audit_spool.hpp); run as a plan, it
// inserts them.
struct AuditOnlyPlan {
  std::vector<AuditRecord> records;
  Status operator()(WriteTxn& txn) const;
};

struct WriterOptions {
  std::size_t max_queue = 10000;  // plans waiting; beyond it submit() answers busy
  std::size_t max_batch = 512;    // plans per transaction
  // While reads keep coming (the last group of reads' AuditEvents was appended less than gather_reads
  // ago) and no write waits, the writer waits up to gather_reads for more reads before it appends, up to
  // gather_reads_up_to of them: one fdatasync then covers more reads. An idle gateway never waits.
  std::chrono::microseconds gather_reads{1000};
  std::size_t gather_reads_up_to = 64;
  SpoolOptions spool;
};

struct WriterStats {
  std::uint64_t batches = 0;
  std::uint64_t plans = 0;
};

class Writer {
 public:
  // `db_path`: the database's path, for the audit spool (audit_spool.hpp), which this process opens when
  // it owns the database (`owner`, DatabaseLock); another process may not append AuditEvents.
  Writer(std::unique_ptr<Connection> db, const std::string& db_path, bool owner,
         const fhir::SearchParamRegistry& registry, const ParamKeys& keys, const AuditKey& audit_key,
         WriterOptions options = {});
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
  // The logged AuditEvents not yet in the tables that `keep` selects, oldest first (any thread).
  std::vector<AuditRecord> logged_audits(const std::function<bool(const AuditRecord&)>& keep) const;
  bool owns_audit_log() const { return spool_ != nullptr; }
  // Set-up (any thread, also after plans ran): each batch uses the observer set when it was taken from
  // the queue.
  void set_commit_observer(CommitObserver observer);

 private:
  struct Job {
    WritePlan plan;
    WriteDone done;
    std::vector<AuditRecord> logged;  // an AuditOnlyPlan's records, for the log file (plan is then empty)
  };
  void loop();
  void count_batch(std::size_t plans);
  void gather_reads(std::unique_lock<std::mutex>& lock);  // under mutex_
  void commit_batch(std::deque<Job>& batch);
  void commit_plans(std::deque<Job>& batch);
  void log_audits(std::deque<Job>& batch);

  std::unique_ptr<Connection> db_;
  const fhir::SearchParamRegistry& registry_;
  const ParamKeys& keys_;
  const AuditKey& audit_key_;
  WriterOptions options_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Job> queue_;
  std::size_t plans_queued_ = 0;    // under mutex_: the jobs in queue_ with a plan
  bool gathering_ = false;          // under mutex_: the writer waits for more reads (gather_reads)
  CommitObserver commit_observer_;  // under mutex_
  bool stopping_ = false;
  WriterStats stats_;
  std::int64_t last_ms_ = 0;
  std::chrono::steady_clock::time_point last_logged_;  // writer thread: the last append of reads' events
  // The audit chain's end (writer thread only) and where reads' AuditEvents go.
  AuditTail tail_;
  std::unique_ptr<AuditSpool> spool_;
  std::thread thread_;
};

}  // namespace fhirgate::gateway::store
