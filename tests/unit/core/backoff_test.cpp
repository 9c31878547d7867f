// File: tests/unit/core/backoff_test.cpp — Retry-After, backoff with jitter and retry budgets
// (core/backoff.h), with the numbers of its three users: OAuth (full jitter, 500 ms up to
// 8 s), Graph (equal jitter, 1 s up to 30 s) and the outbox (equal jitter, in seconds).
#include "core/backoff.h"

#include <gtest/gtest.h>

#include <chrono>
#include <limits>
#include <optional>
#include <string>

namespace mb {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

TEST(RetryAfterTest, ReadsDeltaSecondsOnly) {
  EXPECT_EQ(parse_retry_after(std::string("0")), seconds(0));
  EXPECT_EQ(parse_retry_after(std::string("120")), seconds(120));
  EXPECT_EQ(parse_retry_after(std::string("999999999")), seconds(999999999));
  EXPECT_EQ(parse_retry_after(std::nullopt), std::nullopt);
  EXPECT_EQ(parse_retry_after(std::string("")), std::nullopt);
  EXPECT_EQ(parse_retry_after(std::string("1000000000")), std::nullopt);  // 10 digits
  EXPECT_EQ(parse_retry_after(std::string("-1")), std::nullopt);
  EXPECT_EQ(parse_retry_after(std::string(" 5")), std::nullopt);
  EXPECT_EQ(parse_retry_after(std::string("1.5")), std::nullopt);
  EXPECT_EQ(parse_retry_after(std::string("Wed, 21 Oct 2015 07:28:00 GMT")), std::nullopt);
}

TEST(BackoffTest, CeilingDoublesUpToTheCap) {
  EXPECT_EQ(backoff_ceiling(500, 8000, 0), 500);
  EXPECT_EQ(backoff_ceiling(500, 8000, 1), 1000);
  EXPECT_EQ(backoff_ceiling(500, 8000, 4), 8000);
  EXPECT_EQ(backoff_ceiling(500, 8000, 5), 8000);
  EXPECT_EQ(backoff_ceiling(60, 3600, 6), 3600);  // 3840 capped
  EXPECT_EQ(backoff_ceiling(5000, 1000, 0), 1000);  // an initial above the cap is capped
  EXPECT_EQ(backoff_ceiling(0, 1000, 3), 0);
  EXPECT_EQ(backoff_ceiling(-5, 1000, 3), 0);
  EXPECT_EQ(backoff_ceiling(100, -1, 3), 0);
  EXPECT_EQ(backoff_ceiling(100, 1000, -1), 100);
}

TEST(BackoffTest, CeilingNeverOverflows) {
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  EXPECT_EQ(backoff_ceiling(3, kMax, 1000), kMax);
  EXPECT_EQ(backoff_ceiling(kMax / 2 + 1, kMax, 1), kMax);
  EXPECT_EQ(backoff_ceiling(1, kMax, 62), int64_t{1} << 62);
}

TEST(BackoffTest, FullJitterSpansZeroToTheCeiling) {
  EXPECT_EQ(apply_jitter(1000, Jitter::kFull, 0.0), 0);
  EXPECT_EQ(apply_jitter(1000, Jitter::kFull, 0.5), 500);
  EXPECT_EQ(apply_jitter(1000, Jitter::kFull, 0.9999), 999);
  EXPECT_EQ(apply_jitter(1000, Jitter::kFull, 1.0), 1000);
  EXPECT_EQ(apply_jitter(1000, Jitter::kFull, 7.0), 1000);   // clamped
  EXPECT_EQ(apply_jitter(1000, Jitter::kFull, -1.0), 0);     // clamped
  EXPECT_EQ(apply_jitter(0, Jitter::kFull, 0.5), 0);
}

TEST(BackoffTest, EqualJitterKeepsAtLeastHalf) {
  EXPECT_EQ(apply_jitter(60, Jitter::kEqual, 0.0), 30);
  EXPECT_EQ(apply_jitter(60, Jitter::kEqual, 0.999), 59);
  EXPECT_EQ(apply_jitter(240, Jitter::kEqual, 0.5), 180);
  EXPECT_EQ(apply_jitter(61, Jitter::kEqual, 0.0), 31);  // the odd half goes to the fixed part
  EXPECT_EQ(apply_jitter(61, Jitter::kEqual, 1.0), 61);
  EXPECT_EQ(apply_jitter(1, Jitter::kEqual, 0.7), 1);
}

TEST(BackoffTest, UnitIntervalCoversZeroToAlmostOne) {
  EXPECT_EQ(unit_interval(0), 0.0);
  EXPECT_LT(unit_interval(std::numeric_limits<uint64_t>::max()), 1.0);
  EXPECT_GT(unit_interval(std::numeric_limits<uint64_t>::max()), 0.999999);
  EXPECT_DOUBLE_EQ(unit_interval(uint64_t{1} << 63), 0.5);
}

TEST(BackoffTest, TypedBackoffKeepsTheCallersUnit) {
  // Graph: 1 s doubling to 30 s, equal jitter.
  const Backoff<milliseconds> graph{seconds(1), seconds(30), Jitter::kEqual};
  EXPECT_EQ(graph.ceiling(0), milliseconds(1000));
  EXPECT_EQ(graph.ceiling(5), milliseconds(30000));
  EXPECT_EQ(graph.delay(2, 0.0), milliseconds(2000));
  EXPECT_EQ(graph.delay(2, 1.0), milliseconds(4000));
  // The outbox: in whole seconds, as its schedule is written.
  const Backoff<seconds> outbox{seconds(60), seconds(3600), Jitter::kEqual};
  EXPECT_EQ(outbox.delay(0, 0.999), seconds(59));
  EXPECT_EQ(outbox.delay(6, 0.0), seconds(1800));
  // OAuth: full jitter within [0, min(cap, base·2^attempt)].
  const Backoff<milliseconds> oauth{milliseconds(100), milliseconds(1000), Jitter::kFull};
  for (int attempt = 0; attempt < 8; ++attempt) {
    EXPECT_LE(oauth.delay(attempt, 0.999999), oauth.ceiling(attempt)) << attempt;
    EXPECT_EQ(oauth.delay(attempt, 0.0), milliseconds(0)) << attempt;
  }
}

TEST(RetryBudgetTest, CountsAttempts) {
  const RetryBudget budget{.max_attempts = 3};
  EXPECT_TRUE(budget.allows(1, milliseconds(0), milliseconds(0)));
  EXPECT_TRUE(budget.allows(2, seconds(1000), seconds(1000)));
  EXPECT_FALSE(budget.allows(3, milliseconds(0), milliseconds(0)));
  EXPECT_FALSE(RetryBudget{}.allows(1, milliseconds(0), milliseconds(0)));  // one attempt only
}

TEST(RetryBudgetTest, RefusesASingleWaitAboveMaxWait) {
  // OAuth: a Retry-After longer than the backoff cap ends the loop.
  const RetryBudget budget{.max_attempts = 4, .max_wait = seconds(8)};
  EXPECT_TRUE(budget.allows(1, milliseconds(0), seconds(8)));
  EXPECT_FALSE(budget.allows(1, milliseconds(0), seconds(9)));
}

TEST(RetryBudgetTest, RefusesWaitsBeyondTheTotal) {
  // Graph: at most max_retry_wait spent waiting on one request.
  const RetryBudget budget{.max_attempts = 8, .max_total_wait = seconds(120)};
  EXPECT_TRUE(budget.allows(1, seconds(70), seconds(50)));
  EXPECT_FALSE(budget.allows(1, seconds(70), seconds(51)));
  EXPECT_FALSE(budget.allows(1, milliseconds(0), seconds(121)));
}

TEST(RetryBudgetTest, UnlimitedWaitsDoNotOverflow) {
  const RetryBudget budget{.max_attempts = 8};
  const milliseconds huge = RetryBudget::kUnlimited - milliseconds(1);
  EXPECT_TRUE(budget.allows(1, huge, huge));
  const RetryBudget total{.max_attempts = 8, .max_total_wait = seconds(120)};
  EXPECT_FALSE(total.allows(1, seconds(1), huge));
  EXPECT_FALSE(total.allows(1, huge, seconds(1)));
}

}  // namespace
}  // namespace mb
