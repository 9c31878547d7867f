// File: connectors/ews/ews_client.cpp — one mailbox's EWS calls (ews_client.h).
#include "connectors/ews/ews_client.h"

#include <random>
#include <thread>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "auth/base64.h"
#include "auth/token_cache.h"
#include "core/ascii.h"
#include "core/backoff.h"
#include "core/cancel.h"

namespace mb::ews {
namespace {

const char* method_name(SignInMethod m) {
  switch (m) {
    case SignInMethod::kBasic: return "Basic";
    case SignInMethod::kNtlm: return "NTLM";
    case SignInMethod::kBearer: return "OAuth";
  }
  return "?";
}

const char* access_name(Access a) {
  switch (a) {
    case Access::kOwn: return "own mailbox";
    case Access::kImpersonation: return "impersonation";
    case Access::kDelegate: return "delegate";
  }
  return "?";
}

// The values of every header `name` (WWW-Authenticate comes once per method).
std::string all_headers(const HttpResponse& r, std::string_view name) {
  std::string out;
  for (const auto& [n, v] : r.headers) {
    if (!ascii_iequals(n, name)) continue;
    // Only the scheme of a challenge: an NTLM challenge's payload says nothing useful.
    std::string scheme = v.substr(0, v.find(' '));
    if (out.find(scheme) != std::string::npos) continue;
    out += (out.empty() ? "" : ", ") + scheme;
  }
  return out;
}

bool is_exchange_online(std::string_view endpoint) {
  auto url = parse_url(endpoint);
  if (!url.ok()) return false;
  const std::string& h = url->host;
  for (std::string_view cloud : {"outlook.office365.com", "outlook.office365.us",
                                 "outlook-dod.office365.us", "partner.outlook.cn"}) {
    if (h == cloud) return true;
  }
  return false;
}

bool busy(const Response& r) {
  if (r.fault) return r.fault->code == "ErrorServerBusy";
  for (const auto& m : r.messages) {
    if (m.code == "ErrorServerBusy") return true;
  }
  return false;
}

std::optional<std::chrono::milliseconds> back_off_of(const Response& r) {
  if (r.fault) return r.fault->back_off;
  for (const auto& m : r.messages) {
    if (m.code == "ErrorServerBusy") return m.back_off;
  }
  return std::nullopt;
}

}  // namespace

Client::Client(ClientOptions options, SignIn sign_in, HttpFactory http)
    : options_(std::move(options)), sign_in_(std::move(sign_in)) {
  HttpOptions h;
  h.tls = options_.tls;
  h.timeouts = options_.timeouts;
  h.allow_plain_http = options_.allow_plain_http;
  std::optional<NtlmCredentials> ntlm;
  if (options_.method == SignInMethod::kNtlm) {
    ntlm = NtlmCredentials{.user = options_.user, .password = sign_in_.password};
  }
  http_ = http ? http(h, std::move(ntlm)) : make_curl_http_client(h, std::move(ntlm));
  if (!options_.random) {
    auto engine = std::make_shared<std::mt19937_64>(std::random_device{}());
    options_.random = [engine] { return (*engine)(); };
  }
}

std::string Client::who() const {
  std::string as = options_.method == SignInMethod::kBearer ? "an OAuth app" : options_.user;
  return fmt::format("EWS {} (as {}, {}, {})", options_.mailbox, as, method_name(options_.method),
                     access_name(options_.access));
}

std::string Client::folder(std::string_view distinguished_id) const {
  return distinguished_folder(distinguished_id,
                              options_.access == Access::kDelegate ? options_.mailbox : "");
}

std::chrono::milliseconds Client::backoff(int attempt) {
  using std::chrono::seconds;
  const Backoff<std::chrono::milliseconds> b{seconds(1), seconds(60), Jitter::kEqual};
  uint64_t r = 0;
  {
    std::lock_guard lock(random_mu_);
    r = options_.random();
  }
  return b.delay(attempt, unit_interval(r));
}

Status Client::wait(std::chrono::milliseconds d) const {
  if (options_.sleep) return options_.sleep(d);
  if (Cancel* stop = CancelScope::current()) {
    if (stop->wait_until(std::chrono::steady_clock::now() + d)) {
      return Cancel::cancelled("waiting out ErrorServerBusy");
    }
    return Status::Ok();
  }
  std::this_thread::sleep_for(d);
  return Status::Ok();
}

Result<HttpResponse> Client::send_once(HttpRequest& req, const std::string* token,
                                       MimeStream* mime) {
  req.method = "POST";
  req.url = options_.endpoint;
  req.headers = {{"Content-Type", "text/xml; charset=utf-8"},
                 {"Accept", "text/xml"},
                 {"X-AnchorMailbox", options_.mailbox}};
  if (token != nullptr) {
    req.headers.emplace_back("Authorization", "Bearer " + *token);
  } else if (options_.method == SignInMethod::kBasic) {
    req.headers.emplace_back("Authorization",
                             "Basic " + base64_encode(options_.user + ":" + sign_in_.password));
  }
  if (mime != nullptr) {
    mime->reset();
    req.body_sink = [mime](std::string_view piece) { return mime->feed(piece); };
  }
  auto r = http_->send(req);
  if (r.ok() && mime != nullptr) {
    MB_RETURN_IF_ERROR(mime->finish());
    r->body = mime->envelope();
  }
  return r;
}

Status Client::unauthorized(const HttpResponse& r, const std::string* token) const {
  std::string offered = all_headers(r, "WWW-Authenticate");
  auto diag = r.header("x-ms-diagnostics");
  std::string detail = fmt::format("HTTP 401{}{}", offered.empty() ? "" : "; the server offers " + offered,
                                   diag ? "; x-ms-diagnostics: " + *diag : "");
  if (token != nullptr) return token_rejected_status(who() + ": access token refused (" + detail + ")");
  std::string hint;
  if (options_.method == SignInMethod::kBasic && !offered.empty() &&
      offered.find("Basic") == std::string::npos) {
    hint = "; Basic is not enabled on the EWS virtual directory: use auth = \"ntlm\", or enable "
           "it (Set-WebServicesVirtualDirectory -BasicAuthentication $true)";
  } else if (options_.method == SignInMethod::kNtlm && !offered.empty() &&
             offered.find("NTLM") == std::string::npos) {
    hint = "; Windows authentication is not enabled on the EWS virtual directory "
           "(Set-WebServicesVirtualDirectory -WindowsAuthentication $true)";
  }
  return Status(ErrorKind::kAuth,
                fmt::format("{}: Exchange refused the user name or password ({}){}", who(), detail, hint),
                ErrorScope::kMailbox);
}

Status Client::forbidden(const HttpResponse& r) const {
  auto diag = r.header("x-ms-diagnostics");
  std::string why = diag ? " (x-ms-diagnostics: " + *diag + ")" : "";
  if (is_exchange_online(options_.endpoint)) {
    return Status(ErrorKind::kAuth,
                  who() + ": Exchange Online refused EWS (HTTP 403)" + why +
                      ": since 1 October 2026 the tenant must allow it (Set-OrganizationConfig "
                      "-EWSEnabled $true) and list this app in EWSAllowedAppIDs; EWS in Exchange "
                      "Online ends on 1 April 2027 — use a type = \"graph\" mailbox instead",
                  ErrorScope::kMailbox);
  }
  return Status(ErrorKind::kAuth, who() + ": Exchange refused EWS access (HTTP 403)" + why +
                                      ": is EWS allowed for this account (Set-CASMailbox -EwsEnabled)?",
                ErrorScope::kMailbox);
}

Result<Response> Client::attempts(std::string_view operation, HttpRequest& req,
                                  const std::string* token, MimeStream* mime) {
  std::chrono::milliseconds waited{0};
  const std::string what = who() + ": " + std::string(operation);
  for (int attempt = 0;; ++attempt) {
    auto r = send_once(req, token, mime);
    if (!r.ok()) return r.status().prefixed(what);
    if (r->status == 401) return unauthorized(*r, token);
    if (r->status == 403) return forbidden(*r);
    std::optional<Response> answer;
    std::optional<std::chrono::milliseconds> hint;
    if (r->status == 503) {
      // IIS queueing (EWS throttling, Table 4): no envelope, nothing was done.
    } else if (r->status == 200 || r->status == 500) {
      auto parsed = parse_response(r->status, r->body);
      if (!parsed.ok()) return parsed.status().prefixed(what);
      if (!busy(*parsed)) {
        if (parsed->fault) return fault_status(*parsed->fault, what);
        return std::move(*parsed);
      }
      hint = back_off_of(*parsed);
      answer = std::move(*parsed);
    } else {
      return Status(ErrorKind::kProtocol, fmt::format("{}: unexpected HTTP {}", what, r->status),
                    ErrorScope::kConnection);
    }
    const std::chrono::milliseconds next = hint ? *hint : backoff(attempt);
    const RetryBudget budget{.max_attempts = options_.max_attempts,
                             .max_total_wait = options_.max_retry_wait};
    if (!budget.allows(attempt + 1, waited, next)) {
      Status busy_status = answer && answer->fault
                               ? fault_status(*answer->fault, what)
                               : code_status("ErrorServerBusy", "HTTP 503", next, what);
      if (answer && !answer->fault) {
        for (const auto& m : answer->messages) {
          if (m.code == "ErrorServerBusy") busy_status = message_status(m, what);
        }
      }
      spdlog::warn("{}: still busy after {} attempts", what, attempt + 1);
      return busy_status;
    }
    spdlog::info("{}: Exchange is busy; retrying in {} ms", what, next.count());
    MB_RETURN_IF_ERROR(wait(next));
    waited += next;
  }
}

EnvelopeOptions Client::envelope_options() const {
  EnvelopeOptions env;
  env.version = options_.version;
  if (options_.access == Access::kImpersonation) env.impersonate = options_.mailbox;
  return env;
}

Result<Response> Client::call(std::string_view operation, const std::string& body,
                              bool repeatable, MimeStream* mime) {
  HttpRequest req;
  req.body = envelope(envelope_options(), body);
  req.repeatable = repeatable;
  return signed_in(operation, req, mime);
}

Result<Response> Client::call_envelope(std::string_view operation, std::string xml,
                                       bool repeatable, std::function<void()> on_written) {
  HttpRequest req;
  req.body = std::move(xml);
  req.repeatable = repeatable;
  req.on_written = std::move(on_written);
  return signed_in(operation, req, nullptr);
}

Result<Response> Client::signed_in(std::string_view operation, HttpRequest& req, MimeStream* mime) {
  if (options_.method != SignInMethod::kBearer) return attempts(operation, req, nullptr, mime);
  if (!sign_in_.oauth()) {
    return Status(ErrorKind::kConfig, who() + ": OAuth sign-in needs auth = \"oauth2\" and an app");
  }
  std::optional<Response> out;
  Status s = sign_in_.with_token([&](const std::string& token) -> Status {
    auto r = attempts(operation, req, &token, mime);
    if (!r.ok()) return r.status();
    out = std::move(*r);
    return Status::Ok();
  });
  if (!s.ok()) return s;
  if (!out) return Status(ErrorKind::kInternal, who() + ": " + std::string(operation) + ": no answer");
  return std::move(*out);
}

}  // namespace mb::ews
