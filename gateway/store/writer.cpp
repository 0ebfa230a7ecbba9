// Group commit.
//
// Why: with synchronous=FULL every COMMIT costs an fsync of the WAL (~0.25 ms here), which caps a
// one-transaction-per-request design at about 4,000 writes/s. Requests that arrive while one commit is
// in flight are instead collected and committed together: one fsync pays for the whole batch, and each
// request is answered only after the commit that contains it is durable.
//
// How: one thread owns the only read-write connection. It waits for queued plans, takes up to max_batch,
// opens BEGIN IMMEDIATE, runs each plan inside its own SAVEPOINT (a failing plan is rolled back alone and
// its requester gets its error; the others still commit), COMMITs once, and then calls every plan's
// `done`. If the COMMIT itself fails (disk full, I/O error, read-only file), the whole transaction is
// rolled back and every plan in it gets that error: nothing is acknowledged that is not on disk.
// No timer is needed to form batches: while one batch is being fsynced the next one queues up. Reads
// are the exception: under a steady stream of them the groups stay small (the io threads, not the
// fsync, set the pace), so while reads keep coming and no write waits, the writer waits up to
// gather_reads (1 ms) for more before it appends (an fdatasync each saved is CPU the io threads get;
// PostgreSQL's commit_delay does the same). An idle gateway never waits.
// The queue is bounded; when it is full, submit() says busy at once (the caller answers 503).
//
// The audit chain: this thread owns its end (tail_), since the chain runs through the tables and the
// audit log files. A batch first commits its plans (their AuditEvents chained inside the transaction; a
// plan or COMMIT that fails gives its seqs back), then appends the batch's read AuditEvents
// (AuditOnlyPlan) to the audit spool's current file, chained after them, with one fdatasync; only then are
// those reads answered. The spool's own thread moves them into the tables (audit_spool.hpp).
#include "gateway/store/writer.hpp"

#include <chrono>
#include <future>

#include "gateway/store/sqlite.hpp"
#include "gateway/store/store.hpp"

namespace fhirgate::gateway::store {
namespace {

std::int64_t system_now_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

}  // namespace

Status AuditOnlyPlan::operator()(WriteTxn& txn) const {
  for (const auto& record : records) txn.append_audit(record);
  return Ok{};
}

Writer::Writer(std::unique_ptr<Connection> db, const std::string& db_path, bool owner,
               const fhir::SearchParamRegistry& registry, const ParamKeys& keys, const AuditKey& audit_key,
               WriterOptions options)
    : db_(std::move(db)), registry_(registry), keys_(keys), audit_key_(audit_key), options_(options) {
  if (owner) spool_ = AuditSpool::open(db_path, *db_, tail_, options_.spool);
  thread_ = std::thread([this] { loop(); });
}

Writer::~Writer() {
  stop();
}

Status Writer::submit(WritePlan plan, WriteDone done) {
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return Error::make(ErrorCode::busy, "The server is shutting down; retry later");
    if (queue_.size() >= options_.max_queue) {
      return Error::make(ErrorCode::busy, "The write queue is full; retry later");
    }
    Job job{std::move(plan), std::move(done), {}};
    if (spool_) {
      if (auto* audit = job.plan.target<AuditOnlyPlan>()) {
        job.logged = std::move(audit->records);
        job.plan = nullptr;
      }
    }
    if (job.plan) ++plans_queued_;
    queue_.push_back(std::move(job));
    // A gathering writer is woken only when it should stop gathering (each futex wake costs this thread
    // a system call and the writer a context switch).
    if (gathering_ && plans_queued_ == 0 && queue_.size() < options_.gather_reads_up_to) return Ok{};
  }
  wake_.notify_one();
  return Ok{};
}

Status Writer::run(WritePlan plan) {
  auto promise = std::make_shared<std::promise<Status>>();
  auto future = promise->get_future();
  Status queued = submit(std::move(plan), [promise](Status s) { promise->set_value(std::move(s)); });
  if (!queued) return queued;
  return future.get();
}

void Writer::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_one();
  if (thread_.joinable()) thread_.join();
  if (spool_) spool_->stop();  // after the last append
}

void Writer::set_commit_observer(CommitObserver observer) {
  std::lock_guard lock(mutex_);
  commit_observer_ = std::move(observer);
}

WriterStats Writer::stats() const {
  std::lock_guard lock(mutex_);
  return stats_;
}

std::vector<AuditRecord> Writer::logged_audits(const std::function<bool(const AuditRecord&)>& keep) const {
  return spool_ ? spool_->pending(keep) : std::vector<AuditRecord>();
}

