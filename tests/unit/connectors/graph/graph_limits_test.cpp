// File: tests/unit/connectors/graph/graph_limits_test.cpp — Microsoft's limits and errors:
// Retry-After, backoff with jitter, the retry budget, MailboxConcurrency, 401 → one retry
// with a fresh token, access denied naming the permission or the access policy, Graph's
// error body in the Status and the log, and no token anywhere in either.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <optional>
#include <thread>

#include "connectors/graph/graph_client.h"
#include "core/cancel.h"
#include "graph_fake.h"
#include "tests/status_matchers.h"

namespace mb::testing {
namespace {

using json = nlohmann::json;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;
using std::chrono::milliseconds;
using std::chrono::seconds;

class GraphLimitsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    graph_ = std::make_shared<FakeGraph>();
    tokens_ = std::make_shared<FakeTokens>();
    sleeps_ = std::make_shared<Sleeps>();
  }
  std::unique_ptr<graph::GraphClient> client(GraphTuning tuning) {
    return std::make_unique<graph::GraphClient>(kService, "support@contoso.com",
                                                "mailbox support", fake_sign_in(tokens_),
                                                std::make_unique<FakeHttp>(graph_),
                                                std::move(tuning), 4);
  }
  std::unique_ptr<graph::GraphClient> client() { return client(fake_tuning(sleeps_)); }
  // Answers `script` in turn, then 200.
  void script(std::vector<HttpResponse> answers) {
    auto queue = std::make_shared<std::vector<HttpResponse>>(std::move(answers));
    auto next = std::make_shared<size_t>(0);
    graph_->handler = [queue, next](const HttpRequest&) {
      if (*next < queue->size()) return (*queue)[(*next)++];
      return json_response(200, {{"ok", true}});
    };
  }
  Result<HttpResponse> get(graph::GraphClient& c) {
    return c.call({.target = "/users/support%40contoso.com/mailFolders/inbox",
                   .what = "GET inbox"});
  }

  std::shared_ptr<FakeGraph> graph_;
  std::shared_ptr<FakeTokens> tokens_;
  std::shared_ptr<Sleeps> sleeps_;
};

// Without an injected sleep, a throttling wait (Retry-After: 60) ends at once when the
// thread's Cancel fires — a stop or reload never waits out Graph's Retry-After.
TEST_F(GraphLimitsTest, ThrottlingWaitEndsAtOnceWhenCancelled) {
  std::atomic<int> requests{0};
  graph_->handler = [&](const HttpRequest&) {
    ++requests;
    return graph_error(429, "TooManyRequests", "slow down", {{"Retry-After", "60"}});
  };
  GraphTuning tuning;  // the real, cancellable sleep
  tuning.random = [] { return uint64_t{0}; };
  auto c = client(std::move(tuning));
  Cancel cancel;
  std::optional<Result<HttpResponse>> got;
  auto started = std::chrono::steady_clock::now();
  std::thread caller([&] {
    CancelScope scope(&cancel);
    got = get(*c);
  });
  auto deadline = std::chrono::steady_clock::now() + seconds(10);
  while (requests.load() == 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(1));
  }
  ASSERT_EQ(requests.load(), 1);
  cancel.fire();
  caller.join();
  ASSERT_TRUE(got.has_value());
  EXPECT_THAT(*got, StatusIs(ErrorKind::kCancelled, HasSubstr("waiting out throttling")));
  EXPECT_EQ(requests.load(), 1);
  EXPECT_LT(std::chrono::steady_clock::now() - started, seconds(10));
}

TEST_F(GraphLimitsTest, RetriesAfterRetryAfterFor429And503And504) {
  script({graph_error(429, "TooManyRequests", "slow down", {{"Retry-After", "7"}}),
          graph_error(503, "ServiceUnavailable", "busy", {{"Retry-After", "3"}}),
          graph_error(504, "GatewayTimeout", "timeout", {{"Retry-After", "2"}})});
  auto c = client();
  auto r = get(*c);
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(sleeps_->waits, (std::vector<milliseconds>{seconds(7), seconds(3), seconds(2)}));
  EXPECT_EQ(graph_->snapshot().size(), 4u);
}

