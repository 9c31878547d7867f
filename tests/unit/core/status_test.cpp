// File: tests/unit/core/status_test.cpp
#include "core/status.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/status_matchers.h"

namespace mb {
namespace {
using ::mb::testing::IsOk;
using ::mb::testing::StatusIs;
using ::testing::HasSubstr;

TEST(StatusTest, DefaultIsOk) {
  Status s;
  EXPECT_TRUE(s.ok());
  EXPECT_THAT(s, IsOk());
  EXPECT_EQ(s.to_string(), "ok");
}

TEST(StatusTest, CarriesKindScopeAndMessage) {
  Status s(ErrorKind::kAuth, "LOGIN refused", ErrorScope::kMailbox);
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.scope(), ErrorScope::kMailbox);
  EXPECT_THAT(s, StatusIs(ErrorKind::kAuth, HasSubstr("refused")));
  EXPECT_EQ(s.to_string(), "auth: LOGIN refused");
}

TEST(StatusTest, PrefixedKeepsKindAndRetryAfter) {
  Status s = Status(ErrorKind::kThrottled, "slow down").with_retry_after(std::chrono::seconds(7));
  Status p = s.prefixed("Graph");
  EXPECT_THAT(p, StatusIs(ErrorKind::kThrottled, "Graph: slow down"));
  ASSERT_TRUE(p.retry_after().has_value());
  EXPECT_EQ(p.retry_after()->count(), 7);
}

TEST(ResultTest, HoldsValueOrStatus) {
  Result<int> good(42);
  ASSERT_THAT(good, IsOk());
  EXPECT_EQ(*good, 42);
  Result<int> bad(Status(ErrorKind::kNotFound, "no such folder"));
  EXPECT_THAT(bad, StatusIs(ErrorKind::kNotFound, HasSubstr("folder")));
}

TEST(ResultTest, BuiltFromAnOkStatusIsAnInternalErrorNotOk) {
  Result<int> r(Status::Ok());
  EXPECT_FALSE(r.ok());
  EXPECT_THAT(r, StatusIs(ErrorKind::kInternal, HasSubstr("OK Status without a value")));
  Result<std::string> from_default{Status()};
  EXPECT_THAT(from_default, StatusIs(ErrorKind::kInternal, HasSubstr("without a value")));
}

Status fails_then_returns() {
  MB_RETURN_IF_ERROR(Status(ErrorKind::kNetwork, "reset"));
  return Status(ErrorKind::kInternal, "not reached");
}

TEST(StatusTest, ReturnIfErrorReturnsFirstError) {
  EXPECT_THAT(fails_then_returns(), StatusIs(ErrorKind::kNetwork, "reset"));
}

}  // namespace
}  // namespace mb
