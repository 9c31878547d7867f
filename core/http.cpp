// File: core/http.cpp — the cpprestsdk-backed HttpClient with core/net's TLS policy.
//
// cpprestsdk builds a fresh OpenSSL context for every new TLS connection and hands it to
// our ssl_context_callback before the handshake. There we set the minimum version, the CA
// store and, above all, a certificate-verify callback that replaces OpenSSL's chain check:
// it runs X509_verify_cert with the host name (or IP) set the way core/net sets it, then the
// public-key pins — so the verdict, and the words of its error, are core/internal/tls's.
// cpprestsdk only sees "certificate verify failed"; the reason is kept per origin and picked
// up when its exception arrives.
//
// Timeouts: cpprestsdk has a single timer per request, restarted at every step (resolve,
// connect, handshake, sending, each piece of up to 64 KiB of the response). It is set to
// the larger of Timeouts::connect and Timeouts::response, so no step is cut short of its own
// limit; it is a limit on silence, not on the whole transfer. On top of it every exchange
// has a deadline (ExchangeClock): Timeouts::connect + Timeouts::response, plus the time the
// bytes received take at internal::kHttpMinRate, as for the mail protocols (core/line.h). A server that
// sends a body without end, steadily enough to keep the timer going, is cut off there: the
// request is cancelled, which closes its connection.
#include "core/http.h"

#include "core/cancel.h"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <system_error>

#include <arpa/inet.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>
#include <spdlog/spdlog.h>

#include "core/ascii.h"
#include "core/files.h"
#include "core/internal/http_common.h"
#include "core/internal/tls.h"

// cpprestsdk's U() macro collides with fmt: the build defines _TURN_OFF_PLATFORM_STRING.
#include <cpprest/http_client.h>
#include <cpprest/streams.h>

namespace mb {
namespace {

namespace whttp = web::http;
namespace wclient = web::http::client;

constexpr size_t kPiece = 64 * 1024;

using Clock = std::chrono::steady_clock;

// What one origin's TLS connections must satisfy. Shared with every OpenSSL context that
// cpprestsdk creates for the origin (they may outlive a request, pooled for keep-alive).
struct TlsPolicy {
  std::string host;  // what the certificate must match
  std::string peer;  // "host:port", for messages
  TlsOptions options;
  std::vector<internal::Sha256> pins;
  X509_STORE* ca_store = nullptr;  // tls.ca_file loaded once; null: the system store

  TlsPolicy() = default;
  TlsPolicy(const TlsPolicy&) = delete;
  TlsPolicy& operator=(const TlsPolicy&) = delete;
  ~TlsPolicy() { X509_STORE_free(ca_store); }

  void record(Status s) {
    std::lock_guard<std::mutex> lock(mu);
    failure = std::move(s);
  }
  Status take_failure() {
    std::lock_guard<std::mutex> lock(mu);
    return std::exchange(failure, Status::Ok());
  }

