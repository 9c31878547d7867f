// File: connectors/ews/ews_client.h — one mailbox's EWS calls over core/http's libcurl engine
// (core/http_curl.h): the sign-in (Basic, NTLM, or an OAuth bearer token through
// SignIn::with_token, a 401 refreshing it once), the mailbox chosen by impersonation (the
// ExchangeImpersonation header) or as a delegate (the Mailbox element of its folder ids),
// X-AnchorMailbox on every call, and Exchange's throttling: ErrorServerBusy (a SOAP fault
// with HTTP 500, or a response message) waits BackOffMilliseconds — exponential backoff
// with jitter when absent — and is sent again, as is an HTTP 503 (IIS queueing), until the
// retry budget is spent; then kThrottled with retry_after. The server refused such a call
// before acting on it, so every call may be repeated after it.
//
//   ews::ClientOptions o{.endpoint = url, .mailbox = "helpdesk@corp.example",
//                        .method = ews::SignInMethod::kNtlm, .user = "CORP\\svc-ews",
//                        .access = ews::Access::kImpersonation};
//   ews::Client client(o, SignIn::with_password(secret));
//   auto r = client.call("GetFolder", "<m:GetFolder>…" + client.folder("inbox") + "…", true);
//
// Errors: HTTP 401 → kAuth naming the account, the methods the server offers
// (WWW-Authenticate) and x-ms-diagnostics; 403 → kAuth (for Exchange Online naming the
// EWSEnabled / EWSAllowedAppIDs allow list); a SOAP fault → its code's Status
// (ews_soap.h); malformed XML or an unexpected HTTP status → kProtocol; the transport's
// kNetwork / kTls / kCancelled as they come. Secrets never appear in errors or logs.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "connectors/connector.h"
#include "connectors/ews/ews_soap.h"
#include "connectors/ews/mime_stream.h"
#include "core/http.h"
#include "core/http_curl.h"
#include "core/tls_options.h"

namespace mb::ews {

enum class SignInMethod { kBasic, kNtlm, kBearer };
// Whose mailbox the account opens: its own, another by impersonation, or another as a
// delegate with FullAccess.
enum class Access { kOwn, kImpersonation, kDelegate };

struct ClientOptions {
  std::string endpoint{};  // https://mail.corp.example/EWS/Exchange.asmx
  std::string mailbox{};   // the SMTP address worked on (X-AnchorMailbox, impersonation)
  SignInMethod method = SignInMethod::kBasic;
  std::string user{};      // Basic and NTLM: the account, "CORP\\name" or a UPN
  Access access = Access::kOwn;
  std::string version = std::string(kServerVersion);
  TlsOptions tls{};
  Timeouts timeouts{};
  bool allow_plain_http = false;  // tests only
  // ErrorServerBusy / 503: at most this many attempts in all and this much waiting.
  int max_attempts = 5;
  std::chrono::seconds max_retry_wait{120};
  // Waits between attempts; empty: the thread's Cancel (core/cancel.h) or a plain sleep.
  // A non-OK status (kCancelled) ends the call.
  std::function<Status(std::chrono::milliseconds)> sleep{};
  std::function<uint64_t()> random{};  // jitter; empty: random_device-seeded
};

using HttpFactory = std::function<std::unique_ptr<HttpClient>(const HttpOptions&,
                                                              std::optional<NtlmCredentials>)>;

class Client {
 public:
  // Does not connect. `http` empty: make_curl_http_client.
  Client(ClientOptions options, SignIn sign_in, HttpFactory http = {});

  // Sends the operation `operation` (its element, already XML, in `body`). The answer's
  // response messages are the caller's to judge (message_status); a fault is an error here.
  // `repeatable`: whether the call may be sent again after its answer was lost (a read).
  // With `mime` (GetItem with IncludeMimeContent), the answer streams through it: the
  // MimeContent is decoded into it as it arrives (reset before every attempt) and the rest
  // is what the Response is read from.
  Result<Response> call(std::string_view operation, const std::string& body, bool repeatable,
                        MimeStream* mime = nullptr);
  // The same for a request the caller built whole — envelope(envelope_options(), …) — moved
  // in and sent by every attempt without another copy (CreateItem with a message's MIME).
  // `on_written`: HttpRequest::on_written of each attempt (the request is on the wire).
  Result<Response> call_envelope(std::string_view operation, std::string xml, bool repeatable,
                                 std::function<void()> on_written = {});
  // The envelope's header for the mailbox worked on (impersonation, version).
  EnvelopeOptions envelope_options() const;

  // A distinguished folder of the mailbox worked on (with the delegate's Mailbox element).
  std::string folder(std::string_view distinguished_id) const;
  const ClientOptions& options() const { return options_; }
  // "EWS helpdesk@corp.example (as CORP\svc-ews, impersonation)" for messages.
  std::string who() const;

 private:
  Result<Response> attempts(std::string_view operation, HttpRequest& req,
                            const std::string* token, MimeStream* mime);
  Result<HttpResponse> send_once(HttpRequest& req, const std::string* token, MimeStream* mime);
  Result<Response> signed_in(std::string_view operation, HttpRequest& req, MimeStream* mime);
  Status unauthorized(const HttpResponse& r, const std::string* token) const;
  Status forbidden(const HttpResponse& r) const;
  std::chrono::milliseconds backoff(int attempt);
  Status wait(std::chrono::milliseconds d) const;

  ClientOptions options_;
  SignIn sign_in_;
  std::unique_ptr<HttpClient> http_;
  std::mutex random_mu_;
};

}  // namespace mb::ews
