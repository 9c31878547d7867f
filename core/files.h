// File: core/files.h — reading the small files a configuration names (secrets, keys, CA
// bundles, the configuration itself) without hanging or filling memory.
//
// A path in the configuration may point at anything: /dev/zero, a FIFO, a directory. Only
// a regular file (a symlink to one is fine) no larger than the caller's limit is read; the
// file is opened non-blocking, so a FIFO is refused at once instead of waiting for a writer.
//
//   auto key = mb::read_regular_file(path, mb::kMaxSecretFileBytes, "[auth] key");
#pragma once

#include <cstddef>
#include <string>

#include "core/status.h"

namespace mb {

constexpr size_t kMaxSecretFileBytes = 64 * 1024;         // file: secrets and keys
constexpr size_t kMaxCaFileBytes = 16 * 1024 * 1024;      // tls.ca_file (a whole CA bundle)
constexpr size_t kMaxConfigFileBytes = 4 * 1024 * 1024;   // the configuration file

// The bytes of `path`. kConfig naming `what` and the path when the file cannot be opened,
// is not a regular file (a directory, a FIFO, a device) or holds more than `max_bytes`.
Result<std::string> read_regular_file(const std::string& path, size_t max_bytes,
                                      const std::string& what);

// The same checks without reading the contents, for a path handed to a library (OpenSSL
// loads tls.ca_file itself).
Status check_regular_file(const std::string& path, size_t max_bytes, const std::string& what);

}  // namespace mb
