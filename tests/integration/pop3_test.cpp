// File: tests/integration/pop3_test.cpp — POP3 against the private Dovecot: the ingest
// suite over POP3S and POP3+STLS, then what only POP3 checks: "leave" over three runs with
// mail arriving between them, exactly-once across a SIGKILL, DELE made final only by QUIT
// (a connection cut before QUIT deletes nothing and duplicates nothing), XOAUTH2 with a
// token of the test OAuth server, a wrong password counted as an auth failure, and
// test-connection.
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

#include "auth/token_cache.h"
#include "connectors/pop3/pop3_mailbox.h"
#include "connectors/registry.h"
#include "core/config.h"
#include "core/ingest.h"
#include "core/store.h"
#include "tests/integration/harness.h"
#include "tests/integration/ingest_suite.h"
#include "tests/status_matchers.h"

namespace mb::itest {
namespace {

using ::mb::testing::IsOk;
using ::mb::testing::StatusIs;
using ::testing::AllOf;
using ::testing::AnyOf;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr const char* kPasswordVar = "MB_TEST_PASSWORD";

struct Pop3Box {
  std::string name = "support";
  std::string user;
  std::string security = "tls";  // tls | starttls
  std::string after;             // empty: the pop3 default (leave)
  int max_per_poll = 50;
  std::string password_ref = std::string("env:") + kPasswordVar;
};

std::string pop3_mailbox_toml(const HarnessEnv& env, const Pop3Box& b) {
  uint16_t port = b.security == "tls" ? env.pop3s_port : env.pop3_port;
  std::string after = b.after.empty() ? "" : "after = " + toml_quote(b.after) + "\n";
  return fmt::format(
      "[[mailbox]]\nname = {}\ntype = \"pop3\"\nhost = \"localhost\"\nport = {}\n"
      "security = {}\nauth = \"password\"\nuser = {}\npassword = {}\n{}max_per_poll = {}\n"
      "poll_interval = \"1m\"\ntls = {{ verify = true, ca_file = {}, min_version = \"1.2\" }}\n"
      "timeouts = {{ connect = \"15s\", response = \"30s\" }}\n",
      toml_quote(b.name), port, toml_quote(b.security), toml_quote(b.user),
      toml_quote(b.password_ref), after, b.max_per_poll, toml_quote(env.ca_file));
}

// Dovecot's POP3 reached through the harness, with one security mode.
class DovecotPop3 : public MailServer {
 public:
  explicit DovecotPop3(std::string security) : security_(std::move(security)) {
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
  // The suite's "mark-read" means "processed, kept on the server": for POP3 that is the
  // default post-action, leave (check-config refuses mark-read for pop3).
  std::string mailbox_toml(const std::string& name, const std::string& user,
                           const std::string& after, int max_per_poll) override {
    return pop3_mailbox_toml(env_, {.name = name, .user = user, .security = security_,
                                    .after = after == "mark-read" ? "" : after,
                                    .max_per_poll = max_per_poll});
  }
  std::vector<std::pair<std::string, std::string>> secrets_env() const override {
    return {{kPasswordVar, env_.password}};
  }
  bool has_seen_flag() const override { return false; }
  bool has_folders() const override { return false; }
  std::string fetch_trace() const override { return "RETR "; }

 private:
  std::string security_;
  HarnessEnv env_;
};

INSTANTIATE_TEST_SUITE_P(
    Pop3, IngestSuite,
    ::testing::Values(
        MailServerParam{"pop3s", [] { return std::make_unique<DovecotPop3>("tls"); }},
        MailServerParam{"stls", [] { return std::make_unique<DovecotPop3>("starttls"); }}),
    param_name);

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

// Forwards to a real stream; once armed, a QUIT is not sent: the connection is cut instead,
// as a crash between the commit and QUIT would.
class QuitCutter : public Stream {
 public:
  QuitCutter(std::unique_ptr<Stream> inner, bool* armed) : inner_(std::move(inner)), armed_(armed) {}
  Result<size_t> read_some(char* buf, size_t cap) override { return inner_->read_some(buf, cap); }
  Status write_all(std::string_view data) override {
    if (*armed_ && data.rfind("QUIT", 0) == 0) {
      inner_->close();
      return Status(ErrorKind::kNetwork, "connection cut by the test before QUIT",
                    ErrorScope::kConnection);
    }
    return inner_->write_all(data);
  }
  void set_timeout(std::chrono::milliseconds t) override { inner_->set_timeout(t); }
  void set_deadline(std::optional<std::chrono::steady_clock::time_point> at) override {
    inner_->set_deadline(at);
  }
  Status start_tls(const std::string& h, const TlsOptions& o) override { return inner_->start_tls(h, o); }
  bool is_tls() const override { return inner_->is_tls(); }
  std::string tls_summary() const override { return inner_->tls_summary(); }
  void close() override { inner_->close(); }

