// File: tests/unit/connectors/graph/graph_fake.h — a scripted HttpClient answering as
// Microsoft Graph documents, counting requests in flight, and a SignIn that behaves like
// AuthContext::with_token (a rejected token is replaced once).
#pragma once

#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "auth/token_cache.h"
#include "connectors/graph/graph.h"
#include "core/http.h"

namespace mb::testing {

inline const std::string kService = "https://graph.test";
inline const std::string kApi = kService + "/v1.0";
inline const std::string kToken1 = "eyJ0eXAiOiJKV1QiLCJub25jZSI6InRva2VuLW9uZSJ9.first";
inline const std::string kToken2 = "eyJ0eXAiOiJKV1QiLCJub25jZSI6InRva2VuLXR3byJ9.second";

inline HttpResponse json_response(int status, const nlohmann::json& body, HttpHeaders h = {}) {
  HttpResponse r;
  r.status = status;
  r.headers = std::move(h);
  r.headers.emplace_back("Content-Type", "application/json");
  r.body = body.dump();
  return r;
}

// Graph's documented error body.
inline HttpResponse graph_error(int status, const std::string& code, const std::string& message,
                                HttpHeaders h = {}) {
  return json_response(status,
                       {{"error",
                         {{"code", code},
                          {"message", message},
                          {"innerError",
                           {{"request-id", "9f2c7a3e-req"},
                            {"date", "2026-11-23T12:00:00"},
                            {"client-request-id", "c0ffee00-cli"}}}}}},
                       std::move(h));
}

inline std::string header_of(const HttpRequest& r, const std::string& name) {
  for (const auto& [n, v] : r.headers) {
    std::string a = n;
    std::string b = name;
    std::transform(a.begin(), a.end(), a.begin(), ::tolower);
    std::transform(b.begin(), b.end(), b.begin(), ::tolower);
    if (a == b) return v;
  }
  return "";
}

inline bool has_header(const HttpRequest& r, const std::string& name) {
  for (const auto& [n, v] : r.headers) {
    if (n.size() == name.size() &&
        std::equal(n.begin(), n.end(), name.begin(),
                   [](char x, char y) { return ::tolower(x) == ::tolower(y); })) {
      return true;
    }
  }
  return false;
}

struct FakeGraph {
  using Handler = std::function<HttpResponse(const HttpRequest&)>;
  Handler handler;
  std::mutex mu;
  std::condition_variable cv;
  std::vector<HttpRequest> requests;
  int in_flight = 0;
  int max_in_flight = 0;
  // When > 0, a $value request waits (bounded) until this many are in flight, so that the
  // test sees how many the connector lets run at once.
  int hold_until = 0;

  std::vector<HttpRequest> snapshot() {
    std::lock_guard lock(mu);
    return requests;
  }
  size_t count(const std::string& method, const std::string& needle) {
    std::lock_guard lock(mu);
    return static_cast<size_t>(std::count_if(requests.begin(), requests.end(), [&](auto& r) {
      return r.method == method && r.url.find(needle) != std::string::npos;
    }));
  }
};

// A handler's answer with this status is lost: the request was written (on_written runs),
// then the connection dropped before any answer, as HttpClient reports it.
constexpr int kLostAnswer = 0;

class FakeHttp : public HttpClient {
 public:
  explicit FakeHttp(std::shared_ptr<FakeGraph> g) : g_(std::move(g)) {}
  Result<HttpResponse> send(const HttpRequest& request) override {
    if (request.on_written) request.on_written();  // the whole request reached "Graph"
    {
      std::unique_lock lock(g_->mu);
      HttpRequest copy = request;
      copy.body_sink = nullptr;
      g_->requests.push_back(std::move(copy));
      ++g_->in_flight;
      g_->max_in_flight = std::max(g_->max_in_flight, g_->in_flight);
      g_->cv.notify_all();
      if (g_->hold_until > 0 && request.url.find("/$value") != std::string::npos) {
        g_->cv.wait_for(lock, std::chrono::seconds(5),
                        [&] { return g_->in_flight >= g_->hold_until; });
      }
    }
    HttpResponse r = g_->handler(request);
    {
      std::lock_guard lock(g_->mu);
      --g_->in_flight;
    }
    if (r.status == kLostAnswer) {
      return Status(ErrorKind::kNetwork,
                    "HTTP exchange with graph.test:443 failed: Failed to read HTTP status line; "
                    "the whole request had been sent, so the server may have acted on it",
                    ErrorScope::kConnection);
    }
    if (request.body_sink) {
      // Delivered in pieces, as the real client does.
      for (size_t off = 0; off < r.body.size(); off += 7) {
        Status s = request.body_sink(std::string_view(r.body).substr(off, 7));
        if (!s.ok()) return s;
      }
      r.body.clear();
    }
    return r;
  }

 private:
  std::shared_ptr<FakeGraph> g_;
};

inline GraphHttpFactory factory(std::shared_ptr<FakeGraph> g) {
  return [g](const HttpOptions&) { return std::make_unique<FakeHttp>(g); };
}

// AuthContext::with_token's contract: kToken1 first; a token-rejected status invalidates it
// and fn runs once more with kToken2.
struct FakeTokens {
  std::atomic<int> invalidations{0};
  std::atomic<bool> rotated{false};
};

inline SignIn fake_sign_in(std::shared_ptr<FakeTokens> t) {
  SignIn s;
  s.with_token = [t](const std::function<Status(const std::string&)>& fn) {
    Status st = fn(t->rotated ? kToken2 : kToken1);
    if (!is_token_rejected(st)) return st;
    ++t->invalidations;
    t->rotated = true;
    return fn(kToken2);
  };
  s.describe = [] { return std::string("app test (app-only)"); };
  return s;
}

// Records every sleep instead of sleeping.
struct Sleeps {
  std::mutex mu;
  std::vector<std::chrono::milliseconds> waits;
};

inline GraphTuning fake_tuning(std::shared_ptr<Sleeps> s) {
  GraphTuning t;
  t.sleep = [s](std::chrono::milliseconds d) {
    std::lock_guard lock(s->mu);
    s->waits.push_back(d);
  };
  t.random = [] { return uint64_t{0}; };
  return t;
}

// Captures everything logged while alive.
class LogCapture {
 public:
  LogCapture() {
    sink_ = std::make_shared<spdlog::sinks::ostream_sink_mt>(out_);
    old_ = spdlog::default_logger();
    auto logger = std::make_shared<spdlog::logger>("capture", sink_);
    logger->set_level(spdlog::level::trace);
    spdlog::set_default_logger(logger);
  }
  ~LogCapture() { spdlog::set_default_logger(old_); }
  std::string text() { return out_.str(); }

 private:
  std::ostringstream out_;
  std::shared_ptr<spdlog::sinks::ostream_sink_mt> sink_;
  std::shared_ptr<spdlog::logger> old_;
};

}  // namespace mb::testing
