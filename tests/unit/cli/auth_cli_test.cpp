// File: tests/unit/cli/auth_cli_test.cpp — `mailbridge auth status` over a prepared store and
// token directory (JSON shape, grant states, a wrong key deletes nothing, no secret printed),
// `auth login` refusing app-only and unknown apps, the token-state recorder across
// "processes", and the helpers of cli/auth_support.h.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "auth/base64.h"
#include "auth/secrets.h"
#include "auth/token_cache.h"
#include "auth/token_store.h"
#include "cli/auth_support.h"
#include "cli/cli.h"
#include "core/store.h"
#include "core/utc.h"
#include "tests/status_matchers.h"

namespace mb {
namespace {

using ::mb::testing::IsOk;
using ::testing::HasSubstr;
using ::testing::Not;
using nlohmann::json;

constexpr const char* kRefreshToken = "rt-very-secret-refresh-token-0123456789";
constexpr const char* kClientSecret = "cs-very-secret-client-secret-987654321";
constexpr const char* kScope = "mail.access offline_access";

std::string fs_read(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::set<std::string> keys_of(const json& j) {
  std::set<std::string> keys;
  for (const auto& [k, v] : j.items()) keys.insert(k);
  return keys;
}

struct CliRun {
  int code = -1;
  std::string out;
  std::string err;
};

class AuthCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("mb_auth_cli_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    config_ = (dir_ / "mailbridge.toml").string();
    write_key("token.key", std::string(32, 'k'));
    ::setenv("MB_AUTH_CLI_TEST_SECRET", kClientSecret, 1);
    write_config("token.key");
  }
  void TearDown() override {
    std::filesystem::remove_all(dir_);
    ::unsetenv("MB_AUTH_CLI_TEST_SECRET");
  }

  void write_key(const std::string& name, const std::string& raw) {
    std::ofstream(dir_ / name) << base64_encode(raw) << "\n";
  }

  // A delegated app used by one mailbox, and an app-only app used by another.
  void write_config(const std::string& key_file) {
    std::ofstream(config_)
        << "[auth]\ntoken_dir = \"tokens\"\nkey = \"file:" << key_file << "\"\n\n"
        << "[[app]]\nname = \"desk\"\ntoken_endpoint = \"https://127.0.0.1:9/token\"\n"
        << "device_endpoint = \"https://127.0.0.1:9/device/auth\"\n"
        << "client_id = \"public-id\"\nscopes = [\"mail.access\", \"offline_access\"]\n\n"
        << "[[app]]\nname = \"contoso\"\ntoken_endpoint = \"https://127.0.0.1:9/token\"\n"
        << "client_id = \"confidential-id\"\nclient_secret = \"env:MB_AUTH_CLI_TEST_SECRET\"\n"
        << "scopes = [\"https://mail.mailbridge.test/.default\"]\n\n"
        << "[[mailbox]]\nname = \"support\"\ntype = \"imap\"\nhost = \"127.0.0.1\"\n"
        << "app = \"desk\"\nuser = \"Ann@Example.com\"\n\n"
        << "[[mailbox]]\nname = \"robot\"\ntype = \"imap\"\nhost = \"127.0.0.1\"\n"
        << "app = \"contoso\"\nuser = \"robot@example.com\"\n";
  }

  CliRun run(std::vector<std::string> args) {
    args.insert(args.begin(), {"--config", config_});
    std::ostringstream out, err;
    CliRun r;
    r.code = run_cli(std::move(args), out, err);
    r.out = out.str();
    r.err = err.str();
    return r;
  }

  std::unique_ptr<Store> store() {
    auto s = Store::open((dir_ / "mailbridge.db").string());
    EXPECT_THAT(s, IsOk());
    return s.ok() ? std::move(*s) : nullptr;
  }

  std::unique_ptr<TokenStore> tokens() {
    auto t = TokenStore::open((dir_ / "tokens").string(),
                              SecretRef{"file:" + (dir_ / "token.key").string()});
    EXPECT_THAT(t, IsOk());
    return t.ok() ? std::move(*t) : nullptr;
  }

  // Ann's grant stored, and what two sync runs recorded for both apps.
  void seed() {
    auto t = tokens();
    ASSERT_NE(t, nullptr);
    ASSERT_THAT(t->save(ann_key(), kRefreshToken), IsOk());
    auto st = store();
    ASSERT_NE(st, nullptr);
    TokenStateRecord ann;
    ann.key = ann_key().to_string();
    ann.app = "desk";
    ann.user = "ann@example.com";
    ann.scope = kScope;
    ann.expires_at = "2026-11-23T10:00:00Z";
    ann.last_refresh = "2026-11-23T09:00:00Z";
    ann.refreshes = 5;
    ann.failures = 1;
    ASSERT_THAT(st->save_token_state(ann), IsOk());
    TokenStateRecord robot;
    robot.key = TokenKey{"contoso", "https://mail.mailbridge.test/.default", ""}.to_string();
    robot.app = "contoso";
    robot.scope = "https://mail.mailbridge.test/.default";
    robot.last_error = "app \"contoso\": invalid_client";
    robot.failures = 3;
    ASSERT_THAT(st->save_token_state(robot), IsOk());
  }

  static TokenKey ann_key() { return TokenKey{"desk", kScope, "ann@example.com"}; }

  std::filesystem::path dir_;
  std::string config_;
};

TEST_F(AuthCliTest, StatusJsonShowsEachAppAndTokenWithoutSecrets) {
  seed();
  CliRun r = run({"auth", "status", "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  json j = json::parse(r.out);
  ASSERT_TRUE(j.is_array());
  ASSERT_EQ(j.size(), 2u);
  EXPECT_EQ(keys_of(j[0]),
            (std::set<std::string>{"app", "flow", "token_endpoint", "tokens"}));
  EXPECT_EQ(j[0]["app"], "desk");
  EXPECT_EQ(j[0]["flow"], "delegated");
  EXPECT_EQ(j[0]["token_endpoint"], "https://127.0.0.1:9/token");
  ASSERT_EQ(j[0]["tokens"].size(), 1u);  // the mailbox's key is the recorded one
  const json& ann = j[0]["tokens"][0];
  EXPECT_EQ(keys_of(ann), (std::set<std::string>{"user", "scope", "grant", "expires_at",
                                                 "last_refresh", "last_error", "refreshes",
                                                 "failures", "updated_at"}));
  EXPECT_EQ(ann["user"], "ann@example.com");
  EXPECT_EQ(ann["scope"], kScope);
  EXPECT_EQ(ann["grant"], "stored");
  EXPECT_EQ(ann["expires_at"], "2026-11-23T10:00:00Z");
  EXPECT_EQ(ann["last_refresh"], "2026-11-23T09:00:00Z");
  EXPECT_TRUE(ann["last_error"].is_null());
  EXPECT_EQ(ann["refreshes"], 5);
  EXPECT_EQ(ann["failures"], 1);
  EXPECT_EQ(j[1]["app"], "contoso");
  EXPECT_EQ(j[1]["flow"], "app-only");
  ASSERT_EQ(j[1]["tokens"].size(), 1u);
  EXPECT_TRUE(j[1]["tokens"][0]["user"].is_null());
  EXPECT_EQ(j[1]["tokens"][0]["grant"], "not needed");
  EXPECT_EQ(j[1]["tokens"][0]["last_error"], "app \"contoso\": invalid_client");
  EXPECT_EQ(j[1]["tokens"][0]["failures"], 3);
  for (const std::string& text : {r.out, r.err}) {
    EXPECT_THAT(text, Not(HasSubstr(kRefreshToken)));
    EXPECT_THAT(text, Not(HasSubstr(kClientSecret)));
    EXPECT_THAT(text, Not(HasSubstr(base64_encode(std::string(32, 'k')))));
  }
}

TEST_F(AuthCliTest, StatusTextNamesGrantExpiryAndErrors) {
  seed();
  CliRun r = run({"auth", "status"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("app \"desk\" (delegated), token endpoint "
                               "https://127.0.0.1:9/token"));
  EXPECT_THAT(r.out, HasSubstr("ann@example.com — " + std::string(kScope)));
  EXPECT_THAT(r.out, HasSubstr("grant:         stored"));
  EXPECT_THAT(r.out, HasSubstr("token expires: 2026-11-23T10:00:00Z"));
  EXPECT_THAT(r.out, HasSubstr("refreshes:     5, failures: 1"));
  EXPECT_THAT(r.out, HasSubstr("last error:    app \"contoso\": invalid_client"));
  EXPECT_THAT(r.out, Not(HasSubstr(kRefreshToken)));
}

TEST_F(AuthCliTest, StatusBeforeAnySignInSaysWhatToRun) {
  std::ofstream(config_) << "[auth]\ntoken_dir = \"tokens\"\nkey = \"file:token.key\"\n"
                         << "[[app]]\nname = \"desk\"\ntoken_endpoint = "
                         << "\"https://127.0.0.1:9/token\"\nclient_id = \"public-id\"\n";
  CliRun r = run({"auth", "status"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("no sign-in yet: run `mailbridge auth login desk`"));
  CliRun j = run({"auth", "status", "--json"});
  ASSERT_EQ(j.code, 0) << j.err;
  EXPECT_TRUE(json::parse(j.out)[0]["tokens"].empty());
}

TEST_F(AuthCliTest, MissingGrantIsShownForAConfiguredMailbox) {
  CliRun r = run({"auth", "status", "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  json j = json::parse(r.out);
  ASSERT_EQ(j[0]["tokens"].size(), 1u);
  EXPECT_EQ(j[0]["tokens"][0]["user"], "ann@example.com");  // from the mailbox, lower-cased
  EXPECT_EQ(j[0]["tokens"][0]["grant"], "missing");
  EXPECT_TRUE(j[0]["tokens"][0]["last_refresh"].is_null());
  EXPECT_EQ(j[0]["tokens"][0]["refreshes"], 0);
}

TEST_F(AuthCliTest, WrongKeyCannotDecryptAndDeletesNothing) {
  seed();
  std::string path = tokens()->path_for(ann_key());
  std::string before = fs_read(path);
  ASSERT_FALSE(before.empty());
  write_key("other.key", std::string(32, 'o'));
  write_config("other.key");
  CliRun r = run({"auth", "status", "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  json j = json::parse(r.out);
  EXPECT_EQ(j[0]["tokens"][0]["grant"], "cannot decrypt (wrong [auth] key?)");
  EXPECT_EQ(fs_read(path), before);
  CliRun text = run({"auth", "status"});
  EXPECT_THAT(text.out, HasSubstr("grant:         cannot decrypt (wrong [auth] key?)"));
  EXPECT_EQ(fs_read(path), before);
}

TEST_F(AuthCliTest, LoginRefusesAnAppOnlyApp) {
  CliRun r = run({"auth", "login", "contoso"});
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("contoso uses client credentials; no sign-in is needed — try "
                               "`mailbridge doctor`"));
  EXPECT_EQ(r.out, "");
  EXPECT_THAT(r.err, Not(HasSubstr(kClientSecret)));
}

TEST_F(AuthCliTest, LoginRefusesAnUnknownApp) {
  CliRun r = run({"auth", "login", "fabrikam"});
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("no [[app]] is named \"fabrikam\""));
}

TEST_F(AuthCliTest, LoginNeedsTheAppName) {
  CliRun r = run({"auth", "login"});
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("APP"));
}

// ---- the recorder behind open_auth -------------------------------------------------------

class ScriptedSource : public TokenSource {
 public:
  Result<TokenResponse> acquire(const TokenKey&, const std::optional<std::string>&) override {
    if (!fail_with.ok()) return fail_with;
    TokenResponse r;
    r.access_token = "at-" + std::to_string(++calls);
    r.expires_in = std::chrono::seconds(3600);
    return r;
  }
  Status fail_with = Status::Ok();
  int calls = 0;
};

TEST_F(AuthCliTest, RecorderAddsUpRunsAndKeepsTheLastGoodRefresh) {
  auto st = store();
  ASSERT_NE(st, nullptr);
  const TokenKey key{"contoso", "https://mail.mailbridge.test/.default", ""};
  ScriptedSource source;
  auto now = std::chrono::system_clock::now();
  {
    TokenCacheOptions options;
    options.on_change = token_state_recorder(st.get());
    TokenCache cache(source, nullptr, [&] { return now; }, options);
    ASSERT_THAT(cache.token(key), IsOk());
  }
  auto first = st->get_token_state(key.to_string());
  ASSERT_THAT(first, IsOk());
  ASSERT_TRUE(first->has_value());
  EXPECT_EQ((*first)->app, "contoso");
  EXPECT_EQ((*first)->user, "");
  EXPECT_EQ((*first)->scope, key.scope);
  EXPECT_EQ((*first)->refreshes, 1);
  EXPECT_EQ((*first)->failures, 0);
  EXPECT_EQ((*first)->last_refresh, format_utc(now));
  EXPECT_EQ((*first)->expires_at, format_utc(now + std::chrono::seconds(3600)));

  // A later process whose request fails, with a secret in the server's text.
  Redactor::instance().add(kClientSecret);
  source.fail_with = Status(ErrorKind::kAuth, std::string("invalid_client: ") + kClientSecret);
  {
    TokenCacheOptions options;
    options.on_change = token_state_recorder(st.get());
    TokenCache cache(source, nullptr, [&] { return now + std::chrono::hours(2); }, options);
    EXPECT_FALSE(cache.token(key).ok());
  }
  auto second = st->get_token_state(key.to_string());
  ASSERT_THAT(second, IsOk());
  ASSERT_TRUE(second->has_value());
  EXPECT_EQ((*second)->refreshes, 1);
  EXPECT_EQ((*second)->failures, 1);
  EXPECT_EQ((*second)->last_refresh, format_utc(now));  // the earlier success is kept
  EXPECT_THAT((*second)->last_error, HasSubstr("invalid_client"));
  EXPECT_THAT((*second)->last_error, Not(HasSubstr(kClientSecret)));
}

TEST_F(AuthCliTest, RecordTokenSuccessCountsTheSignIn) {
  auto st = store();
  ASSERT_NE(st, nullptr);
  TokenResponse r;
  r.expires_in = std::chrono::seconds(600);
  ASSERT_THAT(record_token_success(*st, TokenKey{"desk", kScope, "Ann@Example.com"}, r), IsOk());
  auto got = st->get_token_state(ann_key().to_string());
  ASSERT_THAT(got, IsOk());
  ASSERT_TRUE(got->has_value());
  EXPECT_EQ((*got)->user, "ann@example.com");
  EXPECT_EQ((*got)->refreshes, 1);
  EXPECT_FALSE((*got)->expires_at.empty());
}

TEST(AuthSupportTest, ParseTokenKeyInvertsToString) {
  TokenKey key{"a|pp%", "b a", "Us|er@x"};
  auto parsed = parse_token_key(key.to_string());
  ASSERT_TRUE(parsed.has_value());
  EXPECT_EQ(parsed->app, "a|pp%");
  EXPECT_EQ(parsed->scope, "a b");     // normalised: sorted
  EXPECT_EQ(parsed->user, "us|er@x");  // lower-cased
  EXPECT_EQ(parsed->to_string(), key.to_string());
  EXPECT_FALSE(parse_token_key("no separators").has_value());
  EXPECT_FALSE(parse_token_key("a|b|c|d").has_value());
  EXPECT_FALSE(parse_token_key("u||scope").has_value());  // no app
}

std::string b64url(const std::string& s) {
  std::string b = base64_encode(s);
  while (!b.empty() && b.back() == '=') b.pop_back();
  for (char& c : b) {
    if (c == '+') c = '-';
    else if (c == '/') c = '_';
  }
  return b;
}

TEST(AuthSupportTest, UserFromTokenReadsTheUsualClaims) {
  auto jwt = [](const json& claims) {
    return b64url(R"({"alg":"none"})") + "." + b64url(claims.dump()) + ".sig";
  };
  EXPECT_EQ(user_from_token(jwt({{"upn", "ann@example.com"}})), "ann@example.com");
  EXPECT_EQ(user_from_token(jwt({{"preferred_username", "bob@example.com"}})),
            "bob@example.com");
  EXPECT_EQ(user_from_token(jwt({{"email", "eve@example.com"}, {"sub", "x"}})),
            "eve@example.com");
  EXPECT_EQ(user_from_token(jwt({{"sub", "x"}})), "");
  EXPECT_EQ(user_from_token("opaque-token-value"), "");
}

}  // namespace
}  // namespace mb
