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
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/status.h"

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

// Runs the mailbridge binary (MB_MAILBRIDGE_BIN) with args and waits for it.
RunResult run_mailbridge(const std::vector<std::string>& args, const RunOptions& options);
std::string mailbridge_bin();

// Parses JSON output; a discarded value (is_discarded()) on a parse error.
nlohmann::json parse_json(const std::string& text);

// Reads `SELECT count(*) FROM tickets` from the SQLite store read-only; an error when the
// file or table does not exist yet.
Result<int64_t> count_tickets_readonly(const std::string& db_path);

}  // namespace mb::itest
