// File: core/config.h — the configuration file, parsed once into plain validated structs.
//
// The rest of the code never sees TOML. load_config() checks every value and reports every
// problem with the key and line (kConfig). Secrets stay as references ("env:NAME",
// "file:PATH", or a literal that is warned about); auth/secrets.h resolves them when needed.
//
//   auto cfg = mb::load_config("mailbridge.toml");
//   if (!cfg.ok()) { std::cerr << cfg.status().message(); return 2; }
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/connector_types.h"
#include "core/mailbox.h"
#include "core/status.h"
#include "core/tls_options.h"

namespace mb {

// A secret as written in the file: "env:NAME", "file:PATH", or a literal.
struct SecretRef {
  std::string ref;
  bool empty() const { return ref.empty(); }
  bool operator==(const SecretRef&) const = default;
};

// EWS: whose mailbox the account opens — its own, another by impersonation (the
// ApplicationImpersonation role; app-only OAuth tokens always), or another as a delegate
// with FullAccess.
enum class MailboxAccess { kOwn, kImpersonation, kDelegate };
std::string to_string(MailboxAccess access);

struct MailboxConfig {
  std::string name;
  ConnectorType type = ConnectorType::kImap;  // imap | pop3 | ews | graph
  std::string host;
  uint16_t port = 0;                   // 0: the protocol's default for `security`
  Security security = Security::kTls;
  // password | oauth2 (default oauth2 for graph or with app); ews also ntlm
  AuthMethod auth = AuthMethod::kPassword;
  MailboxAccess access = MailboxAccess::kOwn;  // ews only
  bool ews_hard_delete = false;        // ews only: delete_type = "HardDelete"
  bool ews_find_listing = false;       // ews only: listing = "find" (FindItem, not SyncFolderItems)
  std::string app;                     // [[app]] name for oauth2
  std::string user;                    // login name
  std::string address;                 // its email address (defaults to user)
  SecretRef password;
  std::string endpoint;                // graph: service URL ("" = default); ews: EWS URL
  std::string folder = "INBOX";
  PostAction after = PostAction::mark_read();
  std::optional<PostAction> after_filtered;  // for filtered mail; default: same as `after`
  std::chrono::seconds poll_interval{120};
  uint32_t max_per_poll = 50;          // 1–9999
  // graph: concurrent requests to this mailbox, 1–4 (Exchange Online allows 4 per app and
  // mailbox; lower it when other apps read the same mailbox).
  uint32_t max_concurrency = 4;
  std::string project = "IT";
  TlsOptions tls;
  Timeouts timeouts;
  bool enabled = true;
  int line_no = 0;                     // where the table starts, for messages
  // Not read from [[mailbox]]: make_mailbox() copies [ingest] max_message_bytes here, so
  // that the connector neither downloads nor keeps a larger message.
  uint64_t max_message_bytes = 50 * 1024 * 1024;

