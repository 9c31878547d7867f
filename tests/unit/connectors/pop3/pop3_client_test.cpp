// File: tests/unit/connectors/pop3/pop3_client_test.cpp — the POP3 client over scripted
// servers: status lines and RFC 2449/3206 codes, multi-line answers with dot-unstuffing,
// odd and hostile replies, STLS, and the sign-in (USER/PASS, AUTH PLAIN, AUTH XOAUTH2).
#include "connectors/pop3/pop3_client.h"

#include <chrono>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "auth/base64.h"
#include "tests/status_matchers.h"
#include "tests/unit/connectors/pop3/pop3_test_util.h"
#include "tests/unit/core/script_server.h"

namespace mb::pop3 {

// Puts a Client in a state with no connection under it: what a path that dropped the channel
// without close() would leave. No call sequence reaches it today; the guards must hold anyway.
struct ClientTestPeer {
  static void without_channel(Client& c, State s) {
    c.close();
    c.state_ = s;
  }
};

namespace {

using ::mb::pop3::testing::kGreeting;
using ::mb::pop3::testing::plain_ir;
using ::mb::pop3::testing::Script;
using ::mb::pop3::testing::scripted;
using ::mb::pop3::testing::SharedStream;
using ::mb::testing::IsOk;
using ::mb::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr const char* kPassword = "pop-secret-4711";

// A client connected to a scripted server; `tls` marks the stream as already encrypted.
struct Conn {
  std::shared_ptr<ScriptedStream> stream;
  std::unique_ptr<Client> client;
  std::vector<std::string> trace;