 private:
  std::unique_ptr<Stream> inner_;
  bool* armed_;
};

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

class Pop3Test : public ::testing::Test {
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

  Pop3Box box(const std::string& after = "", const std::string& security = "tls") {
    Pop3Box b;
    b.user = user_;
    b.after = after;
    b.security = security;
    return b;
  }
  void configure(const Pop3Box& b) {
    ASSERT_THAT(write_file(config(), config_toml(db(), pop3_mailbox_toml(env_, b))), IsOk());
  }
  std::string config() const { return dir_->file("mailbridge.toml"); }
  std::string db() const { return dir_->file("mailbridge.db"); }
  RunOptions options(const std::string& password) const {
    RunOptions o;
    o.env = {{kPasswordVar, password}};
    o.cwd = dir_->path();
    return o;
  }
  RunResult mailbridge(const std::vector<std::string>& args, const std::string& password = "") {
    std::vector<std::string> full = {"--config", config()};
    full.insert(full.end(), args.begin(), args.end());
    return run_mailbridge(full, options(password.empty() ? env_.password : password));
  }
  nlohmann::json tickets() {
    RunResult r = mailbridge({"tickets", "list", "--json"});
    EXPECT_EQ(r.exit_code, 0) << r.describe();
    auto j = parse_json(r.out);
    EXPECT_TRUE(j.is_array()) << r.out.substr(0, 2000);
    return j.is_array() ? j : nlohmann::json::array();
  }
  std::multiset<std::string> ticket_subjects() {
    std::multiset<std::string> s;
    for (const auto& t : tickets()) s.insert(t.value("subject", ""));
    return s;
  }
  void deliver_subject(const std::string& subject) {
    ASSERT_THAT(deliver(env_, user_, make_message({.subject = subject, .text = subject + "\n"})),
                IsOk());
  }
  size_t inbox_size() {
    auto inbox = list_folder(env_, user_, "INBOX");
    EXPECT_THAT(inbox, IsOk());
    return inbox.ok() ? inbox->size() : 0;
  }

