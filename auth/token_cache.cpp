// File: auth/token_cache.cpp — TokenCache: per-key single-flight refresh over a TokenSource,
// with rotated refresh tokens persisted through TokenStore before the new token is used.
//
// One mutex guards the map and every entry's fields; it is never held across I/O (the
// source, the store), so a slow refresh of one key blocks neither the fast path of another
// key nor its refresh. Waiters sleep on their entry's own condition variable.
#include "auth/token_cache.h"

#include <algorithm>

#include <spdlog/spdlog.h>

#include "auth/secrets.h"
#include "core/metrics.h"

namespace mb {

using SysTime = std::chrono::system_clock::time_point;

struct TokenCache::Entry {
  std::condition_variable cv;
  bool in_flight = false;
  uint64_t generation = 0;  // completed flights; waiters wait for it to move
  Status last_status;       // the outcome of the last completed flight
  std::optional<std::string> access_token;
  SysTime expires_at{};
  SysTime refresh_at{};
  SysTime retry_at{};  // no new flight before this (backoff after a failure)
  bool grant_loaded = false;
  std::optional<std::string> refresh_token;
  std::optional<SysTime> last_refresh;
  uint64_t refreshes = 0;
  uint64_t failures = 0;
  size_t waiters = 0;
};

namespace {

constexpr std::string_view kInvalidGrant = "invalid_grant";
constexpr std::string_view kTokenRejected = "token rejected";

bool contains(const std::string& s, std::string_view part) {
  return s.find(part) != std::string::npos;
}

}  // namespace

Status invalid_grant_status(const std::string& detail) {
  return Status(ErrorKind::kAuth, "invalid_grant: " + detail);
}

bool is_invalid_grant(const Status& status) {
  return status.kind() == ErrorKind::kAuth && contains(status.message(), kInvalidGrant);
}

Status token_rejected_status(const std::string& detail) {
  return Status(ErrorKind::kAuth, std::string(kTokenRejected) + ": " + detail);
}

bool is_token_rejected(const Status& status) {
  return status.kind() == ErrorKind::kAuth && contains(status.message(), kTokenRejected);
}

TokenCache::TokenCache(TokenSource& source, TokenStore* store, WallClock clock,
                       TokenCacheOptions options)
    : source_(source), store_(store), clock_(std::move(clock)), options_(options) {}

TokenCache::~TokenCache() = default;

TokenCache::Entry& TokenCache::entry_locked(const TokenKey& key) {
  auto& slot = entries_[key.to_string()];
  if (!slot) slot = std::make_unique<Entry>();
  return *slot;
}

Result<std::string> TokenCache::token(const TokenKey& key) {
  std::unique_lock lk(mu_);
  Entry& e = entry_locked(key);
  for (;;) {
    SysTime now = clock_();
    bool valid = e.access_token && now < e.expires_at;
    // A still-valid token is served while its early refresh runs or backs off.
    if (valid && (now < e.refresh_at || e.in_flight || now < e.retry_at)) return *e.access_token;
    if (!valid && !e.in_flight && now < e.retry_at && !e.last_status.ok()) return e.last_status;
    if (!e.in_flight) return refresh(key, e, lk);
    uint64_t seen = e.generation;
    ++e.waiters;
    e.cv.wait(lk, [&] { return e.generation != seen; });
    --e.waiters;
    if (!e.last_status.ok()) return e.last_status;
    // That flight's token, even if it is already due again: one flight serves its waiters.
    if (e.access_token) return *e.access_token;
  }
}

// Called with `lk` held and no flight in progress for `e`; runs one flight with the lock
// released, then publishes its outcome to the waiters.
Result<std::string> TokenCache::refresh(const TokenKey& key, Entry& e,
                                        std::unique_lock<std::mutex>& lk) {
  e.in_flight = true;
  bool load = store_ != nullptr && !e.grant_loaded;
  std::optional<std::string> refresh_token = e.refresh_token;
  lk.unlock();

  Result<TokenResponse> r = Status(ErrorKind::kInternal, "no flight");
  Result<std::optional<std::string>> loaded = std::optional<std::string>();
  if (load) loaded = store_->load(key);
  if (!loaded.ok()) {
    r = loaded.status();
  } else {
    if (load) refresh_token = *loaded;
    if (refresh_token) Redactor::instance().add_token(*refresh_token);
    r = fetch_and_persist(key, refresh_token);
  }

  lk.lock();
  if (load && loaded.ok()) {
    e.grant_loaded = true;
    e.refresh_token = *loaded;
  }
  Result<std::string> out = publish_locked(key, e, r);
  if (options_.on_change) {
    TokenState state = state_locked(key.to_string(), e);
    lk.unlock();  // the callback may write to disk; callers of other keys must not wait on it
    options_.on_change(state);
  }
  return out;
}

// Records a finished flight in `e` (lock held) and wakes its waiters.
Result<std::string> TokenCache::publish_locked(const TokenKey& key, Entry& e,
                                               const Result<TokenResponse>& r) {
  SysTime now = clock_();
  e.in_flight = false;
  ++e.generation;
  e.last_status = r.status();
  e.cv.notify_all();
  metrics::token_refreshes(key.app, r.ok() ? "ok" : "error").inc();
  if (r.ok()) {
    const TokenResponse& t = *r;
    // A server or a log line that repeats a token must not show it (auth/secrets.h).
    Redactor::instance().add_token(t.access_token);
    if (t.refresh_token) Redactor::instance().add_token(*t.refresh_token);
    if (t.refresh_token) e.refresh_token = t.refresh_token;
    auto margin = std::min(options_.refresh_margin, t.expires_in / 2);
    e.access_token = t.access_token;
    e.expires_at = now + t.expires_in;
    e.refresh_at = t.refresh_in ? now + std::min(*t.refresh_in, t.expires_in)
                                : e.expires_at - margin;
    e.retry_at = SysTime{};
    e.last_refresh = now;
    ++e.refreshes;
    return t.access_token;
  }
  ++e.failures;
  const Status& st = r.status();
  spdlog::warn("token for {}: {}", key.to_string(), st.to_string());
  if (is_invalid_grant(st)) {
    e.access_token.reset();
    e.refresh_token.reset();
    return st;
  }
  bool valid = e.access_token && now < e.expires_at;
  auto backoff = std::max(options_.failure_backoff, st.retry_after().value_or(std::chrono::seconds(0)));
  if (valid) {
    e.retry_at = now + backoff;  // keep serving the old token; try again after the backoff
    return *e.access_token;
  }
  bool transient = st.kind() == ErrorKind::kNetwork || st.kind() == ErrorKind::kThrottled;
  e.retry_at = transient ? now + backoff : SysTime{};
  return st;
}

// Runs without the lock. A rotated refresh token is saved before the response is returned,
// so no caller ever holds an access token whose refresh successor could be lost.
Result<TokenResponse> TokenCache::fetch_and_persist(const TokenKey& key,
                                                    const std::optional<std::string>& refresh_token) {
  Result<TokenResponse> r = source_.acquire(key, refresh_token);
  if (!r.ok()) {
    if (store_ != nullptr && is_invalid_grant(r.status())) {
      Status erased = store_->erase(key);
      if (!erased.ok()) {
        return Status(r.status().kind(), r.status().message() +
                                             "; and the stored grant could not be deleted: " +
                                             erased.message());
      }
    }
    return r;
  }
  if (r->access_token.empty()) {
    return Status(ErrorKind::kProtocol, "token endpoint returned no access_token");
  }
  if (store_ != nullptr && r->refresh_token && r->refresh_token != refresh_token) {
    Status saved = store_->save(key, *r->refresh_token);
    if (!saved.ok()) {
      return Status(ErrorKind::kInternal,
                    "the rotated refresh token could not be saved, so the new access token "
                    "is not used: " + saved.message());
    }
  }
  return r;
}

void TokenCache::invalidate(const TokenKey& key, const std::string& access_token) {
  std::lock_guard lk(mu_);
  auto it = entries_.find(key.to_string());
  if (it == entries_.end()) return;
  Entry& e = *it->second;
  if (e.access_token && *e.access_token == access_token) {
    e.access_token.reset();
    e.retry_at = SysTime{};
  }
}

Status TokenCache::with_token(const TokenKey& key,
                              const std::function<Status(const std::string&)>& fn) {
  Result<std::string> t = token(key);
  if (!t.ok()) return t.status();
  Status st = fn(*t);
  if (!is_token_rejected(st)) return st;
  invalidate(key, *t);
  Result<std::string> fresh = token(key);
  if (!fresh.ok()) return fresh.status();
  return fn(*fresh);
}

TokenState TokenCache::state_locked(const std::string& name, const Entry& e) {
  TokenState s;
  s.key = name;
  s.has_access_token = e.access_token.has_value();
  s.has_refresh_token = e.refresh_token.has_value();
  if (e.access_token) {
    s.expires_at = e.expires_at;
    s.refresh_at = e.refresh_at;
  }
  s.last_refresh = e.last_refresh;
  if (!e.last_status.ok()) s.last_error = e.last_status.to_string();
  s.refreshes = e.refreshes;
  s.failures = e.failures;
  s.refreshing = e.in_flight;
  s.waiters = e.waiters;
  return s;
}

std::vector<TokenState> TokenCache::describe() const {
  std::lock_guard lk(mu_);
  std::vector<TokenState> out;
  for (const auto& [name, e] : entries_) out.push_back(state_locked(name, *e));
  std::sort(out.begin(), out.end(),
            [](const TokenState& a, const TokenState& b) { return a.key < b.key; });
  return out;
}

}  // namespace mb
