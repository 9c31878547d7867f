// File: auth/auth_context.h — the sign-in machinery of one mailbridge process: one
// OAuthClient per [[app]] (built on first use), one TokenCache shared by every mailbox and
// sender, and the encrypted TokenStore of [auth] for delegated grants.
//
// Connectors never see apps or stores; they ask for a token by TokenKey and hand it to SASL
// (IMAP/POP3/SMTP) or to an Authorization header (Graph/EWS):
//
//   auto auth = mb::AuthContext::create(config);            // once, at start
//   auto key = (*auth)->key_for(mailbox.app, mb::Resource::kExchange, "imap", mailbox.user);
//   mb::Status st = (*auth)->with_token(*key, [&](const std::string& token) {
//     return imap.authenticate(*mb::make_mechanism("XOAUTH2"), {mailbox.user, token});
//   });                                                     // 401 → one refresh, one retry
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "auth/oauth.h"
#include "auth/token_cache.h"
#include "auth/token_store.h"
#include "core/config.h"
#include "core/http.h"
#include "core/status.h"

namespace mb {

using HttpClientFactory = std::function<std::unique_ptr<HttpClient>(const HttpOptions&)>;

class AuthContext final : public TokenSource {
 public:
  // create() opens the TokenStore of [auth] when any app is delegated (kConfig when [auth]
  // key is missing or cannot be read) and checks every app's endpoints. It neither reads a
  // client secret nor connects: that happens at the first token request of that app.
  static Result<std::unique_ptr<AuthContext>> create(const Config& config,
                                                     HttpClientFactory http = nullptr,
                                                     OAuthClientOptions options = {},
                                                     TokenCacheOptions cache_options = {});
  ~AuthContext() override;

  // key_for(): the TokenKey of a mailbox or sender signing in with app `app` as `user`:
  // the user is kept only for delegated apps (app-only tokens are the app's, whoever the
  // mailbox). kConfig for an unknown app.
  Result<TokenKey> key_for(const std::string& app, Resource resource, std::string_view protocol,
                           const std::string& user) const;

  // client(): the app's OAuthClient, created on first use; kConfig for an unknown app or an
  // unreadable secret.
  Result<OAuthClient*> client(const std::string& app);

  TokenCache& cache() { return *cache_; }
  TokenStore* store() { return store_.get(); }  // null when no app is delegated

  Result<std::string> token(const TokenKey& key) { return cache_->token(key); }
  Status with_token(const TokenKey& key, const std::function<Status(const std::string&)>& fn) {
    return cache_->with_token(key, fn);
  }

  // TokenSource: routes to the OAuthClient of key.app.
  Result<TokenResponse> acquire(const TokenKey& key,
                                const std::optional<std::string>& refresh_token) override;

 private:
  AuthContext(const Config& config, std::unique_ptr<TokenStore> store, HttpClientFactory http,
              OAuthClientOptions options, TokenCacheOptions cache_options);

  struct AppSlot {
    std::unique_ptr<HttpClient> http;
    std::unique_ptr<OAuthClient> client;
  };

  Config config_;
  std::unique_ptr<TokenStore> store_;
  HttpClientFactory http_factory_;
  OAuthClientOptions options_;
  std::mutex mu_;
  std::unordered_map<std::string, AppSlot> apps_;
  std::unique_ptr<TokenCache> cache_;
};

}  // namespace mb
