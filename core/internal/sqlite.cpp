// File: core/internal/sqlite.cpp — RAII wrappers over the SQLite3 C API.
#include "core/internal/sqlite.h"

#include <sqlite3.h>

#include <atomic>
#include <utility>

#include "core/internal/writer_gate.h"

namespace mb::internal {
namespace {

std::atomic<int64_t> gate_wait_ms{0};  // 0: kWriterGateWait

// SQLITE_BUSY and SQLITE_LOCKED with their extended codes (SQLITE_BUSY_SNAPSHOT, …).
ErrorKind kind_of(int rc) {
  const int primary = rc & 0xff;
  return primary == SQLITE_BUSY || primary == SQLITE_LOCKED ? ErrorKind::kBusy
                                                            : ErrorKind::kInternal;
}

}  // namespace

Status sqlite_error(sqlite3* db, std::string_view what) {
  std::string msg(what);
  msg += ": ";
  msg += db != nullptr ? sqlite3_errmsg(db) : "out of memory";
  const ErrorKind kind = db != nullptr ? kind_of(sqlite3_extended_errcode(db))
                                       : ErrorKind::kInternal;
  return Status(kind, std::move(msg));
}

Status exec(sqlite3* db, const char* sql) {
  char* err = nullptr;
  const int rc = sqlite3_exec(db, sql, nullptr, nullptr, &err);
  if (rc == SQLITE_OK) return Status::Ok();
  std::string msg = "SQLite: ";
  msg += err != nullptr ? err : sqlite3_errmsg(db);
  sqlite3_free(err);
  return Status(kind_of(rc), std::move(msg));
}

Result<Stmt> Stmt::prepare(sqlite3* db, std::string_view sql) {
  sqlite3_stmt* st = nullptr;
  int rc = sqlite3_prepare_v2(db, sql.data(), static_cast<int>(sql.size()), &st, nullptr);
  if (rc != SQLITE_OK) {
    sqlite3_finalize(st);
    return sqlite_error(db, "SQLite prepare");
  }
  return Stmt(db, st);
}

Stmt::Stmt(Stmt&& other) noexcept
    : db_(other.db_), st_(std::exchange(other.st_, nullptr)), bind_rc_(other.bind_rc_) {}

Stmt& Stmt::operator=(Stmt&& other) noexcept {
  if (this != &other) {
    sqlite3_finalize(st_);
    db_ = other.db_;
    st_ = std::exchange(other.st_, nullptr);
    bind_rc_ = other.bind_rc_;
  }
  return *this;
}

Stmt::~Stmt() { sqlite3_finalize(st_); }

Stmt& Stmt::bind(int i, int64_t v) {
  int rc = sqlite3_bind_int64(st_, i, v);
  if (rc != SQLITE_OK && bind_rc_ == 0) bind_rc_ = rc;
  return *this;
}

Stmt& Stmt::bind(int i, std::string_view text) {
  int rc = sqlite3_bind_text64(st_, i, text.data(), text.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
  if (rc != SQLITE_OK && bind_rc_ == 0) bind_rc_ = rc;
  return *this;
}

Stmt& Stmt::bind_blob(int i, std::string_view data) {
  // A zero-length blob still must not be NULL: "" and absent differ.
  static const char kEmpty = 0;
  const void* p = data.empty() ? &kEmpty : data.data();
  int rc = sqlite3_bind_blob64(st_, i, p, data.size(), SQLITE_TRANSIENT);
  if (rc != SQLITE_OK && bind_rc_ == 0) bind_rc_ = rc;
  return *this;
}

Stmt& Stmt::bind_null(int i) {
  int rc = sqlite3_bind_null(st_, i);
  if (rc != SQLITE_OK && bind_rc_ == 0) bind_rc_ = rc;
  return *this;
}

Stmt& Stmt::bind_id_or_null(int i, int64_t v) { return v == 0 ? bind_null(i) : bind(i, v); }

Result<bool> Stmt::step() {
  if (bind_rc_ != 0) {
    return Status(ErrorKind::kInternal,
                  std::string("SQLite bind: ") + sqlite3_errstr(bind_rc_));
  }
  int rc = sqlite3_step(st_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return sqlite_error(db_, "SQLite step");
}

Status Stmt::run() {
  auto r = step();
  if (!r.ok()) return r.status();
  return Status::Ok();
}

Status Stmt::reset() {
  sqlite3_reset(st_);
  sqlite3_clear_bindings(st_);
  bind_rc_ = 0;
  return Status::Ok();
}

int64_t Stmt::col_int(int i) const { return sqlite3_column_int64(st_, i); }

std::string Stmt::col_text(int i) const {
  const unsigned char* p = sqlite3_column_text(st_, i);
  if (p == nullptr) return {};
  return std::string(reinterpret_cast<const char*>(p),
                     static_cast<size_t>(sqlite3_column_bytes(st_, i)));
}

std::string Stmt::col_blob(int i) const {
  const void* p = sqlite3_column_blob(st_, i);
  if (p == nullptr) return {};
  return std::string(static_cast<const char*>(p),
                     static_cast<size_t>(sqlite3_column_bytes(st_, i)));
}

bool Stmt::col_null(int i) const { return sqlite3_column_type(st_, i) == SQLITE_NULL; }

void set_writer_gate_wait_for_testing(std::chrono::milliseconds wait) {
  gate_wait_ms = wait.count();
}

Result<Transaction> Transaction::begin_immediate(sqlite3* db) {
  const int64_t ms = gate_wait_ms.load();
  return begin_immediate(db, ms > 0 ? std::chrono::milliseconds(ms) : kWriterGateWait);
}

Result<Transaction> Transaction::begin_immediate(sqlite3* db,
                                                 std::chrono::milliseconds gate_wait) {
  const char* file = sqlite3_db_filename(db, "main");
  std::shared_ptr<WriterGate> gate = WriterGate::for_file(file != nullptr ? file : "");
  if (gate) MB_RETURN_IF_ERROR(gate->acquire(gate_wait).prefixed("begin transaction"));
  Transaction tx(db, std::move(gate));  // from here on the destructor releases the gate
  Status s = exec(db, "BEGIN IMMEDIATE");
  if (!s.ok()) {
    tx.db_ = nullptr;  // nothing to roll back
    tx.end();
    return s.prefixed("begin transaction");
  }
  return tx;
}

Transaction::Transaction(sqlite3* db, std::shared_ptr<WriterGate> gate)
    : db_(db), gate_(std::move(gate)) {}

Transaction::Transaction(Transaction&& other) noexcept
    : db_(std::exchange(other.db_, nullptr)), gate_(std::move(other.gate_)) {}

Transaction::~Transaction() {
  if (db_ != nullptr) exec(db_, "ROLLBACK").ignore();
  db_ = nullptr;
  end();
}

void Transaction::end() {
  if (gate_) gate_->release();
  gate_.reset();
}

Status Transaction::commit() {
  Status s = exec(db_, "COMMIT");
  if (!s.ok()) return s.prefixed("commit");  // destructor rolls back
  db_ = nullptr;
  end();
  return Status::Ok();
}

}  // namespace mb::internal