// A 504 may come after Graph acted: a POST that may not be repeated gets the answer back
// (its caller judges it); one declared repeatable (a move) goes again. 429 and 503 were
// refused before Graph acted: any call goes again.
TEST_F(GraphLimitsTest, A504IsRepeatedOnlyForACallThatMayBeRepeated) {
  auto c = client();
  auto post = [&](std::optional<bool> repeatable) {
    return c->call({.method = "POST",
                    .target = "/users/support%40contoso.com/messages/m1/move",
                    .body = "{}",
                    .content_type = "application/json",
                    .what = "move",
                    .repeatable = repeatable});
  };
  script({graph_error(504, "GatewayTimeout", "timeout", {{"Retry-After", "2"}})});
  auto once = post(std::nullopt);
  ASSERT_THAT(once, IsOk());
  EXPECT_EQ(once->status, 504);
  EXPECT_EQ(graph_->snapshot().size(), 1u);
  script({graph_error(504, "GatewayTimeout", "timeout", {{"Retry-After", "2"}})});
  auto again = post(true);
  ASSERT_THAT(again, IsOk());
  EXPECT_EQ(again->status, 200);
  EXPECT_EQ(graph_->snapshot().size(), 3u);
  script({graph_error(429, "TooManyRequests", "slow", {{"Retry-After", "1"}}),
          graph_error(503, "serviceNotAvailable", "busy", {{"Retry-After", "1"}})});
  auto throttled = post(false);
  ASSERT_THAT(throttled, IsOk());
  EXPECT_EQ(throttled->status, 200);
  EXPECT_EQ(graph_->snapshot().size(), 6u);
}

TEST_F(GraphLimitsTest, BacksOffExponentiallyWithJitterWithoutRetryAfter) {
  script({graph_error(503, "ServiceUnavailable", "busy"), graph_error(503, "x", "busy"),
          graph_error(503, "x", "busy")});
  GraphTuning t = fake_tuning(sleeps_);
  uint64_t n = 0;
  t.random = [&n] { return n += 137; };
  auto c = client(t);
  ASSERT_THAT(get(*c), IsOk());
  ASSERT_EQ(sleeps_->waits.size(), 3u);
  // Attempt k waits between half and all of 2^k seconds.
  for (size_t k = 0; k < 3; ++k) {
    const auto full = milliseconds(1000 << k);
    EXPECT_GE(sleeps_->waits[k], full / 2) << k;
    EXPECT_LE(sleeps_->waits[k], full) << k;
  }
  EXPECT_LT(sleeps_->waits[0], sleeps_->waits[2]);
}

TEST_F(GraphLimitsTest, GivesUpWithKThrottledAndRetryAfterOnceTheBudgetIsSpent) {
  graph_->handler = [](const HttpRequest&) {
    return graph_error(429, "TooManyRequests", "Application is over its limit",
                       {{"Retry-After", "50"}});
  };
  GraphTuning t = fake_tuning(sleeps_);
  t.max_retry_wait = seconds(120);
  auto c = client(t);
  auto r = get(*c);
  ASSERT_THAT(r, StatusIs(ErrorKind::kThrottled,
                          AllOf(HasSubstr("GET inbox"), HasSubstr("TooManyRequests"),
                                HasSubstr("retry after 50 s"))));
  ASSERT_TRUE(r.status().retry_after().has_value());
  EXPECT_EQ(*r.status().retry_after(), seconds(50));
  EXPECT_EQ(r.status().scope(), ErrorScope::kMailbox);
  EXPECT_EQ(sleeps_->waits, (std::vector<milliseconds>{seconds(50), seconds(50)}));
}

TEST_F(GraphLimitsTest, MailboxConcurrencyLowersTheLimitButNotBelowOne) {
  const auto concurrency = graph_error(429, "ApplicationThrottled",
                                       "Application is over its MailboxConcurrency limit.",
                                       {{"Retry-After", "1"}});
  script({concurrency, concurrency, concurrency, concurrency, concurrency});
  auto c = client();
  EXPECT_EQ(c->concurrency(), 4u);
  ASSERT_THAT(get(*c), IsOk());
  EXPECT_EQ(c->concurrency(), 1u);
  script({graph_error(429, "TooManyRequests", "other limit", {{"Retry-After", "1"}})});
  auto other = client();
  ASSERT_THAT(get(*other), IsOk());
  EXPECT_EQ(other->concurrency(), 4u);
}

TEST_F(GraphLimitsTest, A401InvalidatesTheTokenAndRetriesOnceWithAFreshOne) {
  script({graph_error(401, "InvalidAuthenticationToken", "Access token has expired.")});
  auto c = client();
  ASSERT_THAT(get(*c), IsOk());
  EXPECT_EQ(tokens_->invalidations, 1);
  auto reqs = graph_->snapshot();
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_EQ(header_of(reqs[0], "Authorization"), "Bearer " + kToken1);
  EXPECT_EQ(header_of(reqs[1], "Authorization"), "Bearer " + kToken2);
}