 private:
  std::mutex mu;
  Status failure;  // why the last certificate check failed
};

using PolicyRef = std::shared_ptr<TlsPolicy>;

void free_policy_ref(void*, void* ptr, CRYPTO_EX_DATA*, int, long, void*) {
  delete static_cast<PolicyRef*>(ptr);
}

// The SSL_CTX ex-data slot that owns a context's PolicyRef (freed with the context).
int policy_slot() {
  static const int slot = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr,
                                                   &free_policy_ref);
  return slot;
}

// Replaces OpenSSL's chain check for cpprestsdk's contexts (SSL_CTX_set_cert_verify_callback).
int verify_chain(X509_STORE_CTX* store, void* arg) {
  TlsPolicy& policy = **static_cast<PolicyRef*>(arg);
  Status verdict =
      internal::verify_peer_chain(store, policy.host, policy.peer, policy.options, policy.pins);
  if (verdict.ok()) return 1;
  policy.record(std::move(verdict));
  return 0;
}

// Called by cpprestsdk for every new TLS connection, before its handshake.
void configure_context(SSL_CTX* ctx, const PolicyRef& policy) {
  const TlsOptions& o = policy->options;
  SSL_CTX_set_min_proto_version(
      ctx, o.min_version == TlsVersion::k1_3 ? TLS1_3_VERSION : TLS1_2_VERSION);
  if (policy->ca_store != nullptr && X509_STORE_up_ref(policy->ca_store) == 1) {
    SSL_CTX_set_cert_store(ctx, policy->ca_store);  // only tls.ca_file, as in core/net
  }
  auto* ref = new PolicyRef(policy);
  SSL_CTX_set_ex_data(ctx, policy_slot(), ref);
  SSL_CTX_set_cert_verify_callback(ctx, &verify_chain, ref);
  if (!o.verify) internal::warn_insecure_tls(policy->peer);
}

std::string error_text(const std::error_code& ec) {
  std::string m = ec.message();
  return m.empty() ? "error " + std::to_string(ec.value()) : m;
}

// A failed handshake as cpprestsdk reports it: an OpenSSL error code, or a system one.
Status handshake_status(const std::error_code& ec, TlsPolicy& policy) {
  auto e = static_cast<unsigned long>(static_cast<unsigned int>(ec.value()));
  if (ERR_GET_LIB(e) != ERR_LIB_SSL) {
    (void)policy.take_failure();  // a stale verdict must not explain a later failure
    return network_error("connection closed by server during the TLS handshake with " +
                     policy.peer + " (" + error_text(ec) + ")");
  }
  Status recorded = policy.take_failure();
  if (ERR_GET_REASON(e) == SSL_R_CERTIFICATE_VERIFY_FAILED && !recorded.ok()) return recorded;
  return internal::handshake_failure(e, policy.peer, policy.options.min_version);
}

// Turns cpprestsdk's exception for a request to `peer` into our kinds.
Status request_failure(const whttp::http_exception& e, TlsPolicy* policy,
                       const std::string& peer, std::chrono::seconds timeout) {
  const std::error_code& ec = e.error_code();
  std::string what = e.what();
  if (ec.value() == static_cast<int>(std::errc::timed_out)) {
    return network_error("timed out after " + std::to_string(timeout.count()) +
                     " s waiting for " + peer + " (" + what + ")");
  }
  if (what.find("SSL handshake") != std::string::npos && policy != nullptr) {
    return handshake_status(ec, *policy);
  }
  if (what.find("resolv") != std::string::npos) {
    return network_error("cannot resolve " + peer + ": " + error_text(ec));
  }
  if (what.find("Failed to connect") != std::string::npos) {
    // cpprestsdk reports a refused connection as "host unreachable".
    return network_error("cannot connect to " + peer + ": connection refused or host unreachable");
  }
  return network_error("HTTP exchange with " + peer + " failed: " + what + " (" + error_text(ec) +
                   ")");
}

std::string find_header(const HttpHeaders& headers, std::string_view name) {
  for (const auto& [n, v] : headers) {
    if (ascii_iequals(n, name)) return v;
  }
  return "";
}

// Calls request.on_written once, when the engine reports the last byte of the body written
// (its upload progress reaches the body's size; for an empty body, 0 after the headers).
// `written` is set then too.
void watch_written(whttp::http_request& msg, const HttpRequest& request,
                   const std::shared_ptr<std::atomic<bool>>& written) {
  const uint64_t size = request.body.size();
  msg.set_progress_handler([size, written, cb = request.on_written](
                               whttp::message_direction::direction d, utility::size64_t n) {
    if (d != whttp::message_direction::upload || n < size || written->exchange(true)) return;
    if (cb) cb();
  });
}

whttp::http_request build_request(const HttpRequest& request, const UrlParts& url,
                                  const std::string& user_agent,
                                  const std::shared_ptr<std::atomic<bool>>& written) {
  whttp::http_request msg(request.method);
  watch_written(msg, request, written);
  msg.set_request_uri(web::uri(url.path_and_query));
  for (const auto& [name, value] : request.headers) msg.headers().add(name, value);
  if (find_header(request.headers, "User-Agent").empty()) {
    msg.headers().add("User-Agent", user_agent);
  }
  if (!request.body.empty() || request.method == "POST" || request.method == "PUT" ||
      request.method == "PATCH") {
    // A Content-Type among the headers wins over this default.
    msg.set_body(std::string(request.body), std::string("application/octet-stream"));
  }
  return msg;
}

// The deadline of one exchange and the means to enforce it: tasks are waited for until the
// deadline, and past it the request is cancelled (cpprestsdk closes the connection, and the
// task then ends with an exception).
class ExchangeClock {
 public:
  // The thread's Cancel (core/cancel.h), when it fires, cancels the request at once.
  explicit ExchangeClock(std::chrono::milliseconds budget) : budget_(budget) {
    if (Cancel* stop = CancelScope::current()) {
      stop_ = stop;
      stop_handle_ = stop->on_fire([this] {
        stopped_ = true;
        cancel_.cancel();
      });
    }
  }
  ~ExchangeClock() {
    if (stop_ != nullptr) stop_->remove_callback(stop_handle_);
  }
  ExchangeClock(const ExchangeClock&) = delete;
  ExchangeClock& operator=(const ExchangeClock&) = delete;
  pplx::cancellation_token token() const { return cancel_.get_token(); }
  void cancel() { cancel_.cancel(); }
  bool stopped() const { return stopped_; }
  void received(size_t n) { bytes_ += n; }
  bool late() const { return late_; }
  std::chrono::milliseconds budget() const { return budget_; }

