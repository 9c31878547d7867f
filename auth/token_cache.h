// File: auth/token_cache.h — the access-token cache: per app, scope and user; refreshed
// before expiry; one refresh at a time per key while other callers wait; a 401 invalidates
// and retries once; rotated refresh tokens saved before the new access token is handed out.
//
// TokenSource is the seam the OAuth grants implement (HTTP to the token endpoint);
// TokenCache is what connectors ask for a token:
//
//   mb::TokenCache cache(grants, store.get());
//   mb::Status st = cache.with_token(key, [&](const std::string& token) {
//     return imap.authenticate_xoauth2(user, token);   // "token rejected …" → one retry
//   });
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "auth/token_store.h"
#include "core/status.h"

namespace mb {

// TokenResponse is what a token endpoint answered (RFC 6749 §5.1, plus Entra's refresh_in).
struct TokenResponse {
  std::string access_token;
  std::chrono::seconds expires_in{0};
  std::optional<std::chrono::seconds> refresh_in;  // Entra: refresh after this, not the margin
  std::optional<std::string> refresh_token;        // a new (rotated) refresh token, if any
  std::string scope;                               // as granted
};

// TokenSource obtains a token for `key`, with the stored refresh token when there is one.
// Errors are Status kinds: kAuth whose message contains "invalid_grant" (make it with
// invalid_grant_status()) means the grant is dead and is the only error that deletes it;
// kNetwork and kThrottled (and everything else) never discard anything. Messages must not
// contain a token or a secret.
class TokenSource {
 public:
  virtual ~TokenSource() = default;
  virtual Result<TokenResponse> acquire(const TokenKey& key,
                                        const std::optional<std::string>& refresh_token) = 0;
};

// invalid_grant_status() is the error a TokenSource returns for an OAuth "invalid_grant".
Status invalid_grant_status(const std::string& detail);
bool is_invalid_grant(const Status& status);

// token_rejected_status() is the error a protocol returns when a server refused an access
// token (HTTP 401, an XOAUTH2/OAUTHBEARER failure challenge): kAuth with "token rejected".
// with_token() invalidates and retries once on it.
Status token_rejected_status(const std::string& detail);
bool is_token_rejected(const Status& status);

using WallClock = std::function<std::chrono::system_clock::time_point()>;

// TokenState is one key's state for `mailbridge auth status`; it holds no token text.
struct TokenState {
  std::string key;  // TokenKey::to_string()
  bool has_access_token = false;
  bool has_refresh_token = false;  // as far as this process knows (loaded or received)
  std::optional<std::chrono::system_clock::time_point> expires_at;
  std::optional<std::chrono::system_clock::time_point> refresh_at;
  std::optional<std::chrono::system_clock::time_point> last_refresh;  // last success
  std::string last_error;  // empty after a success
  uint64_t refreshes = 0;  // acquire() calls that succeeded
  uint64_t failures = 0;   // acquire() calls (or saves) that failed
  bool refreshing = false;  // a flight is in progress now
  size_t waiters = 0;       // callers waiting for that flight
};

struct TokenCacheOptions {
  // Refresh this long before expiry, unless the response gave refresh_in. A token that lives
  // less than twice the margin is refreshed at half its lifetime instead.
  std::chrono::seconds refresh_margin{300};
  // After a kNetwork or kThrottled failure on an expired token, calls within this window
  // (or the server's Retry-After, if longer) get the same error without asking the server
  // again, so that a thousand callers on a dead endpoint do not become a thousand requests.
  // A refresh ahead of expiry that fails keeps serving the still-valid token and waits the
  // same backoff before trying again.
  std::chrono::seconds failure_backoff{2};
  // Called after every flight, success or failure, with that key's new state, on the thread
  // that ran the flight and with no lock held (it may call describe()), before that caller's
  // token() returns — so that `mailbridge auth status` can persist it. Keep it short.
  std::function<void(const TokenState&)> on_change;
};

class TokenCache {
 public:
  // `store` may be null (nothing is persisted; client credentials need no store). Both
  // references must outlive the cache.
  TokenCache(TokenSource& source, TokenStore* store,
             WallClock clock = [] { return std::chrono::system_clock::now(); },
             TokenCacheOptions options = {});
  ~TokenCache();
  TokenCache(const TokenCache&) = delete;
  TokenCache& operator=(const TokenCache&) = delete;

  // token() returns a valid access token for `key`. A cached token before its refresh time
  // costs no I/O. Otherwise exactly one caller per key runs TokenSource::acquire (and saves a
  // rotated refresh token) while the other callers of that key wait for its result — its
  // token or its error; other keys are not blocked. While a refresh ahead of expiry is in
  // flight, the still-valid token is returned at once instead of waiting.
  Result<std::string> token(const TokenKey& key);

  // invalidate() forgets `access_token` after a server refused it — only if it is still the
  // cached token, so that 50 callers that all got a 401 cause one refresh, not 50.
  void invalidate(const TokenKey& key, const std::string& access_token);

  // with_token() runs fn(token); if fn returns a "token rejected" status (see
  // is_token_rejected) it invalidates that token and runs fn once more with a fresh one.
  Status with_token(const TokenKey& key, const std::function<Status(const std::string&)>& fn);

  // describe() lists every key this cache has seen, sorted by key.
  std::vector<TokenState> describe() const;

 private:
  struct Entry;
  Entry& entry_locked(const TokenKey& key);
  Result<std::string> refresh(const TokenKey& key, Entry& e, std::unique_lock<std::mutex>& lk);
  Result<std::string> publish_locked(const TokenKey& key, Entry& e,
                                     const Result<TokenResponse>& r);
  static TokenState state_locked(const std::string& name, const Entry& e);
  Result<TokenResponse> fetch_and_persist(const TokenKey& key,
                                          const std::optional<std::string>& refresh_token);

  TokenSource& source_;
  TokenStore* store_;
  WallClock clock_;
  TokenCacheOptions options_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, std::unique_ptr<Entry>> entries_;
};

}  // namespace mb
