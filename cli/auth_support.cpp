// File: cli/auth_support.cpp — open_auth and the token-state bookkeeping behind
// `mailbridge auth status`.
#include "cli/auth_support.h"

#include <ctime>
#include <map>
#include <mutex>
#include <utility>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "auth/base64.h"
#include "auth/secrets.h"
#include "core/utc.h"

namespace mb {
namespace {

// Keeps, per key, what the store held before this process's first change (the counts of
// earlier runs) so that counts add up across runs instead of restarting at each process.
class TokenStateRecorder {
 public:
  explicit TokenStateRecorder(Store* store) : store_(store) {}

  void record(const TokenState& state) {
    std::lock_guard lk(mu_);
    auto it = baseline_.find(state.key);
    if (it == baseline_.end()) it = baseline_.emplace(state.key, load(state.key)).first;
    TokenStateRecord& last = it->second.last;
    const TokenStateRecord& base = it->second.before;
    TokenStateRecord r = last;
    if (state.expires_at) r.expires_at = format_utc(*state.expires_at);
    if (state.last_refresh) r.last_refresh = format_utc(*state.last_refresh);
    r.last_error = Redactor::instance().scrub(state.last_error);
    r.refreshes = base.refreshes + static_cast<int64_t>(state.refreshes);
    r.failures = base.failures + static_cast<int64_t>(state.failures);
    Status s = store_->save_token_state(r);
    if (!s.ok()) {
      spdlog::warn("cannot record the token state for auth status: {}", s.message());
      return;
    }
    last = std::move(r);
  }

 private:
  struct Known {
    TokenStateRecord before;  // as earlier runs left it
    TokenStateRecord last;    // as this process last wrote it
  };

  Known load(const std::string& key) {
    Known k;
    auto stored = store_->get_token_state(key);
    if (stored.ok() && stored->has_value()) {
      k.before = **stored;
    } else if (!stored.ok()) {
      spdlog::debug("cannot read the token state of {}: {}", key, stored.status().message());
    }
    if (auto parsed = parse_token_key(key)) {
      k.before.key = key;
      k.before.app = parsed->app;
      k.before.user = parsed->user;
      k.before.scope = parsed->scope;
    }
    k.last = k.before;
    return k;
  }

  std::mutex mu_;
  Store* store_;
  std::map<std::string, Known> baseline_;
};

std::string unescape_field(std::string_view s, bool& ok) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out += s[i];
    } else if (s.substr(i, 3) == "%25") {
      out += '%';
      i += 2;
    } else if (s.substr(i, 3) == "%7C") {
      out += '|';
      i += 2;
    } else {
      ok = false;
    }
  }
  return out;
}

// A JWT's payload as JSON; discarded when it is not one.
nlohmann::json jwt_payload(std::string_view token) {
  size_t a = token.find('.');
  size_t b = a == std::string_view::npos ? a : token.find('.', a + 1);
  if (b == std::string_view::npos) return nlohmann::json(nlohmann::json::value_t::discarded);
  std::string b64(token.substr(a + 1, b - a - 1));
  for (char& c : b64) {
    if (c == '-') c = '+';
    else if (c == '_') c = '/';
  }
  while (b64.size() % 4 != 0) b64 += '=';
  auto bytes = base64_decode(b64);
  if (!bytes) return nlohmann::json(nlohmann::json::value_t::discarded);
  return nlohmann::json::parse(*bytes, nullptr, /*allow_exceptions=*/false);
}

}  // namespace

std::optional<TokenKey> parse_token_key(std::string_view text) {
  size_t a = text.find('|');
  size_t b = a == std::string_view::npos ? a : text.find('|', a + 1);
  if (b == std::string_view::npos || text.find('|', b + 1) != std::string_view::npos) {
    return std::nullopt;
  }
  bool ok = true;
  TokenKey key{unescape_field(text.substr(a + 1, b - a - 1), ok),
               unescape_field(text.substr(b + 1), ok), unescape_field(text.substr(0, a), ok)};
  if (!ok || key.app.empty()) return std::nullopt;
  return key;
}

std::string user_from_token(std::string_view access_token) {
  if (auto claims = decode_token_claims(access_token); claims && !claims->upn.empty()) {
    return claims->upn;
  }
  nlohmann::json payload = jwt_payload(access_token);
  if (!payload.is_object()) return "";
  for (const char* claim : {"upn", "preferred_username", "unique_name", "email"}) {
    auto it = payload.find(claim);
    if (it != payload.end() && it->is_string() && !it->get<std::string>().empty()) {
      return it->get<std::string>();
    }
  }
  return "";
}

std::function<void(const TokenState&)> token_state_recorder(Store* store) {
  auto recorder = std::make_shared<TokenStateRecorder>(store);
  return [recorder](const TokenState& state) { recorder->record(state); };
}

Status record_token_success(Store& store, const TokenKey& key, const TokenResponse& response) {
  std::string name = key.to_string();
  auto stored = store.get_token_state(name);
  if (!stored.ok()) return stored.status();
  TokenStateRecord r = stored->value_or(TokenStateRecord{});
  auto now = std::chrono::system_clock::now();
  r.key = name;
  r.app = key.app;
  r.scope = key.scope;
  if (auto parsed = parse_token_key(name)) {
    r.user = parsed->user;  // lower-cased, as the key holds it
    r.scope = parsed->scope;
  }
  r.expires_at = response.expires_in.count() > 0 ? format_utc(now + response.expires_in) : "";
  r.last_refresh = format_utc(now);
  r.last_error.clear();
  r.refreshes += 1;
  return store.save_token_state(r);
}

Result<std::unique_ptr<AuthContext>> open_auth(const Config& config, Store* store,
                                               HttpClientFactory http,
                                               OAuthClientOptions options) {
  TokenCacheOptions cache_options;
  if (store != nullptr) cache_options.on_change = token_state_recorder(store);
  return AuthContext::create(config, std::move(http), std::move(options),
                             std::move(cache_options));
}

}  // namespace mb
