// File: tests/unit/core/schedule_test.cpp — the service's schedule rules (core/schedule.h).
#include "core/schedule.h"

#include <gtest/gtest.h>

#include "core/utc.h"

namespace mb {
namespace {
using namespace std::chrono_literals;
using std::chrono::milliseconds;

class ScheduleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    mailbox_.name = "support";
    mailbox_.poll_interval = 120s;
    state_.name = "support";
    now_ = *parse_utc("2026-12-07T10:00:00Z");
  }
  NextPass plan(const LastPass& last, double jitter = 0.0) {
    return plan_next_pass(mailbox_, monitor_, state_, last, jitter, now_);
  }
  LastPass after(PassResult result, int64_t failures = 0) {
    return {result, failures, now_};
  }

  MailboxConfig mailbox_;
  MonitorConfig monitor_;
  MailboxState state_;
  Clock::time_point now_;
};

TEST_F(ScheduleTest, FirstPassIsDueAtOnce) {
  NextPass next = plan(LastPass{});
  EXPECT_EQ(next.why, NextPass::Why::kDue);
  EXPECT_EQ(next.at, now_);
}

TEST_F(ScheduleTest, MoreWaitingIsDueAtOnceAndACancelledPassToo) {
  EXPECT_EQ(plan(after(PassResult::kMore)).at, now_);
  EXPECT_EQ(plan(after(PassResult::kMore)).why, NextPass::Why::kDue);
  EXPECT_EQ(plan(after(PassResult::kCancelled)).at, now_);
}

TEST_F(ScheduleTest, ASuccessWaitsThePollIntervalPlusUpToTenPercent) {
  EXPECT_EQ(plan(after(PassResult::kOk), 0.0).at, now_ + 120s);
  EXPECT_EQ(plan(after(PassResult::kOk), 0.0).why, NextPass::Why::kPoll);
  EXPECT_EQ(plan(after(PassResult::kOk), 0.5).at, now_ + 126s);
  EXPECT_EQ(plan(after(PassResult::kOk), 0.999).at, now_ + 131988ms);
  // Out-of-range jitter is clamped: never shorter than the interval, never over +10 %.
  EXPECT_EQ(plan(after(PassResult::kOk), -3.0).at, now_ + 120s);
  EXPECT_EQ(plan(after(PassResult::kOk), 7.0).at, now_ + 132s);
  // Counted from when the pass ended, not from now.
  LastPass earlier{PassResult::kOk, 0, now_ - 100s};
  EXPECT_EQ(plan(earlier).at, now_ + 20s);
}

TEST_F(ScheduleTest, OtherErrorsWaitThePollInterval) {
  NextPass next = plan(after(PassResult::kOther));
  EXPECT_EQ(next.why, NextPass::Why::kPoll);
  EXPECT_EQ(next.at, now_ + 120s);
}

TEST_F(ScheduleTest, TransientErrorsBackOffExponentiallyUpToTheCap) {
  // Equal jitter with u = 0.999…: close to the ceiling; u = 0: half of it.
  EXPECT_EQ(backoff_delay(120s, 1, 0.0), 7500ms);   // 15 s ceiling
  EXPECT_EQ(backoff_delay(120s, 2, 0.0), 15s);      // 30 s
  EXPECT_EQ(backoff_delay(120s, 3, 0.0), 30s);      // 60 s
  EXPECT_EQ(backoff_delay(120s, 4, 0.0), 60s);      // 120 s
  EXPECT_EQ(backoff_delay(120s, 7, 0.0), 450s);     // 960 s > cap 900 s
  EXPECT_EQ(backoff_cap(120s), 900s);                // min(8·120 s, 15 min)
  EXPECT_EQ(backoff_delay(120s, 50, 0.0), 450s);    // stays at the cap
  EXPECT_GT(backoff_delay(120s, 50, 0.99), 890s);
  EXPECT_LE(backoff_delay(120s, 50, 0.99), 900s);
  // Never from zero: "after 0 failures" is taken as the first.
  EXPECT_EQ(backoff_delay(120s, 0, 0.0), 7500ms);
  NextPass next = plan(after(PassResult::kTransient, 3), 0.0);
  EXPECT_EQ(next.why, NextPass::Why::kBackoff);
  EXPECT_EQ(next.at, now_ + 30s);
}

TEST_F(ScheduleTest, BackoffCapFollowsThePollInterval) {
  EXPECT_EQ(backoff_cap(10s), 80s);                  // 8 · poll
  EXPECT_EQ(backoff_cap(1h), 1h);                    // never below the poll interval
  EXPECT_EQ(backoff_delay(10s, 1, 0.0), 5s);         // first retry: min(poll, 15 s)
  EXPECT_EQ(backoff_delay(1h, 1, 0.0), 7500ms);
}

