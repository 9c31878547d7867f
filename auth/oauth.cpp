// File: auth/oauth.cpp — OAuthClient: the grants of one [[app]] against its token endpoint
// (client credentials with a secret or a certificate, refresh token, device code), with
// retries of transient failures and typed errors.
//
// Client authentication is Entra's documented form: client_secret_post for a secret, an
// RFC 7523 client assertion (auth/jwt.cpp) for a certificate, client_id alone for a public
// client. Every request is rebuilt per attempt so that a retried assertion has a fresh jti.
// Every error message goes through scrub(): the first defence is never to put a secret in a
// message, this is the second.
#include <algorithm>
#include <cctype>
#include <mutex>
#include <random>
#include <thread>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "auth/internal/oauth_util.h"
#include "auth/oauth.h"
#include "auth/secrets.h"
#include "core/backoff.h"

namespace mb {
namespace {

using Fields = std::vector<std::pair<std::string, std::string>>;

bool all_digits(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isdigit(c) != 0; });
}
using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr std::string_view kDeviceGrant = "urn:ietf:params:oauth:grant-type:device_code";
constexpr std::string_view kAssertionType =
    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
constexpr seconds kDefaultExpiresIn{3600};  // RFC 6749 §5.1 makes expires_in optional
constexpr seconds kSlowDownStep{5};         // RFC 8628 §3.5
constexpr seconds kDefaultDeviceLifetime{900};  // when the server did not say (Entra: 900)

// A number of seconds sent as a JSON number or, as Entra once did, a string of digits.
std::optional<seconds> json_seconds(const nlohmann::json& j, const char* name) {
  auto it = j.find(name);
  if (it == j.end()) return std::nullopt;
  if (it->is_number_integer() || it->is_number_unsigned()) return seconds(it->get<int64_t>());
  if (it->is_number_float()) return seconds(static_cast<int64_t>(it->get<double>()));
  if (it->is_string()) {
    const std::string& s = it->get_ref<const std::string&>();
    if (s.empty() || s.size() > 12 || !all_digits(s)) return std::nullopt;
    return seconds(std::stoll(s));
  }
  return std::nullopt;
}

std::string json_string(const nlohmann::json& j, const char* name) {
  auto it = j.find(name);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// An error body that echoes what we sent (a misbehaving server or proxy) must not carry our
// credentials into a message.
std::string without_credentials(std::string body, const Fields& form) {
  for (const auto& [name, value] : form) {
    if (value.size() < 4 || (name != "client_secret" && name != "client_assertion" &&
                             name != "refresh_token" && name != "device_code")) {
      continue;
    }
    for (const std::string& form : {value, url_encode(value)}) {
      for (size_t p; (p = body.find(form)) != std::string::npos;) body.replace(p, form.size(), "<redacted>");
    }
  }
  return body;
}

bool is_retryable(const HttpResponse& r) {
  if (r.status == 429) return false;  // throttled: the caller waits Retry-After, not us
  if (r.status >= 500) return true;
  auto err = parse_oauth_error(r.status, r.body);
  return err && err->error == "temporarily_unavailable";
}

}  // namespace

class OAuthClient::Impl {
 public:
  AppConfig app;
  HttpClient& http;
  OAuthClientOptions options;
  OAuthEndpoints endpoints;
  std::optional<std::string> secret;
  std::optional<ClientCertificate> certificate;

  Impl(const AppConfig& a, HttpClient& h, OAuthClientOptions o)
      : app(a), http(h), options(std::move(o)), rng_(std::random_device{}()) {
    if (!options.sleep) options.sleep = [](milliseconds d) { std::this_thread::sleep_for(d); };
    if (!options.clock) options.clock = [] { return std::chrono::system_clock::now(); };
    options.max_attempts = std::max(options.max_attempts, 1);
  }

  std::string label() const { return "app \"" + app.name + "\""; }

  // Replaces every secret this client knows, and those the Redactor knows, in `st`.
  Status scrub(const Status& st, std::initializer_list<std::string_view> more = {}) const;
  Result<HttpResponse> post(const std::string& url, const Fields& fields);
  Status error_status(const HttpResponse& r) const;
  Result<TokenResponse> parse_token(const HttpResponse& r) const;
  Result<TokenResponse> token_request(const Fields& fields, std::string_view credential);
  milliseconds jitter(int attempt);

