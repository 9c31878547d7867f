// File: tests/integration/smtp_test.cpp — the SMTP sender against the real test SMTP server
// of tests/harness/smtp.sh (npm smtp-server): STARTTLS and implicit TLS, AUTH PLAIN, LOGIN
// and XOAUTH2 (a token of the OAuth harness, validated by introspection), wrong password,
// untrusted and mismatched certificates, per-recipient refusals, the fault switches (503 on
// a second MAIL, 421, tempfail, dropped connection), one message per connection against a
// kept connection as the server counts sessions, and `mailbridge send-test`.
#include <cstdlib>

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "connectors/smtp/smtp_sender.h"
#include "core/sender.h"
#include "tests/integration/harness.h"
#include "tests/integration/smtp_harness.h"
#include "tests/status_matchers.h"

namespace mb::itest {
namespace {

namespace sm = ::mb::itest::smtp;
using ::mb::testing::IsOk;
using ::mb::testing::StatusIs;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr const char* kUser = "alice@mailbridge.test";

class SmtpTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(sm::env().empty());
    ASSERT_THAT(sm::reset(), IsOk());
  }
  void TearDown() override { sm::reset().ignore(); }

  static SignIn password(const std::string& pw = sm::at("MB_SMTP_PASSWORD")) {
    SignIn s;
    s.password = pw;
    return s;
  }
  static std::unique_ptr<Sender> sender(sm::Port port, SignIn sign_in,
                                        std::function<void(SenderConfig&)> edit = {}) {
    SenderConfig c = sm::sender_config(port, sign_in.none ? "" : kUser);
    if (edit) edit(c);
    return make_smtp_sender(c, std::move(sign_in));
  }
  static OutgoingMail mail(std::vector<std::string> to, const std::string& subject = "hello",
                           const std::string& body = "Hello.\r\n") {
    MessageSpec spec;
    spec.from = kUser;
    spec.to = to.empty() ? "nobody@example.test" : to.front();
    spec.subject = subject;
    spec.text = body;
    return OutgoingMail{"t1", Envelope{kUser, std::move(to)}, make_message(spec), {}};
  }
  static nlohmann::json counters() {
    auto c = sm::counters();
    EXPECT_THAT(c.status(), IsOk());
    return c.ok() ? *c : nlohmann::json::object();
  }
  static std::vector<sm::Received> received() {
    auto m = sm::messages();
    EXPECT_THAT(m.status(), IsOk());
    return m.ok() ? *m : std::vector<sm::Received>{};
  }
};

TEST_F(SmtpTest, StartTlsSubmissionDeliversTheExactBytesWithDotsIntact) {
  // Lines "." and ".." would end or change the message if they were not dot-stuffed.
  OutgoingMail m = mail({"bob@example.test", "carol@example.test"}, "dots",
                        "first\r\n.\r\n..\r\n.leading dot\r\nlast\r\n");
  auto s = sender(sm::Port::kSubmission, password());
  auto sent = s->send(m);
  ASSERT_THAT(sent.status(), IsOk());
  EXPECT_THAT(sent->server_id, ::testing::StartsWith("MB"));
  auto got = received();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].port, "submission");
  EXPECT_TRUE(got[0].secure);
  EXPECT_EQ(got[0].user, kUser);
  EXPECT_EQ(got[0].auth_method, "PLAIN");
  EXPECT_EQ(got[0].mail_from, kUser);
  EXPECT_THAT(got[0].rcpt_to, ElementsAre("bob@example.test", "carol@example.test"));
  auto raw = sm::raw_message(got[0].seq);
  ASSERT_THAT(raw.status(), IsOk());
  EXPECT_EQ(*raw, m.raw);
  EXPECT_EQ(counters()["commands"]["STARTTLS"], 1);
}

TEST_F(SmtpTest, ImplicitTlsDelivers) {
  auto s = sender(sm::Port::kSmtps, password());
  ASSERT_THAT(s->send(mail({"bob@example.test"})).status(), IsOk());
  auto got = received();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].port, "smtps");
  EXPECT_TRUE(got[0].secure);
  EXPECT_EQ(counters()["commands"].value("STARTTLS", 0), 0);
}

TEST_F(SmtpTest, AuthLoginWhenItIsAllTheServerOffers) {
  ASSERT_THAT(sm::set_faults({{"auth_methods", {"LOGIN"}}}), IsOk());
  auto s = sender(sm::Port::kSubmission, password());
  ASSERT_THAT(s->send(mail({"bob@example.test"})).status(), IsOk());
  auto got = received();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].auth_method, "LOGIN");
}

