// File: tests/integration/auth_alert_test.cpp — the auth-failure alert of SPEC §3 through the
// real binary against the private Dovecot: three failed sign-ins open one alert ticket and
// pause the mailbox, a paused sync makes no login attempt, and test-connection with the
// fixed password resumes it with a note on the alert ticket.
#include <chrono>
#include <sstream>
#include <thread>

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/integration/harness.h"
#include "tests/status_matchers.h"

namespace mb::itest {
namespace {

using ::mb::testing::IsOk;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr const char* kPasswordVar = "MB_TEST_PASSWORD";

class AuthAlertTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto env = load_harness();
    ASSERT_THAT(env, IsOk());
    env_ = *env;
    user_ = unique_user();
    dir_ = std::make_unique<TempDir>();
    ImapBox b;
    b.name = "support";
    b.user = user_;
    ASSERT_THAT(write_file(config(), config_toml(db(), imap_mailbox_toml(env_, b))), IsOk());
  }
  void TearDown() override {
    if (HasFailure() && dir_) {
      dir_->keep();
      std::fprintf(stderr, "kept %s (mail user %s)\n", dir_->path().c_str(), user_.c_str());
    }
  }

  std::string config() const { return dir_->file("mailbridge.toml"); }
  std::string db() const { return dir_->file("mailbridge.db"); }
  RunResult mailbridge(const std::vector<std::string>& args, const std::string& password) {
    std::vector<std::string> full = {"--config", config()};
    full.insert(full.end(), args.begin(), args.end());
    RunOptions o;
    o.env = {{kPasswordVar, password}};
    o.cwd = dir_->path();
    return run_mailbridge(full, o);
  }
  nlohmann::json json_of(const std::vector<std::string>& args) {
    RunResult r = mailbridge(args, env_.password);
    EXPECT_EQ(r.exit_code, 0) << r.describe();
    return parse_json(r.out);
  }
  // Dovecot's lines about this user's sign-ins that failed.
  int failed_logins() {
    auto log = read_file(env_.log_file);
    if (!log.ok()) return 0;
    std::istringstream in(*log);
    std::string line;
    int n = 0;
    while (std::getline(in, line)) {
      if (line.find("user=<" + user_ + ">") != std::string::npos &&
          line.find("auth failed") != std::string::npos) {
        ++n;
      }
    }
    return n;
  }
  // Dovecot logs a login when the connection ends, a moment after the client exits.
  template <typename Fn>
  bool wait_until(Fn&& done) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (!done()) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return true;
  }

  HarnessEnv env_;
  std::string user_;
  std::unique_ptr<TempDir> dir_;
};

TEST_F(AuthAlertTest, ThreeFailuresOpenOneAlertPauseAndTestConnectionResumes) {
  ASSERT_THAT(deliver(env_, user_, make_message({.subject = "Waiting mail", .text = "Hi.\n"})),
              IsOk());
  const std::string wrong = fmt::format("Wr0ng-{}-pw", ::getpid());
  for (int i = 1; i <= 3; ++i) {
    RunResult r = mailbridge({"sync", "--once"}, wrong);
    SCOPED_TRACE(i);
    EXPECT_EQ(r.exit_code, 3) << r.describe();
    EXPECT_THAT(r.out + r.err, AllOf(Not(HasSubstr(wrong)), Not(HasSubstr(env_.password))));
    if (i == 3) {
      EXPECT_THAT(r.err, HasSubstr("alert ticket #")) << r.describe();
    }
  }
  ASSERT_TRUE(wait_until([&] { return failed_logins() >= 3; })) << failed_logins();

  nlohmann::json status = json_of({"status", "--json"});
  ASSERT_TRUE(status.is_array() && status.size() == 1) << status.dump();
  EXPECT_EQ(status[0]["state"], "auth-failed");
  EXPECT_EQ(status[0]["consecutive_auth_failures"], 3);
  nlohmann::json tickets = json_of({"tickets", "list", "--json"});
  ASSERT_TRUE(tickets.is_array() && tickets.size() == 1) << tickets.dump();
  EXPECT_EQ(tickets[0]["source"], "System - Email Monitor");
  EXPECT_EQ(tickets[0]["subject"], "Mailbox support cannot sign in");
  const int64_t alert = tickets[0]["id"].get<int64_t>();
  EXPECT_EQ(status[0]["alert_ticket"], alert);
  RunResult human = mailbridge({"status"}, env_.password);
  EXPECT_THAT(human.out, AllOf(HasSubstr("auth-failed"),
                               HasSubstr(fmt::format("alert ticket #{}", alert))));

  // Paused: not contacted at all, not even with the right password.
  RunResult paused = mailbridge({"sync", "--once"}, env_.password);
  EXPECT_EQ(paused.exit_code, 3) << paused.describe();
  EXPECT_THAT(paused.err, AllOf(HasSubstr(fmt::format(
                                    "support: paused after 3 authentication failures (alert "
                                    "ticket #{})", alert)),
                                HasSubstr("run `mailbridge test-connection support`")));
  EXPECT_EQ(json_of({"tickets", "list", "--json"}).size(), 1u);

  RunResult tc = mailbridge({"test-connection", "support"}, env_.password);
  EXPECT_EQ(tc.exit_code, 0) << tc.describe();
  EXPECT_THAT(tc.out, AllOf(HasSubstr("resumed"), HasSubstr(fmt::format("#{}", alert))));
  // test-connection's login is logged after any login the paused sync could have made.
  ASSERT_TRUE(wait_until([&] { return count_logins(env_, user_, true) >= 1; }));
  EXPECT_EQ(count_logins(env_, user_, true), 1);
  EXPECT_EQ(failed_logins(), 3);

  status = json_of({"status", "--json"});
  EXPECT_EQ(status[0]["state"], "ok");
  EXPECT_EQ(status[0]["consecutive_auth_failures"], 0);
  EXPECT_TRUE(status[0]["alert_ticket"].is_null());
  nlohmann::json shown = json_of({"tickets", "show", std::to_string(alert), "--json"});
  ASSERT_TRUE(shown["notes"].is_array() && shown["notes"].size() == 2) << shown.dump();
  EXPECT_EQ(shown["notes"][1]["kind"], "system");
  EXPECT_THAT(shown["notes"][1]["text"].get<std::string>(),
              HasSubstr("Sign-in succeeded again at"));

  RunResult sync = mailbridge({"sync", "--once"}, env_.password);
  EXPECT_EQ(sync.exit_code, 0) << sync.describe();
  EXPECT_THAT(sync.out, HasSubstr("support: 1 imported"));
  tickets = json_of({"tickets", "list", "--json"});
  ASSERT_EQ(tickets.size(), 2u) << tickets.dump();
  EXPECT_EQ(tickets[1]["subject"], "Waiting mail");
  EXPECT_EQ(tickets[1]["source"], "email");
}

}  // namespace
}  // namespace mb::itest