TEST_F(GraphLimitsTest, ASecond401IsAnAuthFailureWithoutTheToken) {
  LogCapture log;
  graph_->handler = [](const HttpRequest&) {
    return graph_error(401, "InvalidAuthenticationToken", "Access token validation failure.");
  };
  auto c = client();
  auto r = get(*c);
  ASSERT_THAT(r, StatusIs(ErrorKind::kAuth, HasSubstr("InvalidAuthenticationToken")));
  EXPECT_EQ(graph_->snapshot().size(), 2u);
  for (const std::string& secret : {kToken1, kToken2}) {
    EXPECT_THAT(r.status().message(), Not(HasSubstr(secret)));
    EXPECT_THAT(log.text(), Not(HasSubstr(secret)));
  }
  EXPECT_THAT(log.text(), HasSubstr("9f2c7a3e-req"));
}

TEST_F(GraphLimitsTest, AccessDeniedNamesThePermission) {
  graph_->handler = [](const HttpRequest&) {
    return graph_error(403, "ErrorAccessDenied",
                       "Access is denied. Check credentials and try again.");
  };
  auto c = client();
  auto read = get(*c);
  EXPECT_THAT(read, StatusIs(ErrorKind::kAuth, AllOf(HasSubstr("Mail.ReadWrite"),
                                                     HasSubstr("ErrorAccessDenied"))));
  auto send = c->call({.method = "POST", .target = "/users/x/sendMail", .body = "x",
                       .content_type = "text/plain", .permission = graph::Permission::kSend,
                       .what = "sendMail"});
  EXPECT_THAT(send, StatusIs(ErrorKind::kAuth, HasSubstr("Mail.Send")));
  graph_->handler = [](const HttpRequest&) {
    return graph_error(403, "Authorization_RequestDenied",
                       "Insufficient privileges to complete the operation.");
  };
  EXPECT_THAT(get(*c), StatusIs(ErrorKind::kAuth, HasSubstr("Mail.ReadWrite")));
}

TEST_F(GraphLimitsTest, ApplicationAccessPolicyDenialNamesThePolicy) {
  graph_->handler = [](const HttpRequest&) {
    return graph_error(403, "ErrorAccessDenied",
                       "Access to OData is disabled: [RAOP] : Blocked by tenant configured "
                       "AppOnly AccessPolicy settings.");
  };
  auto c = client();
  EXPECT_THAT(get(*c), StatusIs(ErrorKind::kAuth, AllOf(HasSubstr("New-ApplicationAccessPolicy"),
                                                        HasSubstr("support@contoso.com"),
                                                        Not(HasSubstr("Mail.ReadWrite")))));
}

TEST_F(GraphLimitsTest, GraphErrorBodyIsKeptInTheStatusAndTheLog) {
  LogCapture log;
  graph_->handler = [](const HttpRequest&) {
    return graph_error(400, "ErrorInvalidIdMalformed", "Id is malformed.");
  };
  auto c = client();
  auto r = get(*c);
  ASSERT_THAT(r, IsOk());
  Status s = c->error_status(*r, "GET inbox");
  EXPECT_THAT(s, StatusIs(ErrorKind::kRejected,
                          AllOf(HasSubstr("HTTP 400 ErrorInvalidIdMalformed: Id is malformed."),
                                HasSubstr("request-id 9f2c7a3e-req"),
                                HasSubstr("client-request-id c0ffee00-cli"),
                                HasSubstr("date 2026-11-23T12:00:00"))));
  EXPECT_THAT(log.text(), AllOf(HasSubstr("ErrorInvalidIdMalformed"), HasSubstr("9f2c7a3e-req")));
}

TEST_F(GraphLimitsTest, EveryRequestCarriesAClientRequestIdAndImmutableIds) {
  GraphTuning t = fake_tuning(sleeps_);
  t.random = [n = uint64_t{0}]() mutable { return n += 0x9E3779B97F4A7C15ULL; };
  auto c = client(t);
  script({});
  ASSERT_THAT(get(*c), IsOk());
  ASSERT_THAT(get(*c), IsOk());
  auto reqs = graph_->snapshot();
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_NE(header_of(reqs[0], "client-request-id"), header_of(reqs[1], "client-request-id"));
  EXPECT_EQ(header_of(reqs[0], "Prefer"), "IdType=\"ImmutableId\"");
  EXPECT_EQ(reqs[0].url, kApi + "/users/support%40contoso.com/mailFolders/inbox");
}

}  // namespace
}  // namespace mb::testing
