// File: tests/unit/core/config_ews_test.cpp — the keys of an EWS [[mailbox]] (docs/ews.md):
// auth password | ntlm | oauth2, access own | impersonation | delegate (impersonation for an
// app-only [[app]]), the mailbox's email address, endpoint (required by check-config until
// autodiscover), and the warning for an endpoint in Exchange Online, where EWS ends on
// 1 April 2027 — each error with file, line and key.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>

#include "core/config.h"
#include "tests/status_matchers.h"

namespace mb {
namespace {

using ::mb::testing::IsOk;
using ::mb::testing::StatusIs;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

constexpr const char* kOrigin = "cfg.toml";

std::string at(const std::string& text, const std::string& marker) {
  size_t pos = text.find(marker);
  EXPECT_NE(pos, std::string::npos) << marker;
  return std::string(kOrigin) + ":" +
         std::to_string(1 + std::count(text.begin(), text.begin() + pos, '\n')) + ": ";
}

const std::string kApp = R"([[app]]
name = "contoso"
tenant = "contoso.onmicrosoft.com"
client_id = "00000000-0000-0000-0000-000000000000"
client_secret = "env:CONTOSO_SECRET"

)";

// An EWS mailbox with NTLM, plus `extra` lines inside its table.
std::string ews(const std::string& extra) {
  return "[[mailbox]]\nname = \"onprem\"\ntype = \"ews\"\n"
         "endpoint = \"https://mail.corp.example/EWS/Exchange.asmx\"\n" + extra;
}

const std::string kNtlm = "auth = \"ntlm\"\nuser = \"CORP\\\\svc-mailbridge\"\n"
                          "password = \"env:EWS_PW\"\naddress = \"helpdesk@corp.example\"\n";

Result<Config> parse(const std::string& text, ConfigCheck check = ConfigCheck::kFile) {
  // check-config's deep check looks at the store's directory too: one that exists.
  return parse_config(text, kOrigin, ::testing::TempDir(), check);
}

TEST(ConfigEwsTest, NtlmWithImpersonation) {
  auto cfg = parse(ews(kNtlm + "access = \"impersonation\"\nfolder = \"inbox\"\n"));
  ASSERT_THAT(cfg, IsOk());
  const MailboxConfig& m = cfg->mailboxes.at(0);
  EXPECT_EQ(m.type, ConnectorType::kEws);
  EXPECT_EQ(m.auth, AuthMethod::kNtlm);
  EXPECT_EQ(m.user, "CORP\\svc-mailbridge");
  EXPECT_EQ(m.address, "helpdesk@corp.example");
  EXPECT_EQ(m.access, MailboxAccess::kImpersonation);
  EXPECT_EQ(m.endpoint, "https://mail.corp.example/EWS/Exchange.asmx");
  EXPECT_EQ(m.password.ref, "env:EWS_PW");
  EXPECT_EQ(m.port, 443);
  EXPECT_THAT(cfg->warnings, IsEmpty());
}

TEST(ConfigEwsTest, BasicIsAuthPasswordAndAccessDefaultsToOwn) {
  auto cfg = parse(ews("user = \"helpdesk@corp.example\"\npassword = \"env:EWS_PW\"\n"));
  ASSERT_THAT(cfg, IsOk());
  EXPECT_EQ(cfg->mailboxes[0].auth, AuthMethod::kPassword);
  EXPECT_EQ(cfg->mailboxes[0].access, MailboxAccess::kOwn);
  EXPECT_EQ(cfg->mailboxes[0].address, "helpdesk@corp.example");
  std::string basic = ews("auth = \"basic\"\nuser = \"helpdesk@corp.example\"\npassword = \"env:EWS_PW\"\n");
  EXPECT_THAT(parse(basic), StatusIs(ErrorKind::kConfig,
                                     HasSubstr(at(basic, "basic") + "mailbox \"onprem\": auth must be "
                                               "password | ntlm | oauth2 (got \"basic\": EWS's "
                                               "Basic authentication is auth = \"password\")")));
  std::string other = ews("auth = \"kerberos\"\nuser = \"helpdesk@corp.example\"\npassword = \"env:EWS_PW\"\n");
  EXPECT_THAT(parse(other), StatusIs(ErrorKind::kConfig, HasSubstr("auth must be password | ntlm | oauth2")));
}

TEST(ConfigEwsTest, NtlmNeedsAPasswordAndIsOnlyForEws) {
  std::string text = ews("auth = \"ntlm\"\nuser = \"helpdesk@corp.example\"\n");
  EXPECT_THAT(parse(text), StatusIs(ErrorKind::kConfig,
                                    HasSubstr(at(text, "ntlm") + "mailbox \"onprem\": auth = \"ntlm\" "
                                              "needs password = \"env:NAME\" or \"file:PATH\"")));
  std::string imap = "[[mailbox]]\nname = \"i\"\ntype = \"imap\"\nhost = \"h\"\nuser = \"u@x\"\n"
                     "auth = \"ntlm\"\npassword = \"env:P\"\n";
  EXPECT_THAT(parse(imap), StatusIs(ErrorKind::kConfig,
                                    HasSubstr(at(imap, "ntlm") + "mailbox \"i\": auth must be password | oauth2")));
}

TEST(ConfigEwsTest, AccessIsCheckedAndOnlyForEws) {
  std::string wrong = ews(kNtlm + "access = \"owner\"\n");
  EXPECT_THAT(parse(wrong), StatusIs(ErrorKind::kConfig,
                                     HasSubstr(at(wrong, "owner") + "mailbox \"onprem\": access must be "
                                               "own | impersonation | delegate (got \"owner\")")));
  auto delegate = parse(ews(kNtlm + "access = \"delegate\"\n"));
  ASSERT_THAT(delegate, IsOk());
  EXPECT_EQ(delegate->mailboxes[0].access, MailboxAccess::kDelegate);
  std::string imap = "[[mailbox]]\nname = \"i\"\ntype = \"imap\"\nhost = \"h\"\nuser = \"u@x\"\n"
                     "password = \"env:P\"\naccess = \"delegate\"\n";
  EXPECT_THAT(parse(imap), StatusIs(ErrorKind::kConfig,
                                    HasSubstr(at(imap, "access") + "mailbox \"i\": access is only used "
                                              "with type = \"ews\"")));
}

TEST(ConfigEwsTest, AnAppOnlyAppImpersonatesAndNeedsNothingElse) {
  auto cfg = parse(kApp + ews("app = \"contoso\"\nuser = \"helpdesk@contoso.com\"\n"));
  ASSERT_THAT(cfg, IsOk());
  EXPECT_EQ(cfg->mailboxes[0].auth, AuthMethod::kOAuth2);
  EXPECT_EQ(cfg->mailboxes[0].access, MailboxAccess::kImpersonation);
  std::string own = kApp + ews("app = \"contoso\"\nuser = \"helpdesk@contoso.com\"\naccess = \"own\"\n");
  EXPECT_THAT(parse(own), StatusIs(ErrorKind::kConfig,
                                   HasSubstr(at(own, "access") + "mailbox \"onprem\": access must be "
                                             "\"impersonation\" with the app-only [[app]] \"contoso\"")));
}

TEST(ConfigEwsTest, TheMailboxNeedsAnEmailAddress) {
  std::string text = ews("auth = \"ntlm\"\nuser = \"CORP\\\\svc\"\npassword = \"env:EWS_PW\"\n");
  EXPECT_THAT(parse(text), StatusIs(ErrorKind::kConfig,
                                    HasSubstr(at(text, "user =") + "mailbox \"onprem\": address is "
                                              "missing: EWS needs the mailbox's email address "
                                              "(X-AnchorMailbox), and user = \"CORP\\svc\" is not one")));
}

// Until autodiscover, check-config asks for the endpoint; every other command reads the file
// (the SPEC's sketch has no endpoint) and the connector says it is required.
TEST(ConfigEwsTest, CheckConfigRequiresTheEndpointOfAnEnabledMailbox) {
  std::string text = "[[mailbox]]\nname = \"onprem\"\ntype = \"ews\"\nuser = \"u@corp.example\"\n"
                     "password = \"env:EWS_PW\"\n";
  EXPECT_THAT(parse(text), IsOk());
  EXPECT_THAT(parse(text, ConfigCheck::kDeep),
              StatusIs(ErrorKind::kConfig, HasSubstr(at(text, "[[mailbox]]") +
                                                     "mailbox \"onprem\": endpoint is missing: the "
                                                     "https:// URL of Exchange's EWS")));
  EXPECT_THAT(parse(text + "enabled = false\n", ConfigCheck::kDeep), IsOk());
  EXPECT_THAT(parse(ews(kNtlm), ConfigCheck::kDeep), IsOk());
  std::string http = "[[mailbox]]\nname = \"onprem\"\ntype = \"ews\"\nendpoint = \"http://mail/EWS/Exchange.asmx\"\n" + kNtlm;
  EXPECT_THAT(parse(http), StatusIs(ErrorKind::kConfig, HasSubstr(at(http, "http://") +
                                                                  "mailbox \"onprem\": endpoint must be an https:// URL")));
}

TEST(ConfigEwsTest, DeleteTypeAndListingAreEwsKeys) {
  auto cfg = parse(ews(kNtlm + "after = \"delete\"\ndelete_type = \"HardDelete\"\nlisting = \"find\"\n"));
  ASSERT_THAT(cfg, IsOk());
  EXPECT_TRUE(cfg->mailboxes.at(0).ews_hard_delete);
  EXPECT_TRUE(cfg->mailboxes.at(0).ews_find_listing);
  auto defaults = parse(ews(kNtlm));
  ASSERT_THAT(defaults, IsOk());
  EXPECT_FALSE(defaults->mailboxes.at(0).ews_hard_delete);  // MoveToDeletedItems
  EXPECT_FALSE(defaults->mailboxes.at(0).ews_find_listing);  // SyncFolderItems
  std::string bad = ews(kNtlm + "delete_type = \"SoftDelete\"\n");
  EXPECT_THAT(parse(bad), StatusIs(ErrorKind::kConfig, HasSubstr(at(bad, "delete_type"))));
  std::string imap = "[[mailbox]]\nname = \"m\"\ntype = \"imap\"\nhost = \"h\"\nuser = \"u\"\n"
                     "password = \"env:PW\"\nlisting = \"find\"\n";
  EXPECT_THAT(parse(imap),
              StatusIs(ErrorKind::kConfig, HasSubstr(at(imap, "listing") + "mailbox \"m\": listing "
                                                     "is only used with type = \"ews\"")));
}

TEST(ConfigEwsTest, AnEwsSenderWithoutEndpointPassesCheckConfig) {
  // Its endpoint is found by autodiscover when it first sends (connectors/ews/ews_sender.h).
  std::string text = ews(kNtlm) + "\n[[sender]]\nname = \"out\"\ntype = \"ews\"\nuser = \"u@x\"\n"
                                  "password = \"env:EWS_PW\"\nsave_to_sent_items = false\n";
  EXPECT_THAT(parse(text), IsOk());
  auto deep = parse(text, ConfigCheck::kDeep);
  ASSERT_THAT(deep, IsOk());
  ASSERT_EQ(deep->senders.size(), 1u);
  EXPECT_FALSE(deep->senders[0].save_to_sent_items);
}

TEST(ConfigEwsTest, ExchangeOnlineEndpointWarnsOnceNamingTheGraphReplacement) {
  std::string text = kApp + "[[mailbox]]\nname = \"cloud\"\ntype = \"ews\"\napp = \"contoso\"\n"
                            "user = \"helpdesk@contoso.com\"\n"
                            "endpoint = \"https://outlook.office365.com/EWS/Exchange.asmx\"\n";
  auto cfg = parse(text);
  ASSERT_THAT(cfg, IsOk());
  EXPECT_THAT(cfg->warnings,
              ElementsAre(AllOf(HasSubstr(at(text, "endpoint") + "mailbox \"cloud\": endpoint is "
                                          "Exchange Online, where EWS ends on 1 April 2027"),
                                HasSubstr("EwsAllowedAppIDs"),
                                HasSubstr("type = \"graph\" with the same app registration, app = "
                                          "\"contoso\""))));
  for (const char* url : {"https://outlook.office.com/EWS/Exchange.asmx",
                          "https://EU-West.Office365.com:443/EWS/Exchange.asmx"}) {
    auto other = parse(kApp + "[[mailbox]]\nname = \"cloud\"\ntype = \"ews\"\napp = \"contoso\"\n"
                              "user = \"helpdesk@contoso.com\"\nendpoint = \"" + url + "\"\n");
    ASSERT_THAT(other, IsOk());
    EXPECT_EQ(other->warnings.size(), 1u) << url;
  }
  auto onprem = parse(ews("user = \"helpdesk@corp.example\"\npassword = \"env:P\"\n"));
  ASSERT_THAT(onprem, IsOk());
  EXPECT_THAT(onprem->warnings, IsEmpty());
  auto disabled = parse(text + "enabled = false\n");
  ASSERT_THAT(disabled, IsOk());
  EXPECT_THAT(disabled->warnings, IsEmpty());
}

TEST(ConfigEwsTest, ExchangeOnlineHosts) {
  EXPECT_TRUE(exchange_online_endpoint("https://outlook.office365.com/EWS/Exchange.asmx"));
  EXPECT_TRUE(exchange_online_endpoint("https://outlook.office.com/EWS/Exchange.asmx"));
  EXPECT_TRUE(exchange_online_endpoint("https://user@OUTLOOK.OFFICE365.COM.:443/ews"));
  EXPECT_TRUE(exchange_online_endpoint("https://eu.office365.com"));
  EXPECT_FALSE(exchange_online_endpoint("https://mail.corp.example/EWS/Exchange.asmx"));
  EXPECT_FALSE(exchange_online_endpoint("https://office365.com.evil.example/EWS/Exchange.asmx"));
  EXPECT_FALSE(exchange_online_endpoint("https://notoffice365.com/EWS/Exchange.asmx"));
  EXPECT_FALSE(exchange_online_endpoint("http://outlook.office365.com/EWS/Exchange.asmx"));
  EXPECT_FALSE(exchange_online_endpoint(""));
}

}  // namespace
}  // namespace mb
