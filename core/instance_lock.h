// File: core/instance_lock.h — one `mailbridge run` per store: an flock on a file beside
// the store, held for the life of the process (the kernel releases it when the process
// dies, SIGKILL included), with the holder's pid and start time written into it so that a
// second `run` and `status` (other processes) can name it.
//
//   auto lock = mb::InstanceLock::acquire(mb::instance_lock_path(cfg.store.path));
//   if (!lock.ok()) return fail(lock.status());  // kInternal: "... held by pid 1234 ..."
//   auto holder = mb::probe_instance_lock(path);  // for `status`: running? pid? since?
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>

#include "core/status.h"

namespace mb {

// "<store path>.run.lock": the lock file of the store at store_path.
std::string instance_lock_path(const std::string& store_path);

// Who holds a lock file, as a probe found it.
struct InstanceHolder {
  bool running = false;    // a live process holds the lock
  int64_t pid = 0;         // as written by the holder (0: not readable yet)
  std::string started_at;  // ISO 8601 UTC, as written by the holder
};

class InstanceLock {
 public:
  // Creates (mode 0600) or opens `path`, takes flock(LOCK_EX | LOCK_NB) and writes
  // "<pid>\n<started_at>\n" into it. Held by another process: kInternal (exit code 1) naming the file
  // and the holder's pid. Another error (a directory that does not exist, permissions):
  // kConfig naming the file.
  static Result<std::unique_ptr<InstanceLock>> acquire(const std::string& path);
  ~InstanceLock();  // releases the lock; the file stays (a later run reuses it)
  InstanceLock(const InstanceLock&) = delete;
  InstanceLock& operator=(const InstanceLock&) = delete;

  const std::string& path() const { return path_; }
  const std::string& started_at() const { return started_at_; }

 private:
  InstanceLock(int fd, std::string path, std::string started_at)
      : fd_(fd), path_(std::move(path)), started_at_(std::move(started_at)) {}
  int fd_;
  std::string path_;
  std::string started_at_;
};

// Whether a process holds the lock at `path`, without disturbing it: a shared non-blocking
// flock, released at once (acquire() retries briefly, so a probe never refuses a start). A
// missing file is "not running".
Result<InstanceHolder> probe_instance_lock(const std::string& path);

}  // namespace mb