  // The task's result; waits for the task to end in any case (it may write into the
  // caller's buffers), cancelling it first once the deadline has passed.
  template <typename T>
  T await(pplx::task<T> task) {
    struct Done {
      std::mutex mu;
      std::condition_variable cv;
      bool done = false;
    };
    auto d = std::make_shared<Done>();
    task.then([d](pplx::task<T>) {
      std::lock_guard<std::mutex> lock(d->mu);
      d->done = true;
      d->cv.notify_all();
    });
    std::unique_lock<std::mutex> lock(d->mu);
    if (!d->cv.wait_until(lock, deadline(), [&] { return d->done; })) {
      late_ = true;
      cancel_.cancel();
      d->cv.wait(lock, [&] { return d->done; });
    }
    lock.unlock();
    return task.get();
  }

 private:
  Clock::time_point deadline() const {
    return start_ + budget_ +
           std::chrono::duration_cast<Clock::duration>(
               std::chrono::duration<double>(static_cast<double>(bytes_) / internal::kHttpMinRate));
  }

  Clock::time_point start_ = Clock::now();
  std::chrono::milliseconds budget_;
  uint64_t bytes_ = 0;
  bool late_ = false;
  pplx::cancellation_token_source cancel_;
  Cancel* stop_ = nullptr;
  uint64_t stop_handle_ = 0;
  std::atomic<bool> stopped_{false};
};

// Reads the body as it arrives, at most kPiece bytes at a time. Throws what cpprestsdk
// throws when the transfer breaks.
Status read_body(whttp::http_response& response, ExchangeClock& clock,
                 const std::function<Status(std::string_view)>& sink) {
  auto buffer = response.body().streambuf();
  std::vector<uint8_t> piece(kPiece);
  for (;;) {
    size_t n = clock.await(buffer.getn(piece.data(), piece.size()));
    if (n == 0) return Status::Ok();
    clock.received(n);
    MB_RETURN_IF_ERROR(sink(std::string_view(reinterpret_cast<const char*>(piece.data()), n)));
  }
}

class CppRestHttpClient final : public HttpClient {
 public:
  explicit CppRestHttpClient(HttpOptions options) : options_(std::move(options)) {
    setup_ = load_policy();
  }
  ~CppRestHttpClient() override { X509_STORE_free(ca_store_); }
  CppRestHttpClient(const CppRestHttpClient&) = delete;
  CppRestHttpClient& operator=(const CppRestHttpClient&) = delete;

