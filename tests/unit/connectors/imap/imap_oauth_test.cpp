// File: tests/unit/connectors/imap/imap_oauth_test.cpp — the IMAP Mailbox with auth =
// "oauth2" over scripted servers and a real TokenCache on a scripted token source: XOAUTH2
// (OAUTHBEARER when it is all the server offers), one retry with a fresh token after a
// rejection (error challenge or bare NO), token errors passed through by kind, and the
// "token" step of the connection test.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <deque>
#include <string>
#include <vector>

#include "auth/base64.h"
#include "auth/token_cache.h"
#include "connectors/imap/imap_mailbox.h"
#include "connectors/imap/imap_syntax.h"
#include "tests/status_matchers.h"
#include "tests/unit/connectors/imap/imap_test_util.h"

namespace mb {
namespace {
using ::mb::imap::testing::Script;
using ::mb::imap::testing::scripted;
using ::mb::imap::testing::SharedStream;
using ::mb::testing::IsOk;
using ::mb::testing::StatusIs;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr uint32_t kValidity = 1700000000;
constexpr const char* kUser = "support@example.com";
// What Dovecot's oauth2 mechanism sends when its passdb refuses a token.
constexpr const char* kDovecotError = R"({"status":"401","schemes":"bearer","scope":"mail"})";

std::string xoauth2_ir(const std::string& token) {
  return base64_encode(sasl::xoauth2_message(kUser, token));
}

// Hands out "token-1", "token-2", … or the queued error.
class FakeTokenSource : public TokenSource {
 public:
  Result<TokenResponse> acquire(const TokenKey&, const std::optional<std::string>&) override {
    ++calls;
    if (!errors.empty()) {
      Status e = errors.front();
      errors.pop_front();
      return e;
    }
    TokenResponse r;
    r.access_token = "token-" + std::to_string(calls);
    r.expires_in = std::chrono::seconds(3600);
    return r;
  }
  int calls = 0;
  std::deque<Status> errors;
};

// The server side after a successful sign-in: capabilities, then SELECT INBOX.
Script& selected(Script& s, const std::string& tag, const std::string& select_tag) {
  s.S(tag + " OK [CAPABILITY IMAP4rev1 UIDPLUS MOVE IDLE] Logged in")
      .C(select_tag + " SELECT \"INBOX\"")
      .S("* 2 EXISTS")
      .S("* OK [UIDVALIDITY " + std::to_string(kValidity) + "] UIDs valid")
      .S(select_tag + " OK [READ-WRITE] Select completed");
  return s;
}

struct Fixture {
  MailboxConfig cfg;
  FakeTokenSource source;
  TokenCache cache{source, nullptr};
  TokenKey key{"entra", "https://outlook.office365.com/.default", ""};
  std::deque<std::shared_ptr<ScriptedStream>> pending;
  std::vector<std::shared_ptr<ScriptedStream>> used;
  std::unique_ptr<Mailbox> mailbox;

