// File: auth/oauth_errors.cpp — OAuth error bodies (RFC 6749 §5.2, RFC 8628 §3.5, Entra's
// error_codes) turned into typed Status values with an administrator's cause and fix.
//
// The AADSTS causes and fixes follow Microsoft's "Microsoft Entra authentication and
// authorization error codes" (learn.microsoft.com/entra/identity-platform/
// reference-error-codes) and the error pages at login.microsoftonline.com/error?code=N.
#include <array>

#include <nlohmann/json.hpp>

#include "auth/internal/oauth_util.h"
#include "auth/oauth.h"

namespace mb {
namespace {

// The app-only fix of an error that only a user's sign-in (a delegated app) can meet.
constexpr std::string_view kUserSignInOnly =
    "this error belongs to a user's sign-in, which an app-only app does not make: check that "
    "client_id names the app registration meant for app-only access";

constexpr std::array<AadstsAdvice, 27> kAadsts{{
    {7000215, "the client secret is wrong",
     "copy the secret's Value (not its Secret ID) from the app registration's Certificates & "
     "secrets and update client_secret"},
    {7000222, "the client secret has expired",
     "create a new secret under Certificates & secrets and update client_secret"},
    {7000218, "the request carried no client authentication",
     "configure client_secret or certificate for this app, or under Authentication enable "
     "\"Allow public client flows\" for a delegated app"},
    {700016, "no application with this client id exists in the tenant (or the app is in "
             "another tenant)",
     "check client_id and tenant against the app registration's Overview page, and that an "
     "administrator of this tenant consented to the app"},
    {90002, "the tenant was not found (a wrong tenant id or domain, or the tenant is in "
            "another national cloud)",
     "check tenant, and set authority to the tenant's cloud (e.g. "
     "https://login.microsoftonline.us for US Government)"},
    {90014, "a required field is missing from the token request",
     "check client_id, scope and the grant settings of this app"},
    {65001, "the app has no consent for the requested permissions",
     "under API permissions add the permissions and click \"Grant admin consent\" (or let the "
     "user consent at `mailbridge auth login`)",
     "a tenant administrator must grant admin consent: under API permissions add the "
     "permissions and click \"Grant admin consent\", or open {consent_url} and accept"},
    {50173, "the user's sign-in grant was revoked (password change or sessions revoked)",
     "sign the user in again with `mailbridge auth login APP`", kUserSignInOnly},
    {700082, "the refresh token expired after being unused too long",
     "sign the user in again with `mailbridge auth login APP`", kUserSignInOnly},
    {70043, "the refresh token expired or was revoked by a Conditional Access sign-in "
            "frequency policy",
     "sign the user in again with `mailbridge auth login APP`, or exclude this service from "
     "the sign-in frequency policy",
     kUserSignInOnly},
    {53003, "Conditional Access blocked the sign-in",
     "check the tenant's sign-in logs for the policy (by its trace id) and exclude this app "
     "or workload identity, or allow this server's location"},
    {700027, "the client assertion's signature did not verify (a certificate the app does "
             "not know)",
     "upload this certificate (its public part) under Certificates & secrets, or configure "
     "the certificate that is uploaded there"},
    {50012, "the client assertion or secret was not accepted (a bad signature, audience or "
            "issuer)",
     "check that certificate holds the registered certificate with its private key, and "
     "that client_id and tenant are right"},
    {500133, "the client assertion is outside its validity period (the clock of this server "
             "is wrong)",
     "synchronise this server's clock (NTP) and try again"},
    {700024, "the client assertion is not within its valid time range",
     "synchronise this server's clock (NTP) and try again"},
    {50034, "the user account does not exist in this tenant",
     "check the mailbox's user name and the app's tenant"},
    {50126, "the user name or password is wrong",
     "check the user's credentials, or use a flow without a password"},
    {50076, "multi-factor authentication is required",
     "sign the user in interactively with `mailbridge auth login APP`", kUserSignInOnly},
    {50079, "the user must register for multi-factor authentication",
     "have the user complete MFA registration, then run `mailbridge auth login APP`",
     kUserSignInOnly},
    {50057, "the user account is disabled", "enable the account in Entra ID"},
    {500011, "the resource (API) of the requested scope is not found in the tenant",
     "check the scope's resource URL and that its service (e.g. Exchange Online) is "
     "licensed in the tenant; an administrator may need to consent to the app first"},
    {7000112, "the application is disabled", "re-enable the app's service principal under "
                                             "Enterprise applications"},
    {70011, "the requested scope is invalid",
     "use a resource's \"/.default\" scope for client credentials, or fix the configured "
     "scopes"},
    {700022, "the requested scope is invalid (several resources in one request)",
     "request one resource's scopes per token"},
    {700054, "the requested response type is not enabled",
     "enable the grant for this app under Authentication"},
    {70000, "the grant is invalid or malformed (an expired device code or a used "
            "authorization code)",
     "start the sign-in again with `mailbridge auth login APP`", kUserSignInOnly},
    {7000114, "the application is not allowed to make application-on-behalf-of calls",
     "use a delegated app for this mailbox"},
}};

std::string first_line(std::string_view text, size_t max = 240) {
  text = text.substr(0, text.find_first_of("\r\n"));
  if (text.size() > max) return std::string(text.substr(0, max)) + "…";
  return std::string(text);
}

std::string headline(std::string_view error) {
  if (error == "invalid_client") return "the token endpoint refused the client";
  if (error == "unauthorized_client") return "the client is not allowed to use this grant";
  if (error == "invalid_grant") return "the sign-in grant is no longer valid";
  if (error == "access_denied" || error == "authorization_declined") {
    return "the sign-in was declined";
  }
  if (error == "bad_verification_code") return "the device code is not known to the server";
  if (error == "expired_token") return "the device code expired before the sign-in finished";
  if (error == "invalid_scope") return "the token endpoint refused the requested scope";
  if (error == "invalid_request") return "the token endpoint rejected the request";
  if (error == "temporarily_unavailable") return "the token endpoint is temporarily unavailable";
  if (error == "slow_down" || error == "authorization_pending") return "the sign-in is not finished";
  return "the token endpoint returned an error";
}

ErrorKind kind_of(const OAuthError& e) {
  if (e.http_status == 429) return ErrorKind::kThrottled;
  if (e.error == "temporarily_unavailable" || e.http_status >= 500) return ErrorKind::kNetwork;
  return ErrorKind::kAuth;
}

}  // namespace

std::optional<OAuthError> parse_oauth_error(int http_status, std::string_view body) {
  nlohmann::json j = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return std::nullopt;
  auto err = j.find("error");
  if (err == j.end() || !err->is_string()) return std::nullopt;
  OAuthError out;
  out.http_status = http_status;
  out.error = err->get<std::string>();
  auto str = [&](const char* name) {
    auto it = j.find(name);
    return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  out.description = str("error_description");
  out.trace_id = str("trace_id");
  out.correlation_id = str("correlation_id");
  if (auto codes = j.find("error_codes"); codes != j.end() && codes->is_array()) {
    for (const auto& c : *codes) {
      if (c.is_number_integer()) out.codes.push_back(c.get<long>());
    }
  }
  return out;
}

std::span<const AadstsAdvice> aadsts_table() { return kAadsts; }

const AadstsAdvice* find_aadsts(long code) {
  for (const AadstsAdvice& a : kAadsts) {
    if (a.code == code) return &a;
  }
  return nullptr;
}

namespace {

std::string replace_all(std::string text, std::string_view from, std::string_view to) {
  for (size_t at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size())) {
    text.replace(at, from.size(), to);
  }
  return text;
}

// The fix of `advice` for `app` (both flows when app is null).
std::string fix_for(const AadstsAdvice& advice, const AppConfig* app) {
  if (app == nullptr) return std::string(advice.fix);
  if (oauth_internal::is_app_only(*app) && !advice.app_only_fix.empty()) {
    return replace_all(std::string(advice.app_only_fix), "{consent_url}", admin_consent_url(*app));
  }
  return replace_all(std::string(advice.fix), "auth login APP", "auth login " + app->name);
}

Status error_status_for(const OAuthError& error, std::string_view app_name,
                        const AppConfig* app) {
  std::string what = "app \"" + std::string(app_name) + "\": " + headline(error.error) + " (" +
                     (error.error.empty() ? "HTTP " + std::to_string(error.http_status)
                                          : error.error);
  const AadstsAdvice* advice = nullptr;
  for (long code : error.codes) {
    if (advice == nullptr) advice = find_aadsts(code);
  }
  if (!error.codes.empty()) {
    what += ", AADSTS" + std::to_string(advice != nullptr ? advice->code : error.codes.front());
  }
  what += ")";
  if (advice != nullptr) {
    what += ": " + std::string(advice->cause) + " — " + fix_for(*advice, app) + ".";
  } else if (!error.description.empty()) {
    what += ": " + first_line(error.description);
  }
  if (!error.trace_id.empty()) what += " Trace ID " + error.trace_id + ".";
  if (!error.correlation_id.empty()) what += " Correlation ID " + error.correlation_id + ".";
  if (error.error == "invalid_grant") return invalid_grant_status(what);
  return Status(kind_of(error), what);
}

}  // namespace

Status oauth_error_status(const OAuthError& error, std::string_view app_name) {
  return error_status_for(error, app_name, nullptr);
}

Status oauth_error_status(const OAuthError& error, const AppConfig& app) {
  return error_status_for(error, app.name, &app);
}

}  // namespace mb
