// File: auth/secrets.cpp — resolves env:/file: secret references and keeps the Redactor's
// patterns (auth/redact.h finds them in text).
#include "auth/secrets.h"

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <set>
#include <shared_mutex>
#include <vector>

#include "auth/redact.h"
#include "core/files.h"

namespace mb {
namespace {

Result<std::string> read_env(const std::string& name, const std::string& what) {
  const char* v = std::getenv(name.c_str());
  if (!v) {
    return Status(ErrorKind::kConfig, what + ": environment variable " + name + " is not set");
  }
  if (*v == '\0') {
    return Status(ErrorKind::kConfig, what + ": environment variable " + name + " is empty");
  }
  return std::string(v);
}

Result<std::string> read_file(const std::string& path, const std::string& what) {
  // Only a regular file of at most 64 KiB: /dev/zero, a FIFO or a directory is refused.
  auto read = read_regular_file(path, kMaxSecretFileBytes, what);
  if (!read.ok()) return read.status();
  std::string v = std::move(*read);
  // Editors and `echo` add a final newline that is never part of the secret.
  while (!v.empty() && (v.back() == '\n' || v.back() == '\r')) v.pop_back();
  if (v.empty()) return Status(ErrorKind::kConfig, what + ": file " + path + " is empty");
  return v;
}

}  // namespace

bool is_secret_reference(const std::string& ref) {
  return ref.rfind("env:", 0) == 0 || ref.rfind("file:", 0) == 0;
}

Result<std::string> resolve_secret(const SecretRef& ref, const std::string& what) {
  if (ref.empty()) return Status(ErrorKind::kConfig, what + ": no secret is configured");
  Result<std::string> value = std::string();
  if (ref.ref.rfind("env:", 0) == 0) {
    value = read_env(ref.ref.substr(4), what);
  } else if (ref.ref.rfind("file:", 0) == 0) {
    value = read_file(ref.ref.substr(5), what);
  } else {
    value = ref.ref;
  }
  if (value.ok()) Redactor::instance().add(*value);
  return value;
}

struct RedactorState {
  mutable std::shared_mutex mu;
  redact::Patterns patterns;
};

// Tokens and SASL blobs change with every refresh; a long-running process keeps the newest.
constexpr size_t kMaxTransient = 64;

static RedactorState& redactor_state() {
  static RedactorState state;
  return state;
}

Redactor& Redactor::instance() {
  static Redactor r;
  return r;
}

void Redactor::add(std::string_view secret) {
  RedactorState& st = redactor_state();
  std::unique_lock lock(st.mu);
  st.patterns.add_secret(secret, /*literal=*/secret.size() >= 4);
}

void Redactor::add_token(std::string_view token) {
  RedactorState& st = redactor_state();
  std::unique_lock lock(st.mu);
  st.patterns.add_secret(token, /*literal=*/token.size() >= 4, /*transient=*/true);
  st.patterns.trim(kMaxTransient);
}

void Redactor::add_blob(std::string_view blob) {
  RedactorState& st = redactor_state();
  std::unique_lock lock(st.mu);
  st.patterns.add_blob(blob);
  st.patterns.trim(kMaxTransient);
}

void Redactor::forget_all() {
  RedactorState& st = redactor_state();
  std::unique_lock lock(st.mu);
  st.patterns = redact::Patterns{};
}

std::string Redactor::scrub(std::string_view text, std::string_view also) const {
  redact::Patterns extra;
  extra.add_secret(also, /*literal=*/also.size() >= 4);
  RedactorState& st = redactor_state();
  std::shared_lock lock(st.mu);
  return redact::scrub(text, {&st.patterns, &extra});
}

}  // namespace mb
