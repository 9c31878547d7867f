// File: tests/unit/connectors/imap/imap_mailbox_test.cpp — the IMAP Mailbox over scripted
// servers: listing per post-action, batched in-order fetches, post-actions with their
// fallbacks, lazy reconnection and the connection test.
#include "connectors/imap/imap_mailbox.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>

#include "connectors/imap/imap_syntax.h"
#include "core/internal/resolver.h"
#include "tests/status_matchers.h"
#include "tests/unit/connectors/imap/imap_test_util.h"

namespace mb {
namespace {
using ::mb::imap::testing::Script;
using ::mb::imap::testing::scripted;
using ::mb::imap::testing::SharedStream;
using ::mb::testing::IsOk;
using ::mb::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

constexpr const char* kPassword = "mailbox-pw-123";
constexpr uint32_t kValidity = 1700000000;

std::string key(uint32_t uid, uint32_t validity = kValidity) {
  return imap::format_key(validity, uid);
}

// The server side of sign-in and SELECT; `caps` are those announced after login.
Script opened(const std::string& caps, uint32_t validity = kValidity, uint64_t exists = 3) {
  Script s;
  s.S("* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=PLAIN LITERAL+] ready")
      .C("a1 AUTHENTICATE PLAIN " + imap::testing::plain_ir("support", kPassword))
      .S("a1 OK [CAPABILITY IMAP4rev1 " + caps + "] Logged in")
      .C("a2 SELECT \"INBOX\"")
      .S("* " + std::to_string(exists) + " EXISTS")
      .S("* OK [UIDVALIDITY " + std::to_string(validity) + "] UIDs valid")
      .S("a2 OK [READ-WRITE] Select completed");
  return s;
}

// A mailbox whose connections come from a queue of scripts.
struct Fixture {
  MailboxConfig cfg;
  std::deque<std::shared_ptr<ScriptedStream>> pending;
  std::vector<std::shared_ptr<ScriptedStream>> used;
  std::unique_ptr<Mailbox> mailbox;