TEST_F(SmtpTest, WrongPasswordIsAuthAndNamesNoSecret) {
  const std::string wrong = "not-the-password-81x";
  auto s = sender(sm::Port::kSubmission, password(wrong));
  auto sent = s->send(mail({"bob@example.test"}));
  EXPECT_THAT(sent.status(), StatusIs(ErrorKind::kAuth, AllOf(HasSubstr("535 5.7.8"),
                                                              HasSubstr(kUser),
                                                              Not(HasSubstr(wrong)))));
  EXPECT_EQ(counters()["auth"]["failure"], 1);
  EXPECT_TRUE(received().empty());
  ConnectionReport rep = s->test_connection();
  EXPECT_THAT(rep.status, StatusIs(ErrorKind::kAuth, Not(HasSubstr(wrong))));
}

TEST_F(SmtpTest, UntrustedCertificateIsTls) {
  auto s = sender(sm::Port::kSmtps, password(),
                  [](SenderConfig& c) { c.tls.ca_file = sm::at("MB_SMTP_OTHER_CA_FILE"); });
  EXPECT_THAT(s->send(mail({"bob@example.test"})).status(),
              StatusIs(ErrorKind::kTls, HasSubstr("not trusted")));
  auto st = sender(sm::Port::kSubmission, password(),
                   [](SenderConfig& c) { c.tls.ca_file = sm::at("MB_SMTP_OTHER_CA_FILE"); });
  EXPECT_THAT(st->send(mail({"bob@example.test"})).status(),
              StatusIs(ErrorKind::kTls, HasSubstr("not trusted")));
  EXPECT_EQ(counters()["auth"]["failure"], 0);
  EXPECT_TRUE(received().empty());
}

TEST_F(SmtpTest, CertificateForAnotherHostIsTls) {
  auto s = sender(sm::Port::kMismatch, password());
  EXPECT_THAT(s->send(mail({"bob@example.test"})).status(),
              StatusIs(ErrorKind::kTls, HasSubstr("localhost")));
  EXPECT_TRUE(received().empty());
}

TEST_F(SmtpTest, StartTlsMissingRefusesBeforeAuth) {
  ASSERT_THAT(sm::set_faults({{"hide", {"STARTTLS"}}}), IsOk());
  auto s = sender(sm::Port::kSubmission, password());
  EXPECT_THAT(s->send(mail({"bob@example.test"})).status(),
              StatusIs(ErrorKind::kTls, HasSubstr("does not offer STARTTLS")));
  EXPECT_EQ(counters()["commands"].value("AUTH", 0), 0);
}

TEST_F(SmtpTest, PerRecipientAnswers) {
  auto s = sender(sm::Port::kSubmission, password());
  auto sent = s->send(mail({"ok@example.test", "reject-me@example.test", "defer-me@example.test"}));
  ASSERT_THAT(sent.status(), IsOk());
  ASSERT_EQ(sent->recipients.size(), 3u);
  EXPECT_TRUE(sent->recipients[0].accepted);
  EXPECT_FALSE(sent->recipients[1].accepted);
  EXPECT_TRUE(sent->recipients[1].permanent);
  EXPECT_THAT(sent->recipients[1].reply, HasSubstr("550 5.1.1"));
  EXPECT_FALSE(sent->recipients[2].accepted);
  EXPECT_FALSE(sent->recipients[2].permanent);
  EXPECT_THAT(sent->recipients[2].reply, HasSubstr("451 4.7.1"));
  auto got = received();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_THAT(got[0].rcpt_to, ElementsAre("ok@example.test"));

  auto none = s->send(mail({"reject-a@example.test", "reject-b@example.test"}));
  EXPECT_THAT(none.status(), StatusIs(ErrorKind::kRejected, HasSubstr("refused every recipient")));
  EXPECT_TRUE(is_permanent_send_failure(none.status()));
}

TEST_F(SmtpTest, KeptConnectionCarriesEveryMessageWithRsetBetween) {
  auto s = sender(sm::Port::kSubmission, password());
  for (int i = 0; i < 5; ++i) {
    ASSERT_THAT(s->send(mail({fmt::format("r{}@example.test", i)})).status(), IsOk());
  }
  s->close();
  auto got = received();
  ASSERT_EQ(got.size(), 5u);
  EXPECT_EQ(sm::session_count(got), 1u);
  auto c = counters();
  EXPECT_EQ(c["sessions"], 1);
  EXPECT_EQ(c["commands"]["RSET"], 4);
  EXPECT_EQ(c["auth"]["success"], 1);
}

