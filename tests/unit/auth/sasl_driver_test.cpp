// File: tests/unit/auth/sasl_driver_test.cpp — the one AUTH loop (sasl::authenticate) against
// a scripted server for each protocol descriptor: the round cap, the error challenge that
// outranks the terse final refusal, the initial-response limit and the mechanism order.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <deque>

#include "auth/base64.h"
#include "auth/sasl.h"
#include "tests/status_matchers.h"

namespace mb::sasl {
namespace {
using ::mb::testing::IsOk;
using ::mb::testing::StatusIs;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

// A server that answers from a script. Lines are written the protocol's way: "+ <b64>" for
// an IMAP or POP3 challenge, "334 <b64>" for SMTP; "OK …"/"235 …" accept, anything else
// refuses.
class ScriptedLink : public Link {
 public:
  ScriptedLink(const Protocol& p, std::deque<std::string> script, bool ir = true)
      : p_(p), script_(std::move(script)), ir_(ir) {}
  std::string server() const override { return std::string(p_.name) + " server"; }
  bool initial_response_allowed() const override { return ir_; }
  Status send_command(const std::string& line, size_t secret_from) override {
    sent.push_back(line);
    secret_froms.push_back(secret_from);
    return Status::Ok();
  }
  Status send_response(const Reply& reply) override {
    sent.push_back(reply.line);
    secret_froms.push_back(reply.secret ? 0 : std::string::npos);
    return Status::Ok();
  }
  Result<Answer> read() override {
    if (script_.empty()) return Status(ErrorKind::kNetwork, "script ended", ErrorScope::kConnection);
    std::string l = script_.front();
    script_.pop_front();
    std::string prefix = p_.continuation == 334 ? "334" : "+";
    if (l.rfind(prefix, 0) == 0) {
      return Answer{p_.continuation, l.size() > prefix.size() ? l.substr(prefix.size() + 1) : ""};
    }
    size_t sp = l.find(' ');
    std::string head = l.substr(0, sp);
    return Answer{head == "OK" || head == "235" ? 1 : 2,
                  sp == std::string::npos ? "" : l.substr(sp + 1)};
  }
  bool accepted(const Answer& a) const override { return a.code == 1; }
  Status refused(const Answer& a) override {
    return Status(ErrorKind::kAuth, "plain refusal: " + a.text, ErrorScope::kMailbox);
  }
  Status fail(Status s) override {
    if (!s.ok()) failed = true;
    return s;
  }

  std::vector<std::string> sent;
  std::vector<size_t> secret_froms;
  bool failed = false;

