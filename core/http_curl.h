// File: core/http_curl.h — the second engine behind core/http's HttpClient: libcurl, for
// what cpprestsdk cannot do on Linux, NTLM (the sign-in an Exchange Server EWS virtual
// directory most often allows). The EWS connector uses it for every sign-in method.
//
// Same contract as make_http_client (core/http.h): the TLS policy of core/net (TLS 1.2
// minimum, 1.3 selectable; the certificate checked by core/internal/tls's verifier against
// the system store or tls.ca_file; SHA-256 public-key pins; verify = false only when written
// and warned about at every connection), no redirects followed, no proxy from the
// environment, HTTP statuses returned as responses, errors kNetwork / kTls / kConfig, every
// exchange under the deadline Timeouts::connect + Timeouts::response + the bytes received at
// 64 KiB/s, a kept body bounded to 64 MiB, the thread's Cancel (core/cancel.h) ending a
// request at once with kCancelled, and a request that may not be repeated sent on a
// connection of its own and never twice. libcurl stays inside http_curl.cpp.
//
//   mb::NtlmCredentials ntlm{.user = "CORP\\helpdesk", .password = secret};
//   auto http = mb::make_curl_http_client(options, ntlm);
//   auto r = http->send({.method = "POST", .url = ews_url, .headers = {...}, .body = soap});
//
// NTLM: the three messages (negotiate, challenge, authenticate; NTLMv2 when the server's
// challenge carries target information, as Windows servers' do) are exchanged inside one
// send(); a POST's body goes only with the authenticate message (the first request carries
// Content-Length: 0). The password is handed to libcurl and to nothing else: never logged,
// never in an error.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "core/http.h"

namespace mb {

struct NtlmCredentials {
  // "DOMAIN\\user" or "user@domain" (UPN); libcurl splits the first form.
  std::string user{};
  std::string password{};
};

// A libcurl-backed client; with `ntlm`, every request signs in with NTLM (the caller adds no
// Authorization header then). Does not connect.
std::unique_ptr<HttpClient> make_curl_http_client(
    const HttpOptions& options, std::optional<NtlmCredentials> ntlm = std::nullopt);

// True when the libcurl this process loaded can do NTLM (Debian's libcurl4 can).
bool curl_supports_ntlm();

}  // namespace mb