TEST_F(SmtpTest, OneMessagePerConnectionIsWhatTheServerSees) {
  auto s = sender(sm::Port::kSubmission, password(),
                  [](SenderConfig& c) { c.one_message_per_connection = true; });
  for (int i = 0; i < 5; ++i) {
    ASSERT_THAT(s->send(mail({fmt::format("r{}@example.test", i)})).status(), IsOk());
  }
  auto got = received();
  ASSERT_EQ(got.size(), 5u);
  EXPECT_EQ(sm::session_count(got), 5u);
  auto c = counters();
  EXPECT_EQ(c["sessions"], 5);
  EXPECT_EQ(c["commands"]["QUIT"], 5);
  EXPECT_EQ(c["commands"].value("RSET", 0), 0);
}

TEST_F(SmtpTest, SecondMailRefusedWith503GoesOnANewConnection) {
  ASSERT_THAT(sm::set_faults({{"refuse_second_mail", true}}), IsOk());
  auto s = sender(sm::Port::kSubmission, password());
  for (int i = 0; i < 4; ++i) {
    ASSERT_THAT(s->send(mail({fmt::format("r{}@example.test", i)})).status(), IsOk()) << i;
  }
  auto got = received();
  ASSERT_EQ(got.size(), 4u);
  EXPECT_EQ(sm::session_count(got), 4u);
  // Refused once, then the sender knows: one message per connection.
  EXPECT_EQ(counters()["second_mail_refused"], 1);
}

TEST_F(SmtpTest, RelayWithoutAuthAndHeloFallback) {
  SignIn none;
  none.none = true;
  auto s = sender(sm::Port::kRelay, none);
  ASSERT_THAT(s->send(mail({"bob@example.test"})).status(), IsOk());
  ASSERT_THAT(sm::set_faults({{"ehlo_unsupported", true}}), IsOk());
  auto helo = sender(sm::Port::kRelay, none, [](SenderConfig& c) { c.security = Security::kNone; });
  ASSERT_THAT(helo->send(mail({"carol@example.test"})).status(), IsOk());
  auto got = received();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].user, "");
  EXPECT_TRUE(got[0].secure);  // STARTTLS, as configured
  EXPECT_FALSE(got[1].secure);
  EXPECT_GE(counters()["commands"]["HELO"], 1);
}

TEST_F(SmtpTest, TransientAndDroppedFailuresAreRetryable) {
  auto s = sender(sm::Port::kSubmission, password());
  ASSERT_THAT(sm::set_faults({{"tempfail", 1}}), IsOk());
  auto t = s->send(mail({"bob@example.test"}));
  EXPECT_THAT(t.status(), StatusIs(ErrorKind::kThrottled, HasSubstr("451 4.3.0")));
  ASSERT_THAT(sm::set_faults({{"drop_after_data", 1}}), IsOk());
  auto d = s->send(mail({"bob@example.test"}));
  EXPECT_THAT(d.status(), StatusIs(ErrorKind::kNetwork, HasSubstr("may or may not")));
  ASSERT_THAT(sm::set_faults({{"refuse_connect", 1}}), IsOk());
  auto r = s->send(mail({"bob@example.test"}));
  EXPECT_THAT(r.status(), StatusIs(ErrorKind::kThrottled, HasSubstr("421")));
  for (const auto* st : {&t.status(), &d.status(), &r.status()}) {
    EXPECT_FALSE(is_permanent_send_failure(*st));
  }
  // Each fault was used up: the next message goes through.
  ASSERT_THAT(s->send(mail({"bob@example.test"})).status(), IsOk());
  EXPECT_EQ(received().size(), 1u);
}

TEST_F(SmtpTest, LargerThanSizeIsRefusedBeforeMailAndEightBitIsDeclared) {
  ASSERT_THAT(sm::set_faults({{"size", 200}}), IsOk());
  auto s = sender(sm::Port::kSubmission, password());
  auto big = s->send(mail({"bob@example.test"}, "big", std::string(300, 'x') + "\r\n"));
  EXPECT_THAT(big.status(), StatusIs(ErrorKind::kRejected, HasSubstr("SIZE")));
  EXPECT_EQ(counters()["mail_commands"], 0);
  ASSERT_THAT(sm::set_faults({{"size", 10485760}}), IsOk());
  OutgoingMail utf8 = mail({"j\xc3\xbcrgen@example.test"});
  utf8.raw += "caf\xc3\xa9\r\n";
  // The new limit shows at the next EHLO: a new connection.
  s->close();
  ASSERT_THAT(s->send(utf8).status(), IsOk());
  auto got = received();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].mail_params.value("BODY", ""), "8BITMIME");
  EXPECT_EQ(got[0].mail_params.value("SMTPUTF8", false), true);
}

