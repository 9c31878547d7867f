// File: tests/unit/connectors/pop3/pop3_mailbox_test.cpp — the POP3 Mailbox over scripted
// servers: UIDL keys mapped to message numbers per session, the "leave" state that skips
// what the ledger already has, DELE made final only by QUIT, servers without UIDL, the
// OAuth sign-in retry, and test-connection.
#include "connectors/pop3/pop3_mailbox.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <deque>

#include "auth/base64.h"
#include "core/config.h"
#include "tests/status_matchers.h"
#include "tests/unit/connectors/pop3/pop3_test_util.h"

namespace mb {
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
using ::testing::IsEmpty;

constexpr const char* kPassword = "mailbox-pw-123";

// Greeting, CAPA and AUTH PLAIN: a session in the TRANSACTION state.
Script signed_in() {
  Script s;
  s.S(kGreeting).C("CAPA").multi("+OK", {"TOP", "UIDL", "USER", "SASL PLAIN"})
      .C("AUTH PLAIN " + plain_ir("support", kPassword)).S("+OK Logged in.");
  return s;
}

// A signed-in session whose UIDL lists `uids` as messages 1..n.
Script session(const std::vector<std::string>& uids) {
  Script s = signed_in();
  std::vector<std::string> lines;
  for (size_t i = 0; i < uids.size(); ++i) lines.push_back(std::to_string(i + 1) + " " + uids[i]);
  s.C("UIDL").multi("+OK", lines);
  return s;
}

std::string message(const std::string& subject) {
  return "From: a@example.com\r\nSubject: " + subject + "\r\n\r\nbody of " + subject + "\r\n";
}

// Adds "RETR n" and its stuffed answer for `raw`.
void retr(Script& s, uint32_t n, const std::string& raw) {
  s.C("RETR " + std::to_string(n)).S("+OK");
  size_t pos = 0;
  while (pos < raw.size()) {
    size_t eol = raw.find("\r\n", pos);
    std::string line = raw.substr(pos, eol - pos);
    s.S(!line.empty() && line[0] == '.' ? "." + line : line);
    pos = eol + 2;
  }
  s.S(".");
}

struct Fixture {
  MailboxConfig cfg;
  std::deque<std::shared_ptr<ScriptedStream>> pending;
  std::vector<std::shared_ptr<ScriptedStream>> used;
  std::unique_ptr<Mailbox> mailbox;
  SignIn sign_in;

