// File: tests/unit/auth/token_cache_test.cpp — TokenCache against a scripted TokenSource and
// an injected clock: hits without I/O, the refresh margin and refresh_in, single flight per
// key, failures shared with waiters, the 401 retry, rotation saved before use, and which
// errors end a grant. Threads meet on conditions (the source's gate, describe()'s waiter
// count), never on sleeps.
#include "auth/token_cache.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <atomic>
#include <deque>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

#include "tests/status_matchers.h"

namespace mb {
namespace {

namespace fs = std::filesystem;
using ::mb::testing::IsOk;
using ::mb::testing::StatusIs;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;
using std::chrono::seconds;

class FakeClock {
 public:
  std::chrono::system_clock::time_point now() const {
    return std::chrono::system_clock::time_point(seconds(secs_.load()));
  }
  void advance(seconds s) { secs_ += s.count(); }
  WallClock fn() {
    return [this] { return now(); };
  }

 private:
  std::atomic<int64_t> secs_{1'800'000'000};
};

// Counts calls, records the refresh token each got, can hold callers at a gate until
// released, fail with queued errors, and rotate refresh tokens.
class FakeSource : public TokenSource {
 public:
  Result<TokenResponse> acquire(const TokenKey& key,
                                const std::optional<std::string>& refresh_token) override {
    std::unique_lock lk(mu_);
    ++calls;
    refresh_tokens_seen.push_back(refresh_token.value_or("<none>"));
    ++inside_;
    cv_.notify_all();
    cv_.wait(lk, [&] { return !gated_apps_.count(key.app); });
    --inside_;
    if (!errors.empty()) {
      Status st = errors.front();
      errors.pop_front();
      return st;
    }
    int n = ++issued_;
    TokenResponse t;
    t.access_token = "AT-" + key.app + "-" + std::to_string(n);
    t.expires_in = expires_in;
    t.refresh_in = refresh_in;
    if (rotate) t.refresh_token = "RT-" + std::to_string(n);
    t.scope = key.scope;
    return t;
  }

  void gate(const std::string& app) {
    std::lock_guard lk(mu_);
    gated_apps_.insert(app);
  }
  void release(const std::string& app) {
    std::lock_guard lk(mu_);
    gated_apps_.erase(app);
    cv_.notify_all();
  }
  // Waits until `n` callers are inside acquire().
  void await_inside(int n) {
    std::unique_lock lk(mu_);
    cv_.wait(lk, [&] { return inside_ >= n; });
  }

  std::atomic<int> calls{0};
  std::vector<std::string> refresh_tokens_seen;
  std::deque<Status> errors;
  seconds expires_in{3600};
  std::optional<seconds> refresh_in;
  bool rotate = false;

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::set<std::string> gated_apps_;
  int inside_ = 0;
  int issued_ = 0;
};

// A real store that can be told to fail its saves.
class FlakyStore : public TokenStore {
 public:
  using TokenStore::TokenStore;
  Status save(const TokenKey& key, const std::string& refresh_token) override {
    if (fail_saves) return Status(ErrorKind::kInternal, "token store: disk full (simulated)");
    return TokenStore::save(key, refresh_token);
  }
  bool fail_saves = false;
};

// Waits (bounded) until describe() shows `n` callers waiting on `key`'s flight.
void await_waiters(const TokenCache& cache, const TokenKey& key, size_t n) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  for (;;) {
    for (const auto& s : cache.describe()) {
      if (s.key == key.to_string() && s.waiters >= n) return;
    }
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "waiters never reached " << n;
    std::this_thread::yield();
  }
}

class TokenCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/mb_token_cache_XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    AesKey k{};
    for (size_t i = 0; i < k.size(); ++i) k[i] = static_cast<uint8_t>(i * 7);
    store_ = std::make_unique<FlakyStore>(dir_, k);
  }
  void TearDown() override { fs::remove_all(dir_); }

