// File: bench/token_bench.cpp — mb_token_bench: many concurrent token() calls on one key
// across an expiry; counts the requests that reach the token endpoint and the callers that
// failed, and times each call. Prints one JSON line per scenario; exits 1 if any scenario
// made more than one request or had a failure.
//
//   mb_token_bench [--calls 10000] [--threads 64] [--latency-ms 50]
//
// Scenarios (each with a fresh cache, a fake source that sleeps --latency-ms per request
// and rotates the refresh token, and a real encrypted TokenStore in a temporary directory):
//   cold    — the cache starts empty: every caller arrives before the first token exists;
//   expiry  — a warm cache whose token expires (the clock jumps past expires_at) halfway
//             through the run: the callers after the jump must all wait for one refresh;
//   margin  — the clock jumps into the 5-minute refresh margin halfway: one caller
//             refreshes, the others keep getting the still-valid token without waiting.
//
// With --oauth-env DIR/env (tests/harness/oauth.sh's file), two more scenarios run against the
// real oidc-provider through OAuthClient and core/http: server-cold and server-expiry, with
// client credentials of its mb-secret-client; "requests" is then what the server's /stats
// counted (token requests of grant client_credentials), not what the client believes.
#include <stdlib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <fstream>
#include <map>
#include <sstream>

#include "auth/oauth.h"
#include "auth/token_cache.h"
#include "auth/token_store.h"
#include "core/http.h"

namespace mb {
namespace {

using std::chrono::seconds;
using Steady = std::chrono::steady_clock;

struct Options {
  int calls = 10000;
  int threads = 64;
  int latency_ms = 50;
  std::string oauth_env;  // tests/harness/oauth.sh's DIR/env: also run against that server
};

class SlowSource : public TokenSource {
 public:
  explicit SlowSource(std::chrono::milliseconds latency) : latency_(latency) {}
  Result<TokenResponse> acquire(const TokenKey&, const std::optional<std::string>&) override {
    int n = ++requests;
    std::this_thread::sleep_for(latency_);
    TokenResponse t;
    t.access_token = "bench-access-" + std::to_string(n);
    t.refresh_token = "bench-refresh-" + std::to_string(n);
    t.expires_in = seconds(3600);
    return t;
  }
  std::atomic<int> requests{0};

 private:
  std::chrono::milliseconds latency_;
};

struct Figures {
  std::string scenario;
  int requests = 0;
  int failures = 0;
  int calls = 0;
  double wall_ms = 0;
  int waited = 0;  // calls that took at least half the source latency: they waited a flight
  double p50_us = 0, p99_us = 0, p999_us = 0, max_us = 0;
};

double percentile_us(std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  size_t i = std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())));
  std::nth_element(v.begin(), v.begin() + static_cast<long>(i), v.end());
  return v[i];
}

// Runs opt.calls token() calls on `threads` threads; when half have been issued the clock
// (`now_s`) moves by `jump`. Fills everything but requests.
Figures hammer(const std::string& name, const Options& opt, TokenCache& cache, const TokenKey& tk,
               std::atomic<int64_t>& now_s, seconds jump, double wait_us) {
  std::vector<double> latency_us(static_cast<size_t>(opt.calls));
  std::atomic<int> next{0}, failures{0};
  auto worker = [&] {
    for (int i; (i = next.fetch_add(1)) < opt.calls;) {
      if (i == opt.calls / 2 && jump.count() > 0) now_s += jump.count();
      auto start = Steady::now();
      if (!cache.token(tk).ok()) ++failures;
      latency_us[static_cast<size_t>(i)] =
          std::chrono::duration<double, std::micro>(Steady::now() - start).count();
    }
  };
  auto start = Steady::now();
  std::vector<std::thread> pool;
  for (int t = 0; t < opt.threads; ++t) pool.emplace_back(worker);
  for (auto& t : pool) t.join();

  Figures f;
  f.scenario = name;
  f.wall_ms = std::chrono::duration<double, std::milli>(Steady::now() - start).count();
  f.failures = failures.load();
  f.calls = opt.calls;
  f.waited = static_cast<int>(std::count_if(latency_us.begin(), latency_us.end(),
                                            [&](double us) { return us >= wait_us; }));
  f.p50_us = percentile_us(latency_us, 0.50);
  f.p999_us = percentile_us(latency_us, 0.999);
  f.p99_us = percentile_us(latency_us, 0.99);
  f.max_us = *std::max_element(latency_us.begin(), latency_us.end());
  return f;
}

// `jump` is how far the clock moves when half the calls have been issued (0: no jump).
Figures run(const std::string& name, const Options& opt, const std::string& dir, bool warm,
            seconds jump) {
  AesKey key{};
  key.fill(0x42);
  std::filesystem::create_directories(dir);
  std::filesystem::permissions(dir, std::filesystem::perms::owner_all);
  TokenStore store(dir, key);
  SlowSource source{std::chrono::milliseconds(opt.latency_ms)};
  std::atomic<int64_t> now_s{1'800'000'000};
  TokenCache cache(source, &store, [&] {
    return std::chrono::system_clock::time_point(seconds(now_s.load()));
  });
  TokenKey tk{"bench", "https://outlook.office365.com/.default", "support@contoso.com"};
  if (warm && !cache.token(tk).ok()) spdlog::error("warm-up failed");
  int before = source.requests.load();
  Figures f = hammer(name, opt, cache, tk, now_s, jump, opt.latency_ms * 1000.0 / 2);
  f.requests = source.requests.load() - before;
  return f;
}

// ---- against the oidc-provider harness ----

std::map<std::string, std::string> read_env_file(const std::string& path) {
  std::map<std::string, std::string> out;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) {
    auto eq = line.find('=');
    if (eq != std::string::npos) out[line.substr(0, eq)] = line.substr(eq + 1);
  }
  return out;
}

