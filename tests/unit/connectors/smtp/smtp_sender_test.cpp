// File: tests/unit/connectors/smtp/smtp_sender_test.cpp — the SMTP Sender against scripted
// servers: what it writes (pipelining order, RSET between messages, dot-stuffing, MAIL
// parameters), how it classifies answers, per-recipient results, the 503 / idle-close
// recovery on a new connection, XOAUTH2's token retry, test-connection, and that no error
// holds the password or token.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "auth/base64.h"
#include "auth/sasl.h"
#include "auth/token_cache.h"
#include "connectors/smtp/smtp_client.h"
#include "connectors/smtp/smtp_sender.h"
#include "tests/status_matchers.h"
#include "tests/unit/core/script_server.h"
#include "tests/unit/connectors/imap/imap_test_util.h"

namespace mb {
namespace {

using ::mb::imap::testing::Script;
using ::mb::imap::testing::SharedStream;
using ::mb::testing::IsOk;
using ::mb::testing::StatusIs;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr const char* kPassword = "s3cret-Pa55word";
constexpr const char* kUser = "alice@contoso.test";
constexpr const char* kHelo = "client.contoso.test";

// Scripted connections, handed out one per connect in order; a connect past the last one
// fails like a refused TCP connection.
struct Servers {
  std::vector<std::shared_ptr<ScriptedStream>> streams;
  std::vector<Script> scripts;
  size_t next = 0;
  bool implicit_tls = true;

