// File: connectors/ews/ews_autodiscover.h — finding a mailbox's EWS URL from its address when
// `endpoint` is omitted (Exchange Server on premises), as Microsoft's "Autodiscover for
// Exchange" describes it for clients that are not joined to the domain:
//
//   1. SOAP Autodiscover, GetUserSettings (ExternalEwsUrl, InternalEwsUrl) at
//      https://autodiscover.<domain>/autodiscover/autodiscover.svc, then
//      https://<domain>/autodiscover/autodiscover.svc;
//   2. POX Autodiscover (the Outlook provider schema, 2006a: Protocol EXPR / EXCH, EwsUrl —
//      ASUrl when a server sends no EwsUrl) at the same two hosts' /autodiscover/autodiscover.xml.
//
// Microsoft's "Generate a list of Autodiscover endpoints" lists the domain before the
// autodiscover. host; mailbridge tries the autodiscover. host first (issue 16), which is the one
// an Exchange organisation publishes, so the domain's web site is asked only when it is absent.
// Redirects are followed within `max_hops`: an HTTP 301/302/307/308 Location, SOAP
// RedirectUrl / POX redirectUrl (another autodiscover URL), SOAP RedirectAddress / POX
// redirectAddr (another address: its domain's candidates are tried from the start). Only
// https:// URLs, with the TLS policy of core/net (certificate and host name verified), and
// the same credentials as EWS (Basic, NTLM, or a bearer token).
//
// Out of scope: the service connection point (SCP) lookup in Active Directory (LDAP), the
// unauthenticated plain-HTTP GET redirect and the DNS SRV record of Phase 3 — mailbridge does
// not send credentials where plain HTTP sent it.
//
//   ews::AutodiscoverOptions o{.email = "helpdesk@corp.example", .method = SignInMethod::kNtlm,
//                              .user = "CORP\\svc-ews"};
//   ews::Discovery d = ews::autodiscover(o, SignIn::with_password(secret));
//   for (const auto& step : d.steps) print(step.url, step.ok, step.outcome);
//   if (!d.status.ok()) return d.status;   // lists every step
//   use(d.ews_url);
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "connectors/connector.h"
#include "connectors/ews/ews_client.h"

namespace mb::ews {

struct AutodiscoverOptions {
  std::string email{};  // the mailbox's SMTP address
  SignInMethod method = SignInMethod::kBasic;
  std::string user{};   // Basic and NTLM: the account
  TlsOptions tls{};
  Timeouts timeouts{};
  int max_hops = 10;            // redirects followed in all
  bool prefer_internal = false; // InternalEwsUrl (EXCH) before ExternalEwsUrl (EXPR)
  // Tests only: curl's CONNECT_TO ("autodiscover.corp.example:443:127.0.0.1:4431"), so that
  // the documented host names reach a stand-in while TLS still checks those names.
  std::vector<std::string> connect_to{};
};

// The autodiscover options of a client's options (its mailbox, credentials and TLS).
AutodiscoverOptions autodiscover_options(const ClientOptions& client);

// One URL tried: for test-connection, which prints them in order.
struct AutodiscoverStep {
  std::string url;
  std::string kind;     // "SOAP" or "POX"
  bool ok = false;      // true only for the step that gave the EWS URL
  std::string outcome;  // "ExternalEwsUrl https://…", "HTTP 404", "redirected to …", …
};

struct Discovery {
  Status status;        // OK, or the failure naming every step
  std::string ews_url;  // when OK
  std::vector<AutodiscoverStep> steps;
};

// Runs the whole search. Errors in `status`: kAuth when a server refused the credentials
// (and none answered), kNetwork when no candidate could be reached, kConfig otherwise (no
// EWS URL found, hop limit, a redirect to a non-https URL); kCancelled as it comes.
Discovery autodiscover(const AutodiscoverOptions& options, const SignIn& sign_in,
                       const HttpFactory& http = {});

// ---- the pieces, pure (unit tests) ----

enum class AutodiscoverKind { kSoap, kPox };

struct Candidate {
  AutodiscoverKind kind;
  std::string url;
};

// The four documented candidates for `email`'s domain, in the order above; empty when the
// address has no domain.
std::vector<Candidate> autodiscover_candidates(std::string_view email);

// GetUserSettings for ExternalEwsUrl and InternalEwsUrl (wsa:To = `url`).
std::string soap_autodiscover_request(std::string_view url, std::string_view email);
// The POX request (AcceptableResponseSchema 2006a).
std::string pox_autodiscover_request(std::string_view email);

// What an autodiscover answer says.
struct AutodiscoverAnswer {
  enum class Kind { kUrl, kRedirectAddress, kRedirectUrl, kError } kind = Kind::kError;
  std::string value;  // the EWS URL, the address, the URL, or the error's words
  std::string setting;  // kUrl: which ("ExternalEwsUrl", "EXPR EwsUrl", …)
};

// kProtocol when `body` is not the expected XML.
Result<AutodiscoverAnswer> parse_soap_autodiscover(std::string_view body, bool prefer_internal);
Result<AutodiscoverAnswer> parse_pox_autodiscover(std::string_view body, bool prefer_internal);

}  // namespace mb::ews
