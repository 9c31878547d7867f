// File: tests/integration/imap_test.cpp — IMAP against the private Dovecot: the ingest suite
// over IMAPS and over STARTTLS, then what only IMAP checks (sign-in failure, certificate
// and host-name checks, test-connection, and exactly-once across a SIGKILL).
#include <signal.h>

#include <algorithm>
#include <cctype>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include "connectors/registry.h"
#include "core/config.h"
#include "tests/integration/harness.h"
#include "tests/integration/ingest_suite.h"
#include "tests/status_matchers.h"
#include "tests/unit/core/script_server.h"

namespace mb::itest {
namespace {

using ::mb::testing::IsOk;
using ::mb::testing::StatusIs;
using ::testing::AnyOf;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr const char* kPasswordVar = "MB_TEST_PASSWORD";

// Dovecot reached through the harness, with one security mode.
class DovecotImap : public MailServer {
 public:
  explicit DovecotImap(std::string security) : security_(std::move(security)) {
    auto env = load_harness();
    if (env.ok()) env_ = *env;
  }
  Status deliver(const std::string& user, const std::string& raw) override {
    return itest::deliver(env_, user, raw);
  }
  Result<std::vector<ServerMessage>> list(const std::string& user,
                                          const std::string& folder) override {
    return list_folder(env_, user, folder);
  }
  std::string mailbox_toml(const std::string& name, const std::string& user,
                           const std::string& after, int max_per_poll) override {
    return imap_mailbox_toml(env_, {.name = name, .user = user, .security = security_,
                                    .after = after, .max_per_poll = max_per_poll});
  }
  std::vector<std::pair<std::string, std::string>> secrets_env() const override {
    return {{kPasswordVar, env_.password}};
  }
  std::string fetch_trace() const override { return "UID FETCH"; }

 private:
  std::string security_;
  HarnessEnv env_;
};

INSTANTIATE_TEST_SUITE_P(
    Imap, IngestSuite,
    ::testing::Values(
        MailServerParam{"imaps", [] { return std::make_unique<DovecotImap>("tls"); }},
        MailServerParam{"starttls", [] { return std::make_unique<DovecotImap>("starttls"); }}),
    param_name);

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

// Captures spdlog output (protocol traces included) for the life of the object.
class LogCapture {
 public:
  LogCapture() : previous_(spdlog::default_logger()) {
    auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(out_);
    auto logger = std::make_shared<spdlog::logger>("capture", sink);
    logger->set_level(spdlog::level::trace);
    spdlog::set_default_logger(logger);
  }
  ~LogCapture() { spdlog::set_default_logger(previous_); }
  std::string text() const { return out_.str(); }
  // Lines of the log holding `needle`.
  std::vector<std::string> lines_with(const std::string& needle) const {
    std::vector<std::string> found;
    std::istringstream in(out_.str());
    for (std::string l; std::getline(in, l);) {
      if (l.find(needle) != std::string::npos) found.push_back(l);
    }
    return found;
  }

 private:
  std::ostringstream out_;
  std::shared_ptr<spdlog::logger> previous_;
};

// A message of about `bytes` bytes in 100-character lines.
std::string big_message(const std::string& subject, size_t bytes) {
  std::string text;
  while (text.size() < bytes) text += std::string(98, 'x') + "\n";
  return make_message({.subject = subject, .text = text});
}

// Fetches every pending key of `mbx`: key → its status.
std::map<std::string, Status> fetch_statuses(Mailbox& mbx, std::vector<std::string>* keys) {
  std::map<std::string, Status> got;
  auto p = mbx.list_pending(10, "");
  EXPECT_THAT(p, IsOk());
  if (!p.ok()) return got;
  *keys = p->keys;
  Status s = mbx.fetch(p->keys, [&](const std::string& key, Result<std::string> raw) {
    got[key] = raw.status();
    return Status::Ok();
  });
  EXPECT_THAT(s, IsOk());
  return got;
}

// Fixture for the IMAP-only tests: one fresh user and store per test.
class ImapTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto env = load_harness();
    ASSERT_THAT(env, IsOk());
    env_ = *env;
    user_ = unique_user();
    dir_ = std::make_unique<TempDir>();
  }
  void TearDown() override {
    if (HasFailure() && dir_) {
      dir_->keep();
      std::fprintf(stderr, "kept %s (mail user %s)\n", dir_->path().c_str(), user_.c_str());
    }
  }

