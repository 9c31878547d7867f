// File: tests/unit/connectors/imap/imap_client_test.cpp — the IMAP client against scripted
// servers: each case gives the server's bytes, the exact client transcript expected, and
// the Status kind expected.
#include "connectors/imap/imap_client.h"

#include <chrono>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "connectors/imap/imap_syntax.h"
#include "tests/status_matchers.h"
#include "tests/unit/connectors/imap/imap_test_util.h"
#include "tests/unit/core/script_server.h"

namespace mb::imap {

// Puts a Client in a state with no connection under it: what a path that dropped the channel
// without close() would leave. No call sequence reaches it today; the guards must hold anyway.
struct ClientTestPeer {
  static void without_channel(Client& c, State s) {
    c.close();
    c.state_ = s;
  }
};

namespace {
using ::mb::imap::testing::kGreeting;
using ::mb::imap::testing::kPostLoginCaps;
using ::mb::imap::testing::plain_ir;
using ::mb::imap::testing::Script;
using ::mb::imap::testing::scripted;
using ::mb::imap::testing::SharedStream;
using ::mb::testing::IsOk;
using ::mb::testing::StatusIs;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr const char* kPassword = "s3cret-Pa55";

// A client over a scripted stream, recording its trace.
struct Harness {
  std::shared_ptr<ScriptedStream> stream;
  std::vector<std::string> trace;
  std::unique_ptr<Client> client;