 private:
  Status add_client_auth(Fields& fields) const;
  std::mutex rng_mu_;
  std::mt19937_64 rng_;
};

Status OAuthClient::Impl::scrub(const Status& st, std::initializer_list<std::string_view> more) const {
  if (st.ok()) return st;
  std::string msg = Redactor::instance().scrub(st.message());
  auto hide = [&](std::string_view s) {
    if (s.size() < 4) return;
    for (size_t p; (p = msg.find(s)) != std::string::npos;) msg.replace(p, s.size(), "<redacted>");
  };
  if (secret) hide(*secret);
  for (std::string_view s : more) hide(s);
  Status out(st.kind(), msg, st.scope());
  if (st.retry_after()) out.with_retry_after(*st.retry_after());
  return out;
}

Status OAuthClient::Impl::add_client_auth(Fields& fields) const {
  fields.emplace_back("client_id", app.client_id);
  if (certificate) {
    auto assertion = make_client_assertion(*certificate, app.client_id, endpoints.token,
                                           options.clock());
    if (!assertion.ok()) return assertion.status().prefixed(label());
    fields.emplace_back("client_assertion_type", std::string(kAssertionType));
    fields.emplace_back("client_assertion", *assertion);
  } else if (secret) {
    fields.emplace_back("client_secret", *secret);
  }
  return Status::Ok();
}

milliseconds OAuthClient::Impl::jitter(int attempt) {
  // Full jitter: U(0, min(cap, base·2^attempt)), so that many clients failing together do
  // not retry together.
  const Backoff<milliseconds> backoff{options.backoff_base, options.backoff_cap, Jitter::kFull};
  std::lock_guard lk(rng_mu_);
  return backoff.delay(attempt, unit_interval(rng_()));
}

// POSTs a form, retrying transport failures, 5xx and temporarily_unavailable; any other
// answer (2xx, 4xx, 429) is returned for the caller to read.
Result<HttpResponse> OAuthClient::Impl::post(const std::string& url, const Fields& fields) {
  for (int attempt = 0;; ++attempt) {
    Fields form = fields;
    MB_RETURN_IF_ERROR(add_client_auth(form));
    HttpRequest req{.method = "POST",
                    .url = url,
                    .headers = {{"Content-Type", "application/x-www-form-urlencoded"},
                                {"Accept", "application/json"}},
                    .body = form_encode(form),
                    .body_sink = nullptr,
                    .sensitive_body = true,
                    // A token request changes nothing a repeat could double (this loop
                    // repeats it on a lost answer anyway): it may ride kept-alive connections.
                    .repeatable = true};
    Result<HttpResponse> r = http.send(req);
    if (r.ok() && r->status / 100 != 2) r->body = without_credentials(r->body, form);
    Status failure;
    std::optional<seconds> retry_after;
    if (!r.ok()) {
      Status sent = r.status().prefixed(label() + ": token endpoint " + url);
      failure = Status(sent.kind(), without_credentials(sent.message(), form), sent.scope());
      if (failure.kind() != ErrorKind::kNetwork) return failure;
    } else if (is_retryable(*r)) {
      failure = error_status(*r);
      if (r->status == 503) retry_after = parse_retry_after(r->header("Retry-After"));
    } else {
      return r;
    }
    if (retry_after) failure.with_retry_after(*retry_after);
    // A server that asks for a longer pause than our own backoff would ever wait: give up.
    const RetryBudget budget{.max_attempts = options.max_attempts, .max_wait = options.backoff_cap};
    milliseconds delay = retry_after ? milliseconds(*retry_after) : jitter(attempt);
    if (!budget.allows(attempt + 1, milliseconds(0), delay)) return failure;
    spdlog::debug("{}: attempt {} of {} failed ({}); retrying in {} ms", label(), attempt + 1,
                  options.max_attempts, failure.message(), delay.count());
    options.sleep(delay);
  }
}

