// File: tests/unit/connectors/imap/imap_idle_test.cpp — ImapMailbox::wait_for_change over a
// real socket (tests/unit/core/script_server.h): IDLE until EXISTS, DONE at the deadline and
// at every refresh, NOOP polling without IDLE, BYE, silence and the thread's Cancel.
#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <future>
#include <memory>
#include <mutex>
#include <thread>

#include "connectors/imap/imap_mailbox.h"
#include "connectors/imap/imap_syntax.h"
#include "core/cancel.h"
#include "core/metrics.h"
#include "tests/status_matchers.h"
#include "tests/unit/connectors/imap/imap_test_util.h"
#include "tests/unit/core/script_server.h"

namespace mb {
namespace {
using ::mb::testing::IsOk;
using ::mb::testing::Peer;
using ::mb::testing::ScriptServer;
using ::mb::testing::StatusIs;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr const char* kPassword = "idle-pw";
constexpr uint32_t kValidity = 1700000000;

// What the client sent, for the test thread to wait on.
struct Seen {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::string> lines;  // without CRLF

  void add(const std::string& line) {
    std::lock_guard<std::mutex> lock(mu);
    lines.push_back(line.substr(0, line.find_last_not_of("\r\n") + 1));
    cv.notify_all();
  }
  size_t count(const std::string& suffix) {
    std::lock_guard<std::mutex> lock(mu);
    size_t n = 0;
    for (const auto& l : lines) n += l.size() >= suffix.size() &&
                                     l.compare(l.size() - suffix.size(), suffix.size(), suffix) == 0;
    return n;
  }
  bool wait_for(const std::string& suffix, size_t n = 1) {
    std::unique_lock<std::mutex> lock(mu);
    return cv.wait_for(lock, seconds(10), [&] {
      size_t k = 0;
      for (const auto& l : lines) k += l.size() >= suffix.size() &&
                                       l.compare(l.size() - suffix.size(), suffix.size(), suffix) == 0;
      return k >= n;
    });
  }
};

// The server's side of one session: sign-in and SELECT (3 messages, UIDNEXT 4), then
// `serve` answers each further client line (its tag, its command) until it returns false.
using Serve = std::function<bool(Peer&, const std::string& tag, const std::string& cmd)>;

void session(Peer& p, Seen& seen, const std::string& caps, const std::atomic<uint32_t>& uidnext,
             const Serve& serve) {
  std::string line;
  if (!p.send("* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=PLAIN] ready\r\n")) return;
  while (p.read_line(line)) {
    seen.add(line);
    line = line.substr(0, line.find_last_not_of("\r\n") + 1);
    size_t sp = line.find(' ');
    std::string tag = line.substr(0, sp);
    std::string cmd = sp == std::string::npos ? "" : line.substr(sp + 1);
    if (cmd.rfind("AUTHENTICATE", 0) == 0) {
      p.send(tag + " OK [CAPABILITY IMAP4rev1 UIDPLUS " + caps + "] Logged in\r\n");
    } else if (cmd.rfind("SELECT", 0) == 0) {
      p.send("* 3 EXISTS\r\n* 0 RECENT\r\n* OK [UIDVALIDITY " + std::to_string(kValidity) +
             "] ok\r\n* OK [UIDNEXT " + std::to_string(uidnext.load()) + "] ok\r\n" + tag + " OK [READ-WRITE] Selected\r\n");
    } else if (cmd == "LOGOUT") {
      p.send("* BYE bye\r\n" + tag + " OK done\r\n");
      return;
    } else if (!serve(p, tag, cmd)) {
      return;
    }
  }
}

struct Fixture {
  Seen seen;
  std::string caps = "IDLE MOVE";
  std::atomic<uint32_t> uidnext{4};
  Serve serve;
  ScriptServer server{[this](Peer& p) { session(p, seen, caps, uidnext, serve); }};
  ImapPushOptions push;
  MailboxConfig cfg;
  std::unique_ptr<Mailbox> mailbox;

