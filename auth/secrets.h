// File: auth/secrets.h — secret references ("env:NAME", "file:PATH", literal) and the
// process-wide Redactor.
//
// Configuration never holds a secret itself, only a reference; resolve_secret() reads it
// when a connection needs it. Redactor remembers every secret resolved in this process so
// that any text bound for a log, an error or a report can be scrubbed as a last line of
// defence (the first is never to put a secret in a message at all).
//
//   auto pw = mb::resolve_secret(cfg.password, "mailbox support: password");
#pragma once

#include <string>
#include <string_view>

#include "core/config.h"
#include "core/status.h"

namespace mb {

// Reads the secret. `what` names it in errors ("mailbox support: password"); the error never
// contains the value. A literal is returned as is (load_config already warned about it).
// A file's trailing newline is removed. Registers the value with the Redactor.
Result<std::string> resolve_secret(const SecretRef& ref, const std::string& what);

// True for "env:…" and "file:…" references.
bool is_secret_reference(const std::string& ref);

// The process-wide memory of secrets, for text bound for a log, an error or a report
// (auth/redact.h says what is found: the secret, its base64 at any alignment or cut short,
// SASL credential messages, bearer tokens). Thread-safe.
class Redactor {
 public:
  static Redactor& instance();
  // Remembers a configured secret: its bytes are replaced when 4 bytes or longer, pieces of
  // it in base64 whenever it has 2 bytes or more.
  void add(std::string_view secret);
  // An access or refresh token: like add(), but only the newest few are kept.
  void add_token(std::string_view token);
  // A base64 line a SASL exchange sent with credentials in it.
  void add_blob(std::string_view blob);
  // `text` with every remembered secret, and `also` (a password or token the caller holds,
  // remembered or not), replaced by "<redacted>".
  std::string scrub(std::string_view text, std::string_view also = {}) const;
  // Forgets every remembered secret. For test programs that run many cases in one process
  // (the sanitizer build's): each case starts from none, as it would in a process of its own.
  void forget_all();
};

}  // namespace mb