  ImapBox box(const std::string& security = "tls") {
    ImapBox b;
    b.name = "support";
    b.user = user_;
    b.security = security;
    return b;
  }
  void configure(const ImapBox& b) {
    ASSERT_THAT(write_file(config(), config_toml(db(), imap_mailbox_toml(env_, b))), IsOk());
  }
  std::string config() const { return dir_->file("mailbridge.toml"); }
  std::string db() const { return dir_->file("mailbridge.db"); }
  RunOptions options(const std::string& password) const {
    RunOptions o;
    o.env = {{kPasswordVar, password}};
    o.cwd = dir_->path();
    return o;
  }
  RunResult mailbridge(const std::vector<std::string>& args,
                       const std::string& password_override = "") {
    std::vector<std::string> full = {"--config", config()};
    full.insert(full.end(), args.begin(), args.end());
    return run_mailbridge(full, options(password_override.empty() ? env_.password
                                                                   : password_override));
  }
  // Number of tickets per `tickets list --json`.
  size_t ticket_count() {
    RunResult r = mailbridge({"tickets", "list", "--json"});
    EXPECT_EQ(r.exit_code, 0) << r.describe();
    auto j = parse_json(r.out);
    EXPECT_TRUE(j.is_array()) << r.out;
    return j.is_array() ? j.size() : 0;
  }
  void deliver_one(const std::string& subject) {
    ASSERT_THAT(deliver(env_, user_, make_message({.subject = subject, .text = "Hello.\n"})),
                IsOk());
  }
  // The message is still in INBOX and not \Seen: nothing was fetched or acted on.
  void expect_untouched(const std::string& subject) {
    auto inbox = list_folder(env_, user_, "INBOX");
    ASSERT_THAT(inbox, IsOk());
    ASSERT_EQ(inbox->size(), 1u);
    EXPECT_EQ(inbox->front().subject, subject);
    EXPECT_FALSE(inbox->front().seen) << inbox->front().file;
  }

  HarnessEnv env_;
  std::string user_;
  std::unique_ptr<TempDir> dir_;
};

TEST_F(ImapTest, WrongPasswordExits3WithoutPrintingIt) {
  configure(box());
  deliver_one("Wrong password test");
  const std::string wrong = fmt::format("Wr0ng-{}-pw", ::getpid());

  for (const std::vector<std::string>& cmd :
       {std::vector<std::string>{"sync", "--once"}, std::vector<std::string>{"test-connection"}}) {
    RunResult r = mailbridge(cmd, wrong);
    SCOPED_TRACE(cmd[0]);
    EXPECT_EQ(r.exit_code, 3) << r.describe();
    std::string all = r.out + r.err;
    EXPECT_THAT(lower(all), AnyOf(HasSubstr("authenticat"), HasSubstr("password"),
                                  HasSubstr("credential"), HasSubstr("sign-in"),
                                  HasSubstr("login")))
        << r.describe();
    EXPECT_THAT(all, Not(HasSubstr(wrong)));
    EXPECT_THAT(all, Not(HasSubstr(env_.password)));
  }
  expect_untouched("Wrong password test");
  EXPECT_EQ(ticket_count(), 0u);
}

// Certificate and host-name failures, over implicit TLS and over STARTTLS (where a client
// that skipped the upgrade would wrongly succeed).
class ImapTlsFailureTest : public ImapTest,
                           public ::testing::WithParamInterface<std::string> {};

TEST_P(ImapTlsFailureTest, UntrustedCaExits4AndFetchesNothing) {
  ImapBox b = box(GetParam());
  b.ca_file = env_.other_ca_file;
  configure(b);
  deliver_one("Untrusted CA test");

  RunResult r = mailbridge({"sync", "--once"});
  EXPECT_EQ(r.exit_code, 4) << r.describe();
  EXPECT_THAT(lower(r.out + r.err), AnyOf(HasSubstr("certificate"), HasSubstr("verif")))
      << r.describe();
  RunResult t = mailbridge({"test-connection"});
  EXPECT_EQ(t.exit_code, 4) << t.describe();

  expect_untouched("Untrusted CA test");
  EXPECT_EQ(ticket_count(), 0u);
  EXPECT_EQ(count_logins(env_, user_, true) + count_logins(env_, user_, false), 0)
      << "signed in despite the untrusted certificate";
}

