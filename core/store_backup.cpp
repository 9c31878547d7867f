// File: core/store_backup.cpp — Store::backup_to (core/store.h): a consistent copy of the live
// store through SQLite's online backup API, written beside the target and renamed into place.
#include <sqlite3.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "core/internal/sqlite.h"
#include "core/store.h"

namespace mb {
namespace {

constexpr int kBusyRetryMs = 25;
constexpr auto kBusyDeadline = std::chrono::seconds(10);  // as the store's busy timeout
// Restarts (another connection wrote between two steps) tolerated before the rest is copied
// in one step.
constexpr int kMaxRestarts = 3;

struct FileId {
  dev_t dev = 0;
  ino_t ino = 0;
  bool operator==(const FileId&) const = default;
};

std::optional<FileId> file_id(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return std::nullopt;
  return FileId{st.st_dev, st.st_ino};
}

std::filesystem::path canonical(const std::string& path) {
  std::error_code ec;
  auto p = std::filesystem::weakly_canonical(path, ec);
  return ec ? std::filesystem::path(path).lexically_normal() : p;
}

bool exists(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0;
}

Status refuse_target(const std::string& store_path, const std::string& target) {
  if (target.empty()) return Status(ErrorKind::kInvalidInput, "backup: no file named");
  struct stat st {};
  if (::stat(target.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
    return Status(ErrorKind::kInvalidInput,
                  "backup: " + target + " is a directory; name the file to write");
  }
  const auto id = file_id(target);
  const auto canonical_target = canonical(target);
  for (const char* suffix : {"", "-wal", "-shm", "-journal"}) {
    const std::string live = store_path + suffix;
    // The same file, or the same name (a -wal or -shm that does not exist yet).
    if ((id && file_id(live) == id) || canonical(live) == canonical_target) {
      return Status(ErrorKind::kInvalidInput,
                    "backup: " + target + " is the live store (" + live +
                        "); write the copy to another file");
    }
  }
  for (const char* suffix : {"-wal", "-shm"}) {
    if (exists(target + suffix)) {
      return Status(ErrorKind::kInvalidInput,
                    "backup: " + target + suffix + " exists: a database at " + target +
                        " is open or was not closed cleanly, and its journal would be applied "
                        "to the copy; write the copy to another file");
    }
  }
  return Status::Ok();
}

// The errno Status of a file operation on the copy.
Status file_error(const std::string& what, const std::string& path) {
  return Status(ErrorKind::kInternal,
                "backup: " + what + " " + path + ": " + std::strerror(errno));
}

Status fsync_path(const std::string& path, int flags) {
  int fd = ::open(path.c_str(), flags | O_CLOEXEC);
  if (fd < 0) return file_error("cannot open", path);
  int rc = ::fsync(fd);
  ::close(fd);
  return rc == 0 ? Status::Ok() : file_error("cannot fsync", path);
}

// Copies the source into `dest`, step by step (BackupOptions). SQLITE_BUSY and SQLITE_LOCKED
// are retried until kBusyDeadline.
Status copy_pages(sqlite3* source, sqlite3* dest, const BackupOptions& options,
                  BackupResult& result) {
  sqlite3_backup* backup = sqlite3_backup_init(dest, "main", source, "main");
  if (backup == nullptr) return internal::sqlite_error(dest, "backup: cannot start");
  const int step_pages = options.pages_per_step > 0 ? options.pages_per_step : -1;
  auto busy_since = std::optional<std::chrono::steady_clock::time_point>();
  int restarts = 0;
  int last_remaining = -1;
  int rc = SQLITE_OK;
  while (true) {
    rc = sqlite3_backup_step(backup, restarts >= kMaxRestarts ? -1 : step_pages);
    if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED) {
      auto now = std::chrono::steady_clock::now();
      if (!busy_since) busy_since = now;
      if (now - *busy_since > kBusyDeadline) break;
      sqlite3_sleep(kBusyRetryMs);
      continue;
    }
    busy_since.reset();
    if (rc != SQLITE_OK && rc != SQLITE_DONE) break;
    const int remaining = sqlite3_backup_remaining(backup);
    const int total = sqlite3_backup_pagecount(backup);
    // A step that did not shorten what is left started the copy over.
    if (last_remaining >= 0 && remaining >= last_remaining) ++restarts;
    last_remaining = remaining;
    if (options.on_step) options.on_step(remaining, total);
    if (rc == SQLITE_DONE) break;
  }
  result.pages = sqlite3_backup_pagecount(backup);
  sqlite3_backup_finish(backup);
  if (rc != SQLITE_DONE) {
    return Status(ErrorKind::kInternal,
                  std::string("backup: copying the store failed: ") + sqlite3_errstr(rc));
  }
  return Status::Ok();
}

// Opens the temporary file as a database, copies into it, and makes it a single file
// (journal_mode DELETE: the backup copied the source's WAL flag).
Status write_copy(sqlite3* source, const std::string& tmp, const BackupOptions& options,
                  BackupResult& result) {
  sqlite3* dest = nullptr;
  int rc = sqlite3_open_v2(tmp.c_str(), &dest, SQLITE_OPEN_READWRITE, nullptr);
  if (rc != SQLITE_OK) {
    Status s = internal::sqlite_error(dest, "backup: cannot open " + tmp);
    sqlite3_close_v2(dest);
    return s;
  }
  sqlite3_busy_timeout(dest, 10000);
  Status s = copy_pages(source, dest, options, result);
  if (s.ok()) s = internal::exec(dest, "PRAGMA journal_mode = DELETE");
  if (sqlite3_close_v2(dest) != SQLITE_OK && s.ok()) {
    s = Status(ErrorKind::kInternal, "backup: cannot close " + tmp);
  }
  return s;
}

}  // namespace

Result<BackupResult> Store::backup_to(const std::string& path, const BackupOptions& options) {
  const std::string source_path = this->path();
  if (source_path.empty()) {
    return Status(ErrorKind::kInvalidInput, "backup: an in-memory store has no file to copy");
  }
  MB_RETURN_IF_ERROR(refuse_target(source_path, path));
  // Beside the target, so that the rename stays within one file system.
  std::string tmp = path + ".tmp-XXXXXX";
  int fd = ::mkstemp(tmp.data());
  if (fd < 0) return file_error("cannot create a temporary file beside", path);
  ::fchmod(fd, 0600);
  ::close(fd);
  BackupResult result;
  Status s = write_copy(db_, tmp, options, result);
  if (s.ok()) s = fsync_path(tmp, O_RDONLY);
  if (s.ok() && ::rename(tmp.c_str(), path.c_str()) != 0) s = file_error("cannot rename to", path);
  if (!s.ok()) {
    ::unlink(tmp.c_str());
    ::unlink((tmp + "-journal").c_str());
    return s;
  }
  std::string dir = std::filesystem::path(path).parent_path().string();
  MB_RETURN_IF_ERROR(fsync_path(dir.empty() ? "." : dir, O_RDONLY | O_DIRECTORY));
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0) result.bytes = st.st_size;
  return result;
}

Result<BackupResult> Store::backup_file(const std::string& store_path, const std::string& path,
                                        const BackupOptions& options) {
  struct stat st {};
  if (::stat(store_path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) {
    return Status(ErrorKind::kConfig, "backup: no store at " + store_path + " ([store] path)");
  }
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(store_path.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr);
  std::unique_ptr<Store> store(new Store(db));  // closes db on every return
  if (rc != SQLITE_OK) return internal::sqlite_error(db, "backup: cannot open store " + store_path);
  sqlite3_extended_result_codes(db, 1);
  sqlite3_busy_timeout(db, 10000);
  return store->backup_to(path, options);
}

}  // namespace mb
