// File: tests/integration/harness.h — what the integration tests need around the private
// Dovecot that tests/harness/dovecot.sh starts: its settings (DIR/env), delivering mail
// straight into a user's Maildir, reading back what the server holds, building test
// messages and configurations, and running the mailbridge binary.
//
//   const auto& env = mb::itest::harness_env();          // fails the test if not running
//   std::string user = mb::itest::unique_user();          // a fresh mailbox per test
//   ASSERT_THAT(mb::itest::deliver(env, user, raw), IsOk());
//   auto run = mb::itest::run_mailbridge({"--config", cfg, "sync", "--once"}, opts);
//   auto inbox = mb::itest::list_folder(env, user, "INBOX");
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/status.h"

namespace mb {
class HttpClient;
}  // namespace mb

namespace mb::itest {

// The settings dovecot.sh wrote to DIR/env.
struct HarnessEnv {
  std::string dir;
  uint16_t imaps_port = 0;
  uint16_t imap_port = 0;
  uint16_t pop3s_port = 0;
  uint16_t pop3_port = 0;
  std::string ca_file;        // the CA that signed the server certificate (DNS:localhost)
  std::string other_ca_file;  // an unrelated CA
  std::string password;       // accepted for every user name
  std::string mail_root;      // MAILROOT/<user>/Maildir
  uid_t mail_uid = 0;         // owner Dovecot needs on mail files
  gid_t mail_gid = 0;
  pid_t dovecot_pid = 0;
  std::string dovecot_conf;
  std::string log_file;       // Dovecot's log (logins, errors)
};

Result<HarnessEnv> read_harness_env(const std::string& dir);
// The env of MB_HARNESS_DIR, loaded once. Starts Dovecot itself (and stops it at exit) when
// the test binary runs outside ctest's fixture and no instance is running.
Result<HarnessEnv> load_harness();

// ---- the servers of tests/harness/*.sh: their DIR, DIR/env, start-once, admin port ----

// DIR/env as KEY -> value.
using ServerEnv = std::map<std::string, std::string>;

// A server's DIR: the environment variable env_name when it is set and not empty, else
// compiled_default (the build's MB_*_HARNESS_DIR, where CTest's fixtures start the server).
std::string harness_dir(const char* env_name, const char* compiled_default);
// The OAuth server's DIR (tests/harness/oauth.sh): $MB_OAUTH_HARNESS_DIR, else the build's.
std::string oauth_harness_dir();
// DIR/env's KEY=value lines (lines without '=' and # comments are passed over); the read
// error when DIR/env does not exist.
Result<ServerEnv> read_server_env(const std::string& dir);
// Whether the process that env names under pid_key (e.g. "MB_SMTP_PID") still exists.
bool server_running(const ServerEnv& env, const std::string& pid_key);
// Runs `bash tests/harness/SCRIPT ARGS...` (60 s at most); true on exit 0, else false with
// the run on stderr ("SCRIPT ACTION: ...", ACTION being args[0]).
bool run_harness_script(const std::string& script, const std::vector<std::string>& args);
// Runs `curl -sS --max-time 20 ARGS...` (30 s at most) and parses what it printed as JSON.
Result<nlohmann::json> curl_json(const std::vector<std::string>& args);

// What tells one server of tests/harness/ from another (see HarnessServer).
struct HarnessServerSpec {
  std::string what;                  // "the test SMTP server" (in "... is not running: ...")
  std::string script;                // "smtp.sh"
  const char* dir_env = "";          // "MB_SMTP_HARNESS_DIR": the variable that overrides DIR
  const char* default_dir = "";      // MB_SMTP_HARNESS_DIR as compiled in
  std::string pid_key;               // "MB_SMTP_PID"
  std::string admin_url_key;         // "MB_SMTP_ADMIN_URL"
  std::string admin_what;            // "smtp admin" (in "smtp admin PATH: HTTP 500 ...")
  std::chrono::seconds admin_timeout{30};  // the admin port's response time-out (connect: 10 s)
  // A server that must run first (the Graph stand-in's Entra); false: env() gives up, empty.
  std::function<bool()> needs;
  // More arguments after DIR for `SCRIPT start DIR` (e.g. the DIR of a server it talks to).
  std::function<std::vector<std::string>()> start_args;
};

// One server that tests/harness/SCRIPT starts in DIR: its DIR/env and its admin port. Under
// CTest the fixture has started it; outside CTest the first env() starts it (once, for the
// whole process) and the test program stops it at its end. Keep one instance per server, a
// function-local static: `inline HarnessServer& server() { static HarnessServer s(...); ...`.
class HarnessServer {
 public:
  explicit HarnessServer(HarnessServerSpec spec);
  ~HarnessServer();
  HarnessServer(const HarnessServer&) = delete;
  HarnessServer& operator=(const HarnessServer&) = delete;

  std::string dir() const;
  Result<ServerEnv> read_env() const;
  bool running(const ServerEnv& env) const;
  // SCRIPT ACTION DIR (and spec.start_args() for "start"); true on exit 0.
  bool run_script(const std::string& action) const;
  // DIR/env, starting the server first when it does not run; empty (with a test failure)
  // when it cannot be started.
  const ServerEnv& env();
  // A key of env(); "" when absent.
  std::string at(const std::string& key);
  // A request to the admin port (plain HTTP on loopback, JSON both ways: a POST sends body);
  // an error unless the answer is HTTP 200 with JSON.
  Result<nlohmann::json> admin(const std::string& method, const std::string& path,
                               const nlohmann::json& body = nlohmann::json::object());

