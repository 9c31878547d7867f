// File: core/handover_log.cpp — one int64 at offset 0, little-endian, rewritten in place.
#include "core/handover_log.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <spdlog/spdlog.h>

namespace mb {
namespace {

void put_le(int64_t v, unsigned char out[8]) {
  auto u = static_cast<uint64_t>(v);
  for (int i = 0; i < 8; ++i) out[i] = static_cast<unsigned char>(u >> (8 * i));
}

int64_t get_le(const unsigned char in[8]) {
  uint64_t u = 0;
  for (int i = 7; i >= 0; --i) u = (u << 8) | in[i];
  return static_cast<int64_t>(u);
}

}  // namespace

std::string HandoverLog::path_for(const std::string& store_path, const std::string& owner) {
  if (store_path.empty() || store_path == ":memory:") return "";
  std::string safe;
  for (char c : owner) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '-' || c == '_';
    safe += ok ? c : '_';
  }
  return store_path + "-handover-" + safe;
}

HandoverLog::HandoverLog(std::string path) : path_(std::move(path)) {}

HandoverLog::~HandoverLog() {
  if (fd_ >= 0) ::close(fd_);
}

void HandoverLog::write(int64_t value) {
  if (path_.empty() || failed_) return;
  if (fd_ < 0) {
    fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd_ < 0) {
      failed_ = true;
      spdlog::warn("outbox: cannot open the hand-over log {}: {}; a crash right after a "
                   "message's end reaches the server may send it again",
                   path_, std::strerror(errno));
      return;
    }
  }
  unsigned char buf[8];
  put_le(value, buf);
  if (::pwrite(fd_, buf, sizeof buf, 0) != static_cast<ssize_t>(sizeof buf)) {
    failed_ = true;
    spdlog::warn("outbox: cannot write the hand-over log {}: {}", path_, std::strerror(errno));
  }
}

void HandoverLog::remove() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  remove_file(path_);
}

Result<std::optional<int64_t>> HandoverLog::last_handed_over(const std::string& path) {
  using Last = std::optional<int64_t>;
  if (path.empty()) return Last();
  auto unreadable = [&path](int err) {
    return Status(ErrorKind::kInternal, "cannot read the outbox's hand-over log " + path + ": " +
                                            std::strerror(err) +
                                            "; the interrupted send it speaks for is left as "
                                            "it is until the log can be read");
  };
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return Last();
    return unreadable(errno);
  }
  unsigned char buf[8];
  ssize_t n = ::pread(fd, buf, sizeof buf, 0);
  const int err = errno;
  ::close(fd);
  if (n < 0) return unreadable(err);
  if (n != static_cast<ssize_t>(sizeof buf)) return Last();
  int64_t v = get_le(buf);
  if (v <= 0) return Last();
  return Last(v);
}

void HandoverLog::remove_file(const std::string& path) {
  if (!path.empty()) ::unlink(path.c_str());
}

}  // namespace mb