  explicit Conn(const Script& s, bool tls = true, size_t chunk = 4096, ClientOptions o = {}) {
    stream = scripted(s, chunk);
    if (tls) stream->start_tls("", {}).ignore();
    if (o.host.empty()) o.host = "pop.example";
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

// Connected and signed in with USER/PASS, ready for TRANSACTION commands.
Script transaction() {
  Script s;
  s.S(kGreeting).C("CAPA").multi("+OK", {"TOP", "UIDL", "USER"})
      .C("USER support").S("+OK").C(std::string("PASS ") + kPassword).S("+OK Logged in.");
  return s;
}

Status sign_in(Client& c, const std::string& password = kPassword) {
  sasl::Credentials creds;
  creds.user = "support";
  creds.secret = password;
  auto r = c.sign_in(creds);
  return r.ok() ? Status::Ok() : r.status();
}

sasl::Credentials creds_of(sasl::CredentialKind kind, std::string user, std::string secret) {
  sasl::Credentials c;
  c.kind = kind;
  c.user = std::move(user);
  c.secret = std::move(secret);
  return c;
}

TEST(Pop3ReplyTest, ParsesOkErrAndResponseCodes) {
  auto ok = parse_reply("+OK 2 320");
  ASSERT_THAT(ok.status(), IsOk());
  EXPECT_TRUE(ok->ok);
  EXPECT_EQ(ok->text, "2 320");
  auto bare = parse_reply("+OK");
  ASSERT_THAT(bare.status(), IsOk());
  EXPECT_EQ(bare->text, "");
  auto err = parse_reply("-ERR [in-use] Mailbox locked by another session");
  ASSERT_THAT(err.status(), IsOk());
  EXPECT_FALSE(err->ok);
  EXPECT_EQ(err->code, "IN-USE");
  EXPECT_EQ(err->text, "Mailbox locked by another session");
}

TEST(Pop3ReplyTest, HostileLineIsProtocolErrorWithBytesShownSafely) {
  std::string line = "+OKAY\x1b[31m\x01" + std::string(500, 'A');
  auto r = parse_reply(line);
  EXPECT_THAT(r.status(), StatusIs(ErrorKind::kProtocol, HasSubstr("+OKAY?[31m?AAA")));
  EXPECT_EQ(r.status().scope(), ErrorScope::kConnection);
  EXPECT_THAT(r.status().message(), Not(HasSubstr("\x1b")));
  EXPECT_LT(r.status().message().size(), 300u);
  EXPECT_THAT(parse_reply("* OK IMAP here").status(), StatusIs(ErrorKind::kProtocol, HasSubstr("* OK IMAP")));
}

TEST(Pop3ReplyTest, ResponseCodesMapToKinds) {
  auto st = [](const std::string& line, std::optional<std::chrono::seconds> delay = {}) {
    return err_status(*parse_reply(line), "PASS", delay);
  };
  EXPECT_THAT(st("-ERR [AUTH] Authentication failed."), StatusIs(ErrorKind::kAuth, HasSubstr("[AUTH]")));
  Status in_use = st("-ERR [IN-USE] locked");
  EXPECT_THAT(in_use, StatusIs(ErrorKind::kThrottled, HasSubstr("in use")));
  ASSERT_TRUE(in_use.retry_after().has_value());
  EXPECT_GT(in_use.retry_after()->count(), 0);
  Status delay = st("-ERR [LOGIN-DELAY] wait", std::chrono::seconds(900));
  EXPECT_THAT(delay, StatusIs(ErrorKind::kThrottled, HasSubstr("LOGIN-DELAY")));
  EXPECT_EQ(delay.retry_after(), std::chrono::seconds(900));
  EXPECT_THAT(st("-ERR [SYS/TEMP/DISK] try later"), StatusIs(ErrorKind::kThrottled, HasSubstr("SYS/TEMP")));
  Status perm = st("-ERR [SYS/PERM] broken");
  EXPECT_THAT(perm, StatusIs(ErrorKind::kRejected, HasSubstr("SYS/PERM")));
  EXPECT_EQ(perm.scope(), ErrorScope::kMailbox);
  EXPECT_THAT(st("-ERR no such message"), StatusIs(ErrorKind::kRejected, HasSubstr("no such message")));
}

TEST(Pop3ReplyTest, Unstuff) {
  EXPECT_EQ(unstuff("."), std::nullopt);
  EXPECT_EQ(unstuff(".."), std::optional<std::string_view>("."));
  EXPECT_EQ(unstuff("...x"), std::optional<std::string_view>("..x"));
  EXPECT_EQ(unstuff("text"), std::optional<std::string_view>("text"));
  EXPECT_EQ(unstuff(""), std::optional<std::string_view>(""));
}

TEST(Pop3ClientTest, RetrUnstuffsDotsByteAtATime) {
  Script s = transaction();
  s.C("RETR 1").multi("+OK 64 octets", {"Subject: dots", "", "..", "...leading", "a.b", ""});
  Conn c(s, true, /*chunk=*/1);
  ASSERT_THAT(c.connect(), IsOk());
  ASSERT_THAT(sign_in(*c.client), IsOk());
  std::string body;
  ASSERT_THAT(c.client->retr(1, body, 64), IsOk());
  EXPECT_EQ(body, "Subject: dots\r\n\r\n.\r\n..leading\r\na.b\r\n\r\n");
  EXPECT_EQ(c.written(), transaction().client + "RETR 1\r\n");
  EXPECT_THAT(c.all_trace(), Not(HasSubstr("..leading")));  // bodies are never traced
}

TEST(Pop3ClientTest, RetrWithoutTerminatorIsConnectionError) {
  Script s = transaction();
  s.C("RETR 1").S("+OK").S("Subject: cut").S("");
  Conn c(s);
  ASSERT_THAT(c.connect(), IsOk());
  ASSERT_THAT(sign_in(*c.client), IsOk());
  std::string body;
  Status r = c.client->retr(1, body);
  EXPECT_THAT(r, StatusIs(ErrorKind::kNetwork, HasSubstr("terminating")));
  EXPECT_EQ(r.scope(), ErrorScope::kConnection);
  EXPECT_EQ(c.client->state(), State::kDisconnected);
}

// A server that forgets to stuff a body line of only "." ends the answer there; what it
// sends after is not a reply, and the next command fails instead of mis-reading it.
TEST(Pop3ClientTest, UnstuffedDotLineEndsMessageAndNextReplyIsProtocolError) {
  Script s = transaction();
  s.C("RETR 1").S("+OK").S("Subject: x").S("").S("before").S(".").S("after").S(".");
  s.C("NOOP");
  Conn c(s);
  ASSERT_THAT(c.connect(), IsOk());
  ASSERT_THAT(sign_in(*c.client), IsOk());
  std::string body;
  ASSERT_THAT(c.client->retr(1, body), IsOk());
  EXPECT_EQ(body, "Subject: x\r\n\r\nbefore\r\n");
  EXPECT_THAT(c.client->noop(), StatusIs(ErrorKind::kProtocol, HasSubstr("\"after\"")));
}

// A message line longer than max_line (1 MiB by default) but within max_message_bytes is
// read like any other: the same mail imports over IMAP. Byte-at-a-time as well.
TEST(Pop3ClientTest, LongMessageLineWithinTheSizeLimitIsRead) {
  const std::string longline(5000, 'x');
  for (size_t chunk : {size_t{1}, size_t{4096}}) {
    SCOPED_TRACE(chunk);
    Script s = transaction();
    s.C("RETR 1").multi("+OK", {"Subject: x", "", longline, ".." + longline, "end"});
    s.C("NOOP").S("+OK");
    ClientOptions o;
    o.max_line = 1024;
    o.max_message_bytes = 20000;
    Conn c(s, true, chunk, o);
    ASSERT_THAT(c.connect(), IsOk());
    ASSERT_THAT(sign_in(*c.client), IsOk());
    std::string body;
    ASSERT_THAT(c.client->retr(1, body), IsOk());
    EXPECT_EQ(body, "Subject: x\r\n\r\n" + longline + "\r\n." + longline + "\r\nend\r\n");
    EXPECT_THAT(c.client->noop(), IsOk());
  }
}

// A status line is still bounded by max_line.
TEST(Pop3ClientTest, HugeStatusLineIsProtocolError) {
  Script s = transaction();
  s.C("NOOP").S("+OK " + std::string(5000, 'x'));
  ClientOptions o;
  o.max_line = 1024;
  Conn c(s, true, 4096, o);
  ASSERT_THAT(c.connect(), IsOk());
  ASSERT_THAT(sign_in(*c.client), IsOk());
  EXPECT_THAT(c.client->noop(), StatusIs(ErrorKind::kProtocol, HasSubstr("line too long")));
}

// One line longer than the size limit itself: too large, drained, the session goes on.
TEST(Pop3ClientTest, LineOverTheSizeLimitIsTooLargeAndDrained) {
  Script s = transaction();
  s.C("RETR 1").multi("+OK", {"Subject: x", std::string(50000, 'y'), "tail"});
  s.C("NOOP").S("+OK");
  ClientOptions o;
  o.max_message_bytes = 1000;
  Conn c(s, true, 4096, o);
  ASSERT_THAT(c.connect(), IsOk());
  ASSERT_THAT(sign_in(*c.client), IsOk());
  std::string body;
  Status r = c.client->retr(1, body);
  EXPECT_THAT(r, StatusIs(ErrorKind::kTooLarge, HasSubstr("over max_message_bytes (1000)")));
  EXPECT_TRUE(body.empty());
  EXPECT_THAT(c.client->noop(), IsOk());
}

TEST(Pop3ClientTest, OversizedMessageIsDrainedAndReportedForThatMessageOnly) {
  Script s = transaction();
  s.C("RETR 1").multi("+OK", {std::string(600, 'a'), std::string(600, 'b')});
  s.C("NOOP").S("+OK");
  ClientOptions o;
  o.max_message_bytes = 1000;
  Conn c(s, true, 4096, o);
  ASSERT_THAT(c.connect(), IsOk());
  ASSERT_THAT(sign_in(*c.client), IsOk());
  std::string body;
  Status r = c.client->retr(1, body);
  EXPECT_THAT(r, StatusIs(ErrorKind::kTooLarge, HasSubstr("over max_message_bytes (1000)")));
  EXPECT_EQ(r.scope(), ErrorScope::kMessage);
  EXPECT_TRUE(body.empty());
  EXPECT_THAT(c.client->noop(), IsOk());  // the connection is still in step
}

TEST(Pop3ClientTest, UidlListStatParsed) {
  Script s = transaction();
  s.C("STAT").S("+OK 2 3200");
  s.C("UIDL").multi("+OK", {"1 000000017c2a1b3f", "2 whatever-uid.2"});
  s.C("LIST").multi("+OK 2 messages", {"1 1200", "2 2000"});
  Conn c(s);
  ASSERT_THAT(c.connect(), IsOk());
  ASSERT_THAT(sign_in(*c.client), IsOk());
  auto st = c.client->stat();
  ASSERT_THAT(st.status(), IsOk());
  EXPECT_EQ(st->count, 2u);
  EXPECT_EQ(st->octets, 3200u);
  auto u = c.client->uidl();
  ASSERT_THAT(u.status(), IsOk());
  ASSERT_EQ(u->size(), 2u);
  EXPECT_EQ((*u)[1].number, 2u);
  EXPECT_EQ((*u)[1].uid, "whatever-uid.2");
  auto l = c.client->list();
  ASSERT_THAT(l.status(), IsOk());
  EXPECT_EQ((*l)[0].octets, 1200u);
}

TEST(Pop3ClientTest, MalformedUidlIsProtocolError) {
  Script s = transaction();
  s.C("UIDL").multi("+OK", {"1 good", "two bad"});
  Conn c(s);
  ASSERT_THAT(c.connect(), IsOk());
  ASSERT_THAT(sign_in(*c.client), IsOk());
  EXPECT_THAT(c.client->uidl().status(), StatusIs(ErrorKind::kProtocol, HasSubstr("\"two bad\"")));
}

TEST(Pop3ClientTest, NoUidlIsRejectedNotProtocol) {
  Script s = transaction();
  s.C("UIDL").S("-ERR Unknown command");
  Conn c(s);
  ASSERT_THAT(c.connect(), IsOk());
  ASSERT_THAT(sign_in(*c.client), IsOk());
  EXPECT_THAT(c.client->uidl().status(), StatusIs(ErrorKind::kRejected, HasSubstr("Unknown command")));
}

TEST(Pop3ClientTest, BareErrOnPassIsAuthAndHidesPassword) {
  Script s;
  s.S(kGreeting).C("CAPA").multi("+OK", {"USER"}).C("USER support").S("+OK")
      .C(std::string("PASS ") + kPassword).S(std::string("-ERR bad password ") + kPassword);
  Conn c(s);
  ASSERT_THAT(c.connect(), IsOk());
  Status r = sign_in(*c.client);
  EXPECT_THAT(r, StatusIs(ErrorKind::kAuth, HasSubstr("refused the login for user support")));
  EXPECT_THAT(r.message(), Not(HasSubstr(kPassword)));
  EXPECT_THAT(c.all_trace(), Not(HasSubstr(kPassword)));
  EXPECT_THAT(c.all_trace(), HasSubstr("PASS <redacted>"));
}

TEST(Pop3ClientTest, InUseOnPassIsThrottledNotAuth) {
  Script s;
  s.S(kGreeting).C("CAPA").multi("+OK", {"USER", "LOGIN-DELAY 120"}).C("USER support").S("+OK")
      .C(std::string("PASS ") + kPassword).S("-ERR [IN-USE] Mailbox is locked");
  Conn c(s);
  ASSERT_THAT(c.connect(), IsOk());
  Status r = sign_in(*c.client);
  EXPECT_THAT(r, StatusIs(ErrorKind::kThrottled, HasSubstr("IN-USE")));
  EXPECT_TRUE(r.retry_after().has_value());
  EXPECT_EQ(c.client->login_delay(), std::chrono::seconds(120));
}

TEST(Pop3ClientTest, AuthCodeOnPassIsAuth) {
  Script s;
  s.S(kGreeting).C("CAPA").S("-ERR no CAPA").C("USER support").S("+OK")
      .C(std::string("PASS ") + kPassword).S("-ERR [AUTH] Authentication failed.");
  Conn c(s);
  ASSERT_THAT(c.connect(), IsOk());
  EXPECT_THAT(sign_in(*c.client), StatusIs(ErrorKind::kAuth, HasSubstr("[AUTH]")));
  EXPECT_FALSE(c.client->capa_supported());
}

TEST(Pop3ClientTest, PasswordNeverSentInPlaintext) {
  Script s;
  s.S(kGreeting).C("CAPA").multi("+OK", {"USER", "STLS"});
  Conn c(s, /*tls=*/false);
  ASSERT_THAT(c.connect(), IsOk());
  EXPECT_THAT(sign_in(*c.client), StatusIs(ErrorKind::kConfig, HasSubstr("not encrypted")));
  EXPECT_EQ(c.written(), "CAPA\r\n");
}

TEST(Pop3ClientTest, AuthPlainWhenOffered) {
  Script s;
  s.S(kGreeting).C("CAPA").multi("+OK", {"SASL PLAIN LOGIN", "USER", "UIDL"})
      .C("AUTH PLAIN " + plain_ir("support", kPassword)).S("+OK Logged in.");
  Conn c(s);
  ASSERT_THAT(c.connect(), IsOk());
  sasl::Credentials creds = creds_of(sasl::CredentialKind::kPassword, "support", kPassword);
  auto how = c.client->sign_in(creds);
  ASSERT_THAT(how.status(), IsOk());
  EXPECT_EQ(*how, "AUTH PLAIN");
  EXPECT_EQ(c.client->state(), State::kTransaction);
  EXPECT_EQ(c.written(), s.client);
  EXPECT_THAT(c.all_trace(), Not(HasSubstr(plain_ir("support", kPassword))));
}

TEST(Pop3ClientTest, StlsRefusedWhenNotOffered) {
  Script s;
  s.S(kGreeting).C("CAPA").multi("+OK", {"USER", "UIDL"});
  Conn c(s, /*tls=*/false);
  ASSERT_THAT(c.connect(), IsOk());
  ASSERT_THAT(c.client->capa(), IsOk());
  EXPECT_THAT(c.client->stls(), StatusIs(ErrorKind::kTls, HasSubstr("does not offer STLS")));
  EXPECT_EQ(c.written(), "CAPA\r\n");  // nothing else, and never a password
}

TEST(Pop3ClientTest, StlsUpgradesAndAsksCapaAgain) {
  Script s;
  s.S(kGreeting).C("CAPA").multi("+OK", {"USER", "STLS"}).C("STLS").S("+OK Begin TLS")
      .C("CAPA").multi("+OK", {"USER", "UIDL", "SASL PLAIN"});
  Conn c(s, /*tls=*/false, /*chunk=*/1);
  ASSERT_THAT(c.connect(), IsOk());
  ASSERT_THAT(c.client->capa(), IsOk());
  ASSERT_THAT(c.client->stls(), IsOk());
  EXPECT_TRUE(c.client->is_tls());
  EXPECT_TRUE(c.client->has_capability("uidl"));
  EXPECT_FALSE(c.client->has_capability("STLS"));
  EXPECT_THAT(c.client->sasl_mechanisms(), ElementsAre("PLAIN"));
}

TEST(Pop3ClientTest, StlsWithInjectedBytesIsRefused) {
  Script s;
  s.S(kGreeting).C("CAPA").multi("+OK", {"STLS"}).C("STLS").S("+OK Begin TLS").S("+OK injected");
  Conn c(s, /*tls=*/false);
  ASSERT_THAT(c.connect(), IsOk());
  ASSERT_THAT(c.client->capa(), IsOk());
  EXPECT_THAT(c.client->stls(), StatusIs(ErrorKind::kTls, HasSubstr("injection")));
  EXPECT_EQ(c.client->state(), State::kDisconnected);
}

TEST(Pop3ClientTest, ErrGreetingInUseIsThrottled) {
  Script s;
  s.S("-ERR [IN-USE] too many sessions");
  Conn c(s);
  EXPECT_THAT(c.connect(), StatusIs(ErrorKind::kThrottled, HasSubstr("IN-USE")));
}

std::string long_token() { return "ya29." + std::string(400, 't'); }


// Exchange Online's form: "AUTH XOAUTH2", the server's empty "+", then the response.
TEST(Pop3ClientTest, Xoauth2LongTokenWaitsForContinuation) {
  sasl::Credentials creds =
      creds_of(sasl::CredentialKind::kToken, "support@example.com", long_token());
  std::string ir = base64_encode(sasl::xoauth2_message(creds.user, creds.secret));
  Script s;
  s.S("+OK The Microsoft Exchange POP3 service is ready.").C("CAPA")
      .multi("+OK", {"TOP", "UIDL", "SASL PLAIN", "USER"})
      .C("AUTH XOAUTH2").S("+ ").C(ir).S("+OK User successfully authenticated.");
  Conn c(s);
  ASSERT_THAT(c.connect(), IsOk());
  auto how = c.client->sign_in(creds);
  ASSERT_THAT(how.status(), IsOk());
  EXPECT_EQ(*how, "AUTH XOAUTH2");
  EXPECT_EQ(c.written(), s.client);
  EXPECT_THAT(c.all_trace(), Not(HasSubstr(ir)));
}

TEST(Pop3ClientTest, Xoauth2ShortTokenGoesInline) {
  sasl::Credentials creds = creds_of(sasl::CredentialKind::kToken, "u", "tok-1234");
  std::string ir = base64_encode(sasl::xoauth2_message("u", "tok-1234"));
  Script s;
  s.S(kGreeting).C("CAPA").multi("+OK", {"SASL PLAIN XOAUTH2 OAUTHBEARER"})
      .C("AUTH XOAUTH2 " + ir).S("+OK Logged in.");
  Conn c(s);
  ASSERT_THAT(c.connect(), IsOk());
  ASSERT_THAT(c.client->sign_in(creds).status(), IsOk());
  EXPECT_EQ(c.written(), s.client);
}

TEST(Pop3ClientTest, Xoauth2ErrorChallengeIsTokenRejected) {
  sasl::Credentials creds = creds_of(sasl::CredentialKind::kToken, "u", "tok-1234");
  std::string ir = base64_encode(sasl::xoauth2_message("u", "tok-1234"));
  std::string err = base64_encode(R"({"status":"401","schemes":"bearer","scope":"pop"})");
  Script s;
  s.S(kGreeting).C("CAPA").multi("+OK", {"SASL XOAUTH2"})
      .C("AUTH XOAUTH2 " + ir).S("+ " + err).C("").S("-ERR [AUTH] Authentication failed.");
  Conn c(s);
  ASSERT_THAT(c.connect(), IsOk());
  Status r = c.client->sign_in(creds).status();
  EXPECT_THAT(r, StatusIs(ErrorKind::kAuth, HasSubstr("token rejected: status 401")));
  EXPECT_THAT(r.message(), Not(HasSubstr("tok-1234")));
  EXPECT_EQ(c.written(), s.client);
  EXPECT_EQ(c.client->state(), State::kAuthorization);  // another AUTH may follow
}

TEST(Pop3ClientTest, QuitMustBeConfirmed) {
  Script s = transaction();
  s.C("DELE 1").S("+OK Marked to be deleted.").C("QUIT");  // the server vanishes
  Conn c(s);
  ASSERT_THAT(c.connect(), IsOk());
  ASSERT_THAT(sign_in(*c.client), IsOk());
  ASSERT_THAT(c.client->dele(1), IsOk());
  EXPECT_THAT(c.client->quit(), StatusIs(ErrorKind::kNetwork, HasSubstr("QUIT")));
}

TEST(Pop3ClientTest, TopReturnsHeaders) {
  Script s = transaction();
  s.C("TOP 3 0").multi("+OK", {"Subject: hi", "Message-ID: <a@b>", ""});
  Conn c(s);
  ASSERT_THAT(c.connect(), IsOk());
  ASSERT_THAT(sign_in(*c.client), IsOk());
  auto t = c.client->top(3, 0);
  ASSERT_THAT(t.status(), IsOk());
  EXPECT_EQ(*t, "Subject: hi\r\nMessage-ID: <a@b>\r\n\r\n");
}

// A state guard never passes without a connection: every command on a client that was
// never connected, or whose connection is gone, is a connection error, never OK.
TEST(Pop3ClientTest, EveryCommandWithoutAConnectionIsAConnectionError) {
  Client c(ClientOptions{});
  sasl::Credentials creds;
  creds.user = "support";
  creds.secret = "pw";
  auto mech = sasl::make_mechanism("PLAIN", creds);
  ASSERT_THAT(mech.status(), IsOk());
  std::string body;
  for (const Status& s : {c.capa(), c.stls(), c.user_pass("u", "p"), c.authenticate(**mech, creds),
                          c.sign_in(creds).status(), c.stat().status(), c.uidl().status(),
                          c.list().status(), c.retr(1, body), c.top(1, 0).status(), c.dele(1),
                          c.rset(), c.noop(), c.quit()}) {
    EXPECT_THAT(s, StatusIs(ErrorKind::kNetwork, HasSubstr("closed")));
    EXPECT_EQ(s.scope(), ErrorScope::kConnection) << s.to_string();
  }
}

// Issue 13 (code review): "if (!channel_) return require(...)" returned OK by construction:
// require() passed on the state alone. Whatever the state says, a command without a
// connection is a connection error, never OK (AUTH used to return OK) and never a crash
// (pipelined RETR used to dereference the missing channel).
TEST(Pop3ClientTest, NoCommandPassesOnTheStateAloneWithoutAConnection) {
  sasl::Credentials creds;
  creds.user = "support";
  creds.secret = "pw";
  auto mech = sasl::make_mechanism("PLAIN", creds);
  ASSERT_THAT(mech.status(), IsOk());
  auto expect_closed = [](const Status& s, const char* what) {
    EXPECT_THAT(s, StatusIs(ErrorKind::kNetwork, HasSubstr("closed"))) << what;
    EXPECT_EQ(s.scope(), ErrorScope::kConnection) << what << ": " << s.to_string();
  };
  {
    Client c(ClientOptions{});
    ClientTestPeer::without_channel(c, State::kAuthorization);
    expect_closed(c.capa(), "CAPA");
    ClientTestPeer::without_channel(c, State::kAuthorization);
    expect_closed(c.stls(), "STLS");
    ClientTestPeer::without_channel(c, State::kAuthorization);
    expect_closed(c.user_pass("u", "p"), "USER/PASS");
    ClientTestPeer::without_channel(c, State::kAuthorization);
    expect_closed(c.authenticate(**mech, creds), "AUTH");
    ClientTestPeer::without_channel(c, State::kAuthorization);
    expect_closed(c.sign_in(creds).status(), "sign-in");
  }
  Client c(ClientOptions{});
  std::string body;
  auto sink = [](size_t, Result<std::string>) { return Status::Ok(); };
  ClientTestPeer::without_channel(c, State::kTransaction);
  for (const Status& s : {c.stat().status(), c.uidl().status(), c.list().status(),
                          c.retr(1, body), c.retr_many({1, 2}, sink), c.top(1, 0).status(),
                          c.dele(1), c.rset(), c.noop(), c.quit()}) {
    expect_closed(s, "TRANSACTION command");
  }
}

// The same after a real loss: the server goes away after the sign-in; the failed command
// closes the client, and every later one is a connection error.
TEST(Pop3ClientTest, EveryCommandAfterTheConnectionIsLostIsAConnectionError) {
  Conn c(transaction());
  ASSERT_THAT(c.connect(), IsOk());
  ASSERT_THAT(sign_in(*c.client), IsOk());
  EXPECT_THAT(c.client->stat().status(), StatusIs(ErrorKind::kNetwork, ::testing::_));
  EXPECT_EQ(c.client->state(), State::kDisconnected);
  std::string body;
  auto sink = [](size_t, Result<std::string>) { return Status::Ok(); };
  for (const Status& s : {c.client->stat().status(), c.client->uidl().status(),
                          c.client->list().status(), c.client->retr(1, body),
                          c.client->retr_many({1}, sink), c.client->dele(1), c.client->noop(),
                          c.client->quit()}) {
    EXPECT_THAT(s, StatusIs(ErrorKind::kNetwork, HasSubstr("closed")));
  }
}

// Hostile servers over real sockets, with time-outs of 1 s.
using ::mb::testing::Peer;
using ::mb::testing::ScriptServer;
using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr auto kReturnsWithin = seconds(6);  // the deadline plus slack for a busy machine

struct SocketConn {
  ScriptServer server;
  std::unique_ptr<Client> client;
  explicit SocketConn(ScriptServer::Handler h, uint64_t max_message_bytes = 1u << 20)
      : server(std::move(h)) {
    ClientOptions o;
    o.host = "127.0.0.1";
    o.timeouts.connect = seconds(1);
    o.timeouts.response = seconds(1);
    o.allow_plaintext_auth = true;
    o.max_message_bytes = max_message_bytes;
    client = std::make_unique<Client>(o);
  }
  Status connect_and_sign_in() {
    Timeouts t;
    t.connect = seconds(1);
    t.response = seconds(1);
    auto s = connect_tcp("127.0.0.1", server.port(), t);
    if (!s.ok()) return s.status();
    MB_RETURN_IF_ERROR(client->connect(std::move(*s)));
    return client->user_pass("support", kPassword);
  }
};

// Greeting, USER and PASS answered; then `rest` plays the RETR.
ScriptServer::Handler signed_in_then(std::function<void(Peer&)> rest) {
  return [rest = std::move(rest)](Peer& p) {
    std::string line;
    if (!p.send("+OK ready\r\n") || !p.read_line(line) || !p.send("+OK\r\n")) return;
    if (!p.read_line(line) || !p.send("+OK in\r\n") || !p.read_line(line)) return;
    rest(p);
  };
}

TEST(Pop3DeadlineTest, TricklingGreetingEndsAtTheConnectTimeout) {
  SocketConn c([](Peer& p) { p.trickle("+OK slow ", milliseconds(100), true); });
  auto started = std::chrono::steady_clock::now();
  EXPECT_THAT(c.connect_and_sign_in(),
              StatusIs(ErrorKind::kNetwork,
                       HasSubstr("timed out waiting for the greeting after 1 s")));
  EXPECT_LT(std::chrono::steady_clock::now() - started, kReturnsWithin);
}

TEST(Pop3DeadlineTest, TricklingRetrEndsAtTheResponseTimeout) {
  SocketConn c(signed_in_then([](Peer& p) {
    p.send("+OK\r\nSubject: x\r\n\r\n");
    p.trickle("body that never ends ", milliseconds(100), true);
  }));
  ASSERT_THAT(c.connect_and_sign_in(), IsOk());
  auto started = std::chrono::steady_clock::now();
  std::string body;
  Status s = c.client->retr(1, body);
  EXPECT_THAT(s, StatusIs(ErrorKind::kNetwork,
                          HasSubstr("timed out waiting for the answer to RETR 1 after 1 s")));
  EXPECT_EQ(s.scope(), ErrorScope::kConnection);
  EXPECT_LT(std::chrono::steady_clock::now() - started, kReturnsWithin);
}

// A RETR body without end, as fast as loopback goes: past the size limit nothing is kept,
// and past kMaxDrain more the connection is closed; the message is kTooLarge.
TEST(Pop3DeadlineTest, EndlessRetrIsTooLargeAndClosesTheConnection) {
  SocketConn c(signed_in_then([](Peer& p) {
                 p.send("+OK\r\n");
                 std::string chunk;
                 for (int i = 0; i < 1000; ++i) chunk += "a line of an endless message\r\n";
                 p.stream(chunk);
               }),
               /*max_message_bytes=*/4096);
  ASSERT_THAT(c.connect_and_sign_in(), IsOk());
  auto started = std::chrono::steady_clock::now();
  std::string body;
  Status s = c.client->retr(1, body);
  EXPECT_THAT(s, StatusIs(ErrorKind::kTooLarge, HasSubstr("the connection was closed")));
  EXPECT_EQ(s.scope(), ErrorScope::kMessage);
  EXPECT_TRUE(body.empty());
  EXPECT_EQ(c.client->state(), State::kDisconnected);
  EXPECT_LT(std::chrono::steady_clock::now() - started, seconds(60));
}

// The same endless body trickled in one line: the deadline ends it before any bound.
TEST(Pop3DeadlineTest, EndlessLineTrickledEndsAtTheResponseTimeout) {
  SocketConn c(signed_in_then([](Peer& p) {
    p.send("+OK\r\n");
    p.trickle("x", milliseconds(10), true);
  }));
  ASSERT_THAT(c.connect_and_sign_in(), IsOk());
  auto started = std::chrono::steady_clock::now();
  std::string body;
  EXPECT_THAT(c.client->retr(1, body),
              StatusIs(ErrorKind::kNetwork, HasSubstr("the answer to RETR 1")));
  EXPECT_LT(std::chrono::steady_clock::now() - started, kReturnsWithin);
}

}  // namespace
}  // namespace mb::pop3
