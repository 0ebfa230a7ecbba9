#include "gateway/store/sqlite.hpp"

#include <mutex>
#include <stdexcept>

namespace fhirgate::gateway::store {

Statement& Statement::bind(int index, std::int64_t value) {
  sqlite3_bind_int64(stmt_, index, value);
  return *this;
}

Statement& Statement::bind(int index, std::string_view value) {
  sqlite3_bind_text(stmt_, index, value.data(), static_cast<int>(value.size()), SQLITE_TRANSIENT);
  return *this;
}

Statement& Statement::bind_blob(int index, std::string_view bytes) {
  sqlite3_bind_blob(stmt_, index, bytes.data(), static_cast<int>(bytes.size()), SQLITE_TRANSIENT);
  return *this;
}

Statement& Statement::bind_null(int index) {
  sqlite3_bind_null(stmt_, index);
  return *this;
}

bool Statement::step() {
  const int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  sqlite3* db = sqlite3_db_handle(stmt_);
  throw StepError{rc, sqlite3_errmsg(db)};
}

std::string_view Statement::text(int column) const {
  const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, column));
  if (!p) return {};
  return {p, static_cast<std::size_t>(sqlite3_column_bytes(stmt_, column))};
}

Error to_error(const StepError& e) {
  // Conditions of the storage that an operator can clear (space, a read-only or failing disk, a lock) are
  // 503s the sender retries; anything else is a 500. The SQLite message goes to the log, not the client.
  const char* diagnostics = nullptr;
  switch (e.code & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      diagnostics = "The database is busy; retry later";
      break;
    case SQLITE_FULL:
      diagnostics = "The database's disk is full; retry later";
      break;
    case SQLITE_READONLY:
      diagnostics = "The database is read-only; retry later";
      break;
    case SQLITE_IOERR:
    case SQLITE_CANTOPEN:
      diagnostics = "The database's disk cannot be written or read; retry later";
      break;
  }
  Error err = diagnostics ? Error::make(ErrorCode::busy, diagnostics)
                          : Error::make(ErrorCode::internal, "Internal storage error");
  err.internal = "sqlite error " + std::to_string(e.code) + ": " + e.message;
  return err;
}

Connection::Connection(const std::string& path, Mode mode) {
  // SQLite's allocation statistics take a global mutex on every malloc; nothing here reads them.
  static std::once_flag configured;
  std::call_once(configured, [] {
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
    // Savepoint (statement) journals stay in memory up to this size: the writer gives every plan of a
    // group commit a savepoint, and SQLite copies each page a plan first touches into that journal. With
    // SQLite's default (64 KiB) a create's journal (~250 KiB) spilled to a temporary file, and those
    // writes were a fifth of the CPU of a create. Larger journals (a feed chunk's) still spill.
    sqlite3_config(SQLITE_CONFIG_STMTJRNL_SPILL, 8 << 20);
  });
  const int flags =
      (mode == Mode::read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) |
      SQLITE_OPEN_NOMUTEX;
  if (sqlite3_open_v2(path.c_str(), &db_, flags, nullptr) != SQLITE_OK) {
    std::string msg = db_ ? sqlite3_errmsg(db_) : "out of memory";
    sqlite3_close_v2(db_);
    db_ = nullptr;
    throw std::runtime_error("cannot open database " + path + ": " + msg);
  }
  sqlite3_busy_timeout(db_, 5000);
  sqlite3_extended_result_codes(db_, 1);  // the log then says which I/O failed (SQLITE_IOERR_WRITE, ...)
}

Connection::~Connection() {
  for (auto& [sql, stmt] : cache_) sqlite3_finalize(stmt);
  sqlite3_close_v2(db_);
}

Statement Connection::prepare(const std::string& sql) {
  auto it = cache_.find(sql);
  if (it == cache_.end()) {
    sqlite3_stmt* stmt = nullptr;
    const int rc = sqlite3_prepare_v3(db_, sql.c_str(), static_cast<int>(sql.size()),
                                      SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
    if (rc != SQLITE_OK) throw StepError{rc, std::string(sqlite3_errmsg(db_)) + " in: " + sql};
    it = cache_.emplace(sql, stmt).first;
  }
  return Statement(it->second);
}

void Connection::exec(const std::string& sql) {
  char* err = nullptr;
  const int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err);
  if (rc != SQLITE_OK) {
    std::string msg = err ? err : "unknown";
    sqlite3_free(err);
    throw StepError{rc, msg};
  }
}

}  // namespace fhirgate::gateway::store
