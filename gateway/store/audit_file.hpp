#pragma once
// The audit log file: where a read's AuditEvent becomes durable before its response leaves.
//
// Why: every read writes an AuditEvent. Inserting each one into the audit tables (a row, its indexes,
// its patient rows, a savepoint) made the audit most of an audited read's cost. Appending a few hundred
// bytes to a file, and fsyncing the file once for all the events of a group, is far cheaper; the events
// are then moved into the tables in large batches (the audit spool, audit_spool.hpp), keeping the seq and
// HMAC chain they were given when appended. Acknowledged still means durable: the writer answers a read only
// after the fdatasync that covers its event.
//
// Format: one frame per event, "<seq> <recorded ms> <format> <chain hex> <columns bytes> <body bytes>\n",
// then the columns (JSON: agent, entity, action, outcome, patients), the body, and "\n". A crash can leave
// only a frame that was never fsynced (and so never acknowledged) cut short at the end: recovery drops it.
// Any other frame that does not read is damage: reading throws, naming the file, byte and last good event.
//
// There are two such files (audit_log_paths): the writer appends to one while the events of the other,
// sealed, are moved into the tables (audit_spool.cpp).
//
// Ownership: one process, the one serving, owns the database (DatabaseLock, below) and the files (an
// OFD lock on byte 0 of each, held while open): only it appends, moves events into the tables and empties
// a file. Another process (a CLI command while the gateway runs) opens the store without the files and
// may not append AuditEvents.
// Emptying takes a second lock (byte 1) without waiting; `fhirgate audit verify` holds that one shared
// while it reads the file and the tables, so no event can leave the file between its two reads.
#include <memory>
#include <string>
#include <vector>

#include "fhir/result.hpp"
#include "gateway/store/audit_log.hpp"

namespace fhirgate::gateway::store {

class AuditLogFile {
 public:
  // Opens (creating) the file and takes ownership; nullptr when another process owns it. Throws
  // std::runtime_error when the file cannot be opened.
  static std::unique_ptr<AuditLogFile> open_owned(const std::string& path);
  ~AuditLogFile();
  AuditLogFile(const AuditLogFile&) = delete;
  AuditLogFile& operator=(const AuditLogFile&) = delete;

  // Every complete frame, oldest first; an incomplete last frame (a crash mid-append) is cut off. A
  // damaged frame throws std::runtime_error (the gateway does not start over a damaged trail).
  std::vector<AuditRecord> recover();
  // Appends the chained records and fdatasyncs. On failure the file is cut back to where it was and the
  // error says why (nothing of the group is durable).
  Status append(const std::vector<AuditRecord>& records);
  // Empties the file once everything in it is in the tables; false (and nothing done) while a verifier
  // holds the file.
  bool empty_if_free();
  const std::string& path() const { return path_; }

 private:
  AuditLogFile(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  std::string path_;
  int fd_;
  long long size_ = 0;
};

// The events of the audit log files at `paths` as they are now, oldest first (none from a file that does
// not exist), for verification. Holding a reader keeps the owner from emptying the files.
class AuditLogReader {
 public:
  explicit AuditLogReader(const std::vector<std::string>& paths);
  ~AuditLogReader();
  AuditLogReader(const AuditLogReader&) = delete;
  AuditLogReader& operator=(const AuditLogReader&) = delete;
  // Throws std::runtime_error when a file is damaged (not merely cut short at its end).
  std::vector<AuditRecord> read() const;

 private:
  std::vector<int> fds_;
  std::vector<std::string> paths_;
};

// The database's real path (symbolic links and ".." resolved), or `db_path` itself when it cannot be
// resolved. The files that go with a database (its audit log files and, by default, its audit key) are
// named after it, so every path to the database names the same files.
std::string real_database_path(const std::string& db_path);
// The audit log files of the database at `db_path`: "<db>.audit-log" and "<db>.audit-log.2", after the
// database's real path.
std::vector<std::string> audit_log_paths(const std::string& db_path);

// Why the database at `db_path` may not be opened at all (it has hard links), or empty.
std::string hard_link_problem(const std::string& db_path);
// For a reader that takes no lock (audit verify): why the file at `db_path` is not the database a serving
// gateway has open (replaced, or empty beside a write-ahead log), or empty.
std::string replaced_file_problem(const std::string& db_path);

// Who serves a database: an OFD write lock on one byte of the database file itself (a byte SQLite never
// locks; its own locks are at 1 GiB and just above). A lock belongs to the file, not to a name: a second
// gateway meets it through any path (a symbolic or hard link, a renamed folder), and moving the audit log
// files aside does not free it. Taken before the process opens any SQLite connection to the database and
// released after the last one closes: closing any descriptor of a file drops the process's POSIX locks on
// it, which are SQLite's (so the descriptor stays open even when another process holds the lock).
//
// Before it, and before any SQLite connection opens the file, the refusals: a database file with hard
// links (SQLite names its write-ahead log after the path, so each name would be a database of its own,
// and opening one could overwrite the other); a file that is not the one the serving gateway has open
// (its log files are owned by another process, yet the file is not locked: it was replaced under that
// gateway, whose write-ahead log a connection here would take over); and, with `must_own`, a database
// another process serves.
class DatabaseLock {
 public:
  // Opens (creating an empty database file when there is none) and tries the lock without waiting.
  // Throws std::runtime_error on a refusal above or when the file cannot be opened for writing.
  DatabaseLock(const std::string& db_path, bool must_own);
  ~DatabaseLock();
  DatabaseLock(const DatabaseLock&) = delete;
  DatabaseLock& operator=(const DatabaseLock&) = delete;
  bool owned() const { return owned_; }

 private:
  int fd_ = -1;
  bool owned_ = false;
};

}  // namespace fhirgate::gateway::store
