// File: auth/secrets.cpp — resolves env:/file: secret references and scrubs known secrets
// (and their base64 forms, as sent in SASL PLAIN or XOAUTH2) from text.
#include "auth/secrets.h"

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <mutex>
#include <set>
#include <shared_mutex>
#include <sstream>
#include <vector>

namespace mb {
namespace {

std::string base64(std::string_view in, bool url) {
  static const char* kStd = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  static const char* kUrl = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  const char* abc = url ? kUrl : kStd;
  std::string out;
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8) | uint8_t(in[i + 2]);
    for (int shift = 18; shift >= 0; shift -= 6) out += abc[(v >> shift) & 63];
  }
  size_t rest = in.size() - i;
  if (rest > 0) {
    uint32_t v = uint8_t(in[i]) << 16;
    if (rest == 2) v |= uint8_t(in[i + 1]) << 8;
    out += abc[(v >> 18) & 63];
    out += abc[(v >> 12) & 63];
    out += rest == 2 ? abc[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

// The base64 text that `secret` produces wherever it sits inside a longer encoded string
// (e.g. "\0user\0password" in AUTHENTICATE PLAIN): for each of the three alignments, the
// characters that depend on the secret's bytes alone.
std::vector<std::string> base64_forms(std::string_view secret) {
  std::vector<std::string> forms;
  for (bool url : {false, true}) {
    std::string whole = base64(secret, url);
    forms.push_back(whole);
    whole.erase(whole.find_last_not_of('=') + 1);
    forms.push_back(whole);
    for (size_t k = 0; k < 3; ++k) {
      std::string enc = base64(std::string(k, '\0') + std::string(secret), url);
      size_t skip = k == 0 ? 0 : k + 1;  // chars mixing prefix bits
      size_t full = (k + secret.size()) / 3 * 4;  // chars from complete 3-byte groups
      if (full > skip + 5) forms.push_back(enc.substr(skip, full - skip));
    }
  }
  return forms;
}

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
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return Status(ErrorKind::kConfig,
                  what + ": cannot read file " + path + ": " + std::strerror(errno));
  }
  std::ostringstream buf;
  buf << in.rdbuf();
  std::string v = buf.str();
  // Editors and `echo` add a final newline that is never part of the secret.
  while (!v.empty() && (v.back() == '\n' || v.back() == '\r')) v.pop_back();
  if (v.empty()) return Status(ErrorKind::kConfig, what + ": file " + path + " is empty");
  return v;
}

struct LongestFirst {
  bool operator()(const std::string& a, const std::string& b) const {
    return a.size() != b.size() ? a.size() > b.size() : a < b;
  }
};

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

// Patterns are kept longest first so that a secret's base64 form is replaced whole before a
// shorter pattern could cut into it.
struct RedactorState {
  mutable std::shared_mutex mu;
  std::set<std::string, LongestFirst> patterns;
};

static RedactorState& redactor_state() {
  static RedactorState state;
  return state;
}

Redactor& Redactor::instance() {
  static Redactor r;
  return r;
}

void Redactor::add(std::string_view secret) {
  if (secret.size() < 4) return;
  auto forms = base64_forms(secret);
  RedactorState& st = redactor_state();
  std::unique_lock lock(st.mu);
  st.patterns.emplace(secret);
  for (auto& f : forms) st.patterns.insert(std::move(f));
}

std::string Redactor::scrub(std::string_view text) const {
  static const std::string kMark = "<redacted>";
  std::string out(text);
  RedactorState& st = redactor_state();
  std::shared_lock lock(st.mu);
  for (const auto& p : st.patterns) {
    for (size_t pos = out.find(p); pos != std::string::npos; pos = out.find(p, pos)) {
      out.replace(pos, p.size(), kMark);
      pos += kMark.size();
    }
  }
  return out;
}

}  // namespace mb
