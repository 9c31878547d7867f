// File: tests/unit/core/writer_gate_test.cpp — the in-process writer gate of a store file
// (core/internal/writer_gate.h) as Transaction (core/internal/sqlite.h) uses it: many
// threads on connections of their own all write, in arrival order; the wait's deadline, the
// thread's Cancel and a second transaction on the same thread end a wait instead of a hang.
// No sleeps to let things happen: every wait is for a condition, with a deadline.
#include "core/internal/writer_gate.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <functional>
#include <latch>
#include <memory>
#include <mutex>
#include <numeric>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "core/cancel.h"
#include "core/internal/sqlite.h"
#include "core/internal/store_util.h"
#include "core/store.h"
#include "tests/status_matchers.h"

namespace mb::internal {
namespace {

using ::mb::testing::IsOk;
using ::mb::testing::StatusIs;
using ::testing::AllOf;
using ::testing::HasSubstr;
using namespace std::chrono_literals;
using SteadyClock = std::chrono::steady_clock;

constexpr auto kDeadline = 10s;  // for conditions that should hold within milliseconds

// Polls `condition` until it holds or kDeadline passes.
bool eventually(const std::function<bool()>& condition) {
  const auto until = SteadyClock::now() + kDeadline;
  while (!condition()) {
    if (SteadyClock::now() > until) return false;
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

struct DbClose {
  void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};
using Db = std::unique_ptr<sqlite3, DbClose>;

class WriterGateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("mb_writer_gate_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    path_ = (dir_ / "mb.db").string();
    Db first = open();
    ASSERT_THAT(exec(first.get(), "PRAGMA journal_mode = WAL; CREATE TABLE c (n INTEGER); "
                                  "INSERT INTO c VALUES (0);"),
                IsOk());
  }
  void TearDown() override {
    set_writer_gate_wait_for_testing(0ms);
    std::filesystem::remove_all(dir_);
  }

  // A connection of its own to the test's file, or `path`. Busy time-out 0: should two of
  // this process's writers ever meet inside SQLite, the second fails at once (SQLITE_BUSY).
  Db open(const std::string& path = "") {
    sqlite3* db = nullptr;
    const std::string& p = path.empty() ? path_ : path;
    EXPECT_EQ(sqlite3_open_v2(p.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
                              nullptr),
              SQLITE_OK);
    sqlite3_extended_result_codes(db, 1);
    sqlite3_busy_timeout(db, 0);
    EXPECT_THAT(exec(db, "PRAGMA synchronous = OFF"), IsOk());
    return Db(db);
  }
  std::shared_ptr<WriterGate> gate(sqlite3* db) {
    return WriterGate::for_file(sqlite3_db_filename(db, "main"));
  }
  int64_t counter(sqlite3* db) {
    auto st = Stmt::prepare(db, "SELECT n FROM c");
    EXPECT_THAT(st.status(), IsOk());
    auto row = st->step();
    EXPECT_TRUE(row.ok() && *row);
    return st->col_int(0);
  }
  static Status increment(sqlite3* db) {
    auto tx = Transaction::begin_immediate(db);
    if (!tx.ok()) return tx.status();
    MB_RETURN_IF_ERROR(exec(db, "UPDATE c SET n = n + 1"));
    return tx->commit();
  }

  std::filesystem::path dir_;
  std::string path_;
};

// 160 threads, each on its own connection with no busy time-out, write 5 times each, all
// released at once: every transaction succeeds (so SQLite never saw two of them at once),
// none is lost, and no thread waits for long.
TEST_F(WriterGateTest, ManyThreadsOnTheirOwnConnectionsAllWriteInTurn) {
  constexpr int kThreads = 160;
  constexpr int kEach = 5;
  std::vector<Db> dbs;
  for (int i = 0; i < kThreads; ++i) dbs.push_back(open());
  std::latch start(kThreads);
  std::mutex mu;
  std::vector<std::string> errors;
  SteadyClock::duration longest{};
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, db = dbs[static_cast<size_t>(i)].get()] {
      start.arrive_and_wait();
      for (int k = 0; k < kEach; ++k) {
        const auto asked = SteadyClock::now();
        auto tx = Transaction::begin_immediate(db);
        const auto waited = SteadyClock::now() - asked;
        Status s = tx.ok() ? exec(db, "UPDATE c SET n = n + 1") : tx.status();
        if (s.ok()) s = tx->commit();
        std::lock_guard lock(mu);
        longest = std::max(longest, waited);
        if (!s.ok()) errors.push_back(s.to_string());
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_THAT(errors, ::testing::IsEmpty());
  EXPECT_EQ(counter(dbs[0].get()), int64_t{kThreads} * kEach);
  // Bounded by the transactions ahead (at most 159 tiny ones), far below the gate's wait.
  EXPECT_LT(longest, 5s);
  EXPECT_FALSE(gate(dbs[0].get())->held());
}

// Waiters get the gate in the order they came, whatever their connection.
TEST_F(WriterGateTest, WaitersAreServedInArrivalOrder) {
  constexpr int kWaiters = 8;
  Db holder = open();
  auto held = Transaction::begin_immediate(holder.get());
  ASSERT_THAT(held, IsOk());
  auto g = gate(holder.get());
  ASSERT_TRUE(g->held());
  std::vector<Db> dbs;
  for (int i = 0; i < kWaiters; ++i) dbs.push_back(open());
  std::mutex mu;
  std::vector<int> order;
  std::vector<Status> results(kWaiters);
  std::vector<std::thread> threads;
  for (int i = 0; i < kWaiters; ++i) {
    threads.emplace_back([&, i] {
      sqlite3* db = dbs[static_cast<size_t>(i)].get();
      auto tx = Transaction::begin_immediate(db);
      if (!tx.ok()) {
        results[static_cast<size_t>(i)] = tx.status();
        return;
      }
      {
        std::lock_guard lock(mu);
        order.push_back(i);
      }
      results[static_cast<size_t>(i)] = tx->commit();
    });
    // The next one starts only once this one is queued: the arrival order is known.
    ASSERT_TRUE(eventually([&] { return g->waiting() == static_cast<size_t>(i + 1); }));
  }
  ASSERT_THAT(held->commit(), IsOk());
  for (auto& t : threads) t.join();
  for (const auto& s : results) EXPECT_THAT(s, IsOk());
  std::vector<int> expected(kWaiters);
  std::iota(expected.begin(), expected.end(), 0);
  EXPECT_EQ(order, expected);
}

// A wait past its deadline fails with kBusy naming the store and the wait; the waiters behind
// and before it are not disturbed.
TEST_F(WriterGateTest, AWaitPastItsDeadlineIsABusyErrorNamingTheStore) {
  Db holder = open(), first = open(), impatient = open();
  const auto held_at = SteadyClock::now();
  auto held = Transaction::begin_immediate(holder.get());
  ASSERT_THAT(held, IsOk());
  auto g = gate(holder.get());
  Status first_result;
  std::thread patient([&] { first_result = increment(first.get()); });
  ASSERT_TRUE(eventually([&] { return g->waiting() == 1; }));
  Status late;
  SteadyClock::duration waited{};
  std::thread t([&] {
    const auto asked = SteadyClock::now();
    late = Transaction::begin_immediate(impatient.get(), 50ms).status();
    waited = SteadyClock::now() - asked;
  });
  t.join();  // the holder holds on until the impatient one has given up
  EXPECT_THAT(late, StatusIs(ErrorKind::kBusy,
                             AllOf(HasSubstr("begin transaction: store "), HasSubstr("mb.db"),
                                   HasSubstr("past the 50 ms a turn may take"),
                                   HasSubstr("2 writers of this process still ahead"))));
  // The bound is on the turn ahead: the holder had held the store for 50 ms when it ended.
  EXPECT_GE(SteadyClock::now() - held_at, 50ms);
  EXPECT_LT(waited, kDeadline);
  EXPECT_EQ(g->waiting(), 1u);  // the patient one is still queued
  ASSERT_THAT(held->commit(), IsOk());
  patient.join();
  EXPECT_THAT(first_result, IsOk());
  EXPECT_EQ(counter(holder.get()), 1);
  EXPECT_THAT(increment(impatient.get()), IsOk());  // the gate works on
}

// A long queue that moves is no error: 41 writers at once, each holding its turn for 10 ms,
// keep the last ones waiting about 400 ms, twice their 200 ms wait, and every one still gets
// its turn — the wait bounds a stalled turn (a stuck transaction), not the queue's length.
TEST_F(WriterGateTest, AMovingQueueOutlastsTheWaitWithoutFailing) {
  constexpr int kWriters = 41;
  std::vector<Db> dbs;
  for (int i = 0; i < kWriters; ++i) dbs.push_back(open());
  std::vector<Status> results(kWriters);
  std::vector<SteadyClock::duration> waited(kWriters);
  std::vector<std::thread> threads;
  std::latch all_started(kWriters);
  for (int i = 0; i < kWriters; ++i) {
    threads.emplace_back([&, i] {
      all_started.arrive_and_wait();
      const auto asked = SteadyClock::now();
      auto tx = Transaction::begin_immediate(dbs[i].get(), 200ms);
      waited[i] = SteadyClock::now() - asked;
      if (!tx.ok()) {
        results[i] = tx.status();
        return;
      }
      std::this_thread::sleep_for(10ms);  // holds its turn
      results[i] = exec(dbs[i].get(), "UPDATE c SET n = n + 1");
      if (results[i].ok()) results[i] = tx->commit();
    });
  }
  for (auto& t : threads) t.join();
  for (int i = 0; i < kWriters; ++i) EXPECT_THAT(results[i], IsOk()) << "writer " << i;
  EXPECT_GE(*std::max_element(waited.begin(), waited.end()), 300ms);
  EXPECT_EQ(counter(dbs[0].get()), kWriters);
}

// The default wait can be shortened for tests; a lone write of the Store queues too.
TEST_F(WriterGateTest, StoreWritesQueueAtTheGateAndTheTestWaitApplies) {
  auto store = Store::open(path_);
  ASSERT_THAT(store, IsOk());
  Db holder = open();
  auto held = Transaction::begin_immediate(holder.get());
  ASSERT_THAT(held, IsOk());
  set_writer_gate_wait_for_testing(30ms);
  Status paused;
  std::thread t([&] { paused = (*store)->set_outbox_paused(true); });
  t.join();
  EXPECT_THAT(paused, StatusIs(ErrorKind::kBusy, HasSubstr("past the 30 ms a turn may take")));
  ASSERT_THAT(held->commit(), IsOk());
  EXPECT_THAT((*store)->set_outbox_paused(true), IsOk());
  auto now = (*store)->outbox_paused();
  ASSERT_THAT(now, IsOk());
  EXPECT_TRUE(*now);
}

// The thread's Cancel (the service stopping) ends a wait at once.
TEST_F(WriterGateTest, TheThreadsCancelEndsTheWait) {
  Db holder = open(), waiter = open();
  auto held = Transaction::begin_immediate(holder.get());
  ASSERT_THAT(held, IsOk());
  auto g = gate(holder.get());
  Cancel stop;
  Status result;
  SteadyClock::duration waited{};
  std::thread t([&] {
    CancelScope scope(&stop);
    const auto asked = SteadyClock::now();
    result = Transaction::begin_immediate(waiter.get(), 60s).status();
    waited = SteadyClock::now() - asked;
  });
  ASSERT_TRUE(eventually([&] { return g->waiting() == 1; }));
  stop.fire();
  t.join();
  EXPECT_THAT(result, StatusIs(ErrorKind::kCancelled, HasSubstr("write turn")));
  EXPECT_LT(waited, kDeadline);
  EXPECT_EQ(g->waiting(), 0u);
  // Already fired: no wait at all.
  std::thread again([&] {
    CancelScope scope(&stop);
    result = Transaction::begin_immediate(waiter.get(), 60s).status();
  });
  again.join();
  EXPECT_THAT(result, StatusIs(ErrorKind::kCancelled, HasSubstr("write turn")));
  ASSERT_THAT(held->commit(), IsOk());
}

// A second write transaction on another connection of the same file, on the same thread,
// would wait for itself: it fails at once instead. On one connection it nests.
TEST_F(WriterGateTest, ASecondTransactionOnTheSameThreadFailsAtOnce) {
  Db a = open(), b = open();
  auto outer = Transaction::begin_immediate(a.get());
  ASSERT_THAT(outer, IsOk());
  const auto asked = SteadyClock::now();
  EXPECT_THAT(Transaction::begin_immediate(b.get(), 60s),
              StatusIs(ErrorKind::kInternal,
                       AllOf(HasSubstr("begin transaction: store "), HasSubstr("mb.db"),
                             HasSubstr("already holds a write transaction"))));
  EXPECT_THAT(Transaction::begin_immediate(a.get(), 60s),
              StatusIs(ErrorKind::kInternal, HasSubstr("already holds")));
  EXPECT_LT(SteadyClock::now() - asked, kDeadline);
  auto joined = begin_unless_nested(a.get());  // the same connection: joins the outer one
  ASSERT_THAT(joined, IsOk());
  EXPECT_FALSE(joined->has_value());
  ASSERT_THAT(outer->commit(), IsOk());
  EXPECT_THAT(increment(b.get()), IsOk());
}

// A transaction rolled back by its destructor, or whose BEGIN failed, leaves the gate free.
TEST_F(WriterGateTest, RollbackAndAFailedBeginReleaseTheGate) {
  Db a = open(), b = open();
  {
    auto tx = Transaction::begin_immediate(a.get());
    ASSERT_THAT(tx, IsOk());
    ASSERT_THAT(exec(a.get(), "UPDATE c SET n = 42"), IsOk());
  }
  EXPECT_FALSE(gate(a.get())->held());
  EXPECT_EQ(counter(b.get()), 0);
  // Another process's writer (here: a BEGIN IMMEDIATE that bypasses the gate) holds SQLite's
  // lock: BEGIN fails with kBusy, and the gate is free again.
  ASSERT_THAT(exec(a.get(), "BEGIN IMMEDIATE"), IsOk());
  EXPECT_THAT(Transaction::begin_immediate(b.get()),
              StatusIs(ErrorKind::kBusy, HasSubstr("database is locked")));
  EXPECT_FALSE(gate(a.get())->held());
  ASSERT_THAT(exec(a.get(), "ROLLBACK"), IsOk());
  EXPECT_THAT(increment(b.get()), IsOk());
}

// Every file has a gate of its own; an in-memory database has none.
TEST_F(WriterGateTest, GatesArePerFile) {
  Db a = open();
  Db other = open((dir_ / "other.db").string());
  ASSERT_THAT(exec(other.get(), "CREATE TABLE c (n INTEGER); INSERT INTO c VALUES (0);"),
              IsOk());
  auto outer = Transaction::begin_immediate(a.get());
  ASSERT_THAT(outer, IsOk());
  EXPECT_THAT(increment(other.get()), IsOk());
  Db m1 = open(":memory:"), m2 = open(":memory:");
  auto t1 = Transaction::begin_immediate(m1.get());
  auto t2 = Transaction::begin_immediate(m2.get());
  EXPECT_THAT(t1, IsOk());
  EXPECT_THAT(t2, IsOk());
  EXPECT_EQ(WriterGate::for_file(""), nullptr);
  ASSERT_THAT(outer->commit(), IsOk());
}

}  // namespace
}  // namespace mb::internal
