// File: tests/integration/graph_harness.h — the integration tests' access to the Microsoft
// Graph stand-in that tests/harness/graph.sh starts (header-only): its DIR/env, its admin port
// (deliver, list, faults, counters), and the configuration of a graph mailbox whose [[app]]
// gets its tokens from the Entra stand-in.
//
//   const auto& env = mb::itest::graph::env();      // starts it (and Entra) outside ctest
//   ASSERT_THAT(mb::itest::graph::deliver(user, raw), IsOk());
//   auto inbox = mb::itest::graph::list(user, "INBOX");
//   std::string toml = mb::itest::graph::mailbox_toml({.name = "support", .user = user});
#pragma once

#include <cctype>
#include <chrono>
#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/status.h"
#include "tests/integration/entra_harness.h"
#include "tests/integration/harness.h"

namespace mb::itest::graph {

using Env = ServerEnv;

// The environment variable the generated configuration names for the app's secret.
inline constexpr const char* kSecretVar = "MB_TEST_GRAPH_SECRET";

// The stand-in; outside ctest's fixture the first test that needs it starts it (after the
// Entra stand-in, whose tokens it checks), and it is stopped when the test program ends.
inline HarnessServer& server() {
  static HarnessServer s({
      .what = "the Graph stand-in",
      .script = "graph.sh",
      .dir_env = "MB_GRAPH_HARNESS_DIR",
      .default_dir = MB_GRAPH_HARNESS_DIR,
      .pid_key = "MB_GRAPH_PID",
      .admin_url_key = "MB_GRAPH_ADMIN_URL",
      .admin_what = "graph admin",
      .admin_timeout = std::chrono::seconds(60),
      .needs = [] { return !entra::env().empty(); },
      .start_args = [] { return std::vector<std::string>{entra::dir()}; },
  });
  return s;
}

inline std::string dir() { return server().dir(); }

// The stand-in's DIR/env; empty (with a test failure) when it cannot be started.
inline const Env& env() { return server().env(); }

inline std::string at(const std::string& key) { return server().at(key); }

// A test's user name (unique_user()) as a UPN of the stand-in's tenant.
inline std::string upn(const std::string& user) {
  return user.find('@') == std::string::npos ? user + "@" + at("MB_GRAPH_DOMAIN") : user;
}

inline std::string url_encode(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += fmt::format("%{:02X}", c);
    }
  }
  return out;
}

// A request to the admin port (plain HTTP on loopback, JSON both ways).
inline Result<nlohmann::json> admin(const std::string& method, const std::string& path,
                                    const nlohmann::json& body = nlohmann::json::object()) {
  return server().admin(method, path, body);
}

// New (unread) mail in user's folder ("inbox" unless named).
inline Status deliver(const std::string& user, const std::string& raw,
                      const std::string& folder = "inbox") {
  auto r = admin("POST", "/deliver", {{"user", upn(user)}, {"folder", folder}, {"mime", raw}});
  return r.ok() ? Status::Ok() : r.status();
}

// Many messages in one admin request (the benchmark and the bulk tests).
inline Status deliver_many(const std::string& user, const std::vector<std::string>& raws) {
  nlohmann::json msgs = nlohmann::json::array();
  for (const auto& raw : raws) msgs.push_back({{"mime", raw}});
  auto r = admin("POST", "/deliver", {{"user", upn(user)}, {"messages", msgs}});
  return r.ok() ? Status::Ok() : r.status();
}

// What is in a folder ("INBOX", "Processed", a well-known name or a display path), as the
// ingest suite sees a mail server: `file` is the message id, `seen` its read state.
inline Result<std::vector<ServerMessage>> list(const std::string& user,
                                               const std::string& folder) {
  std::string name = folder == "INBOX" ? "inbox" : folder;
  auto r = admin("GET", "/folder?user=" + url_encode(upn(user)) + "&folder=" + url_encode(name) +
                            "&mime=1");
  if (!r.ok()) {
    // A folder that does not exist yet (nothing moved there) is empty, as for IMAP.
    if (r.status().message().find("HTTP 404") != std::string::npos) {
      return std::vector<ServerMessage>{};
    }
    return r.status();
  }
  std::vector<ServerMessage> out;
  for (const auto& m : (*r)["messages"]) {
    ServerMessage s;
    s.file = m.value("id", "");
    s.seen = m.value("isRead", false);
    s.flags = s.seen ? "S" : "";
    s.subject = m.value("subject", "");
    s.raw = m.value("mime", "");
    out.push_back(std::move(s));
  }
  return out;
}

// Faults of the stand-in (tests/harness/README.md, POST /faults): e.g.
// {{"status", 429}, {"count", 5}, {"route", "$value"}, {"retry_after", 1}}.
inline Status add_fault(const nlohmann::json& fault) {
  auto r = admin("POST", "/faults", fault);
  return r.ok() ? Status::Ok() : r.status();
}
inline Status clear_faults() {
  auto r = admin("POST", "/faults/clear");
  return r.ok() ? Status::Ok() : r.status();
}
inline Result<nlohmann::json> stats() { return admin("GET", "/stats"); }
inline Status reset_stats() {
  auto r = admin("POST", "/stats/reset");
  return r.ok() ? Status::Ok() : r.status();
}

struct GraphBox {
  std::string name = "support";
  std::string user;                  // unique_user() or a UPN
  std::string after = "mark-read";
  int max_per_poll = 50;
  std::string app = "graph-app";
  std::string folder = "INBOX";
  std::string client_id;             // empty: the Entra stand-in's app with every Graph role
  std::string extra;                 // more lines for the [[mailbox]] table
};

// The [[app]] (client credentials at the Entra stand-in's token endpoint, the secret from
// kSecretVar) and the [[mailbox]] of type "graph" whose endpoint is the stand-in.
inline std::string mailbox_toml(const GraphBox& b) {
  std::string client_id = b.client_id.empty() ? entra::at("MB_ENTRA_APP_ID") : b.client_id;
  return fmt::format(
      "[[app]]\nname = {}\ntoken_endpoint = {}\nclient_id = {}\nclient_secret = {}\n"
      "tls = {{ ca_file = {} }}\ntimeouts = {{ connect = \"15s\", response = \"30s\" }}\n\n"
      "[[mailbox]]\nname = {}\ntype = \"graph\"\napp = {}\nuser = {}\nendpoint = {}\n"
      "folder = {}\nafter = {}\nmax_per_poll = {}\npoll_interval = \"1m\"\n"
      "tls = {{ verify = true, ca_file = {}, min_version = \"1.2\" }}\n"
      "timeouts = {{ connect = \"15s\", response = \"30s\" }}\n{}",
      toml_quote(b.app), toml_quote(entra::at("MB_ENTRA_TOKEN_URL")), toml_quote(client_id),
      toml_quote(std::string("env:") + kSecretVar), toml_quote(entra::at("MB_ENTRA_CA_FILE")),
      toml_quote(b.name), toml_quote(b.app), toml_quote(upn(b.user)),
      toml_quote(at("MB_GRAPH_URL")), toml_quote(b.folder), toml_quote(b.after), b.max_per_poll,
      toml_quote(at("MB_GRAPH_CA_FILE")), b.extra);
}

// The secret of the default app (kSecretVar's value).
inline std::string app_secret() { return entra::at("MB_ENTRA_APP_SECRET"); }

}  // namespace mb::itest::graph
