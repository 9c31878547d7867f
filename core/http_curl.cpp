// File: core/http_curl.cpp — the libcurl-backed HttpClient (core/http_curl.h).
//
// Each request runs on a slot: one easy handle inside one multi handle of its own, taken from
// a pool and given back after, so the multi's connection cache keeps connections alive
// between requests (and a kept-alive NTLM connection stays signed in). The request is driven
// with curl_multi_perform / curl_multi_poll, whose extra descriptor is the thread's Cancel:
// a fired Cancel wakes the wait at once, and the deadline is checked at every wake (at least
// once a second). Past the deadline, or cancelled, the handle is removed from its multi,
// which closes the connection.
//
// TLS: libcurl's OpenSSL context is handed to ssl_context() before every handshake. There the
// minimum version and tls.ca_file's store are set and OpenSSL's chain check is replaced by
// core/internal/tls's verify_peer_chain — so the verdict and its words are core/net's. curl's
// own peer check stays on (it then sees our verdict), so a failed check always ends the
// handshake, also with verify = false (the pins still apply).
#include "core/http_curl.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <vector>

#include <curl/curl.h>
#include <openssl/ssl.h>
#include <spdlog/spdlog.h>

#include "core/ascii.h"
#include "core/cancel.h"
#include "core/internal/http_common.h"
#include "core/internal/tls.h"

namespace mb {
namespace {

using Clock = std::chrono::steady_clock;

constexpr size_t kMaxHeaderBytes = 256 * 1024;

void global_init() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

// The state of one send(): what the callbacks read and fill in.
struct Exchange {
  const HttpRequest* request = nullptr;
  UrlParts url;
  std::string peer;
  const TlsOptions* tls = nullptr;
  const std::vector<internal::Sha256>* pins = nullptr;
  X509_STORE* ca_store = nullptr;

  HttpResponse response;
  size_t header_bytes = 0;
  Status tls_failure;   // why the certificate check failed
  Status sink_failure;  // why the body was refused (sink error, too large)
  size_t read_pos = 0;
  bool written = false;
  uint64_t received = 0;
  Clock::time_point start = Clock::now();
  std::chrono::milliseconds budget{0};