// ---- XOAUTH2 with a token of the OAuth harness ----

// The OAuth server's DIR/env ($MB_OAUTH_HARNESS_DIR, else the build's).
Result<ServerEnv> oauth_env() { return read_server_env(oauth_harness_dir()); }

// An access token for `account` from the device-code grant, approved through the admin port.
Result<std::string> user_token(const ServerEnv& oauth, const std::string& account) {
  const std::string ca = oauth.at("MB_OAUTH_CA_FILE");
  const std::string client = "client_id=" + oauth.at("MB_OAUTH_PUBLIC_CLIENT_ID");
  auto started = curl_json({"--cacert", ca, "-d", client, "--data-urlencode",
                            "scope=mail.access", oauth.at("MB_OAUTH_DEVICE_URL")});
  if (!started.ok()) return started.status();
  if (!started->contains("device_code")) return Status(ErrorKind::kProtocol, started->dump());
  auto approved = curl_json({"-X", "POST", "-d",
                             "user_code=" + (*started)["user_code"].get<std::string>(), "-d",
                             "account=" + account,
                             oauth.at("MB_OAUTH_ADMIN_URL") + "/device/approve"});
  if (!approved.ok()) return approved.status();
  auto tokens = curl_json({"--cacert", ca, "-d", client, "-d",
                           "grant_type=urn:ietf:params:oauth:grant-type:device_code", "-d",
                           "device_code=" + (*started)["device_code"].get<std::string>(),
                           oauth.at("MB_OAUTH_TOKEN_URL")});
  if (!tokens.ok()) return tokens.status();
  if (!tokens->contains("access_token")) return Status(ErrorKind::kProtocol, tokens->dump());
  return (*tokens)["access_token"].get<std::string>();
}

TEST_F(SmtpTest, Xoauth2TokenValidatedByIntrospectionAndRefusedTokenRetriedOnce) {
  if (!sm::has_oauth()) GTEST_SKIP() << "the SMTP harness runs without the OAuth server";
  auto oauth = oauth_env();
  ASSERT_THAT(oauth.status(), IsOk());
  auto token = user_token(*oauth, kUser);
  ASSERT_THAT(token.status(), IsOk());
  const std::string stale = "stale-token-that-introspects-inactive";
  std::vector<std::string> handed;
  SignIn sign_in;
  // As AuthContext::with_token: the cached (stale) token first, a fresh one once if refused.
  sign_in.with_token = [&](const std::function<Status(const std::string&)>& fn) {
    handed.push_back(stale);
    Status st = fn(stale);
    if (st.ok() || st.kind() != ErrorKind::kAuth) return st;
    EXPECT_THAT(st, StatusIs(ErrorKind::kAuth, AllOf(HasSubstr("token rejected"),
                                                     Not(HasSubstr(stale)))));
    handed.push_back(*token);
    return fn(*token);
  };
  auto s = sender(sm::Port::kSubmission, sign_in);
  auto sent = s->send(mail({"bob@example.test"}));
  ASSERT_THAT(sent.status(), IsOk());
  EXPECT_EQ(handed.size(), 2u);
  auto got = received();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].auth_method, "XOAUTH2");
  EXPECT_EQ(got[0].user, kUser);
  auto c = counters();
  EXPECT_EQ(c["auth"]["by_method"]["XOAUTH2"]["failure"], 1);
  EXPECT_EQ(c["auth"]["by_method"]["XOAUTH2"]["success"], 1);
  EXPECT_EQ(c["sessions"], 1);  // the retry used the same connection
}

TEST_F(SmtpTest, Xoauth2TokenOfAnotherUserIsRefused) {
  if (!sm::has_oauth()) GTEST_SKIP() << "the SMTP harness runs without the OAuth server";
  auto oauth = oauth_env();
  ASSERT_THAT(oauth.status(), IsOk());
  auto token = user_token(*oauth, "mallory@mailbridge.test");
  ASSERT_THAT(token.status(), IsOk());
  SignIn sign_in;
  sign_in.with_token = [&](const std::function<Status(const std::string&)>& fn) {
    return fn(*token);
  };
  auto s = sender(sm::Port::kSmtps, sign_in);
  auto sent = s->send(mail({"bob@example.test"}));
  EXPECT_THAT(sent.status(), StatusIs(ErrorKind::kAuth, AllOf(HasSubstr("token rejected"),
                                                              Not(HasSubstr(*token)))));
  EXPECT_TRUE(received().empty());
}