  FakeClock clock_;
  FakeSource source_;
  std::string dir_;
  std::unique_ptr<FlakyStore> store_;
  TokenKey key_{"contoso", "https://outlook.office365.com/.default", "support@contoso.com"};
};

TEST_F(TokenCacheTest, CachedTokenCostsNoRequest) {
  TokenCache cache(source_, nullptr, clock_.fn());
  auto a = cache.token(key_);
  auto b = cache.token(key_);
  ASSERT_THAT(a, IsOk());
  ASSERT_THAT(b, IsOk());
  EXPECT_EQ(*a, *b);
  EXPECT_EQ(source_.calls, 1);
}

TEST_F(TokenCacheTest, RefreshesFiveMinutesBeforeExpiry) {
  TokenCache cache(source_, nullptr, clock_.fn());
  auto first = cache.token(key_);
  ASSERT_THAT(first, IsOk());
  clock_.advance(seconds(3600 - 301));
  EXPECT_EQ(cache.token(key_).value(), *first);
  EXPECT_EQ(source_.calls, 1);
  clock_.advance(seconds(2));  // 299 s before expiry: inside the margin
  auto second = cache.token(key_);
  ASSERT_THAT(second, IsOk());
  EXPECT_NE(*second, *first);
  EXPECT_EQ(source_.calls, 2);
}

TEST_F(TokenCacheTest, ShortLivedTokensRefreshAtHalfLife) {
  source_.expires_in = seconds(60);
  TokenCache cache(source_, nullptr, clock_.fn());
  ASSERT_THAT(cache.token(key_), IsOk());
  clock_.advance(seconds(29));
  ASSERT_THAT(cache.token(key_), IsOk());
  EXPECT_EQ(source_.calls, 1);
  clock_.advance(seconds(2));
  ASSERT_THAT(cache.token(key_), IsOk());
  EXPECT_EQ(source_.calls, 2);
}

TEST_F(TokenCacheTest, RefreshInOverridesTheMargin) {
  source_.refresh_in = seconds(600);
  TokenCache cache(source_, nullptr, clock_.fn());
  ASSERT_THAT(cache.token(key_), IsOk());
  clock_.advance(seconds(599));
  ASSERT_THAT(cache.token(key_), IsOk());
  EXPECT_EQ(source_.calls, 1);
  clock_.advance(seconds(2));
  ASSERT_THAT(cache.token(key_), IsOk());
  EXPECT_EQ(source_.calls, 2);
  auto states = cache.describe();
  ASSERT_EQ(states.size(), 1u);
  EXPECT_EQ(states[0].refresh_at, clock_.now() + seconds(600));
  EXPECT_EQ(states[0].expires_at, clock_.now() + seconds(3600));
}

TEST_F(TokenCacheTest, ColdKeyUnderManyCallersMakesOneRequest) {
  TokenCache cache(source_, nullptr, clock_.fn());
  source_.gate("contoso");
  constexpr int kThreads = 32;
  std::vector<Result<std::string>> results(kThreads, Status(ErrorKind::kInternal, "unset"));
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] { results[i] = cache.token(key_); });
  }
  source_.await_inside(1);
  await_waiters(cache, key_, kThreads - 1);
  source_.release("contoso");
  for (auto& t : threads) t.join();
  EXPECT_EQ(source_.calls, 1);
  for (const auto& r : results) {
    ASSERT_THAT(r, IsOk());
    EXPECT_EQ(*r, "AT-contoso-1");
  }
}

TEST_F(TokenCacheTest, DifferentKeysDoNotWaitForEachOther) {
  TokenCache cache(source_, nullptr, clock_.fn());
  source_.gate("slow");
  TokenKey slow{"slow", key_.scope, key_.user};
  Result<std::string> slow_result = Status(ErrorKind::kInternal, "unset");
  std::thread t([&] { slow_result = cache.token(slow); });
  source_.await_inside(1);
  auto fast = cache.token(key_);  // would hang here if keys shared a flight
  ASSERT_THAT(fast, IsOk());
  EXPECT_EQ(*fast, "AT-contoso-1");
  source_.release("slow");
  t.join();
  ASSERT_THAT(slow_result, IsOk());
  EXPECT_EQ(source_.calls, 2);
}

