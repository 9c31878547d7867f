// File: tests/unit/connectors/pop3/pop3_mailbox_test.cpp — the POP3 Mailbox over scripted
// servers: UIDL keys mapped to message numbers per session, the "leave" state that skips
// what the ledger already has, DELE made final only by QUIT, servers without UIDL, the
// OAuth sign-in retry, and test-connection.
#include "connectors/pop3/pop3_mailbox.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <deque>
#include <filesystem>
#include <map>

#include <unistd.h>

#include "auth/base64.h"
#include "core/config.h"
#include "core/ingest.h"
#include "core/store.h"
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

// Adds the LIST the first fetch of a session sends: messages 1..n of `size` bytes each.
void list(Script& s, size_t n, uint64_t size = 100) {
  std::vector<std::string> lines;
  for (size_t i = 1; i <= n; ++i) lines.push_back(std::to_string(i) + " " + std::to_string(size));
  s.C("LIST").multi("+OK", lines);
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
    cfg.type = ConnectorType::kPop3;
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

// POP3 has no push: the service polls it on poll_interval, and connects for nothing here.
TEST(Pop3MailboxTest, CannotWaitForChange) {
  Fixture f(PostAction::leave());
  EXPECT_FALSE(f.mbx().capabilities().push);
  auto r = f.mbx().wait_for_change(std::chrono::steady_clock::now() + std::chrono::seconds(30));
  ASSERT_THAT(r.status(), IsOk());
  EXPECT_EQ(*r, ChangeWait::kUnsupported);
  EXPECT_TRUE(f.used.empty());
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
  list(s, 3);
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
  list(s, 3);
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

// LIST is asked once per session, before the first RETR: a message over max_message_bytes
// by its LIST size is answered kTooLarge without being retrieved, in its place in the
// order; one larger than LIST said is kTooLarge too, and the session goes on.
TEST(Pop3MailboxTest, MessagesOverTheLimitAreNotRetrieved) {
  Fixture f(PostAction::leave());
  f.cfg.max_message_bytes = 2000;
  Script s = session({"a", "b", "c"});
  s.C("LIST").multi("+OK", {"1 100", "2 50000", "3 100"});
  retr(s, 1, message("a"));
  s.C("RETR 3").multi("+OK", {"Subject: lying", std::string(3000, 'x'), ""});
  retr(s, 1, message("a"));
  s.C("QUIT").S("+OK");
  f.add(s);
  ASSERT_THAT(f.mbx().list_pending(10, "").status(), IsOk());
  std::vector<std::string> order;
  std::map<std::string, Status> status;
  auto cb = [&](const std::string& key, Result<std::string> raw) {
    order.push_back(key);
    status[key] = raw.status();
    return Status::Ok();
  };
  ASSERT_THAT(f.mbx().fetch({"a", "b", "c"}, cb), IsOk());
  EXPECT_THAT(order, ElementsAre("a", "b", "c"));
  EXPECT_THAT(status["a"], IsOk());
  EXPECT_THAT(status["b"], StatusIs(ErrorKind::kTooLarge, HasSubstr("50000 bytes by LIST")));
  EXPECT_EQ(status["b"].scope(), ErrorScope::kMessage);
  EXPECT_THAT(status["c"], StatusIs(ErrorKind::kTooLarge, HasSubstr("max_message_bytes (2000)")));
  ASSERT_THAT(f.mbx().fetch({"a"}, cb), IsOk());  // same session: no second LIST
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
  list(second, 1);
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

// RFC 1939 forbids two messages with one UIDL; a server that does it must not make one of
// them vanish. The first keeps the UIDL; a later one is keyed by UIDL + headers + size, which
// do not change when the earlier message is deleted (its number would).
TEST(Pop3MailboxTest, RepeatedUidlsAreKeyedByHeadersAndSize) {
  Fixture f(PostAction::remove());
  Script both = session({"uid00001", "uid00001", "other"});
  both.C("LIST").multi("+OK", {"1 100", "2 120", "3 50"});
  both.C("TOP 2 0").multi("+OK", {"Message-ID: <two@x>", "Subject: two", ""});
  both.C("QUIT").S("+OK");
  Script again = both;  // the same maildrop, a new session: the same keys
  Script no_top = session({"uid00001", "uid00001"});
  no_top.C("LIST").multi("+OK", {"1 100", "2 120"}).C("TOP 2 0").S("-ERR Unknown command");
  no_top.C("QUIT").S("+OK");
  Script first_gone = session({"uid00001", "other"});  // message 1 deleted elsewhere
  f.add(both);
  f.add(again);
  f.add(no_top);
  f.add(first_gone);
  auto p1 = f.mbx().list_pending(10, "");
  ASSERT_THAT(p1.status(), IsOk());
  ASSERT_EQ(p1->keys.size(), 3u);
  EXPECT_EQ(p1->keys[0], "uid00001");
  EXPECT_THAT(p1->keys[1], ::testing::StartsWith("uid00001/hdr-"));
  EXPECT_EQ(p1->keys[2], "other");
  auto p2 = f.mbx().list_pending(10, "");
  ASSERT_THAT(p2.status(), IsOk());
  EXPECT_EQ(p2->keys, p1->keys);
  auto p3 = f.mbx().list_pending(10, "");
  ASSERT_THAT(p3.status(), IsOk());
  EXPECT_THAT(p3->keys, ElementsAre("uid00001", "uid00001/size-120"));
  auto p4 = f.mbx().list_pending(10, "");
  ASSERT_THAT(p4.status(), IsOk());
  EXPECT_THAT(p4->keys, ElementsAre("uid00001", "other"));
  EXPECT_EQ(f.written(0), both.client);
}

// Both messages of a repeated UIDL become tickets, once, across passes and a restart; when
// the earlier one is deleted, the later one takes over the plain UIDL and is not imported
// again.
TEST(Pop3MailboxTest, RepeatedUidlsBothBecomeTicketsOnceAcrossPasses) {
  auto dir = std::filesystem::temp_directory_path() /
             ("mb_pop3_dup_uidl_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  Config config;
  Fixture f(PostAction::leave());
  f.cfg.project = "IT";
  Script s1 = session({"uid00001", "uid00001"});
  s1.C("LIST").multi("+OK", {"1 60", "2 61"});
  s1.C("TOP 2 0").multi("+OK", {"From: a@example.com", "Subject: second", ""});
  s1.C("LIST").multi("+OK", {"1 60", "2 61"});  // the sizes, before the first RETR
  retr(s1, 1, message("first"));
  retr(s1, 2, message("second"));
  s1.C("QUIT").S("+OK");
  Script s2 = session({"uid00001", "fresh"});  // "first" deleted by another client
  list(s2, 2);
  retr(s2, 2, message("fresh"));
  s2.C("QUIT").S("+OK");
  f.add(s1);
  f.add(s2);
  {
    auto store = Store::open((dir / "mb.db").string());
    ASSERT_THAT(store.status(), IsOk());
    auto stats = sync_mailbox(f.mbx(), f.cfg, config, **store);
    ASSERT_THAT(stats.status(), IsOk());
    EXPECT_EQ(stats->tickets, 2);
    f.mailbox.reset();  // a restart
  }
  auto store = Store::open((dir / "mb.db").string());
  ASSERT_THAT(store.status(), IsOk());
  auto stats = sync_mailbox(f.mbx(), f.cfg, config, **store);
  ASSERT_THAT(stats.status(), IsOk());
  EXPECT_EQ(stats->tickets, 1);
  f.mailbox.reset();
  auto list = (*store)->list_tickets();
  ASSERT_THAT(list.status(), IsOk());
  std::vector<std::string> subjects;
  for (const auto& t : *list) subjects.push_back(t.subject);
  EXPECT_THAT(subjects, ::testing::UnorderedElementsAre("first", "second", "fresh"));
  EXPECT_EQ(f.written(0), s1.client);
  EXPECT_EQ(f.written(1), s2.client);  // the later copy is not fetched again
  std::filesystem::remove_all(dir);
}

// A RETR answer that cannot be read (here not even a status line) leaves the session out of
// step. The message is tried alone on a new session; failing there too, it is handed over
// as kInvalidInput (skipped for good as "unreadable") and the next message follows on
// another new session — the pass goes on.
TEST(Pop3MailboxTest, UnreadableMessageIsReportedAndTheNextOneStillComes) {
  Fixture f(PostAction::leave());
  Script s1 = session({"a", "b", "c"});
  list(s1, 3);
  retr(s1, 1, message("a"));
  s1.C("RETR 2").S("\x1b[2J garbage instead of a status line");
  Script s2 = session({"a", "b", "c"});
  list(s2, 3);
  s2.C("RETR 2").S("\x1b[2J garbage instead of a status line");
  Script s3 = session({"a", "b", "c"});
  list(s3, 3);
  retr(s3, 3, message("c"));
  s3.C("QUIT").S("+OK");
  f.add(s1);
  f.add(s2);
  f.add(s3);
  ASSERT_THAT(f.mbx().list_pending(10, "").status(), IsOk());
  std::vector<std::string> order;
  std::map<std::string, Result<std::string>> got;
  Status st = f.mbx().fetch({"a", "b", "gone", "c"}, [&](const std::string& key,
                                                        Result<std::string> raw) {
    order.push_back(key);
    got.emplace(key, std::move(raw));
    return Status::Ok();
  });
  ASSERT_THAT(st, IsOk());
  EXPECT_THAT(order, ElementsAre("a", "b", "gone", "c"));
  EXPECT_THAT(got.at("a"), IsOk());
  EXPECT_THAT(got.at("b").status(), StatusIs(ErrorKind::kInvalidInput, HasSubstr("cannot be read")));
  EXPECT_EQ(got.at("b").status().scope(), ErrorScope::kMessage);
  EXPECT_THAT(got.at("gone").status(), StatusIs(ErrorKind::kNotFound, HasSubstr("no longer")));
  ASSERT_THAT(got.at("c"), IsOk());
  EXPECT_EQ(*got.at("c"), message("c"));
  f.mbx().close();
  EXPECT_EQ(f.written(1), s2.client);
  EXPECT_EQ(f.written(2), s3.client);
}

// A message garbled once but readable on a new session is delivered, not skipped.
TEST(Pop3MailboxTest, MessageGarbledOnceIsDeliveredFromANewSession) {
  Fixture f(PostAction::leave());
  Script s1 = session({"a", "b"});
  list(s1, 2);
  s1.C("RETR 1").S("garbage");
  Script s2 = session({"a", "b"});
  list(s2, 2);
  retr(s2, 1, message("a"));
  retr(s2, 2, message("b"));  // a session in step goes on
  s2.C("QUIT").S("+OK");
  f.add(s1);
  f.add(s2);
  ASSERT_THAT(f.mbx().list_pending(10, "").status(), IsOk());
  Status st;
  auto got = fetch_all(f.mbx(), {"a", "b"}, &st);
  ASSERT_THAT(st, IsOk());
  EXPECT_EQ(got["a"], message("a"));
  EXPECT_EQ(got["b"], message("b"));
  f.mbx().close();
  EXPECT_EQ(f.written(1), s2.client);
}

// A connection that breaks is not a message that cannot be read: the pass ends, nothing is
// reported as unreadable.
TEST(Pop3MailboxTest, ConnectionLostDuringRetrEndsTheFetch) {
  Fixture f(PostAction::leave());
  Script s1 = session({"a"});
  list(s1, 1);
  s1.C("RETR 1").S("+OK").S("Subject: a");  // then the connection ends
  f.add(s1);
  ASSERT_THAT(f.mbx().list_pending(10, "").status(), IsOk());
  Status st;
  auto got = fetch_all(f.mbx(), {"a"}, &st);
  EXPECT_THAT(st, StatusIs(ErrorKind::kNetwork, HasSubstr("RETR 1")));
  EXPECT_EQ(st.scope(), ErrorScope::kConnection);
  EXPECT_TRUE(got.empty());
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