 private:
  const Protocol& p_;
  std::deque<std::string> script_;
  bool ir_;
};

Credentials password() {
  Credentials c;
  c.user = "support";
  c.secret = "pw-secret";
  return c;
}

Credentials token(std::string t = "tok") {
  Credentials c;
  c.kind = CredentialKind::kToken;
  c.user = "support@example.com";
  c.secret = std::move(t);
  return c;
}

std::string challenge(const Protocol& p, std::string_view raw) {
  return (p.continuation == 334 ? "334 " : "+ ") + base64_encode(raw);
}

std::string accept(const Protocol& p) { return p.continuation == 334 ? "235 ok" : "OK done"; }

class DriverTest : public ::testing::TestWithParam<const Protocol*> {
 protected:
  const Protocol& p() const { return *GetParam(); }
};

TEST_P(DriverTest, SendsTheInitialResponseWithTheCommandAndAcceptsTheVerdict) {
  Credentials c = password();
  auto mech = make_plain(c);
  ScriptedLink link(p(), {accept(p())});
  EXPECT_THAT(authenticate(p(), link, *mech, c), IsOk());
  std::string cmd = std::string(p().command) + " PLAIN ";
  ASSERT_EQ(link.sent.size(), 1u);
  EXPECT_THAT(link.sent[0], StartsWith(cmd));
  EXPECT_EQ(link.secret_froms[0], cmd.size());
}

TEST_P(DriverTest, WithoutInitialResponseTheFirstChallengeGetsIt) {
  Credentials c = password();
  auto mech = make_plain(c);
  ScriptedLink link(p(), {p().continuation == 334 ? "334 " : "+ ", accept(p())}, /*ir=*/false);
  EXPECT_THAT(authenticate(p(), link, *mech, c), IsOk());
  ASSERT_EQ(link.sent.size(), 2u);
  EXPECT_EQ(link.sent[0], std::string(p().command) + " PLAIN");
  EXPECT_EQ(link.sent[1], base64_encode(plain_message("", "support", "pw-secret")));
  EXPECT_EQ(link.secret_froms[1], 0u);
}

TEST_P(DriverTest, LoginAnswersEachPromptInTurn) {
  Credentials c = password();
  auto mech = make_login(c);
  ScriptedLink link(p(), {challenge(p(), "Username:"), challenge(p(), "Password:"), accept(p())});
  EXPECT_THAT(authenticate(p(), link, *mech, c), IsOk());
  EXPECT_THAT(link.sent, ElementsAre(std::string(p().command) + " LOGIN", base64_encode("support"),
                                     base64_encode("pw-secret")));
}

TEST_P(DriverTest, MoreChallengesThanTheCapIsAProtocolError) {
  Credentials c = password();
  auto mech = make_login(c);
  std::deque<std::string> script;
  for (int i = 0; i <= p().max_challenges; ++i) script.push_back(challenge(p(), "again?"));
  ScriptedLink link(p(), script);
  EXPECT_THAT(authenticate(p(), link, *mech, c),
              StatusIs(ErrorKind::kProtocol,
                       AllOf(HasSubstr("sent more than " + std::to_string(p().max_challenges)),
                             HasSubstr("LOGIN challenges"))));
  EXPECT_TRUE(link.failed);
  // Every challenge up to the cap was answered ("*" once LOGIN had nothing more to say).
  EXPECT_EQ(link.sent.size(), static_cast<size_t>(p().max_challenges) + 1);
  EXPECT_EQ(link.sent.back(), "*");
}

TEST_P(DriverTest, AnErrorChallengeOutranksTheTerseFinalRefusal) {
  Credentials c = token("tok-secret");
  auto mech = make_xoauth2(c);
  ScriptedLink link(p(), {challenge(p(), R"({"status":"401","scope":"mail"})"), "NO denied"});
  EXPECT_THAT(authenticate(p(), link, *mech, c),
              StatusIs(ErrorKind::kAuth,
                       AllOf(HasSubstr(std::string(p().name) +
                                       " server refused the login for user support@example.com"),
                             HasSubstr("token rejected: status 401, scope mail"),
                             HasSubstr("(server: denied)"), Not(HasSubstr("plain refusal")),
                             Not(HasSubstr("tok-secret")))));
  EXPECT_EQ(link.sent.back(), "");  // XOAUTH2 answers the error challenge with nothing
  EXPECT_FALSE(link.failed);
}

TEST_P(DriverTest, APlainRefusalIsTheProtocolsOwn) {
  Credentials c = password();
  auto mech = make_plain(c);
  ScriptedLink link(p(), {"NO bad password"});
  EXPECT_THAT(authenticate(p(), link, *mech, c),
              StatusIs(ErrorKind::kAuth, HasSubstr("plain refusal: bad password")));
}

TEST_P(DriverTest, AcceptingACancelledExchangeIsAProtocolError) {
  Credentials c = password();
  auto mech = make_plain(c);
  ScriptedLink link(p(), {p().continuation == 334 ? "334 !!notbase64" : "+ !!notbase64",
                          accept(p())});
  EXPECT_THAT(authenticate(p(), link, *mech, c),
              StatusIs(ErrorKind::kProtocol, HasSubstr("that was cancelled")));
  EXPECT_TRUE(link.failed);
}

TEST_P(DriverTest, AnUnanswerableChallengeIsReportedWithTheCommand) {
  Credentials c = token();
  auto mech = make_oauthbearer(c);
  ScriptedLink link(p(), {challenge(p(), "{}"), challenge(p(), "{}"), "NO stop"});
  EXPECT_THAT(authenticate(p(), link, *mech, c),
              StatusIs(ErrorKind::kProtocol,
                       AllOf(HasSubstr(std::string(p().name) + " " + std::string(p().command) +
                                       " OAUTHBEARER: "),
                             HasSubstr("after its error"), HasSubstr("(server: stop)"))));
  EXPECT_TRUE(link.failed);
}

INSTANTIATE_TEST_SUITE_P(Protocols, DriverTest, ::testing::Values(&kImap, &kPop3, &kSmtp),
                         [](const auto& info) { return std::string(info.param->name); });

TEST(DriverLimitTest, Pop3HoldsALongInitialResponseForTheFirstChallenge) {
  Credentials c = token(std::string(300, 't'));
  auto mech = make_xoauth2(c);
  ScriptedLink ok(kPop3, {"+", "OK in"});
  EXPECT_THAT(authenticate(kPop3, ok, *mech, c), IsOk());
  ASSERT_EQ(ok.sent.size(), 2u);
  EXPECT_EQ(ok.sent[0], "AUTH XOAUTH2");
  EXPECT_EQ(ok.sent[1], base64_encode(xoauth2_message(c.user, c.secret)));
  EXPECT_EQ(ok.secret_froms[1], 0u);
  // A short one rides on the command line.
  Credentials s = token("short");
  auto m2 = make_xoauth2(s);
  ScriptedLink shorter(kPop3, {"OK in"});
  EXPECT_THAT(authenticate(kPop3, shorter, *m2, s), IsOk());
  EXPECT_EQ(shorter.sent[0], "AUTH XOAUTH2 " + base64_encode(xoauth2_message(s.user, s.secret)));
  EXPECT_LE(shorter.sent[0].size(), kPop3.max_command_line);
}

TEST(DriverLimitTest, ImapAndSmtpSendALongInitialResponseWithTheCommand) {
  Credentials c = token(std::string(300, 't'));
  for (const Protocol* p : {&kImap, &kSmtp}) {
    auto mech = make_xoauth2(c);
    ScriptedLink link(*p, {accept(*p)});
    EXPECT_THAT(authenticate(*p, link, *mech, c), IsOk());
    ASSERT_EQ(link.sent.size(), 1u);
    EXPECT_GT(link.sent[0].size(), 255u);
  }
}

TEST(DriverChoiceTest, EveryProtocolFollowsTheOneOrder) {
  Preferences tls;
  for (const Protocol* p : {&kImap, &kPop3, &kSmtp}) {
    SCOPED_TRACE(std::string(p->name));
    EXPECT_EQ(*choose_mechanism(*p, {"OAUTHBEARER", "XOAUTH2"}, CredentialKind::kToken, tls),
              "XOAUTH2");
    EXPECT_EQ(*choose_mechanism(*p, {"OAUTHBEARER", "PLAIN"}, CredentialKind::kToken, tls),
              "OAUTHBEARER");
    EXPECT_EQ(*choose_mechanism(*p, {"LOGIN", "PLAIN"}, CredentialKind::kPassword, tls), "PLAIN");
  }
  // SASL LOGIN: IMAP and SMTP use it; POP3 has USER/PASS instead.
  EXPECT_EQ(*choose_mechanism(kImap, {"LOGIN"}, CredentialKind::kPassword, tls), "LOGIN");
  EXPECT_EQ(*choose_mechanism(kSmtp, {"LOGIN"}, CredentialKind::kPassword, tls), "LOGIN");
  EXPECT_THAT(choose_mechanism(kPop3, {"LOGIN"}, CredentialKind::kPassword, tls),
              StatusIs(ErrorKind::kConfig, HasSubstr("PLAIN")));
}

TEST(DriverChoiceTest, OnlyPop3TriesAnUnlistedTokenMechanism) {
  Preferences tls;
  EXPECT_EQ(*choose_mechanism(kPop3, {}, CredentialKind::kToken, tls), "XOAUTH2");
  EXPECT_EQ(*choose_mechanism(kPop3, {"PLAIN"}, CredentialKind::kToken, tls), "XOAUTH2");
  EXPECT_THAT(choose_mechanism(kImap, {"PLAIN"}, CredentialKind::kToken, tls),
              StatusIs(ErrorKind::kConfig, HasSubstr("no SASL mechanism in common")));
  EXPECT_THAT(choose_mechanism(kSmtp, {}, CredentialKind::kToken, tls),
              StatusIs(ErrorKind::kConfig, HasSubstr("offers no SASL mechanism")));
}

}  // namespace
}  // namespace mb::sasl