void Writer::loop() {
  std::deque<Job> batch;
  CommitObserver observer;
  for (;;) {
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping and drained
      gather_reads(lock);
      while (!queue_.empty() && batch.size() < options_.max_batch) {
        if (queue_.front().plan) --plans_queued_;
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
      observer = commit_observer_;
    }
    const auto began = std::chrono::steady_clock::now();
    const std::size_t plans = batch.size();
    commit_batch(batch);
    batch.clear();
    if (observer)
      observer(plans, std::chrono::duration<double>(std::chrono::steady_clock::now() - began).count());
  }
}

void Writer::gather_reads(std::unique_lock<std::mutex>& lock) {
  const auto now = std::chrono::steady_clock::now();
  if (!spool_ || options_.gather_reads.count() <= 0 || plans_queued_ > 0 ||
      now - last_logged_ > options_.gather_reads)
    return;
  gathering_ = true;
  wake_.wait_until(lock, now + options_.gather_reads, [this] {
    return stopping_ || plans_queued_ > 0 || queue_.size() >= options_.gather_reads_up_to;
  });
  gathering_ = false;
}

void Writer::commit_batch(std::deque<Job>& batch) {
  std::deque<Job> plans, logged;
  for (auto& job : batch) (job.plan ? plans : logged).push_back(std::move(job));
  if (!plans.empty()) commit_plans(plans);
  if (!logged.empty()) log_audits(logged);
}

void Writer::log_audits(std::deque<Job>& batch) {
  const AuditTail before = tail_;
  last_ms_ = std::max(system_now_ms(), last_ms_);
  std::vector<AuditRecord> records;
  for (auto& job : batch)
    for (auto& r : job.logged) {
      chain_audit(audit_key_, r, last_ms_, tail_);
      records.push_back(std::move(r));
    }
  Status appended = spool_->append(std::move(records));
  if (!appended) tail_ = before;
  last_logged_ = std::chrono::steady_clock::now();
  count_batch(batch.size());
  for (auto& job : batch) job.done(appended);
}

void Writer::commit_plans(std::deque<Job>& batch) {
  std::vector<Status> outcomes;
  outcomes.reserve(batch.size());
  last_ms_ = std::max(system_now_ms(), last_ms_);
  try {
    db_->exec("BEGIN IMMEDIATE");
  } catch (const StepError& e) {
    for (auto& job : batch) job.done(to_error(e));
    return;
  }
  const AuditTail before = tail_;
  WriteTxn txn(*db_, registry_, keys_, audit_key_, last_ms_, spool_ ? &tail_ : nullptr);
  // A plan alone in its batch runs without a savepoint: a failure rolls back the whole transaction,
  // which holds nothing else. (A savepoint copies every page the plan first touches into the
  // sub-journal; for a feed chunk of 1,000 rows that is most of the writer's I/O.)
  if (batch.size() == 1) {
    Status outcome = Ok{};
    try {
      txn.begin_plan();
      outcome = batch.front().plan(txn);
      if (outcome) {
        txn.finish();
        db_->exec("COMMIT");
      }
    } catch (const StepError& e) {
      outcome = to_error(e);
    }
    if (!outcome) {
      try {
        db_->exec("ROLLBACK");
      } catch (const StepError&) {
      }
      tail_ = before;
    }
    count_batch(1);
    batch.front().done(std::move(outcome));
    return;
  }
  for (auto& job : batch) {
    try {
      txn.begin_plan();
      db_->prepare("SAVEPOINT plan").run();
      Status outcome = job.plan(txn);
      if (!outcome) {
        db_->prepare("ROLLBACK TO plan").run();
        txn.rolled_back();
      }
      db_->prepare("RELEASE plan").run();
      outcomes.push_back(std::move(outcome));
    } catch (const StepError& e) {
      try {
        db_->exec("ROLLBACK TO plan; RELEASE plan");
      } catch (const StepError&) {
      }
      txn.rolled_back();
      outcomes.push_back(to_error(e));
    }
  }
  try {
    txn.finish();
    db_->exec("COMMIT");
  } catch (const StepError& e) {
    try {
      db_->exec("ROLLBACK");
    } catch (const StepError&) {
    }
    tail_ = before;
    Error failed = to_error(e);
    for (auto& outcome : outcomes) {
      if (outcome) outcome = failed;
    }
  }
  count_batch(batch.size());
  for (std::size_t i = 0; i < batch.size(); ++i) batch[i].done(std::move(outcomes[i]));
}

void Writer::count_batch(std::size_t plans) {
  std::lock_guard lock(mutex_);
  stats_.batches += 1;
  stats_.plans += plans;
}

}  // namespace fhirgate::gateway::store
