// File: auth/oauth.h — OAuth 2.0 grants against a token endpoint, with the Entra ID profile:
// client credentials with a secret or a certificate (RFC 7523 client assertion), refresh
// tokens (always sending scope), and the device-code flow (RFC 8628).
//
// OAuthClient is the TokenSource (auth/token_cache.h) of one [[app]]: TokenCache decides
// when to ask, OAuthClient knows how. Errors are typed from the OAuth error body (RFC 6749
// §5.2 plus Entra's error_codes): invalid_client, unauthorized_client and invalid_grant are
// kAuth with an administrator-readable cause and fix per AADSTS code; 5xx,
// temporarily_unavailable and time-outs are kNetwork and retried here with jittered backoff;
// 429 is kThrottled with the server's Retry-After. No message holds a secret, an assertion
// or a token.
//
//   auto http = mb::make_http_client({.tls = app.tls, .timeouts = app.timeouts});
//   auto client = mb::OAuthClient::create(app, *http);
//   if (!client.ok()) return client.status();
//   mb::TokenCache cache(**client, store);
//   auto token = cache.token({app.name, mb::default_scope(app, mb::Resource::kExchange), ""});
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "auth/token_cache.h"
#include "core/config.h"
#include "core/http.h"
#include "core/status.h"

namespace mb {

// ---- Entra ID profile -------------------------------------------------------------------

// One Entra ID cloud: its sign-in host and the resources mailbridge uses there.
struct CloudProfile {
  std::string_view name;            // "global", "usgov", "usgov-dod", "china"
  std::string_view authority_host;  // "login.microsoftonline.com"
  std::string_view graph;           // "https://graph.microsoft.com"
  std::string_view exchange;        // "https://outlook.office365.com"
};

// The cloud whose authority host `authority` names ("https://login.microsoftonline.us",
// with or without a path), or nullptr for any other server.
const CloudProfile* cloud_for_authority(std::string_view authority);

struct OAuthEndpoints {
  std::string token;                 // POST grants here
  std::string device_authorization;  // RFC 8628; empty when unknown
};

// resolve_endpoints(): app.token_endpoint (and app.device_endpoint) when set; otherwise
// "<authority>/<tenant>/oauth2/v2.0/token" and ".../devicecode". kConfig when neither a
// token_endpoint nor an https authority with a tenant is configured.
Result<OAuthEndpoints> resolve_endpoints(const AppConfig& app);

// What a connector's token is for.
enum class Resource { kExchange, kGraph };

// default_scope(): app.scopes when configured (joined by spaces); else for app-only
// "<resource of the app's cloud>/.default"; for delegated the resource's delegated scopes
// for `protocol` ("imap", "pop3", "smtp", "ews", "graph") plus offline_access — e.g.
// "https://outlook.office365.com/IMAP.AccessAsUser.All offline_access".
std::string default_scope(const AppConfig& app, Resource resource,
                          std::string_view protocol = "");

// The page where a tenant administrator grants admin consent to the app:
// "<authority>/<tenant>/adminconsent?client_id=<client_id>" on the app's own authority (its
// national cloud), "organizations" standing for a tenant not configured.
std::string admin_consent_url(const AppConfig& app);

// ---- Errors -------------------------------------------------------------------------------

// The error body of a token endpoint (RFC 6749 §5.2, RFC 8628 §3.5, Entra's extensions).
struct OAuthError {
  int http_status = 0;
  std::string error;              // "invalid_client"
  std::string description;        // error_description, as sent (Entra's holds trace ids)
  std::vector<long> codes;        // Entra's error_codes (AADSTS numbers)
  std::string trace_id;
  std::string correlation_id;
};

// parse_oauth_error(): nullopt when `body` is not a JSON object with a string "error".
std::optional<OAuthError> parse_oauth_error(int http_status, std::string_view body);

// What an AADSTS code means and what the administrator does about it.
struct AadstsAdvice {
  long code;
  std::string_view cause;  // "the client secret is wrong"
  std::string_view fix;    // "copy the secret's Value (not its ID) from Certificates & secrets"
  // For an app-only app when `fix` is a delegated app's (`mailbridge auth login` signs a user
  // in); "{consent_url}" stands for admin_consent_url(). Empty: `fix` serves both.
  std::string_view app_only_fix = {};
};
std::span<const AadstsAdvice> aadsts_table();
const AadstsAdvice* find_aadsts(long code);

// oauth_error_status() turns an error response into a Status for app `app_name`:
//   invalid_grant                         → invalid_grant_status() (ends the grant)
//   invalid_client, unauthorized_client,
//   access_denied, invalid_scope, 400/401 → kAuth
//   429                                   → kThrottled
//   temporarily_unavailable, 5xx          → kNetwork
// The message names the app, the error, the AADSTS code with its cause and fix when known,
// and Entra's trace id; never the request's secret or assertion.
Status oauth_error_status(const OAuthError& error, std::string_view app_name);
// The same with the app's advice for its flow: an app-only app is never told to run
// `mailbridge auth login` (a delegated app's sign-in) but, e.g. for AADSTS65001, to grant
// admin consent at admin_consent_url(app).
Status oauth_error_status(const OAuthError& error, const AppConfig& app);

// ---- Client -------------------------------------------------------------------------------

struct OAuthClientOptions {
  int max_attempts = 4;                            // for kNetwork failures (5xx, time-outs)
  std::chrono::milliseconds backoff_base{500};     // full jitter: U(0, base·2^attempt)
  std::chrono::milliseconds backoff_cap{8000};
  // Injected for tests; defaults are std::this_thread::sleep_for and system_clock::now.
  std::function<void(std::chrono::milliseconds)> sleep;
  WallClock clock;
};

// An RFC 8628 device authorization: show user_code and verification_uri to the person.
struct DeviceAuthorization {
  std::string device_code;  // a credential: never printed
  std::string user_code;
  std::string verification_uri;
  std::string verification_uri_complete;  // may be empty
  std::string message;                    // Entra's ready-made instruction, may be empty
  std::chrono::seconds expires_in{0};
  std::chrono::seconds interval{5};
  std::string scope;                      // what was asked for
};

class OAuthClient final : public TokenSource {
 public:
  // create() resolves the endpoints and the app's secret or certificate (PEM with the
  // certificate and its private key; kConfig naming the reference when unreadable).
  static Result<std::unique_ptr<OAuthClient>> create(const AppConfig& app, HttpClient& http,
                                                     OAuthClientOptions options = {});
  ~OAuthClient() override;

