// File: tests/integration/entra_harness.h — the integration tests' access to the Entra ID
// stand-in that tests/harness/entra.sh starts (header-only, shared by entra_test.cpp and
// doctor_test.cpp): its DIR/env, its admin port, and [[app]] settings pointing at it.
//
//   const auto& env = mb::itest::entra::env();             // starts it outside ctest's fixture
//   auto app = mb::itest::entra::register_app({{"secret", true}, {"roles", ...}});
//   mb::AppConfig cfg = mb::itest::entra::app_config("contoso", (*app)["client_id"], secret);
#pragma once

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "core/config.h"
#include "core/http.h"
#include "core/status.h"
#include "tests/integration/harness.h"

namespace mb::itest::entra {

using Env = std::map<std::string, std::string>;

inline std::string dir() {
  if (const char* d = std::getenv("MB_ENTRA_HARNESS_DIR"); d && *d) return d;
  return MB_ENTRA_HARNESS_DIR;
}

inline Result<Env> read_env() {
  auto text = read_file(dir() + "/env");
  if (!text.ok()) return text.status();
  Env out;
  std::istringstream in(*text);
  for (std::string line; std::getline(in, line);) {
    auto eq = line.find('=');
    if (eq != std::string::npos) out[line.substr(0, eq)] = line.substr(eq + 1);
  }
  return out;
}

inline bool running(const Env& env) {
  auto it = env.find("MB_ENTRA_PID");
  return it != env.end() && ::access(("/proc/" + it->second).c_str(), F_OK) == 0;
}

inline bool run_script(const std::string& action) {
  RunOptions opts;
  opts.timeout = std::chrono::seconds(60);
  auto p = Process::start("/bin/bash",
                          {std::string(MB_SOURCE_DIR) + "/tests/harness/entra.sh", action, dir()},
                          opts);
  if (!p.ok()) return false;
  RunResult r = (*p)->wait(opts.timeout);
  if (r.exit_code != 0) {
    std::fprintf(stderr, "entra.sh %s: %s\n", action.c_str(), r.describe().c_str());
  }
  return r.exit_code == 0;
}

// Outside ctest's fixture, the first test that needs the stand-in starts it; it is stopped
// when the test program ends.
class StandInEnvironment : public ::testing::Environment {
 public:
  void TearDown() override {
    if (started) run_script("stop");
  }
  static inline bool started = false;
};
inline ::testing::Environment* const kStandInEnvironment =
    ::testing::AddGlobalTestEnvironment(new StandInEnvironment);

// The stand-in's DIR/env; empty (with a test failure) when it cannot be started.
inline const Env& env() {
  static std::mutex mu;
  static Env cached;
  std::lock_guard lock(mu);
  if (!cached.empty() && running(cached)) return cached;
  auto e = read_env();
  if (!e.ok() || !running(*e)) {
    StandInEnvironment::started = run_script("start");
    e = read_env();
  }
  if (!e.ok()) {
    ADD_FAILURE() << "the Entra stand-in is not running: " << e.status().message();
    cached.clear();
    return cached;
  }
  cached = *e;
  return cached;
}

inline std::string at(const std::string& key) {
  const Env& e = env();
  auto it = e.find(key);
  return it == e.end() ? "" : it->second;
}

// A request to the admin port (plain HTTP on loopback, JSON both ways).
inline Result<nlohmann::json> admin(const std::string& method, const std::string& path,
                                    const nlohmann::json& body = nlohmann::json::object()) {
  static std::unique_ptr<HttpClient> http = [] {
    HttpOptions o;
    o.allow_plain_http = true;
    o.timeouts = Timeouts{std::chrono::seconds(10), std::chrono::seconds(10)};
    return make_http_client(o);
  }();
  HttpRequest req;
  req.method = method;
  req.url = at("MB_ENTRA_ADMIN_URL") + path;
  if (method == "POST") {
    req.headers = {{"Content-Type", "application/json"}};
    req.body = body.dump();
  }
  auto r = http->send(req);
  if (!r.ok()) return r.status();
  auto j = nlohmann::json::parse(r->body, nullptr, false);
  if (r->status != 200 || j.is_discarded()) {
    return Status(ErrorKind::kInternal, "admin " + path + ": HTTP " + std::to_string(r->status) +
                                            " " + r->body);
  }
  return j;
}

// Registers an app in the stand-in's tenant (see tests/harness/README.md for the fields);
// returns its view: client_id, secret, sp_object_id, ...
inline Result<nlohmann::json> register_app(nlohmann::json spec) {
  if (!spec.contains("tenant")) spec["tenant"] = at("MB_ENTRA_TENANT_ID");
  return admin("POST", "/apps", spec);
}

// [[app]] settings for the stand-in: authority + tenant, its CA, short time-outs.
inline AppConfig app_config(const std::string& name, const std::string& client_id,
                            const std::string& secret_ref, const std::string& flow = "app-only") {
  AppConfig a;
  a.name = name;
  a.authority = at("MB_ENTRA_AUTHORITY");
  a.tenant = at("MB_ENTRA_TENANT_ID");
  a.client_id = client_id;
  if (!secret_ref.empty()) a.client_secret = SecretRef{secret_ref};
  a.flow = flow;
  a.tls.ca_file = at("MB_ENTRA_CA_FILE");
  a.timeouts = Timeouts{std::chrono::seconds(10), std::chrono::seconds(10)};
  return a;
}

// Every role of the apps the tests register with full permissions.
inline nlohmann::json all_roles() {
  return {{"exchange", {"IMAP.AccessAsApp", "POP.AccessAsApp", "SMTP.SendAsApp",
                        "full_access_as_app"}},
          {"graph", {"Mail.ReadWrite", "Mail.Send"}}};
}
inline nlohmann::json all_scopes() {
  return {{"exchange", {"IMAP.AccessAsUser.All", "POP.AccessAsUser.All", "SMTP.Send",
                        "EWS.AccessAsUser.All"}},
          {"graph", {"Mail.ReadWrite", "Mail.Send", "User.Read"}}};
}

}  // namespace mb::itest::entra