  explicit Harness(const Script& script, size_t chunk = 4096,
                   const std::function<void(ClientOptions&)>& adjust = nullptr) {
    stream = scripted(script, chunk);
    ClientOptions o;
    o.host = "imap.example";
    o.label = "test";
    o.allow_plaintext_auth = true;  // scripted streams have no TLS
    o.trace = [this](const std::string& line) { trace.push_back(line); };
    if (adjust) adjust(o);
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

class ClientFlowTest : public ::testing::TestWithParam<size_t> {};

// Greeting, LOGIN, SELECT, UID SEARCH and a UID FETCH streaming two literals; run with the
// server's bytes arriving one at a time and in one large chunk.
TEST_P(ClientFlowTest, LoginSelectSearchFetch) {
  std::string body1 = "From: a@example.com\r\nSubject: one\r\n\r\nHello (world) {3}\r\n";
  std::string body2(70000, 'x');
  Script s;
  s.S("* OK [CAPABILITY IMAP4rev1 LITERAL+ IDLE] ready")
      .C("a1 LOGIN \"support\" \"s3cret-Pa55\"")
      .S(std::string("a1 OK ") + kPostLoginCaps + " Logged in")
      .C("a2 SELECT \"INBOX\"")
      .S("* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)")
      .S("* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*)] Flags")
      .S("* 2 EXISTS")
      .S("* 0 RECENT")
      .S("* OK [UIDVALIDITY 1700000000] UIDs valid")
      .S("* OK [UIDNEXT 9] Predicted next UID")
      .S("a2 OK [READ-WRITE] Select completed")
      .C("a3 UID SEARCH UNSEEN")
      .S("* SEARCH 8 7")
      .S("a3 OK Search completed")
      .C("a4 UID FETCH 7:8 (UID RFC822.SIZE)")
      .size(1, 7, body1.size())
      .size(2, 8, body2.size())
      .S("a4 OK Fetch completed")
      .C("a5 UID FETCH 7:8 (UID BODY.PEEK[])")
      .fetch(1, 7, body1)
      .S("* 2 FETCH (FLAGS (\\Recent))")
      .fetch(2, 8, body2)
      .S("a5 OK Fetch completed");
  Harness h(s, GetParam());
  ASSERT_THAT(h.connect(), IsOk());
  EXPECT_EQ(h.client->state(), State::kNotAuthenticated);
  auto how = h.client->sign_in("support", kPassword);
  ASSERT_THAT(how, IsOk());
  EXPECT_EQ(*how, SignInMethod::kLogin);
  EXPECT_TRUE(h.client->has_capability("move"));
  auto box = h.client->select("INBOX");
  ASSERT_THAT(box, IsOk());
  EXPECT_EQ(box->uidvalidity, 1700000000u);
  EXPECT_EQ(box->exists, 2u);
  EXPECT_EQ(box->uidnext, 9u);
  EXPECT_FALSE(box->read_only);
  EXPECT_EQ(h.client->state(), State::kSelected);
  auto uids = h.client->uid_search("UNSEEN");
  ASSERT_THAT(uids, IsOk());
  EXPECT_THAT(*uids, ElementsAre(7u, 8u));
  std::vector<std::pair<uint32_t, std::string>> got;
  ASSERT_THAT(h.client->uid_fetch(*uids,
                                  [&](uint32_t uid, Result<std::string> body) {
                                    EXPECT_THAT(body, IsOk());
                                    if (body.ok()) got.emplace_back(uid, std::move(*body));
                                    return Status::Ok();
                                  }),
              IsOk());
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].first, 7u);
  EXPECT_EQ(got[0].second, body1);
  EXPECT_EQ(got[1].first, 8u);
  EXPECT_EQ(got[1].second, body2);
  EXPECT_EQ(h.written(), s.client);
}

INSTANTIATE_TEST_SUITE_P(Chunks, ClientFlowTest, ::testing::Values(1, 7, 65536));

TEST(ClientTest, AuthenticatePlainWithSaslIr) {
  std::string payload = plain_ir("support", kPassword);
  Script s;
  s.S(kGreeting)
      .C("a1 AUTHENTICATE PLAIN " + payload)
      .S(std::string("a1 OK ") + kPostLoginCaps + " Logged in");
  Harness h(s);
  ASSERT_THAT(h.connect(), IsOk());
  auto how = h.client->sign_in("support", kPassword);
  ASSERT_THAT(how, IsOk());
  EXPECT_EQ(*how, SignInMethod::kAuthenticatePlain);
  EXPECT_EQ(h.client->state(), State::kAuthenticated);
  EXPECT_EQ(h.written(), s.client);
  EXPECT_THAT(h.all_trace(), AllOf(HasSubstr("C: a1 AUTHENTICATE PLAIN <redacted>"),
                                   Not(HasSubstr(payload)), Not(HasSubstr(kPassword))));
}

TEST(ClientTest, AuthenticatePlainWithContinuation) {
  std::string payload = plain_ir("support", kPassword);
  Script s;
  s.S("* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] hi")
      .C("a1 AUTHENTICATE PLAIN")
      .S("+ ")
      .C(payload)
      .S("a1 OK Logged in")
      .C("a2 CAPABILITY")
      .S("* CAPABILITY IMAP4rev1 MOVE UIDPLUS")
      .S("a2 OK done");
  Harness h(s);
  ASSERT_THAT(h.connect(), IsOk());
  ASSERT_THAT(h.client->sign_in("support", kPassword), IsOk());
  EXPECT_EQ(h.written(), s.client);
  EXPECT_TRUE(h.client->has_capability("UIDPLUS"));
  EXPECT_FALSE(h.client->has_capability("AUTH=PLAIN"));
  EXPECT_THAT(h.all_trace(), AllOf(HasSubstr("C: <redacted>"), Not(HasSubstr(payload))));
}

TEST(ClientTest, LoginRefusedIsAuthWithoutThePassword) {
  Script s;
  s.S("* OK [CAPABILITY IMAP4rev1] hi")
      .C("a1 LOGIN \"support\" \"s3cret-Pa55\"")
      .S("a1 NO [AUTHENTICATIONFAILED] Authentication failed.");
  Harness h(s);
  ASSERT_THAT(h.connect(), IsOk());
  auto r = h.client->sign_in("support", kPassword);
  EXPECT_THAT(r, StatusIs(ErrorKind::kAuth,
                          AllOf(HasSubstr("IMAP server refused the login for user support"),
                                HasSubstr("Authentication failed."), Not(HasSubstr(kPassword)))));
  EXPECT_EQ(h.written(), s.client);
  EXPECT_THAT(h.all_trace(), AllOf(HasSubstr("C: a1 LOGIN \"support\" <redacted>"),
                                   Not(HasSubstr(kPassword))));
}

TEST(ClientTest, ServerEchoingThePasswordDoesNotLeakIt) {
  Script s;
  s.S("* OK [CAPABILITY IMAP4rev1] hi")
      .C("a1 LOGIN \"support\" \"s3cret-Pa55\"")
      .S("a1 NO bad password s3cret-Pa55");
  Harness h(s);
  ASSERT_THAT(h.connect(), IsOk());
  EXPECT_THAT(h.client->login("support", kPassword),
              StatusIs(ErrorKind::kAuth, AllOf(HasSubstr("<redacted>"), Not(HasSubstr(kPassword)))));
}

TEST(ClientTest, FailureSentAsContinuationIsCancelledAndAuth) {
  std::string payload = plain_ir("support", kPassword);
  Script s;
  s.S(kGreeting)
      .C("a1 AUTHENTICATE PLAIN " + payload)
      .S("+ eyJzdGF0dXMiOiI0MDEiLCJzY2hlbWVzIjoiYmVhcmVyIn0=")
      .C("*")
      .S("a1 BAD Authentication aborted by client.");
  Harness h(s);
  ASSERT_THAT(h.connect(), IsOk());
  EXPECT_THAT(h.client->sign_in("support", kPassword),
              StatusIs(ErrorKind::kAuth, AllOf(HasSubstr("refused the login for user support"),
                                               HasSubstr("challenge"))));
  EXPECT_EQ(h.written(), s.client);
}

TEST(ClientTest, UnavailableAtLoginIsNetwork) {
  Script s;
  s.S("* OK [CAPABILITY IMAP4rev1] hi")
      .C("a1 LOGIN \"support\" \"s3cret-Pa55\"")
      .S("a1 NO [UNAVAILABLE] Backend down");
  Harness h(s);
  ASSERT_THAT(h.connect(), IsOk());
  EXPECT_THAT(h.client->login("support", kPassword),
              StatusIs(ErrorKind::kNetwork, HasSubstr("Backend down")));
}

TEST(ClientTest, LoginDisabledWithoutPlainIsRefusedBeforeSending) {
  Script s;
  s.S("* OK [CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED] hi");
  Harness h(s);
  ASSERT_THAT(h.connect(), IsOk());
  EXPECT_THAT(h.client->sign_in("support", kPassword),
              StatusIs(ErrorKind::kConfig, HasSubstr("LOGINDISABLED")));
  EXPECT_EQ(h.written(), "");
}

TEST(ClientTest, PreauthGreetingSkipsSignIn) {
  Script s;
  s.S("* PREAUTH [CAPABILITY IMAP4rev2] welcome back");
  Harness h(s);
  ASSERT_THAT(h.connect(), IsOk());
  auto how = h.client->sign_in("support", kPassword);
  ASSERT_THAT(how, IsOk());
  EXPECT_EQ(*how, SignInMethod::kPreauth);
  EXPECT_EQ(h.written(), "");
}

TEST(ClientTest, PreauthBeforeStartTlsIsATlsRefusal) {
  Script s;
  s.S("* PREAUTH [CAPABILITY IMAP4rev1 STARTTLS] welcome back");
  Harness h(s);
  ASSERT_THAT(h.connect(), IsOk());
  EXPECT_THAT(h.client->starttls(),
              StatusIs(ErrorKind::kTls, HasSubstr("PREAUTH before STARTTLS")));
  EXPECT_FALSE(h.stream->is_tls());
  EXPECT_EQ(h.client->state(), State::kDisconnected);
  EXPECT_EQ(h.written(), "");  // not a byte in plaintext
}

TEST(ClientTest, ByeAtGreetingIsNetwork) {
  Script s;
  s.S("* BYE Too many connections from your IP");
  Harness h(s);
  EXPECT_THAT(h.connect(),
              StatusIs(ErrorKind::kNetwork, HasSubstr("Too many connections from your IP")));
  EXPECT_EQ(h.client->state(), State::kLogout);
}

TEST(ClientTest, StartTlsUpgradesAndAsksCapabilitiesAgain) {
  Script s;
  s.S("* OK [CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED] hi")
      .C("a1 STARTTLS")
      .S("a1 OK Begin TLS negotiation now.")
      .C("a2 CAPABILITY")
      .S("* CAPABILITY IMAP4rev1 AUTH=PLAIN")
      .S("a2 OK done");
  // One byte per read: nothing can sit in the buffer when the TLS upgrade starts.
  Harness h(s, 1);
  ASSERT_THAT(h.connect(), IsOk());
  ASSERT_THAT(h.client->starttls(), IsOk());
  EXPECT_TRUE(h.client->is_tls());
  EXPECT_TRUE(h.client->has_capability("AUTH=PLAIN"));
  EXPECT_FALSE(h.client->has_capability("LOGINDISABLED"));
  EXPECT_EQ(h.written(), s.client);
}

TEST(ClientTest, PlaintextInjectedAfterStartTlsOkIsRefused) {
  Script s;
  s.S("* OK [CAPABILITY IMAP4rev1 STARTTLS] hi")
      .C("a1 STARTTLS")
      .S("a1 OK Begin TLS negotiation now.")
      .S("* CAPABILITY IMAP4rev1 AUTH=PLAIN")  // sent in the clear, in the same segment
      .S("a2 OK done");
  Harness h(s);
  ASSERT_THAT(h.connect(), IsOk());
  EXPECT_THAT(h.client->starttls(), StatusIs(ErrorKind::kTls, HasSubstr("injection")));
  EXPECT_FALSE(h.stream->is_tls());
  EXPECT_EQ(h.client->state(), State::kDisconnected);
  EXPECT_EQ(h.written(), s.client);
}

TEST(ClientTest, StartTlsNotAdvertisedIsRefusedWithoutFallback) {
  Script s;
  s.S("* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] hi");
  Harness h(s);
  ASSERT_THAT(h.connect(), IsOk());
  EXPECT_THAT(h.client->starttls(), StatusIs(ErrorKind::kTls, HasSubstr("does not offer STARTTLS")));
  EXPECT_EQ(h.written(), "");
}

TEST(ClientTest, StartTlsAsksCapabilitiesWhenTheGreetingHadNone) {
  Script s;
  s.S("* OK hi")
      .C("a1 CAPABILITY")
      .S("* CAPABILITY IMAP4rev1")
      .S("a1 OK done");
  Harness h(s);
  ASSERT_THAT(h.connect(), IsOk());
  EXPECT_THAT(h.client->starttls(), StatusIs(ErrorKind::kTls, HasSubstr("STARTTLS")));
  EXPECT_EQ(h.written(), s.client);
}

struct ShortCase {
  const char* name;
  std::string server;
  ErrorKind kind;
  const char* text;
};

class ShortReplyTest : public ::testing::TestWithParam<ShortCase> {};

// Truncated or broken server output ends in a clear error, never a hang.
TEST_P(ShortReplyTest, EndsWithAClearError) {
  Script s;
  s.server = GetParam().server;
  Harness h(s, 3);
  Status st = h.connect();
  if (st.ok()) {
    auto r = h.client->sign_in("support", kPassword);
    st = r.status();
    if (st.ok()) st = h.client->select("INBOX").status();
    if (st.ok()) {
      st = h.client->uid_fetch({1}, [](uint32_t, Result<std::string>) { return Status::Ok(); });
    }
  }
  EXPECT_THAT(st, StatusIs(GetParam().kind, HasSubstr(GetParam().text)));
  EXPECT_EQ(h.client->state(), State::kDisconnected);
}

const std::string kLogin = "* OK [CAPABILITY IMAP4rev1] hi\r\na1 OK [CAPABILITY IMAP4rev1] in\r\n";
const std::string kSelected = kLogin + "* OK [UIDVALIDITY 5] x\r\na2 OK [READ-WRITE] sel\r\n";

INSTANTIATE_TEST_SUITE_P(
    Cases, ShortReplyTest,
    ::testing::Values(
        ShortCase{"Silent", "", ErrorKind::kNetwork, "closed by server"},
        ShortCase{"HalfGreeting", "* OK hel", ErrorKind::kNetwork, "closed by server"},
        ShortCase{"GarbageGreeting", "HTTP/1.1 400 Bad Request\r\n", ErrorKind::kProtocol,
                  "not OK, NO or BAD"},
        ShortCase{"TaggedGreeting", "a1 OK hi\r\n", ErrorKind::kProtocol, "not a greeting"},
        ShortCase{"NoTaggedReply", "* OK [CAPABILITY IMAP4rev1] hi\r\n", ErrorKind::kNetwork,
                  "closed by server"},
        ShortCase{"WrongTag", "* OK [CAPABILITY IMAP4rev1] hi\r\nz9 OK in\r\n",
                  ErrorKind::kProtocol, "unknown tag"},
        ShortCase{"ByeMidCommand", "* OK [CAPABILITY IMAP4rev1] hi\r\n* BYE server shutdown\r\n",
                  ErrorKind::kNetwork, "server shutdown"},
        ShortCase{"BadToLogin", "* OK [CAPABILITY IMAP4rev1] hi\r\na1 BAD what?\r\n",
                  ErrorKind::kProtocol, "BAD"},
        ShortCase{"TruncatedLiteral", kSelected + "* 1 FETCH (UID 1 BODY[] {100}\r\nabc",
                  ErrorKind::kNetwork, "closed by server"},
        ShortCase{"UnterminatedFetch", kSelected + "* 1 FETCH (UID 1 BODY[] \"abc\"\r\n",
                  ErrorKind::kProtocol, "unterminated list"},
        ShortCase{"BadToFetch", kSelected + "a3 BAD Error in IMAP command\r\n",
                  ErrorKind::kProtocol, "BAD"}),
    [](const auto& info) { return std::string(info.param.name); });

TEST(ClientTest, OddPasswordsAreQuotedOrSentAsLiterals) {
  struct Case {
    std::string password;
    std::string caps;
    std::vector<std::string> client;  // expected lines / raw pieces
    bool needs_continuation;
  };
  const std::vector<Case> cases = {
      {"pa\"ss\\word", "IMAP4rev1", {"a1 LOGIN \"u\" \"pa\\\"ss\\\\word\"\r\n"}, false},
      {"", "IMAP4rev1", {"a1 LOGIN \"u\" \"\"\r\n"}, false},
      {"pässwörd", "IMAP4rev1", {"a1 LOGIN \"u\" {10}\r\n", "pässwörd", "\r\n"}, true},
      {"line\r\nbreak", "IMAP4rev1 LITERAL+", {"a1 LOGIN \"u\" {11+}\r\n", "line\r\nbreak", "\r\n"},
       false},
      {"short\xff", "IMAP4rev1 LITERAL-", {"a1 LOGIN \"u\" {6+}\r\n", "short\xff", "\r\n"}, false},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.password);
    Script s;
    s.S("* OK [CAPABILITY " + c.caps + "] hi");
    if (c.needs_continuation) s.S("+ go ahead");
    s.S("a1 OK [CAPABILITY IMAP4rev1] in");
    Harness h(s);
    ASSERT_THAT(h.connect(), IsOk());
    EXPECT_THAT(h.client->login("u", c.password), IsOk());
    std::string expected;
    for (const auto& piece : c.client) expected += piece;
    EXPECT_EQ(h.written(), expected);
    if (c.password.size() >= 4) {
      EXPECT_THAT(h.all_trace(), Not(HasSubstr(c.password)));
    }
  }
}

TEST(ClientTest, LiteralRefusedBeforeItIsSent) {
  Script s;
  s.S("* OK [CAPABILITY IMAP4rev1] hi").S("a1 NO [AUTHENTICATIONFAILED] no literals for you");
  Harness h(s);
  ASSERT_THAT(h.connect(), IsOk());
  EXPECT_THAT(h.client->login("u", "pässwörd"), StatusIs(ErrorKind::kAuth, HasSubstr("no literals")));
  EXPECT_EQ(h.written(), "a1 LOGIN \"u\" {10}\r\n");
}

TEST(ClientTest, SelectOfMissingFolderIsNotFound) {
  Script s;
  s.S("* PREAUTH [CAPABILITY IMAP4rev1] hi")
      .C("a1 SELECT \"Entw&APw-rfe\"")
      .S("a1 NO [NONEXISTENT] Mailbox doesn't exist: Entw&APw-rfe");
  Harness h(s);
  ASSERT_THAT(h.connect(), IsOk());
  EXPECT_THAT(h.client->select("Entwürfe"),
              StatusIs(ErrorKind::kNotFound, HasSubstr("doesn't exist")));
  EXPECT_EQ(h.client->state(), State::kAuthenticated);
  EXPECT_EQ(h.written(), s.client);
}

TEST(ClientTest, SelectWithoutUidValidityIsProtocol) {
  Script s;
  s.S("* PREAUTH hi").S("* 3 EXISTS").S("a1 OK [READ-WRITE] done");
  Harness h(s);
  ASSERT_THAT(h.connect(), IsOk());
  EXPECT_THAT(h.client->select("INBOX"), StatusIs(ErrorKind::kProtocol, HasSubstr("UIDVALIDITY")));
}

TEST(ClientTest, EsearchFromAnImap4rev2Server) {
  Script s;
  s.S("* PREAUTH [CAPABILITY IMAP4rev2] hi")
      .S("* OK [UIDVALIDITY 9] x")
      .S("a1 OK [READ-WRITE] sel")
      .C("a1 SELECT \"INBOX\"")
      .C("a2 UID SEARCH UNSEEN")
      .S("* ESEARCH (TAG \"a2\") UID ALL 3:5,9 COUNT 4")
      .S("a2 OK done");
  Harness h(s);
  ASSERT_THAT(h.connect(), IsOk());
  ASSERT_THAT(h.client->select("INBOX"), IsOk());
  auto uids = h.client->uid_search("UNSEEN");
  ASSERT_THAT(uids, IsOk());
  EXPECT_THAT(*uids, ElementsAre(3u, 4u, 5u, 9u));
}

// A message whose RFC822.SIZE is over max_message_bytes is not downloaded at all: the sink
// gets kTooLarge and the body FETCH asks only for the others.
TEST(ClientTest, MessageOverTheLimitByItsSizeIsNotDownloaded) {
  Script s;
  s.S("* PREAUTH hi")
      .C("a1 SELECT \"INBOX\"")
      .S("* OK [UIDVALIDITY 9] x")
      .S("a1 OK sel")
      .C("a2 UID FETCH 4:5 (UID RFC822.SIZE)")
      .size(1, 4, 3000)
      .size(2, 5, 5)
      .S("a2 OK done")
      .C("a3 UID FETCH 5 (UID BODY.PEEK[])")
      .fetch(2, 5, "small")
      .S("a3 OK done")
      .C("a4 UID SEARCH ALL")
      .S("* SEARCH 4 5")
      .S("a4 OK done");
  Harness h(s);
  ClientOptions o;
  o.max_message_bytes = 1000;
  h.client = std::make_unique<Client>(o);
  ASSERT_THAT(h.connect(), IsOk());
  ASSERT_THAT(h.client->select("INBOX"), IsOk());
  std::vector<std::string> got;
  ASSERT_THAT(h.client->uid_fetch({4, 5},
                                  [&](uint32_t uid, Result<std::string> body) {
                                    if (uid == 4) {
                                      EXPECT_THAT(body, StatusIs(ErrorKind::kTooLarge,
                                                                 HasSubstr("3000 bytes")));
                                      EXPECT_EQ(body.status().scope(), ErrorScope::kMessage);
                                    }
                                    got.push_back(body.ok() ? *body : "error");
                                    return Status::Ok();
                                  }),
              IsOk());
  EXPECT_THAT(got, ElementsAre("error", "small"));
  EXPECT_THAT(h.client->uid_search("ALL"), IsOk());
  EXPECT_EQ(h.written(), s.client);
}

// A server whose RFC822.SIZE lies: the body over the limit is read and dropped, never kept,
// reported kTooLarge, and the connection goes on.
TEST(ClientTest, BodyLargerThanItsSizeSaidIsDroppedAndTheConnectionGoesOn) {
  std::string big(3000, 'b');
  Script s;
  s.S("* PREAUTH hi")
      .S("* OK [UIDVALIDITY 9] x")
      .S("a1 OK sel")
      .size(1, 4, 10)
      .size(2, 5, 5)
      .S("a2 OK done")
      .fetch(1, 4, big)
      .fetch(2, 5, "small")
      .S("a3 OK done")
      .S("* SEARCH 4 5")
      .S("a4 OK done");
  Harness h(s);
  ClientOptions o;
  o.max_message_bytes = 1000;
  o.trace = [&h](const std::string& line) { h.trace.push_back(line); };
  h.client = std::make_unique<Client>(o);
  ASSERT_THAT(h.connect(), IsOk());
  ASSERT_THAT(h.client->select("INBOX"), IsOk());
  std::vector<std::string> got;
  ASSERT_THAT(h.client->uid_fetch({4, 5},
                                  [&](uint32_t uid, Result<std::string> body) {
                                    if (uid == 4) {
                                      EXPECT_THAT(body, StatusIs(ErrorKind::kTooLarge,
                                                                 HasSubstr("3000 bytes")));
                                    }
                                    got.push_back(body.ok() ? *body : "error");
                                    return Status::Ok();
                                  }),
              IsOk());
  EXPECT_THAT(got, ElementsAre("error", "small"));
  EXPECT_THAT(h.all_trace(), HasSubstr("S: <3000 bytes, dropped>"));
  EXPECT_THAT(h.client->uid_search("ALL"), IsOk());
}

// Literals nobody asked for — in another FETCH item, or a second BODY[] — are read and
// dropped, never kept; a response's small unrequested literal (an odd server's string)
// stays.
TEST(ClientTest, UnrequestedLiteralsAreDroppedNotKept) {
  std::string junk(5000, 'j');
  Script s;
  s.S("* PREAUTH hi").S("* OK [UIDVALIDITY 9] x").S("a1 OK sel");
  s.size(1, 4, 4).S("a2 OK done");
  s.S("* 1 FETCH (UID 4 X-JUNK {" + std::to_string(junk.size()) + "}").server += junk;
  s.S(" BODY[] {4}").server += "body";
  s.S(")");
  s.fetch(1, 4, junk);                      // the same message again: not asked for twice
  s.fetch(7, 99, junk);                     // a message not asked for
  s.S("* 1 FETCH (UID 4 X-NAME {3}").server += "abc";
  s.S(")").S("a3 OK done");
  Harness h(s);
  ASSERT_THAT(h.connect(), IsOk());
  ASSERT_THAT(h.client->select("INBOX"), IsOk());
  std::vector<std::pair<uint32_t, std::string>> got;
  ASSERT_THAT(h.client->uid_fetch({4},
                                  [&](uint32_t uid, Result<std::string> body) {
                                    got.emplace_back(uid, body.ok() ? *body : "error");
                                    return Status::Ok();
                                  }),
              IsOk());
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].first, 4u);
  EXPECT_EQ(got[0].second, "body");
  size_t dropped = 0;
  for (const auto& l : h.trace) dropped += l == "S: <5000 bytes, dropped>";
  EXPECT_EQ(dropped, 3u);
  EXPECT_THAT(h.all_trace(), HasSubstr("S: <3 bytes>"));
}