  Result<HttpResponse> send(const HttpRequest& request) override;

 private:
  struct Origin {
    PolicyRef policy;  // null for http://
    std::unique_ptr<wclient::http_client> client;
  };

  Status load_policy();
  Result<Origin*> origin_for(const UrlParts& url);
  std::unique_ptr<wclient::http_client> new_client(const std::string& origin_key,
                                                   const PolicyRef& policy) const;
  // `written` is set once the whole request is on the connection.
  Result<HttpResponse> exchange(const HttpRequest& request, const UrlParts& url,
                                wclient::http_client& client,
                                const std::shared_ptr<std::atomic<bool>>& written);
  Result<HttpResponse> exchange_within(const HttpRequest& request, const UrlParts& url,
                                       wclient::http_client& client,
                                       const std::shared_ptr<std::atomic<bool>>& written,
                                       ExchangeClock& clock);
  Result<HttpResponse> send_repeatable(const HttpRequest& request, const UrlParts& url,
                                       Origin& origin,
                                       const std::shared_ptr<std::atomic<bool>>& written);
  std::chrono::seconds timeout() const {
    return std::max(options_.timeouts.connect, options_.timeouts.response);
  }

  HttpOptions options_;
  Status setup_;  // a bad pin or CA file, returned by every send()
  std::vector<internal::Sha256> pins_;
  X509_STORE* ca_store_ = nullptr;  // tls.ca_file, shared by every connection's context
  std::mutex mu_;
  std::map<std::string, std::unique_ptr<Origin>> origins_;
};

Status CppRestHttpClient::load_policy() {
  for (const auto& pin : options_.tls.pins) {
    auto digest = internal::parse_pin(pin);
    if (!digest.ok()) return digest.status();
    pins_.push_back(*digest);
  }
  if (!options_.tls.verify || options_.tls.ca_file.empty()) return Status::Ok();
  // Loaded once, to fail early and in our words; every connection shares the store.
  auto store = internal::load_ca_store(options_.tls.ca_file);
  if (!store.ok()) return store.status();
  ca_store_ = *store;
  return Status::Ok();
}

Result<CppRestHttpClient::Origin*> CppRestHttpClient::origin_for(const UrlParts& url) {
  std::string key = url.scheme + "://" + internal::http_host_port(url.host, url.port);
  std::lock_guard<std::mutex> lock(mu_);
  auto it = origins_.find(key);
  if (it != origins_.end()) return it->second.get();

  auto origin = std::make_unique<Origin>();
  if (url.scheme == "https") {
    auto policy = std::make_shared<TlsPolicy>();
    policy->host = url.host;
    policy->peer = internal::http_host_port(url.host, url.port);
    policy->options = options_.tls;
    policy->pins = pins_;
    if (ca_store_ != nullptr && X509_STORE_up_ref(ca_store_) == 1) policy->ca_store = ca_store_;
    origin->policy = std::move(policy);
  }
  origin->client = new_client(key, origin->policy);
  Origin* raw = origin.get();
  origins_.emplace(std::move(key), std::move(origin));
  return raw;
}

// A client (with its own pool of kept-alive connections) for one origin; `policy` is null
// for http://.
std::unique_ptr<wclient::http_client> CppRestHttpClient::new_client(
    const std::string& origin_key, const PolicyRef& policy) const {
  wclient::http_client_config config;
  config.set_timeout(std::chrono::duration_cast<std::chrono::microseconds>(timeout()));
  config.set_chunksize(kPiece);
  config.set_max_redirects(0);  // a 3xx is the caller's: never resend credentials elsewhere
  if (policy) {
    // Our verify callback decides, also with verify = false (pins still apply).
    config.set_validate_certificates(true);
    config.set_tlsext_sni_enabled(!internal::is_ip_literal(policy->host));
    config.set_ssl_context_callback(
        [policy](boost::asio::ssl::context& ctx) { configure_context(ctx.native_handle(), policy); });
  }
  return std::make_unique<wclient::http_client>(web::uri(origin_key), config);
}

// One exchange under its deadline (ExchangeClock); past it the request is cancelled and the
// answer reported as timed out.
Result<HttpResponse> CppRestHttpClient::exchange(
    const HttpRequest& request, const UrlParts& url, wclient::http_client& client,
    const std::shared_ptr<std::atomic<bool>>& written) {
  ExchangeClock clock(std::chrono::duration_cast<std::chrono::milliseconds>(
      options_.timeouts.connect + options_.timeouts.response));
  try {
    return exchange_within(request, url, client, written, clock);
  } catch (...) {
    if (clock.stopped()) {
      return Cancel::cancelled("waiting for the answer to " + request.method + " " +
                               internal::loggable_url(url));
    }
    if (!clock.late()) throw;
    auto secs = std::chrono::duration_cast<std::chrono::seconds>(clock.budget()).count();
    std::string why = "timed out waiting for the answer to " + request.method + " " +
                      internal::loggable_url(url) + " after " + std::to_string(secs) + " s";
    if (*written && !is_repeatable(request)) {
      why += "; the whole request had been sent, so the server may have acted on it";
    }
    return network_error(why);
  }
}

Result<HttpResponse> CppRestHttpClient::exchange_within(
    const HttpRequest& request, const UrlParts& url, wclient::http_client& client,
    const std::shared_ptr<std::atomic<bool>>& written, ExchangeClock& clock) {
  whttp::http_response response = clock.await(client.request(
      build_request(request, url, options_.user_agent, written), clock.token()));
  HttpResponse out;
  out.status = response.status_code();
  for (const auto& [name, value] : response.headers()) out.headers.emplace_back(name, value);
  Status read = request.body_sink
                    ? read_body(response, clock, request.body_sink)
                    : read_body(response, clock, [&](std::string_view piece) {
                        if (out.body.size() + piece.size() > internal::kHttpMaxKeptBody) {
                          return Status(ErrorKind::kProtocol,
                                        "HTTP response body from " + internal::loggable_url(url) +
                                            " is larger than " +
                                            std::to_string(internal::kHttpMaxKeptBody >> 20) + " MiB",
                                        ErrorScope::kConnection);
                        }
                        out.body.append(piece);
                        return Status::Ok();
                      });
  if (!read.ok()) {
    clock.cancel();  // closes the connection: the rest of the body is not wanted
    return read;
  }
  return out;
}

Result<HttpResponse> CppRestHttpClient::send(const HttpRequest& request) {
  MB_RETURN_IF_ERROR(setup_);
  auto url = parse_url(request.url);
  if (!url.ok()) return url.status();
  if (url->scheme != "https" && !options_.allow_plain_http) {
    return Status(ErrorKind::kConfig,
                  "URL " + internal::loggable_url(*url) + " must be https:// (plain HTTP is not allowed)");
  }
  std::string peer = internal::http_host_port(url->host, url->port);
  if (url->host.find(':') != std::string::npos) {
    // cpprestsdk 2.10 hands "[::1]" with its brackets to the resolver, which fails.
    return Status(ErrorKind::kConfig, "URL host " + peer +
                                          " is an IPv6 address literal, which the HTTP client "
                                          "cannot use: give a host name for it instead");
  }
  auto started = std::chrono::steady_clock::now();
  auto written = std::make_shared<std::atomic<bool>>(false);
  try {
    auto origin = origin_for(*url);
    if (!origin.ok()) return origin.status();
    Result<HttpResponse> result = Status(ErrorKind::kInternal, "no exchange");
    if (is_repeatable(request)) {
      result = send_repeatable(request, *url, **origin, written);
    } else {
      // A connection of its own, dropped after this exchange: the engine re-sends a request
      // whose kept-alive connection the server closed before answering, even when the
      // server had read it (cpprestsdk 2.10, handle_failed_read_status_line). A fresh
      // connection is never "reused", so what was written is sent once.
      auto once = new_client(url->scheme + "://" + peer, (*origin)->policy);
      result = exchange(request, *url, *once, written);
    }
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                  std::chrono::steady_clock::now() - started)
                  .count();
    if (result.ok()) {
      spdlog::debug("HTTP {} {} -> {} in {} ms", request.method, internal::loggable_url(*url),
                    result->status, ms);
    } else {
      spdlog::debug("HTTP {} {} failed after {} ms", request.method, internal::loggable_url(*url), ms);
    }
    return result;
  } catch (const whttp::http_exception& e) {
    TlsPolicy* policy = nullptr;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = origins_.find(url->scheme + "://" + peer);
      if (it != origins_.end()) policy = it->second->policy.get();
    }
    Status failed = request_failure(e, policy, peer, timeout());
    if (*written && !is_repeatable(request)) {
      failed = Status(failed.kind(),
                      failed.message() + "; the whole request had been sent, so the server "
                                         "may have acted on it",
                      failed.scope());
    }
    return failed;
  } catch (const pplx::task_canceled&) {
    return network_error("HTTP request to " + peer + " was cancelled");
  } catch (const std::exception& e) {
    return Status(ErrorKind::kInternal, "HTTP request to " + peer + " failed: " + e.what());
  }
}

