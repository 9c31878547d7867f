// File: tests/unit/auth/sasl_test.cpp — base64, the SASL message builders against the RFC
// 4616 / RFC 7628 / Google examples, each mechanism driven through Exchange, and the choice
// of mechanism with its explained refusals.
#include "auth/sasl.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "auth/base64.h"
#include "tests/status_matchers.h"

namespace mb::sasl {
namespace {
using ::mb::testing::IsOk;
using ::mb::testing::StatusIs;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::Optional;

// RFC 7628 §4.1 and §4.3 (IMAP), verbatim.
constexpr const char* kRfc7628Token = "vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==";
constexpr const char* kRfc7628Initial =
    "bixhPXVzZXJAZXhhbXBsZS5jb20sAWhvc3Q9c2VydmVyLmV4YW1wbGUuY29tAXBvcnQ9MTQzAWF1dGg9QmVhcmVy"
    "IHZGOWRmdDRxbVRjMk52YjNSbGNrQmhiSFJoZG1semRHRXVZMjl0Q2c9PQEB";
constexpr const char* kRfc7628Failure =
    "eyJzdGF0dXMiOiJpbnZhbGlkX3Rva2VuIiwic2NvcGUiOiJleGFtcGxlX3Njb3BlIiwib3BlbmlkLWNvbmZpZ3Vy"
    "YXRpb24iOiJodHRwczovL2V4YW1wbGUuY29tLy53ZWxsLWtub3duL29wZW5pZC1jb25maWd1cmF0aW9uIn0=";
// Google's XOAUTH2 documentation example.
constexpr const char* kGoogleToken = "ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg";
constexpr const char* kGoogleInitial =
    "dXNlcj1zb21ldXNlckBleGFtcGxlLmNvbQFhdXRoPUJlYXJlciB5YTI5LnZGOWRmdDRxbVRjMk52YjNSbGNrQmhk"
    "SFJoZG1semRHRXVZMjl0Q2cBAQ==";

Credentials password(std::string user = "support", std::string pw = "s3cret-Pa55") {
  Credentials c;
  c.user = std::move(user);
  c.secret = std::move(pw);
  return c;
}

Credentials token(std::string user, std::string tok, std::string host = "", uint16_t port = 0) {
  Credentials c;
  c.kind = CredentialKind::kToken;
  c.user = std::move(user);
  c.secret = std::move(tok);
  c.host = std::move(host);
  c.port = port;
  return c;
}

TEST(Base64Test, EncodesTheRfc4648Vectors) {
  const std::pair<const char*, const char*> cases[] = {
      {"", ""}, {"f", "Zg=="}, {"fo", "Zm8="}, {"foo", "Zm9v"},
      {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"}};
  for (const auto& [plain, encoded] : cases) {
    EXPECT_EQ(base64_encode(plain), encoded);
    EXPECT_THAT(base64_decode(encoded), Optional(std::string(plain)));
  }
  EXPECT_EQ(base64_encode(std::string("\xff\xfe\x00", 3)), "//4A");
}

TEST(Base64Test, RoundTripsEveryByte) {
  std::string all;
  for (int i = 0; i < 256; ++i) all.push_back(static_cast<char>(i));
  for (size_t n = 0; n <= all.size(); n += 37) {
    EXPECT_THAT(base64_decode(base64_encode(all.substr(0, n))), Optional(all.substr(0, n)));
  }
}

TEST(Base64Test, DecodingIsStrict) {
  for (const char* bad : {"Zg", "Zg=", "Z===", "Zm9v!A==", "Zm=v", "Zh==", "Zm9=", "Zm 9v",
                          "====", "Zm9v\r\n"}) {
    EXPECT_EQ(base64_decode(bad), std::nullopt) << bad;
  }
}

TEST(BuilderTest, PlainMatchesRfc4616) {
  EXPECT_EQ(base64_encode(plain_message("", "tim", "tanstaaftanstaaf")),
            "AHRpbQB0YW5zdGFhZnRhbnN0YWFm");
  EXPECT_EQ(plain_message("Ursel", "Kurt", "xipj3plmq"),
            std::string("Ursel\0Kurt\0xipj3plmq", 20));
}

TEST(BuilderTest, XOAuth2MatchesGooglesExample) {
  EXPECT_EQ(xoauth2_message("someuser@example.com", kGoogleToken),
            std::string("user=someuser@example.com\x01" "auth=Bearer ") + kGoogleToken +
                "\x01\x01");
  EXPECT_EQ(base64_encode(xoauth2_message("someuser@example.com", kGoogleToken)),
            kGoogleInitial);
}

TEST(BuilderTest, OAuthBearerMatchesRfc7628) {
  EXPECT_EQ(base64_encode(oauthbearer_message("user@example.com", "server.example.com", 143,
                                              kRfc7628Token)),
            kRfc7628Initial);
  // Without host and port, and with a user name that needs RFC 5801 escaping.
  EXPECT_EQ(oauthbearer_message("a,b=c@x", "", 0, "t"),
            "n,a=a=2Cb=3Dc@x,\x01" "auth=Bearer t\x01\x01");
}

TEST(BearerErrorTest, DecodesTheRfc7628FailureChallenge) {
  auto json = base64_decode(kRfc7628Failure);
  ASSERT_TRUE(json.has_value());
  auto e = parse_bearer_error(*json);
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->status, "invalid_token");
  EXPECT_EQ(e->scope, "example_scope");
  EXPECT_EQ(e->openid_configuration, "https://example.com/.well-known/openid-configuration");
  EXPECT_EQ(describe(*e),
            "token rejected: status invalid_token, scope example_scope, see "
            "https://example.com/.well-known/openid-configuration");
}

TEST(BearerErrorTest, DescribesGooglesChallengeAndRefusesNonJson) {
  auto e = parse_bearer_error(
      R"({"status":"401","schemes":"Bearer","scope":"https://mail.google.com/"})");
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->schemes, "Bearer");
  EXPECT_EQ(describe(*e), "token rejected: status 401, scope https://mail.google.com/");
  EXPECT_EQ(describe(BearerError{}), "token rejected");
  EXPECT_EQ(parse_bearer_error("not json"), std::nullopt);
  EXPECT_EQ(parse_bearer_error("[1,2]"), std::nullopt);
  EXPECT_THAT(bearer_failure("\x01garbage"),
              StatusIs(ErrorKind::kAuth, HasSubstr("token rejected (the server's error "
                                                   "challenge is not JSON: ?garbage)")));
}

TEST(ExchangeTest, PlainSendsItsInitialResponseWithTheCommand) {
  auto mech = make_plain(password("tim", "tanstaaftanstaaf"));
  Exchange ex(*mech);
  EXPECT_EQ(ex.name(), "PLAIN");
  EXPECT_FALSE(mech->is_done());
  EXPECT_THAT(ex.initial_response(), Optional(std::string("AHRpbQB0YW5zdGFhZnRhbnN0YWFm")));
  EXPECT_TRUE(mech->is_done());
  EXPECT_EQ(ex.initial_response(), std::nullopt);  // only once
  EXPECT_THAT(ex.failure(), IsOk());
}

TEST(ExchangeTest, PlainAnswersTheFirstChallengeWithoutSaslIr) {
  auto mech = make_plain(password("tim", "tanstaaftanstaaf"));
  Exchange ex(*mech);
  Reply r = ex.answer("");
  EXPECT_EQ(r.line, "AHRpbQB0YW5zdGFhZnRhbnN0YWFm");
  EXPECT_TRUE(r.secret);
  EXPECT_FALSE(ex.cancelled());
}

TEST(ExchangeTest, PlainCancelsOnAChallengeAfterTheCredentials) {
  auto mech = make_plain(password());
  Exchange ex(*mech);
  ASSERT_TRUE(ex.initial_response().has_value());
  Reply r = ex.answer(base64_encode("go away"));
  EXPECT_EQ(r.line, "*");
  EXPECT_FALSE(r.secret);
  EXPECT_TRUE(ex.cancelled());
  EXPECT_THAT(ex.failure(), StatusIs(ErrorKind::kAuth, AllOf(HasSubstr("challenge (go away)"),
                                                             Not(HasSubstr("s3cret")))));
}

TEST(ExchangeTest, LoginAnswersUserThenPasswordAndRefusesAThirdPrompt) {
  auto mech = make_login(password("support", "s3cret-Pa55"));
  Exchange ex(*mech);
  EXPECT_FALSE(mech->supports_initial_response());
  EXPECT_EQ(ex.initial_response(), std::nullopt);
  Reply user = ex.answer(base64_encode("Username:"));
  EXPECT_EQ(user.line, base64_encode("support"));
  EXPECT_FALSE(mech->is_done());
  Reply pw = ex.answer(base64_encode("Password:"));
  EXPECT_EQ(pw.line, base64_encode("s3cret-Pa55"));
  EXPECT_TRUE(pw.secret);
  EXPECT_TRUE(mech->is_done());
  EXPECT_THAT(ex.failure(), IsOk());
  EXPECT_EQ(ex.answer(base64_encode("Again:")).line, "*");
  EXPECT_THAT(ex.failure(), StatusIs(ErrorKind::kAuth, AllOf(HasSubstr("another challenge"),
                                                             Not(HasSubstr("s3cret")))));
}

TEST(ExchangeTest, XOAuth2ErrorChallengeGetsAnEmptyResponseAndBecomesTheFailure) {
  auto mech = make_xoauth2(token("someuser@example.com", kGoogleToken));
  Exchange ex(*mech);
  EXPECT_THAT(ex.initial_response(), Optional(std::string(kGoogleInitial)));
  Reply r = ex.answer(base64_encode(
      R"({"status":"401","schemes":"Bearer","scope":"https://mail.google.com/"})"));
  EXPECT_EQ(r.line, "");
  EXPECT_FALSE(r.secret);
  EXPECT_FALSE(ex.cancelled());
  Status f = ex.failure();
  EXPECT_THAT(f, StatusIs(ErrorKind::kAuth,
                          AllOf(HasSubstr("token rejected: status 401, scope "
                                          "https://mail.google.com/"),
                                Not(HasSubstr(kGoogleToken)))));
  EXPECT_EQ(f.scope(), ErrorScope::kMailbox);
  // A second challenge after the error breaks the protocol.
  EXPECT_EQ(ex.answer(base64_encode("{}")).line, "*");
  EXPECT_THAT(ex.failure(), StatusIs(ErrorKind::kProtocol, HasSubstr("after its error")));
}

TEST(ExchangeTest, OAuthBearerFollowsRfc7628FailedExchange) {
  auto mech =
      make_oauthbearer(token("user@example.com", kRfc7628Token, "server.example.com", 143));
  Exchange ex(*mech);
  EXPECT_THAT(ex.initial_response(), Optional(std::string(kRfc7628Initial)));
  Reply r = ex.answer(kRfc7628Failure);
  EXPECT_EQ(r.line, "AQ==");  // RFC 7628 §4.3: "C: AQ=="
  EXPECT_FALSE(r.secret);
  EXPECT_THAT(ex.failure(), StatusIs(ErrorKind::kAuth,
                                     AllOf(HasSubstr("status invalid_token, scope example_scope"),
                                           Not(HasSubstr(kRfc7628Token)))));
}

TEST(ExchangeTest, ChallengeThatIsNotBase64CancelsAsProtocolError) {
  auto mech = make_login(password());
  Exchange ex(*mech);
  EXPECT_EQ(ex.answer("User name?").line, "*");
  EXPECT_TRUE(ex.cancelled());
  EXPECT_THAT(ex.failure(),
              StatusIs(ErrorKind::kProtocol,
                       HasSubstr("LOGIN challenge that is not base64 (10 characters)")));
  EXPECT_EQ(ex.answer(base64_encode("Password:")).line, "*");  // stays cancelled
}

TEST(ExchangeTest, ServerEchoingTheSecretDoesNotLeakIt) {
  auto plain = make_plain(password("support", "s3cret-Pa55"));
  Exchange p(*plain);
  ASSERT_TRUE(p.initial_response().has_value());
  p.answer(base64_encode("bad password s3cret-Pa55"));
  EXPECT_THAT(p.failure(), StatusIs(ErrorKind::kAuth, AllOf(HasSubstr("bad password <redacted>"),
                                                            Not(HasSubstr("s3cret-Pa55")))));
  auto x = make_xoauth2(token("u", "tok-abcdef-123"));
  Exchange e(*x);
  ASSERT_TRUE(e.initial_response().has_value());
  e.answer(base64_encode(R"({"status":"401","scope":"tok-abcdef-123"})"));
  EXPECT_THAT(e.failure(), StatusIs(ErrorKind::kAuth, AllOf(HasSubstr("scope <redacted>"),
                                                            Not(HasSubstr("tok-abcdef")))));
}

TEST(MakeMechanismTest, ByNameCaseInsensitive) {
  auto m = make_mechanism("oauthbearer", token("u", "t"));
  ASSERT_THAT(m, IsOk());
  EXPECT_EQ((*m)->name(), "OAUTHBEARER");
  auto p = make_mechanism("Login", password());
  ASSERT_THAT(p, IsOk());
  EXPECT_EQ((*p)->name(), "LOGIN");
}

TEST(MakeMechanismTest, RefusesUnknownAndMismatchedMechanisms) {
  EXPECT_THAT(make_mechanism("CRAM-MD5", password()),
              StatusIs(ErrorKind::kConfig, HasSubstr("CRAM-MD5 is not supported")));
  EXPECT_THAT(make_mechanism("PLAIN", token("u", "t")),
              StatusIs(ErrorKind::kConfig, HasSubstr("PLAIN does not work with an OAuth token")));
  EXPECT_THAT(make_mechanism("XOAUTH2", password()),
              StatusIs(ErrorKind::kConfig, HasSubstr("XOAUTH2 does not work with a password")));
}

TEST(ChooseTest, PicksTheFirstCommonMechanismInTheOneOrder) {
  Preferences tls;
  EXPECT_THAT(choose_mechanism({"XOAUTH2", "PLAIN", "OAUTHBEARER"}, CredentialKind::kToken, tls),
              IsOk());
  // The one order of sasl.h: XOAUTH2 before OAUTHBEARER.
  EXPECT_EQ(*choose_mechanism({"xoauth2", "PLAIN", "oauthbearer"}, CredentialKind::kToken, tls),
            "XOAUTH2");
  EXPECT_EQ(*choose_mechanism({"PLAIN", "oauthbearer"}, CredentialKind::kToken, tls),
            "OAUTHBEARER");
  EXPECT_EQ(*choose_mechanism({"XOAUTH2", "PLAIN"}, CredentialKind::kToken, tls), "XOAUTH2");
  EXPECT_EQ(*choose_mechanism({"LOGIN", "PLAIN", "XOAUTH2"}, CredentialKind::kPassword, tls),
            "PLAIN");
  EXPECT_EQ(*choose_mechanism({"LOGIN", "GSSAPI"}, CredentialKind::kPassword, tls), "LOGIN");
}

TEST(ChooseTest, ConfigurationCanExcludeMechanisms) {
  Preferences p;
  p.allowed = {"xoauth2"};
  EXPECT_EQ(*choose_mechanism({"OAUTHBEARER", "XOAUTH2"}, CredentialKind::kToken, p), "XOAUTH2");
  EXPECT_THAT(choose_mechanism({"OAUTHBEARER"}, CredentialKind::kToken, p),
              StatusIs(ErrorKind::kConfig,
                       AllOf(HasSubstr("offers OAUTHBEARER"), HasSubstr("we can use XOAUTH2"))));
  p.allowed = {"CRAM-MD5"};
  EXPECT_THAT(choose_mechanism({"PLAIN"}, CredentialKind::kPassword, p),
              StatusIs(ErrorKind::kConfig, HasSubstr("none (all excluded by configuration)")));
}

TEST(ChooseTest, ExplainsEachRefusal) {
  Preferences tls;
  EXPECT_THAT(choose_mechanism({}, CredentialKind::kToken, tls),
              StatusIs(ErrorKind::kConfig, HasSubstr("offers no SASL mechanism")));
  EXPECT_THAT(choose_mechanism({"PLAIN", "LOGIN"}, CredentialKind::kToken, tls),
              StatusIs(ErrorKind::kConfig,
                       AllOf(HasSubstr("no SASL mechanism in common"),
                             HasSubstr("offers LOGIN, PLAIN"),
                             HasSubstr("with an OAuth token we can use XOAUTH2, OAUTHBEARER"))));
  EXPECT_THAT(choose_mechanism({"XOAUTH2", "OAUTHBEARER"}, CredentialKind::kPassword, tls),
              StatusIs(ErrorKind::kConfig, AllOf(HasSubstr("need a token"),
                                                 HasSubstr("auth = password"))));
  EXPECT_THAT(choose_mechanism({"CRAM-MD5"}, CredentialKind::kPassword, tls),
              StatusIs(ErrorKind::kConfig, AllOf(HasSubstr("offers CRAM-MD5"),
                                                 HasSubstr("we can use PLAIN, LOGIN"))));
}

TEST(ChooseTest, PasswordMechanismsNeedTlsUnlessPlaintextWasChosen) {
  Preferences p;
  p.tls = false;
  EXPECT_THAT(choose_mechanism({"PLAIN"}, CredentialKind::kPassword, p),
              StatusIs(ErrorKind::kConfig, AllOf(HasSubstr("not encrypted"),
                                                 HasSubstr("security = none"))));
  EXPECT_EQ(*choose_mechanism({"OAUTHBEARER"}, CredentialKind::kToken, p), "OAUTHBEARER");
  p.plaintext_allowed = true;
  EXPECT_EQ(*choose_mechanism({"PLAIN"}, CredentialKind::kPassword, p), "PLAIN");
}

}  // namespace
}  // namespace mb::sasl
