// File: auth/auth_context.cpp — AuthContext: one OAuthClient per [[app]] (built on first
// use), one TokenCache for the process, and the TokenStore of [auth] for delegated grants.
#include "auth/auth_context.h"

#include <filesystem>

#include "auth/internal/oauth_util.h"

namespace mb {
namespace {

std::string token_dir(const Config& config) {
  if (!config.auth.token_dir.empty()) return config.auth.token_dir;
  std::filesystem::path db(config.store.path);
  std::filesystem::path dir = db.parent_path();
  return ((dir.empty() ? std::filesystem::path(".") : dir) / "tokens").string();
}

}  // namespace

Result<std::unique_ptr<AuthContext>> AuthContext::create(const Config& config,
                                                         HttpClientFactory http,
                                                         OAuthClientOptions options,
                                                         TokenCacheOptions cache_options) {
  const AppConfig* delegated = nullptr;
  for (const AppConfig& app : config.apps) {
    auto endpoints = resolve_endpoints(app);
    if (!endpoints.ok()) return endpoints.status();
    if (delegated == nullptr && !oauth_internal::is_app_only(app)) delegated = &app;
  }
  std::unique_ptr<TokenStore> store;
  if (delegated != nullptr) {
    if (config.auth.key.empty()) {
      return Status(ErrorKind::kConfig,
                    "[auth] key is required: app \"" + delegated->name +
                        "\" is delegated, and its users' refresh tokens are stored encrypted "
                        "under that key (32 bytes, base64 or hex, as env:NAME or file:PATH)");
    }
    auto opened = TokenStore::open(token_dir(config), config.auth.key);
    if (!opened.ok()) return opened.status().prefixed("[auth]");
    store = std::move(*opened);
  }
  if (!http) http = [](const HttpOptions& o) { return make_http_client(o); };
  return std::unique_ptr<AuthContext>(new AuthContext(config, std::move(store), std::move(http),
                                                      std::move(options), std::move(cache_options)));
}

AuthContext::AuthContext(const Config& config, std::unique_ptr<TokenStore> store,
                         HttpClientFactory http, OAuthClientOptions options,
                         TokenCacheOptions cache_options)
    : config_(config),
      store_(std::move(store)),
      http_factory_(std::move(http)),
      options_(std::move(options)) {
  WallClock clock = options_.clock;
  if (!clock) clock = [] { return std::chrono::system_clock::now(); };
  cache_ = std::make_unique<TokenCache>(*this, store_.get(), std::move(clock),
                                        std::move(cache_options));
}

// The cache goes first (it is declared last): a flight in progress calls back into apps_.
AuthContext::~AuthContext() = default;

Result<TokenKey> AuthContext::key_for(const std::string& app, Resource resource,
                                      std::string_view protocol, const std::string& user) const {
  const AppConfig* a = config_.find_app(app);
  if (a == nullptr) return Status(ErrorKind::kConfig, "no [[app]] is named \"" + app + "\"");
  return TokenKey{a->name, default_scope(*a, resource, protocol),
                  oauth_internal::is_app_only(*a) ? std::string() : user};
}

Result<OAuthClient*> AuthContext::client(const std::string& app) {
  std::lock_guard lk(mu_);
  if (auto it = apps_.find(app); it != apps_.end()) return it->second.client.get();
  const AppConfig* a = config_.find_app(app);
  if (a == nullptr) return Status(ErrorKind::kConfig, "no [[app]] is named \"" + app + "\"");
  AppSlot slot;
  slot.http = http_factory_(HttpOptions{.tls = a->tls, .timeouts = a->timeouts});
  if (!slot.http) return Status(ErrorKind::kInternal, "app \"" + app + "\": no HTTP client");
  // A failure is not remembered: fixing a secret file takes effect at the next request.
  auto created = OAuthClient::create(*a, *slot.http, options_);
  if (!created.ok()) return created.status();
  slot.client = std::move(*created);
  OAuthClient* out = slot.client.get();
  apps_.emplace(app, std::move(slot));
  return out;
}

Result<TokenResponse> AuthContext::acquire(const TokenKey& key,
                                           const std::optional<std::string>& refresh_token) {
  auto c = client(key.app);
  if (!c.ok()) return c.status();
  return (*c)->acquire(key, refresh_token);
}

}  // namespace mb
