// File: tests/unit/core/cancel_test.cpp — the Cancel flag: waits, callbacks, the thread's scope.
#include "core/cancel.h"

#include <poll.h>

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <thread>

namespace mb {
namespace {

using std::chrono::seconds;
using std::chrono::steady_clock;

TEST(CancelTest, WaitUntilReturnsFalseAtTheDeadlineAndTrueOnceFired) {
  Cancel c;
  EXPECT_FALSE(c.fired());
  EXPECT_FALSE(c.wait_until(steady_clock::now() + std::chrono::milliseconds(5)));
  auto waiting = std::async(std::launch::async,
                            [&] { return c.wait_until(steady_clock::now() + seconds(60)); });
  c.fire();
  ASSERT_EQ(waiting.wait_for(seconds(10)), std::future_status::ready);
  EXPECT_TRUE(waiting.get());
  EXPECT_TRUE(c.fired());
  EXPECT_TRUE(c.wait_until(steady_clock::now()));
  c.fire();  // idempotent
  EXPECT_TRUE(c.fired());
}

TEST(CancelTest, DescriptorBecomesReadableWhenFired) {
  Cancel c;
  ASSERT_GE(c.fd(), 0);
  pollfd p{c.fd(), POLLIN, 0};
  EXPECT_EQ(::poll(&p, 1, 0), 0);
  c.fire();
  EXPECT_EQ(::poll(&p, 1, 0), 1);
}

TEST(CancelTest, CallbacksRunOnceAndRemovedOnesNever) {
  Cancel c;
  int kept = 0;
  int removed = 0;
  c.on_fire([&] { ++kept; });
  uint64_t h = c.on_fire([&] { ++removed; });
  c.remove_callback(h);
  c.fire();
  c.fire();
  EXPECT_EQ(kept, 1);
  EXPECT_EQ(removed, 0);
  int late = 0;
  c.on_fire([&] { ++late; });  // already fired: runs at once
  EXPECT_EQ(late, 1);
}

TEST(CancelTest, RemoveCallbackWaitsForARunningCallback) {
  Cancel c;
  std::atomic<bool> entered{false};
  std::atomic<bool> release{false};
  std::atomic<bool> finished{false};
  uint64_t h = c.on_fire([&] {
    entered = true;
    while (!release) std::this_thread::yield();
    finished = true;
  });
  std::thread firing([&] { c.fire(); });
  while (!entered) std::this_thread::yield();
  auto removing = std::async(std::launch::async, [&] { c.remove_callback(h); });
  // remove_callback cannot return while the callback runs.
  EXPECT_EQ(removing.wait_for(std::chrono::milliseconds(50)), std::future_status::timeout);
  release = true;
  removing.get();
  EXPECT_TRUE(finished);
  firing.join();
}

TEST(CancelTest, ScopeInstallsForThisThreadOnlyAndNests) {
  Cancel outer;
  Cancel inner;
  EXPECT_EQ(CancelScope::current(), nullptr);
  {
    CancelScope a(&outer);
    EXPECT_EQ(CancelScope::current(), &outer);
    std::thread([] { EXPECT_EQ(CancelScope::current(), nullptr); }).join();
    {
      CancelScope b(&inner);
      EXPECT_EQ(CancelScope::current(), &inner);
    }
    EXPECT_EQ(CancelScope::current(), &outer);
  }
  EXPECT_EQ(CancelScope::current(), nullptr);
}

TEST(CancelTest, CancelledStatusSaysWhatWasInterrupted) {
  Status s = Cancel::cancelled("reading from imap.example:993");
  EXPECT_EQ(s.kind(), ErrorKind::kCancelled);
  EXPECT_EQ(s.scope(), ErrorScope::kConnection);
  EXPECT_NE(s.message().find("reading from imap.example:993"), std::string::npos);
  EXPECT_STREQ(to_string(ErrorKind::kCancelled), "cancelled");
}

}  // namespace
}  // namespace mb
