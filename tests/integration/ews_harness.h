// File: tests/integration/ews_harness.h — the integration tests' access to the EWS stand-in
// that tests/harness/ews.sh starts (header-only): its DIR/env, its admin port (accounts,
// deliver, faults, counters, the request log), and an access token of the Entra stand-in
// for Exchange (app-only, client credentials).
//
//   const auto& env = mb::itest::ews::env();        // starts it (and Entra) outside ctest
//   auto stats = mb::itest::ews::admin("GET", "/stats");
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/http.h"
#include "core/status.h"
#include "tests/integration/entra_harness.h"
#include "tests/integration/harness.h"

namespace mb::itest::ews {

// The stand-in, with the Entra stand-in's tokens; outside ctest's fixture the first test
// that needs it starts it (after Entra), and it is stopped when the test program ends.
inline HarnessServer& server() {
  static HarnessServer s({
      .what = "the EWS stand-in",
      .script = "ews.sh",
      .dir_env = "MB_EWS_HARNESS_DIR",
      .default_dir = MB_EWS_HARNESS_DIR,
      .pid_key = "MB_EWS_PID",
      .admin_url_key = "MB_EWS_ADMIN_URL",
      .admin_what = "ews admin",
      .admin_timeout = std::chrono::seconds(30),
      .needs = [] { return !entra::env().empty(); },
      .start_args = [] { return std::vector<std::string>{entra::dir()}; },
  });
  return s;
}

inline const ServerEnv& env() { return server().env(); }
inline std::string at(const std::string& key) { return server().at(key); }

inline Result<nlohmann::json> admin(const std::string& method, const std::string& path,
                                    const nlohmann::json& body = nlohmann::json::object()) {
  return server().admin(method, path, body);
}

// An app-only access token for https://outlook.office365.com from the Entra stand-in (its
// first app has full_access_as_app).
inline Result<std::string> exchange_token() {
  HttpOptions o;
  o.tls.ca_file = entra::at("MB_ENTRA_CA_FILE");
  auto http = make_http_client(o);
  HttpRequest r;
  r.method = "POST";
  r.url = entra::at("MB_ENTRA_TOKEN_URL");
  r.headers = {{"Content-Type", "application/x-www-form-urlencoded"}};
  r.body = form_encode({{"grant_type", "client_credentials"},
                        {"client_id", entra::at("MB_ENTRA_APP_ID")},
                        {"client_secret", entra::at("MB_ENTRA_APP_SECRET")},
                        {"scope", "https://outlook.office365.com/.default"}});
  auto answer = http->send(r);
  if (!answer.ok()) return answer.status();
  if (answer->status != 200) {
    return Status(ErrorKind::kAuth, "token: HTTP " + std::to_string(answer->status) + " " + answer->body);
  }
  return nlohmann::json::parse(answer->body).at("access_token").get<std::string>();
}

}  // namespace mb::itest::ews