  Fixture() {
    cfg.name = "support";
    cfg.type = ConnectorType::kImap;
    cfg.host = "127.0.0.1";
    cfg.security = Security::kNone;
    cfg.user = "support";
    cfg.timeouts.connect = seconds(5);
    cfg.timeouts.response = seconds(5);
  }
  Mailbox& mbx() {
    if (!mailbox) {
      uint16_t port = server.port();
      Timeouts t = cfg.timeouts;
      mailbox = make_imap_mailbox(
          cfg, SignIn::with_password(kPassword),
          [port, t] { return connect_tcp("127.0.0.1", port, t); }, push);
    }
    return *mailbox;
  }
};

// Answers IDLE with "+", then `during` (after the continuation); DONE gets the tagged OK.
Serve idle_then(std::string during) {
  auto idle_tag = std::make_shared<std::string>();
  return [idle_tag, during](Peer& p, const std::string& tag, const std::string& cmd) {
    if (cmd == "IDLE") {
      *idle_tag = tag;
      return p.send("+ idling\r\n") && (during.empty() || p.send(during));
    }
    if (tag == "DONE") return p.send(*idle_tag + " OK Idle completed\r\n");
    if (cmd.rfind("UID SEARCH", 0) == 0) return p.send("* SEARCH 4\r\n" + tag + " OK done\r\n");
    return p.send(tag + " OK\r\n");
  };
}

TEST(ImapIdleTest, ImapMailboxesCanWaitForChange) {
  Fixture f;
  EXPECT_TRUE(f.mbx().capabilities().push);
}

TEST(ImapIdleTest, ExistsDuringIdleIsAChangeAndDoneIsSent) {
  Fixture f;
  f.serve = idle_then("* 1 FETCH (FLAGS (\\Seen))\r\n* 4 EXISTS\r\n* 1 RECENT\r\n");
  auto r = f.mbx().wait_for_change(Clock::now() + seconds(30));
  ASSERT_THAT(r, IsOk());
  // Before any listing the first wait reports a change at once (mail may have come while no
  // connection was open); the listing after it then knows the folder.
  EXPECT_EQ(*r, ChangeWait::kChanged);
  EXPECT_EQ(f.seen.count(" IDLE"), 0u);
  auto first = f.mbx().list_pending(10, "");
  ASSERT_THAT(first, IsOk());
  auto start = Clock::now();
  r = f.mbx().wait_for_change(Clock::now() + seconds(30));
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ(*r, ChangeWait::kChanged);
  EXPECT_LT(Clock::now() - start, seconds(5));
  EXPECT_EQ(f.seen.count(" IDLE"), 1u);
  EXPECT_EQ(f.seen.count("DONE"), 1u);
  // The same connection lists what came.
  auto p = f.mbx().list_pending(10, "");
  ASSERT_THAT(p, IsOk());
  EXPECT_EQ(p->keys, std::vector<std::string>{imap::format_key(kValidity, 4)});
  EXPECT_EQ(f.server.accepted(), 1);
}

// mailbridge_imap_idle_connections counts the connection while it waits in IDLE, and not
// once the wait has ended.
TEST(ImapIdleTest, IdleConnectionsGaugeCountsTheWait) {
  Fixture f;
  metrics::Gauge& gauge = metrics::idle_connections();
  const double before = gauge.value();
  auto counted = std::make_shared<std::atomic<bool>>(false);
  auto idle_tag = std::make_shared<std::string>();
  f.serve = [&gauge, before, counted, idle_tag](Peer& p, const std::string& tag,
                                                const std::string& cmd) {
    if (cmd == "IDLE") {
      *idle_tag = tag;
      if (!p.send("+ idling\r\n")) return false;
      // The client counts itself once it has read the continuation.
      auto until = std::chrono::steady_clock::now() + seconds(5);
      while (gauge.value() != before + 1 && std::chrono::steady_clock::now() < until) {
        std::this_thread::yield();
      }
      *counted = gauge.value() == before + 1;
      return p.send("* 4 EXISTS\r\n");
    }
    if (tag == "DONE") return p.send(*idle_tag + " OK Idle completed\r\n");
    if (cmd.rfind("UID SEARCH", 0) == 0) return p.send("* SEARCH 4\r\n" + tag + " OK done\r\n");
    return p.send(tag + " OK\r\n");
  };
  ASSERT_THAT(f.mbx().list_pending(10, ""), IsOk());
  auto r = f.mbx().wait_for_change(Clock::now() + seconds(30));
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ(*r, ChangeWait::kChanged);
  EXPECT_TRUE(*counted);
  EXPECT_EQ(gauge.value(), before);
}

TEST(ImapIdleTest, ExistsAfterExpungesIsComparedWithTheRealSize) {
  Fixture f;
  // 3 messages, one expunged (2), then one arrives: "* 3 EXISTS" is growth.
  f.serve = idle_then("* 3 EXPUNGE\r\n* 3 EXISTS\r\n");
  ASSERT_THAT(f.mbx().list_pending(10, ""), IsOk());
  auto r = f.mbx().wait_for_change(Clock::now() + seconds(30));
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ(*r, ChangeWait::kChanged);
  EXPECT_EQ(f.seen.count("DONE"), 1u);
}

TEST(ImapIdleTest, DeadlineEndsTheIdleWithDone) {
  Fixture f;
  f.serve = idle_then("* 2 FETCH (FLAGS (\\Seen))\r\n* 2 EXPUNGE\r\n* 2 EXISTS\r\n");
  ASSERT_THAT(f.mbx().list_pending(10, ""), IsOk());
  auto start = Clock::now();
  auto r = f.mbx().wait_for_change(start + milliseconds(300));
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ(*r, ChangeWait::kTimedOut);
  EXPECT_GE(Clock::now() - start, milliseconds(300));
  EXPECT_LT(Clock::now() - start, seconds(4));
  EXPECT_EQ(f.seen.count(" IDLE"), 1u);
  EXPECT_EQ(f.seen.count("DONE"), 1u);
}

TEST(ImapIdleTest, IdleIsReissuedEveryRefreshPeriod) {
  Fixture f;
  f.push.idle_refresh = milliseconds(150);
  f.serve = idle_then("");
  ASSERT_THAT(f.mbx().list_pending(10, ""), IsOk());
  auto r = f.mbx().wait_for_change(Clock::now() + milliseconds(700));
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ(*r, ChangeWait::kTimedOut);
  size_t idles = f.seen.count(" IDLE");
  EXPECT_GE(idles, 4u);  // 150 ms periods within 700 ms: 5 (the last one short)
  EXPECT_LE(idles, 5u);
  EXPECT_EQ(f.seen.count("DONE"), idles);
  EXPECT_EQ(f.server.accepted(), 1);
}

TEST(ImapIdleTest, WithoutIdleANoopPollsEveryInterval) {
  Fixture f;
  f.caps = "MOVE";
  f.push.noop_interval = milliseconds(50);
  auto noops = std::make_shared<int>(0);
  f.serve = [noops](Peer& p, const std::string& tag, const std::string& cmd) {
    if (cmd.rfind("UID SEARCH", 0) == 0) return p.send("* SEARCH\r\n" + tag + " OK\r\n");
    if (cmd != "NOOP") return p.send(tag + " BAD unexpected\r\n");
    return p.send((++*noops == 3 ? "* 4 EXISTS\r\n" : "") + tag + " OK NOOP done\r\n");
  };
  ASSERT_THAT(f.mbx().list_pending(10, ""), IsOk());
  auto start = Clock::now();
  auto r = f.mbx().wait_for_change(Clock::now() + seconds(30));
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ(*r, ChangeWait::kChanged);
  EXPECT_EQ(f.seen.count(" NOOP"), 3u);
  EXPECT_GE(Clock::now() - start, milliseconds(150));
  EXPECT_EQ(f.seen.count(" IDLE"), 0u);
  // And without news until the deadline: kTimedOut.
  r = f.mbx().wait_for_change(Clock::now() + milliseconds(120));
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ(*r, ChangeWait::kTimedOut);
}

TEST(ImapIdleTest, ByeDuringIdleIsANetworkErrorAndTheNextCallReconnects) {
  Fixture f;
  f.serve = [](Peer& p, const std::string& tag, const std::string& cmd) {
    if (cmd.rfind("UID SEARCH", 0) == 0) return p.send("* SEARCH\r\n" + tag + " OK\r\n");
    if (cmd == "IDLE") {
      p.send("+ idling\r\n* BYE Server shutting down\r\n");
      return false;  // hangs up
    }
    return p.send(tag + " OK\r\n");
  };
  ASSERT_THAT(f.mbx().list_pending(10, ""), IsOk());
  auto r = f.mbx().wait_for_change(Clock::now() + seconds(30));
  EXPECT_THAT(r.status(), StatusIs(ErrorKind::kNetwork, ::testing::_));
  EXPECT_EQ(r.status().scope(), ErrorScope::kConnection);
  EXPECT_NE(r.status().message().find("Server shutting down"), std::string::npos)
      << r.status().message();
  // Reconnected: the UIDNEXT is what the listing knew, so the wait goes on to IDLE.
  r = f.mbx().wait_for_change(Clock::now() + seconds(30));
  EXPECT_THAT(r.status(), StatusIs(ErrorKind::kNetwork, ::testing::_));
  EXPECT_EQ(f.server.accepted(), 2);
  EXPECT_EQ(f.seen.count(" IDLE"), 2u);
}

TEST(ImapIdleTest, ServerSilentPastRefreshAndResponseTimeoutIsANetworkError) {
  Fixture f;
  f.cfg.timeouts.response = seconds(1);
  f.push.idle_refresh = milliseconds(100);
  f.serve = [](Peer& p, const std::string& tag, const std::string& cmd) {
    if (cmd.rfind("UID SEARCH", 0) == 0) return p.send("* SEARCH\r\n" + tag + " OK\r\n");
    if (cmd == "IDLE") return p.send("+ idling\r\n");
    return true;  // DONE: never answered
  };
  ASSERT_THAT(f.mbx().list_pending(10, ""), IsOk());
  auto start = Clock::now();
  auto r = f.mbx().wait_for_change(Clock::now() + seconds(60));
  EXPECT_THAT(r.status(), StatusIs(ErrorKind::kNetwork, ::testing::_));
  EXPECT_NE(r.status().message().find("IDLE"), std::string::npos) << r.status().message();
  EXPECT_GE(Clock::now() - start, milliseconds(1100));
  EXPECT_LT(Clock::now() - start, seconds(5));
}

TEST(ImapIdleTest, CancelDuringIdleReturnsAtOnce) {
  Fixture f;
  f.serve = idle_then("");
  ASSERT_THAT(f.mbx().list_pending(10, ""), IsOk());
  Cancel cancel;
  auto waiting = std::async(std::launch::async, [&] {
    CancelScope scope(&cancel);
    return f.mbx().wait_for_change(Clock::now() + seconds(120));
  });
  ASSERT_TRUE(f.seen.wait_for(" IDLE"));
  auto fired = Clock::now();
  cancel.fire();
  ASSERT_EQ(waiting.wait_for(seconds(5)), std::future_status::ready);
  EXPECT_LT(Clock::now() - fired, seconds(2));
  auto r = waiting.get();
  EXPECT_THAT(r.status(), StatusIs(ErrorKind::kCancelled, ::testing::_));
  EXPECT_EQ(f.seen.count("DONE"), 0u);  // the connection was dropped, not ended
}

TEST(ImapIdleTest, ServerThatEndsIdleAtOnceIsPolledWithNoopInstead) {
  Fixture f;
  f.push.noop_interval = milliseconds(50);
  f.serve = [](Peer& p, const std::string& tag, const std::string& cmd) {
    if (cmd.rfind("UID SEARCH", 0) == 0) return p.send("* SEARCH\r\n" + tag + " OK\r\n");
    if (cmd == "IDLE") return p.send("+ idling\r\n" + tag + " OK IDLE over already\r\n");
    return p.send(tag + " OK\r\n");
  };
  ASSERT_THAT(f.mbx().list_pending(10, ""), IsOk());
  auto r = f.mbx().wait_for_change(Clock::now() + milliseconds(300));
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ(*r, ChangeWait::kTimedOut);
  EXPECT_EQ(f.seen.count(" IDLE"), 1u);
  EXPECT_EQ(f.seen.count("DONE"), 0u);  // nothing to end
  EXPECT_GE(f.seen.count(" NOOP"), 3u);
}

TEST(ImapIdleTest, GrowthSeenInAnEarlierAnswerIsAChangeWithoutIdle) {
  Fixture f;
  f.serve = [](Peer& p, const std::string& tag, const std::string& cmd) {
    // The SEARCH answer carries news that came while it ran.
    if (cmd.rfind("UID SEARCH", 0) == 0) return p.send("* SEARCH\r\n* 4 EXISTS\r\n" + tag + " OK\r\n");
    return p.send(tag + " OK\r\n");
  };
  ASSERT_THAT(f.mbx().list_pending(10, ""), IsOk());
  auto r = f.mbx().wait_for_change(Clock::now() + seconds(30));
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ(*r, ChangeWait::kChanged);
  EXPECT_EQ(f.seen.count(" IDLE"), 0u);
}

TEST(ImapIdleTest, NewConnectionSeesMailThatCameWhileNoneWasOpen) {
  Fixture f;
  f.serve = idle_then("");
  ASSERT_THAT(f.mbx().list_pending(10, ""), IsOk());
  f.mbx().close();
  f.uidnext = 5;  // a message came while no connection was open
  auto r = f.mbx().wait_for_change(Clock::now() + seconds(30));
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ(*r, ChangeWait::kChanged);
  EXPECT_EQ(f.seen.count(" IDLE"), 0u);
  ASSERT_THAT(f.mbx().list_pending(10, ""), IsOk());
  f.mbx().close();
  // The same UIDNEXT on the next connection: nothing came, so the wait goes on to IDLE.
  r = f.mbx().wait_for_change(Clock::now() + milliseconds(200));
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ(*r, ChangeWait::kTimedOut);
  EXPECT_EQ(f.seen.count(" IDLE"), 1u);
  EXPECT_EQ(f.server.accepted(), 3);
}

}  // namespace
}  // namespace mb