// One answer carrying unrequested literals without end (60 of 8 MB in the report) is cut
// off once it passes max_answer_overhead (64 MiB by default, 4 here): an error, not memory.
TEST(ClientTest, FloodOfUnrequestedLiteralsEndsTheCommand) {
  const std::string mib(1u << 20, 'x');
  Script s;
  s.S("* PREAUTH hi").S("* OK [UIDVALIDITY 9] x").S("a1 OK sel");
  constexpr uint64_t kBound = 4u << 20;
  const size_t n = (kBound >> 20) + 2;
  for (size_t i = 0; i < n; ++i) {
    s.S("* " + std::to_string(i + 1) + " FETCH (UID 4 X-JUNK {" + std::to_string(mib.size()) +
        "}").server += mib;
    s.S(")");
  }
  s.S("a2 OK done");
  Harness h(s, 1u << 20, [](ClientOptions& o) { o.max_answer_overhead = kBound; });
  ASSERT_THAT(h.connect(), IsOk());
  ASSERT_THAT(h.client->select("INBOX"), IsOk());
  EXPECT_THAT(h.client->uid_fetch({4}, [](uint32_t, Result<std::string>) { return Status::Ok(); }),
              StatusIs(ErrorKind::kProtocol, HasSubstr("besides the message bodies")));
  EXPECT_EQ(h.client->state(), State::kDisconnected);
}