TEST_F(ScheduleTest, FailureCountGrowsWithTransientErrorsAndASuccessResetsIt) {
  EXPECT_EQ(next_failure_count(0, PassResult::kTransient), 1);
  EXPECT_EQ(next_failure_count(4, PassResult::kTransient), 5);
  EXPECT_EQ(next_failure_count(4, PassResult::kOk), 0);
  EXPECT_EQ(next_failure_count(4, PassResult::kMore), 0);
  EXPECT_EQ(next_failure_count(4, PassResult::kOther), 0);
  EXPECT_EQ(next_failure_count(4, PassResult::kCancelled), 4);
}

TEST_F(ScheduleTest, ClassifiesPassOutcomes) {
  EXPECT_EQ(classify_pass(Status::Ok(), false), PassResult::kOk);
  EXPECT_EQ(classify_pass(Status::Ok(), true), PassResult::kMore);
  EXPECT_EQ(classify_pass(Status(ErrorKind::kNetwork, "reset"), false), PassResult::kTransient);
  EXPECT_EQ(classify_pass(Status(ErrorKind::kProtocol, "junk"), false), PassResult::kTransient);
  EXPECT_EQ(classify_pass(Status(ErrorKind::kTls, "cert"), false), PassResult::kTransient);
  EXPECT_EQ(classify_pass(Status(ErrorKind::kAuth, "no"), false), PassResult::kOther);
  EXPECT_EQ(classify_pass(Status(ErrorKind::kThrottled, "slow"), false), PassResult::kOther);
  EXPECT_EQ(classify_pass(Status(ErrorKind::kCancelled, "stop"), false),
            PassResult::kCancelled);
  EXPECT_EQ(classify_pass(Status(ErrorKind::kBusy, "database is locked"), false),
            PassResult::kTransient);
  EXPECT_EQ(classify_pass(Status(ErrorKind::kInternal, "disk full"), false), PassResult::kOther);
}

// A store held by other writers past the wait (kBusy) is retried within seconds on the
// backoff, not after a long poll interval like a lasting store error.
TEST_F(ScheduleTest, ABusyStoreIsRetriedSoonNotAfterThePollInterval) {
  mailbox_.poll_interval = 600s;
  const Status busy(ErrorKind::kBusy, "store x: no write turn within 30000 ms");
  const PassResult result = classify_pass(busy, false);
  NextPass next = plan({result, next_failure_count(0, result), now_}, 0.0);
  EXPECT_EQ(next.why, NextPass::Why::kBackoff);
  EXPECT_EQ(next.at, now_ + 7500ms);
  EXPECT_LE(plan({result, 1, now_}, 0.999).at, now_ + 15s);
  const PassResult other = classify_pass(Status(ErrorKind::kInternal, "disk full"), false);
  EXPECT_EQ(plan({other, next_failure_count(0, other), now_}, 0.0).at, now_ + 600s);
}

TEST_F(ScheduleTest, ThrottledUntilIsRespectedAndEndsWhenItPasses) {
  state_.throttled_until = format_utc(now_ + 10min);
  NextPass next = plan(after(PassResult::kMore));
  EXPECT_EQ(next.why, NextPass::Why::kThrottled);
  EXPECT_EQ(next.at, now_ + 10min);
  state_.throttled_until = format_utc(now_ - 1s);
  EXPECT_EQ(plan(after(PassResult::kMore)).why, NextPass::Why::kDue);
}

TEST_F(ScheduleTest, AuthFailedWaitsForTheProbeIntervalThenProbes) {
  state_.state = MailboxStatus::kAuthFailed;
  monitor_.auth_retry_interval = 1h;
  state_.last_run = format_utc(now_ - 20min);
  NextPass next = plan(after(PassResult::kOther));
  EXPECT_EQ(next.why, NextPass::Why::kPaused);
  EXPECT_EQ(next.at, now_ + 40min);
  // The pause outranks a throttle and `more`.
  state_.throttled_until = format_utc(now_ + 2h);
  EXPECT_EQ(plan(after(PassResult::kMore)).why, NextPass::Why::kPaused);
  state_.last_run = format_utc(now_ - 1h);
  next = plan(after(PassResult::kOther));
  EXPECT_EQ(next.why, NextPass::Why::kDue);
  EXPECT_EQ(next.at, now_);
}

TEST_F(ScheduleTest, NamesItsReasons) {
  EXPECT_STREQ(to_string(NextPass::Why::kBackoff), "backoff");
  EXPECT_STREQ(to_string(NextPass::Why::kPaused), "paused");
  EXPECT_STREQ(to_string(NextPass::Why::kPoll), "poll");
}

}  // namespace
}  // namespace mb
