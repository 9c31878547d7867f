// File: core/internal/sqlite.h — thin RAII wrappers over the SQLite3 C API for core/store.
//
// Stmt owns one prepared statement; Transaction rolls back unless committed. Every SQLite
// failure becomes a kInternal Status carrying SQLite's own message.
//
//   auto st = Stmt::prepare(db, "SELECT id FROM tickets WHERE id = ?");
//   st->bind(1, id);
//   auto row = st->step();   // Result<bool>: true while a row is available
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "core/status.h"

struct sqlite3;
struct sqlite3_stmt;

namespace mb::internal {

// A kInternal Status "<what>: <sqlite message>".
Status sqlite_error(sqlite3* db, std::string_view what);

// Runs one or more statements that return no rows of interest.
Status exec(sqlite3* db, const char* sql);

class Stmt {
 public:
  static Result<Stmt> prepare(sqlite3* db, std::string_view sql);
  Stmt(Stmt&& other) noexcept;
  Stmt& operator=(Stmt&& other) noexcept;
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  ~Stmt();

  // Binders are 1-based like SQLite's; a failure is reported by the next step().
  Stmt& bind(int i, int64_t v);
  Stmt& bind(int i, std::string_view text);
  Stmt& bind(int i, const char* text) { return bind(i, std::string_view(text)); }
  Stmt& bind(int i, const std::string& text) { return bind(i, std::string_view(text)); }
  Stmt& bind_blob(int i, std::string_view data);
  Stmt& bind_null(int i);
  // NULL when v == 0: ids that are optional foreign keys.
  Stmt& bind_id_or_null(int i, int64_t v);

  // true: a row is available; false: done.
  Result<bool> step();
  // Steps a statement that returns no rows (INSERT/UPDATE/DELETE).
  Status run();
  Status reset();

  int64_t col_int(int i) const;
  std::string col_text(int i) const;
  std::string col_blob(int i) const;
  bool col_null(int i) const;

 private:
  Stmt(sqlite3* db, sqlite3_stmt* st) : db_(db), st_(st) {}
  sqlite3* db_ = nullptr;
  sqlite3_stmt* st_ = nullptr;
  int bind_rc_ = 0;  // first failing sqlite3_bind_* code
};

// BEGIN IMMEDIATE … COMMIT; rolls back in the destructor unless committed. IMMEDIATE takes
// the write lock up front so two processes never deadlock upgrading a read lock.
class Transaction {
 public:
  static Result<Transaction> begin_immediate(sqlite3* db);
  Transaction(Transaction&& other) noexcept : db_(other.db_) { other.db_ = nullptr; }
  Transaction& operator=(Transaction&&) = delete;
  Transaction(const Transaction&) = delete;
  ~Transaction();
  Status commit();

 private:
  explicit Transaction(sqlite3* db) : db_(db) {}
  sqlite3* db_ = nullptr;  // null once committed or rolled back
};

}  // namespace mb::internal