 private:
  const HarnessServerSpec spec_;
  std::mutex mu_;
  ServerEnv cached_;
  bool started_ = false;          // by this process, the last time it had to start it
  bool stop_registered_ = false;
  std::once_flag http_once_;
  std::unique_ptr<HttpClient> http_;
};

// A user name no other test (or earlier run against the same Dovecot) has used, derived from
// the running test's name.
std::string unique_user();

// One message file as the server sees it.
struct ServerMessage {
  std::string file;      // path of the Maildir file
  std::string flags;     // Maildir info flags after ":2," (e.g. "S", "ST")
  bool seen = false;     // \Seen
  bool deleted = false;  // \Deleted (flagged, not yet expunged)
  std::string subject;   // unfolded Subject header
  std::string raw;
};

// Delivers `raw` into folder of user the way an LDA does (write to tmp/, rename into new/),
// creating the Maildir if needed, owned by the mail user.
Status deliver(const HarnessEnv& env, const std::string& user, const std::string& raw,
               const std::string& folder = "INBOX");
// The messages in folder (new/ and cur/), sorted by file name. A folder that does not exist
// yet is empty.
Result<std::vector<ServerMessage>> list_folder(const HarnessEnv& env, const std::string& user,
                                               const std::string& folder);
// How many of user's Dovecot logins were (tls) or were not (!tls) made over TLS.
int count_logins(const HarnessEnv& env, const std::string& user, bool tls);

// ---- test messages ----

struct Part {
  std::string filename;      // empty: not an attachment
  std::string content_type;  // e.g. "application/pdf"
  std::string data;          // raw bytes (sent base64)
  std::string content_id;    // set: an inline part (multipart/related), e.g. "logo@x"
};

struct MessageSpec {
  std::string from = "Alice Example <alice@example.com>";
  std::string to = "support@example.com";
  std::string subject;
  std::string text;          // text/plain body
  std::string html;          // text/html body (alternative to text when both are set)
  std::vector<Part> parts;   // attachments and inline images
  std::vector<std::pair<std::string, std::string>> extra_headers;
  std::string message_id;    // generated when empty
};

// An RFC 5322 message with CRLF line ends.
std::string make_message(const MessageSpec& spec);
std::string sha256_hex(const std::string& data);
// Deterministic pseudo-random bytes (binary attachments).
std::string test_bytes(size_t n, uint32_t seed);

// ---- configuration ----

struct ImapBox {
  std::string name = "test";
  std::string user;
  std::string security = "tls";  // tls | starttls
  std::string host = "localhost";
  std::string ca_file;           // default: the harness CA
  std::string after = "mark-read";
  int max_per_poll = 50;
  std::string password_ref = "env:MB_TEST_PASSWORD";
};

// The [[mailbox]] table for an IMAP mailbox on the harness Dovecot.
std::string imap_mailbox_toml(const HarnessEnv& env, const ImapBox& box);
// A whole configuration: [store] at store_path, then the given tables.
std::string config_toml(const std::string& store_path, const std::string& tables);
// TOML basic string with escapes.
std::string toml_quote(const std::string& s);

// A temporary directory, removed on destruction unless keep() was called.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }
  void keep() { keep_ = true; }

 private:
  std::string path_;
  bool keep_ = false;
};

Status write_file(const std::string& path, const std::string& content);
Result<std::string> read_file(const std::string& path);

// ---- running mailbridge ----

struct RunOptions {
  std::vector<std::pair<std::string, std::string>> env;  // added to the inherited environment
  std::string cwd;                                        // empty: inherited
  std::chrono::seconds timeout{180};                      // then SIGKILL (reported)
};

struct RunResult {
  int exit_code = -1;   // -1 when killed by a signal
  int signal = 0;       // the signal that ended it, if any
  bool timed_out = false;
  std::string out;
  std::string err;
  std::string describe() const;  // for assertion messages
};

// A started child process whose stdout/stderr go to files (so it can never block on a
// full pipe). The destructor kills it (SIGKILL) if it is still running.
class Process {
 public:
  static Result<std::unique_ptr<Process>> start(const std::string& program,
                                                const std::vector<std::string>& args,
                                                const RunOptions& options);
  ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  pid_t pid() const { return pid_; }
  bool running();                        // reaps it when it has exited
  void kill(int sig);                    // to this PID only
  RunResult wait(std::chrono::seconds timeout);  // SIGKILL after timeout

 private:
  Process() = default;
  pid_t pid_ = -1;
  bool reaped_ = false;
  int wait_status_ = 0;
  std::string out_path_, err_path_;
  std::unique_ptr<TempDir> dir_;
};

// Polls `done` every 50 ms until it is true (true) or `limit` has passed (false).
bool wait_for(const std::function<bool()>& done, std::chrono::seconds limit);

// Runs the mailbridge binary (MB_MAILBRIDGE_BIN) with args and waits for it.
RunResult run_mailbridge(const std::vector<std::string>& args, const RunOptions& options);
std::string mailbridge_bin();

// Parses JSON output; a discarded value (is_discarded()) on a parse error.
nlohmann::json parse_json(const std::string& text);

// Reads `SELECT count(*) FROM tickets` from the SQLite store read-only; an error when the
// file or table does not exist yet.
Result<int64_t> count_tickets_readonly(const std::string& db_path);

}  // namespace mb::itest
