// File: tests/unit/connectors/imap/registry_test.cpp — make_mailbox: which types and auths
// build a connector, and how a missing secret is reported.
#include "connectors/registry.h"

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
  m.type = "imap";
  m.host = "127.0.0.1";
  m.port = 1;
  m.user = "support";
  m.auth = "password";
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

TEST(RegistryTest, OtherTypesAreNotSupportedYet) {
  MailboxConfig m = imap_box();
  m.type = "pop3";
  EXPECT_THAT(make_mailbox(m, Config{}),
              StatusIs(ErrorKind::kConfig, HasSubstr("mailbox support: type pop3 is not supported yet")));
}

TEST(RegistryTest, OAuthIsNotSupportedYetAndNoSecretIsRead) {
  MailboxConfig m = imap_box();
  m.auth = "oauth2";
  m.password.ref = "literal-should-not-appear";
  EXPECT_THAT(make_mailbox(m, Config{}),
              StatusIs(ErrorKind::kConfig, AllOf(HasSubstr("auth oauth2"), HasSubstr("not supported yet"),
                                                 Not(HasSubstr("literal-should-not-appear")))));
}

}  // namespace
}  // namespace mb