  Clock::time_point deadline() const {
    return start + budget +
           std::chrono::duration_cast<Clock::duration>(
               std::chrono::duration<double>(static_cast<double>(received) / internal::kHttpMinRate));
  }
  void mark_written() {
    if (written) return;
    written = true;
    if (request->on_written) request->on_written();
  }
};

int verify_exchange_chain(X509_STORE_CTX* store, void* arg) {
  auto* ex = static_cast<Exchange*>(arg);
  Status verdict = internal::verify_peer_chain(store, ex->url.host, ex->peer, *ex->tls, *ex->pins);
  if (verdict.ok()) return 1;
  ex->tls_failure = std::move(verdict);
  return 0;
}

CURLcode ssl_context(CURL*, void* ssl_ctx, void* arg) {
  auto* ex = static_cast<Exchange*>(arg);
  auto* ctx = static_cast<SSL_CTX*>(ssl_ctx);
  SSL_CTX_set_min_proto_version(
      ctx, ex->tls->min_version == TlsVersion::k1_3 ? TLS1_3_VERSION : TLS1_2_VERSION);
  if (ex->ca_store != nullptr && X509_STORE_up_ref(ex->ca_store) == 1) {
    SSL_CTX_set_cert_store(ctx, ex->ca_store);  // only tls.ca_file, as in core/net
  }
  SSL_CTX_set_cert_verify_callback(ctx, &verify_exchange_chain, ex);
  if (!ex->tls->verify) internal::warn_insecure_tls(ex->peer);
  return CURLE_OK;
}

size_t on_header(char* data, size_t size, size_t n, void* arg) {
  auto* ex = static_cast<Exchange*>(arg);
  size_t len = size * n;
  std::string_view line(data, len);
  if (line.rfind("HTTP/", 0) == 0) {  // a new response (after a 401 of NTLM, or a 100)
    ex->response.headers.clear();
    ex->response.body.clear();
    ex->header_bytes = 0;
    return len;
  }
  ex->header_bytes += len;
  if (ex->header_bytes > kMaxHeaderBytes) return 0;
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.remove_suffix(1);
  size_t colon = line.find(':');
  if (colon == std::string_view::npos) return len;
  std::string_view value = line.substr(colon + 1);
  while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  ex->response.headers.emplace_back(std::string(line.substr(0, colon)), std::string(value));
  return len;
}

size_t on_body(char* data, size_t size, size_t n, void* arg) {
  auto* ex = static_cast<Exchange*>(arg);
  size_t len = size * n;
  ex->received += len;
  std::string_view piece(data, len);
  if (ex->request->body_sink) {
    Status s = ex->request->body_sink(piece);
    if (!s.ok()) {
      ex->sink_failure = std::move(s);
      return 0;  // CURLE_WRITE_ERROR: the transfer stops, the connection is dropped
    }
    return len;
  }
  if (ex->response.body.size() + len > internal::kHttpMaxKeptBody) {
    ex->sink_failure = Status(ErrorKind::kProtocol,
                              "HTTP response body from " + internal::loggable_url(ex->url) +
                                  " is larger than " + std::to_string(internal::kHttpMaxKeptBody >> 20) + " MiB",
                              ErrorScope::kConnection);
    return 0;
  }
  ex->response.body.append(piece);
  return len;
}

size_t on_read(char* buffer, size_t size, size_t n, void* arg) {
  auto* ex = static_cast<Exchange*>(arg);
  const std::string& body = ex->request->body;
  size_t len = std::min(size * n, body.size() - ex->read_pos);
  std::memcpy(buffer, body.data() + ex->read_pos, len);
  ex->read_pos += len;
  // The last byte is handed to the connection: from now on the server may act on it.
  if (ex->read_pos == body.size()) ex->mark_written();
  return len;
}

// NTLM sends the body twice at most (a zero-length first leg, then the whole): rewinds.
int on_seek(void* arg, curl_off_t offset, int origin) {
  auto* ex = static_cast<Exchange*>(arg);
  if (origin != SEEK_SET || offset < 0 ||
      static_cast<size_t>(offset) > ex->request->body.size()) {
    return CURL_SEEKFUNC_CANTSEEK;
  }
  ex->read_pos = static_cast<size_t>(offset);
  return CURL_SEEKFUNC_OK;
}

struct Slot {
  CURL* easy = nullptr;
  CURLM* multi = nullptr;
  Slot() : easy(curl_easy_init()), multi(curl_multi_init()) {}
  ~Slot() {
    curl_easy_cleanup(easy);
    curl_multi_cleanup(multi);
  }
  Slot(const Slot&) = delete;
  Slot& operator=(const Slot&) = delete;
};

struct HeaderList {
  curl_slist* list = nullptr;
  ~HeaderList() { curl_slist_free_all(list); }
  void add(const std::string& line) { list = curl_slist_append(list, line.c_str()); }
};

class CurlHttpClient final : public HttpClient {
 public:
  CurlHttpClient(HttpOptions options, std::optional<NtlmCredentials> ntlm)
      : options_(std::move(options)), ntlm_(std::move(ntlm)) {
    global_init();
    setup_ = load_policy();
    for (const auto& rule : options_.connect_to) connect_to_.add(rule);
  }
  ~CurlHttpClient() override { X509_STORE_free(ca_store_); }
  CurlHttpClient(const CurlHttpClient&) = delete;
  CurlHttpClient& operator=(const CurlHttpClient&) = delete;

  Result<HttpResponse> send(const HttpRequest& request) override;

 private:
  Status load_policy();
  std::unique_ptr<Slot> take();
  void give_back(std::unique_ptr<Slot> slot);
  void configure(CURL* easy, Exchange& ex, HeaderList& headers, char* errors) const;
  void configure_method(CURL* easy, Exchange& ex) const;
  Status drive(Slot& slot, Exchange& ex, CURLcode& code);
  Status transfer_error(CURLcode code, Exchange& ex, const char* errors) const;

