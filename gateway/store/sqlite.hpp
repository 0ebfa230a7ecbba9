#pragma once
// A thin RAII layer over the SQLite C API: a connection with a prepared-statement cache, and statements
// with typed binds. A Connection is used by one thread at a time.
#include <sqlite3.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "fhir/result.hpp"

namespace fhirgate::gateway::store {

class Statement {
 public:
  explicit Statement(sqlite3_stmt* stmt) : stmt_(stmt) {}
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  ~Statement() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }

  Statement& bind(int index, std::int64_t value);
  Statement& bind(int index, std::string_view value);
  Statement& bind_null(int index);
  Statement& bind_blob(int index, std::string_view bytes);

  // Steps once: true when a row is available, false when done. Errors: a failed step is reported by
  // throwing StepError, which the store layer turns into a Result (see Connection::check).
  bool step();
  void run() {
    while (step()) {
    }
  }

  std::int64_t int64(int column) const { return sqlite3_column_int64(stmt_, column); }
  std::string_view text(int column) const;
  bool is_null(int column) const { return sqlite3_column_type(stmt_, column) == SQLITE_NULL; }
  bool is_integer(int column) const { return sqlite3_column_type(stmt_, column) == SQLITE_INTEGER; }

 private:
  sqlite3_stmt* stmt_;
};

// Thrown by Statement::step on an SQLite error; carries the result code. Caught at the store's API
// boundary and turned into an Error (busy for SQLITE_BUSY/FULL/IOERR/READONLY, internal otherwise).
struct StepError {
  int code;
  std::string message;
};
Error to_error(const StepError& e);

class Connection {
 public:
  enum class Mode { read_only, read_write };
  // Opens (creating when read_write) the database. Throws std::runtime_error on failure (start-up).
  Connection(const std::string& path, Mode mode);
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  ~Connection();

  // A cached prepared statement for the SQL text; reset and unbound when the Statement goes away.
  Statement prepare(const std::string& sql);
  // Runs one or more statements without results. Throws StepError.
  void exec(const std::string& sql);
  std::int64_t changes() const { return sqlite3_changes64(db_); }
  sqlite3* handle() { return db_; }

 private:
  sqlite3* db_ = nullptr;
  std::unordered_map<std::string, sqlite3_stmt*> cache_;
};

}  // namespace fhirgate::gateway::store