TEST_F(TokenCacheTest, FailureReachesEveryWaiterAndALaterCallTriesAgain) {
  TokenCache cache(source_, nullptr, clock_.fn());
  source_.errors.push_back(Status(ErrorKind::kNetwork, "token endpoint: connection refused"));
  source_.gate("contoso");
  constexpr int kThreads = 8;
  std::vector<Result<std::string>> results(kThreads, Status(ErrorKind::kInternal, "unset"));
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] { results[i] = cache.token(key_); });
  }
  source_.await_inside(1);
  await_waiters(cache, key_, kThreads - 1);
  source_.release("contoso");
  for (auto& t : threads) t.join();
  for (const auto& r : results) {
    EXPECT_THAT(r, StatusIs(ErrorKind::kNetwork, HasSubstr("connection refused")));
  }
  EXPECT_EQ(source_.calls, 1);
  // Within the backoff the error is answered without a request; after it, a new attempt.
  EXPECT_THAT(cache.token(key_), StatusIs(ErrorKind::kNetwork, HasSubstr("connection refused")));
  EXPECT_EQ(source_.calls, 1);
  clock_.advance(seconds(3));
  EXPECT_THAT(cache.token(key_), IsOk());
  EXPECT_EQ(source_.calls, 2);
}

TEST_F(TokenCacheTest, NonTransientFailureIsRetriedByTheNextCall) {
  TokenCache cache(source_, nullptr, clock_.fn());
  source_.errors.push_back(Status(ErrorKind::kProtocol, "token endpoint: unparsable JSON"));
  EXPECT_THAT(cache.token(key_), StatusIs(ErrorKind::kProtocol, HasSubstr("unparsable")));
  EXPECT_THAT(cache.token(key_), IsOk());
  EXPECT_EQ(source_.calls, 2);
  auto states = cache.describe();
  ASSERT_EQ(states.size(), 1u);
  EXPECT_EQ(states[0].failures, 1u);
  EXPECT_EQ(states[0].refreshes, 1u);
  EXPECT_EQ(states[0].last_error, "");
}

TEST_F(TokenCacheTest, EarlyRefreshServesTheValidTokenToOthersAndSurvivesFailure) {
  TokenCache cache(source_, nullptr, clock_.fn());
  auto old = cache.token(key_);
  ASSERT_THAT(old, IsOk());
  clock_.advance(seconds(3600 - 100));  // inside the margin, still valid
  source_.gate("contoso");
  source_.errors.push_back(Status(ErrorKind::kThrottled, "token endpoint: 429"));
  Result<std::string> refresher = Status(ErrorKind::kInternal, "unset");
  std::thread t([&] { refresher = cache.token(key_); });
  source_.await_inside(1);
  EXPECT_EQ(cache.token(key_).value(), *old) << "no waiting while the old token is valid";
  source_.release("contoso");
  t.join();
  ASSERT_THAT(refresher, IsOk());
  EXPECT_EQ(*refresher, *old) << "a failed early refresh keeps the still-valid token";
  EXPECT_EQ(cache.token(key_).value(), *old);
  EXPECT_EQ(source_.calls, 2) << "backoff: no new attempt right away";
  clock_.advance(seconds(3));
  EXPECT_NE(cache.token(key_).value(), *old);
  EXPECT_EQ(source_.calls, 3);
  auto states = cache.describe();
  EXPECT_THAT(states[0].last_error, "");
}

