// File: tests/unit/cli/doctor_test.cpp — `mailbridge doctor`'s judgement over prepared token
// claims (what each connector needs, which permission is missing and the fix named with the
// ids filled in), its JSON and text shapes, and the command's refusals through run_cli.
#include "cli/doctor.h"

#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include <fmt/format.h>

#include "auth/base64.h"
#include "cli/cli.h"

namespace mb::cli::doctor {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr const char* kAppId = "0f3a6b21-7c4e-4d8a-9e55-1b2c3d4e5f60";
constexpr const char* kObjectId = "6a7b8c9d-0e1f-4a2b-8c3d-4e5f6a7b8c9d";
constexpr const char* kTenant = "72f988bf-86f1-41af-91ab-2d7cd011db47";

Target imap_app_only() {
  return Target{"support", ConnectorType::kImap, false, "support@contoso.com", "contoso", false};
}

TokenClaims exchange_claims(std::vector<std::string> roles) {
  TokenClaims c;
  c.aud = "https://outlook.office365.com";
  c.tid = kTenant;
  c.appid = kAppId;
  c.iss = std::string("https://sts.windows.net/") + kTenant + "/";
  c.roles = std::move(roles);
  return c;
}

const Step* find_step(const Report& r, const std::string& name) {
  for (const auto& s : r.steps) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

TEST(DoctorNeeds, EachConnectorNeedsItsOwnPermission) {
  const std::string exo = "https://outlook.office365.com";
  EXPECT_THAT(needs_for(imap_app_only(), exo).roles, ElementsAre("IMAP.AccessAsApp"));
  Target pop{"p", ConnectorType::kPop3, false, "p@contoso.com", "a", false};
  EXPECT_THAT(needs_for(pop, exo).roles, ElementsAre("POP.AccessAsApp"));
  Target smtp{"s", ConnectorType::kSmtp, true, "s@contoso.com", "a", false};
  EXPECT_THAT(needs_for(smtp, exo).roles, ElementsAre("SMTP.SendAsApp"));
  Target ews{"e", ConnectorType::kEws, false, "e@contoso.com", "a", true};
  EXPECT_THAT(needs_for(ews, exo).scopes, ElementsAre("EWS.AccessAsUser.All"));
  Target graph_box{"g", ConnectorType::kGraph, false, "g@contoso.com", "a", false};
  Needs g = needs_for(graph_box, "https://graph.microsoft.com");
  EXPECT_THAT(g.roles, ElementsAre("Mail.ReadWrite"));
  EXPECT_EQ(g.resource_name, "Microsoft Graph");
  EXPECT_EQ(g.audiences.front(), "https://graph.microsoft.com");
  // Sending needs Mail.Send alone (Microsoft's permissions for sendMail and message: send).
  Target graph_sender = graph_box;
  graph_sender.sender = true;
  EXPECT_THAT(needs_for(graph_sender, "https://graph.microsoft.com").roles,
              ElementsAre("Mail.Send"));
  graph_sender.delegated = true;
  EXPECT_THAT(needs_for(graph_sender, "https://graph.microsoft.com").scopes,
              ElementsAre("Mail.Send"));
}

TokenClaims graph_claims(std::vector<std::string> roles) {
  TokenClaims c = exchange_claims(std::move(roles));
  c.aud = "https://graph.microsoft.com";
  return c;
}

// A Graph sender whose token carries Mail.Send passes; a Graph mailbox whose token lacks
// Mail.ReadWrite is told to add it — and only the permission, not an access policy.
TEST(DoctorClaims, GraphSenderNeedsMailSendAndMailboxMailReadWrite) {
  Target sender{"out", ConnectorType::kGraph, true, "help@contoso.com", "a", false};
  Report ok{.target = sender, .steps = {}, .exit_code = 0};
  check_claims(ok, graph_claims({"Mail.Send"}), kObjectId,
               needs_for(sender, "https://graph.microsoft.com"));
  EXPECT_TRUE(ok.ok()) << to_text(ok);
  Target box{"in", ConnectorType::kGraph, false, "help@contoso.com", "a", false};
  Report lacking{.target = box, .steps = {}, .exit_code = 0};
  check_claims(lacking, graph_claims({"Mail.Send"}), kObjectId,
               needs_for(box, "https://graph.microsoft.com"));
  EXPECT_EQ(lacking.exit_code, 3);
  EXPECT_THAT(to_text(lacking), AllOf(HasSubstr("✗ permission"), HasSubstr("Mail.ReadWrite"),
                                      Not(HasSubstr("access policy"))));
}

// Graph's 403 ErrorAccessDenied points at the application access policy only when the token
// carries the permission; without it, the permission is the cause.
TEST(DoctorSignInFix, GraphAccessPolicyOnlyWhenThePermissionIsPresent) {
  Target box{"in", ConnectorType::kGraph, false, "help@contoso.com", "a", false};
  TokenClaims c = graph_claims({"Mail.ReadWrite"});
  EXPECT_THAT(sign_in_fix(box, &c, kObjectId, false),
              AllOf(HasSubstr("application access policy"),
                    HasSubstr("Test-ApplicationAccessPolicy -Identity help@contoso.com")));
  EXPECT_THAT(sign_in_fix(box, &c, kObjectId, true),
              AllOf(HasSubstr("permission named above"), Not(HasSubstr("access policy"))));
}

TEST(DoctorClaims, TokenWithTheRoleAndAudiencePasses) {
  Report r{.target = imap_app_only(), .steps = {}, .exit_code = 0};
  check_claims(r, exchange_claims({"IMAP.AccessAsApp", "SMTP.SendAsApp"}), kObjectId,
               needs_for(r.target, "https://outlook.office365.com"));
  EXPECT_EQ(r.exit_code, 0);
  ASSERT_NE(find_step(r, "claims"), nullptr);
  EXPECT_THAT(find_step(r, "claims")->detail,
              AllOf(HasSubstr(kAppId), HasSubstr(kTenant), HasSubstr(kObjectId),
                    HasSubstr("IMAP.AccessAsApp")));
  EXPECT_TRUE(find_step(r, "audience")->ok);
  EXPECT_TRUE(find_step(r, "permission")->ok);
}

TEST(DoctorClaims, MissingImapRoleNamesThePermissionAndConsent) {
  Report r{.target = imap_app_only(), .steps = {}, .exit_code = 0};
  check_claims(r, exchange_claims({"POP.AccessAsApp"}), kObjectId,
               needs_for(r.target, "https://outlook.office365.com"));
  EXPECT_EQ(r.exit_code, 3);
  const Step* p = find_step(r, "permission");
  ASSERT_NE(p, nullptr);
  EXPECT_FALSE(p->ok);
  EXPECT_THAT(p->detail, HasSubstr("IMAP.AccessAsApp"));
  EXPECT_THAT(p->fix, AllOf(HasSubstr("application permission IMAP.AccessAsApp"),
                            HasSubstr("Office 365 Exchange Online"), HasSubstr(kAppId),
                            HasSubstr("grant admin consent"), HasSubstr(kTenant)));
  EXPECT_TRUE(find_step(r, "audience")->ok);
}

TEST(DoctorClaims, NoRolesAtAllMeansNoAdminConsent) {
  Report r{.target = imap_app_only(), .steps = {}, .exit_code = 0};
  check_claims(r, exchange_claims({}), kObjectId,
               needs_for(r.target, "https://outlook.office365.com"));
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_THAT(find_step(r, "permission")->detail, HasSubstr("admin consent is missing"));
  EXPECT_THAT(find_step(r, "claims")->detail, HasSubstr("roles (none)"));
}

TEST(DoctorClaims, GraphTokenForImapIsTheWrongAudience) {
  Report r{.target = imap_app_only(), .steps = {}, .exit_code = 0};
  TokenClaims c = exchange_claims({"Mail.ReadWrite"});
  c.aud = "https://graph.microsoft.com";
  check_claims(r, c, kObjectId, needs_for(r.target, "https://outlook.office365.com"));
  EXPECT_EQ(r.exit_code, 3);
  const Step* a = find_step(r, "audience");
  ASSERT_NE(a, nullptr);
  EXPECT_FALSE(a->ok);
  EXPECT_THAT(a->detail, AllOf(HasSubstr("https://graph.microsoft.com"),
                               HasSubstr("https://outlook.office365.com")));
  EXPECT_THAT(a->fix, AllOf(HasSubstr("[[app]] \"contoso\""), HasSubstr("scopes")));
}

TEST(DoctorClaims, ExchangeAppIdAndTrailingSlashAreTheSameAudience) {
  for (const char* aud : {"00000002-0000-0ff1-ce00-000000000000", "https://outlook.office365.com/",
                          "https://outlook.office.com"}) {
    Report r{.target = imap_app_only(), .steps = {}, .exit_code = 0};
    TokenClaims c = exchange_claims({"IMAP.AccessAsApp"});
    c.aud = aud;
    check_claims(r, c, kObjectId, needs_for(r.target, "https://outlook.office365.com"));
    EXPECT_EQ(r.exit_code, 0) << aud;
  }
}

TEST(DoctorClaims, DelegatedTokenWithoutTheScopeAsksForANewSignIn) {
  Target t = imap_app_only();
  t.delegated = true;
  Report r{.target = t, .steps = {}, .exit_code = 0};
  TokenClaims c = exchange_claims({});
  c.scp = {"SMTP.Send"};
  c.upn = "megan@contoso.com";
  check_claims(r, c, kObjectId, needs_for(t, "https://outlook.office365.com"));
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_THAT(find_step(r, "permission")->fix,
              AllOf(HasSubstr("delegated permission IMAP.AccessAsUser.All"),
                    HasSubstr("mailbridge auth login contoso")));
  EXPECT_THAT(find_step(r, "claims")->detail, HasSubstr("user megan@contoso.com"));
}

TEST(DoctorClaims, CustomScopesSkipTheAudienceCheck) {
  Report r{.target = imap_app_only(), .steps = {}, .exit_code = 0};
  TokenClaims c = exchange_claims({"IMAP.AccessAsApp"});
  c.aud = "https://mail.example.test";
  check_claims(r, c, "", needs_for(r.target, ""));
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_THAT(find_step(r, "audience")->detail, HasSubstr("not checked"));
}

TEST(DoctorSignInFix, ExchangeAppOnlyNeedsServicePrincipalAndMailboxPermission) {
  TokenClaims c = exchange_claims({"IMAP.AccessAsApp"});
  std::string fix = sign_in_fix(imap_app_only(), &c, kObjectId);
  EXPECT_THAT(fix, HasSubstr(fmt::format("New-ServicePrincipal -AppId {} -ObjectId {}", kAppId,
                                         kObjectId)));
  EXPECT_THAT(fix, HasSubstr(fmt::format(
                       "Add-MailboxPermission -Identity support@contoso.com -User {} "
                       "-AccessRights FullAccess",
                       kObjectId)));
  EXPECT_THAT(fix, HasSubstr("Enterprise application"));
}

TEST(DoctorSignInFix, WithoutClaimsThePlaceholdersStay) {
  std::string fix = sign_in_fix(imap_app_only(), nullptr, "");
  EXPECT_THAT(fix, AllOf(HasSubstr("-AppId <application id>"),
                         HasSubstr("-ObjectId <service principal object id>")));
}

TEST(DoctorSignInFix, DelegatedPointsAtTheMailboxAndTheUser) {
  Target t = imap_app_only();
  t.delegated = true;
  TokenClaims c = exchange_claims({});
  c.upn = "megan@contoso.com";
  EXPECT_THAT(sign_in_fix(t, &c, kObjectId),
              AllOf(HasSubstr("Get-CASMailbox -Identity support@contoso.com"),
                    HasSubstr("-User megan@contoso.com -AccessRights FullAccess"),
                    Not(HasSubstr("New-ServicePrincipal"))));
}

std::string b64url(const std::string& s) {
  std::string out = base64_encode(s);
  for (char& ch : out) {
    if (ch == '+') ch = '-';
    if (ch == '/') ch = '_';
  }
  while (!out.empty() && out.back() == '=') out.pop_back();
  return out;
}

TEST(DoctorToken, ObjectIdComesFromTheJwtPayload) {
  std::string jwt = b64url(R"({"alg":"RS256"})") + "." +
                    b64url(std::string(R"({"aud":"x","oid":")") + kObjectId + R"("})") + ".c2ln";
  EXPECT_EQ(token_object_id(jwt), kObjectId);
  EXPECT_EQ(token_object_id("opaque-token-value"), "");
  EXPECT_EQ(token_object_id(b64url("{}") + "." + b64url("not json") + ".x"), "");
}

TEST(DoctorReport, JsonAndTextCarryStepsAndFixes) {
  Report r{.target = imap_app_only(), .steps = {}, .exit_code = 0};
  check_claims(r, exchange_claims({}), kObjectId,
               needs_for(r.target, "https://outlook.office365.com"));
  auto j = to_json(r);
  std::set<std::string> keys;
  for (const auto& [k, v] : j.items()) keys.insert(k);
  EXPECT_EQ(keys, (std::set<std::string>{"name", "kind", "type", "app", "flow", "ok",
                                         "exit_code", "steps"}));
  EXPECT_EQ(j["ok"], false);
  EXPECT_EQ(j["exit_code"], 3);
  ASSERT_EQ(j["steps"].size(), r.steps.size());
  EXPECT_TRUE(j["steps"][0]["fix"].is_null());
  EXPECT_THAT(j["steps"].back()["fix"].get<std::string>(), HasSubstr("IMAP.AccessAsApp"));
  std::string text = to_text(r);
  EXPECT_THAT(text, AllOf(HasSubstr("support (imap mailbox, app contoso, app-only)"),
                          HasSubstr("✗ permission"), HasSubstr("fix: add the application")));
}

// ---- the command ----

class DoctorCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("mb_doctor_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    config_ = (dir_ / "mailbridge.toml").string();
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  void write_config(const std::string& tables) {
    std::ofstream(config_) << "[store]\npath = \"" << (dir_ / "mb.db").string() << "\"\n\n"
                           << "[[project]]\nname = \"IT\"\n\n"
                           << tables;
  }
  int run(std::vector<std::string> args) {
    out_.str("");
    err_.str("");
    args.insert(args.begin(), {"--config", config_});
    return run_cli(args, out_, err_);
  }

  std::filesystem::path dir_;
  std::string config_;
  std::ostringstream out_, err_;
};

constexpr const char* kPasswordBox =
    "[[mailbox]]\nname = \"support\"\ntype = \"imap\"\nhost = \"127.0.0.1\"\nport = 1\n"
    "user = \"support@example.com\"\npassword = \"literal-doctor-pw\"\n";

TEST_F(DoctorCliTest, NothingSignsInWithOAuth) {
  write_config(kPasswordBox);
  EXPECT_EQ(run({"doctor"}), 2);
  EXPECT_THAT(err_.str(), HasSubstr("no mailbox or sender signs in with OAuth"));
}

TEST_F(DoctorCliTest, NamedPasswordMailboxIsPointedAtTestConnection) {
  write_config(kPasswordBox);
  EXPECT_EQ(run({"doctor", "support"}), 2);
  EXPECT_THAT(err_.str(), AllOf(HasSubstr("does not sign in with OAuth"),
                                HasSubstr("mailbridge test-connection support")));
  EXPECT_THAT(err_.str() + out_.str(), Not(HasSubstr("literal-doctor-pw")));
}

TEST_F(DoctorCliTest, UnknownName) {
  write_config(kPasswordBox);
  EXPECT_EQ(run({"doctor", "nope"}), 2);
  EXPECT_THAT(err_.str(), HasSubstr("no mailbox or sender \"nope\""));
}

}  // namespace
}  // namespace mb::cli::doctor
