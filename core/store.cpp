// File: core/store.cpp — the Store facade (core/store.h): opening the database file, the
// schema migrations and the test fault hook. Each concern is a file of its own:
// store_ledger.cpp (the ingest ledger), store_commit.cpp (the atomic ingest commit),
// store_tickets.cpp (tickets, notes, attachments, routing lookups), store_mailbox_state.cpp,
// store_tokens.cpp (OAuth token state) and store_outbox.cpp (the durable outbox).
#include "core/store.h"

#include <sqlite3.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "core/internal/migrations.h"
#include "core/internal/sqlite.h"
#include "core/internal/store_util.h"

namespace mb {

using internal::Stmt;
using internal::Transaction;

Store::Store(sqlite3* db) : db_(db) {}

Store::~Store() { sqlite3_close_v2(db_); }

namespace {

// Creates the database file with mode 0600 before SQLite would create it 0644 (under umask
// 022): it holds every message and the outbox. SQLite gives the -wal, -shm and -journal files
// the database file's mode. An existing file keeps its mode. A path that cannot be a database
// file is a configuration error naming it.
Status prepare_store_file(const std::string& path) {
  if (path.empty() || path == ":memory:" || path.rfind("file:", 0) == 0) return Status::Ok();
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
    return Status(ErrorKind::kConfig, "store " + path + " is a directory; [store] path names "
                                      "the database file (e.g. " + path + "/mailbridge.db)");
  }
  // An existing file is left alone, never opened here: closing any descriptor of the file
  // drops every POSIX lock this process holds on it, SQLite's included. Another connection
  // of this process (the service's workers) would then lose its shared lock, and another
  // process closing the database could checkpoint and delete the -wal file under it, so
  // that its later commits went to an unlinked file and were lost.
  if (::stat(path.c_str(), &st) == 0) return Status::Ok();
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    const int e = errno;
    const ErrorKind kind = e == ENOENT || e == ENOTDIR || e == EISDIR || e == EACCES
                               ? ErrorKind::kConfig
                               : ErrorKind::kInternal;
    return Status(kind, "cannot open store " + path + ": " + std::strerror(e));
  }
  ::close(fd);
  return Status::Ok();
}

}  // namespace

Result<std::unique_ptr<Store>> Store::open(const std::string& path) {
  MB_RETURN_IF_ERROR(prepare_store_file(path));
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
                           nullptr);
  std::unique_ptr<Store> store(new Store(db));  // closes db on every early return
  if (rc != SQLITE_OK) {
    return internal::sqlite_error(db, "cannot open store " + path);
  }
  sqlite3_extended_result_codes(db, 1);
  sqlite3_busy_timeout(db, 10000);
  // synchronous=NORMAL: in WAL mode every commit survives a crash of the process; what it
  // does not survive is power loss before the next WAL sync. Ingest calls make_durable() (one
  // fsync for the whole batch) before it asks the server to delete or move anything, which is
  // the only point where losing a commit would lose mail.
  Status s = internal::exec(db,
                            "PRAGMA journal_mode = WAL; PRAGMA foreign_keys = ON; "
                            "PRAGMA synchronous = NORMAL;");
  if (!s.ok()) return s.prefixed("store " + path);
  s = store->migrate();
  if (!s.ok()) return s.prefixed("store " + path);
  return store;
}

std::string Store::path() const {
  const char* f = sqlite3_db_filename(db_, "main");
  return f != nullptr ? f : "";
}

int Store::schema_version() const {
  auto st = Stmt::prepare(db_, "PRAGMA user_version");
  if (!st.ok()) return -1;
  auto row = st->step();
  if (!row.ok() || !*row) return -1;
  return static_cast<int>(st->col_int(0));
}

Status Store::migrate() {
  auto scripts = internal::store_migrations();
  if (schema_version() == static_cast<int>(scripts.size())) return Status::Ok();
  // Re-read the version under the write lock: another process may be migrating right now.
  MB_ASSIGN_OR_RETURN(tx, Transaction::begin_immediate(db_));
  int version = schema_version();
  if (version < 0) return Status(ErrorKind::kInternal, "cannot read schema version");
  if (version > static_cast<int>(scripts.size())) {
    return Status(ErrorKind::kInternal,
                  "schema version " + std::to_string(version) + " is newer than this build");
  }
  for (size_t i = static_cast<size_t>(version); i < scripts.size(); ++i) {
    MB_RETURN_IF_ERROR(internal::exec(db_, scripts[i]).prefixed(
        "migration " + std::to_string(i + 1)));
    std::string pragma = "PRAGMA user_version = " + std::to_string(i + 1);
    MB_RETURN_IF_ERROR(internal::exec(db_, pragma.c_str()));
  }
  return tx.commit();
}

Status Store::fault(std::string_view step) const {
  if (!fault_hook_) return Status::Ok();
  return fault_hook_(step);
}

}  // namespace mb
