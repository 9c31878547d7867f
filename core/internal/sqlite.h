// File: core/internal/sqlite.h — thin RAII wrappers over the SQLite3 C API for core/store.
//
// Stmt owns one prepared statement; Transaction rolls back unless committed. Every SQLite
// failure becomes a Status carrying SQLite's own message: kBusy for SQLITE_BUSY and
// SQLITE_LOCKED (another writer held the database past the busy time-out), kInternal else.
//
//   auto st = Stmt::prepare(db, "SELECT id FROM tickets WHERE id = ?");
//   st->bind(1, id);
//   auto row = st->step();   // Result<bool>: true while a row is available
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "core/status.h"

struct sqlite3;
struct sqlite3_stmt;

namespace mb::internal {

class WriterGate;

// A Status "<what>: <sqlite message>" of the connection's last error: kBusy when that was
// SQLITE_BUSY or SQLITE_LOCKED, else kInternal.
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

// How long begin_immediate(db) waits for its turn among this process's writers of the same
// store file (the writer gate) before it fails with kBusy.
inline constexpr std::chrono::milliseconds kWriterGateWait = std::chrono::seconds(30);

// BEGIN IMMEDIATE … COMMIT; rolls back in the destructor unless committed. IMMEDIATE takes
// the write lock up front so two processes never deadlock upgrading a read lock.
//
// Before BEGIN IMMEDIATE the transaction takes the writer gate of its database file
// (core/internal/writer_gate.h): the writers of this process, whatever their connection,
// queue for it in arrival order and hold it until COMMIT or ROLLBACK, so SQLite's busy
// handler (an unfair sleep-and-retry) only ever arbitrates between processes. Waiting for
// the gate ends with kBusy after `gate_wait` (naming the store and the wait), with
// kCancelled when the thread's Cancel fires (core/cancel.h), and fails at once with
// kInternal when this thread already holds a write transaction on another connection to the
// same file (it would wait for itself). Write transactions nest only on one connection
// (begin_unless_nested, core/internal/store_util.h).
class Transaction {
 public:
  static Result<Transaction> begin_immediate(sqlite3* db);
  static Result<Transaction> begin_immediate(sqlite3* db, std::chrono::milliseconds gate_wait);
  Transaction(Transaction&& other) noexcept;
  Transaction& operator=(Transaction&&) = delete;
  Transaction(const Transaction&) = delete;
  ~Transaction();
  Status commit();

 private:
  Transaction(sqlite3* db, std::shared_ptr<WriterGate> gate);
  void end();  // releases the gate
  sqlite3* db_ = nullptr;  // null once committed or rolled back
  std::shared_ptr<WriterGate> gate_;  // held while db_ is set; null without a file
};

// Test hook: the gate wait of begin_immediate(db) from now on, process-wide; zero restores
// kWriterGateWait.
void set_writer_gate_wait_for_testing(std::chrono::milliseconds wait);

}  // namespace mb::internal
