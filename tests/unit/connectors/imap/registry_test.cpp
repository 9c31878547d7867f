// File: tests/unit/connectors/imap/registry_test.cpp — make_mailbox: which types and auths
// build a connector, how a missing secret is reported, and OAuth mailboxes on an
// AuthContext.
#include "connectors/registry.h"

#include "auth/auth_context.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>

#include "tests/status_matchers.h"

namespace mb {
namespace {
using ::mb::testing::IsOk;
using ::mb::testing::StatusIs;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;

MailboxConfig imap_box() {
  MailboxConfig m;
  m.name = "support";
  m.type = ConnectorType::kImap;
  m.host = "127.0.0.1";
  m.port = 1;
  m.user = "support";
  m.auth = AuthMethod::kPassword;
  return m;
}

TEST(RegistryTest, ImapWithPasswordBuildsWithoutConnecting) {
  ::setenv("MB_REGISTRY_TEST_PW", "registry-pw-1", 1);
  MailboxConfig m = imap_box();
  m.password.ref = "env:MB_REGISTRY_TEST_PW";
  auto mbx = make_mailbox(m, Config{});
  ASSERT_THAT(mbx, IsOk());
  EXPECT_NE(mbx->get(), nullptr);
  EXPECT_FALSE((*mbx)->capabilities().move);  // nothing known before connecting
}

TEST(RegistryTest, UnreadableSecretIsConfigNamingTheMailbox) {
  ::unsetenv("MB_REGISTRY_TEST_MISSING");
  MailboxConfig m = imap_box();
  m.password.ref = "env:MB_REGISTRY_TEST_MISSING";
  EXPECT_THAT(make_mailbox(m, Config{}),
              StatusIs(ErrorKind::kConfig, HasSubstr("mailbox support: password")));
}

// An EWS mailbox is built (it connects only when used); it needs its endpoint until
// autodiscover (connectors/ews/ews_config.h, resolve_endpoint). NTLM resolves the password.
TEST(RegistryTest, EwsMailboxIsBuiltWithItsEndpointAndTheSenderIsNotYet) {
  ::setenv("MB_REGISTRY_TEST_EWS_PW", "secret-of-the-test", 1);
  MailboxConfig m = imap_box();
  m.type = ConnectorType::kEws;
  m.auth = AuthMethod::kNtlm;
  m.user = "CORP\\svc";
  m.address = "support@corp.example";
  m.password.ref = "env:MB_REGISTRY_TEST_EWS_PW";
  EXPECT_THAT(make_mailbox(m, Config{}),
              StatusIs(ErrorKind::kConfig, HasSubstr("mailbox support: endpoint is required: the "
                                                     "https:// URL of Exchange's EWS")));
  m.endpoint = "https://mail.corp.example/EWS/Exchange.asmx";
  auto mbx = make_mailbox(m, Config{});
  ASSERT_THAT(mbx, IsOk());
  EXPECT_NE(mbx->get(), nullptr);
  m.password.ref = "env:MB_REGISTRY_TEST_MISSING_EWS";
  EXPECT_THAT(make_mailbox(m, Config{}),
              StatusIs(ErrorKind::kConfig, HasSubstr("mailbox support: password")));
  SenderConfig s;
  s.name = "out";
  s.type = ConnectorType::kEws;
  s.auth = AuthMethod::kNtlm;
  s.user = "CORP\\svc";
  s.password.ref = "env:MB_REGISTRY_TEST_EWS_PW";
  EXPECT_THAT(make_sender(s, Config{}),
              StatusIs(ErrorKind::kConfig, HasSubstr("sender out: user = \"CORP\\svc\" is not an "
                                                     "email address")));
  s.user = "support@corp.example";  // no endpoint: autodiscover on first use
  auto snd = make_sender(s, Config{});
  ASSERT_THAT(snd, IsOk());
  EXPECT_NE(snd->get(), nullptr);
}

TEST(RegistryTest, GraphServiceFollowsTheEndpointThenTheAppsCloud) {
  AppConfig gov;
  gov.authority = "https://login.microsoftonline.us";
  EXPECT_EQ(graph_service_url("", &gov), "https://graph.microsoft.us");
  EXPECT_EQ(graph_service_url("https://127.0.0.1:9444/", &gov), "https://127.0.0.1:9444");
  AppConfig other;
  other.authority = "https://idp.example";
  EXPECT_EQ(graph_service_url("", &other), "https://graph.microsoft.com");
  EXPECT_EQ(graph_service_url("", nullptr), "https://graph.microsoft.com");
}

// An app-only app against a token endpoint nobody listens on: building a mailbox must not
// need it (tokens are asked for at the first sign-in).
Config oauth_config() {
  Config c;
  AppConfig app;
  app.name = "entra";
  app.client_id = "00000000-0000-0000-0000-000000000001";
  app.client_secret.ref = "env:MB_REGISTRY_TEST_CLIENT_SECRET";
  app.token_endpoint = "https://127.0.0.1:1/token";
  app.flow = "app-only";
  c.apps.push_back(app);
  return c;
}

TEST(RegistryTest, OAuthWithoutAnAuthContextIsAConfigErrorAndReadsNoSecret) {
  MailboxConfig m = imap_box();
  m.auth = AuthMethod::kOAuth2;
  m.app = "entra";
  m.password.ref = "literal-should-not-appear";
  EXPECT_THAT(make_mailbox(m, oauth_config()),
              StatusIs(ErrorKind::kConfig, AllOf(HasSubstr("mailbox support: auth oauth2"),
                                                 Not(HasSubstr("literal-should-not-appear")))));
}

TEST(RegistryTest, OAuthBuildsWithoutConnectingOrAskingForAToken) {
  ::unsetenv("MB_REGISTRY_TEST_CLIENT_SECRET");  // unreadable: fine until a token is needed
  Config c = oauth_config();
  auto auth = AuthContext::create(c);
  ASSERT_THAT(auth, IsOk());
  MailboxConfig m = imap_box();
  m.auth = AuthMethod::kOAuth2;
  m.app = "entra";
  auto mbx = make_mailbox(m, c, auth->get());
  ASSERT_THAT(mbx, IsOk());
  EXPECT_NE(mbx->get(), nullptr);
  EXPECT_TRUE((*auth)->cache().describe().empty());
}

TEST(RegistryTest, OAuthWithAnUnknownAppIsAConfigErrorNamingIt) {
  Config c = oauth_config();
  auto auth = AuthContext::create(c);
  ASSERT_THAT(auth, IsOk());
  MailboxConfig m = imap_box();
  m.auth = AuthMethod::kOAuth2;
  m.app = "missing-app";
  EXPECT_THAT(make_mailbox(m, c, auth->get()),
              StatusIs(ErrorKind::kConfig, AllOf(HasSubstr("mailbox support"),
                                                 HasSubstr("\"missing-app\""))));
}

}  // namespace
}  // namespace mb
