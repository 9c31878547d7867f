// File: tests/unit/connectors/imap/imap_sasl_test.cpp — IMAP AUTHENTICATE driving the SASL
// mechanisms against scripted servers: XOAUTH2 and OAUTHBEARER (success, SASL-IR and the
// error challenge decoded into kAuth), LOGIN, and the refusals made before anything is sent.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "auth/base64.h"
#include "auth/sasl.h"
#include "connectors/imap/imap_client.h"
#include "tests/status_matchers.h"
#include "tests/unit/connectors/imap/imap_test_util.h"

namespace mb::imap {
namespace {
using ::mb::imap::testing::Script;
using ::mb::imap::testing::scripted;
using ::mb::imap::testing::SharedStream;
using ::mb::testing::IsOk;
using ::mb::testing::StatusIs;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr const char* kToken = "ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg";
constexpr const char* kPassword = "s3cret-Pa55";
// Gmail's answer to a rejected token:
// {"status":"401","schemes":"Bearer","scope":"https://mail.google.com/"}
constexpr const char* kGmailError =
    "eyJzdGF0dXMiOiI0MDEiLCJzY2hlbWVzIjoiQmVhcmVyIiwic2NvcGUiOiJodHRwczovL21haWwuZ29vZ2xlLmNv"
    "bS8ifQ==";

struct Harness {
  std::shared_ptr<ScriptedStream> stream;
  std::vector<std::string> trace;
  std::unique_ptr<Client> client;