// Token requests of grant client_credentials the server has counted, or -1.
int server_count(HttpClient& admin, const std::string& admin_url) {
  auto r = admin.send({.method = "GET", .url = admin_url + "/stats"});
  if (!r.ok() && r.status().kind() == ErrorKind::kNetwork) {
    r = admin.send({.method = "GET", .url = admin_url + "/stats"});  // a closed keep-alive
  }
  if (!r.ok() || r->status != 200) return -1;
  auto j = nlohmann::json::parse(r->body, nullptr, false);
  if (!j.is_object()) return -1;
  return j["token"].value("client_credentials", 0);
}

Figures run_server(const std::string& name, const Options& opt, bool warm, seconds jump) {
  auto env = read_env_file(opt.oauth_env);
  AppConfig app;
  app.name = "bench";
  app.client_id = env["MB_OAUTH_CLIENT_ID"];
  app.client_secret = SecretRef{env["MB_OAUTH_CLIENT_SECRET"]};
  app.token_endpoint = env["MB_OAUTH_TOKEN_URL"];
  app.flow = "app-only";
  app.tls.ca_file = env["MB_OAUTH_CA_FILE"];
  Figures f;
  f.scenario = name;
  f.requests = -1;
  auto http = make_http_client({.tls = app.tls, .timeouts = app.timeouts});
  auto admin = make_http_client({.tls = {}, .timeouts = {}, .allow_plain_http = true});
  auto client = OAuthClient::create(app, *http);
  if (!client.ok()) {
    spdlog::error("{}: {}", name, client.status().to_string());
    return f;
  }
  std::atomic<int64_t> now_s{std::chrono::duration_cast<seconds>(
      std::chrono::system_clock::now().time_since_epoch()).count()};
  TokenCache cache(**client, nullptr, [&] {
    return std::chrono::system_clock::time_point(seconds(now_s.load()));
  });
  TokenKey tk{"bench", env["MB_OAUTH_MAIL_SCOPE"], ""};
  if (warm && !cache.token(tk).ok()) spdlog::error("{}: warm-up failed", name);
  int before = server_count(*admin, env["MB_OAUTH_ADMIN_URL"]);
  // A request to the server takes a few milliseconds: a call that took 1 ms waited for one.
  f = hammer(name, opt, cache, tk, now_s, jump, 1000.0);
  int after = server_count(*admin, env["MB_OAUTH_ADMIN_URL"]);
  f.requests = before < 0 || after < 0 ? -1 : after - before;
  return f;
}

int bench_main(int argc, char** argv) {
  Options opt;
  CLI::App app{"mb_token_bench: concurrent token requests across an expiry (JSON on stdout)"};
  app.add_option("--calls", opt.calls, "token() calls per scenario")->check(CLI::PositiveNumber);
  app.add_option("--threads", opt.threads, "caller threads")->check(CLI::Range(1, 10000));
  app.add_option("--latency-ms", opt.latency_ms, "time the fake token endpoint takes")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--oauth-env", opt.oauth_env,
                 "DIR/env of tests/harness/oauth.sh: also run against that real server")
      ->check(CLI::ExistingFile);
  CLI11_PARSE(app, argc, argv);
  spdlog::set_level(spdlog::level::warn);

  char tmpl[] = "/tmp/mb_token_bench_XXXXXX";
  if (::mkdtemp(tmpl) == nullptr) return 1;
  std::string dir = tmpl;
  std::vector<Figures> all = {
      run("cold", opt, dir + "/cold", false, seconds(0)),
      run("expiry", opt, dir + "/expiry", true, seconds(3601)),
      run("margin", opt, dir + "/margin", true, seconds(3600 - 299)),
  };
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  if (!opt.oauth_env.empty()) {
    // Access tokens of the harness live an hour: jumping past that forces one refresh.
    all.push_back(run_server("server-cold", opt, false, seconds(0)));
    all.push_back(run_server("server-expiry", opt, true, seconds(3601)));
  }

  bool good = true;
  for (const Figures& f : all) {
    nlohmann::json j = {{"scenario", f.scenario}, {"calls", f.calls},
                        {"threads", opt.threads}, {"source_latency_ms", opt.latency_ms},
                        {"requests", f.requests}, {"failures", f.failures},
                        {"waited", f.waited},     {"wall_ms", f.wall_ms},
                        {"p50_us", f.p50_us},     {"p99_us", f.p99_us},
                        {"p999_us", f.p999_us},   {"max_us", f.max_us}};
    std::printf("%s\n", j.dump().c_str());
    good = good && f.requests == 1 && f.failures == 0;
  }
  return good ? 0 : 1;
}

}  // namespace
}  // namespace mb

int main(int argc, char** argv) { return mb::bench_main(argc, argv); }