TEST(ClientTest, SinkErrorStopsDeliveriesButFinishesTheCommand) {
  Script s;
  s.S("* PREAUTH hi")
      .S("* OK [UIDVALIDITY 9] x")
      .S("a1 OK sel")
      .size(1, 4, 3)
      .size(2, 5, 3)
      .S("a2 OK done")
      .fetch(1, 4, "one")
      .fetch(2, 5, "two")
      .S("a3 OK done")
      .S("a4 OK [CAPABILITY IMAP4rev1] done");
  Harness h(s);
  ASSERT_THAT(h.connect(), IsOk());
  ASSERT_THAT(h.client->select("INBOX"), IsOk());
  int calls = 0;
  EXPECT_THAT(h.client->uid_fetch({4, 5},
                                  [&](uint32_t, Result<std::string>) {
                                    ++calls;
                                    return Status(ErrorKind::kInternal, "disk full");
                                  }),
              StatusIs(ErrorKind::kInternal, HasSubstr("disk full")));
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(h.client->state(), State::kSelected);
  EXPECT_THAT(h.client->capability(), IsOk());
}

TEST(ClientTest, NilBodyIsMessageScopedNotFound) {
  Script s;
  s.S("* PREAUTH hi").S("* OK [UIDVALIDITY 9] x").S("a1 OK sel");
  s.size(1, 4, 3).S("a2 OK done");
  s.S("* 1 FETCH (UID 4 BODY[] NIL)").S("a3 OK done");
  Harness h(s);
  ASSERT_THAT(h.connect(), IsOk());
  ASSERT_THAT(h.client->select("INBOX"), IsOk());
  int calls = 0;
  EXPECT_THAT(h.client->uid_fetch({4},
                                  [&](uint32_t uid, Result<std::string> body) {
                                    ++calls;
                                    EXPECT_EQ(uid, 4u);
                                    EXPECT_THAT(body, StatusIs(ErrorKind::kNotFound, HasSubstr("UID 4")));
                                    return Status::Ok();
                                  }),
              IsOk());
  EXPECT_EQ(calls, 1);
}

