// File: auth/token_store.h — TokenKey (which grant a token belongs to) and TokenStore, the
// encrypted, crash-safe persistence of refresh tokens.
//
// One file per TokenKey in a directory of mode 0700; the file name is the hex SHA-256 of
// the key's string form, so neither user names nor scopes show in a directory listing. A
// file is a versioned header, a 12-byte random nonce, the AES-256-GCM ciphertext of the
// refresh token and the 16-byte tag; the header and the key string are authenticated (so a
// file copied onto another key's name does not decrypt). Writes go to a new 0600 file
// (O_CREAT|O_EXCL), are fsynced, renamed over the old one, and the directory is fsynced:
// after save() returns OK the new token survives a crash, and before it the old one does.
//
//   auto store = mb::TokenStore::open("/var/lib/mailbridge/tokens",
//                                     {"env:MAILBRIDGE_TOKEN_KEY"});
//   if (!store.ok()) return store.status();
//   MB_RETURN_IF_ERROR((*store)->save(key, rotated_refresh_token));
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "auth/crypto.h"
#include "core/config.h"
#include "core/status.h"

namespace mb {

// TokenKey names one grant: an app registration, the scopes asked for, and the user (empty
// for app-only tokens from client credentials).
struct TokenKey {
  std::string app;
  std::string scope;
  std::string user;

  // to_string() is modelled on MSAL's credential key (<home_account_id>-<environment>-
  // <credential_type>-<client_id>-<realm>-<target>): account first, then app, then target:
  // "user|app|scope". The user is lower-cased (addresses are case-insensitive) and the scopes
  // are sorted and de-duplicated (the same grant however they were listed). '|' separates
  // because '-' is common in host and app names; a '|' or '%' inside a field is written
  // %7C / %25, so two different keys never share a string.
  std::string to_string() const;

  friend bool operator==(const TokenKey&, const TokenKey&) = default;
};

// TokenStore persists one refresh token per TokenKey. Methods are virtual so that tests can
// make a store that fails. Thread-safe for different keys; TokenCache never writes one key
// from two threads at once.
class TokenStore {
 public:
  // open() resolves `key_ref` (auth/secrets.h; 32 bytes as base64 or 64 hex characters, else
  // kConfig) and creates `dir` with mode 0700 when it does not exist.
  static Result<std::unique_ptr<TokenStore>> open(const std::string& dir, const SecretRef& key_ref);

  TokenStore(std::string dir, const AesKey& key);
  virtual ~TokenStore();
  TokenStore(const TokenStore&) = delete;
  TokenStore& operator=(const TokenStore&) = delete;

  // load() returns the stored refresh token, or nullopt when there is none. A file that does
  // not decrypt (wrong key, tampered, truncated) is kConfig naming the file and "wrong key or
  // corrupted"; the file is left exactly as it is.
  virtual Result<std::optional<std::string>> load(const TokenKey& key);

  // save() replaces the stored refresh token atomically (see the banner). kInternal on any
  // file-system error, naming the path and the errno text.
  [[nodiscard]] virtual Status save(const TokenKey& key, const std::string& refresh_token);

  // erase() deletes the stored grant; OK when there was none.
  [[nodiscard]] virtual Status erase(const TokenKey& key);

  // path_for() is the file that holds `key`'s grant.
  std::string path_for(const TokenKey& key) const;
  const std::string& dir() const { return dir_; }

 private:
  std::string dir_;
  AesKey key_;
};

}  // namespace mb
