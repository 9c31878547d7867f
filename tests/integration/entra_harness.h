// File: tests/integration/entra_harness.h — the integration tests' access to the Entra ID
// stand-in that tests/harness/entra.sh starts (header-only, shared by entra_test.cpp and
// doctor_test.cpp): its DIR/env, its admin port, and [[app]] settings pointing at it.
//
//   const auto& env = mb::itest::entra::env();             // starts it outside ctest's fixture
//   auto app = mb::itest::entra::register_app({{"secret", true}, {"roles", ...}});
//   mb::AppConfig cfg = mb::itest::entra::app_config("contoso", (*app)["client_id"], secret);
#pragma once

#include <chrono>
#include <string>

#include <nlohmann/json.hpp>

#include "core/config.h"
#include "core/status.h"
#include "tests/integration/harness.h"

namespace mb::itest::entra {

using Env = ServerEnv;

// The stand-in; outside ctest's fixture the first test that needs it starts it, and it is
// stopped when the test program ends.
inline HarnessServer& server() {
  static HarnessServer s({
      .what = "the Entra stand-in",
      .script = "entra.sh",
      .dir_env = "MB_ENTRA_HARNESS_DIR",
      .default_dir = MB_ENTRA_HARNESS_DIR,
      .pid_key = "MB_ENTRA_PID",
      .admin_url_key = "MB_ENTRA_ADMIN_URL",
      .admin_what = "admin",
      .admin_timeout = std::chrono::seconds(10),
  });
  return s;
}

inline std::string dir() { return server().dir(); }

// The stand-in's DIR/env; empty (with a test failure) when it cannot be started.
inline const Env& env() { return server().env(); }

inline std::string at(const std::string& key) { return server().at(key); }

// A request to the admin port (plain HTTP on loopback, JSON both ways).
inline Result<nlohmann::json> admin(const std::string& method, const std::string& path,
                                    const nlohmann::json& body = nlohmann::json::object()) {
  return server().admin(method, path, body);
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