TEST(ClientTest, CommandsThatChangeTheFolder) {
  Script s;
  s.S("* PREAUTH [CAPABILITY IMAP4rev1 MOVE UIDPLUS] hi")
      .C("a1 SELECT \"INBOX\"")
      .S("* OK [UIDVALIDITY 9] x")
      .S("a1 OK sel")
      .C("a2 UID STORE 1:3,7 +FLAGS.SILENT (\\Seen)")
      .S("a2 OK Store completed")
      .C("a3 UID MOVE 4 \"Processed\"")
      .S("a3 NO [TRYCREATE] Mailbox doesn't exist: Processed")
      .C("a4 CREATE \"Processed\"")
      .S("a4 OK Create completed")
      .C("a5 UID COPY 5 \"Processed\"")
      .S("a5 OK [COPYUID 3 5 1] Copy completed")
      .C("a6 UID EXPUNGE 5")
      .S("* 5 EXPUNGE")
      .S("a6 OK Expunge completed")
      .C("a7 CREATE \"Processed\"")
      .S("a7 NO [ALREADYEXISTS] Mailbox already exists")
      .C("a8 LOGOUT")
      .S("* BYE Logging out")
      .S("a8 OK Logout completed");
  Harness h(s);
  ASSERT_THAT(h.connect(), IsOk());
  ASSERT_THAT(h.client->select("INBOX"), IsOk());
  EXPECT_THAT(h.client->uid_store_add_flags({7, 3, 2, 1}, "\\Seen"), IsOk());
  EXPECT_THAT(h.client->uid_move({4}, "Processed"),
              StatusIs(ErrorKind::kNotFound, HasSubstr("doesn't exist")));
  EXPECT_THAT(h.client->create("Processed"), IsOk());
  EXPECT_THAT(h.client->uid_copy({5}, "Processed"), IsOk());
  EXPECT_THAT(h.client->uid_expunge({5}), IsOk());
  EXPECT_THAT(h.client->create("Processed"), IsOk());
  EXPECT_THAT(h.client->logout(), IsOk());
  EXPECT_EQ(h.client->state(), State::kLogout);
  EXPECT_EQ(h.written(), s.client);
}