  explicit Fixture(PostAction after) {
    cfg.name = "support";
    cfg.type = "pop3";
    cfg.host = "127.0.0.1";
    cfg.port = 1110;
    cfg.security = Security::kTls;
    cfg.user = "support";
    cfg.after = std::move(after);
    sign_in.password = kPassword;
  }
  void add(const Script& s) {
    auto stream = scripted(s);
    stream->start_tls("", {}).ignore();  // implicit TLS done by the factory
    pending.push_back(stream);
  }
  Mailbox& mbx() {
    if (!mailbox) {
      mailbox = make_pop3_mailbox(cfg, sign_in, [this]() -> Result<std::unique_ptr<Stream>> {
        if (pending.empty()) {
          return Status(ErrorKind::kNetwork, "connection refused", ErrorScope::kConnection);
        }
        used.push_back(pending.front());
        pending.pop_front();
        return std::unique_ptr<Stream>(std::make_unique<SharedStream>(used.back()));
      });
    }
    return *mailbox;
  }
  std::string written(size_t i) const { return used.at(i)->written(); }
};

std::map<std::string, std::string> fetch_all(Mailbox& m, const std::vector<std::string>& keys,
                                             Status* out = nullptr) {
  std::map<std::string, std::string> got;
  Status s = m.fetch(keys, [&](const std::string& key, Result<std::string> raw) {
    got[key] = raw.ok() ? *raw : "ERROR " + raw.status().to_string();
    return Status::Ok();
  });
  if (out) *out = s;
  return got;
}

TEST(Pop3MailboxTest, ListsUidlKeysInOrderWithinTheLimit) {
  Fixture f(PostAction::remove());
  f.add(session({"u1", "u2", "u3"}));
  auto p = f.mbx().list_pending(2, "");
  ASSERT_THAT(p.status(), IsOk());
  EXPECT_THAT(p->keys, ElementsAre("u1", "u2"));
  EXPECT_TRUE(p->more);
  EXPECT_EQ(p->next_state, "");  // delete: the maildrop itself is the state
}

TEST(Pop3MailboxTest, FetchMapsKeysToThisSessionsMessageNumbers) {
  Fixture f(PostAction::leave());
  Script s = session({"a", "b", "c"});
  retr(s, 3, message("third"));
  retr(s, 1, message(".dot first"));
  s.C("QUIT").S("+OK Bye");
  f.add(s);
  auto p = f.mbx().list_pending(10, "");
  ASSERT_THAT(p.status(), IsOk());
  Status st;
  auto got = fetch_all(f.mbx(), {"c", "a", "gone"}, &st);
  ASSERT_THAT(st, IsOk());
  EXPECT_EQ(got["c"], message("third"));
  EXPECT_EQ(got["a"], message(".dot first"));
  EXPECT_THAT(got["gone"], HasSubstr("no longer in the POP3 maildrop"));
  f.mbx().close();
  EXPECT_EQ(f.written(0), s.client);
}

// With PIPELINING every RETR of a batch is sent before the first answer is read; an -ERR
// for one message is that message's error only, and the answers stay in step.
TEST(Pop3MailboxTest, PipelinedFetchSendsTheBatchAtOnce) {
  Fixture f(PostAction::leave());
  Script s;
  s.S(kGreeting).C("CAPA").multi("+OK", {"UIDL", "PIPELINING", "SASL PLAIN"})
      .C("AUTH PLAIN " + plain_ir("support", kPassword)).S("+OK Logged in.")
      .C("UIDL").multi("+OK", {"1 a", "2 b", "3 c"});
  s.C("RETR 2").C("RETR 3").C("RETR 1");
  s.S("+OK").S("Subject: b").S("").S(".");
  s.S("-ERR message 3 cannot be read");
  s.S("+OK").S("Subject: a").S("").S("..").S(".");
  s.C("QUIT").S("+OK");
  f.add(s);
  ASSERT_THAT(f.mbx().list_pending(10, "").status(), IsOk());
  std::vector<std::string> order;
  std::map<std::string, std::string> got;
  ASSERT_THAT(f.mbx().fetch({"b", "gone", "c", "a"}, [&](const std::string& key, Result<std::string> raw) {
    order.push_back(key);
    got[key] = raw.ok() ? *raw : raw.status().to_string();
    return Status::Ok();
  }), IsOk());
  EXPECT_THAT(order, ElementsAre("b", "gone", "c", "a"));
  EXPECT_EQ(got["b"], "Subject: b\r\n\r\n");
  EXPECT_THAT(got["c"], HasSubstr("cannot be read"));
  EXPECT_EQ(got["a"], "Subject: a\r\n\r\n.\r\n");
  f.mbx().close();
  EXPECT_EQ(f.written(0), s.client);
}

// Message numbers change between sessions: after another client deleted message 1, "b" is
// message 1 in the next session.
TEST(Pop3MailboxTest, NumbersAreRemappedInANewSession) {
  Fixture f(PostAction::leave());
  Script first = session({"a", "b"});
  first.C("QUIT").S("+OK");
  Script second = session({"b"});
  retr(second, 1, message("b"));
  f.add(first);
  f.add(second);
  ASSERT_THAT(f.mbx().list_pending(10, "").status(), IsOk());
  f.mbx().close();
  Status st;
  auto got = fetch_all(f.mbx(), {"b"}, &st);
  ASSERT_THAT(st, IsOk());
  EXPECT_EQ(got["b"], message("b"));
}

TEST(Pop3MailboxTest, LeaveStateSkipsTheKnownPrefixAndNoticesChanges) {
  Fixture f(PostAction::leave());
  Script s1 = session({"a", "b"});
  s1.C("QUIT").S("+OK");
  Script s2 = session({"a", "b", "c"});
  s2.C("QUIT").S("+OK");
  Script s3 = session({"b", "c", "d"});  // "a" deleted by someone else: prefix changed
  f.add(s1);
  f.add(s2);
  f.add(s3);
  auto p1 = f.mbx().list_pending(10, "");
  ASSERT_THAT(p1.status(), IsOk());
  EXPECT_THAT(p1->keys, ElementsAre("a", "b"));
  auto p2 = f.mbx().list_pending(10, p1->next_state);
  ASSERT_THAT(p2.status(), IsOk());
  EXPECT_THAT(p2->keys, ElementsAre("c"));
  auto p3 = f.mbx().list_pending(10, p2->next_state);
  ASSERT_THAT(p3.status(), IsOk());
  EXPECT_THAT(p3->keys, ElementsAre("b", "c", "d"));
  EXPECT_NE(p3->next_state, p2->next_state);
}

TEST(Pop3MailboxTest, LeaveStateCoversOnlyWhatWasListed) {
  Fixture f(PostAction::leave());
  Script s1 = session({"a", "b", "c"});
  s1.C("QUIT").S("+OK");
  f.add(s1);
  f.add(session({"a", "b", "c"}));
  auto p1 = f.mbx().list_pending(2, "");
  ASSERT_THAT(p1.status(), IsOk());
  EXPECT_TRUE(p1->more);
  auto p2 = f.mbx().list_pending(2, p1->next_state);
  ASSERT_THAT(p2.status(), IsOk());
  EXPECT_THAT(p2->keys, ElementsAre("c"));
  EXPECT_FALSE(p2->more);
}

TEST(Pop3MailboxTest, DeleteIsConfirmedByQuit) {
  Fixture f(PostAction::remove());
  Script s = session({"a", "b", "c"});
  s.C("DELE 3").S("+OK").C("DELE 1").S("+OK").C("QUIT").S("+OK dovecot signing off");
  f.add(s);
  ASSERT_THAT(f.mbx().list_pending(10, "").status(), IsOk());
  EXPECT_THAT(f.mbx().apply({"c", "a", "already-gone"}, PostAction::remove()), IsOk());
  EXPECT_EQ(f.written(0), s.client);
}

TEST(Pop3MailboxTest, ConnectionLostBeforeQuitConfirmsIsAnError) {
  Fixture f(PostAction::remove());
  Script s = session({"a"});
  s.C("DELE 1").S("+OK").C("QUIT");  // no answer: the server may not have deleted anything
  f.add(s);
  ASSERT_THAT(f.mbx().list_pending(10, "").status(), IsOk());
  Status r = f.mbx().apply({"a"}, PostAction::remove());
  EXPECT_THAT(r, StatusIs(ErrorKind::kNetwork, HasSubstr("not confirmed by QUIT")));
  EXPECT_EQ(r.scope(), ErrorScope::kConnection);
}

TEST(Pop3MailboxTest, DeleteReconnectsWhenTheSessionIsGone) {
  Fixture f(PostAction::remove());
  Script s = session({"x", "a"});
  s.C("DELE 2").S("+OK").C("QUIT").S("+OK");
  f.add(s);
  EXPECT_THAT(f.mbx().apply({"a"}, PostAction::remove()), IsOk());
  EXPECT_EQ(f.written(0), s.client);
}

TEST(Pop3MailboxTest, LeaveAndMarkReadTouchNothing) {
  Fixture f(PostAction::leave());
  EXPECT_THAT(f.mbx().apply({"a"}, PostAction::leave()), IsOk());
  EXPECT_THAT(f.mbx().apply({"a"}, PostAction::mark_read()), IsOk());
  EXPECT_TRUE(f.used.empty());
}

TEST(Pop3MailboxTest, WithoutUidlKeysComeFromHeadersAndStayStable) {
  Fixture f(PostAction::remove());
  auto no_uidl = [] {
    Script s = signed_in();
    s.C("UIDL").S("-ERR Unknown command");
    s.C("LIST").multi("+OK", {"1 100", "2 200"});
    s.C("TOP 1 0").multi("+OK", {"Message-ID: <one@x>", "Subject: one", ""});
    s.C("TOP 2 0").multi("+OK", {"Message-ID: <two@x>", "subject:", " two folded", ""});
    return s;
  };
  Script s1 = no_uidl();
  s1.C("QUIT").S("+OK");
  f.add(s1);
  f.add(no_uidl());
  auto p1 = f.mbx().list_pending(10, "");
  ASSERT_THAT(p1.status(), IsOk());
  ASSERT_EQ(p1->keys.size(), 2u);
  EXPECT_NE(p1->keys[0], p1->keys[1]);
  EXPECT_THAT(p1->keys[0], HasSubstr("hdr-"));
  auto p2 = f.mbx().list_pending(10, "");
  ASSERT_THAT(p2.status(), IsOk());
  EXPECT_EQ(p1->keys, p2->keys);
}

TEST(Pop3MailboxTest, WithoutUidlOrTopTheMailboxIsRefused) {
  Fixture f(PostAction::remove());
  Script s = signed_in();
  s.C("UIDL").S("-ERR Unknown command").C("LIST").multi("+OK", {"1 100"})
      .C("TOP 1 0").S("-ERR Unknown command");
  f.add(s);
  EXPECT_THAT(f.mbx().list_pending(10, "").status(),
              StatusIs(ErrorKind::kRejected, HasSubstr("neither UIDL nor TOP")));
}

TEST(Pop3MailboxTest, WrongPasswordIsAuth) {
  Fixture f(PostAction::remove());
  Script s;
  s.S(kGreeting).C("CAPA").multi("+OK", {"USER"}).C("USER support").S("+OK")
      .C(std::string("PASS ") + kPassword).S("-ERR [AUTH] Authentication failed.");
  f.add(s);
  Status r = f.mbx().list_pending(10, "").status();
  EXPECT_THAT(r, StatusIs(ErrorKind::kAuth, HasSubstr("support")));
  EXPECT_THAT(r.message(), ::testing::Not(HasSubstr(kPassword)));
}

TEST(Pop3MailboxTest, InUseMailboxIsThrottledWithRetryAfter) {
  Fixture f(PostAction::remove());
  Script s;
  s.S(kGreeting).C("CAPA").multi("+OK", {"USER"}).C("USER support").S("+OK")
      .C(std::string("PASS ") + kPassword).S("-ERR [IN-USE] Mailbox is locked by another POP3 session");
  f.add(s);
  Status r = f.mbx().list_pending(10, "").status();
  EXPECT_THAT(r, StatusIs(ErrorKind::kThrottled, HasSubstr("locked")));
  EXPECT_TRUE(r.retry_after().has_value());
}

TEST(Pop3MailboxTest, RejectedTokenIsRetriedOnceWithAFreshOne) {
  Fixture f(PostAction::remove());
  std::vector<std::string> tokens = {"old-token-1", "new-token-2"};
  int calls = 0;
  f.sign_in.password.clear();
  f.sign_in.with_token = [&](const std::function<Status(const std::string&)>& fn) {
    Status s = fn(tokens[calls++]);
    if (!s.ok() && s.kind() == ErrorKind::kAuth && s.message().find("token rejected") != std::string::npos) {
      s = fn(tokens[calls++]);
    }
    return s;
  };
  auto ir = [](const std::string& t) { return base64_encode(sasl::xoauth2_message("support", t)); };
  Script s;
  s.S(kGreeting).C("CAPA").multi("+OK", {"SASL XOAUTH2", "UIDL"})
      .C("AUTH XOAUTH2 " + ir("old-token-1")).S("-ERR [AUTH] Authentication failed.")
      .C("AUTH XOAUTH2 " + ir("new-token-2")).S("+OK Logged in.")
      .C("UIDL").multi("+OK", {"1 a"});
  f.add(s);
  auto p = f.mbx().list_pending(10, "");
  ASSERT_THAT(p.status(), IsOk());
  EXPECT_EQ(calls, 2);
  EXPECT_THAT(p->keys, ElementsAre("a"));
  EXPECT_EQ(f.written(0), s.client);
}

TEST(Pop3MailboxTest, TestConnectionReportsEachStep) {
  Fixture f(PostAction::leave());
  Script s;
  s.S(kGreeting).C("CAPA").multi("+OK", {"TOP", "UIDL", "USER", "SASL PLAIN"})
      .C("AUTH PLAIN " + plain_ir("support", kPassword)).S("+OK Logged in.")
      .C("UIDL").multi("+OK", {"1 a", "2 b"})
      .C("STAT").S("+OK 2 640").C("QUIT").S("+OK");
  f.add(s);
  ConnectionReport rep = f.mbx().test_connection();
  ASSERT_THAT(rep.status, IsOk());
  std::vector<std::string> names;
  for (const auto& st : rep.steps) names.push_back(st.name);
  EXPECT_THAT(names, ElementsAre("resolve", "connect", "tls", "capabilities", "sign-in", "uidl", "count"));
  EXPECT_THAT(rep.steps[3].detail, HasSubstr("UIDL"));
  EXPECT_THAT(rep.steps[4].detail, HasSubstr("AUTH PLAIN"));
  EXPECT_EQ(rep.message_count, 2u);
  EXPECT_EQ(f.written(0), s.client);
}

TEST(Pop3MailboxTest, TestConnectionWarnsWhenTheServerExpiresMailDespiteLeave) {
  Fixture f(PostAction::leave());
  Script s;
  s.S(kGreeting).C("CAPA").multi("+OK", {"UIDL", "EXPIRE 0", "SASL PLAIN"})
      .C("AUTH PLAIN " + plain_ir("support", kPassword)).S("+OK Logged in.")
      .C("UIDL").multi("+OK", {}).C("STAT").S("+OK 0 0").C("QUIT").S("+OK");
  f.add(s);
  ConnectionReport rep = f.mbx().test_connection();
  ASSERT_THAT(rep.status, IsOk());
  EXPECT_THAT(rep.steps.at(3).detail, HasSubstr("announces EXPIRE"));
}

TEST(Pop3MailboxTest, TestConnectionWarnsWithoutUidl) {
  Fixture f(PostAction::leave());
  Script s;
  s.S(kGreeting).C("CAPA").S("-ERR").C("USER support").S("+OK")
      .C(std::string("PASS ") + kPassword).S("+OK").C("UIDL").S("-ERR not supported")
      .C("STAT").S("+OK 0 0").C("QUIT").S("+OK");
  f.add(s);
  ConnectionReport rep = f.mbx().test_connection();
  ASSERT_THAT(rep.status, IsOk());
  ASSERT_EQ(rep.steps.size(), 7u);
  EXPECT_THAT(rep.steps[5].detail, HasSubstr("warning: the server does not support UIDL"));
  EXPECT_THAT(rep.steps[5].detail, HasSubstr("leave"));
  EXPECT_THAT(rep.steps[3].detail, HasSubstr("does not support CAPA"));
}

TEST(Pop3ConfigTest, DefaultAfterIsLeaveAndMarkReadIsRefused) {
  const std::string base = R"([[mailbox]]
name = "support"
type = "pop3"
host = "pop.example"
user = "u"
password = "env:X"
)";
  auto ok = parse_config(base, "test.toml");
  ASSERT_THAT(ok.status(), IsOk());
  EXPECT_EQ(ok->mailboxes.at(0).after, PostAction::leave());
  EXPECT_EQ(ok->mailboxes.at(0).port, 995);
  auto del = parse_config(base + "after = \"delete\"\n", "test.toml");
  ASSERT_THAT(del.status(), IsOk());
  EXPECT_EQ(del->mailboxes.at(0).after, PostAction::remove());
  auto bad = parse_config(base + "after = \"mark-read\"\n", "test.toml");
  EXPECT_THAT(bad.status(), StatusIs(ErrorKind::kConfig, HasSubstr("POP3 has no read flag")));
  auto filtered = parse_config(base + "after_filtered = \"mark-read\"\n", "test.toml");
  EXPECT_THAT(filtered.status(), StatusIs(ErrorKind::kConfig, HasSubstr("after_filtered")));
}

}  // namespace
}  // namespace mb