TEST_P(ImapTlsFailureTest, HostnameMismatchExits4AndFetchesNothing) {
  ImapBox b = box(GetParam());
  b.host = "127.0.0.1";  // the certificate names only DNS:localhost
  configure(b);
  deliver_one("Hostname mismatch test");

  RunResult r = mailbridge({"sync", "--once"});
  EXPECT_EQ(r.exit_code, 4) << r.describe();
  EXPECT_THAT(lower(r.out + r.err), AnyOf(HasSubstr("host"), HasSubstr("certificate")))
      << r.describe();

  expect_untouched("Hostname mismatch test");
  EXPECT_EQ(ticket_count(), 0u);
  EXPECT_EQ(count_logins(env_, user_, true) + count_logins(env_, user_, false), 0)
      << "signed in despite the host-name mismatch";
}

INSTANTIATE_TEST_SUITE_P(Imap, ImapTlsFailureTest, ::testing::Values("tls", "starttls"));

TEST_F(ImapTest, StartTlsSignsInOverTls) {
  configure(box("starttls"));
  deliver_one("STARTTLS test");
  RunResult r = mailbridge({"sync", "--once"});
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_EQ(ticket_count(), 1u);
  EXPECT_GE(count_logins(env_, user_, true), 1);
  EXPECT_EQ(count_logins(env_, user_, false), 0) << "a login went over plain text";
}

TEST_F(ImapTest, TestConnectionReportsStepsAndSucceeds) {
  configure(box());
  deliver_one("Count me");
  ASSERT_THAT(deliver(env_, user_, make_message({.subject = "And me", .text = "x\n"})), IsOk());

  RunResult r = mailbridge({"test-connection"});
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  std::string out = lower(r.out);
  for (const char* step : {"resolve", "connect", "tls", "sign", "folder", "count"}) {
    EXPECT_THAT(out, HasSubstr(step)) << r.describe();
  }
  EXPECT_THAT(r.out, HasSubstr("2")) << "the message count is missing: " << r.out;
  EXPECT_THAT(r.out + r.err, Not(HasSubstr(env_.password)));
  // test-connection only looks: nothing imported, nothing marked.
  EXPECT_EQ(ticket_count(), 0u);
  auto inbox = list_folder(env_, user_, "INBOX");
  ASSERT_THAT(inbox, IsOk());
  for (const auto& m : *inbox) EXPECT_FALSE(m.seen) << m.file;
}