TEST(ClientTest, CommandsCheckTheState) {
  Script s;
  s.S("* OK hi");
  Harness h(s);
  ASSERT_THAT(h.connect(), IsOk());
  EXPECT_THAT(h.client->select("INBOX"), StatusIs(ErrorKind::kInternal, HasSubstr("not authenticated")));
  EXPECT_THAT(h.client->uid_search("ALL"), StatusIs(ErrorKind::kInternal, HasSubstr("UID SEARCH")));
  EXPECT_EQ(h.written(), "");
}

TEST(ClientTest, CommandFailureTable) {
  ImapResponse r;
  r.kind = ImapResponse::Kind::kTagged;
  r.condition = Condition::kNo;
  r.text = "nope";
  EXPECT_THAT(command_failure(r, "UID COPY"), StatusIs(ErrorKind::kRejected, HasSubstr("UID COPY")));
  r.code = "TRYCREATE";
  EXPECT_THAT(command_failure(r, "UID COPY"), StatusIs(ErrorKind::kNotFound, HasSubstr("nope")));
  r.code = "UNAVAILABLE";
  EXPECT_THAT(command_failure(r, "SELECT"), StatusIs(ErrorKind::kNetwork, HasSubstr("nope")));
  r.code.clear();
  r.condition = Condition::kBad;
  Status bad = command_failure(r, "SELECT");
  EXPECT_THAT(bad, StatusIs(ErrorKind::kProtocol, HasSubstr("BAD")));
  EXPECT_EQ(bad.scope(), ErrorScope::kConnection);
}

