// File: core/files.cpp — bounded, non-blocking reads of regular files named in the
// configuration.
#include "core/files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

namespace mb {
namespace {

struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

const char* file_kind(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISSOCK(mode)) return "a socket";
  return "a special file";
}

// "mailbox support: password: cannot read file /run/pw: it is a FIFO, not a regular file".
Status config_error(const std::string& what, const std::string& path, const std::string& why) {
  return Status(ErrorKind::kConfig, fmt::format("{}: cannot read file {}: {}", what, path, why));
}

std::string size_text(size_t bytes) {
  return bytes % 1024 == 0 ? fmt::format("{} KiB", bytes / 1024) : fmt::format("{} bytes", bytes);
}

// Opens `path` read-only without blocking (a FIFO with no writer would wait forever) and
// checks that it is a regular file no larger than `max_bytes`.
Status open_regular(const std::string& path, size_t max_bytes, const std::string& what, Fd& f) {
  f.fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
  if (f.fd < 0) {
    return config_error(what, path, std::strerror(errno));
  }
  struct stat st {};
  if (::fstat(f.fd, &st) != 0) {
    return config_error(what, path, std::strerror(errno));
  }
  if (!S_ISREG(st.st_mode)) {
    return config_error(what, path,
                        fmt::format("it is {}, not a regular file", file_kind(st.st_mode)));
  }
  if (static_cast<uint64_t>(st.st_size) > max_bytes) {
    return config_error(what, path, fmt::format("it holds {} bytes, over the limit of {}",
                                                st.st_size, size_text(max_bytes)));
  }
  return Status::Ok();
}

}  // namespace

Result<std::string> read_regular_file(const std::string& path, size_t max_bytes,
                                      const std::string& what) {
  Fd f;
  if (Status s = open_regular(path, max_bytes, what, f); !s.ok()) return s;
  // The size from fstat is a hint only (the file may grow, /proc files say 0): read at most
  // one byte past the limit.
  std::string data;
  char buf[8192];
  while (data.size() <= max_bytes) {
    size_t want = std::min(sizeof buf, max_bytes + 1 - data.size());
    ssize_t n = ::read(f.fd, buf, want);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      return config_error(what, path, std::strerror(errno));
    }
    if (n == 0) return data;
    data.append(buf, static_cast<size_t>(n));
  }
  return config_error(what, path,
                      fmt::format("it holds more than the limit of {}", size_text(max_bytes)));
}

Status check_regular_file(const std::string& path, size_t max_bytes, const std::string& what) {
  Fd f;
  return open_regular(path, max_bytes, what, f);
}

}  // namespace mb