  // acquire(): with a refresh token, the refresh_token grant (scope = key.scope); without
  // one, client credentials for an app-only app, and for a delegated app kAuth saying
  // "run `mailbridge auth login <app>`".
  Result<TokenResponse> acquire(const TokenKey& key,
                                const std::optional<std::string>& refresh_token) override;

  // The device-code flow: start, then poll until approved (RFC 8628 §3.4–3.5:
  // authorization_pending keeps polling at `interval`, slow_down adds 5 s, access_denied and
  // expired_token end it as kAuth).
  Result<DeviceAuthorization> start_device_login(const std::string& scope);
  Result<TokenResponse> finish_device_login(const DeviceAuthorization& authorization);

  const OAuthEndpoints& endpoints() const;
  const AppConfig& app() const;

  class Impl;

 private:
  explicit OAuthClient(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// A certificate credential for RFC 7523 client assertions.
struct ClientCertificate {
  std::string pem;  // the certificate and its private key (RSA)
};

// make_client_assertion() signs the JWT Entra documents for certificate credentials: header
// {alg: PS256, typ: JWT, x5t#S256: base64url(SHA-256 of the DER certificate)}, claims
// {aud: token endpoint, iss = sub = client id, jti: fresh random, nbf/iat: now, exp: now +
// 5 minutes}. kConfig when the PEM holds no certificate or no matching RSA key.
Result<std::string> make_client_assertion(const ClientCertificate& certificate,
                                          std::string_view client_id,
                                          std::string_view token_endpoint,
                                          std::chrono::system_clock::time_point now);

// Decoded claims of a JWT access token, for `mailbridge doctor` (no signature check: the
// resource server does that). nullopt for an opaque token.
struct TokenClaims {
  std::string aud, tid, appid, upn, iss;
  std::vector<std::string> roles;  // app-only permissions
  std::vector<std::string> scp;    // delegated scopes
  std::optional<std::chrono::system_clock::time_point> exp;
};
std::optional<TokenClaims> decode_token_claims(std::string_view access_token);

}  // namespace mb