  void add(const Script& s, size_t chunk = 4096) {
    scripts.push_back(s);
    auto st = std::make_shared<ScriptedStream>(s.server);
    st->set_chunk(chunk);
    streams.push_back(st);
  }
  StreamFactory factory() {
    return [this]() -> Result<std::unique_ptr<Stream>> {
      if (next >= streams.size()) {
        return Status(ErrorKind::kNetwork, "connection refused", ErrorScope::kConnection);
      }
      auto s = streams[next++];
      if (implicit_tls) s->start_tls("mx.test", TlsOptions{}).ignore();
      return std::unique_ptr<Stream>(std::make_unique<SharedStream>(s));
    };
  }
  std::string written(size_t i) const { return streams.at(i)->written(); }
};

SenderConfig config(Security security = Security::kTls) {
  SenderConfig c;
  c.name = "out";
  c.type = ConnectorType::kSmtp;
  c.host = "localhost";  // test-connection resolves it
  c.port = 465;
  c.security = security;
  c.user = kUser;
  c.helo_name = kHelo;
  return c;
}

SignIn password() {
  SignIn s;
  s.password = kPassword;
  return s;
}

std::string plain_ir() { return base64_encode(sasl::plain_message("", kUser, kPassword)); }

// Greeting, EHLO with `keywords`, AUTH PLAIN accepted.
Script& opening(Script& s, const std::string& keywords = "PIPELINING\r\n250-8BITMIME\r\n"
                                                         "250-SMTPUTF8\r\n250-SIZE 1000000") {
  s.S("220 mx.test ESMTP ready")
      .C(std::string("EHLO ") + kHelo)
      .S("250-mx.test hello\r\n250-" + keywords + "\r\n250 AUTH PLAIN LOGIN")
      .C("AUTH PLAIN " + plain_ir())
      .S("235 2.7.0 Authentication successful");
  return s;
}

OutgoingMail mail(std::vector<std::string> to, std::string raw = "Subject: t\r\n\r\nbody\r\n") {
  return OutgoingMail{"m1", Envelope{"alice@contoso.test", std::move(to)}, std::move(raw), {}};
}

TEST(SmtpSenderTest, PipelinesMailRcptAndDataInOneFlight) {
  Script s;
  opening(s)
      .C("MAIL FROM:<alice@contoso.test> SIZE=20")
      .C("RCPT TO:<bob@x.test>")
      .C("RCPT TO:<carol@x.test>")
      .C("DATA")
      .S("250 2.1.0 Ok")
      .S("250 2.1.5 Ok")
      .S("250 2.1.5 Ok")
      .S("354 End data with <CR><LF>.<CR><LF>")
      .raw_client("Subject: t\r\n\r\nbody\r\n.\r\n")
      .S("250 2.0.0 Ok: queued as ABC123")
      .C("QUIT")
      .S("221 2.0.0 Bye");
  Servers servers;
  servers.add(s);
  auto sender = make_smtp_sender(config(), password(), servers.factory());
  auto sent = sender->send(mail({"bob@x.test", "carol@x.test"}));
  ASSERT_THAT(sent.status(), IsOk());
  EXPECT_EQ(sent->server_id, "ABC123");
  ASSERT_EQ(sent->recipients.size(), 2u);
  EXPECT_TRUE(sent->recipients[0].accepted);
  EXPECT_TRUE(sent->recipients[1].accepted);
  sender->close();
  EXPECT_EQ(servers.written(0), s.client);
}

TEST(SmtpSenderTest, WithoutPipeliningWaitsForEachReply) {
  Script s;
  opening(s, "8BITMIME")
      .C("MAIL FROM:<alice@contoso.test>")
      .S("250 2.1.0 Ok")
      .C("RCPT TO:<bob@x.test>")
      .S("250 2.1.5 Ok")
      .C("DATA")
      .S("354 go ahead")
      .raw_client("Subject: t\r\n\r\nbody\r\n.\r\n")
      .S("250 Ok");
  Servers servers;
  // One byte per read: a client that read ahead of a reply would stall the script.
  servers.add(s, 1);
  auto sender = make_smtp_sender(config(), password(), servers.factory());
  auto sent = sender->send(mail({"bob@x.test"}));
  ASSERT_THAT(sent.status(), IsOk());
  EXPECT_EQ(sent->server_id, "");
  EXPECT_EQ(servers.written(0), s.client);
}

TEST(SmtpSenderTest, DotStuffsLinesOfDotsInTheBody) {
  const std::string raw = "Subject: dots\r\n\r\n.\r\n..\r\n.leading\r\nend";
  Script s;
  opening(s)
      .C("MAIL FROM:<alice@contoso.test> SIZE=" + std::to_string(raw.size()))
      .C("RCPT TO:<bob@x.test>")
      .C("DATA")
      .S("250 Ok")
      .S("250 Ok")
      .S("354 go")
      .raw_client("Subject: dots\r\n\r\n..\r\n...\r\n..leading\r\nend\r\n.\r\n")
      .S("250 Ok");
  Servers servers;
  servers.add(s);
  auto sender = make_smtp_sender(config(), password(), servers.factory());
  ASSERT_THAT(sender->send(mail({"bob@x.test"}, raw)).status(), IsOk());
  EXPECT_EQ(servers.written(0), s.client);
}

TEST(SmtpSenderTest, EightBitAndUtf8AddressSetMailParameters) {
  const std::string raw = "Subject: x\r\n\r\ncaf\xc3\xa9\r\n";
  Script s;
  opening(s)
      .C("MAIL FROM:<alice@contoso.test> SIZE=" + std::to_string(raw.size()) +
         " BODY=8BITMIME SMTPUTF8")
      .C("RCPT TO:<j\xc3\xbcrgen@x.test>")
      .C("DATA")
      .S("250 Ok")
      .S("250 Ok")
      .S("354 go")
      .raw_client(raw + ".\r\n")
      .S("250 Ok");
  Servers servers;
  servers.add(s);
  auto sender = make_smtp_sender(config(), password(), servers.factory());
  ASSERT_THAT(sender->send(mail({"j\xc3\xbcrgen@x.test"}, raw)).status(), IsOk());
  EXPECT_EQ(servers.written(0), s.client);
}

TEST(SmtpSenderTest, Utf8AddressWithoutSmtpUtf8IsRefusedForGoodBeforeMail) {
  Script s;
  opening(s, "PIPELINING\r\n250-8BITMIME");
  Servers servers;
  servers.add(s);
  auto sender = make_smtp_sender(config(), password(), servers.factory());
  auto sent = sender->send(mail({"j\xc3\xbcrgen@x.test"}));
  EXPECT_THAT(sent.status(), StatusIs(ErrorKind::kRejected, HasSubstr("SMTPUTF8")));
  EXPECT_TRUE(is_permanent_send_failure(sent.status()));
  EXPECT_THAT(servers.written(0), Not(HasSubstr("MAIL FROM")));
}

TEST(SmtpSenderTest, MessageOverTheSizeLimitIsRefusedBeforeMail) {
  Script s;
  opening(s, "PIPELINING\r\n250-SIZE 10");
  Servers servers;
  servers.add(s);
  auto sender = make_smtp_sender(config(), password(), servers.factory());
  auto sent = sender->send(mail({"bob@x.test"}));
  EXPECT_THAT(sent.status(), StatusIs(ErrorKind::kRejected, HasSubstr("at most 10 bytes")));
  EXPECT_THAT(servers.written(0), Not(HasSubstr("MAIL FROM")));
}

TEST(SmtpSenderTest, PerRecipientResultsWhenSomeAreRefused) {
  Script s;
  opening(s)
      .C("MAIL FROM:<alice@contoso.test> SIZE=20")
      .C("RCPT TO:<bob@x.test>")
      .C("RCPT TO:<gone@x.test>")
      .C("RCPT TO:<busy@x.test>")
      .C("DATA")
      .S("250 Ok")
      .S("250 Ok")
      .S("550 5.1.1 <gone@x.test>: Recipient address rejected")
      .S("451 4.7.1 <busy@x.test>: try again later")
      .S("354 go")
      .raw_client("Subject: t\r\n\r\nbody\r\n.\r\n")
      .S("250 Ok: queued as Q1");
  Servers servers;
  servers.add(s);
  auto sender = make_smtp_sender(config(), password(), servers.factory());
  auto sent = sender->send(mail({"bob@x.test", "gone@x.test", "busy@x.test"}));
  ASSERT_THAT(sent.status(), IsOk());
  ASSERT_EQ(sent->recipients.size(), 3u);
  EXPECT_TRUE(sent->recipients[0].accepted);
  EXPECT_FALSE(sent->recipients[1].accepted);
  EXPECT_TRUE(sent->recipients[1].permanent);
  EXPECT_EQ(sent->recipients[1].reply, "550 5.1.1 <gone@x.test>: Recipient address rejected");
  EXPECT_FALSE(sent->recipients[2].accepted);
  EXPECT_FALSE(sent->recipients[2].permanent);
  EXPECT_EQ(sent->recipients[2].address, "busy@x.test");
}

TEST(SmtpSenderTest, EveryRecipientRefusedIsAnErrorPermanentOnlyIfAllAre) {
  for (bool one_transient : {false, true}) {
    Script s;
    opening(s)
        .C("MAIL FROM:<alice@contoso.test> SIZE=20")
        .C("RCPT TO:<a@x.test>")
        .C("RCPT TO:<b@x.test>")
        .C("DATA")
        .S("250 Ok")
        .S("550 5.1.1 no such user a")
        .S(one_transient ? "452 4.2.2 mailbox full" : "550 5.1.1 no such user b")
        .S("554 5.5.1 Error: no valid recipients");
    Servers servers;
    servers.add(s);
    auto sender = make_smtp_sender(config(), password(), servers.factory());
    auto sent = sender->send(mail({"a@x.test", "b@x.test"}));
    EXPECT_THAT(sent.status(),
                StatusIs(one_transient ? ErrorKind::kThrottled : ErrorKind::kRejected,
                         AllOf(HasSubstr("refused every recipient"),
                               HasSubstr("a@x.test: 550 5.1.1 no such user a"))));
    EXPECT_EQ(is_permanent_send_failure(sent.status()), !one_transient);
  }
}

struct Case {
  std::string reply_to_mail;
  ErrorKind kind;
};

class MailReplyTest : public ::testing::TestWithParam<Case> {};

TEST_P(MailReplyTest, ClassifiedByReplyClassWithTheServersWords) {
  Script s;
  opening(s)
      .C("MAIL FROM:<alice@contoso.test> SIZE=20")
      .C("RCPT TO:<bob@x.test>")
      .C("DATA")
      .S(GetParam().reply_to_mail)
      .S("503 5.5.1 Error: need MAIL command")
      .S("503 5.5.1 Error: need RCPT command");
  Servers servers;
  servers.add(s);
  auto sender = make_smtp_sender(config(), password(), servers.factory());
  auto sent = sender->send(mail({"bob@x.test"}));
  EXPECT_THAT(sent.status(), StatusIs(GetParam().kind, HasSubstr(GetParam().reply_to_mail)));
}

INSTANTIATE_TEST_SUITE_P(
    Replies, MailReplyTest,
    ::testing::Values(Case{"550 5.7.1 Sender address rejected: not owned", ErrorKind::kRejected},
                      Case{"553 5.1.8 Domain of sender address not found", ErrorKind::kRejected},
                      Case{"451 4.3.0 Temporary lookup failure", ErrorKind::kThrottled},
                      Case{"452 4.3.1 Insufficient system storage", ErrorKind::kThrottled}));

TEST(SmtpSenderTest, FinalReplyClassifiesTheMessage) {
  for (const auto& [reply, kind] : std::vector<std::pair<std::string, ErrorKind>>{
           {"554 5.7.1 Message rejected as spam", ErrorKind::kRejected},
           {"451 4.3.0 Temporary local problem", ErrorKind::kThrottled}}) {
    Script s;
    opening(s)
        .S("250 Ok")
        .S("250 Ok")
        .S("354 go")
        .S(reply);
    Servers servers;
    servers.add(s);
    auto sender = make_smtp_sender(config(), password(), servers.factory());
    auto sent = sender->send(mail({"bob@x.test"}));
    EXPECT_THAT(sent.status(), StatusIs(kind, HasSubstr(reply)));
  }
}

// Issue 13 (the class of POP3's "if (!channel_) return require(...)"): an SMTP client
// without a connection, never connected or after losing it, answers every command with an
// error, never OK; once the connection is gone, a connection error.
TEST(SmtpClientTest, EveryCommandWithoutAConnectionIsAnError) {
  sasl::Credentials creds;
  creds.user = kUser;
  creds.secret = kPassword;
  creds.kind = sasl::CredentialKind::kPassword;
  auto mech = sasl::make_mechanism("PLAIN", creds);
  ASSERT_THAT(mech.status(), IsOk());
  const Envelope env{"alice@contoso.test", {"bob@x.test"}};
  auto every_command = [&](smtp::Client& c) {
    return std::vector<std::pair<const char*, Status>>{
        {"EHLO", c.ehlo()},
        {"STARTTLS", c.starttls()},
        {"AUTH", c.authenticate(**mech, creds)},
        {"sign-in", c.sign_in(creds).status()},
        {"send", c.send(env, "Subject: t\r\n\r\nbody\r\n", false).status()},
        {"send after RSET", c.send(env, "Subject: t\r\n\r\nbody\r\n", true).status()},
        {"RSET", c.rset()},
        {"NOOP", c.noop()},
    };
  };
  smtp::ClientOptions o;
  o.helo_name = kHelo;
  o.allow_plaintext_auth = true;  // so that sign-in gets as far as sending AUTH
  smtp::Client never(o);
  for (const auto& [what, s] : every_command(never)) EXPECT_FALSE(s.ok()) << what;

  Script script;
  script.S("220 mx.test ESMTP ready")
      .C(std::string("EHLO ") + kHelo)
      .S("250-mx.test hello\r\n250-STARTTLS\r\n250 AUTH PLAIN LOGIN");  // then it is gone
  auto stream = std::make_shared<ScriptedStream>(script.server);
  stream->set_chunk(4096);
  smtp::Client lost(o);
  ASSERT_THAT(lost.connect(std::make_unique<SharedStream>(stream)), IsOk());  // and EHLO
  EXPECT_THAT(lost.noop(), StatusIs(ErrorKind::kNetwork, ::testing::_));
  EXPECT_FALSE(lost.connected());
  for (const auto& [what, s] : every_command(lost)) {
    EXPECT_THAT(s, StatusIs(ErrorKind::kNetwork, HasSubstr("not connected"))) << what;
    EXPECT_EQ(s.scope(), ErrorScope::kConnection) << what;
  }
}

TEST(SmtpSenderTest, ConnectionDroppedAfterDataIsNetwork) {
  Script s;
  opening(s).S("250 Ok").S("250 Ok").S("354 go");  // then nothing: the server is gone
  Servers servers;
  servers.add(s);
  auto sender = make_smtp_sender(config(), password(), servers.factory());
  auto sent = sender->send(mail({"bob@x.test"}));
  EXPECT_THAT(sent.status(), StatusIs(ErrorKind::kNetwork, HasSubstr("may or may not")));
  EXPECT_FALSE(is_permanent_send_failure(sent.status()));
  // It is not sent again on its own: the server may have kept it.
  EXPECT_EQ(servers.next, 1u);
}

// on_handed_over marks the instant the outbox's crash safety rests on: the end of the data
// ("." CRLF) is already written when it runs (before the answer is awaited), with the
// recipients' answers known then. A transaction refused before the end never calls it.
TEST(SmtpSenderTest, HandedOverRunsOnceTheEndIsWrittenBeforeTheAnswerIsRead) {
  Script s;
  opening(s)
      .S("250 Ok")
      .S("250 Ok")
      .S("450 4.2.1 try later")
      .S("354 go")
      .S("250 2.0.0 Ok: queued as Q1");
  Servers servers;
  servers.add(s);
  auto sender = make_smtp_sender(config(), password(), servers.factory());
  OutgoingMail m = mail({"bob@x.test", "carol@x.test"});
  int calls = 0;
  m.on_handed_over = [&](const SendResult& so_far) {
    ++calls;
    std::string written = servers.written(0);
    EXPECT_TRUE(written.ends_with("body\r\n.\r\n")) << written;
    ASSERT_EQ(so_far.recipients.size(), 2u);
    EXPECT_TRUE(so_far.recipients[0].accepted);
    EXPECT_FALSE(so_far.recipients[1].accepted);
  };
  auto sent = sender->send(m);
  ASSERT_THAT(sent.status(), IsOk());
  EXPECT_EQ(calls, 1);

  for (const std::string refusal : {"550 5.1.1 no such user", "451 4.3.0 busy"}) {
    Script r;
    opening(r).S("250 Ok").S(refusal).S("503 5.5.1 no valid recipients");
    Servers refused;
    refused.add(r);
    auto sender2 = make_smtp_sender(config(), password(), refused.factory());
    OutgoingMail m2 = mail({"bob@x.test"});
    m2.on_handed_over = [&](const SendResult&) { ADD_FAILURE() << "refused before the end"; };
    auto no = sender2->send(m2);
    EXPECT_FALSE(no.ok());
    EXPECT_TRUE(is_server_answer(no.status())) << no.status().to_string();
  }
}

// After the end, a refusal is the server's answer; a dropped connection is not, and leaves
// the message in doubt for the outbox.
TEST(SmtpSenderTest, AfterTheEndOnlyARefusalIsAnAnswer) {
  for (bool drop : {false, true}) {
    Script s;
    opening(s).S("250 Ok").S("250 Ok").S("354 go");
    if (!drop) s.S("554 5.7.1 Message rejected as spam");
    Servers servers;
    servers.add(s);
    auto sender = make_smtp_sender(config(), password(), servers.factory());
    OutgoingMail m = mail({"bob@x.test"});
    int calls = 0;
    m.on_handed_over = [&](const SendResult&) { ++calls; };
    auto sent = sender->send(m);
    ASSERT_FALSE(sent.ok());
    EXPECT_EQ(calls, 1);
    EXPECT_EQ(is_server_answer(sent.status()), !drop) << sent.status().to_string();
  }
}

TEST(SmtpSenderTest, WrongPasswordIsAuthWithoutThePassword) {
  Script s;
  s.S("220 mx.test ESMTP")
      .C(std::string("EHLO ") + kHelo)
      .S("250-mx.test\r\n250 AUTH PLAIN LOGIN")
      .C("AUTH PLAIN " + plain_ir())
      .S(std::string("535 5.7.8 Authentication credentials invalid for ") + kPassword);
  Servers servers;
  servers.add(s);
  auto sender = make_smtp_sender(config(), password(), servers.factory());
  auto sent = sender->send(mail({"bob@x.test"}));
  EXPECT_THAT(sent.status(), StatusIs(ErrorKind::kAuth,
                                      AllOf(HasSubstr("refused the login for user " +
                                                      std::string(kUser)),
                                            HasSubstr("535 5.7.8"), Not(HasSubstr(kPassword)),
                                            Not(HasSubstr(plain_ir())))));
}

TEST(SmtpSenderTest, LoginMechanismWhenPlainIsNotOffered) {
  Script s;
  s.S("220 mx.test ESMTP")
      .C(std::string("EHLO ") + kHelo)
      .S("250-mx.test\r\n250 AUTH LOGIN")
      .C("AUTH LOGIN")
      .S("334 VXNlcm5hbWU6")
      .C(base64_encode(kUser))
      .S("334 UGFzc3dvcmQ6")
      .C(base64_encode(kPassword))
      .S("235 ok")
      .C("MAIL FROM:<alice@contoso.test>")
      .S("250 ok")
      .C("RCPT TO:<bob@x.test>")
      .S("250 ok")
      .C("DATA")
      .S("354 go")
      .raw_client("Subject: t\r\n\r\nbody\r\n.\r\n")
      .S("250 ok");
  Servers servers;
  servers.add(s, 1);
  auto sender = make_smtp_sender(config(), password(), servers.factory());
  ASSERT_THAT(sender->send(mail({"bob@x.test"})).status(), IsOk());
  EXPECT_EQ(servers.written(0), s.client);
}

TEST(SmtpSenderTest, StartTlsUpgradesThenSaysEhloAgain) {
  Script s;
  s.S("220 mx.test ESMTP")
      .C(std::string("EHLO ") + kHelo)
      .S("250-mx.test\r\n250 STARTTLS")
      .C("STARTTLS")
      .S("220 2.0.0 Ready to start TLS")
      .C(std::string("EHLO ") + kHelo)
      .S("250-mx.test\r\n250-PIPELINING\r\n250 AUTH PLAIN")
      .C("AUTH PLAIN " + plain_ir())
      .S("235 ok");
  Servers servers;
  servers.implicit_tls = false;
  servers.add(s, 1);
  auto sender = make_smtp_sender(config(Security::kStartTls), password(), servers.factory());
  ConnectionReport rep = sender->test_connection();
  ASSERT_THAT(rep.status, IsOk());
  std::vector<std::string> names;
  for (const auto& st : rep.steps) names.push_back(st.name);
  EXPECT_THAT(names, ::testing::ElementsAre("resolve", "connect", "starttls", "ehlo", "sign-in"));
  EXPECT_THAT(rep.steps[2].detail, HasSubstr("STARTTLS"));
  EXPECT_THAT(rep.steps[3].detail, HasSubstr("PIPELINING"));
  EXPECT_THAT(rep.steps[4].detail, HasSubstr("AUTH PLAIN"));
  EXPECT_THAT(servers.written(0), HasSubstr(s.client));
}

TEST(SmtpSenderTest, StartTlsNotOfferedRefusesWithoutSendingThePassword) {
  Script s;
  s.S("220 mx.test ESMTP")
      .C(std::string("EHLO ") + kHelo)
      .S("250-mx.test\r\n250 AUTH PLAIN LOGIN");
  Servers servers;
  servers.implicit_tls = false;
  servers.add(s);
  auto sender = make_smtp_sender(config(Security::kStartTls), password(), servers.factory());
  auto sent = sender->send(mail({"bob@x.test"}));
  EXPECT_THAT(sent.status(), StatusIs(ErrorKind::kTls, HasSubstr("does not offer STARTTLS")));
  EXPECT_EQ(servers.written(0), s.client);
}

TEST(SmtpSenderTest, StartTlsWithInjectedPlaintextIsATlsRefusal) {
  Script s;
  s.S("220 mx.test ESMTP")
      .C(std::string("EHLO ") + kHelo)
      .S("250-mx.test\r\n250 STARTTLS")
      .C("STARTTLS")
      .S("220 2.0.0 Ready to start TLS")
      .S("250-injected\r\n250 AUTH PLAIN");  // in the clear, in the same segment
  Servers servers;
  servers.implicit_tls = false;
  servers.add(s);
  auto sender = make_smtp_sender(config(Security::kStartTls), password(), servers.factory());
  ConnectionReport rep = sender->test_connection();
  EXPECT_THAT(rep.status, StatusIs(ErrorKind::kTls, HasSubstr("injection")));
  ASSERT_FALSE(rep.steps.empty());
  EXPECT_EQ(rep.steps.back().name, "starttls");
  EXPECT_FALSE(rep.steps.back().ok);
  EXPECT_EQ(servers.written(0), s.client);  // no EHLO, no AUTH after the STARTTLS
}

TEST(SmtpSenderTest, HeloWhenEhloIsNotUnderstood) {
  Script s;
  s.S("220 old.test SMTP")
      .C(std::string("EHLO ") + kHelo)
      .S("502 5.5.1 command not implemented")
      .C(std::string("HELO ") + kHelo)
      .S("250 old.test")
      .C("MAIL FROM:<alice@contoso.test>")
      .S("250 ok")
      .C("RCPT TO:<bob@x.test>")
      .S("250 ok")
      .C("DATA")
      .S("354 go")
      .raw_client("Subject: t\r\n\r\nbody\r\n.\r\n")
      .S("250 ok");
  Servers servers;
  servers.add(s, 1);
  SignIn none;
  none.none = true;
  auto sender = make_smtp_sender(config(), none, servers.factory());
  ASSERT_THAT(sender->send(mail({"bob@x.test"})).status(), IsOk());
  EXPECT_EQ(servers.written(0), s.client);
}

TEST(SmtpSenderTest, KeptConnectionSendsRsetBeforeTheNextMessage) {
  Script s;
  opening(s)
      .C("MAIL FROM:<alice@contoso.test> SIZE=20")
      .C("RCPT TO:<bob@x.test>")
      .C("DATA")
      .S("250 Ok")
      .S("250 Ok")
      .S("354 go")
      .raw_client("Subject: t\r\n\r\nbody\r\n.\r\n")
      .S("250 Ok: queued as A")
      .C("RSET")
      .C("MAIL FROM:<alice@contoso.test> SIZE=20")
      .C("RCPT TO:<carol@x.test>")
      .C("DATA")
      .S("250 Ok")
      .S("250 Ok")
      .S("250 Ok")
      .S("354 go")
      .raw_client("Subject: t\r\n\r\nbody\r\n.\r\n")
      .S("250 Ok: queued as B")
      .C("QUIT")
      .S("221 Bye");
  Servers servers;
  servers.add(s);
  auto sender = make_smtp_sender(config(), password(), servers.factory());
  auto a = sender->send(mail({"bob@x.test"}));
  auto b = sender->send(mail({"carol@x.test"}));
  ASSERT_THAT(a.status(), IsOk());
  ASSERT_THAT(b.status(), IsOk());
  EXPECT_EQ(b->server_id, "B");
  sender->close();
  EXPECT_EQ(servers.next, 1u);  // one connection for both
  EXPECT_EQ(servers.written(0), s.client);
}

// One message on one connection, QUIT after it.
Script single(const std::string& to, const std::string& id) {
  Script s;
  opening(s)
      .C("MAIL FROM:<alice@contoso.test> SIZE=20")
      .C("RCPT TO:<" + to + ">")
      .C("DATA")
      .S("250 Ok")
      .S("250 Ok")
      .S("354 go")
      .raw_client("Subject: t\r\n\r\nbody\r\n.\r\n")
      .S("250 Ok: queued as " + id)
      .C("QUIT")
      .S("221 Bye");
  return s;
}

TEST(SmtpSenderTest, OneMessagePerConnectionQuitsAfterEach) {
  Servers servers;
  servers.add(single("bob@x.test", "A"));
  servers.add(single("carol@x.test", "B"));
  SenderConfig c = config();
  c.one_message_per_connection = true;
  auto sender = make_smtp_sender(c, password(), servers.factory());
  ASSERT_THAT(sender->send(mail({"bob@x.test"})).status(), IsOk());
  ASSERT_THAT(sender->send(mail({"carol@x.test"})).status(), IsOk());
  EXPECT_EQ(servers.next, 2u);
  EXPECT_EQ(servers.written(0), servers.scripts[0].client);
  EXPECT_EQ(servers.written(1), servers.scripts[1].client);
}

TEST(SmtpSenderTest, SecondMailRefusedWith503GoesOnANewConnectionAndStaysThatWay) {
  Script first;
  opening(first)
      .C("MAIL FROM:<alice@contoso.test> SIZE=20")
      .C("RCPT TO:<bob@x.test>")
      .C("DATA")
      .S("250 Ok")
      .S("250 Ok")
      .S("354 go")
      .raw_client("Subject: t\r\n\r\nbody\r\n.\r\n")
      .S("250 Ok: queued as A")
      .C("RSET")
      .C("MAIL FROM:<alice@contoso.test> SIZE=20")
      .C("RCPT TO:<carol@x.test>")
      .C("DATA")
      .S("250 Ok")
      .S("503 5.5.1 Error: only one message per connection")
      .S("503 5.5.1 Error: need MAIL command")
      .S("503 5.5.1 Error: need RCPT command")
      .C("QUIT")
      .S("221 Bye");
  Servers servers;
  servers.add(first);
  servers.add(single("carol@x.test", "B"));
  servers.add(single("dave@x.test", "C"));
  auto sender = make_smtp_sender(config(), password(), servers.factory());
  ASSERT_THAT(sender->send(mail({"bob@x.test"})).status(), IsOk());
  auto b = sender->send(mail({"carol@x.test"}));
  ASSERT_THAT(b.status(), IsOk());
  EXPECT_EQ(b->server_id, "B");
  // Learned: the next message gets a connection of its own at once, and QUIT after it.
  auto c = sender->send(mail({"dave@x.test"}));
  ASSERT_THAT(c.status(), IsOk());
  EXPECT_EQ(c->server_id, "C");
  EXPECT_EQ(servers.next, 3u);
  for (size_t i = 0; i < 3; ++i) EXPECT_EQ(servers.written(i), servers.scripts[i].client) << i;
}

TEST(SmtpSenderTest, KeptConnectionClosedWhileIdleIsReopenedOnce) {
  Script first;
  opening(first)
      .C("MAIL FROM:<alice@contoso.test> SIZE=20")
      .C("RCPT TO:<bob@x.test>")
      .C("DATA")
      .S("250 Ok")
      .S("250 Ok")
      .S("354 go")
      .raw_client("Subject: t\r\n\r\nbody\r\n.\r\n")
      .S("250 Ok: queued as A");
  // ... and then the server timed the idle connection out: no answer to RSET.
  Servers servers;
  servers.add(first);
  servers.add(single("carol@x.test", "B"));
  auto sender = make_smtp_sender(config(), password(), servers.factory());
  ASSERT_THAT(sender->send(mail({"bob@x.test"})).status(), IsOk());
  auto b = sender->send(mail({"carol@x.test"}));
  ASSERT_THAT(b.status(), IsOk());
  EXPECT_EQ(b->server_id, "B");
  sender->close();
  EXPECT_EQ(servers.next, 2u);
}

TEST(SmtpSenderTest, ServiceNotAvailableAtConnectIsTransient) {
  Script s;
  s.S("421 4.3.2 Service not available, closing transmission channel");
  Servers servers;
  servers.add(s);
  auto sender = make_smtp_sender(config(), password(), servers.factory());
  auto sent = sender->send(mail({"bob@x.test"}));
  EXPECT_THAT(sent.status(), StatusIs(ErrorKind::kThrottled, HasSubstr("421 4.3.2")));
  EXPECT_EQ(servers.written(0), "");
}

TEST(SmtpSenderTest, MalformedReplyIsProtocol) {
  Script s;
  s.S("220 mx.test ESMTP").S("250-mx.test\r\n251 mixed codes");
  Servers servers;
  servers.add(s);
  auto sender = make_smtp_sender(config(), password(), servers.factory());
  EXPECT_THAT(sender->send(mail({"bob@x.test"})).status(),
              StatusIs(ErrorKind::kProtocol, HasSubstr("changed the reply code")));
}

TEST(SmtpSenderTest, EnvelopeInjectionIsRefusedBeforeAnythingIsSent) {
  Script s;
  opening(s);
  Servers servers;
  servers.add(s);
  auto sender = make_smtp_sender(config(), password(), servers.factory());
  auto sent = sender->send(mail({"bob@x.test>\r\nRCPT TO:<evil@x.test"}));
  EXPECT_THAT(sent.status(), StatusIs(ErrorKind::kInvalidInput, HasSubstr("envelope address")));
  EXPECT_TRUE(is_permanent_send_failure(sent.status()));
  EXPECT_THAT(servers.written(0), Not(HasSubstr("evil")));
}

std::string xoauth2_ir(const std::string& token) {
  return base64_encode(sasl::xoauth2_message(kUser, token));
}

TEST(SmtpSenderTest, RefusedTokenIsRetriedOnceWithAFreshOne) {
  const std::string old_token = "old-token-0123456789";
  const std::string new_token = "new-token-9876543210";
  Script s;
  s.S("220 mx.test ESMTP")
      .C(std::string("EHLO ") + kHelo)
      .S("250-mx.test\r\n250 AUTH PLAIN LOGIN XOAUTH2")
      .C("AUTH XOAUTH2 " + xoauth2_ir(old_token))
      .S("334 " + base64_encode(R"({"status":"401","schemes":"bearer","scope":"mail"})"))
      .C("")
      .S("535 5.7.8 Username and Password not accepted")
      .C("AUTH XOAUTH2 " + xoauth2_ir(new_token))
      .S("235 2.7.0 Accepted");
  Servers servers;
  servers.add(s, 1);
  int calls = 0;
  std::vector<Status> seen;
  SignIn oauth;
  // What AuthContext::with_token does: a rejected token is replaced once.
  oauth.with_token = [&](const std::function<Status(const std::string&)>& fn) {
    ++calls;
    Status st = fn(old_token);
    seen.push_back(st);
    if (!is_token_rejected(st)) return st;
    ++calls;
    return fn(new_token);
  };
  auto sender = make_smtp_sender(config(), oauth, servers.factory());
  ConnectionReport rep = sender->test_connection();
  ASSERT_THAT(rep.status, IsOk());
  EXPECT_EQ(calls, 3);  // the "token" step, then the sign-in and its retry
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_THAT(seen[1], StatusIs(ErrorKind::kAuth, AllOf(HasSubstr("token rejected"),
                                                        HasSubstr("status 401"),
                                                        Not(HasSubstr(old_token)))));
  EXPECT_THAT(servers.written(0), HasSubstr(s.client));
}

TEST(SmtpSenderTest, BareAuthFailureForATokenStillCountsAsRejectedToken) {
  const std::string token = "tok-abcdefghijklmnop";
  Script s;
  s.S("220 mx.test ESMTP")
      .C(std::string("EHLO ") + kHelo)
      .S("250-mx.test\r\n250 AUTH XOAUTH2")
      .C("AUTH XOAUTH2 " + xoauth2_ir(token))
      .S("535 5.7.3 Authentication unsuccessful");
  Servers servers;
  servers.add(s, 1);
  SignIn oauth;
  oauth.with_token = [&](const std::function<Status(const std::string&)>& fn) { return fn(token); };
  auto sender = make_smtp_sender(config(), oauth, servers.factory());
  auto sent = sender->send(mail({"bob@x.test"}));
  EXPECT_TRUE(is_token_rejected(sent.status())) << sent.status().to_string();
  EXPECT_THAT(sent.status().message(), AllOf(HasSubstr("535 5.7.3"), Not(HasSubstr(token))));
}

// Hostile servers over real sockets, with time-outs of 1 s: a greeting trickled one byte at
// a time, and a reply to the message data that never ends, both end at the step's deadline.
Status connect_to(smtp::Client& c, uint16_t port) {
  Timeouts t;
  t.connect = std::chrono::seconds(1);
  t.response = std::chrono::seconds(1);
  auto s = connect_tcp("127.0.0.1", port, t);
  if (!s.ok()) return s.status();
  return c.connect(std::move(*s));
}

TEST(SmtpDeadlineTest, TricklingGreetingEndsAtTheConnectTimeout) {
  mb::testing::ScriptServer server([](mb::testing::Peer& p) {
    p.trickle("220-slow", std::chrono::milliseconds(100), true);
  });
  smtp::ClientOptions o;
  o.host = "127.0.0.1";
  o.helo_name = "client.example";
  o.timeouts.connect = std::chrono::seconds(1);
  o.timeouts.response = std::chrono::seconds(1);
  smtp::Client c(o);
  auto started = std::chrono::steady_clock::now();
  EXPECT_THAT(connect_to(c, server.port()),
              StatusIs(ErrorKind::kNetwork, HasSubstr("timed out waiting for the greeting after 1 s")));
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(6));
}

TEST(SmtpDeadlineTest, EndlessMultilineReplyEndsAtTheResponseTimeout) {
  mb::testing::ScriptServer server([](mb::testing::Peer& p) {
    std::string line;
    if (!p.send("220 ready\r\n") || !p.read_line(line)) return;
    while (p.send("250-still here\r\n") && p.pause(std::chrono::milliseconds(50))) {
    }
  });
  smtp::ClientOptions o;
  o.host = "127.0.0.1";
  o.helo_name = "client.example";
  o.timeouts.connect = std::chrono::seconds(1);
  o.timeouts.response = std::chrono::seconds(1);
  smtp::Client c(o);
  auto started = std::chrono::steady_clock::now();
  Status s = connect_to(c, server.port());  // the EHLO answer never ends
  EXPECT_THAT(s, StatusIs(ErrorKind::kNetwork, HasSubstr("the answer to EHLO")));
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(6));
}

}  // namespace
}  // namespace mb
