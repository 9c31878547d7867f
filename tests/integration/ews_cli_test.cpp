// File: tests/integration/ews_cli_test.cpp — `type = "ews"` through the mailbridge binary
// against the EWS stand-in (tests/harness/ews.sh): the connector-independent ingest suite
// (NTLM with impersonation; the post-actions the connector carries out are a parameter),
// exactly once across a SIGKILL mid-sync, and test-connection and doctor with Basic, NTLM,
// a bearer token of the Entra stand-in, and impersonation refused.
#include <signal.h>

#include <chrono>
#include <set>
#include <thread>

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/integration/ews_harness.h"
#include "tests/integration/harness.h"
#include "tests/integration/ingest_suite.h"
#include "tests/status_matchers.h"

namespace mb::itest {
namespace {

using ::mb::testing::IsOk;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::UnorderedElementsAreArray;

// The post-actions the EWS connector carries out: all of the suite's.
const std::set<std::string> kEwsPostActions = {"leave", "mark-read", "delete", "move"};

class EwsServer : public MailServer {
 public:
  explicit EwsServer(std::set<std::string> post_actions) : post_actions_(std::move(post_actions)) {}
  Status deliver(const std::string& user, const std::string& raw) override {
    auto ids = ews::deliver(address(user), {raw});
    return ids.ok() ? Status::Ok() : ids.status();
  }
  Result<std::vector<ServerMessage>> list(const std::string& user, const std::string& folder) override {
    return ews::list(address(user), folder);
  }
  std::string mailbox_toml(const std::string& name, const std::string& user, const std::string& after,
                           int max_per_poll) override {
    return ews::mailbox_toml({.name = name, .address = address(user), .after = after,
                              .max_per_poll = max_per_poll});
  }
  std::vector<std::pair<std::string, std::string>> secrets_env() const override {
    return ews::secrets_env();
  }
  bool supports_after(const std::string& after) const override {
    return post_actions_.count(after.substr(0, after.find(':'))) > 0;
  }

 private:
  static std::string address(const std::string& user) { return user + "@" + ews::at("MB_EWS_DOMAIN"); }
  std::set<std::string> post_actions_;
};

INSTANTIATE_TEST_SUITE_P(
    Ews, IngestSuite,
    ::testing::Values(MailServerParam{"ews_ntlm_impersonation",
                                      [] { return std::make_unique<EwsServer>(kEwsPostActions); }}),
    param_name);

class EwsCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(ews::env().empty());
    ASSERT_THAT(ews::admin("POST", "/faults/clear"), IsOk());
    address_ = ews::fresh_address();
  }
  void TearDown() override {
    if (HasFailure()) {
      dir_.keep();
      std::fprintf(stderr, "kept %s (EWS mailbox %s)\n", dir_.path().c_str(), address_.c_str());
    }
  }
  void configure(ews::EwsBox b) {
    if (b.address.empty()) b.address = address_;
    ASSERT_THAT(write_file(config(), config_toml(dir_.file("mailbridge.db"), ews::mailbox_toml(b))), IsOk());
  }
  std::string config() const { return dir_.file("mailbridge.toml"); }
  RunOptions options() const {
    RunOptions o;
    o.env = ews::secrets_env();
    o.cwd = dir_.path();
    o.timeout = std::chrono::seconds(300);
    return o;
  }
  RunResult mailbridge(const std::vector<std::string>& args) {
    std::vector<std::string> full = {"--config", config()};
    full.insert(full.end(), args.begin(), args.end());
    RunResult r = run_mailbridge(full, options());
    EXPECT_THAT(r.out + r.err, Not(HasSubstr(ews::at("MB_EWS_PASSWORD")))) << "a secret was printed";
    return r;
  }
  std::vector<std::string> ticket_subjects() {
    RunResult r = mailbridge({"tickets", "list", "--json"});
    EXPECT_EQ(r.exit_code, 0) << r.describe();
    std::vector<std::string> out;
    auto j = parse_json(r.out);
    if (j.is_array()) {
      for (const auto& t : j) out.push_back(t.value("subject", ""));
    }
    return out;
  }

  TempDir dir_;
  std::string address_;
};

