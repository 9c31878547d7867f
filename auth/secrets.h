// File: auth/secrets.h — secret references ("env:NAME", "file:PATH", literal) and redaction.
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

class Redactor {
 public:
  static Redactor& instance();
  // Remembers `secret` (ignored when shorter than 4 bytes) and its base64 forms.
  void add(std::string_view secret);
  // Replaces every remembered secret in `text` with "<redacted>".
  std::string scrub(std::string_view text) const;
};

}  // namespace mb