  // Every field, line_no included; same_settings() leaves line_no out (the service's reload
  // restarts a mailbox's worker only when its settings changed, not when it moved).
  bool operator==(const MailboxConfig&) const = default;
};
bool same_settings(const MailboxConfig& a, const MailboxConfig& b);

struct AppConfig {
  std::string name;
  std::string authority = "https://login.microsoftonline.com";
  std::string tenant;
  std::string client_id;
  SecretRef client_secret;
  SecretRef certificate;                // PEM holding the certificate and its private key
  std::string token_endpoint;           // overrides the Entra endpoints (any conformant server)
  std::string device_endpoint;          // RFC 8628 device_authorization_endpoint override
  // "app-only" (client credentials) or "delegated" (a user's refresh token from
  // `mailbridge auth login`); empty in the file: app-only when a secret or certificate is
  // set, else delegated. load_config() always fills it in.
  std::string flow;
  std::vector<std::string> scopes;      // overrides the default scopes of SPEC §3
  TlsOptions tls;                       // for the token endpoint
  Timeouts timeouts;
  int line_no = 0;
};

// [auth]: where delegated refresh tokens are kept, encrypted (auth/token_store.h).
struct AuthConfig {
  std::string token_dir;                // empty: "<directory of store.path>/tokens"
  SecretRef key;                        // 32 bytes, base64 or hex; required for delegated apps
};

struct SenderConfig {
  std::string name;
  ConnectorType type = ConnectorType::kSmtp;  // smtp | graph | ews
  std::string host;
  uint16_t port = 0;
  Security security = Security::kStartTls;
  AuthMethod auth = AuthMethod::kPassword;  // password | oauth2 | none (smtp relay only)
  std::string app;
  std::string user;
  SecretRef password;
  std::string endpoint;                // graph/ews: service URL ("" = default / autodiscover)
  bool one_message_per_connection = false;
  // smtp: our name in EHLO/HELO (an FQDN; empty: this host's canonical name).
  std::string helo_name;
  // graph: keep a copy in the sending mailbox's Sent Items (sendMail saveToSentItems).
  bool save_to_sent_items = true;
  TlsOptions tls;
  Timeouts timeouts;
};

struct ProjectConfig {
  std::string name;
  std::vector<std::string> modules = {"Ticket"};  // names accepted in "[Module - id]"
};

// A person known to the help desk; technicians become note authors.
struct UserConfig {
  std::string email;
  std::string name;
  std::string role = "requestor";      // requestor | technician
};

struct FilterConfig {
  bool use_defaults = true;            // the pre-configured senders and subjects of SPEC §2
  bool auto_replies = true;            // RFC 3834 detection
  std::vector<std::string> senders;    // case-insensitive substrings, each > 1 character
  std::vector<std::string> subjects;
  // Who may create tickets: everyone | requestors | technicians | requestors-and-technicians
  // (matched against the [[user]] directory).
  std::string accept_from = "everyone";
};

struct IngestConfig {
  std::vector<std::string> restricted_extensions = {"exe", "bat", "cmd", "com", "scr", "pif",
                                                    "vbs", "js",  "jar", "msi", "ps1"};
  size_t max_subject_length = 400;
  size_t max_message_bytes = 50 * 1024 * 1024;  // larger messages are skipped ("too-large")
};

struct StoreConfig {
  std::string path = "mailbridge.db";
};

struct TrackingConfig {
  SecretRef secret;
  std::string mailbox;
  std::string sender;
  bool delete_untracked = false;
  // The From address of tracked mail; must be a [[mailbox]]'s address. Empty: the tracking
  // sender's user when that is a mailbox address, else the tracking mailbox's address.
  std::string from;
  // Display name in From: "{user}" is replaced by the technician's name ("Ann via Help Desk").
  std::string from_name = "{user} via Help Desk";
};

// [outbox]: retries of outgoing mail (core/outbox.h). A transient failure is retried after
// retry_initial, doubling up to retry_max (with jitter); the max_attempts-th failure parks it.
// What becomes of a message whose end reached the server but whose answer was never heard
// (the process was killed, the connection dropped or timed out after the "." of DATA).
enum class InDoubt {
  kSent,    // "sent": recorded as sent, marked unconfirmed (the server had it all)
  kResend,  // "resend": sent again, same Message-ID (RFC 5321's at-least-once)
  kPark,    // "park": parked for an operator to check, then `outbox retry` or leave it
};

struct OutboxConfig {
  std::chrono::seconds retry_initial{60};
  std::chrono::seconds retry_max{3600};
  uint32_t max_attempts = 10;          // 1–100
  uint32_t batch = 100;                // messages claimed per flush round, 1–10000
  InDoubt in_doubt = InDoubt::kSent;
};

// The alert ticket a mailbox raises when it keeps failing to sign in (SPEC §3). Texts may
// use the placeholders {mailbox} {user} {host} {error} {failures}.
struct AlertTemplate {
  std::string project;                 // empty: the mailbox's project
  std::string subject = "Mailbox {mailbox} cannot sign in";
  std::string body =
      "mailbridge cannot sign in to the mailbox {mailbox} (user {user} on {host}): "
      "{failures} consecutive authentication failures. The last error was: {error}\n\n"
      "The mailbox is no longer polled, so mail sent to it does not become tickets. Check "
      "its password, or for OAuth the app registration (client secret or certificate, API "
      "permissions, admin consent), then run `mailbridge test-connection {mailbox}`. A "
      "successful sign-in resumes polling and adds a note to this ticket.";
  std::string requester = "system";
};

struct MonitorConfig {
  uint32_t auth_failure_threshold = 3;                   // 1–100
  // While a mailbox is auth-failed, one sign-in probe per interval (from the last attempt).
  std::chrono::seconds auth_retry_interval{3600};
  AlertTemplate alert;                                   // [monitor.alert]
};

// [service]: what `mailbridge run` serves besides its work.
struct ServiceConfig {
  // `metrics = "127.0.0.1:9464"`: Prometheus /metrics and /healthz on this loopback address
  // (core/listen_address.h; core/metrics_server.h). Empty: off.
  std::string metrics;
};

struct Config {
  std::string path;                    // the file it was read from
  StoreConfig store;
  ServiceConfig service;
  TrackingConfig tracking;
  OutboxConfig outbox;
  IngestConfig ingest;
  FilterConfig filters;
  MonitorConfig monitor;
  AuthConfig auth;
  std::vector<AppConfig> apps;
  std::vector<MailboxConfig> mailboxes;
  std::vector<SenderConfig> senders;
  std::vector<ProjectConfig> projects;
  std::vector<UserConfig> users;
  std::vector<std::string> warnings;   // e.g. literal secrets, verify = false

  const MailboxConfig* find_mailbox(const std::string& name) const;
  const AppConfig* find_app(const std::string& name) const;
  const ProjectConfig* find_project(const std::string& name) const;
  const SenderConfig* find_sender(const std::string& name) const;
};

// How far load_config looks. kFile: the file itself (what every command needs). kDeep
// (`check-config`): also what the file names and would fail later — the store's directory,
// tls.ca_file (a readable file of PEM certificates), file: secrets (readable, bounded, not
// empty), types not implemented yet (the ews sender), an ews mailbox without endpoint; an
// env: secret unset here is a warning.
enum class ConfigCheck { kFile, kDeep };

// Reads and validates `path`. Relative paths inside (store.path, tls.ca_file, file:
// secrets) are resolved against the file's directory. On errors, the message holds every
// one, a line each ("FILE:LINE: context: key problem"), in the order of the file.
Result<Config> load_config(const std::string& path, ConfigCheck check = ConfigCheck::kFile);
// Same, from text (for tests); `origin` names it in messages.
Result<Config> parse_config(const std::string& text, const std::string& origin,
                            const std::string& base_dir = ".",
                            ConfigCheck check = ConfigCheck::kFile);

// "2m", "90s", "1h", "30" (seconds) → seconds.
Result<std::chrono::seconds> parse_duration(const std::string& text);
// "mark-read" | "delete" | "move:FOLDER" | "move" (Processed) | "leave".
Result<PostAction> parse_post_action(const std::string& text);

}  // namespace mb