bool is_idempotent_method(std::string_view method) {
  for (const char* m : {"GET", "HEAD", "PUT", "DELETE", "OPTIONS"}) {
    if (ascii_iequals(method, m)) return true;
  }
  return false;
}

bool is_unreserved(unsigned char c) {
  return std::isalnum(c) != 0 || c == '-' || c == '.' || c == '_' || c == '~';
}

std::string percent_encode(std::string_view text, bool space_as_plus) {
  static const char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size());
  for (unsigned char c : text) {
    if (is_unreserved(c)) {
      out += static_cast<char>(c);
    } else if (c == ' ' && space_as_plus) {
      out += '+';
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

Status bad_url(std::string_view url, const std::string& why) {
  // Neither a query nor user info is shown: either may hold something private.
  std::string shown(url.substr(0, url.find('?')));
  size_t at = shown.find('@');
  size_t start = shown.find("://");
  if (at != std::string::npos && start != std::string::npos && start < at) {
    shown.replace(start + 3, at - start - 3, "...");
  }
  return Status(ErrorKind::kConfig, "invalid URL \"" + shown + "\": " + why);
}

bool valid_host_name(const std::string& host) {
  return !host.empty() && std::all_of(host.begin(), host.end(), [](unsigned char c) {
    return std::isalnum(c) != 0 || c == '-' || c == '.' || c == '_';
  });
}

// Splits "host", "host:port", "[v6]" or "[v6]:port" into `parts`; the why on failure.
std::string parse_authority(std::string_view authority, UrlParts& parts) {
  std::string_view port_text;
  if (!authority.empty() && authority.front() == '[') {
    size_t close = authority.find(']');
    if (close == std::string_view::npos) return "unclosed [ in the host";
    parts.host = std::string(authority.substr(1, close - 1));
    unsigned char buf[sizeof(in6_addr)];
    if (inet_pton(AF_INET6, parts.host.c_str(), buf) != 1) return "not an IPv6 address in [ ]";
    std::string_view rest = authority.substr(close + 1);
    if (!rest.empty() && rest.front() != ':') return "unexpected text after ]";
    if (!rest.empty()) port_text = rest.substr(1);
    if (!rest.empty() && port_text.empty()) return "empty port";
  } else {
    size_t colon = authority.find(':');
    parts.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) {
      port_text = authority.substr(colon + 1);
      if (port_text.empty()) return "empty port";
    }
    parts.host = ascii_lower(parts.host);
    if (!valid_host_name(parts.host)) return "missing or invalid host";
  }
  if (port_text.empty()) return "";
  if (port_text.size() > 5 || !std::all_of(port_text.begin(), port_text.end(), [](char c) {
        return c >= '0' && c <= '9';
      })) {
    return "invalid port";
  }
  int port = std::stoi(std::string(port_text));
  if (port < 1 || port > 65535) return "port out of range";
  parts.port = static_cast<uint16_t>(port);
  return "";
}

}  // namespace