  Fixture() {
    cfg.name = "support";
    cfg.type = ConnectorType::kImap;
    cfg.host = "127.0.0.1";
    cfg.port = 1993;
    cfg.security = Security::kNone;
    cfg.auth = AuthMethod::kOAuth2;
    cfg.app = "entra";
    cfg.user = kUser;
  }
  void add(const Script& s) { pending.push_back(scripted(s)); }
  Mailbox& mbx() {
    if (mailbox) return *mailbox;
    SignIn oauth;
    oauth.with_token = [this](const std::function<Status(const std::string&)>& fn) {
      return cache.with_token(key, fn);
    };
    oauth.describe = [] { return std::string("app entra, token endpoint https://login.test"); };
    auto factory = [this]() -> Result<std::unique_ptr<Stream>> {
      if (pending.empty()) {
        return Status(ErrorKind::kNetwork, "connection refused", ErrorScope::kConnection);
      }
      used.push_back(pending.front());
      pending.pop_front();
      return std::unique_ptr<Stream>(std::make_unique<SharedStream>(used.back()));
    };
    mailbox = make_imap_mailbox(cfg, std::move(oauth), factory);
    return *mailbox;
  }
  std::string written(size_t i) const { return used.at(i)->written(); }
};

constexpr const char* kBothMechs =
    "* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=PLAIN AUTH=OAUTHBEARER AUTH=XOAUTH2] ready";

TEST(ImapOAuthTest, SignsInWithXOAuth2EvenWhenOAuthBearerIsOffered) {
  Script s;
  s.S(kBothMechs).C("a1 AUTHENTICATE XOAUTH2 " + xoauth2_ir("token-1"));
  selected(s, "a1", "a2");
  s.C("a3 UID SEARCH UNSEEN").S("* SEARCH 4").S("a3 OK done");
  Fixture f;
  f.add(s);
  auto p = f.mbx().list_pending(50, "");
  ASSERT_THAT(p, IsOk());
  EXPECT_THAT(p->keys, ElementsAre(imap::format_key(kValidity, 4)));
  EXPECT_EQ(f.source.calls, 1);
  EXPECT_EQ(f.written(0), s.client);
}

TEST(ImapOAuthTest, UsesOAuthBearerWhenItIsAllTheServerOffers) {
  Script s;
  s.S("* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=OAUTHBEARER] ready")
      .C("a1 AUTHENTICATE OAUTHBEARER " +
         base64_encode(sasl::oauthbearer_message(kUser, "127.0.0.1", 1993, "token-1")));
  selected(s, "a1", "a2");
  Fixture f;
  f.add(s);
  ConnectionReport r = f.mbx().test_connection();
  ASSERT_THAT(r.status, IsOk());
  ASSERT_GE(r.steps.size(), 5u);
  EXPECT_EQ(r.steps[4].name, "sign-in");
  EXPECT_THAT(r.steps[4].detail, HasSubstr("AUTHENTICATE OAUTHBEARER with an OAuth token"));
  EXPECT_EQ(f.written(0).substr(0, s.client.size()), s.client);
}

TEST(ImapOAuthTest, RejectedTokenInErrorChallengeIsReplacedOnceOnTheSameConnection) {
  Script s;
  s.S(kBothMechs)
      .C("a1 AUTHENTICATE XOAUTH2 " + xoauth2_ir("token-1"))
      .S(std::string("+ ") + base64_encode(kDovecotError))
      .C("")
      .S("a1 NO [AUTHENTICATIONFAILED] Authentication failed.")
      .C("a2 AUTHENTICATE XOAUTH2 " + xoauth2_ir("token-2"));
  selected(s, "a2", "a3");
  s.C("a4 UID SEARCH UNSEEN").S("* SEARCH").S("a4 OK done");
  Fixture f;
  f.add(s);
  ASSERT_THAT(f.mbx().list_pending(50, ""), IsOk());
  EXPECT_EQ(f.source.calls, 2);
  EXPECT_EQ(f.used.size(), 1u);
  EXPECT_EQ(f.written(0), s.client);
}

TEST(ImapOAuthTest, BareNoToXOAuth2CountsAsARejectedToken) {
  Script s;
  s.S(kBothMechs)
      .C("a1 AUTHENTICATE XOAUTH2 " + xoauth2_ir("token-1"))
      .S("a1 NO AUTHENTICATE failed.")
      .C("a2 AUTHENTICATE XOAUTH2 " + xoauth2_ir("token-2"));
  selected(s, "a2", "a3");
  s.C("a4 UID SEARCH UNSEEN").S("* SEARCH").S("a4 OK done");
  Fixture f;
  f.add(s);
  ASSERT_THAT(f.mbx().list_pending(50, ""), IsOk());
  EXPECT_EQ(f.source.calls, 2);
  EXPECT_EQ(f.written(0), s.client);
}

TEST(ImapOAuthTest, TokenRejectedTwiceIsAnAuthFailureAfterExactlyOneRetry) {
  Script s;
  s.S(kBothMechs);
  for (int i = 1; i <= 2; ++i) {
    const std::string tag = "a" + std::to_string(i);
    s.C(tag + " AUTHENTICATE XOAUTH2 " + xoauth2_ir("token-" + std::to_string(i)))
        .S(std::string("+ ") + base64_encode(kDovecotError))
        .C("")
        .S(tag + " NO [AUTHENTICATIONFAILED] Authentication failed.");
  }
  Fixture f;
  f.add(s);
  auto p = f.mbx().list_pending(50, "");
  EXPECT_THAT(p.status(), StatusIs(ErrorKind::kAuth,
                                   AllOf(HasSubstr("token rejected"), HasSubstr("status 401"),
                                         HasSubstr(kUser), Not(HasSubstr("token-2")))));
  EXPECT_EQ(f.source.calls, 2);
  EXPECT_EQ(f.written(0), s.client);
}

TEST(ImapOAuthTest, TokenErrorsKeepTheirKindAndSendNoCredentials) {
  for (ErrorKind kind : {ErrorKind::kAuth, ErrorKind::kNetwork}) {
    Script s;
    s.S(kBothMechs);
    Fixture f;
    f.source.errors.push_back(Status(kind, "app entra: invalid_client (AADSTS7000215)"));
    f.add(s);
    auto p = f.mbx().list_pending(50, "");
    EXPECT_THAT(p.status(), StatusIs(kind, HasSubstr("AADSTS7000215")));
    ASSERT_EQ(f.used.size(), 1u);
    EXPECT_EQ(f.written(0), "");  // no AUTHENTICATE without a token
  }
}

TEST(ImapOAuthTest, TestConnectionHasATokenStepBeforeTheSignIn) {
  Script s;
  s.S(kBothMechs).C("a1 AUTHENTICATE XOAUTH2 " + xoauth2_ir("token-1"));
  selected(s, "a1", "a2");
  s.C("a3 LOGOUT").S("* BYE Logging out").S("a3 OK Logout completed");
  Fixture f;
  f.add(s);
  ConnectionReport r = f.mbx().test_connection();
  ASSERT_THAT(r.status, IsOk());
  std::vector<std::string> names;
  for (const auto& st : r.steps) {
    names.push_back(st.name);
    EXPECT_THAT(st.detail, Not(HasSubstr("token-1"))) << st.name;
  }
  EXPECT_THAT(names,
              ElementsAre("resolve", "connect", "tls", "token", "sign-in", "open-folder", "count"));
  EXPECT_THAT(r.steps[2].detail, HasSubstr("the token travels in plaintext"));
  EXPECT_EQ(r.steps[3].detail, "app entra, token endpoint https://login.test");
  EXPECT_THAT(r.steps[4].detail,
              HasSubstr("signed in as support@example.com (AUTHENTICATE XOAUTH2"));
  EXPECT_EQ(f.source.calls, 1);  // the step's token is the one that signs in
  EXPECT_EQ(f.written(0), s.client);
}

TEST(ImapOAuthTest, TestConnectionNamesAFailingGrantAsTheTokenStep) {
  Script s;
  s.S(kBothMechs);
  Fixture f;
  f.source.errors.push_back(Status(ErrorKind::kAuth, "app entra: invalid_client: wrong secret"));
  f.add(s);
  ConnectionReport r = f.mbx().test_connection();
  EXPECT_THAT(r.status, StatusIs(ErrorKind::kAuth, HasSubstr("wrong secret")));
  ASSERT_FALSE(r.steps.empty());
  EXPECT_EQ(r.steps.back().name, "token");
  EXPECT_FALSE(r.steps.back().ok);
  EXPECT_THAT(r.steps.back().detail, HasSubstr("invalid_client"));
  EXPECT_EQ(f.written(0).find("AUTHENTICATE"), std::string::npos);
}

}  // namespace
}  // namespace mb