Status OAuthClient::Impl::error_status(const HttpResponse& r) const {
  Status st;
  if (auto err = parse_oauth_error(r.status, r.body)) {
    st = oauth_error_status(*err, app);
  } else if (r.status >= 500) {
    st = Status(ErrorKind::kNetwork,
                label() + ": the token endpoint answered HTTP " + std::to_string(r.status));
  } else if (r.status == 429) {
    st = Status(ErrorKind::kThrottled, label() + ": the token endpoint is throttling requests");
  } else {
    st = Status(ErrorKind::kProtocol, label() + ": the token endpoint answered HTTP " +
                                          std::to_string(r.status) +
                                          " without an OAuth error body");
  }
  if (r.status == 429) {
    auto after = parse_retry_after(r.header("Retry-After"));
    if (after) {
      st = Status(ErrorKind::kThrottled,
                  st.message() + " (retry after " + std::to_string(after->count()) + " s)")
               .with_retry_after(*after);
    } else if (st.kind() != ErrorKind::kThrottled) {
      st = Status(ErrorKind::kThrottled, st.message());
    }
  }
  return st;
}

Result<TokenResponse> OAuthClient::Impl::parse_token(const HttpResponse& r) const {
  nlohmann::json j = nlohmann::json::parse(r.body, nullptr, /*allow_exceptions=*/false);
  std::string access = j.is_object() ? json_string(j, "access_token") : std::string();
  if (access.empty()) {
    return Status(ErrorKind::kProtocol,
                  label() + ": the token endpoint's answer (HTTP " + std::to_string(r.status) +
                      ") holds no access_token");
  }
  TokenResponse t;
  t.access_token = std::move(access);
  t.expires_in = json_seconds(j, "expires_in").value_or(kDefaultExpiresIn);
  t.refresh_in = json_seconds(j, "refresh_in");
  if (std::string rt = json_string(j, "refresh_token"); !rt.empty()) t.refresh_token = rt;
  t.scope = json_string(j, "scope");
  return t;
}

// One grant: POST to the token endpoint, then a token or a typed error. `credential` is the
// grant's own secret (refresh token, device code), kept out of every message.
Result<TokenResponse> OAuthClient::Impl::token_request(const Fields& fields,
                                                       std::string_view credential) {
  Result<HttpResponse> r = post(endpoints.token, fields);
  if (!r.ok()) return scrub(r.status(), {credential});
  if (r->status / 100 == 2) {
    auto t = parse_token(*r);
    if (!t.ok()) return scrub(t.status(), {credential});
    return t;
  }
  return scrub(error_status(*r), {credential});
}

OAuthClient::OAuthClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
OAuthClient::~OAuthClient() = default;

Result<std::unique_ptr<OAuthClient>> OAuthClient::create(const AppConfig& app, HttpClient& http,
                                                         OAuthClientOptions options) {
  auto endpoints = resolve_endpoints(app);
  if (!endpoints.ok()) return endpoints.status();
  std::string label = "app \"" + app.name + "\"";
  if (app.client_id.empty()) return Status(ErrorKind::kConfig, label + ": client_id is not set");
  auto impl = std::make_unique<Impl>(app, http, std::move(options));
  impl->endpoints = *endpoints;
  if (!app.certificate.empty()) {
    auto pem = resolve_secret(app.certificate, label + ": certificate");
    if (!pem.ok()) return pem.status();
    ClientCertificate cert{*pem};
    // Signs once now so that a wrong or mismatched PEM is a configuration error at start.
    auto probe = make_client_assertion(cert, app.client_id, impl->endpoints.token,
                                       std::chrono::system_clock::now());
    if (!probe.ok()) {
      return Status(ErrorKind::kConfig, label + ": " + app.certificate.ref + ": " +
                                            probe.status().message());
    }
    impl->certificate = std::move(cert);
  } else if (!app.client_secret.empty()) {
    auto secret = resolve_secret(app.client_secret, label + ": client_secret");
    if (!secret.ok()) return secret.status();
    impl->secret = *secret;
  }
  return std::unique_ptr<OAuthClient>(new OAuthClient(std::move(impl)));
}