std::optional<std::string> HttpResponse::header(std::string_view name) const {
  for (const auto& [n, v] : headers) {
    if (ascii_iequals(n, name)) return v;
  }
  return std::nullopt;
}

bool is_repeatable(std::string_view method, std::optional<bool> declared) {
  return declared.value_or(is_idempotent_method(method));
}

// A repeatable request on the origin's kept-alive connections.
Result<HttpResponse> CppRestHttpClient::send_repeatable(
    const HttpRequest& request, const UrlParts& url, Origin& origin,
    const std::shared_ptr<std::atomic<bool>>& written) {
  try {
    return exchange(request, url, *origin.client, written);
  } catch (const whttp::http_exception& e) {
    // A kept-alive connection the server closed while idle fails at the first write: send
    // it again, once, on a new connection (curl does the same for reused connections). Any
    // other failure is the caller's.
    if (std::string_view(e.what()).find("Failed to write request") == std::string_view::npos) {
      throw;
    }
    spdlog::debug("HTTP {} {}: kept-alive connection was closed; sending again", request.method,
                  internal::loggable_url(url));
    written->store(false);
    return exchange(request, url, *origin.client, written);
  }
}

std::unique_ptr<HttpClient> make_http_client(const HttpOptions& options) {
  return std::make_unique<CppRestHttpClient>(options);
}

