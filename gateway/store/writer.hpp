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
struct JournalEntry;
struct VersionRecord;

// What passes through the gateway without being stored: a FHIR message, or a resource of a type the
// gateway does not hold (in a transaction or batch).
struct PassThrough {
  std::string type;     // the resource's type; Bundle for a message
  std::string id;       // the resource's id; the message's id
  std::string event;    // the message's event code; "" for a resource
  std::string patient;  // "Patient/<id>" it is about, or ""
  std::string body;     // JSON
};

// Told of every version put or removed and of everything passed through, inside the same transaction
// (the router records the deliveries each causes this way).
class WriteListener {
 public:
  virtual ~WriteListener() = default;
  // `resource` is null for a deletion.
  virtual void on_write(WriteTxn& txn, const VersionRecord& record, const fhir::Node* resource) const = 0;
  virtual void on_pass_through(WriteTxn& txn, const PassThrough& item) const = 0;
  // Every journal entry appended (journal.hpp, without its payload), once it is committed.
  virtual void on_journal(const JournalEntry& entry) const { (void)entry; }
};

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
  // Set-up (any thread, also after plans ran): each batch uses the ones set when it was taken from the
  // queue. The listener is called by every put/remove (store.hpp WriteListener).
  void set_write_listener(const WriteListener* listener);
  void set_commit_observer(CommitObserver observer);

 private:
  struct Job {
    WritePlan plan;
    WriteDone done;
  };
  void loop();
  void count_batch(std::size_t plans);
  void commit_batch(std::deque<Job>& batch, const WriteListener* listener);

  std::unique_ptr<Connection> db_;
  const fhir::SearchParamRegistry& registry_;
  const ParamKeys& keys_;
  const AuditKey& audit_key_;
  WriterOptions options_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Job> queue_;
  const WriteListener* listener_ = nullptr;  // under mutex_
  CommitObserver commit_observer_;           // under mutex_
  bool stopping_ = false;
  WriterStats stats_;
  std::int64_t last_ms_ = 0;
  std::thread thread_;
};

}  // namespace fhirgate::gateway::store