// A state guard never passes without a connection: every command on a client that was
// never connected is a connection error (kNetwork), never OK and never a bug (kInternal).
TEST(ClientTest, EveryCommandWithoutAConnectionIsAConnectionError) {
  Client c(ClientOptions{});
  sasl::Credentials creds;
  creds.user = "support";
  creds.secret = "pw";
  auto mech = sasl::make_mechanism("PLAIN", creds);
  ASSERT_THAT(mech.status(), IsOk());
  auto sink = [](uint32_t, Result<std::string>) { return Status::Ok(); };
  for (const Status& s : {c.capability(), c.starttls(), c.login("u", "p"),
                          c.authenticate_plain("u", "p"), c.authenticate(**mech, creds),
                          c.sign_in(creds).status(), c.select("INBOX").status(),
                          c.create("Done"), c.uid_search("ALL").status(),
                          c.uid_fetch({1}, sink), c.uid_store_add_flags({1}, "\\Seen"),
                          c.uid_copy({1}, "Done"), c.uid_move({1}, "Done"),
                          c.uid_expunge({1})}) {
    EXPECT_THAT(s, StatusIs(ErrorKind::kNetwork, HasSubstr("closed")));
    EXPECT_EQ(s.scope(), ErrorScope::kConnection) << s.to_string();
  }
}

// Issue 13 (code review, the class of POP3's "if (!channel_) return require(...)"): no
// command passes on the state alone. Before, require() looked at the state only, so with no
// connection sign_in in the authenticated state answered PREAUTH and UID commands on an
// empty set answered OK.
TEST(ClientTest, NoCommandPassesOnTheStateAloneWithoutAConnection) {
  sasl::Credentials creds;
  creds.user = "support";
  creds.secret = "pw";
  auto mech = sasl::make_mechanism("PLAIN", creds);
  ASSERT_THAT(mech.status(), IsOk());
  auto sink = [](uint32_t, Result<std::string>) { return Status::Ok(); };
  Client c(ClientOptions{});
  auto in = [&c](State s) -> Client& {
    ClientTestPeer::without_channel(c, s);
    return c;
  };
  const std::vector<std::pair<const char*, Status>> calls = {
      {"CAPABILITY", in(State::kNotAuthenticated).capability()},
      {"STARTTLS", in(State::kNotAuthenticated).starttls()},
      {"LOGIN", in(State::kNotAuthenticated).login("u", "p")},
      {"AUTHENTICATE PLAIN", in(State::kNotAuthenticated).authenticate_plain("u", "p")},
      {"AUTHENTICATE", in(State::kNotAuthenticated).authenticate(**mech, creds)},
      {"sign-in", in(State::kNotAuthenticated).sign_in(creds).status()},
      {"sign-in after PREAUTH", in(State::kAuthenticated).sign_in(creds).status()},
      {"SELECT", in(State::kAuthenticated).select("INBOX").status()},
      {"CREATE", in(State::kAuthenticated).create("Done")},
      {"UID SEARCH", in(State::kSelected).uid_search("ALL").status()},
      {"UID FETCH sizes", in(State::kSelected).uid_sizes({}).status()},
      {"UID FETCH none", in(State::kSelected).uid_fetch({}, sink)},
      {"UID FETCH", in(State::kSelected).uid_fetch({1}, sink)},
      {"UID STORE none", in(State::kSelected).uid_store_add_flags({}, "\\Seen")},
      {"UID COPY none", in(State::kSelected).uid_copy({}, "Done")},
      {"UID MOVE none", in(State::kSelected).uid_move({}, "Done")},
      {"UID EXPUNGE none", in(State::kSelected).uid_expunge({})},
  };
  for (const auto& [what, s] : calls) {
    EXPECT_THAT(s, StatusIs(ErrorKind::kNetwork, HasSubstr("closed"))) << what;
    EXPECT_EQ(s.scope(), ErrorScope::kConnection) << what << ": " << s.to_string();
  }
}