// SPEC §2 "exactly once": kill -9 in the middle of a 500-message pass, run again, and
// require every message to be exactly one ticket and moved exactly once.
TEST_F(ImapTest, SigkillMidSyncThenResumeLosesAndDuplicatesNothing) {
  constexpr int kMessages = 500;
  ImapBox b = box();
  b.after = "move:Processed";
  b.max_per_poll = kMessages;
  configure(b);
  std::set<std::string> expected;
  for (int i = 0; i < kMessages; ++i) {
    std::string subject = fmt::format("bulk message {:03}", i);
    expected.insert(subject);
    ASSERT_THAT(deliver(env_, user_, make_message({.subject = subject, .text = subject + "\n"})),
                IsOk());
  }

  auto proc = Process::start(mailbridge_bin(), {"--config", config(), "sync", "--once"},
                             options(env_.password));
  ASSERT_THAT(proc, IsOk());
  int64_t seen_count = -1;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while ((*proc)->running() && std::chrono::steady_clock::now() < deadline) {
    auto n = count_tickets_readonly(db());
    if (n.ok() && *n > 0 && *n < kMessages) {
      seen_count = *n;
      (*proc)->kill(SIGKILL);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  RunResult first = (*proc)->wait(std::chrono::seconds(30));
  ASSERT_GT(seen_count, 0) << "the first pass ended before it could be killed mid-way: "
                           << first.describe();
  EXPECT_EQ(first.signal, SIGKILL) << first.describe();

  RunResult second = mailbridge({"sync", "--once"});
  ASSERT_EQ(second.exit_code, 0) << second.describe();

  RunResult list = mailbridge({"tickets", "list", "--json"});
  ASSERT_EQ(list.exit_code, 0) << list.describe();
  auto tickets = parse_json(list.out);
  ASSERT_TRUE(tickets.is_array()) << list.out.substr(0, 2000);
  std::set<std::string> subjects;
  for (const auto& t : tickets) subjects.insert(t.value("subject", ""));
  EXPECT_EQ(tickets.size(), static_cast<size_t>(kMessages)) << "killed at " << seen_count;
  EXPECT_EQ(subjects, expected);

  auto inbox = list_folder(env_, user_, "INBOX");
  auto processed = list_folder(env_, user_, "Processed");
  ASSERT_THAT(inbox, IsOk());
  ASSERT_THAT(processed, IsOk());
  EXPECT_EQ(inbox->size(), 0u);
  std::multiset<std::string> moved;
  for (const auto& m : *processed) moved.insert(m.subject);
  EXPECT_EQ(moved.size(), static_cast<size_t>(kMessages));
  EXPECT_EQ(std::set<std::string>(moved.begin(), moved.end()), expected);
}

// [ingest] max_message_bytes reaches the IMAP connector through make_mailbox, and a message
// over it is not downloaded: the size check (UID FETCH RFC822.SIZE) answers for it, and the
// body FETCH that follows names only the small message.
TEST_F(ImapTest, MessageOverMaxMessageBytesIsNotDownloaded) {
  ASSERT_THAT(write_file(config(), config_toml(db(), imap_mailbox_toml(env_, box()) +
                                                         "\n[ingest]\nmax_message_bytes = 100000\n")),
              IsOk());
  deliver_one("Small one");
  ASSERT_THAT(deliver(env_, user_, big_message("Big one", 300000)), IsOk());
  ::setenv(kPasswordVar, env_.password.c_str(), 1);
  auto cfg = load_config(config());
  ASSERT_THAT(cfg, IsOk());
  auto mbx = make_mailbox(cfg->mailboxes.at(0), *cfg);
  ASSERT_THAT(mbx, IsOk());
  std::vector<std::string> keys;
  std::map<std::string, Status> got;
  LogCapture log;
  got = fetch_statuses(**mbx, &keys);
  (*mbx)->close();
  ASSERT_EQ(keys.size(), 2u);
  EXPECT_THAT(got[keys[0]], IsOk());
  EXPECT_THAT(got[keys[1]], StatusIs(ErrorKind::kTooLarge, HasSubstr("max_message_bytes (100000)")));
  EXPECT_EQ(got[keys[1]].scope(), ErrorScope::kMessage);
  EXPECT_THAT(got[keys[1]].message(), Not(HasSubstr("found while downloading")));
  auto sizes = log.lines_with("(UID RFC822.SIZE)");
  ASSERT_EQ(sizes.size(), 1u) << log.text();
  auto bodies = log.lines_with("(UID BODY.PEEK[])");
  ASSERT_EQ(bodies.size(), 1u) << log.text();
  std::string small_uid = keys[0].substr(keys[0].find(':') + 1);
  EXPECT_THAT(bodies[0], HasSubstr("UID FETCH " + small_uid + " (UID BODY.PEEK[])"));
  for (const std::string& l : log.lines_with("S: <")) {  // literals: "S: <N bytes>"
    uint64_t n = std::strtoull(l.c_str() + l.find("S: <") + 4, nullptr, 10);
    EXPECT_LT(n, 100000u) << "a body over the limit crossed the wire: " << l;
  }
}

// A mailbox whose server trickles its greeting one byte at a time used to keep `sync --once`
// running for ever. With the step deadline it ends that mailbox's pass with a network error
// naming the step; the other mailbox is synced and the process exits.
TEST_F(ImapTest, TricklingServerDoesNotKeepSyncAlive) {
  mb::testing::ScriptServer slow([](mb::testing::Peer& p) {
    p.trickle("* OK a greeting that never ends ", std::chrono::milliseconds(200), true);
  });
  std::string hung = fmt::format(
      "[[mailbox]]\nname = \"hung\"\ntype = \"imap\"\nhost = \"127.0.0.1\"\nport = {}\n"
      "security = \"none\"\nauth = \"password\"\nuser = \"nobody\"\n"
      "password = \"env:MB_TEST_PASSWORD\"\nafter = \"mark-read\"\n"
      "timeouts = {{ connect = \"2s\", response = \"2s\" }}\n",
      slow.port());
  ASSERT_THAT(write_file(config(), config_toml(db(), imap_mailbox_toml(env_, box()) + "\n" + hung)),
              IsOk());
  deliver_one("Next to a hung mailbox");
  auto started = std::chrono::steady_clock::now();
  RunResult r = mailbridge({"sync", "--once"});
  auto took = std::chrono::steady_clock::now() - started;
  EXPECT_FALSE(r.timed_out) << r.describe();
  EXPECT_LT(took, std::chrono::seconds(60)) << r.describe();
  EXPECT_THAT(r.err, HasSubstr("timed out waiting for the greeting after 2 s")) << r.describe();
  EXPECT_GE(slow.accepted(), 1);
  EXPECT_EQ(ticket_count(), 1u);
}

}  // namespace
}  // namespace mb::itest