  explicit Harness(const Script& script, bool allow_plaintext = true) {
    stream = scripted(script);
    ClientOptions o;
    o.host = "imap.example";
    o.allow_plaintext_auth = allow_plaintext;
    o.trace = [this](const std::string& line) { trace.push_back(line); };
    client = std::make_unique<Client>(o);
  }
  Status connect() { return client->connect(std::make_unique<SharedStream>(stream)); }
  const std::string& written() const { return stream->written(); }
  std::string all_trace() const {
    std::string t;
    for (const auto& l : trace) t += l + "\n";
    return t;
  }
};

sasl::Credentials token(const std::string& user = "someuser@example.com") {
  sasl::Credentials c;
  c.kind = sasl::CredentialKind::kToken;
  c.user = user;
  c.secret = kToken;
  return c;
}

sasl::Credentials password() {
  sasl::Credentials c;
  c.user = "support";
  c.secret = kPassword;
  return c;
}

TEST(ImapSaslTest, XOAuth2WithSaslIr) {
  std::string ir = base64_encode(sasl::xoauth2_message("someuser@example.com", kToken));
  Script s;
  s.S("* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=XOAUTH2 AUTH=PLAIN] Gimap ready")
      .C("a1 AUTHENTICATE XOAUTH2 " + ir)
      .S("a1 OK [CAPABILITY IMAP4rev1 UIDPLUS MOVE] someuser@example.com authenticated (Success)");
  Harness h(s);
  ASSERT_THAT(h.connect(), IsOk());
  auto how = h.client->sign_in(token());
  ASSERT_THAT(how, IsOk());
  EXPECT_EQ(*how, SignInMethod::kAuthenticate);
  EXPECT_EQ(h.client->mechanism(), "XOAUTH2");
  EXPECT_EQ(h.client->state(), State::kAuthenticated);
  EXPECT_EQ(h.written(), s.client);
  EXPECT_THAT(h.all_trace(), AllOf(HasSubstr("C: a1 AUTHENTICATE XOAUTH2 <redacted>"),
                                   Not(HasSubstr(ir)), Not(HasSubstr(kToken))));
}

// Gmail without SASL-IR: the token goes after "+", the error comes back as a JSON challenge,
// the client answers with an empty line and the final NO carries little.
TEST(ImapSaslTest, XOAuth2ErrorChallengeIsDecodedIntoAuth) {
  std::string ir = base64_encode(sasl::xoauth2_message("someuser@example.com", kToken));
  Script s;
  s.S("* OK [CAPABILITY IMAP4rev1 AUTH=XOAUTH2] ready")
      .C("a1 AUTHENTICATE XOAUTH2")
      .S("+ ")
      .C(ir)
      .S(std::string("+ ") + kGmailError)
      .C("")
      .S("a1 NO [AUTHENTICATIONFAILED] Invalid credentials (Failure)");
  Harness h(s);
  ASSERT_THAT(h.connect(), IsOk());
  Status st = h.client->sign_in(token()).status();
  EXPECT_THAT(st, StatusIs(ErrorKind::kAuth,
                           AllOf(HasSubstr("IMAP server refused the login for user "
                                           "someuser@example.com: token rejected: status 401, "
                                           "scope https://mail.google.com/"),
                                 HasSubstr("Invalid credentials (Failure)"),
                                 Not(HasSubstr(kToken)))));
  EXPECT_EQ(st.scope(), ErrorScope::kMailbox);
  EXPECT_EQ(h.client->state(), State::kNotAuthenticated);  // the connection is still fine
  EXPECT_EQ(h.written(), s.client);
  EXPECT_THAT(h.all_trace(), Not(HasSubstr(kToken)));
}

// RFC 7628 §4.1 verbatim: OAUTHBEARER (chosen when the server offers no XOAUTH2, which the
// one order of auth/sasl.h puts first), sent with SASL-IR.
TEST(ImapSaslTest, OAuthBearerWithSaslIrMatchesRfc7628) {
  Script s;
  s.S("* OK IMAP4rev1 Server Ready")
      .C("a1 CAPABILITY")
      .S("* CAPABILITY IMAP4rev1 AUTH=OAUTHBEARER SASL-IR")
      .S("a1 OK Completed")
      .C("a2 AUTHENTICATE OAUTHBEARER bixhPXVzZXJAZXhhbXBsZS5jb20sAWhvc3Q9c2VydmVyLmV4YW1wbG"
         "UuY29tAXBvcnQ9MTQzAWF1dGg9QmVhcmVyIHZGOWRmdDRxbVRjMk52YjNSbGNrQmhiSFJoZG1semRHRXVZ"
         "Mjl0Q2c9PQEB")
      .S("a2 OK [CAPABILITY IMAP4rev1] SASL authentication succeeded");
  Harness h(s);
  ASSERT_THAT(h.connect(), IsOk());
  sasl::Credentials c = token("user@example.com");
  c.secret = "vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==";
  c.host = "server.example.com";
  c.port = 143;
  ASSERT_THAT(h.client->sign_in(c), IsOk());
  EXPECT_EQ(h.client->mechanism(), "OAUTHBEARER");
  EXPECT_EQ(h.written(), s.client);
}

// RFC 7628 §4.3: the failure challenge is answered with ^A ("AQ==").
TEST(ImapSaslTest, OAuthBearerFailureAnswersWithSohAndIsAuth) {
  auto mech = sasl::make_oauthbearer(token());
  std::string ir = base64_encode(sasl::oauthbearer_message("someuser@example.com", "", 0, kToken));
  Script s;
  s.S("* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=OAUTHBEARER] ready")
      .C("a1 AUTHENTICATE OAUTHBEARER " + ir)
      .S("+ eyJzdGF0dXMiOiJpbnZhbGlkX3Rva2VuIiwic2NvcGUiOiJleGFtcGxlX3Njb3BlIiwib3BlbmlkLWNv"
         "bmZpZ3VyYXRpb24iOiJodHRwczovL2V4YW1wbGUuY29tLy53ZWxsLWtub3duL29wZW5pZC1jb25maWd1cmF0"
         "aW9uIn0=")
      .C("AQ==")
      .S("a1 NO SASL authentication failed");
  Harness h(s);
  ASSERT_THAT(h.connect(), IsOk());
  EXPECT_THAT(h.client->authenticate(*mech, token()),
              StatusIs(ErrorKind::kAuth, AllOf(HasSubstr("token rejected: status invalid_token, "
                                                         "scope example_scope"),
                                               Not(HasSubstr(kToken)))));
  EXPECT_EQ(h.written(), s.client);
}

TEST(ImapSaslTest, ServerAcceptingAfterItsErrorChallengeIsProtocol) {
  std::string ir = base64_encode(sasl::xoauth2_message("someuser@example.com", kToken));
  Script s;
  s.S("* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=XOAUTH2] ready")
      .C("a1 AUTHENTICATE XOAUTH2 " + ir)
      .S(std::string("+ ") + kGmailError)
      .C("")
      .S("a1 OK welcome anyway");
  Harness h(s);
  ASSERT_THAT(h.connect(), IsOk());
  EXPECT_THAT(h.client->sign_in(token()),
              StatusIs(ErrorKind::kProtocol, HasSubstr("after reporting an error")));
  EXPECT_EQ(h.client->state(), State::kDisconnected);
}

TEST(ImapSaslTest, LoginMechanismAnswersBothPrompts) {
  Script s;
  s.S("* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=LOGIN AUTH=XOAUTH2] ready")
      .C("a1 AUTHENTICATE LOGIN")
      .S("+ VXNlcm5hbWU6")  // "Username:"
      .C(base64_encode("support"))
      .S("+ UGFzc3dvcmQ6")  // "Password:"
      .C(base64_encode(kPassword))
      .S("a1 OK [CAPABILITY IMAP4rev1 MOVE] Logged in");
  Harness h(s);
  ASSERT_THAT(h.connect(), IsOk());
  auto how = h.client->sign_in(password());
  ASSERT_THAT(how, IsOk());
  EXPECT_EQ(*how, SignInMethod::kAuthenticate);
  EXPECT_EQ(h.client->mechanism(), "LOGIN");
  EXPECT_TRUE(h.client->has_capability("MOVE"));
  EXPECT_EQ(h.written(), s.client);
  EXPECT_THAT(h.all_trace(), AllOf(HasSubstr("C: <redacted>"),
                                   Not(HasSubstr(base64_encode(kPassword)))));
}

TEST(ImapSaslTest, TokenWithoutOAuthMechanismIsRefusedBeforeSending) {
  Script s;
  s.S("* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=PLAIN AUTH=LOGIN] ready");
  Harness h(s);
  ASSERT_THAT(h.connect(), IsOk());
  EXPECT_THAT(h.client->sign_in(token()),
              StatusIs(ErrorKind::kConfig,
                       AllOf(HasSubstr("IMAP server imap.example: no SASL mechanism in common"),
                             HasSubstr("offers LOGIN, PLAIN"),
                             HasSubstr("XOAUTH2, OAUTHBEARER"))));
  EXPECT_EQ(h.written(), "");
}

TEST(ImapSaslTest, PasswordWhereOnlyOAuthIsOfferedSaysTheTokenIsMissing) {
  Script s;
  s.S("* OK [CAPABILITY IMAP4rev1 LOGINDISABLED AUTH=XOAUTH2 AUTH=OAUTHBEARER] ready");
  Harness h(s);
  ASSERT_THAT(h.connect(), IsOk());
  EXPECT_THAT(h.client->sign_in(password()),
              StatusIs(ErrorKind::kConfig, AllOf(HasSubstr("LOGINDISABLED"),
                                                 HasSubstr("need a token"))));
  EXPECT_EQ(h.written(), "");
}

TEST(ImapSaslTest, PasswordOverPlaintextIsRefusedUnlessAllowed) {
  for (const char* caps : {"IMAP4rev1 AUTH=PLAIN", "IMAP4rev1"}) {
    Script s;
    s.S(std::string("* OK [CAPABILITY ") + caps + "] ready");
    Harness h(s, /*allow_plaintext=*/false);
    ASSERT_THAT(h.connect(), IsOk());
    EXPECT_THAT(h.client->sign_in(password()),
                StatusIs(ErrorKind::kConfig, HasSubstr("not encrypted"))) << caps;
    EXPECT_EQ(h.written(), "") << caps;
  }
}

}  // namespace
}  // namespace mb::imap
