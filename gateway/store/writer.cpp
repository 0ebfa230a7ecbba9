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
// No timer is needed to form batches: while one batch is being fsynced the next one queues up.
// The queue is bounded; when it is full, submit() says busy at once (the caller answers 503).
//
// The audit chain: this thread owns its end (tail_), since the chain runs through the tables and the
// audit log file (audit_file.hpp). A batch first commits its plans (their AuditEvents chained inside the
// transaction; a plan or COMMIT that fails gives its seqs back), then appends the batch's read
// AuditEvents (AuditOnlyPlan) to the log file, chained after them, and fdatasyncs it once; only then are
// those reads answered. When enough logged events wait, or the oldest has waited import_after_ms, the
// next transaction moves them into the tables (their seq and chain unchanged), and the file is emptied
// once that commit is durable. A crash between the two loses nothing: the file is read back at start-up
// and its events moved again (an event already moved is skipped).
#include "gateway/store/writer.hpp"

#include <chrono>
#include <future>

#include "gateway/store/audit_file.hpp"
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

Writer::Writer(std::unique_ptr<Connection> db, const fhir::SearchParamRegistry& registry,
               const ParamKeys& keys, const AuditKey& audit_key, std::unique_ptr<AuditLogFile> audit_log,
               WriterOptions options)
    : db_(std::move(db)),
      registry_(registry),
      keys_(keys),
      audit_key_(audit_key),
      options_(options),
      log_(std::move(audit_log)) {
  if (log_) {
    // The chain ends at the head of the last commit or at the last event logged after it. Every logged
    // event is moved (again) with the first batch; those already in the tables are skipped.
    tail_ = read_audit_head(*db_);
    unimported_ = log_->recover();
    for (const auto& r : unimported_)
      if (r.seq > tail_.seq) tail_ = AuditTail{r.seq, r.chain};
    oldest_unimported_ = std::chrono::steady_clock::now() - std::chrono::milliseconds(options_.import_after_ms);
  }
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
    if (log_) {
      if (auto* audit = job.plan.target<AuditOnlyPlan>()) {
        job.logged = std::move(audit->records);
        job.plan = nullptr;
      }
    }
    queue_.push_back(std::move(job));
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
  std::vector<AuditRecord> out;
  std::lock_guard lock(logged_mutex_);
  for (const auto& r : unimported_)
    if (keep(r)) out.push_back(r);
  return out;
}

bool Writer::import_due() const {
  if (unimported_.empty()) return false;
  return unimported_.size() >= options_.import_batch ||
         std::chrono::steady_clock::now() - oldest_unimported_ >=
             std::chrono::milliseconds(options_.import_after_ms);
}

void Writer::loop() {
  std::deque<Job> batch;
  CommitObserver observer;
  for (;;) {
    bool stopping = false;
    {
      std::unique_lock lock(mutex_);
      auto ready = [this] { return stopping_ || !queue_.empty(); };
      if (unimported_.empty())
        wake_.wait(lock, ready);
      else
        wake_.wait_until(lock, oldest_unimported_ + std::chrono::milliseconds(options_.import_after_ms), ready);
      stopping = stopping_ && queue_.empty();
      while (!queue_.empty() && batch.size() < options_.max_batch) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
      observer = commit_observer_;
    }
    if (stopping) {
      // Drained: what the log file still holds goes into the tables, so a clean stop leaves it empty.
      if (!unimported_.empty()) commit_batch(batch, true);
      // Everything is in the tables (unless that commit failed): the file may go, also when a verifier
      // kept it from being emptied after the last move.
      if (log_ && unimported_.empty()) log_->empty_if_free();
      return;
    }
    if (batch.empty() && !import_due()) continue;
    const auto began = std::chrono::steady_clock::now();
    const std::size_t plans = batch.size();
    commit_batch(batch, false);
    batch.clear();
    if (observer && plans > 0)
      observer(plans, std::chrono::duration<double>(std::chrono::steady_clock::now() - began).count());
  }
}

void Writer::commit_batch(std::deque<Job>& batch, bool final_import) {
  std::deque<Job> plans, logged;
  for (auto& job : batch) (job.plan ? plans : logged).push_back(std::move(job));
  const bool import = !unimported_.empty() && (import_due() || final_import);
  if (!plans.empty() || import) commit_plans(plans, import);
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
  Status appended = log_->append(records);
  if (!appended) {
    tail_ = before;
  } else {
    std::lock_guard lock(logged_mutex_);
    if (unimported_.empty()) oldest_unimported_ = std::chrono::steady_clock::now();
    for (auto& r : records) unimported_.push_back(std::move(r));
  }
  count_batch(batch.size());
  for (auto& job : batch) job.done(appended);
}

void Writer::commit_plans(std::deque<Job>& batch, bool import) {
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
  // Moves the logged events into the tables, inside this transaction.
  auto import_logged = [&] {
    if (!import) return;
    for (const auto& r : unimported_) insert_audit(*db_, r, true);
    write_audit_head(*db_, tail_);
  };
  // After the COMMIT that moved them: they leave memory, and the file is emptied (unless a verifier is
  // reading it; then it is emptied after a later move).
  auto imported = [&] {
    if (!import) return;
    {
      std::lock_guard lock(logged_mutex_);
      unimported_.clear();
    }
    log_->empty_if_free();
  };
  WriteTxn txn(*db_, registry_, keys_, audit_key_, last_ms_, log_ ? &tail_ : nullptr);
  // A plan alone in its batch runs without a savepoint: a failure rolls back the whole transaction,
  // which holds nothing else. (A savepoint copies every page the plan first touches into the
  // sub-journal; for a feed chunk of 1,000 rows that is most of the writer's I/O.)
  if (batch.size() == 1) {
    Status outcome = Ok{};
    try {
      txn.begin_plan();
      outcome = batch.front().plan(txn);
      if (outcome) {
        import_logged();
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
    } else {
      imported();
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
    import_logged();
    txn.finish();
    db_->exec("COMMIT");
    imported();
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
  if (!batch.empty()) count_batch(batch.size());
  for (std::size_t i = 0; i < batch.size(); ++i) batch[i].done(std::move(outcomes[i]));
}

void Writer::count_batch(std::size_t plans) {
  std::lock_guard lock(mutex_);
  stats_.batches += 1;
  stats_.plans += plans;
}

}  // namespace fhirgate::gateway::store
