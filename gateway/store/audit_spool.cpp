#include "gateway/store/audit_spool.hpp"

#include <algorithm>
#include <stdexcept>

#include "gateway/store/sqlite.hpp"

namespace fhirgate::gateway::store {
namespace {

bool by_seq(const AuditRecord& a, const AuditRecord& b) {
  return a.seq < b.seq;
}

// Inserts `events` (their seq and chain as given) in one transaction; one already there is skipped. The
// head moves to the last of them when it is behind (it is what shows rows deleted from the end).
void insert_all(Connection& db, const AuditRecord* events, std::size_t count) {
  db.exec("BEGIN IMMEDIATE");
  try {
    for (std::size_t i = 0; i < count; ++i) insert_audit(db, events[i], true);
    if (count > 0) advance_audit_head(db, AuditTail{events[count - 1].seq, events[count - 1].chain});
    db.exec("COMMIT");
  } catch (const StepError&) {
    try {
      db.exec("ROLLBACK");
    } catch (const StepError&) {
    }
    throw;
  }
}

}  // namespace

std::unique_ptr<AuditSpool> AuditSpool::open(const std::string& db_path, Connection& db, AuditTail& tail,
                                             SpoolOptions options) {
  std::vector<std::unique_ptr<AuditLogFile>> files;
  for (const auto& path : audit_log_paths(db_path)) {
    auto file = AuditLogFile::open_owned(path);
    if (!file) return nullptr;  // another process serves this database
    files.push_back(std::move(file));
  }
  std::vector<AuditRecord> recovered;
  for (auto& file : files)
    for (auto& r : file->recover()) recovered.push_back(std::move(r));
  std::sort(recovered.begin(), recovered.end(), by_seq);
  tail = read_audit_head(db);
  for (const auto& r : recovered)
    if (r.seq > tail.seq) tail = AuditTail{r.seq, r.chain};
  if (!recovered.empty()) {
    try {
      db.exec("BEGIN IMMEDIATE");
      for (const auto& r : recovered) insert_audit(db, r, true);
      write_audit_head(db, tail);
      db.exec("COMMIT");
    } catch (const StepError& e) {
      throw std::runtime_error("cannot move the audit log files' events into the database: " + e.message);
    }
  }
  for (auto& file : files) file->empty_if_free();
  auto own = std::make_unique<Connection>(db_path, Connection::Mode::read_write);
  own->exec("PRAGMA synchronous = FULL");
  own->exec("PRAGMA mmap_size = 268435456");  // the pages a move touches are read without a copy
  return std::unique_ptr<AuditSpool>(new AuditSpool(std::move(files), std::move(own), options));
}

AuditSpool::AuditSpool(std::vector<std::unique_ptr<AuditLogFile>> files, std::unique_ptr<Connection> db,
                       SpoolOptions options)
    : files_(std::move(files)), db_(std::move(db)), options_(options) {
  thread_ = std::thread([this] { loop(); });
}

AuditSpool::~AuditSpool() {
  stop();
}

Status AuditSpool::append(std::vector<AuditRecord> records) {
  std::lock_guard append(append_mutex_);
  Status written = files_[static_cast<std::size_t>(current_)]->append(records);
  if (!written) return written;
  bool wake = false;
  {
    std::lock_guard lock(mutex_);
    const std::size_t before = current_events_.size();
    if (before == 0) oldest_ = std::chrono::steady_clock::now();
    for (auto& r : records) current_events_.push_back(std::move(r));
    const std::size_t after = current_events_.size();
    wake = before == 0 || (before < options_.seal_after_events && after >= options_.seal_after_events);
  }
  if (wake) wake_.notify_one();
  return Ok{};
}

std::vector<AuditRecord> AuditSpool::pending(const std::function<bool(const AuditRecord&)>& keep) const {
  std::vector<AuditRecord> out;
  std::lock_guard lock(mutex_);
  for (const auto* events : {&sealed_events_, &current_events_})
    for (const auto& r : *events)
      if (keep(r)) out.push_back(r);
  return out;
}

bool AuditSpool::seal_due() const {
  const std::size_t waiting = current_events_.size();
  return waiting > 0 &&
         (waiting >= options_.seal_after_events ||
          std::chrono::steady_clock::now() >= oldest_ + std::chrono::milliseconds(options_.seal_after_ms));
}

Status AuditSpool::move(const std::vector<AuditRecord>& events) {
  try {
    for (std::size_t i = 0; i < events.size(); i += options_.events_per_move)
      insert_all(*db_, events.data() + i, std::min(options_.events_per_move, events.size() - i));
  } catch (const StepError& e) {
    return to_error(e);
  }
  return Ok{};
}

void AuditSpool::loop() {
  using namespace std::chrono_literals;
  auto wait_or_stop = [this](auto duration) {
    std::unique_lock lock(mutex_);
    return wake_.wait_for(lock, duration, [this] { return stopping_; });
  };
  for (;;) {
    {
      std::unique_lock lock(mutex_);
      while (!stopping_ && !seal_due()) {
        if (current_events_.empty())
          wake_.wait(lock);
        else
          wake_.wait_until(lock, oldest_ + std::chrono::milliseconds(options_.seal_after_ms));
      }
      if (stopping_) return;
    }
    // Seal: every event not yet moved is in the current file, which the other (empty) one replaces. The
    // sealed events are only read from here on (by this thread and by pending()) until they are moved.
    int sealed_file = 0;
    {
      std::lock_guard append(append_mutex_);
      std::lock_guard lock(mutex_);
      sealed_events_.swap(current_events_);
      sealed_file = current_;
      current_ ^= 1;
    }
    // The events stay durable in the sealed file until the move is: a failure (disk full, a long lock)
    // is tried again.
    while (!move(sealed_events_))
      if (wait_or_stop(1s)) return;  // stop() moves them
    {
      std::lock_guard lock(mutex_);
      sealed_events_.clear();
    }
    // Emptied before it can be current again (a verifier may be reading it for a moment).
    while (!files_[static_cast<std::size_t>(sealed_file)]->empty_if_free())
      if (wait_or_stop(50ms)) return;
  }
}

void AuditSpool::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (!thread_.joinable()) return;
  thread_.join();
  std::vector<AuditRecord> left;
  {
    std::lock_guard lock(mutex_);
    left = std::move(sealed_events_);
    for (auto& r : current_events_) left.push_back(std::move(r));
  }
  if (!left.empty() && !move(left)) return;  // read back and moved at the next start
  {
    std::lock_guard lock(mutex_);
    sealed_events_.clear();
    current_events_.clear();
  }
  for (auto& file : files_) file->empty_if_free();
}

}  // namespace fhirgate::gateway::store