std::string url_encode(std::string_view text) { return percent_encode(text, false); }

std::string form_encode(const std::vector<std::pair<std::string, std::string>>& fields) {
  std::string out;
  for (const auto& [name, value] : fields) {
    if (!out.empty()) out += '&';
    out += percent_encode(name, true) + '=' + percent_encode(value, true);
  }
  return out;
}

Result<UrlParts> parse_url(std::string_view url) {
  UrlParts parts;
  size_t sep = url.find("://");
  if (sep == std::string_view::npos) return bad_url(url, "expected https://host/...");
  parts.scheme = std::string(url.substr(0, sep));
  parts.scheme = ascii_lower(parts.scheme);
  if (parts.scheme != "https" && parts.scheme != "http") {
    return bad_url(url, "the scheme must be https (or http)");
  }
  parts.port = parts.scheme == "https" ? 443 : 80;
  std::string_view rest = url.substr(sep + 3);
  rest = rest.substr(0, rest.find('#'));  // a fragment never goes to the server
  size_t end = rest.find_first_of("/?");
  std::string_view authority = rest.substr(0, end);
  if (authority.find('@') != std::string_view::npos) {
    return bad_url(url, "user names or passwords in URLs are not supported");
  }
  std::string why = parse_authority(authority, parts);
  if (!why.empty()) return bad_url(url, why);
  std::string_view path = end == std::string_view::npos ? "" : rest.substr(end);
  for (unsigned char c : path) {
    if (c <= ' ' || c >= 0x7f) return bad_url(url, "unencoded space or control character");
  }
  parts.path_and_query = path.empty() ? "/" : path.front() == '?' ? "/" + std::string(path)
                                                                    : std::string(path);
  return parts;
}

namespace internal {

std::string http_host_port(const std::string& host, uint16_t port) {
  const bool v6 = host.find(':') != std::string::npos;
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

std::string loggable_url(const UrlParts& u) {
  return u.scheme + "://" + http_host_port(u.host, u.port) +
         u.path_and_query.substr(0, u.path_and_query.find('?'));
}

}  // namespace internal

}  // namespace mb