  HttpOptions options_;
  std::optional<NtlmCredentials> ntlm_;
  HeaderList connect_to_;  // HttpOptions::connect_to (tests)
  Status setup_;
  std::vector<internal::Sha256> pins_;
  X509_STORE* ca_store_ = nullptr;
  std::mutex mu_;
  std::vector<std::unique_ptr<Slot>> idle_;
};

Status CurlHttpClient::load_policy() {
  for (const auto& pin : options_.tls.pins) {
    auto digest = internal::parse_pin(pin);
    if (!digest.ok()) return digest.status();
    pins_.push_back(*digest);
  }
  if (ntlm_ && !curl_supports_ntlm()) {
    return Status(ErrorKind::kConfig, "this system's libcurl cannot sign in with NTLM");
  }
  if (!options_.tls.verify || options_.tls.ca_file.empty()) return Status::Ok();
  auto store = internal::load_ca_store(options_.tls.ca_file);
  if (!store.ok()) return store.status();
  ca_store_ = *store;
  return Status::Ok();
}

std::unique_ptr<Slot> CurlHttpClient::take() {
  std::lock_guard<std::mutex> lock(mu_);
  if (idle_.empty()) return std::make_unique<Slot>();
  auto slot = std::move(idle_.back());
  idle_.pop_back();
  return slot;
}

void CurlHttpClient::give_back(std::unique_ptr<Slot> slot) {
  std::lock_guard<std::mutex> lock(mu_);
  idle_.push_back(std::move(slot));
}

void CurlHttpClient::configure_method(CURL* easy, Exchange& ex) const {
  const HttpRequest& r = *ex.request;
  bool with_body = !r.body.empty() || r.method == "POST" || r.method == "PUT" ||
                   r.method == "PATCH";
  if (with_body) {
    curl_easy_setopt(easy, CURLOPT_POST, 1L);
    curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(r.body.size()));
    curl_easy_setopt(easy, CURLOPT_READFUNCTION, &on_read);
    curl_easy_setopt(easy, CURLOPT_READDATA, &ex);
    curl_easy_setopt(easy, CURLOPT_SEEKFUNCTION, &on_seek);
    curl_easy_setopt(easy, CURLOPT_SEEKDATA, &ex);
    if (r.method != "POST") curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, r.method.c_str());
  } else if (r.method == "HEAD") {
    curl_easy_setopt(easy, CURLOPT_NOBODY, 1L);
  } else {
    curl_easy_setopt(easy, CURLOPT_HTTPGET, 1L);
    if (r.method != "GET") curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, r.method.c_str());
  }
}

void CurlHttpClient::configure(CURL* easy, Exchange& ex, HeaderList& headers,
                               char* errors) const {
  curl_easy_reset(easy);
  curl_easy_setopt(easy, CURLOPT_URL, ex.request->url.c_str());
  curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, options_.allow_plain_http ? "http,https" : "https");
  curl_easy_setopt(easy, CURLOPT_HTTP_VERSION, CURL_HTTP_VERSION_1_1);  // NTLM needs HTTP/1.1
  curl_easy_setopt(easy, CURLOPT_PROXY, "");            // never a proxy from the environment
  curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 0L);   // a 3xx is the caller's
  curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, errors);
  curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(std::chrono::milliseconds(options_.timeouts.connect).count()));
  curl_easy_setopt(easy, CURLOPT_SSLVERSION, options_.tls.min_version == TlsVersion::k1_3
                                                 ? CURL_SSLVERSION_TLSv1_3
                                                 : CURL_SSLVERSION_TLSv1_2);
  // Our verifier decides (verify_exchange_chain); curl's check of its verdict stays on so that a
  // refusal ends the handshake, and curl's own host check only when verification is on.
  curl_easy_setopt(easy, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(easy, CURLOPT_SSL_VERIFYHOST, options_.tls.verify ? 2L : 0L);
  curl_easy_setopt(easy, CURLOPT_SSL_CTX_FUNCTION, &ssl_context);
  curl_easy_setopt(easy, CURLOPT_SSL_CTX_DATA, &ex);
  curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, &on_header);
  curl_easy_setopt(easy, CURLOPT_HEADERDATA, &ex);
  curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, &on_body);
  curl_easy_setopt(easy, CURLOPT_WRITEDATA, &ex);
  if (connect_to_.list != nullptr) curl_easy_setopt(easy, CURLOPT_CONNECT_TO, connect_to_.list);
  if (!is_repeatable(*ex.request)) {
    // A connection of its own, closed after: curl re-sends a request on a reused connection
    // that died before answering, which a request that may not be repeated must never get.
    curl_easy_setopt(easy, CURLOPT_FRESH_CONNECT, 1L);
    curl_easy_setopt(easy, CURLOPT_FORBID_REUSE, 1L);
  }
  if (ntlm_) {
    curl_easy_setopt(easy, CURLOPT_HTTPAUTH, CURLAUTH_NTLM);
    curl_easy_setopt(easy, CURLOPT_USERNAME, ntlm_->user.c_str());
    curl_easy_setopt(easy, CURLOPT_PASSWORD, ntlm_->password.c_str());
  }
  configure_method(easy, ex);
  bool agent = false;
  bool type = false;
  for (const auto& [name, value] : ex.request->headers) {
    agent = agent || ascii_iequals(name, "User-Agent");
    type = type || ascii_iequals(name, "Content-Type");
    headers.add(name + ": " + value);
  }
  if (!agent) headers.add("User-Agent: " + options_.user_agent);
  if (!type && !ex.request->body.empty()) headers.add("Content-Type: application/octet-stream");
  headers.add("Expect:");  // no 100-continue round trip
  curl_easy_setopt(easy, CURLOPT_HTTPHEADER, headers.list);
}