// ---- mailbridge send-test ----

class SendTestCommand : public SmtpTest {
 protected:
  RunResult run(const std::string& sender_table, const std::vector<std::string>& args,
                const std::string& password = sm::at("MB_SMTP_PASSWORD")) {
    std::string tables = sender_table +
                         "\n[[mailbox]]\nname = \"support\"\ntype = \"imap\"\n"
                         "host = \"localhost\"\nuser = \"support@mailbridge.test\"\n"
                         "password = \"env:MB_SMTP_PASSWORD\"\n";
    EXPECT_THAT(write_file(dir_.file("mb.toml"), config_toml(dir_.file("mb.db"), tables)), IsOk());
    std::vector<std::string> full = {"--config", dir_.file("mb.toml"), "send-test"};
    full.insert(full.end(), args.begin(), args.end());
    RunOptions o;
    o.env = {{"MB_SMTP_PASSWORD", password}};
    o.timeout = std::chrono::seconds(60);
    RunResult r = run_mailbridge(full, o);
    EXPECT_THAT(r.out + r.err, Not(HasSubstr(password)));
    return r;
  }
  TempDir dir_;
};

TEST_F(SendTestCommand, SendsATestEmailAndReportsEachStep) {
  RunResult r = run(sm::sender_toml("outgoing", sm::Port::kSubmission, kUser),
                    {"outgoing", "--to", "admin@example.test"});
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  for (const char* step : {"compose", "resolve", "connect", "starttls", "ehlo", "sign-in", "send"}) {
    EXPECT_THAT(r.out, HasSubstr(std::string("✓ ") + step)) << r.out;
  }
  auto got = received();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_THAT(got[0].rcpt_to, ElementsAre("admin@example.test"));
  auto raw = sm::raw_message(got[0].seq);
  ASSERT_THAT(raw.status(), IsOk());
  EXPECT_THAT(*raw, AllOf(HasSubstr("Subject: mailbridge test email from sender outgoing"),
                          HasSubstr("Message-Id: <"),
                          HasSubstr(std::string("From: mailbridge <") + kUser)));
  EXPECT_EQ(raw->find("\n"), raw->find("\r\n") + 1);  // CRLF line ends
}

TEST_F(SendTestCommand, FromMustBeAConfiguredAddress) {
  RunResult ok = run(sm::sender_toml("outgoing", sm::Port::kSmtps, kUser),
                     {"outgoing", "--to", "a@example.test", "--from", "support@mailbridge.test"});
  ASSERT_EQ(ok.exit_code, 0) << ok.describe();
  RunResult bad = run(sm::sender_toml("outgoing", sm::Port::kSmtps, kUser),
                      {"outgoing", "--to", "a@example.test", "--from", "ceo@elsewhere.test"});
  EXPECT_EQ(bad.exit_code, 2) << bad.describe();
  EXPECT_THAT(bad.out, HasSubstr("neither a configured mailbox address"));
  EXPECT_EQ(received().size(), 1u);
}

TEST_F(SendTestCommand, ExitCodesForAuthAndCertificateFailures) {
  RunResult auth = run(sm::sender_toml("outgoing", sm::Port::kSubmission, kUser),
                       {"outgoing", "--to", "a@example.test"}, "wrong-password-for-test");
  EXPECT_EQ(auth.exit_code, 3) << auth.describe();
  EXPECT_THAT(auth.out, HasSubstr("✗ sign-in"));
  std::string untrusted = sm::sender_toml("outgoing", sm::Port::kSmtps, kUser);
  auto at = untrusted.find(sm::at("MB_SMTP_CA_FILE"));
  ASSERT_NE(at, std::string::npos);
  untrusted.replace(at, sm::at("MB_SMTP_CA_FILE").size(), sm::at("MB_SMTP_OTHER_CA_FILE"));
  RunResult tls = run(untrusted, {"outgoing", "--to", "a@example.test"});
  EXPECT_EQ(tls.exit_code, 4) << tls.describe();
  EXPECT_THAT(tls.out, HasSubstr("✗ tls"));
  EXPECT_TRUE(received().empty());
}

}  // namespace
}  // namespace mb::itest
