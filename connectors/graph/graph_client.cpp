// File: connectors/graph/graph_client.cpp — Graph requests under Microsoft's limits, and
// Graph's error bodies turned into Status (and kept in the log).
#include "connectors/graph/graph_client.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <system_error>
#include <thread>
#include <vector>

#include "auth/token_cache.h"
#include "core/ascii.h"
#include "core/backoff.h"
#include "core/cancel.h"

namespace mb::graph {
namespace {

using json = nlohmann::json;

std::string str_field(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// 429 and 503: refused before Graph acted on the request (Microsoft Graph's throttling
// guidance: "Retry-After"), so any call may go again. 504: the gateway gave up waiting, and
// Graph may have acted: only a call that may be repeated goes again.
bool is_retry_status(int status, bool repeatable) {
  return status == 429 || status == 503 || (status == 504 && repeatable);
}

bool is_concurrency_limit(const GraphError& e) {
  return e.code == "MailboxConcurrency" ||
         e.message.find("MailboxConcurrency") != std::string::npos;
}

// The application access policy's denial (RBAC for applications / New-ApplicationAccessPolicy):
// "Access to OData is disabled: [RAOP] : Blocked by tenant configured AppOnly AccessPolicy
// settings."
bool is_policy_denial(const GraphError& e) {
  for (const char* mark : {"AccessPolicy", "RAOP", "Access to OData is disabled"}) {
    if (e.message.find(mark) != std::string::npos) return true;
  }
  return false;
}

bool is_success(int status) { return status >= 200 && status < 300; }

}  // namespace

std::string segment(std::string_view s) { return url_encode(s); }

std::unique_ptr<HttpClient> make_http(const GraphHttpFactory& http, const TlsOptions& tls,
                                      const Timeouts& timeouts) {
  HttpOptions options;
  options.tls = tls;
  options.timeouts = timeouts;
  return http ? http(options) : make_http_client(options);
}

std::string GraphError::describe() const {
  std::string text = fmt::format("HTTP {}", status);
  if (!code.empty()) text += " " + code;
  if (!message.empty()) text += ": " + message;
  std::string ids;
  auto add = [&](const char* name, const std::string& v) {
    if (!v.empty()) ids += fmt::format("{}{} {}", ids.empty() ? "" : ", ", name, v);
  };
  add("request-id", request_id);
  add("client-request-id", client_request_id);
  add("date", date);
  if (!ids.empty()) text += " (" + ids + ")";
  return text;
}

GraphError parse_error(const HttpResponse& response) {
  GraphError e;
  e.status = response.status;
  json body = json::parse(response.body, nullptr, false);
  if (body.is_object() && body.contains("error") && body["error"].is_object()) {
    const json& err = body["error"];
    e.code = str_field(err, "code");
    e.message = str_field(err, "message");
    for (const char* inner : {"innerError", "innererror"}) {
      if (!err.contains(inner) || !err[inner].is_object()) continue;
      e.request_id = str_field(err[inner], "request-id");
      e.client_request_id = str_field(err[inner], "client-request-id");
      e.date = str_field(err[inner], "date");
    }
  }
  if (e.request_id.empty()) e.request_id = response.header("request-id").value_or("");
  if (e.client_request_id.empty()) {
    e.client_request_id = response.header("client-request-id").value_or("");
  }
  if (e.message.empty() && e.code.empty() && !response.body.empty() &&
      response.body.size() < 300 && !body.is_object()) {
    e.message = response.body;  // a gateway's plain-text answer
  }
  return e;
}

void ConcurrencyGate::acquire() {
  std::unique_lock lock(mu_);
  cv_.wait(lock, [&] { return in_flight_ < limit_; });
  ++in_flight_;
}

void ConcurrencyGate::release() {
  {
    std::lock_guard lock(mu_);
    --in_flight_;
  }
  cv_.notify_all();
}

void ConcurrencyGate::lower() {
  std::lock_guard lock(mu_);
  if (limit_ > 1) --limit_;
}

size_t ConcurrencyGate::limit() const {
  std::lock_guard lock(mu_);
  return limit_;
}

GraphClient::GraphClient(std::string service, std::string user, std::string who,
                         SignIn sign_in, std::unique_ptr<HttpClient> http, GraphTuning tuning,
                         size_t max_concurrency)
    : service_(std::move(service)),
      user_(std::move(user)),
      who_(std::move(who)),
      sign_in_(std::move(sign_in)),
      http_(std::move(http)),
      tuning_(std::move(tuning)),
      gate_(std::clamp<size_t>(max_concurrency, 1, 4)) {
  while (!service_.empty() && service_.back() == '/') service_.pop_back();
  if (!tuning_.sleep) {
    // A throttling wait wakes at once when the thread's Cancel fires (stop, reload).
    tuning_.sleep = [](std::chrono::milliseconds d) {
      if (const Cancel* cancel = CancelScope::current()) {
        cancel->wait_until(std::chrono::steady_clock::now() + d);
      } else {
        std::this_thread::sleep_for(d);
      }
    };
  }
  if (!tuning_.random) {
    auto engine = std::make_shared<std::mt19937_64>(std::random_device{}());
    tuning_.random = [engine] { return (*engine)(); };
  }
}

std::string GraphClient::user_path() const { return "/users/" + segment(user_); }

std::string GraphClient::url(const std::string& target) const {
  if (target.rfind("https://", 0) == 0 || target.rfind("http://", 0) == 0) return target;
  return service_ + "/v1.0" + target;
}

bool GraphClient::is_own_url(const std::string& u) const {
  return u.rfind(service_ + "/v1.0/", 0) == 0;
}

std::chrono::milliseconds GraphClient::backoff(int attempt) {
  // 1 s doubling up to 30 s; jitter over the upper half, so that mailboxes throttled
  // together spread out.
  using std::chrono::seconds;
  const Backoff<std::chrono::milliseconds> backoff{seconds(1), seconds(30), Jitter::kEqual};
  uint64_t r = 0;
  {
    std::lock_guard lock(random_mu_);
    r = tuning_.random();
  }
  return backoff.delay(attempt, unit_interval(r));
}

Result<HttpResponse> GraphClient::send_once(const GraphCall& c, const std::string* token) {
  HttpRequest req;
  req.method = c.method;
  req.url = url(c.target);
  req.body = c.body;
  req.repeatable = c.repeatable;
  req.on_written = c.on_written;
  if (token != nullptr) req.headers.emplace_back("Authorization", "Bearer " + *token);
  std::string prefer;
  if (c.authorize) prefer = "IdType=\"ImmutableId\"";
  for (const auto& [name, value] : c.headers) {
    if (ascii_lower(name) == "prefer") prefer += (prefer.empty() ? "" : ", ") + value;
    else req.headers.emplace_back(name, value);
  }
  if (!prefer.empty()) req.headers.emplace_back("Prefer", prefer);
  if (c.authorize) {
    req.headers.emplace_back("client-request-id", random_uuid());
    req.headers.emplace_back("return-client-request-id", "true");
    if (c.sink == nullptr) req.headers.emplace_back("Accept", "application/json");
  }
  if (!c.content_type.empty()) req.headers.emplace_back("Content-Type", c.content_type);
  if (c.sink != nullptr) {
    c.sink->clear();
    req.body_sink = [sink = c.sink, limit = c.sink_limit](std::string_view piece) {
      if (piece.size() > limit - std::min<uint64_t>(limit, sink->size())) {
        uint64_t seen = sink->size() + piece.size();
        sink->clear();
        sink->shrink_to_fit();
        return Status(ErrorKind::kTooLarge,
                      "the body passed max_message_bytes (" + std::to_string(limit) +
                          ") after " + std::to_string(seen) + " bytes; the download was stopped",
                      ErrorScope::kMessage);
      }
      sink->append(piece);
      return Status::Ok();
    };
  }
  gate_.acquire();
  auto r = http_->send(req);
  gate_.release();
  if (r.ok() && c.sink != nullptr && !is_success(r->status)) {
    r->body = std::move(*c.sink);  // an error body, not the content asked for
    c.sink->clear();
  }
  return r;
}

std::string GraphClient::random_uuid() {
  uint64_t a = 0;
  uint64_t b = 0;
  {
    std::lock_guard lock(random_mu_);
    a = tuning_.random();
    b = tuning_.random();
  }
  a = (a & 0xFFFFFFFFFFFF0FFFULL) | 0x4000ULL;             // version 4
  b = (b & 0x3FFFFFFFFFFFFFFFULL) | 0x8000000000000000ULL;  // RFC 4122 variant
  return fmt::format("{:08x}-{:04x}-{:04x}-{:04x}-{:012x}", a >> 32, (a >> 16) & 0xFFFF,
                     a & 0xFFFF, b >> 48, b & 0xFFFFFFFFFFFFULL);
}

Result<HttpResponse> GraphClient::attempts(const GraphCall& c, const std::string* token) {
  std::chrono::milliseconds waited{0};
  const bool repeatable = is_repeatable(c.method, c.repeatable);
  for (int attempt = 0;; ++attempt) {
    auto r = send_once(c, token);
    if (!r.ok()) return r.status().prefixed(who_ + ": " + c.what);
    const int st = r->status;
    if (is_retry_status(st, repeatable)) {
      GraphError e = parse_error(*r);
      if (is_concurrency_limit(e)) gate_.lower();
      // Retry-After in delta-seconds (what Graph sends); an HTTP-date is treated as absent.
      const auto after = parse_retry_after(r->header("Retry-After"));
      const std::chrono::milliseconds wait = after ? *after : backoff(attempt);
      const RetryBudget budget{.max_attempts = tuning_.max_attempts,
                               .max_total_wait = tuning_.max_retry_wait};
      if (!budget.allows(attempt + 1, waited, wait)) {
        auto secs = std::chrono::ceil<std::chrono::seconds>(wait);
        if (secs.count() < 1) secs = std::chrono::seconds(1);
        spdlog::warn("{}: {} still throttled after {} attempts: {}", who_, c.what, attempt + 1,
                     e.describe());
        return Status(ErrorKind::kThrottled,
                      fmt::format("{}: {} throttled by Microsoft Graph ({}); retry after {} s",
                                  who_, c.what, e.describe(), secs.count()),
                      ErrorScope::kMailbox)
            .with_retry_after(secs);
      }
      spdlog::info("{}: {} throttled ({}); retrying in {} ms", who_, c.what, e.describe(),
                   wait.count());
      tuning_.sleep(wait);
      if (const Cancel* cancel = CancelScope::current(); cancel != nullptr && cancel->fired()) {
        return Cancel::cancelled(who_ + ": " + c.what + " (waiting out throttling)");
      }
      waited += wait;
      continue;
    }
    if (st == 401 && token != nullptr) {
      GraphError e = parse_error(*r);
      spdlog::warn("{}: {}: access token refused: {}", who_, c.what, e.describe());
      return token_rejected_status(who_ + ": " + c.what + ": " + e.describe());
    }
    if (st == 403 && token != nullptr) return access_denied(parse_error(*r), c);
    return r;
  }
}

Status GraphClient::access_denied(const GraphError& e, const GraphCall& c) const {
  std::string text;
  if (is_policy_denial(e)) {
    text = fmt::format(
        "{}: {} refused by the tenant's application access policy: the app may not reach "
        "mailbox {}. An Exchange administrator must add the mailbox to the group the policy "
        "names (New-ApplicationAccessPolicy; check with Test-ApplicationAccessPolicy) ({})",
        who_, c.what, user_, e.describe());
  } else {
    const char* perm = c.permission == Permission::kSend ? "Mail.Send" : "Mail.ReadWrite";
    text = fmt::format(
        "{}: {} denied: the app needs the Microsoft Graph application permission {} (with "
        "admin consent) for mailbox {} ({})",
        who_, c.what, perm, user_, e.describe());
  }
  spdlog::warn("{}", text);
  return Status(ErrorKind::kAuth, text, ErrorScope::kMailbox);
}

Result<HttpResponse> GraphClient::call(const GraphCall& c) {
  if (!c.authorize) return attempts(c, nullptr);
  if (!sign_in_.oauth()) {
    return Status(ErrorKind::kConfig, who_ + ": Microsoft Graph needs auth = \"oauth2\"");
  }
  std::optional<HttpResponse> out;
  Status s = sign_in_.with_token([&](const std::string& token) -> Status {
    auto r = attempts(c, &token);
    if (!r.ok()) return r.status();
    out = std::move(*r);
    return Status::Ok();
  });
  if (!s.ok()) return s;
  if (!out) return Status(ErrorKind::kInternal, who_ + ": " + c.what + ": no response");
  return std::move(*out);
}

Status GraphClient::error_status(const HttpResponse& response, const std::string& what) const {
  GraphError e = parse_error(response);
  spdlog::warn("{}: {} failed: {}", who_, what, e.describe());
  ErrorKind kind = ErrorKind::kProtocol;
  const int st = response.status;
  if (st == 400 || st == 409 || st == 422) kind = ErrorKind::kRejected;
  else if (st == 404 || st == 410) kind = ErrorKind::kNotFound;
  else if (st == 413) kind = ErrorKind::kInvalidInput;
  else if (st >= 500) kind = ErrorKind::kNetwork;  // Graph's side; try again later
  return Status(kind, fmt::format("{}: {} failed: {}", who_, what, e.describe()));
}

Status run_parallel(size_t n, size_t width, const std::function<Status(size_t)>& fn) {
  if (n == 0) return Status::Ok();
  width = std::clamp<size_t>(width, 1, n);
  std::atomic<size_t> next{0};
  std::atomic<bool> stop{false};
  std::mutex mu;
  Status first;
  // The helpers answer to the caller's Cancel (core/cancel.h), as its own requests do.
  Cancel* cancel = CancelScope::current();
  auto worker = [&] {
    CancelScope scope(cancel);
    for (size_t i = 0; !stop && (i = next++) < n;) {
      Status s = fn(i);
      if (s.ok()) continue;
      std::lock_guard lock(mu);
      if (first.ok()) first = s;
      stop = true;
    }
  };
  std::vector<std::thread> threads;
  try {
    for (size_t w = 1; w < width; ++w) threads.emplace_back(worker);
  } catch (const std::system_error& e) {
    spdlog::warn("Graph: fewer parallel requests than wanted: {}", e.what());
  }
  worker();
  for (auto& t : threads) t.join();
  return first;
}

}  // namespace mb::graph
