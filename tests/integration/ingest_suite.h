// File: tests/integration/ingest_suite.h — the connector-independent ingest suite: SPEC §2
// checked end to end through the mailbridge binary, against any mail server a connector
// reads (IMAP and POP3 on Dovecot, the Graph and EWS stand-ins).
//
// A connector's test file implements MailServer for its server and instantiates the suite:
//
//   INSTANTIATE_TEST_SUITE_P(ImapTls, IngestSuite,
//       ::testing::Values(mb::itest::MailServerParam{"imaps", [] { return make_imap(...); }}),
//       mb::itest::param_name);
//
// The tests themselves live in ingest_suite.cpp.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/integration/harness.h"

namespace mb::itest {

// A mail server the suite can fill and inspect directly (not through the connector).
class MailServer {
 public:
  virtual ~MailServer() = default;
  // Puts a message into user's inbox as new (unseen) mail.
  virtual Status deliver(const std::string& user, const std::string& raw) = 0;
  // What is in folder ("INBOX", "Processed") of user right now.
  virtual Result<std::vector<ServerMessage>> list(const std::string& user,
                                                  const std::string& folder) = 0;
  // The [[mailbox]] table (plus any [[app]] it needs) for mailbox `name` reading user's
  // inbox with post-action `after`.
  virtual std::string mailbox_toml(const std::string& name, const std::string& user,
                                   const std::string& after, int max_per_poll) = 0;
  // Environment variables the configuration's secrets refer to ("env:NAME").
  virtual std::vector<std::pair<std::string, std::string>> secrets_env() const = 0;
  // Protocol abilities: POP3 has neither a \Seen flag nor folders.
  virtual bool has_seen_flag() const { return true; }
  virtual bool has_folders() const { return true; }
  // Whether the connector carries out post-action `after` ("mark-read", "delete",
  // "move:Processed", "leave"); the suite's test of each one is skipped when it does not,
  // and the other tests use mark-read where it can, else leave. The default: mark-read
  // with a \Seen flag, move: with folders, delete and leave always.
  virtual bool supports_after(const std::string& after) const;
  // What `sync --log-level trace` prints for each message it downloads ("UID FETCH",
  // "RETR "); empty when the connector does not trace its requests.
  virtual std::string fetch_trace() const { return {}; }
};

struct MailServerParam {
  std::string name;  // test-name suffix: letters, digits, underscores
  std::function<std::unique_ptr<MailServer>()> make;
};

// Shown by GoogleTest (and ctest) beside each test instead of the struct's raw bytes.
inline void PrintTo(const MailServerParam& p, std::ostream* os) { *os << p.name; }

inline std::string param_name(const ::testing::TestParamInfo<MailServerParam>& info) {
  return info.param.name;
}

// Fixture: a fresh user (mailbox) and a fresh store per test.
class IngestSuite : public ::testing::TestWithParam<MailServerParam> {
 protected:
  void SetUp() override;
  void TearDown() override;

  // Writes mailbridge.toml for post-action `after` (empty: routine_after()).
  void configure(const std::string& after = "", int max_per_poll = 50);
  // The post-action of the tests that are not about post-actions: mark-read where the
  // connector does it, else leave.
  std::string routine_after() const;
  // mailbridge --config <toml> args...
  RunResult mailbridge(const std::vector<std::string>& args);
  // `sync --once`, asserting exit 0 (with stdout/stderr in the failure message).
  void sync_ok();
  void deliver(const MessageSpec& spec);
  void deliver_raw(const std::string& raw);
  std::vector<ServerMessage> folder(const std::string& name);

  // `tickets list --json`: the array (empty on a failure, which is also recorded).
  nlohmann::json tickets();
  // `tickets show ID --json`.
  nlohmann::json ticket(int64_t id);
  // This mailbox's object from `status --json`.
  nlohmann::json mailbox_status();
  // Sum of `skipped` counts in mailbox_status().
  int64_t skipped_total();

  std::unique_ptr<MailServer> server_;
  std::string user_;
  std::unique_ptr<TempDir> dir_;
  std::string config_path_;
  std::string db_path_;
  std::string mailbox_name_ = "support";
  // Appended to the generated configuration by configure() (e.g. [filters], [[user]]).
  std::string extra_toml_;
};

}  // namespace mb::itest
