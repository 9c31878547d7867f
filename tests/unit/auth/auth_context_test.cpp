// File: tests/unit/auth/auth_context_test.cpp — AuthContext over scripted HTTP clients: the
// token store of [auth] only for delegated apps, routing by app, key_for, grants through
// the shared TokenCache (rotation saved, invalid_grant erases), and TokenCacheOptions::
// on_change.
#include "auth/auth_context.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>

#include "tests/status_matchers.h"
#include "tests/unit/auth/oauth_fakes.h"

namespace mb {
namespace {

using ::mb::testing::FakeHttp;
using ::mb::testing::form_fields;
using ::mb::testing::IsOk;
using ::mb::testing::StatusIs;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kKeyHex[] = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

AppConfig app_only(const std::string& name, const std::string& tenant) {
  AppConfig a;
  a.name = name;
  a.tenant = tenant;
  a.client_id = name + "-id";
  a.client_secret = SecretRef{"app-secret-" + name};
  a.flow = "app-only";
  a.timeouts.connect = std::chrono::seconds(7);
  return a;
}

AppConfig delegated(const std::string& name) {
  AppConfig a;
  a.name = name;
  a.tenant = "t-" + name;
  a.client_id = name + "-id";
  a.flow = "delegated";
  return a;
}

class AuthContextTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("mb_auth_context_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    ::setenv("MB_AUTH_CONTEXT_TEST_KEY", kKeyHex, 1);
    config_.store.path = (dir_ / "mailbridge.db").string();
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // A factory that hands out FakeHttp clients it keeps track of, per token endpoint host.
  HttpClientFactory factory() {
    return [this](const HttpOptions& o) {
      options_seen_.push_back(o);
      auto http = std::make_unique<FakeHttp>();
      https_.push_back(http.get());
      http->fallback = HttpResponse{next_status_, {}, next_body_};
      return http;
    };
  }

  std::filesystem::path dir_;
  Config config_;
  std::vector<HttpOptions> options_seen_;
  std::vector<FakeHttp*> https_;
  int next_status_ = 200;
  std::string next_body_ = R"({"access_token":"AT-1","expires_in":3600})";
};

TEST_F(AuthContextTest, DelegatedAppNeedsTheAuthKey) {
  config_.apps = {delegated("people")};
  EXPECT_THAT(AuthContext::create(config_, factory()).status(),
              StatusIs(ErrorKind::kConfig, ::testing::AllOf(HasSubstr("[auth] key"),
                                                             HasSubstr("\"people\""))));
}

TEST_F(AuthContextTest, StoreDefaultsToTokensBesideTheDatabase) {
  config_.apps = {delegated("people")};
  config_.auth.key = SecretRef{"env:MB_AUTH_CONTEXT_TEST_KEY"};
  auto ctx = AuthContext::create(config_, factory());
  ASSERT_THAT(ctx.status(), IsOk());
  ASSERT_NE((*ctx)->store(), nullptr);
  EXPECT_EQ(std::filesystem::path((*ctx)->store()->dir()), dir_ / "tokens");
  EXPECT_TRUE(std::filesystem::is_directory(dir_ / "tokens"));

  config_.auth.token_dir = (dir_ / "elsewhere").string();
  ctx = AuthContext::create(config_, factory());
  ASSERT_THAT(ctx.status(), IsOk());
  EXPECT_EQ((*ctx)->store()->dir(), config_.auth.token_dir);
}

TEST_F(AuthContextTest, AnUnusableKeyIsAConfigError) {
  config_.apps = {delegated("people")};
  config_.auth.key = SecretRef{"env:MB_AUTH_CONTEXT_TEST_UNSET"};
  EXPECT_THAT(AuthContext::create(config_, factory()).status(),
              StatusIs(ErrorKind::kConfig, HasSubstr("MB_AUTH_CONTEXT_TEST_UNSET")));
}

TEST_F(AuthContextTest, AppOnlyAppsNeedNoStoreAndConnectNothingAtCreate) {
  config_.apps = {app_only("a", "ta")};
  auto ctx = AuthContext::create(config_, factory());
  ASSERT_THAT(ctx.status(), IsOk());
  EXPECT_EQ((*ctx)->store(), nullptr);
  EXPECT_TRUE(options_seen_.empty());
}

TEST_F(AuthContextTest, CreateChecksEveryAppsEndpoints) {
  AppConfig bad = app_only("bad", "");
  config_.apps = {app_only("a", "ta"), bad};
  EXPECT_THAT(AuthContext::create(config_, factory()).status(),
              StatusIs(ErrorKind::kConfig, HasSubstr("\"bad\"")));
}

TEST_F(AuthContextTest, KeyForDropsTheUserOfAppOnlyApps) {
  config_.apps = {app_only("a", "ta"), delegated("people")};
  config_.auth.key = SecretRef{"env:MB_AUTH_CONTEXT_TEST_KEY"};
  auto ctx = AuthContext::create(config_, factory());
  ASSERT_THAT(ctx.status(), IsOk());
  auto k = (*ctx)->key_for("a", Resource::kExchange, "imap", "Support@Contoso.com");
  ASSERT_THAT(k.status(), IsOk());
  EXPECT_EQ(*k, (TokenKey{"a", "https://outlook.office365.com/.default", ""}));
  k = (*ctx)->key_for("people", Resource::kExchange, "imap", "Support@Contoso.com");
  ASSERT_THAT(k.status(), IsOk());
  EXPECT_EQ(*k, (TokenKey{"people", "https://outlook.office365.com/IMAP.AccessAsUser.All offline_access",
                          "Support@Contoso.com"}));
  EXPECT_THAT((*ctx)->key_for("nope", Resource::kExchange, "imap", "u").status(),
              StatusIs(ErrorKind::kConfig, HasSubstr("\"nope\"")));
}

TEST_F(AuthContextTest, RoutesEachAppToItsOwnClientAndEndpoint) {
  config_.apps = {app_only("a", "ta"), app_only("b", "tb")};
  auto ctx = AuthContext::create(config_, factory());
  ASSERT_THAT(ctx.status(), IsOk());
  for (int i = 0; i < 2; ++i) {
    ASSERT_THAT((*ctx)->token(*(*ctx)->key_for("a", Resource::kExchange, "imap", "")).status(), IsOk());
    ASSERT_THAT((*ctx)->token(*(*ctx)->key_for("b", Resource::kGraph, "graph", "")).status(), IsOk());
  }
  ASSERT_EQ(https_.size(), 2u) << "one client per app, built on first use";
  EXPECT_EQ(options_seen_[0].timeouts.connect, std::chrono::seconds(7));
  ASSERT_EQ(https_[0]->requests.size(), 1u) << "the second call is served from the cache";
  EXPECT_THAT(https_[0]->requests[0].url, HasSubstr("/ta/oauth2/v2.0/token"));
  EXPECT_EQ(form_fields(https_[0]->requests[0].body)["client_id"], "a-id");
  ASSERT_EQ(https_[1]->requests.size(), 1u);
  EXPECT_THAT(https_[1]->requests[0].url, HasSubstr("/tb/oauth2/v2.0/token"));
  EXPECT_EQ(form_fields(https_[1]->requests[0].body)["scope"], "https://graph.microsoft.com/.default");
}

TEST_F(AuthContextTest, AnUnreadableSecretFailsUntilItIsFixed) {
  AppConfig a = app_only("a", "ta");
  a.client_secret = SecretRef{"env:MB_AUTH_CONTEXT_TEST_SECRET"};
  config_.apps = {a};
  ::unsetenv("MB_AUTH_CONTEXT_TEST_SECRET");
  auto ctx = AuthContext::create(config_, factory());
  ASSERT_THAT(ctx.status(), IsOk()) << "create() reads no secret";
  EXPECT_THAT((*ctx)->client("a").status(),
              StatusIs(ErrorKind::kConfig, HasSubstr("MB_AUTH_CONTEXT_TEST_SECRET")));
  ::setenv("MB_AUTH_CONTEXT_TEST_SECRET", "now-it-is-set", 1);
  EXPECT_THAT((*ctx)->client("a").status(), IsOk());
  EXPECT_THAT((*ctx)->client("zzz").status(), StatusIs(ErrorKind::kConfig, HasSubstr("\"zzz\"")));
  ::unsetenv("MB_AUTH_CONTEXT_TEST_SECRET");
}

TEST_F(AuthContextTest, DelegatedGrantRotatesInTheStoreAndInvalidGrantErasesIt) {
  config_.apps = {delegated("people")};
  config_.auth.key = SecretRef{"env:MB_AUTH_CONTEXT_TEST_KEY"};
  next_body_ = R"({"access_token":"AT-2","expires_in":3600,"refresh_token":"RT-2"})";
  auto ctx = AuthContext::create(config_, factory());
  ASSERT_THAT(ctx.status(), IsOk());
  TokenKey key = *(*ctx)->key_for("people", Resource::kExchange, "imap", "u@contoso.com");
  EXPECT_THAT((*ctx)->token(key).status(),
              StatusIs(ErrorKind::kAuth, HasSubstr("mailbridge auth login people")));
  ASSERT_THAT((*ctx)->store()->save(key, "RT-1"), IsOk());

  // A new process: the stored grant is used, and its successor saved.
  auto ctx2 = AuthContext::create(config_, factory());
  ASSERT_THAT(ctx2.status(), IsOk());
  auto t = (*ctx2)->token(key);
  ASSERT_THAT(t.status(), IsOk());
  EXPECT_EQ(*t, "AT-2");
  auto form = form_fields(https_.back()->requests.at(0).body);
  EXPECT_EQ(form["grant_type"], "refresh_token");
  EXPECT_EQ(form["refresh_token"], "RT-1");
  EXPECT_EQ(form["scope"], key.scope);
  EXPECT_EQ(*(*ctx2)->store()->load(key), std::optional<std::string>("RT-2"));

  // invalid_grant ends the grant; a network failure would not have.
  (*ctx2)->cache().invalidate(key, "AT-2");
  https_.back()->fallback = HttpResponse{503, {}, ""};
  EXPECT_THAT((*ctx2)->token(key).status(), StatusIs(ErrorKind::kNetwork, HasSubstr("503")));
  EXPECT_EQ(*(*ctx2)->store()->load(key), std::optional<std::string>("RT-2"));
}

TEST_F(AuthContextTest, InvalidGrantDeletesTheStoredGrant) {
  config_.apps = {delegated("people")};
  config_.auth.key = SecretRef{"env:MB_AUTH_CONTEXT_TEST_KEY"};
  next_status_ = 400;
  next_body_ = R"({"error":"invalid_grant","error_description":"AADSTS50173: revoked","error_codes":[50173]})";
  auto ctx = AuthContext::create(config_, factory());
  ASSERT_THAT(ctx.status(), IsOk());
  TokenKey key = *(*ctx)->key_for("people", Resource::kExchange, "imap", "u@contoso.com");
  ASSERT_THAT((*ctx)->store()->save(key, "RT-1"), IsOk());
  https_.clear();
  auto st = (*ctx)->token(key).status();
  EXPECT_THAT(st, StatusIs(ErrorKind::kAuth, HasSubstr("AADSTS50173")));
  EXPECT_TRUE(is_invalid_grant(st));
  EXPECT_EQ(*(*ctx)->store()->load(key), std::nullopt);
}

// ---- TokenCacheOptions::on_change ---------------------------------------------------------

class ScriptedSource final : public TokenSource {
 public:
  std::deque<Result<TokenResponse>> script;
  Result<TokenResponse> acquire(const TokenKey&, const std::optional<std::string>&) override {
    Result<TokenResponse> r = script.front();
    script.pop_front();
    return r;
  }
};

TEST(TokenCacheOnChange, ReportsEverySuccessAndFailureWithoutTokenText) {
  ScriptedSource source;
  TokenResponse ok;
  ok.access_token = "AT-secret-text";
  ok.expires_in = std::chrono::seconds(3600);
  ok.refresh_token = "RT-secret-text";
  source.script = {ok, Status(ErrorKind::kAuth, "app \"a\": refused")};
  std::vector<TokenState> seen;
  auto now = std::chrono::system_clock::time_point(std::chrono::seconds(1'800'000'000));
  TokenCacheOptions options;
  TokenCache* cache_ptr = nullptr;
  options.on_change = [&](const TokenState& s) {
    seen.push_back(s);
    // Called without the cache's lock: the cache can be read from the callback.
    EXPECT_EQ(cache_ptr->describe().size(), 1u);
  };
  TokenCache cache(source, nullptr, [&] { return now; }, options);
  cache_ptr = &cache;
  TokenKey key{"a", "s", ""};
  ASSERT_THAT(cache.token(key).status(), IsOk());
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_TRUE(seen[0].has_access_token);
  EXPECT_TRUE(seen[0].has_refresh_token);
  EXPECT_EQ(seen[0].refreshes, 1u);
  EXPECT_EQ(seen[0].expires_at, now + std::chrono::seconds(3600));
  EXPECT_EQ(seen[0].last_refresh, now);
  EXPECT_FALSE(seen[0].refreshing);
  EXPECT_EQ(seen[0].key, key.to_string());

  EXPECT_THAT(cache.token(key).status(), IsOk());
  EXPECT_EQ(seen.size(), 1u) << "a cached token is no change";
  now += std::chrono::seconds(3601);
  EXPECT_THAT(cache.token(key).status(), StatusIs(ErrorKind::kAuth, HasSubstr("refused")));
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[1].failures, 1u);
  EXPECT_THAT(seen[1].last_error, HasSubstr("refused"));
  for (const TokenState& s : seen) {
    EXPECT_THAT(s.last_error, Not(HasSubstr("secret-text")));
    EXPECT_THAT(s.key, Not(HasSubstr("secret-text")));
  }
}

}  // namespace
}  // namespace mb
