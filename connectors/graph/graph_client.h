// File: connectors/graph/graph_client.h — one mailbox's Microsoft Graph requests: the bearer
// token, client-request-id, Prefer: IdType="ImmutableId", Microsoft's limits (at most 4
// concurrent requests per mailbox, lowered on MailboxConcurrency; 429 and 503 retried after
// Retry-After, 504 too for a call that may be repeated) and Graph's error bodies turned into
// Status. Shared by the mailbox and sender.
//
// Which calls may be repeated (GraphCall::repeatable): 429 and 503 say Graph refused the
// request before acting on it (Microsoft Graph's throttling guidance), so any call is sent
// again after them. A 500, 502 or 504, a time-out or a dropped connection after the request
// was written may come after Graph acted: only a call whose repeat does no harm is sent
// again then. GET, PUT (an upload range), PATCH (isRead) and DELETE are; of the POSTs, a
// move (the ImmutableId stays, a repeat leaves the message where it is), a folder creation
// (a repeat gets 409, which is handled) and createUploadSession (an unused session expires)
// are; sendMail and a draft's send (a repeat sends the mail twice), creating a draft and
// adding an attachment (a repeat leaves a copy) are not. $batch is not used; a batch would
// be repeatable only if all its parts were.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "connectors/connector.h"
#include "connectors/graph/graph.h"
#include "core/http.h"
#include "core/status.h"

namespace mb::graph {

// Graph's error body: {"error":{"code","message","innerError":{"request-id","date",
// "client-request-id"}}}. Fields are empty when absent.
struct GraphError {
  int status = 0;
  std::string code;
  std::string message;
  std::string request_id;
  std::string client_request_id;
  std::string date;

  // "HTTP 403 ErrorAccessDenied: Access is denied. (request-id …, client-request-id …,
  // date …)"
  std::string describe() const;
};

GraphError parse_error(const HttpResponse& response);

// Which Graph permission a request needs, named in an access-denied error.
enum class Permission { kReadWrite, kSend };

struct GraphCall {
  std::string method = "GET";
  // After the service's "/v1.0" ("/users/x/mailFolders/inbox"), or an absolute URL that
  // Graph gave (@odata.nextLink, @odata.deltaLink) or an upload session's uploadUrl.
  std::string target{};
  std::string body{};
  std::string content_type{};  // set with a body
  HttpHeaders headers{};       // extra headers (Prefer: odata.maxpagesize, Content-Range)
  // Streams a 2xx body into *sink instead of HttpResponse::body (cleared before each try).
  std::string* sink = nullptr;
  // A body growing past this many bytes is not kept: the transfer stops (the connection is
  // dropped) and the call fails with kTooLarge, scope kMessage.
  uint64_t sink_limit = UINT64_MAX;
  // False for an upload session's pre-authenticated URL: no Authorization header.
  bool authorize = true;
  Permission permission = Permission::kReadWrite;
  std::string what{};  // for messages: "GET message delta"
  // Whether a repeat does no harm (see the file comment). Unset: by method, as HttpRequest.
  std::optional<bool> repeatable{};
  // HttpRequest::on_written of each attempt: the request is on the connection, so Graph may
  // act on it whatever becomes of the answer.
  std::function<void()> on_written{};
};

// Counts the requests in flight to one mailbox and holds back those beyond the limit.
class ConcurrencyGate {
 public:
  explicit ConcurrencyGate(size_t limit) : limit_(limit < 1 ? 1 : limit) {}
  void acquire();
  void release();
  // Graph said MailboxConcurrency: one fewer from now on (never below 1).
  void lower();
  size_t limit() const;

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  size_t limit_;
  size_t in_flight_ = 0;
};

class GraphClient {
 public:
  GraphClient(std::string service, std::string user, std::string who, SignIn sign_in,
              std::unique_ptr<HttpClient> http, GraphTuning tuning, size_t max_concurrency);

  // Sends `call` with retries. Returns the final response for any status the caller must
  // judge (2xx, 400, 404, 409, 410, and 500/502/504 to a call that may not be repeated …).
  // Errors: kThrottled with retry_after once the retry
  // budget is spent; kAuth for 401 (as token_rejected_status, so with_token retries once)
  // and for access denied (naming the permission or the application access policy);
  // kNetwork/kTls from the transport. Thread-safe.
  Result<HttpResponse> call(const GraphCall& call);

  // "/users/{user}" with the user percent-encoded.
  std::string user_path() const;
  // The absolute URL of a target (unchanged when already absolute).
  std::string url(const std::string& target) const;
  // True when `url` is under this service's /v1.0 (a stored deltaLink we may follow).
  bool is_own_url(const std::string& url) const;
  const std::string& who() const { return who_; }
  const std::string& user() const { return user_; }
  size_t concurrency() const { return gate_.limit(); }
  const SignIn& sign_in() const { return sign_in_; }
  // A Status for a non-2xx response that call() handed back: kind from the status code,
  // message with Graph's error (logged too).
  Status error_status(const HttpResponse& response, const std::string& what) const;

 private:
  Result<HttpResponse> attempts(const GraphCall& call, const std::string* token);
  Result<HttpResponse> send_once(const GraphCall& call, const std::string* token);
  std::chrono::milliseconds backoff(int attempt);
  Status access_denied(const GraphError& e, const GraphCall& call) const;
  std::string random_uuid();

  std::string service_;
  std::string user_;
  std::string who_;
  SignIn sign_in_;
  std::unique_ptr<HttpClient> http_;
  GraphTuning tuning_;
  ConcurrencyGate gate_;
  std::mutex random_mu_;
};

// Runs fn(0..n-1) on up to `width` threads; returns the first error (later indexes are then
// not started). width 1 runs inline.
Status run_parallel(size_t n, size_t width, const std::function<Status(size_t)>& fn);

// The HTTP client of a mailbox or sender: `http` when set (tests), else make_http_client.
std::unique_ptr<HttpClient> make_http(const GraphHttpFactory& http, const TlsOptions& tls,
                                      const Timeouts& timeouts);

// A path segment: percent-encoded (Graph ids may hold '/', '+', '=').
std::string segment(std::string_view s);

}  // namespace mb::graph