  explicit Fixture(PostAction after, Security security = Security::kNone) {
    cfg.name = "support";
    cfg.type = ConnectorType::kImap;
    cfg.host = "127.0.0.1";
    cfg.port = 1143;
    cfg.security = security;
    cfg.user = "support";
    cfg.after = std::move(after);
  }
  void add(const Script& s, size_t chunk = 4096) { pending.push_back(scripted(s, chunk)); }
  Mailbox& mbx() {
    if (!mailbox) {
      mailbox = make_imap_mailbox(cfg, SignIn::with_password(kPassword), [this]() -> Result<std::unique_ptr<Stream>> {
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

TEST(ImapMailboxTest, MarkReadListsUnseenOldestFirstWithinTheLimit) {
  Script s = opened("MOVE UIDPLUS IDLE");
  s.C("a3 UID SEARCH UNSEEN").S("* SEARCH 9 3 5").S("a3 OK Search completed");
  Fixture f(PostAction::mark_read());
  f.add(s);
  auto p = f.mbx().list_pending(2, "");
  ASSERT_THAT(p, IsOk());
  EXPECT_THAT(p->keys, ElementsAre(key(3), key(5)));
  EXPECT_TRUE(p->more);
  EXPECT_EQ(p->next_state, key(5));
  EXPECT_TRUE(f.mbx().capabilities().move);
  EXPECT_TRUE(f.mbx().capabilities().push);
  EXPECT_EQ(f.written(0), s.client);
}

TEST(ImapMailboxTest, LeaveListsAboveTheLastUidAndDropsTheStarMatch) {
  Script s = opened("UIDPLUS");
  s.C("a3 UID SEARCH UID 6:*").S("* SEARCH 5").S("a3 OK done");
  s.C("a4 UID SEARCH UID 6:*").S("* SEARCH 6 7").S("a4 OK done");
  Fixture f(PostAction::leave());
  f.add(s);
  auto p = f.mbx().list_pending(50, key(5));
  ASSERT_THAT(p, IsOk());
  EXPECT_THAT(p->keys, IsEmpty());
  EXPECT_FALSE(p->more);
  EXPECT_EQ(p->next_state, key(5));
  p = f.mbx().list_pending(50, p->next_state);
  ASSERT_THAT(p, IsOk());
  EXPECT_THAT(p->keys, ElementsAre(key(6), key(7)));
  EXPECT_EQ(p->next_state, key(7));
  EXPECT_EQ(f.used.size(), 1u);  // one connection, kept
  EXPECT_EQ(f.written(0), s.client);
}

TEST(ImapMailboxTest, LeaveStartsAgainWhenUidValidityChanged) {
  Script s = opened("UIDPLUS", 222);
  s.C("a3 UID SEARCH UID 1:*").S("* SEARCH 1 2").S("a3 OK done");
  Fixture f(PostAction::leave());
  f.add(s);
  auto p = f.mbx().list_pending(50, "111:50");
  ASSERT_THAT(p, IsOk());
  EXPECT_THAT(p->keys, ElementsAre("222:1", "222:2"));
  EXPECT_EQ(p->next_state, "222:2");
  EXPECT_EQ(f.written(0), s.client);
}

TEST(ImapMailboxTest, FirstLeaveRunWithAnEmptyFolder) {
  Script s = opened("UIDPLUS");
  s.C("a3 UID SEARCH UID 1:*").S("* SEARCH").S("a3 OK done");
  Fixture f(PostAction::leave());
  f.add(s);
  auto p = f.mbx().list_pending(50, "");
  ASSERT_THAT(p, IsOk());
  EXPECT_THAT(p->keys, IsEmpty());
  EXPECT_EQ(p->next_state, key(0));
}

TEST(ImapMailboxTest, DeleteAndMoveListEverythingNotDeleted) {
  for (const PostAction& a : {PostAction::remove(), PostAction::move("Processed")}) {
    SCOPED_TRACE(a.to_string());
    Script s = opened("UIDPLUS");
    s.C("a3 UID SEARCH UNDELETED").S("* SEARCH 4").S("a3 OK done");
    Fixture f(a);
    f.add(s);
    auto p = f.mbx().list_pending(50, "");
    ASSERT_THAT(p, IsOk());
    EXPECT_THAT(p->keys, ElementsAre(key(4)));
    EXPECT_EQ(f.written(0), s.client);
  }
}

// 27 keys: two UID FETCH commands (25 + the rest). The server answers out of order and
// lacks UID 3; one key is of another UIDVALIDITY. Every key gets exactly one callback, in
// the order asked.
TEST(ImapMailboxTest, FetchBatchesAndDeliversInRequestOrder) {
  Script s = opened("UIDPLUS");
  s.C("a3 UID FETCH 1:25 (UID RFC822.SIZE)").size(1, 1, 5).size(2, 2, 5);
  for (uint32_t u = 4; u <= 25; ++u) s.size(u, u, 6);
  s.S("a3 OK Fetch completed");
  s.C("a4 UID FETCH 1:25 (UID BODY.PEEK[])");
  s.fetch(2, 2, "msg 2").fetch(1, 1, "msg 1");
  for (uint32_t u = 4; u <= 25; ++u) s.fetch(u, u, "msg " + std::to_string(u));
  s.S("a4 OK Fetch completed");
  s.C("a5 UID FETCH 27 (UID RFC822.SIZE)").size(26, 27, 6).S("a5 OK done");
  s.C("a6 UID FETCH 27 (UID BODY.PEEK[])").fetch(26, 27, "msg 27").S("a6 OK done");
  std::vector<std::string> keys;
  for (uint32_t u = 1; u <= 25; ++u) keys.push_back(key(u));
  keys.push_back(key(26, 999));
  keys.push_back(key(27));
  Fixture f(PostAction::mark_read());
  f.add(s);
  std::vector<std::string> seen;
  ASSERT_THAT(f.mbx().fetch(keys,
                            [&](const std::string& k, Result<std::string> raw) {
                              if (k == key(3) || k == key(26, 999)) {
                                EXPECT_THAT(raw, StatusIs(ErrorKind::kNotFound, HasSubstr(k)));
                                EXPECT_EQ(raw.status().scope(), ErrorScope::kMessage);
                              } else {
                                EXPECT_THAT(raw, IsOk());
                                if (raw.ok()) {
                                  EXPECT_EQ(*raw, "msg " + k.substr(k.find(':') + 1));
                                }
                              }
                              seen.push_back(k);
                              return Status::Ok();
                            }),
              IsOk());
  EXPECT_EQ(seen, keys);
  EXPECT_EQ(f.written(0), s.client);
}

TEST(ImapMailboxTest, FetchCallbackErrorStopsAndKeepsTheConnection) {
  Script s = opened("UIDPLUS");
  s.C("a3 UID FETCH 1:2 (UID RFC822.SIZE)").size(1, 1, 3).size(2, 2, 3).S("a3 OK done");
  s.C("a4 UID FETCH 1:2 (UID BODY.PEEK[])").fetch(1, 1, "one").fetch(2, 2, "two").S("a4 OK done");
  s.C("a5 UID SEARCH UNSEEN").S("* SEARCH 2").S("a5 OK done");
  Fixture f(PostAction::mark_read());
  f.add(s);
  int calls = 0;
  EXPECT_THAT(f.mbx().fetch({key(1), key(2)},
                            [&](const std::string&, Result<std::string>) {
                              ++calls;
                              return Status(ErrorKind::kInternal, "store is full");
                            }),
              StatusIs(ErrorKind::kInternal, HasSubstr("store is full")));
  EXPECT_EQ(calls, 1);
  EXPECT_THAT(f.mbx().list_pending(10, ""), IsOk());
  EXPECT_EQ(f.used.size(), 1u);
  EXPECT_EQ(f.written(0), s.client);
}

TEST(ImapMailboxTest, ReconnectsLazilyAfterTheConnectionBroke) {
  Script broken = opened("UIDPLUS");
  broken.C("a3 UID FETCH 1 (UID RFC822.SIZE)").size(1, 1, 50).S("a3 OK done");
  broken.C("a4 UID FETCH 1 (UID BODY.PEEK[])").S("* 1 FETCH (UID 1 BODY[] {50}").S("trunc");
  Script good = opened("UIDPLUS");
  good.C("a3 UID FETCH 1 (UID RFC822.SIZE)").size(1, 1, 5).S("a3 OK done");
  good.C("a4 UID FETCH 1 (UID BODY.PEEK[])").fetch(1, 1, "whole").S("a4 OK done");
  Fixture f(PostAction::mark_read());
  f.add(broken);
  f.add(good);
  int calls = 0;
  auto cb = [&](const std::string&, Result<std::string> raw) {
    ++calls;
    EXPECT_THAT(raw, IsOk());
    return Status::Ok();
  };
  Status s = f.mbx().fetch({key(1)}, cb);
  EXPECT_THAT(s, StatusIs(ErrorKind::kNetwork, HasSubstr("closed")));
  EXPECT_EQ(s.scope(), ErrorScope::kConnection);
  EXPECT_EQ(calls, 0);
  EXPECT_THAT(f.mbx().fetch({key(1)}, cb), IsOk());
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(f.used.size(), 2u);
  EXPECT_EQ(f.written(1), good.client);
}

// A FETCH answer that cannot be read ends its connection, and which message broke it is not
// known: the keys not handed over yet are fetched one by one on new connections; one that
// cannot be read alone either is handed over as kInvalidInput (skipped for good as
// "unreadable") and the next one still comes.
TEST(ImapMailboxTest, UnreadableMessageIsReportedAndTheNextOneStillComes) {
  const std::string garbage = "* 2 FETCH (UID 2 BODY[] {12a}";
  Script batch = opened("UIDPLUS");
  batch.C("a3 UID FETCH 1:3 (UID RFC822.SIZE)").size(1, 1, 3).size(2, 2, 12).size(3, 3, 5);
  batch.S("a3 OK done");
  batch.C("a4 UID FETCH 1:3 (UID BODY.PEEK[])").fetch(1, 1, "one").S(garbage);
  Script alone2 = opened("UIDPLUS");
  alone2.C("a3 UID FETCH 2 (UID RFC822.SIZE)").size(2, 2, 12).S("a3 OK done");
  alone2.C("a4 UID FETCH 2 (UID BODY.PEEK[])").S(garbage);
  Script alone3 = opened("UIDPLUS");
  alone3.C("a3 UID FETCH 3 (UID RFC822.SIZE)").size(3, 3, 5).S("a3 OK done");
  alone3.C("a4 UID FETCH 3 (UID BODY.PEEK[])").fetch(3, 3, "three").S("a4 OK done");
  Fixture f(PostAction::mark_read());
  f.add(batch);
  f.add(alone2);
  f.add(alone3);
  std::vector<std::string> seen;
  std::map<std::string, Result<std::string>> got;
  ASSERT_THAT(f.mbx().fetch({key(1), key(2), key(3)},
                            [&](const std::string& k, Result<std::string> raw) {
                              seen.push_back(k);
                              got.emplace(k, std::move(raw));
                              return Status::Ok();
                            }),
              IsOk());
  EXPECT_THAT(seen, ElementsAre(key(1), key(2), key(3)));
  EXPECT_EQ(*got.at(key(1)), "one");
  EXPECT_THAT(got.at(key(2)).status(),
              StatusIs(ErrorKind::kInvalidInput, HasSubstr("cannot be read")));
  EXPECT_EQ(got.at(key(2)).status().scope(), ErrorScope::kMessage);
  ASSERT_THAT(got.at(key(3)), IsOk());
  EXPECT_EQ(*got.at(key(3)), "three");
  ASSERT_EQ(f.used.size(), 3u);
  EXPECT_EQ(f.written(1), alone2.client);
  EXPECT_EQ(f.written(2), alone3.client);
}

TEST(ImapMailboxTest, ListingRetriesOnceWhenTheKeptConnectionWasDropped) {
  Script first = opened("UIDPLUS");
  first.C("a3 UID SEARCH UNSEEN").S("* SEARCH 1").S("a3 OK done");
  first.C("a4 UID SEARCH UNSEEN").S("* BYE Disconnected for inactivity.");
  Script second = opened("UIDPLUS");
  second.C("a3 UID SEARCH UNSEEN").S("* SEARCH 1 2").S("a3 OK done");
  Fixture f(PostAction::mark_read());
  f.add(first);
  f.add(second);
  ASSERT_THAT(f.mbx().list_pending(10, ""), IsOk());
  auto p = f.mbx().list_pending(10, "");
  ASSERT_THAT(p, IsOk());
  EXPECT_THAT(p->keys, ElementsAre(key(1), key(2)));
  EXPECT_EQ(f.written(0), first.client);
  EXPECT_EQ(f.written(1), second.client);
}

TEST(ImapMailboxTest, AFreshConnectionThatFailsIsNotRetried) {
  Script s = opened("UIDPLUS");
  s.C("a3 UID SEARCH UNSEEN").S("* BYE going down");
  Fixture f(PostAction::mark_read());
  f.add(s);
  f.add(s);
  EXPECT_THAT(f.mbx().list_pending(10, ""), StatusIs(ErrorKind::kNetwork, HasSubstr("going down")));
  EXPECT_EQ(f.used.size(), 1u);
}

TEST(ImapMailboxTest, WrongPasswordIsAuthAndTheNextCallReconnects) {
  Script s;
  s.S("* OK [CAPABILITY IMAP4rev1] ready")
      .C("a1 LOGIN \"support\" \"mailbox-pw-123\"")
      .S("a1 NO [AUTHENTICATIONFAILED] Authentication failed.");
  Fixture f(PostAction::mark_read());
  f.add(s);
  f.add(s);
  auto p = f.mbx().list_pending(10, "");
  EXPECT_THAT(p, StatusIs(ErrorKind::kAuth, HasSubstr("refused the login for user support")));
  EXPECT_THAT(p.status().message(), ::testing::Not(HasSubstr(kPassword)));
  EXPECT_THAT(f.mbx().list_pending(10, ""), StatusIs(ErrorKind::kAuth, HasSubstr("support")));
  EXPECT_EQ(f.used.size(), 2u);
}

TEST(ImapMailboxTest, MarkReadSetsSeen) {
  Script s = opened("UIDPLUS");
  s.C("a3 UID STORE 3:4 +FLAGS.SILENT (\\Seen)").S("a3 OK done");
  Fixture f(PostAction::mark_read());
  f.add(s);
  EXPECT_THAT(f.mbx().apply({key(4), key(3), key(3)}, PostAction::mark_read()), IsOk());
  EXPECT_EQ(f.written(0), s.client);
}

TEST(ImapMailboxTest, DeleteFlagsAndExpungesWithUidplus) {
  Script s = opened("UIDPLUS");
  s.C("a3 UID STORE 3 +FLAGS.SILENT (\\Deleted)").S("a3 OK done");
  s.C("a4 UID EXPUNGE 3").S("* 1 EXPUNGE").S("a4 OK done");
  Fixture f(PostAction::remove());
  f.add(s);
  EXPECT_THAT(f.mbx().apply({key(3)}, PostAction::remove()), IsOk());
  EXPECT_EQ(f.written(0), s.client);
}

TEST(ImapMailboxTest, MoveUsesUidMoveWhenAdvertised) {
  Script s = opened("UIDPLUS MOVE");
  s.C("a3 UID MOVE 3:4 \"Processed\"").S("* OK [COPYUID 7 3:4 1:2] Moved").S("a3 OK done");
  Fixture f(PostAction::move("Processed"));
  f.add(s);
  EXPECT_THAT(f.mbx().apply({key(3), key(4)}, PostAction::move("Processed")), IsOk());
  EXPECT_EQ(f.written(0), s.client);
}

TEST(ImapMailboxTest, MoveCreatesAMissingFolderAndRetriesOnce) {
  Script s = opened("UIDPLUS MOVE");
  s.C("a3 UID MOVE 3 \"Done/2024\"").S("a3 NO [TRYCREATE] Mailbox doesn't exist");
  s.C("a4 CREATE \"Done/2024\"").S("a4 OK created");
  s.C("a5 UID MOVE 3 \"Done/2024\"").S("a5 OK moved");
  Fixture f(PostAction::move("Done/2024"));
  f.add(s);
  EXPECT_THAT(f.mbx().apply({key(3)}, PostAction::move("Done/2024")), IsOk());
  EXPECT_EQ(f.written(0), s.client);
}

TEST(ImapMailboxTest, MoveGivesUpAfterOneRetry) {
  Script s = opened("UIDPLUS MOVE");
  s.C("a3 UID MOVE 3 \"X\"").S("a3 NO [TRYCREATE] missing");
  s.C("a4 CREATE \"X\"").S("a4 NO [NOPERM] not allowed");
  s.C("a5 UID MOVE 3 \"X\"").S("a5 NO [TRYCREATE] still missing");
  Fixture f(PostAction::move("X"));
  f.add(s);
  EXPECT_THAT(f.mbx().apply({key(3)}, PostAction::move("X")),
              StatusIs(ErrorKind::kNotFound, HasSubstr("still missing")));
  EXPECT_EQ(f.written(0), s.client);
}

TEST(ImapMailboxTest, MoveWithoutMoveFallsBackToCopyStoreExpunge) {
  Script s = opened("UIDPLUS");
  s.C("a3 UID COPY 3 \"Processed\"").S("a3 NO [TRYCREATE] Mailbox doesn't exist");
  s.C("a4 CREATE \"Processed\"").S("a4 OK created");
  s.C("a5 UID COPY 3 \"Processed\"").S("a5 OK copied");
  s.C("a6 UID STORE 3 +FLAGS.SILENT (\\Deleted)").S("a6 OK stored");
  s.C("a7 UID EXPUNGE 3").S("a7 OK expunged");
  Fixture f(PostAction::move("Processed"));
  f.add(s);
  EXPECT_THAT(f.mbx().apply({key(3)}, PostAction::move("Processed")), IsOk());
  EXPECT_EQ(f.written(0), s.client);
}

TEST(ImapMailboxTest, WithoutUidplusNothingIsExpunged) {
  Script s = opened("IDLE");
  s.C("a3 UID COPY 3 \"Processed\"").S("a3 OK copied");
  s.C("a4 UID STORE 3 +FLAGS.SILENT (\\Deleted)").S("a4 OK stored");
  s.C("a5 UID STORE 8 +FLAGS.SILENT (\\Deleted)").S("a5 OK stored");
  Fixture f(PostAction::move("Processed"));
  f.add(s);
  EXPECT_THAT(f.mbx().apply({key(3)}, PostAction::move("Processed")), IsOk());
  EXPECT_THAT(f.mbx().apply({key(8)}, PostAction::remove()), IsOk());
  EXPECT_EQ(f.written(0), s.client);
}

TEST(ImapMailboxTest, ApplyIsIdempotentForKeysThatAreGone) {
  Script s = opened("UIDPLUS MOVE");
  Fixture f(PostAction::move("Processed"));
  f.add(s);
  // Leave touches nothing (not even the connection); keys of an old UIDVALIDITY name nothing.
  EXPECT_THAT(f.mbx().apply({key(3)}, PostAction::leave()), IsOk());
  EXPECT_TRUE(f.used.empty());
  EXPECT_THAT(f.mbx().apply({key(3, 42), "garbage"}, PostAction::move("Processed")), IsOk());
  EXPECT_EQ(f.written(0), s.client);
}

TEST(ImapMailboxTest, TestConnectionReportsEachStep) {
  Script s = opened("UIDPLUS", kValidity, 17);
  s.C("a3 LOGOUT").S("* BYE Logging out").S("a3 OK Logout completed");
  Fixture f(PostAction::mark_read());
  f.add(s);
  ConnectionReport r = f.mbx().test_connection();
  ASSERT_THAT(r.status, IsOk());
  std::vector<std::string> names;
  for (const auto& st : r.steps) {
    names.push_back(st.name);
    EXPECT_TRUE(st.ok) << st.name << ": " << st.detail;
    EXPECT_THAT(st.detail, ::testing::Not(HasSubstr(kPassword)));
  }
  EXPECT_THAT(names, ElementsAre("resolve", "connect", "tls", "sign-in", "open-folder", "count"));
  EXPECT_THAT(r.steps[0].detail, HasSubstr("127.0.0.1"));
  EXPECT_THAT(r.steps[2].detail, HasSubstr("plaintext"));
  EXPECT_THAT(r.steps[3].detail, HasSubstr("AUTHENTICATE PLAIN"));
  EXPECT_THAT(r.steps[4].detail, HasSubstr(std::to_string(kValidity)));
  ASSERT_TRUE(r.message_count.has_value());
  EXPECT_EQ(*r.message_count, 17u);
  EXPECT_EQ(f.written(0), s.client);
}

// test-connection's "resolve" step (connectors/line_client, shared by IMAP, POP3 and SMTP)
// waits for the name lookup no longer than the mailbox's connect time-out, like connect_tcp.
TEST(ImapMailboxTest, TestConnectionResolveStepEndsAtTheConnectTimeout) {
  ASSERT_TRUE(internal::wait_for_no_pending_lookups(std::chrono::seconds(30)));
  std::mutex mu;
  std::condition_variable cv;
  bool released = false;
  internal::set_resolver([&](const char*, const char* service, const addrinfo* hints,
                             addrinfo** out) {
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return released; });
    return ::getaddrinfo("127.0.0.1", service, hints, out);
  });
  Fixture f(PostAction::mark_read());
  f.cfg.host = "hung.example.test";
  f.cfg.timeouts.connect = std::chrono::seconds(1);  // the default would be 30 s
  ConnectionReport r = f.mbx().test_connection();
  {
    std::lock_guard lock(mu);
    released = true;
  }
  cv.notify_all();
  EXPECT_TRUE(internal::wait_for_no_pending_lookups(std::chrono::seconds(30)));
  internal::set_resolver(nullptr);
  EXPECT_THAT(r.status, StatusIs(ErrorKind::kNetwork, HasSubstr("did not answer within 1 s")));
  ASSERT_EQ(r.steps.size(), 1u);
  EXPECT_EQ(r.steps[0].name, "resolve");
  EXPECT_FALSE(r.steps[0].ok);
  EXPECT_TRUE(f.used.empty());  // nothing was connected
}

TEST(ImapMailboxTest, TestConnectionStopsAtTheFirstFailure) {
  Script s;
  s.S("* OK [CAPABILITY IMAP4rev1] ready")
      .C("a1 LOGIN \"support\" \"mailbox-pw-123\"")
      .S("a1 NO [AUTHENTICATIONFAILED] Authentication failed.");
  Fixture f(PostAction::mark_read());
  f.add(s);
  ConnectionReport r = f.mbx().test_connection();
  EXPECT_THAT(r.status, StatusIs(ErrorKind::kAuth, HasSubstr("Authentication failed.")));
  ASSERT_FALSE(r.steps.empty());
  EXPECT_EQ(r.steps.back().name, "sign-in");
  EXPECT_FALSE(r.steps.back().ok);
  EXPECT_THAT(r.steps.back().detail, HasSubstr("refused the login"));
  EXPECT_FALSE(r.message_count.has_value());
}

TEST(ImapMailboxTest, TestConnectionOpenFolderFailure) {
  Script s;
  s.S("* PREAUTH [CAPABILITY IMAP4rev1] hi")
      .C("a1 SELECT \"INBOX\"")
      .S("a1 NO [NONEXISTENT] Mailbox doesn't exist");
  Fixture f(PostAction::mark_read());
  f.add(s);
  ConnectionReport r = f.mbx().test_connection();
  EXPECT_THAT(r.status, StatusIs(ErrorKind::kNotFound, HasSubstr("doesn't exist")));
  ASSERT_GE(r.steps.size(), 2u);
  EXPECT_EQ(r.steps[r.steps.size() - 2].name, "sign-in");
  EXPECT_TRUE(r.steps[r.steps.size() - 2].ok);
  EXPECT_EQ(r.steps.back().name, "open-folder");
}

TEST(ImapMailboxTest, StartTlsMailboxUpgradesBeforeSigningIn) {
  Script s;
  s.S("* OK [CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED] ready")
      .C("a1 STARTTLS")
      .S("a1 OK Begin TLS")
      .C("a2 CAPABILITY")
      .S("* CAPABILITY IMAP4rev1 AUTH=PLAIN")
      .S("a2 OK done")
      .C("a3 AUTHENTICATE PLAIN")
      .S("+ ")
      .C(imap::testing::plain_ir("support", kPassword))
      .S("a3 OK [CAPABILITY IMAP4rev1 UIDPLUS] in")
      .C("a4 SELECT \"INBOX\"")
      .S("* OK [UIDVALIDITY 5] x")
      .S("a4 OK sel")
      .C("a5 UID SEARCH UNSEEN")
      .S("* SEARCH 1")
      .S("a5 OK done");
  Fixture f(PostAction::mark_read(), Security::kStartTls);
  f.add(s, 1);
  auto p = f.mbx().list_pending(10, "");
  ASSERT_THAT(p, IsOk());
  EXPECT_THAT(p->keys, ElementsAre("5:1"));
  EXPECT_TRUE(f.used[0]->is_tls());
  EXPECT_EQ(f.written(0), s.client);
}

TEST(ImapMailboxTest, StartTlsMailboxRefusesAServerWithoutIt) {
  Script s;
  s.S("* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] ready");
  Fixture f(PostAction::mark_read(), Security::kStartTls);
  f.add(s);
  EXPECT_THAT(f.mbx().list_pending(10, ""), StatusIs(ErrorKind::kTls, HasSubstr("STARTTLS")));
  EXPECT_EQ(f.written(0), "");  // no credentials in plaintext
}

// PREAUTH before STARTTLS would leave the whole session unencrypted: a TLS refusal (exit 4)
// in a sync pass and in test-connection alike, with nothing sent.
TEST(ImapMailboxTest, StartTlsMailboxRefusesPreauth) {
  Script s;
  s.S("* PREAUTH [CAPABILITY IMAP4rev1 STARTTLS] already in");
  Fixture f(PostAction::mark_read(), Security::kStartTls);
  f.add(s);
  f.add(s);
  EXPECT_THAT(f.mbx().list_pending(10, ""), StatusIs(ErrorKind::kTls, HasSubstr("PREAUTH")));
  EXPECT_EQ(f.written(0), "");
  ConnectionReport r = f.mbx().test_connection();
  EXPECT_THAT(r.status, StatusIs(ErrorKind::kTls, HasSubstr("PREAUTH")));
  ASSERT_FALSE(r.steps.empty());
  EXPECT_EQ(r.steps.back().name, "starttls");
  EXPECT_FALSE(r.steps.back().ok);
  EXPECT_EQ(f.written(1), "");
}

}  // namespace
}  // namespace mb
