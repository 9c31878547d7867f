// File: core/instance_lock.cpp — the single-instance lock of `mailbridge run`.
#include "core/instance_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

#include <fmt/format.h>

#include "core/utc.h"

namespace mb {
namespace {

// The holder's "<pid>\n<started_at>\n"; zeros and "" when not written yet.
InstanceHolder read_holder(int fd) {
  InstanceHolder h;
  char buf[128];
  ssize_t n = ::pread(fd, buf, sizeof(buf) - 1, 0);
  if (n <= 0) return h;
  std::string text(buf, static_cast<size_t>(n));
  size_t nl = text.find('\n');
  try {
    h.pid = std::stoll(text.substr(0, nl));
  } catch (const std::exception&) {
    h.pid = 0;
  }
  if (nl != std::string::npos) {
    size_t end = text.find('\n', nl + 1);
    h.started_at = text.substr(nl + 1, end == std::string::npos ? end : end - nl - 1);
  }
  return h;
}

// flock(LOCK_EX | LOCK_NB), retried for ~100 ms: a `status` probe holds a shared lock for
// microseconds and must not make a start fail.
int lock_exclusive(int fd) {
  for (int attempt = 0;; ++attempt) {
    if (::flock(fd, LOCK_EX | LOCK_NB) == 0) return 0;
    if (errno != EWOULDBLOCK || attempt == 10) return errno;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

}  // namespace

std::string instance_lock_path(const std::string& store_path) {
  return store_path + ".run.lock";
}

Result<std::unique_ptr<InstanceLock>> InstanceLock::acquire(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) {
    return Status(ErrorKind::kConfig,
                  fmt::format("cannot open the lock file {}: {}", path, std::strerror(errno)));
  }
  int err = lock_exclusive(fd);
  if (err == EWOULDBLOCK) {
    InstanceHolder h = read_holder(fd);
    ::close(fd);
    std::string who = h.pid > 0 ? fmt::format("pid {}", h.pid) : "another process";
    if (!h.started_at.empty()) who += ", started " + h.started_at;
    return Status(ErrorKind::kInternal,
                  fmt::format("another `mailbridge run` already serves this store: {} is "
                              "held by {}", path, who));
  }
  if (err != 0) {
    ::close(fd);
    return Status(ErrorKind::kConfig,
                  fmt::format("cannot lock {}: {}", path, std::strerror(err)));
  }
  std::string started = now_iso8601();
  std::string text = fmt::format("{}\n{}\n", ::getpid(), started);
  if (::ftruncate(fd, 0) != 0 ||
      ::pwrite(fd, text.data(), text.size(), 0) != static_cast<ssize_t>(text.size())) {
    int e = errno;
    ::close(fd);
    return Status(ErrorKind::kConfig,
                  fmt::format("cannot write the lock file {}: {}", path, std::strerror(e)));
  }
  return std::unique_ptr<InstanceLock>(new InstanceLock(fd, path, std::move(started)));
}

InstanceLock::~InstanceLock() {
  // Emptied first, so that a reader never takes a stale pid for the holder.
  if (::ftruncate(fd_, 0) != 0) {
    // Nothing to do: the lock itself is what tells, and it goes with the close.
  }
  ::close(fd_);
}

Result<InstanceHolder> probe_instance_lock(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) {
    if (errno == ENOENT) return InstanceHolder{};
    return Status(ErrorKind::kInternal,
                  fmt::format("cannot open the lock file {}: {}", path, std::strerror(errno)));
  }
  InstanceHolder h;
  if (::flock(fd, LOCK_SH | LOCK_NB) == 0) {
    ::flock(fd, LOCK_UN);
  } else if (errno == EWOULDBLOCK) {
    h = read_holder(fd);
    h.running = true;
  } else {
    int e = errno;
    ::close(fd);
    return Status(ErrorKind::kInternal,
                  fmt::format("cannot probe the lock file {}: {}", path, std::strerror(e)));
  }
  ::close(fd);
  return h;
}

}  // namespace mb