// SPEC §2 "exactly once": kill -9 in the middle of a 200-message pass, run again: every
// message one ticket.
TEST_F(EwsCliTest, SigkillMidSyncThenResumeLosesAndDuplicatesNothing) {
  constexpr int kMessages = 200;
  configure({.max_per_poll = kMessages});
  std::vector<std::string> raws, expected;
  for (int i = 0; i < kMessages; ++i) {
    expected.push_back(fmt::format("bulk message {:03}", i));
    raws.push_back(make_message({.subject = expected.back(), .text = expected.back() + "\n"}));
  }
  ASSERT_THAT(ews::deliver(address_, raws), IsOk());

  auto proc = Process::start(mailbridge_bin(), {"--config", config(), "sync", "--once"}, options());
  ASSERT_THAT(proc, IsOk());
  int64_t seen_count = -1;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while ((*proc)->running() && std::chrono::steady_clock::now() < deadline) {
    auto n = count_tickets_readonly(dir_.file("mailbridge.db"));
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
  EXPECT_THAT(ticket_subjects(), UnorderedElementsAreArray(expected)) << "killed at " << seen_count;
  RunResult third = mailbridge({"sync", "--once"});
  ASSERT_EQ(third.exit_code, 0) << third.describe();
  EXPECT_EQ(ticket_subjects().size(), static_cast<size_t>(kMessages));
  auto inbox = ews::list(address_, "INBOX");
  ASSERT_THAT(inbox, IsOk());
  EXPECT_EQ(inbox->size(), static_cast<size_t>(kMessages)) << "after = leave keeps every message";
}

// test-connection: each step of an EWS sign-in, for each method.
TEST_F(EwsCliTest, TestConnectionShowsEndpointMethodAccessVersionAndCounts) {
  ASSERT_THAT(ews::deliver(address_, {make_message({.subject = "one", .text = "1\n"}),
                                      make_message({.subject = "two", .text = "2\n"})}),
              IsOk());
  struct Case {
    ews::EwsBox box;
    std::string method;
    std::string access;
  };
  const std::string ntlm_user = ews::at("MB_EWS_NETBIOS") + "\\svc-ews";
  std::vector<Case> cases = {
      {{.auth = "ntlm"}, "NTLM as " + ntlm_user, "impersonation of " + address_},
      {{.auth = "password", .user = ews::at("MB_EWS_SERVICE_ACCOUNT")},
       "Basic as " + ews::at("MB_EWS_SERVICE_ACCOUNT"), "impersonation of " + address_}};
  if (ews::at("MB_EWS_BEARER") == "1") {
    cases.push_back({{.auth = "oauth2"}, "OAuth bearer token (app registration)",
                     "impersonation of " + address_});
  }
  for (const Case& c : cases) {
    configure(c.box);
    RunResult r = mailbridge({"test-connection", "support"});
    EXPECT_EQ(r.exit_code, 0) << c.box.auth << ": " << r.describe();
    EXPECT_THAT(r.out, AllOf(HasSubstr("✓ endpoint     " + ews::at("MB_EWS_URL")),
                             HasSubstr("✓ sign-in      " + c.method + ", Exchange 15.2.1544.4"),
                             HasSubstr("✓ access       " + c.access),
                             HasSubstr("✓ open-folder  inbox (Inbox)"),
                             HasSubstr("✓ count        2 messages, 2 unread")))
        << c.box.auth << ": " << r.describe();
  }
}

// The account is refused: a wrong password at sign-in (exit 3), impersonation without the
// role at access (exit 3), each named for an administrator; doctor adds the command.
TEST_F(EwsCliTest, RefusalsAreNamedAtTheirStepAndDoctorGivesTheCommand) {
  configure({.auth = "ntlm", .password_ref = "wrong-password-of-the-test"});
  RunResult wrong = mailbridge({"test-connection", "support"});
  EXPECT_EQ(wrong.exit_code, 3) << wrong.describe();
  EXPECT_THAT(wrong.out, AllOf(HasSubstr("✓ endpoint"), HasSubstr("✗ sign-in"), HasSubstr("HTTP 401"),
                               Not(HasSubstr("✓ access"))))
      << wrong.describe();

  // helpdesk has no ApplicationImpersonation role.
  configure({.auth = "ntlm", .user = ews::at("MB_EWS_NETBIOS") + "\\helpdesk"});
  RunResult denied = mailbridge({"test-connection", "support"});
  EXPECT_EQ(denied.exit_code, 3) << denied.describe();
  EXPECT_THAT(denied.out, AllOf(HasSubstr("✓ sign-in"), HasSubstr("✗ access"),
                                HasSubstr("ErrorImpersonateUserDenied")))
      << denied.describe();

  RunResult doctor = mailbridge({"doctor", "support", "--json"});
  EXPECT_EQ(doctor.exit_code, 3) << doctor.describe();
  auto doc = parse_json(doctor.out);
  ASSERT_TRUE(doc.is_object()) << doctor.describe();
  const auto& res = doc["results"].at(0);
  EXPECT_EQ(res["flow"], "ntlm");
  const nlohmann::json* access = nullptr;
  for (const auto& s : res["steps"]) {
    if (s["name"] == "access") access = &s;
  }
  ASSERT_NE(access, nullptr) << doctor.out;
  EXPECT_EQ((*access)["ok"], false);
  EXPECT_THAT((*access)["fix"].get<std::string>(),
              AllOf(HasSubstr("New-ManagementRoleAssignment"), HasSubstr("-Role ApplicationImpersonation"),
                    HasSubstr("-User " + ews::at("MB_EWS_NETBIOS") + "\\helpdesk"),
                    HasSubstr("-CustomRecipientWriteScope")));

  // As a delegate without FullAccess: the fix is Add-MailboxPermission.
  configure({.auth = "password", .user = ews::at("MB_EWS_DELEGATE"), .access = "delegate"});
  RunResult delegate = mailbridge({"doctor", "support"});
  EXPECT_EQ(delegate.exit_code, 3) << delegate.describe();
  EXPECT_THAT(delegate.out, AllOf(HasSubstr("✗ access"),
                                  HasSubstr("Add-MailboxPermission -Identity " + address_),
                                  HasSubstr("-AccessRights FullAccess")))
      << delegate.describe();
}

// doctor with a bearer token: the token's checks (audience, full_access_as_app), then the
// EWS steps; all well with impersonation.
TEST_F(EwsCliTest, DoctorWithABearerTokenChecksTheTokenThenTheMailbox) {
  if (ews::at("MB_EWS_BEARER") != "1") GTEST_SKIP() << "the stand-in runs without Entra";
  configure({.auth = "oauth2"});
  RunResult r = mailbridge({"doctor", "support"});
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_THAT(r.out, AllOf(HasSubstr("support (ews mailbox, app entra, app-only)"),
                           HasSubstr("✓ permission   full_access_as_app"),
                           HasSubstr("✓ access       impersonation of " + address_),
                           HasSubstr("✓ count")))
      << r.describe();
}

}  // namespace
}  // namespace mb::itest