Result<TokenResponse> OAuthClient::acquire(const TokenKey& key,
                                           const std::optional<std::string>& refresh_token) {
  Impl& d = *impl_;
  std::string scope = key.scope.empty() ? default_scope(d.app, Resource::kExchange) : key.scope;
  if (refresh_token) {
    return d.token_request({{"grant_type", "refresh_token"},
                            {"refresh_token", *refresh_token},
                            {"scope", scope}},
                           *refresh_token);
  }
  if (oauth_internal::is_app_only(d.app)) {
    if (!d.secret && !d.certificate) {
      return Status(ErrorKind::kConfig, d.label() + ": an app-only app needs client_secret "
                                                    "or certificate");
    }
    return d.token_request({{"grant_type", "client_credentials"}, {"scope", scope}}, {});
  }
  std::string who = key.user.empty() ? std::string() : " for " + key.user;
  return Status(ErrorKind::kAuth, d.label() + ": nobody has signed in" + who +
                                      " yet (no stored grant for scope \"" + scope +
                                      "\"): run `mailbridge auth login " + d.app.name + "`");
}

Result<DeviceAuthorization> OAuthClient::start_device_login(const std::string& scope) {
  Impl& d = *impl_;
  if (d.endpoints.device_authorization.empty()) {
    return Status(ErrorKind::kConfig, d.label() + ": no device authorization endpoint is "
                                                  "known; set device_endpoint");
  }
  Result<HttpResponse> r = d.post(d.endpoints.device_authorization, {{"scope", scope}});
  if (!r.ok()) return d.scrub(r.status());
  if (r->status / 100 != 2) return d.scrub(d.error_status(*r));
  nlohmann::json j = nlohmann::json::parse(r->body, nullptr, /*allow_exceptions=*/false);
  DeviceAuthorization a;
  if (j.is_object()) {
    a.device_code = json_string(j, "device_code");
    a.user_code = json_string(j, "user_code");
    a.verification_uri = json_string(j, "verification_uri");
    if (a.verification_uri.empty()) a.verification_uri = json_string(j, "verification_url");
    a.verification_uri_complete = json_string(j, "verification_uri_complete");
    a.message = json_string(j, "message");
    a.expires_in = json_seconds(j, "expires_in").value_or(seconds(0));
    a.interval = json_seconds(j, "interval").value_or(seconds(5));
  }
  if (a.device_code.empty() || a.user_code.empty() || a.verification_uri.empty()) {
    return Status(ErrorKind::kProtocol, d.label() + ": the device authorization answer lacks "
                                                    "device_code, user_code or verification_uri");
  }
  if (a.interval <= seconds(0)) a.interval = seconds(5);
  a.scope = scope;
  return a;
}

Result<TokenResponse> OAuthClient::finish_device_login(const DeviceAuthorization& a) {
  Impl& d = *impl_;
  seconds interval = std::max(a.interval, seconds(1));
  seconds lifetime = a.expires_in > seconds(0) ? a.expires_in : kDefaultDeviceLifetime;
  auto deadline = d.options.clock() + lifetime;
  std::string again = " Run `mailbridge auth login " + d.app.name + "` again.";
  for (;;) {
    d.options.sleep(interval);
    if (d.options.clock() >= deadline) {
      return Status(ErrorKind::kAuth, d.label() + ": the device code expired before the "
                                                  "sign-in was approved (expired_token)." + again);
    }
    Result<HttpResponse> r = d.post(d.endpoints.token, {{"grant_type", std::string(kDeviceGrant)},
                                                        {"device_code", a.device_code}});
    if (!r.ok()) return d.scrub(r.status(), {a.device_code});
    if (r->status / 100 == 2) {
      auto t = d.parse_token(*r);
      if (t.ok() && t->scope.empty()) t->scope = a.scope;
      return t.ok() ? t : Result<TokenResponse>(d.scrub(t.status(), {a.device_code}));
    }
    auto err = parse_oauth_error(r->status, r->body);
    if (err && err->error == "authorization_pending") continue;
    if (err && err->error == "slow_down") {
      interval += kSlowDownStep;
      continue;
    }
    Status st = d.scrub(d.error_status(*r), {a.device_code});
    // Entra says authorization_declined where RFC 8628 says access_denied.
    if (err && (err->error == "access_denied" || err->error == "authorization_declined" ||
                err->error == "expired_token" || err->error == "bad_verification_code")) {
      return Status(ErrorKind::kAuth, st.message() + again);
    }
    return st;
  }
}

const OAuthEndpoints& OAuthClient::endpoints() const { return impl_->endpoints; }
const AppConfig& OAuthClient::app() const { return impl_->app; }

}  // namespace mb