// Hostile servers over real sockets, with time-outs of 1 s: every call returns with an
// error naming the step soon after its deadline, however the server dribbles.
using ::mb::testing::Peer;
using ::mb::testing::ScriptServer;
using std::chrono::milliseconds;
using std::chrono::seconds;

struct SocketHarness {
  ScriptServer server;
  std::unique_ptr<Client> client;
  explicit SocketHarness(ScriptServer::Handler h,
                         const std::function<void(ClientOptions&)>& adjust = nullptr)
      : server(std::move(h)) {
    ClientOptions o;
    o.host = "127.0.0.1";
    o.timeouts.connect = seconds(1);
    o.timeouts.response = seconds(1);
    if (adjust) adjust(o);
    client = std::make_unique<Client>(o);
  }
  Status connect() {
    Timeouts t;
    t.connect = seconds(1);
    t.response = seconds(1);
    auto s = connect_tcp("127.0.0.1", server.port(), t);
    if (!s.ok()) return s.status();
    return client->connect(std::move(*s));
  }
};

// PREAUTH, SELECT answered, the size check answered; then `rest` plays the body FETCH.
ScriptServer::Handler selected_then(std::function<void(Peer&)> rest) {
  return [rest = std::move(rest)](Peer& p) {
    std::string line;
    if (!p.send("* PREAUTH hi\r\n") || !p.read_line(line)) return;
    if (!p.send("* OK [UIDVALIDITY 9] x\r\na1 OK sel\r\n") || !p.read_line(line)) return;
    if (!p.send("* 1 FETCH (UID 4 RFC822.SIZE 1000)\r\na2 OK done\r\n") || !p.read_line(line))
      return;
    rest(p);
  };
}

// A bound on how long a call may take: its deadline plus generous slack for a busy machine.
constexpr auto kReturnsWithin = seconds(6);

TEST(ClientDeadlineTest, TricklingGreetingEndsAtTheConnectTimeout) {
  SocketHarness h([](Peer& p) { p.trickle("* OK slow ", milliseconds(100), true); });
  auto started = std::chrono::steady_clock::now();
  Status s = h.connect();
  EXPECT_THAT(s, StatusIs(ErrorKind::kNetwork,
                          HasSubstr("timed out waiting for the greeting after 1 s")));
  EXPECT_LT(std::chrono::steady_clock::now() - started, kReturnsWithin);
}

TEST(ClientDeadlineTest, TricklingFetchEndsAtTheResponseTimeout) {
  SocketHarness h(selected_then([](Peer& p) {
    p.send("* 1 FETCH (UID 4 BODY[] {1000}\r\n");
    p.trickle(std::string(1000, 'x'), milliseconds(100));
  }));
  ASSERT_THAT(h.connect(), IsOk());
  ASSERT_THAT(h.client->select("INBOX"), IsOk());
  auto started = std::chrono::steady_clock::now();
  Status s = h.client->uid_fetch({4}, [](uint32_t, Result<std::string>) { return Status::Ok(); });
  EXPECT_THAT(s, StatusIs(ErrorKind::kNetwork,
                          HasSubstr("timed out waiting for the answer to UID FETCH after 1 s")));
  EXPECT_EQ(s.scope(), ErrorScope::kConnection);
  EXPECT_LT(std::chrono::steady_clock::now() - started, kReturnsWithin);
  EXPECT_EQ(h.client->state(), State::kDisconnected);
}

TEST(ClientDeadlineTest, EndlessUntaggedLinesEndAtTheResponseTimeout) {
  SocketHarness h(selected_then([](Peer& p) {
    while (p.send("* OK still working\r\n") && p.pause(milliseconds(20))) {
    }
  }));
  ASSERT_THAT(h.connect(), IsOk());
  ASSERT_THAT(h.client->select("INBOX"), IsOk());
  auto started = std::chrono::steady_clock::now();
  Status s = h.client->uid_fetch({4}, [](uint32_t, Result<std::string>) { return Status::Ok(); });
  EXPECT_THAT(s, StatusIs(ErrorKind::kNetwork, HasSubstr("the answer to UID FETCH")));
  EXPECT_LT(std::chrono::steady_clock::now() - started, kReturnsWithin);
}

// As fast as loopback goes, the stream passes the deadline's allowance for its bytes; what
// ends it is the bound on the number of untagged responses in one answer (2,000,000 by
// default, 5,000 here so that the test takes milliseconds, not a minute under ASan).
TEST(ClientDeadlineTest, UntaggedFloodIsCutOffByTheAnswerBound) {
  SocketHarness h(selected_then([](Peer& p) {
                    std::string chunk;
                    for (int i = 0; i < 2000; ++i) chunk += "* 1 FETCH (FLAGS (\\Seen))\r\n";
                    p.stream(chunk);
                  }),
                  [](ClientOptions& o) { o.max_untagged = 5000; });
  ASSERT_THAT(h.connect(), IsOk());
  ASSERT_THAT(h.client->select("INBOX"), IsOk());
  auto started = std::chrono::steady_clock::now();
  Status s = h.client->uid_fetch({4}, [](uint32_t, Result<std::string>) { return Status::Ok(); });
  EXPECT_THAT(s, StatusIs(ErrorKind::kProtocol,
                          AllOf(HasSubstr("more than 5000 untagged responses"),
                                HasSubstr("UID FETCH"))));
  EXPECT_EQ(s.scope(), ErrorScope::kConnection);
  EXPECT_LT(std::chrono::steady_clock::now() - started, kReturnsWithin);
}

}  // namespace
}  // namespace mb::imap
