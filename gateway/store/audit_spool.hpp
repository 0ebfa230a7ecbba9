#pragma once
// The audit spool: where reads' AuditEvents wait, durable, until they are moved into the audit tables.
//
// The writer appends each group of reads' AuditEvents (already chained) to the current audit log file
// and fdatasyncs it before the reads are answered (audit_file.hpp). A thread of the spool's own, with a
// read-write connection of its own, moves them into the tables in large transactions, keeping their seq
// and chain: when enough wait, or the oldest has waited long enough, the current file is sealed and the
// other (empty) one becomes current; the sealed file's events are inserted (a few thousand per
// transaction) and, once that is durable, the sealed file is emptied. So the writer never waits for a
// move (only a write plan may wait on SQLite's lock while one commits), and the files stay small.
//
// A crash loses nothing: opening the spool reads both files back and moves everything in them (an event
// already moved is skipped) before anything new is appended. The events not yet moved are kept in
// memory too, for the audit searches (read-your-writes for the privacy officer: Store::search_audit).
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "fhir/result.hpp"
#include "gateway/store/audit_file.hpp"
#include "gateway/store/audit_log.hpp"

namespace fhirgate::gateway::store {

class Connection;

struct SpoolOptions {
  // Larger moves rewrite each index page fewer times per event (a move of 200 ms of reads cost 30 %
  // more CPU per event than one of 1 s); the events waiting (at most twice seal_after_events, about
  // 1 KiB each) are the memory this costs.
  std::size_t seal_after_events = 8192;  // the current file is sealed once this many wait...
  int seal_after_ms = 1000;              // ...or the oldest has waited this long
  std::size_t events_per_move = 8192;    // inserted per transaction
};

class AuditSpool {
 public:
  // Opens both files of the database at `db_path`; nullptr when another process owns them. The events
  // they hold are moved now through `db` (the writer's connection, before its thread starts), and `tail`
  // becomes the end of the chain, wherever it is. Throws std::runtime_error when a file cannot be opened.
  static std::unique_ptr<AuditSpool> open(const std::string& db_path, Connection& db, AuditTail& tail,
                                          SpoolOptions options = {});
  ~AuditSpool();  // stop()
  AuditSpool(const AuditSpool&) = delete;
  AuditSpool& operator=(const AuditSpool&) = delete;

  // The writer thread: appends chained events to the current file and fdatasyncs it; an error when the
  // file could not be written (nothing of the group is then kept).
  Status append(std::vector<AuditRecord> records);
  // Any thread: the events not yet moved that `keep` selects, oldest first.
  std::vector<AuditRecord> pending(const std::function<bool(const AuditRecord&)>& keep) const;
  // After the writer stopped: moves everything left and empties the files (unless a verifier holds
  // one, or the move fails: then they are read back at the next start). Idempotent.
  void stop();

 private:
  AuditSpool(std::vector<std::unique_ptr<AuditLogFile>> files, std::unique_ptr<Connection> db,
             SpoolOptions options);
  void loop();
  bool seal_due() const;                                // under mutex_
  Status move(const std::vector<AuditRecord>& events);  // inserts them, in transactions of events_per_move

  std::vector<std::unique_ptr<AuditLogFile>> files_;  // two
  std::unique_ptr<Connection> db_;                    // the spool's own read-write connection
  SpoolOptions options_;
  std::mutex append_mutex_;  // held while appending and while sealing: an event is in the file it counts for
  int current_ = 0;          // under append_mutex_
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  // Under mutex_, the events not yet moved: the sealed file's (written only under mutex_, read by the
  // spool's thread while it moves them) and the current file's.
  std::vector<AuditRecord> sealed_events_;
  std::vector<AuditRecord> current_events_;
  std::chrono::steady_clock::time_point oldest_;  // of the current file's first event
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace fhirgate::gateway::store
