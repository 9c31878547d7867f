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
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "auth/base64.h"
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

// The environment variables the generated configurations name for the accounts' password
// and the Entra app's secret.
inline constexpr const char* kPasswordVar = "MB_TEST_EWS_PASSWORD";
inline constexpr const char* kSecretVar = "MB_TEST_EWS_APP_SECRET";

inline std::vector<std::pair<std::string, std::string>> secrets_env() {
  return {{kPasswordVar, at("MB_EWS_PASSWORD")}, {kSecretVar, entra::at("MB_ENTRA_APP_SECRET")}};
}

// A [[mailbox]] of type ews on the stand-in (and the [[app]] it needs with auth = "oauth2").
struct EwsBox {
  std::string name = "support";
  std::string address;                  // the mailbox (a fresh one of the stand-in's domain)
  std::string auth = "ntlm";            // password | ntlm | oauth2
  std::string user;                     // empty: the service account (svc-ews, impersonation)
  std::string access = "impersonation"; // own | impersonation | delegate
  std::string after = "leave";
  int max_per_poll = 50;
  std::string password_ref = std::string("env:") + kPasswordVar;
};

inline std::string mailbox_toml(const EwsBox& b) {
  const bool oauth = b.auth == "oauth2";
  std::string app, sign_in;
  if (oauth) {
    app = fmt::format("[[app]]\nname = \"entra\"\ntoken_endpoint = {}\nclient_id = {}\n"
                      "client_secret = \"env:{}\"\ntls = {{ ca_file = {} }}\n\n",
                      toml_quote(entra::at("MB_ENTRA_TOKEN_URL")), toml_quote(entra::at("MB_ENTRA_APP_ID")),
                      kSecretVar, toml_quote(entra::at("MB_ENTRA_CA_FILE")));
    sign_in = fmt::format("auth = \"oauth2\"\napp = \"entra\"\nuser = {}\n", toml_quote(b.address));
  } else {
    std::string user = b.user.empty() ? at("MB_EWS_NETBIOS") + "\\svc-ews" : b.user;
    sign_in = fmt::format("auth = {}\nuser = {}\npassword = {}\naddress = {}\n", toml_quote(b.auth),
                          toml_quote(user), toml_quote(b.password_ref), toml_quote(b.address));
  }
  return app + fmt::format(
                   "[[mailbox]]\nname = {}\ntype = \"ews\"\nendpoint = {}\n{}access = {}\n"
                   "after = {}\nmax_per_poll = {}\npoll_interval = \"1m\"\n"
                   "tls = {{ ca_file = {} }}\ntimeouts = {{ connect = \"15s\", response = \"30s\" }}\n",
                   toml_quote(b.name), toml_quote(at("MB_EWS_URL")), sign_in, toml_quote(b.access),
                   toml_quote(b.after), b.max_per_poll, toml_quote(at("MB_EWS_CA_FILE")));
}

// A fresh address of the stand-in's domain (its mailbox exists once named).
inline std::string fresh_address() { return unique_user() + "@" + at("MB_EWS_DOMAIN"); }

// Delivers raw messages into address's inbox; their ItemIds.
inline Result<std::vector<std::string>> deliver(const std::string& address,
                                                const std::vector<std::string>& raws) {
  nlohmann::json messages = nlohmann::json::array();
  for (const auto& r : raws) messages.push_back({{"mime_base64", base64_encode(r)}});
  auto answer = admin("POST", "/deliver", {{"mailbox", address}, {"messages", messages}});
  if (!answer.ok()) return answer.status();
  std::vector<std::string> ids;
  for (const auto& item : (*answer)["items"]) ids.push_back(item["id"]);
  return ids;
}

// What a folder ("INBOX" is the inbox; else a distinguished name) of address holds.
inline Result<std::vector<ServerMessage>> list(const std::string& address, const std::string& folder) {
  std::string name = folder == "INBOX" ? "inbox" : folder;
  auto answer = admin("GET", "/folder?mailbox=" + address + "&folder=" + name);
  if (!answer.ok()) return answer.status();
  std::vector<ServerMessage> out;
  for (const auto& item : (*answer)["items"]) {
    ServerMessage m;
    m.file = item.value("id", "");
    m.subject = item.value("subject", "");
    m.seen = item.value("isRead", false);
    out.push_back(std::move(m));
  }
  return out;
}

}  // namespace mb::itest::ews