TEST_F(TokenCacheTest, WithTokenInvalidatesARejectedTokenAndRetriesOnce) {
  TokenCache cache(source_, nullptr, clock_.fn());
  std::vector<std::string> used;
  Status st = cache.with_token(key_, [&](const std::string& token) {
    used.push_back(token);
    return used.size() == 1 ? token_rejected_status("status 401") : Status::Ok();
  });
  EXPECT_THAT(st, IsOk());
  ASSERT_EQ(used.size(), 2u);
  EXPECT_NE(used[0], used[1]);
  EXPECT_EQ(source_.calls, 2);

  used.clear();
  st = cache.with_token(key_, [&](const std::string& token) {
    used.push_back(token);
    return token_rejected_status("status 401, scope https://outlook.office365.com/.default");
  });
  EXPECT_THAT(st, StatusIs(ErrorKind::kAuth, HasSubstr("token rejected")));
  EXPECT_EQ(used.size(), 2u) << "exactly one retry";
  EXPECT_EQ(source_.calls, 3);

  // Other failures are returned as they are, without a retry.
  used.clear();
  st = cache.with_token(key_, [&](const std::string& token) {
    used.push_back(token);
    return Status(ErrorKind::kAuth, "AUTHENTICATIONFAILED");
  });
  EXPECT_THAT(st, StatusIs(ErrorKind::kAuth, HasSubstr("AUTHENTICATIONFAILED")));
  EXPECT_EQ(used.size(), 1u);
  EXPECT_EQ(source_.calls, 3);
}

TEST_F(TokenCacheTest, StormOf401sCausesOneRefresh) {
  TokenCache cache(source_, nullptr, clock_.fn());
  auto first = cache.token(key_);
  ASSERT_THAT(first, IsOk());
  constexpr int kThreads = 50;
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&] {
      Status st = cache.with_token(key_, [&](const std::string& token) {
        return token == *first ? token_rejected_status("status 401") : Status::Ok();
      });
      if (st.ok()) ++ok;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok, kThreads);
  EXPECT_EQ(source_.calls, 2);
}

TEST_F(TokenCacheTest, InvalidateIgnoresATokenThatIsNoLongerCached) {
  TokenCache cache(source_, nullptr, clock_.fn());
  auto a = cache.token(key_);
  ASSERT_THAT(a, IsOk());
  cache.invalidate(key_, *a);
  auto b = cache.token(key_);
  ASSERT_THAT(b, IsOk());
  cache.invalidate(key_, *a);  // late 401 for the old token
  EXPECT_EQ(cache.token(key_).value(), *b);
  EXPECT_EQ(source_.calls, 2);
}

TEST_F(TokenCacheTest, RotatedRefreshTokenIsSavedBeforeTheAccessTokenIsReturned) {
  ASSERT_THAT(store_->save(key_, "RT-0"), IsOk());
  source_.rotate = true;
  TokenCache cache(source_, store_.get(), clock_.fn());
  auto a = cache.token(key_);
  ASSERT_THAT(a, IsOk());
  EXPECT_EQ(source_.refresh_tokens_seen.back(), "RT-0");
  EXPECT_EQ(store_->load(key_).value().value_or(""), "RT-1");
  clock_.advance(seconds(3400));
  ASSERT_THAT(cache.token(key_), IsOk());
  EXPECT_EQ(source_.refresh_tokens_seen.back(), "RT-1");
  EXPECT_EQ(store_->load(key_).value().value_or(""), "RT-2");
}

TEST_F(TokenCacheTest, ASaveThatFailsFailsTheCallAndKeepsTheOldGrant) {
  ASSERT_THAT(store_->save(key_, "RT-0"), IsOk());
  source_.rotate = true;
  store_->fail_saves = true;
  TokenCache cache(source_, store_.get(), clock_.fn());
  auto a = cache.token(key_);
  EXPECT_THAT(a, StatusIs(ErrorKind::kInternal,
                          AllOf(HasSubstr("could not be saved"), HasSubstr("disk full"),
                                Not(HasSubstr("AT-")), Not(HasSubstr("RT-")))));
  EXPECT_EQ(store_->load(key_).value().value_or(""), "RT-0");
  EXPECT_FALSE(cache.describe()[0].has_access_token);
  store_->fail_saves = false;
  ASSERT_THAT(cache.token(key_), IsOk());
  EXPECT_EQ(source_.refresh_tokens_seen.back(), "RT-0") << "the old refresh token is reused";
  EXPECT_EQ(store_->load(key_).value().value_or(""), "RT-2");
}

