// File: tests/integration/smtp_harness.h — the integration tests' access to the test SMTP
// server that tests/harness/smtp.sh starts (header-only: smtp_test.cpp, the outbox round
// trip and anything else that sends mail): its DIR/env, the messages it received with their
// envelopes and sessions, its counters, its fault switches, and [[sender]] settings for it.
//
//   namespace sm = mb::itest::smtp;
//   ASSERT_THAT(sm::reset(), IsOk());                      // empty spool, zero counters
//   mb::SenderConfig cfg = sm::sender_config(sm::Port::kSubmission, "alice@mailbridge.test");
//   ... send ...
//   auto got = sm::messages();                             // envelopes + session ids
//   auto raw = sm::raw_message((*got)[0].seq);
//   ASSERT_THAT(sm::set_faults({{"refuse_second_mail", true}}), IsOk());
#pragma once

#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/config.h"
#include "core/status.h"
#include "tests/integration/harness.h"

namespace mb::itest::smtp {

using Env = ServerEnv;

// The server; outside ctest's fixture the first test that needs it starts it (with XOAUTH2
// when the OAuth server's DIR, oauth_harness_dir(), has an env), and it is stopped when the
// test program ends.
inline HarnessServer& server() {
  static HarnessServer s({
      .what = "the test SMTP server",
      .script = "smtp.sh",
      .dir_env = "MB_SMTP_HARNESS_DIR",
      .default_dir = MB_SMTP_HARNESS_DIR,
      .pid_key = "MB_SMTP_PID",
      .admin_url_key = "MB_SMTP_ADMIN_URL",
      .admin_what = "smtp admin",
      .admin_timeout = std::chrono::seconds(30),
      // XOAUTH2 needs a running OAuth server; without one the server is password-only.
      .start_args =
          [] {
            std::string oauth_dir = oauth_harness_dir();
            return ::access((oauth_dir + "/env").c_str(), F_OK) == 0
                       ? std::vector<std::string>{oauth_dir}
                       : std::vector<std::string>{};
          },
  });
  return s;
}

inline std::string dir() { return server().dir(); }

// The server's DIR/env; empty (with a test failure) when it cannot be started.
inline const Env& env() { return server().env(); }

inline std::string at(const std::string& key) { return server().at(key); }

inline bool has_oauth() { return at("MB_SMTP_OAUTH") == "1"; }

// A request to the admin port (plain HTTP on loopback, JSON both ways).
inline Result<nlohmann::json> admin(const std::string& method, const std::string& path,
                                    const nlohmann::json& body = nlohmann::json::object()) {
  return server().admin(method, path, body);
}

// Empties the spool and zeroes counters, sessions and fault switches (sequence numbers go
// on: a message's seq is never reused while the server runs).
inline Status reset() {
  auto r = admin("POST", "/reset");
  return r.ok() ? Status::Ok() : r.status();
}

// Sets fault switches (tests/harness/README.md "smtp.sh"), e.g. {"tempfail": 2}.
inline Status set_faults(const nlohmann::json& faults) {
  auto r = admin("POST", "/faults", faults);
  return r.ok() ? Status::Ok() : r.status();
}

// connections, sessions, mail_commands, messages, commands{VERB}, auth{...}, ...
inline Result<nlohmann::json> counters() { return admin("GET", "/counters"); }

// One received message: its envelope, and the session (connection) that brought it.
struct Received {
  int64_t seq = 0;
  std::string session_id;
  int64_t connection = 0;     // the server's connection number
  std::string port;           // submission | smtps | relay | mismatch
  bool secure = false;
  std::string user;           // signed-in user ("" for the relay)
  std::string auth_method;    // PLAIN | LOGIN | XOAUTH2 | ""
  std::string mail_from;
  nlohmann::json mail_params; // {"BODY": "8BITMIME", "SMTPUTF8": true, "SIZE": "123"}
  std::vector<std::string> rcpt_to;  // accepted recipients only
  int64_t size = 0;
};

inline Received parse_received(const nlohmann::json& m) {
  Received r;
  r.seq = m.value("seq", int64_t{0});
  r.session_id = m.value("session_id", "");
  r.connection = m.value("connection", int64_t{0});
  r.port = m.value("port", "");
  r.secure = m.value("secure", false);
  if (m.contains("user") && m["user"].is_string()) r.user = m["user"];
  if (m.contains("auth_method") && m["auth_method"].is_string()) r.auth_method = m["auth_method"];
  r.mail_from = m.value("mail_from", "");
  r.mail_params = m.value("mail_params", nlohmann::json::object());
  for (const auto& a : m.value("rcpt_to", nlohmann::json::array())) r.rcpt_to.push_back(a);
  r.size = m.value("size", int64_t{0});
  return r;
}

// The messages received after sequence number `since` (0: all since the last reset).
inline Result<std::vector<Received>> messages(int64_t since = 0) {
  auto j = admin("GET", "/messages?since=" + std::to_string(since));
  if (!j.ok()) return j.status();
  std::vector<Received> out;
  for (const auto& m : (*j)["messages"]) out.push_back(parse_received(m));
  return out;
}

// The bytes the server took after DATA (dot-unstuffed), read from DIR/spool/<seq>.eml.
inline Result<std::string> raw_message(int64_t seq) {
  return read_file(at("MB_SMTP_SPOOL") + "/" + std::to_string(seq) + ".eml");
}

// How many distinct sessions (connections) the given messages came through.
inline size_t session_count(const std::vector<Received>& msgs) {
  std::vector<std::string> ids;
  for (const auto& m : msgs) {
    bool seen = false;
    for (const auto& i : ids) seen = seen || i == m.session_id;
    if (!seen) ids.push_back(m.session_id);
  }
  return ids.size();
}

enum class Port { kSubmission, kSmtps, kRelay, kMismatch };

inline uint16_t port(Port p) {
  const char* key = p == Port::kSubmission ? "MB_SMTP_SUBMISSION_PORT"
                    : p == Port::kSmtps    ? "MB_SMTP_SMTPS_PORT"
                    : p == Port::kRelay    ? "MB_SMTP_RELAY_PORT"
                                           : "MB_SMTP_MISMATCH_PORT";
  return static_cast<uint16_t>(std::stoi(at(key)));
}

// A [[sender]] for the server: submission = STARTTLS, smtps/mismatch = implicit TLS, relay
// = STARTTLS without AUTH; password auth unless `user` is empty (then auth = none). The
// password reference is env:MB_SMTP_PASSWORD — set it (setenv) from at("MB_SMTP_PASSWORD").
inline SenderConfig sender_config(Port p, const std::string& user) {
  SenderConfig c;
  c.name = "smtp-test";
  c.type = ConnectorType::kSmtp;
  c.host = at("MB_SMTP_HOST");
  c.port = port(p);
  c.security = (p == Port::kSmtps || p == Port::kMismatch) ? Security::kTls
                                                            : Security::kStartTls;
  c.user = user;
  c.auth = user.empty() ? AuthMethod::kNone : AuthMethod::kPassword;
  if (!user.empty()) c.password = SecretRef{"env:MB_SMTP_PASSWORD"};
  c.tls.ca_file = at("MB_SMTP_CA_FILE");
  c.timeouts = Timeouts{std::chrono::seconds(10), std::chrono::seconds(30)};
  return c;
}

// The same as a TOML [[sender]] table (for configurations the binary reads).
inline std::string sender_toml(const std::string& name, Port p, const std::string& user,
                               const std::string& extra = "") {
  SenderConfig c = sender_config(p, user);
  std::string t = "[[sender]]\nname = " + toml_quote(name) + "\ntype = \"smtp\"\nhost = " +
                  toml_quote(c.host) + "\nport = " + std::to_string(c.port) +
                  "\nsecurity = " + (c.security == Security::kTls ? "\"tls\"" : "\"starttls\"") +
                  "\n";
  if (user.empty()) {
    t += "auth = \"none\"\n";
  } else {
    t += "user = " + toml_quote(user) + "\npassword = \"env:MB_SMTP_PASSWORD\"\n";
  }
  t += "tls = { ca_file = " + toml_quote(c.tls.ca_file) + " }\n" + extra;
  return t;
}

}  // namespace mb::itest::smtp
