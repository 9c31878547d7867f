// File: connectors/connector.h — what every connector is built from: how it opens a stream
// (tests inject a scripted one) and how it proves who it is (a password, or OAuth tokens
// from the process's AuthContext). connectors/registry.cpp fills these in from the
// configuration; connectors never see [[app]] tables or token stores.
//
//   mb::SignIn sign_in;
//   sign_in.with_token = [&](const auto& fn) { return auth.with_token(key, fn); };
//   auto mbx = mb::make_pop3_mailbox(cfg, std::move(sign_in));
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/net.h"
#include "core/status.h"

namespace mb {

// Opens the connection (TLS done for security = tls). Empty: connect_stream(host, port,
// security, tls, timeouts) of the connector's configuration.
using StreamFactory = std::function<Result<std::unique_ptr<Stream>>()>;

// Runs fn with a valid access token, and once more with a fresh one when fn's status is a
// rejected token (is_token_rejected of auth/token_cache.h): AuthContext::with_token.
using TokenRunner =
    std::function<Status(const std::function<Status(const std::string& token)>& fn)>;

// How a mailbox or sender signs in. Exactly one of `password` (auth = "password") or
// `with_token` (auth = "oauth2") is used; `none` is an SMTP relay that takes no AUTH.
struct SignIn {
  std::string password;
  TokenRunner with_token;
  // The detail of test-connection's "token" step once a token was obtained: the app, its
  // token endpoint and the token's expiry — never the token. Empty: "access token obtained".
  std::function<std::string()> describe;
  bool none = false;

  bool oauth() const { return static_cast<bool>(with_token); }
  static SignIn with_password(std::string password) {
    SignIn s;
    s.password = std::move(password);
    return s;
  }
};

// A folder path of display names, "/"-separated, as Graph and EWS mailboxes take it:
// "Inbox/Processed" → {"Inbox", "Processed"}; empty parts (doubled or outer "/") dropped.
inline std::vector<std::string> split_folder_path(const std::string& path) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (start <= path.size()) {
    size_t slash = path.find('/', start);
    if (slash == std::string::npos) slash = path.size();
    if (slash > start) parts.push_back(path.substr(start, slash - start));
    start = slash + 1;
  }
  return parts;
}

}  // namespace mb
