// File: auth/token_store.cpp — TokenKey's string form and the encrypted refresh-token files.
#include "auth/token_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <sstream>
#include <vector>

#include "auth/secrets.h"
#include "core/ascii.h"
#include "core/files.h"
#include "core/hash.h"

namespace mb {
namespace {

// "MBTK" and a format version; part of the authenticated data so it cannot be swapped.
constexpr std::string_view kHeader("MBTK\x01", 5);

std::string escape_field(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '%') out += "%25";
    else if (c == '|') out += "%7C";
    else out += c;
  }
  return out;
}

std::string normalize_scope(const std::string& scope) {
  std::istringstream in(scope);
  std::vector<std::string> parts;
  for (std::string s; in >> s;) parts.push_back(s);
  std::sort(parts.begin(), parts.end());
  parts.erase(std::unique(parts.begin(), parts.end()), parts.end());
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : " ") + p;
  return out;
}

Status errno_status(const std::string& what, const std::string& path) {
  return Status(ErrorKind::kInternal,
                "token store: cannot " + what + " " + path + ": " + std::strerror(errno));
}

// Closes the descriptor when it goes out of scope.
struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

Status write_all(int fd, std::string_view data, const std::string& path) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno_status("write", path);
    data.remove_prefix(static_cast<size_t>(n));
  }
  return Status::Ok();
}

Status fsync_dir(const std::string& dir) {
  Fd d{::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)};
  if (d.fd < 0) return errno_status("open directory", dir);
  if (::fsync(d.fd) != 0) return errno_status("fsync directory", dir);
  return Status::Ok();
}

Result<std::string> read_whole(const std::string& path, bool& missing) {
  missing = false;
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0 && errno == ENOENT) {
    missing = true;
    return std::string();
  }
  // token_dir comes from the configuration: a FIFO or a device there must not hang or fill
  // memory. A stored token is a few KiB.
  return read_regular_file(path, kMaxSecretFileBytes, "token store");
}

// A name no other writer uses: pid, a process-wide counter and random bytes, so a temporary
// file left by a crash never makes O_EXCL fail forever.
Result<std::string> temp_name(const std::string& final_path) {
  static std::atomic<uint64_t> counter{0};
  Result<std::string> rnd = random_bytes(4);
  if (!rnd.ok()) return rnd.status();
  return final_path + ".tmp." + std::to_string(::getpid()) + "." +
         std::to_string(counter.fetch_add(1)) + "." + sha256_hex(*rnd).substr(0, 8);
}

Status create_private_dir(const std::string& dir) {
  std::error_code ec;
  std::filesystem::path p(dir);
  if (std::filesystem::is_directory(p, ec)) return Status::Ok();
  if (p.has_parent_path() && !p.parent_path().empty()) {
    std::filesystem::create_directories(p.parent_path(), ec);
    if (ec) {
      return Status(ErrorKind::kConfig, "token store: cannot create " +
                                            p.parent_path().string() + ": " + ec.message());
    }
  }
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return Status(ErrorKind::kConfig,
                  "token store: cannot create directory " + dir + ": " + std::strerror(errno));
  }
  return Status::Ok();
}

}  // namespace

std::string TokenKey::to_string() const {
  return escape_field(ascii_lower(user)) + "|" + escape_field(app) + "|" +
         escape_field(normalize_scope(scope));
}

Result<std::unique_ptr<TokenStore>> TokenStore::open(const std::string& dir,
                                                     const SecretRef& key_ref) {
  Result<std::string> text = resolve_secret(key_ref, "token store key");
  if (!text.ok()) return text.status();
  Result<AesKey> key = parse_aes_key(*text, "token store key (" + key_ref.ref + ")");
  if (!key.ok()) return key.status();
  MB_RETURN_IF_ERROR(create_private_dir(dir));
  return std::make_unique<TokenStore>(dir, *key);
}

TokenStore::TokenStore(std::string dir, const AesKey& key) : dir_(std::move(dir)), key_(key) {}

TokenStore::~TokenStore() { std::fill(key_.begin(), key_.end(), uint8_t{0}); }

std::string TokenStore::path_for(const TokenKey& key) const {
  return (std::filesystem::path(dir_) / (sha256_hex(key.to_string()) + ".token")).string();
}

Result<std::optional<std::string>> TokenStore::load(const TokenKey& key) {
  std::string path = path_for(key);
  bool missing = false;
  Result<std::string> data = read_whole(path, missing);
  if (!data.ok()) return data.status();
  if (missing) return std::optional<std::string>();
  std::string aad = std::string(kHeader) + key.to_string();
  Result<std::string> plain = Status(ErrorKind::kInvalidInput, "bad header");
  if (data->size() >= kHeader.size() && std::string_view(*data).substr(0, kHeader.size()) == kHeader) {
    plain = aes_gcm_open(key_, std::string_view(*data).substr(kHeader.size()), aad);
  }
  if (!plain.ok()) {
    return Status(ErrorKind::kConfig, "token store: cannot decrypt " + path +
                                          ": wrong key or corrupted (" + plain.status().message() +
                                          "); the file was left in place");
  }
  return std::optional<std::string>(std::move(*plain));
}

Status TokenStore::save(const TokenKey& key, const std::string& refresh_token) {
  std::string path = path_for(key);
  Result<std::string> sealed =
      aes_gcm_seal(key_, refresh_token, std::string(kHeader) + key.to_string());
  if (!sealed.ok()) return sealed.status();
  Result<std::string> tmp = temp_name(path);
  if (!tmp.ok()) return tmp.status();
  Status st;
  {
    Fd f{::open(tmp->c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)};
    if (f.fd < 0) return errno_status("create", *tmp);
    st = write_all(f.fd, std::string(kHeader) + *sealed, *tmp);
    if (st.ok() && ::fsync(f.fd) != 0) st = errno_status("fsync", *tmp);
  }
  if (st.ok() && ::rename(tmp->c_str(), path.c_str()) != 0) st = errno_status("rename to", path);
  if (!st.ok()) {
    ::unlink(tmp->c_str());
    return st;
  }
  return fsync_dir(dir_);
}

Status TokenStore::erase(const TokenKey& key) {
  std::string path = path_for(key);
  if (::unlink(path.c_str()) != 0) {
    if (errno == ENOENT) return Status::Ok();
    return errno_status("delete", path);
  }
  return fsync_dir(dir_);
}

}  // namespace mb