  HarnessEnv env_;
  std::string user_;
  std::unique_ptr<TempDir> dir_;
};

TEST_F(Pop3Test, LeaveOverThreeRunsImportsEachMessageOnce) {
  Pop3Box b = box("leave");
  configure(b);
  std::multiset<std::string> expected;
  int n = 0;
  for (int run = 0; run < 3; ++run) {
    for (int i = 0; i < 3 + run; ++i) {
      std::string subject = fmt::format("leave run {} message {}", run, n++);
      expected.insert(subject);
      deliver_subject(subject);
    }
    RunResult r = mailbridge({"sync", "--once"});
    ASSERT_EQ(r.exit_code, 0) << r.describe();
    EXPECT_EQ(ticket_subjects(), expected) << "after run " << run;
  }
  EXPECT_EQ(inbox_size(), expected.size()) << "leave must keep every message on the server";
  // A fourth run with nothing new imports nothing.
  RunResult again = mailbridge({"sync", "--once"});
  ASSERT_EQ(again.exit_code, 0) << again.describe();
  EXPECT_EQ(ticket_subjects(), expected);
}

// SPEC §2 "exactly once": kill -9 in the middle of a pass that deletes, run again, and
// require every message to be exactly one ticket and gone from the server.
TEST_F(Pop3Test, SigkillMidSyncThenResumeLosesAndDuplicatesNothing) {
  constexpr int kMessages = 400;
  Pop3Box b = box("delete");
  b.max_per_poll = kMessages;
  configure(b);
  std::multiset<std::string> expected;
  for (int i = 0; i < kMessages; ++i) {
    std::string subject = fmt::format("bulk message {:03}", i);
    expected.insert(subject);
    deliver_subject(subject);
  }
  auto proc = Process::start(mailbridge_bin(), {"--config", config(), "sync", "--once"},
                             options(env_.password));
  ASSERT_THAT(proc, IsOk());
  int64_t seen_count = -1;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while ((*proc)->running() && std::chrono::steady_clock::now() < deadline) {
    auto n = count_tickets_readonly(db());
    if (n.ok() && *n > 30 && *n < kMessages) {
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
  EXPECT_EQ(ticket_subjects(), expected) << "killed at " << seen_count;
  EXPECT_EQ(inbox_size(), 0u);
}

// The commits are made, DELE is sent, and the connection is cut where QUIT would go: the
// server keeps every message (no UPDATE state), the ledger says the deletes are not done,
// and the next pass deletes them without a second ticket.
TEST_F(Pop3Test, DeleteOnlyTakesEffectAtQuitAndIsRedoneNextRun) {
  constexpr int kMessages = 7;
  configure(box("delete"));
  for (int i = 0; i < kMessages; ++i) deliver_subject(fmt::format("quit test {}", i));
  ::setenv(kPasswordVar, env_.password.c_str(), 1);
  auto cfg = load_config(config());
  ASSERT_THAT(cfg, IsOk());
  const MailboxConfig& mcfg = cfg->mailboxes.at(0);
  auto store = Store::open(db());
  ASSERT_THAT(store, IsOk());
  bool armed = true;
  auto factory = [&]() -> Result<std::unique_ptr<Stream>> {
    auto s = connect_stream(mcfg.host, mcfg.port, mcfg.security, mcfg.tls, mcfg.timeouts);
    if (!s.ok()) return s.status();
    return std::unique_ptr<Stream>(std::make_unique<QuitCutter>(std::move(*s), &armed));
  };
  SignIn sign_in;
  sign_in.password = env_.password;
  {
    auto mbx = make_pop3_mailbox(mcfg, sign_in, factory);
    auto first = sync_mailbox(*mbx, mcfg, *cfg, **store);
    EXPECT_THAT(first.status(), StatusIs(ErrorKind::kNetwork, HasSubstr("QUIT")));
  }
  EXPECT_EQ(inbox_size(), static_cast<size_t>(kMessages)) << "deleted without QUIT";
  auto undone = (*store)->pending_post_actions(mcfg.name);
  ASSERT_THAT(undone, IsOk());
  EXPECT_EQ(undone->size(), static_cast<size_t>(kMessages));
  auto listed = (*store)->list_tickets();
  ASSERT_THAT(listed, IsOk());
  EXPECT_EQ(listed->size(), static_cast<size_t>(kMessages));

  armed = false;
  auto mbx = make_pop3_mailbox(mcfg, sign_in, factory);
  auto second = sync_mailbox(*mbx, mcfg, *cfg, **store);
  ASSERT_THAT(second.status(), IsOk());
  EXPECT_EQ(second->imported, 0);
  EXPECT_EQ(inbox_size(), 0u);
  listed = (*store)->list_tickets();
  ASSERT_THAT(listed, IsOk());
  EXPECT_EQ(listed->size(), static_cast<size_t>(kMessages)) << "a ticket was duplicated";
  undone = (*store)->pending_post_actions(mcfg.name);
  ASSERT_THAT(undone, IsOk());
  EXPECT_TRUE(undone->empty());
}

TEST_F(Pop3Test, WrongPasswordIsCountedAsAnAuthFailureAndNotPrinted) {
  configure(box("delete"));
  deliver_subject("wrong password");
  const std::string wrong = fmt::format("Wr0ng-{}-pw", ::getpid());
  RunResult r = mailbridge({"sync", "--once"}, wrong);
  EXPECT_EQ(r.exit_code, 3) << r.describe();
  EXPECT_THAT(r.out + r.err, AllOf(Not(HasSubstr(wrong)), Not(HasSubstr(env_.password))));
  RunResult st = mailbridge({"status", "--json"});
  ASSERT_EQ(st.exit_code, 0) << st.describe();
  auto j = parse_json(st.out);
  nlohmann::json mine;
  for (const auto& m : j.is_array() ? j : nlohmann::json::array({j})) {
    if (m.is_object() && m.value("name", "") == "support") mine = m;
  }
  ASSERT_TRUE(mine.is_object()) << st.out;
  EXPECT_EQ(mine.value("consecutive_auth_failures", int64_t{-1}), 1) << st.out;
  RunResult tc = mailbridge({"test-connection"}, wrong);
  EXPECT_EQ(tc.exit_code, 3) << tc.describe();
  EXPECT_EQ(inbox_size(), 1u);
  EXPECT_TRUE(tickets().empty());
}

TEST_F(Pop3Test, TestConnectionReportsStepsOverPop3sAndStls) {
  deliver_subject("count me");
  deliver_subject("and me");
  for (const char* security : {"tls", "starttls"}) {
    SCOPED_TRACE(security);
    configure(box("", security));
    RunResult r = mailbridge({"test-connection"});
    ASSERT_EQ(r.exit_code, 0) << r.describe();
    std::string out = lower(r.out);
    for (const char* step : {"resolve", "connect", "tls", "capabilities", "sign-in", "uidl",
                             "count"}) {
      EXPECT_THAT(out, HasSubstr(step)) << r.describe();
    }
    EXPECT_THAT(out, AllOf(HasSubstr("2 messages"), HasSubstr("cn=localhost")))
        << r.describe();
    EXPECT_THAT(r.out + r.err, Not(HasSubstr(env_.password)));
  }
  EXPECT_EQ(inbox_size(), 2u);
  EXPECT_TRUE(tickets().empty());
}

TEST_F(Pop3Test, ConfigRefusesMarkReadAndMoveSayingWhy) {
  for (const char* after : {"mark-read", "move:Processed"}) {
    configure(box(after));
    RunResult r = mailbridge({"check-config"});
    EXPECT_EQ(r.exit_code, 2) << r.describe();
    EXPECT_THAT(r.out + r.err, AnyOf(HasSubstr("no read flag"), HasSubstr("no folders")))
        << r.describe();
  }
}

// ---- XOAUTH2 with a token of the test OAuth server (Dovecot's oauth2 passdb) ----

class Pop3OAuthTest : public Pop3Test {
 protected:
  void SetUp() override {
    Pop3Test::SetUp();
    auto dovecot = read_server_env(env_.dir);
    if (!dovecot.ok() || (*dovecot)["MB_OAUTH2"] != "1") {
      GTEST_SKIP() << "Dovecot runs without its oauth2 passdb: run through ctest (fixture "
                      "servers)";
    }
    auto oauth = read_server_env((*dovecot)["MB_OAUTH_DIR"]);
    if (oauth.ok()) oauth_ = *oauth;
    ASSERT_FALSE(oauth_["MB_OAUTH_DEVICE_URL"].empty());
  }
  // An access token for user_ from the device-code grant, approved through the admin URL.
  std::string access_token() {
    const std::string ca = oauth_["MB_OAUTH_CA_FILE"];
    const std::string client = oauth_["MB_OAUTH_PUBLIC_CLIENT_ID"];
    auto started = curl_json({"--cacert", ca, "-d", "client_id=" + client, "--data-urlencode",
                              "scope=mail.access offline_access", oauth_["MB_OAUTH_DEVICE_URL"]});
    EXPECT_THAT(started, IsOk());
    if (!started.ok() || !started->contains("device_code")) return "";
    auto approved = curl_json({"-X", "POST", "-d",
                               "user_code=" + (*started)["user_code"].get<std::string>(), "-d",
                               "account=" + user_, oauth_["MB_OAUTH_ADMIN_URL"] + "/device/approve"});
    EXPECT_THAT(approved, IsOk());
    auto tokens = curl_json({"--cacert", ca, "-d", "client_id=" + client, "-d",
                             "grant_type=urn:ietf:params:oauth:grant-type:device_code", "-d",
                             "device_code=" + (*started)["device_code"].get<std::string>(),
                             oauth_["MB_OAUTH_TOKEN_URL"]});
    EXPECT_THAT(tokens, IsOk());
    if (!tokens.ok() || !tokens->contains("access_token")) return "";
    return (*tokens)["access_token"].get<std::string>();
  }
  MailboxConfig oauth_mailbox() {
    MailboxConfig m;
    m.name = "support";
    m.type = ConnectorType::kPop3;
    m.host = "localhost";
    m.port = env_.pop3s_port;
    m.security = Security::kTls;
    m.tls.ca_file = env_.ca_file;
    m.auth = AuthMethod::kOAuth2;
    m.user = user_;
    m.after = PostAction::leave();
    return m;
  }

  std::map<std::string, std::string> oauth_;
};

TEST_F(Pop3OAuthTest, Xoauth2TokenSignsInAndARefusedOneIsTokenRejected) {
  deliver_subject("oauth message");
  std::string token = access_token();
  ASSERT_FALSE(token.empty());
  std::vector<std::string> offered = {"not-a-valid-token-0000", token};
  size_t used = 0;
  SignIn sign_in;
  // AuthContext::with_token's contract: once more with a fresh token after a rejection.
  sign_in.with_token = [&](const std::function<Status(const std::string&)>& fn) {
    Status s = fn(offered.at(used++));
    if (is_token_rejected(s)) s = fn(offered.at(used++));
    return s;
  };
  auto mbx = make_pop3_mailbox(oauth_mailbox(), sign_in);
  auto pending = mbx->list_pending(10, "");
  ASSERT_THAT(pending, IsOk());
  EXPECT_EQ(used, 2u) << "the refused token was not reported as rejected";
  ASSERT_EQ(pending->keys.size(), 1u);
  std::string body;
  ASSERT_THAT(mbx->fetch(pending->keys, [&](const std::string&, Result<std::string> raw) {
    if (raw.ok()) body = *raw;
    return raw.status();
  }), IsOk());
  EXPECT_THAT(body, HasSubstr("Subject: oauth message"));
  mbx->close();

  SignIn only_bad;
  only_bad.with_token = [](const std::function<Status(const std::string&)>& fn) {
    return fn("not-a-valid-token-0000");
  };
  auto refused = make_pop3_mailbox(oauth_mailbox(), only_bad)->list_pending(10, "");
  EXPECT_THAT(refused.status(), StatusIs(ErrorKind::kAuth, HasSubstr("token rejected")));
  EXPECT_THAT(refused.status().message(), Not(HasSubstr(token)));
}

// [ingest] max_message_bytes reaches the POP3 connector through make_mailbox, and a message
// over it by LIST is answered kTooLarge without a RETR.
TEST_F(Pop3Test, MessageOverMaxMessageBytesIsNotRetrieved) {
  ASSERT_THAT(write_file(config(), config_toml(db(), pop3_mailbox_toml(env_, box()) +
                                                         "\n[ingest]\nmax_message_bytes = 100000\n")),
              IsOk());
  deliver_subject("Small one");
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
  EXPECT_THAT(got[keys[1]], StatusIs(ErrorKind::kTooLarge, HasSubstr("by LIST")));
  EXPECT_EQ(log.lines_with("C: RETR 1").size(), 1u) << log.text();
  EXPECT_TRUE(log.lines_with("C: RETR 2").empty()) << log.text();
}

// A message with a line of 2 MiB (over the old 1 MiB line bound) is retrieved whole, as
// over IMAP, and the message behind it too.
TEST_F(Pop3Test, MessageWithALineOverOneMebibyteIsRetrieved) {
  configure(box());
  const std::string line(2u << 20, 'L');
  std::string raw = "From: a@example.com\r\nTo: support@example.com\r\nSubject: Long line\r\n"
                    "Message-ID: <long-line@example.com>\r\n\r\n" + line + "\r\nend\r\n";
  ASSERT_THAT(deliver(env_, user_, raw), IsOk());
  deliver_subject("Behind it");
  ::setenv(kPasswordVar, env_.password.c_str(), 1);
  auto cfg = load_config(config());
  ASSERT_THAT(cfg, IsOk());
  auto mbx = make_mailbox(cfg->mailboxes.at(0), *cfg);
  ASSERT_THAT(mbx, IsOk());
  auto p = (*mbx)->list_pending(10, "");
  ASSERT_THAT(p, IsOk());
  ASSERT_EQ(p->keys.size(), 2u);
  std::vector<std::string> bodies;
  ASSERT_THAT((*mbx)->fetch(p->keys, [&](const std::string&, Result<std::string> raw) {
    EXPECT_THAT(raw, IsOk());
    bodies.push_back(raw.ok() ? *raw : raw.status().to_string());
    return Status::Ok();
  }),
              IsOk());
  (*mbx)->close();
  ASSERT_EQ(bodies.size(), 2u);
  EXPECT_NE(bodies[0].find(line + "\r\nend\r\n"), std::string::npos);
  EXPECT_THAT(bodies[1], HasSubstr("Behind it"));
  RunResult sync = mailbridge({"sync", "--once"});
  EXPECT_EQ(sync.exit_code, 0) << sync.describe();
  EXPECT_EQ(ticket_subjects(), (std::multiset<std::string>{"Long line", "Behind it"}));
}

}  // namespace
}  // namespace mb::itest