// Runs the transfer to its end, its deadline or the thread's Cancel.
Status CurlHttpClient::drive(Slot& slot, Exchange& ex, CURLcode& code) {
  Cancel* stop = CancelScope::current();
  curl_multi_add_handle(slot.multi, slot.easy);
  Status outcome;
  for (;;) {
    int running = 0;
    CURLMcode mc = curl_multi_perform(slot.multi, &running);
    if (mc != CURLM_OK) {
      outcome = Status(ErrorKind::kInternal, std::string("libcurl: ") + curl_multi_strerror(mc));
      break;
    }
    if (running == 0) break;
    if (stop != nullptr && stop->fired()) {
      outcome = Cancel::cancelled("waiting for the answer to " + ex.request->method + " " +
                                  internal::loggable_url(ex.url));
      break;
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(ex.deadline() - Clock::now());
    if (left.count() <= 0) {
      auto secs = std::chrono::duration_cast<std::chrono::seconds>(ex.budget).count();
      std::string why = "timed out waiting for the answer to " + ex.request->method + " " +
                        internal::loggable_url(ex.url) + " after " + std::to_string(secs) + " s";
      if (ex.written && !is_repeatable(*ex.request)) {
        why += "; the whole request had been sent, so the server may have acted on it";
      }
      outcome = network_error(why);
      break;
    }
    curl_waitfd extra{stop != nullptr ? stop->fd() : -1, CURL_WAIT_POLLIN, 0};
    unsigned n = extra.fd >= 0 ? 1 : 0;
    int wait = static_cast<int>(std::min<int64_t>(left.count(), stop != nullptr && n == 0 ? 100 : 1000));
    curl_multi_poll(slot.multi, n != 0 ? &extra : nullptr, n, wait, nullptr);
  }
  if (outcome.ok()) {
    int queued = 0;
    CURLMsg* msg = curl_multi_info_read(slot.multi, &queued);
    code = msg != nullptr && msg->msg == CURLMSG_DONE ? msg->data.result : CURLE_OK;
  }
  curl_multi_remove_handle(slot.multi, slot.easy);  // mid-transfer: closes the connection
  return outcome;
}

// A failed handshake in core/net's words: libcurl's error text carries OpenSSL's code
// ("error:0A00042E:SSL routines::...").
Status handshake_error(const Exchange& ex, const std::string& detail) {
  size_t at = detail.find("error:");
  if (at != std::string::npos) {
    unsigned long e = std::strtoul(detail.c_str() + at + 6, nullptr, 16);
    if (e != 0) return internal::handshake_failure(e, ex.peer, ex.tls->min_version);
  }
  return Status(ErrorKind::kTls, "TLS handshake with " + ex.peer + " failed: " + detail,
                ErrorScope::kConnection);
}

Status CurlHttpClient::transfer_error(CURLcode code, Exchange& ex, const char* errors) const {
  std::string detail = errors[0] != '\0' ? errors : curl_easy_strerror(code);
  switch (code) {
    case CURLE_WRITE_ERROR:
      if (!ex.sink_failure.ok()) return ex.sink_failure;
      break;
    case CURLE_COULDNT_RESOLVE_HOST:
      return network_error("cannot resolve " + ex.peer + ": " + detail);
    case CURLE_COULDNT_CONNECT:
      return network_error("cannot connect to " + ex.peer + ": " + detail);
    case CURLE_OPERATION_TIMEDOUT:
      return network_error("timed out after " + std::to_string(options_.timeouts.connect.count()) +
                       " s connecting to " + ex.peer);
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
      if (!ex.tls_failure.ok()) return ex.tls_failure;
      return handshake_error(ex, detail);
    case CURLE_UNSUPPORTED_PROTOCOL:
      return Status(ErrorKind::kConfig, "URL " + internal::loggable_url(ex.url) + " is not allowed: " +
                                            detail);
    default:
      break;
  }
  if (!ex.tls_failure.ok()) return ex.tls_failure;
  std::string why = "HTTP exchange with " + ex.peer + " failed: " + detail;
  if (ex.written && !is_repeatable(*ex.request)) {
    why += "; the whole request had been sent, so the server may have acted on it";
  }
  return network_error(why);
}

Result<HttpResponse> CurlHttpClient::send(const HttpRequest& request) {
  MB_RETURN_IF_ERROR(setup_);
  auto url = parse_url(request.url);
  if (!url.ok()) return url.status();
  if (url->scheme != "https" && !options_.allow_plain_http) {
    return Status(ErrorKind::kConfig,
                  "URL " + internal::loggable_url(*url) + " must be https:// (plain HTTP is not allowed)");
  }
  Exchange ex;
  ex.request = &request;
  ex.url = *url;
  ex.peer = internal::http_host_port(url->host, url->port);
  ex.tls = &options_.tls;
  ex.pins = &pins_;
  ex.ca_store = ca_store_;
  ex.budget = std::chrono::duration_cast<std::chrono::milliseconds>(options_.timeouts.connect +
                                                                    options_.timeouts.response);
  auto slot = take();
  HeaderList headers;
  char errors[CURL_ERROR_SIZE] = {0};
  configure(slot->easy, ex, headers, errors);
  if (request.body.empty()) ex.mark_written();  // conservatively: the request goes out now
  CURLcode code = CURLE_OK;
  Status done = drive(*slot, ex, code);
  Result<HttpResponse> result = Status(ErrorKind::kInternal, "no exchange");
  if (done.ok() && code != CURLE_OK) {
    result = transfer_error(code, ex, errors);
  } else if (done.ok()) {
    long status = 0;
    curl_easy_getinfo(slot->easy, CURLINFO_RESPONSE_CODE, &status);
    ex.response.status = static_cast<int>(status);
    result = std::move(ex.response);
  } else {
    result = done;
  }
  curl_easy_setopt(slot->easy, CURLOPT_ERRORBUFFER, nullptr);
  give_back(std::move(slot));
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - ex.start).count();
  if (result.ok()) {
    spdlog::debug("HTTP {} {} -> {} in {} ms", request.method, internal::loggable_url(*url),
                  result->status, ms);
  } else {
    spdlog::debug("HTTP {} {} failed after {} ms", request.method, internal::loggable_url(*url), ms);
  }
  return result;
}

}  // namespace

std::unique_ptr<HttpClient> make_curl_http_client(const HttpOptions& options,
                                                  std::optional<NtlmCredentials> ntlm) {
  return std::make_unique<CurlHttpClient>(options, std::move(ntlm));
}

bool curl_supports_ntlm() {
  global_init();
  const curl_version_info_data* info = curl_version_info(CURLVERSION_NOW);
  return info != nullptr && (info->features & CURL_VERSION_NTLM) != 0;
}

}  // namespace mb
