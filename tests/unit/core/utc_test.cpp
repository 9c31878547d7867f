// File: tests/unit/core/utc_test.cpp — ISO 8601 UTC text (core/utc.h).
#include "core/utc.h"

#include <gtest/gtest.h>

#include <chrono>

namespace mb {
namespace {

using std::chrono::system_clock;
using namespace std::chrono_literals;

TEST(UtcTest, FormatsTheEpochAndDropsFractions) {
  EXPECT_EQ(format_utc(system_clock::time_point{}), "1970-01-01T00:00:00Z");
  EXPECT_EQ(format_utc(system_clock::time_point{} + 86400s + 999ms), "1970-01-02T00:00:00Z");
}

TEST(UtcTest, ParsesWhatItFormats) {
  auto t = parse_utc("2026-11-23T10:00:00Z");
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(format_utc(*t), "2026-11-23T10:00:00Z");
  EXPECT_EQ(format_utc(*t + 14h), "2026-11-24T00:00:00Z");
  // Leap day.
  auto leap = parse_utc("2028-02-28T23:59:59Z");
  ASSERT_TRUE(leap.has_value());
  EXPECT_EQ(format_utc(*leap + 1s), "2028-02-29T00:00:00Z");
}

TEST(UtcTest, RefusesOtherForms) {
  EXPECT_FALSE(parse_utc("").has_value());
  EXPECT_FALSE(parse_utc("2026-11-23 10:00:00").has_value());
  EXPECT_FALSE(parse_utc("2026-11-23T10:00:00Z ").has_value());
  EXPECT_FALSE(parse_utc("2026-11-23").has_value());
}

TEST(UtcTest, NowIsTheSystemClockInThatForm) {
  const auto before = std::chrono::floor<std::chrono::seconds>(system_clock::now());
  auto now = parse_utc(now_iso8601());
  const auto after = system_clock::now();
  ASSERT_TRUE(now.has_value());
  EXPECT_GE(*now, before);
  EXPECT_LE(*now, after);
}

}  // namespace
}  // namespace mb
