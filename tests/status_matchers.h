// File: tests/status_matchers.h — GoogleTest matchers for Status and Result<T>.
//
//   EXPECT_THAT(s, IsOk());
//   EXPECT_THAT(r, StatusIs(mb::ErrorKind::kAuth, HasSubstr("password")));
// There is deliberately no "is an error" matcher: name the kind you expect.
#pragma once

#include <gmock/gmock.h>

#include "core/status.h"

namespace mb::testing {

inline const Status& get_status(const Status& s) { return s; }
template <typename T>
const Status& get_status(const Result<T>& r) { return r.status(); }

MATCHER(IsOk, "is OK") {
  const auto& s = ::mb::testing::get_status(arg);
  if (!s.ok()) *result_listener << "status is " << s.to_string();
  return s.ok();
}

MATCHER_P2(StatusIs, kind, message_matcher,
           std::string("has kind ") + ::mb::to_string(kind)) {
  const auto& s = ::mb::testing::get_status(arg);
  *result_listener << "status is " << s.to_string();
  return s.kind() == kind &&
         ::testing::Matches(message_matcher)(s.message());
}

}  // namespace mb::testing