TEST_F(TokenCacheTest, OnlyInvalidGrantDeletesTheStoredGrant) {
  ASSERT_THAT(store_->save(key_, "RT-0"), IsOk());
  TokenCache cache(source_, store_.get(), clock_.fn());
  for (Status st : {Status(ErrorKind::kNetwork, "token endpoint: timed out"),
                    Status(ErrorKind::kThrottled, "token endpoint: HTTP 429"),
                    Status(ErrorKind::kProtocol, "token endpoint: HTTP 503"),
                    Status(ErrorKind::kAuth, "invalid_client: AADSTS7000215")}) {
    source_.errors.push_back(st);
    EXPECT_THAT(cache.token(key_), StatusIs(st.kind(), HasSubstr(st.message())));
    EXPECT_TRUE(fs::exists(store_->path_for(key_))) << st.to_string();
    clock_.advance(seconds(60));  // past any backoff
  }
  EXPECT_EQ(source_.refresh_tokens_seen,
            (std::vector<std::string>{"RT-0", "RT-0", "RT-0", "RT-0"}));

  source_.errors.push_back(invalid_grant_status("AADSTS70008: the refresh token has expired"));
  EXPECT_THAT(cache.token(key_), StatusIs(ErrorKind::kAuth, HasSubstr("invalid_grant")));
  EXPECT_FALSE(fs::exists(store_->path_for(key_)));
  ASSERT_THAT(cache.token(key_), IsOk());
  EXPECT_EQ(source_.refresh_tokens_seen.back(), "<none>");
}

TEST_F(TokenCacheTest, AStoreThatCannotBeDecryptedFailsAndKeepsTheFile) {
  ASSERT_THAT(store_->save(key_, "RT-0"), IsOk());
  AesKey other{};
  other.fill(0x55);
  TokenStore wrong(dir_, other);
  TokenCache cache(source_, &wrong, clock_.fn());
  EXPECT_THAT(cache.token(key_),
              StatusIs(ErrorKind::kConfig, AllOf(HasSubstr("wrong key or corrupted"),
                                                 HasSubstr(store_->path_for(key_)))));
  EXPECT_EQ(source_.calls, 0) << "no request without the grant";
  EXPECT_EQ(store_->load(key_).value().value_or(""), "RT-0");
}

TEST_F(TokenCacheTest, DescribeShowsStateButNoTokenText) {
  source_.rotate = true;
  TokenCache cache(source_, store_.get(), clock_.fn());
  ASSERT_THAT(cache.token(key_), IsOk());
  TokenKey other{"fabrikam", "https://graph.microsoft.com/.default", ""};
  source_.errors.push_back(Status(ErrorKind::kNetwork, "token endpoint: connection reset"));
  EXPECT_THAT(cache.token(other), StatusIs(ErrorKind::kNetwork, Not(HasSubstr("AT-"))));
  auto states = cache.describe();  // sorted by key: "support@…" before "|fabrikam…"
  ASSERT_EQ(states.size(), 2u);
  EXPECT_EQ(states[1].key, other.to_string());
  EXPECT_FALSE(states[1].has_access_token);
  EXPECT_THAT(states[1].last_error, HasSubstr("connection reset"));
  EXPECT_EQ(states[0].key, key_.to_string());
  EXPECT_TRUE(states[0].has_access_token);
  EXPECT_TRUE(states[0].has_refresh_token);
  EXPECT_EQ(states[0].expires_at, clock_.now() + seconds(3600));
  EXPECT_EQ(states[0].last_refresh, clock_.now());
  for (const auto& s : states) {
    for (const std::string& text : {s.key, s.last_error}) {
      EXPECT_THAT(text, AllOf(Not(HasSubstr("AT-")), Not(HasSubstr("RT-"))));
    }
  }
}

}  // namespace
}  // namespace mb
