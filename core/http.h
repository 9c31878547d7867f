// File: core/http.h — an HTTPS client with mailbridge's TLS policy, for the OAuth token
// endpoints now and Graph and EWS later.
//
// The engine is cpprestsdk, kept out of this header (and so out of every file that includes
// it) because its headers are large and its U() macro collides with fmt. The TLS policy is
// core/net's (SPEC §3): TLS 1.2 minimum (1.3 selectable), peer and hostname verification on
// against the system store or TlsOptions::ca_file, optional SHA-256 public-key pins,
// verify = false only when configured and then warned about at every connection.
//
// An HTTP status is not an error at this layer: a 400 from a token endpoint or a 429 from
// Graph comes back as an HttpResponse for the caller to read. Errors are kNetwork (DNS,
// refused, reset, time-out, a body cut short), kTls (handshake, certificate, hostname, pin)
// and kConfig (a URL that is not https://, unless HttpOptions::allow_plain_http).
//
//   auto http = mb::make_http_client({.tls = app.tls, .timeouts = app.timeouts});
//   auto r = http->send({.method = "POST", .url = token_url,
//                        .headers = {{"Content-Type", "application/x-www-form-urlencoded"}},
//                        .body = mb::form_encode({{"grant_type", "client_credentials"}})});
//   if (!r.ok()) return r.status();
//   if (r->status != 200) ...
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/tls_options.h"
#include "core/status.h"

namespace mb {

using HttpHeaders = std::vector<std::pair<std::string, std::string>>;

// Every member has an initializer ({} at least) so that designated initializers that leave
// members out, as in the example above, do not trip g++ 12's -Wmissing-field-initializers.

struct HttpRequest {
  std::string method = "GET";
  std::string url{};  // absolute: https://host[:port]/path?query
  HttpHeaders headers{};
  std::string body{};
  // When set, the response body is handed over in pieces as it arrives (at most 64 KiB
  // each) instead of being kept in HttpResponse::body, so a large download costs no more
  // memory than one piece. A non-OK status from the sink stops the transfer and is returned.
  std::function<Status(std::string_view piece)> body_sink{};
  // Never log this request's body (it holds a secret, an assertion or a token). Headers
  // named Authorization are never logged in any case.
  bool sensitive_body = true;
  // Whether sending the request twice does no harm. Unset: by its method (RFC 9110 §9.2.2:
  // GET, HEAD, PUT, DELETE, OPTIONS are idempotent; POST and PATCH are not). A request that
  // may not be repeated goes on a new connection of its own, never a kept-alive one (which
  // the engine would silently send again on if the server closed it after reading), and
  // this layer never sends it twice: when its answer is lost the caller gets kNetwork.
  std::optional<bool> repeatable{};
  // Called once the whole request has been written to the connection, before its answer
  // is read (on the client's I/O thread, while send() waits): from then on the server may
  // have acted on it, whatever becomes of the answer. Must not throw.
  std::function<void()> on_written{};
};

// True when a request may be sent again after its answer was lost (see `repeatable`).
bool is_repeatable(std::string_view method, std::optional<bool> declared);
inline bool is_repeatable(const HttpRequest& r) { return is_repeatable(r.method, r.repeatable); }

struct HttpResponse {
  int status = 0;
  HttpHeaders headers{};
  std::string body{};  // empty when the request had a body_sink

  // header() finds a header by name, case-insensitively (the first one when repeated).
  std::optional<std::string> header(std::string_view name) const;
};

struct HttpOptions {
  TlsOptions tls{};
  Timeouts timeouts{};
  // Tests and local stand-ins only; never set from configuration.
  bool allow_plain_http = false;
  std::string user_agent = "mailbridge";
  // Tests only, libcurl engine only (core/http_curl.h): curl's CONNECT_TO rules,
  // "HOST:PORT:CONNECT-HOST:CONNECT-PORT", so that a URL's host name reaches a local stand-in
  // while the certificate is still checked against that name (EWS autodiscover's hosts).
  std::vector<std::string> connect_to{};
};

// HttpClient sends one request at a time per call; an implementation is safe to call from
// several threads at once and keeps connections alive between calls to the same origin.
class HttpClient {
 public:
  virtual ~HttpClient() = default;
  virtual Result<HttpResponse> send(const HttpRequest& request) = 0;
};

// make_http_client() builds the cpprestsdk-backed client. Does not connect.
std::unique_ptr<HttpClient> make_http_client(const HttpOptions& options);

// Percent-encoding for application/x-www-form-urlencoded bodies and query strings
// (RFC 6749 Appendix B): unreserved characters stay, space becomes "+" in form_encode.
std::string url_encode(std::string_view text);
std::string form_encode(const std::vector<std::pair<std::string, std::string>>& fields);

// Splits "https://host:port/path?q" into its parts; kConfig on anything else.
struct UrlParts {
  std::string scheme{};  // "https" or "http", lower-case
  std::string host{};    // without brackets for IPv6
  uint16_t port = 0;   // the scheme's default when absent
  std::string path_and_query{};  // "/" when absent
};
Result<UrlParts> parse_url(std::string_view url);

}  // namespace mb
