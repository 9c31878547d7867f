// File: tests/integration/oauth_client_test.cpp — the product's OAuth grants (auth/oauth.h)
// over the real HTTPS client (core/http.h) against the oidc-provider harness
// (tests/harness/oauth.sh): client credentials with a secret and with private_key_jwt, the
// device-code flow approved by the test (with slow_down), refresh-token rotation through
// TokenCache + TokenStore, and the error paths — a disabled client, a revoked grant (which
// deletes the stored grant) and an unreachable server (which keeps it).
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <map>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "auth/oauth.h"
#include "auth/token_cache.h"
#include "auth/token_store.h"
#include "core/http.h"
#include "tests/integration/harness.h"
#include "tests/status_matchers.h"

namespace mb::itest {
namespace {

using ::mb::testing::IsOk;
using ::mb::testing::StatusIs;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;
using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr char kKeyHex[] = "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0";
constexpr char kDelegatedScope[] = "mail.access offline_access";

class OAuthClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (auto env = read_server_env(oauth_harness_dir()); env.ok()) env_ = *env;
    ASSERT_FALSE(env_["MB_OAUTH_TOKEN_URL"].empty()) << "the OAuth harness is not running";
    http_ = make_http_client({.tls = tls(), .timeouts = {seconds(10), seconds(20)}});
    admin_ = make_http_client({.tls = {}, .timeouts = {seconds(10), seconds(20)},
                               .allow_plain_http = true});
    ::setenv("MB_ITEST_OAUTH_SECRET", env_["MB_OAUTH_CLIENT_SECRET"].c_str(), 1);
    ASSERT_THAT(admin("/stats/reset", {}), IsOk());
  }

  TlsOptions tls() {
    TlsOptions t;
    t.ca_file = env_["MB_OAUTH_CA_FILE"];
    return t;
  }

  AppConfig app(const std::string& client_id) {
    AppConfig a;
    a.name = "harness";
    a.client_id = client_id;
    a.token_endpoint = env_["MB_OAUTH_TOKEN_URL"];
    a.device_endpoint = env_["MB_OAUTH_DEVICE_URL"];
    a.tls = tls();
    return a;
  }
  AppConfig secret_app() {
    AppConfig a = app(env_["MB_OAUTH_CLIENT_ID"]);
    a.client_secret = SecretRef{"env:MB_ITEST_OAUTH_SECRET"};
    a.flow = "app-only";
    return a;
  }
  AppConfig public_app() {
    AppConfig a = app(env_["MB_OAUTH_PUBLIC_CLIENT_ID"]);
    a.flow = "delegated";
    return a;
  }

  // Options whose sleep really waits (the server measures intervals), recording each wait.
  OAuthClientOptions options(std::function<void(milliseconds)> on_sleep = nullptr) {
    OAuthClientOptions o;
    o.max_attempts = 2;
    o.backoff_base = milliseconds(10);
    o.sleep = [this, on_sleep](milliseconds d) {
      sleeps_.push_back(d);
      if (on_sleep) on_sleep(d); else std::this_thread::sleep_for(d);
    };
    return o;
  }

  Status admin(const std::string& path, const std::vector<std::pair<std::string, std::string>>& form) {
    HttpRequest req{.method = "POST", .url = env_["MB_OAUTH_ADMIN_URL"] + path,
                    .headers = {{"Content-Type", "application/x-www-form-urlencoded"}},
                    .body = form_encode(form), .body_sink = nullptr, .sensitive_body = true};
    auto r = admin_->send(req);
    // Node closes an idle keep-alive connection after 5 s; the first write on it may fail.
    if (!r.ok() && r.status().kind() == ErrorKind::kNetwork) r = admin_->send(req);
    if (!r.ok()) return r.status();
    if (r->status != 200) return Status(ErrorKind::kInternal, path + ": HTTP " + std::to_string(r->status) + " " + r->body);
    return Status::Ok();
  }
  nlohmann::json stats() {
    auto r = admin_->send({.method = "GET", .url = env_["MB_OAUTH_ADMIN_URL"] + "/stats"});
    return r.ok() ? nlohmann::json::parse(r->body, nullptr, false) : nlohmann::json();
  }

  // A delegated sign-in through the device flow, approved by the test.
  Result<TokenResponse> device_login(OAuthClient& client) {
    auto a = client.start_device_login(kDelegatedScope);
    if (!a.ok()) return a.status();
    MB_RETURN_IF_ERROR(admin("/device/approve", {{"user_code", a->user_code}}));
    return client.finish_device_login(*a);
  }

  std::map<std::string, std::string> env_;
  std::unique_ptr<HttpClient> http_, admin_;
  std::vector<milliseconds> sleeps_;
  TempDir dir_;
};

TEST_F(OAuthClientTest, ClientCredentialsWithASecret) {
  auto client = OAuthClient::create(secret_app(), *http_, options());
  ASSERT_THAT(client.status(), IsOk());
  auto t = (*client)->acquire({"harness", env_["MB_OAUTH_MAIL_SCOPE"], ""}, std::nullopt);
  ASSERT_THAT(t.status(), IsOk());
  EXPECT_FALSE(t->access_token.empty());
  EXPECT_GT(t->expires_in, seconds(0));
  EXPECT_FALSE(t->refresh_token.has_value());
  EXPECT_EQ(stats()["token"]["client_credentials"], 1);
}

TEST_F(OAuthClientTest, ClientCredentialsWithACertificate) {
  auto cert = read_file(env_["MB_OAUTH_JWT_CERT"]);
  auto key = read_file(env_["MB_OAUTH_JWT_KEY"]);
  ASSERT_THAT(cert.status(), IsOk());
  ASSERT_THAT(key.status(), IsOk());
  ASSERT_THAT(write_file(dir_.file("client.pem"), *cert + *key), IsOk());
  AppConfig a = app(env_["MB_OAUTH_JWT_CLIENT_ID"]);
  a.certificate = SecretRef{"file:" + dir_.file("client.pem")};
  a.flow = "app-only";
  auto client = OAuthClient::create(a, *http_, options());
  ASSERT_THAT(client.status(), IsOk());
  for (int i = 0; i < 2; ++i) {  // a second assertion must carry a new jti to be accepted
    auto t = (*client)->acquire({"harness", env_["MB_OAUTH_MAIL_SCOPE"], ""}, std::nullopt);
    ASSERT_THAT(t.status(), IsOk());
    EXPECT_FALSE(t->access_token.empty());
  }
}

TEST_F(OAuthClientTest, DeviceCodeApprovedAfterSlowDown) {
  ASSERT_THAT(admin("/settings", {{"device_interval", "1"}}), IsOk());
  OAuthClientOptions o;
  std::string user_code;
  int polls = 0;
  // The first two polls come back to back (slow_down); approval comes before the third.
  o.sleep = [&](milliseconds d) {
    sleeps_.push_back(d);
    if (++polls == 3) {
      EXPECT_THAT(admin("/device/approve", {{"user_code", user_code}}), IsOk());
      std::this_thread::sleep_for(d);
    }
  };
  auto client = OAuthClient::create(public_app(), *http_, o);
  ASSERT_THAT(client.status(), IsOk());
  auto a = (*client)->start_device_login(kDelegatedScope);
  ASSERT_THAT(a.status(), IsOk());
  EXPECT_EQ(a->interval, seconds(1));
  EXPECT_FALSE(a->verification_uri.empty());
  user_code = a->user_code;
  auto t = (*client)->finish_device_login(*a);
  Status restored = admin("/settings", {{"device_interval", "5"}});
  ASSERT_THAT(t.status(), IsOk());
  EXPECT_THAT(restored, IsOk());
  EXPECT_TRUE(t->refresh_token.has_value());
  // Polls at the interval, +5 s after slow_down. (Later entries, if any, are retries of a
  // keep-alive connection the server closed while we waited.)
  ASSERT_GE(sleeps_.size(), 3u);
  EXPECT_EQ(std::vector<milliseconds>(sleeps_.begin(), sleeps_.begin() + 3),
            (std::vector<milliseconds>{seconds(1), seconds(1), seconds(6)}));
  for (size_t i = 3; i < sleeps_.size(); ++i) EXPECT_LT(sleeps_[i], seconds(6));
  EXPECT_EQ(stats()["slow_down"], 1);
}

TEST_F(OAuthClientTest, DeniedDeviceCodeIsAnAuthError) {
  auto client = OAuthClient::create(public_app(), *http_, options([](milliseconds) {}));
  ASSERT_THAT(client.status(), IsOk());
  auto a = (*client)->start_device_login(kDelegatedScope);
  ASSERT_THAT(a.status(), IsOk());
  ASSERT_THAT(admin("/device/deny", {{"user_code", a->user_code}}), IsOk());
  EXPECT_THAT((*client)->finish_device_login(*a).status(),
              StatusIs(ErrorKind::kAuth, AllOf(HasSubstr("access_denied"),
                                               HasSubstr("mailbridge auth login harness"))));
}

// A TokenStore that records the order of saves, so the test can see that a rotated refresh
// token is on disk before the access token that came with it is handed out.
class RecordingStore final : public TokenStore {
 public:
  using TokenStore::TokenStore;
  Status save(const TokenKey& key, const std::string& rt) override {
    Status st = TokenStore::save(key, rt);
    events.push_back("save");
    return st;
  }
  std::vector<std::string> events;
};

TEST_F(OAuthClientTest, RefreshRotationThroughCacheAndStore) {
  auto client = OAuthClient::create(public_app(), *http_, options());
  ASSERT_THAT(client.status(), IsOk());
  auto login = device_login(**client);
  ASSERT_THAT(login.status(), IsOk());
  ASSERT_TRUE(login->refresh_token.has_value());
  auto aes = parse_aes_key(kKeyHex, "key");
  ASSERT_THAT(aes.status(), IsOk());
  RecordingStore store(dir_.file("tokens"), *aes);
  std::filesystem::create_directories(dir_.file("tokens"));
  TokenKey key{"harness", kDelegatedScope, env_["MB_OAUTH_TEST_ACCOUNT"]};
  ASSERT_THAT(store.save(key, *login->refresh_token), IsOk());
  store.events.clear();

  TokenCache cache(**client, &store);
  auto t = cache.token(key);
  ASSERT_THAT(t.status(), IsOk());
  store.events.push_back("token used");
  EXPECT_EQ(store.events, (std::vector<std::string>{"save", "token used"}));
  auto on_disk = store.load(key);
  ASSERT_THAT(on_disk.status(), IsOk());
  ASSERT_TRUE(on_disk->has_value());
  EXPECT_NE(**on_disk, *login->refresh_token) << "the server rotates refresh tokens";
  EXPECT_EQ(stats()["token"]["refresh_token"], 1);

  // The rotated-out token is refused by the server afterwards.
  auto old = (*client)->acquire(key, *login->refresh_token);
  EXPECT_THAT(old.status(), StatusIs(ErrorKind::kAuth, HasSubstr("invalid_grant")));
  EXPECT_TRUE(is_invalid_grant(old.status()));
  EXPECT_THAT(old.status().message(), Not(HasSubstr(*login->refresh_token)));
}

TEST_F(OAuthClientTest, DisabledClientIsInvalidClient) {
  auto client = OAuthClient::create(secret_app(), *http_, options());
  ASSERT_THAT(client.status(), IsOk());
  ASSERT_THAT(admin("/clients/disable", {{"client_id", env_["MB_OAUTH_CLIENT_ID"]}}), IsOk());
  auto t = (*client)->acquire({"harness", env_["MB_OAUTH_MAIL_SCOPE"], ""}, std::nullopt);
  Status restored = admin("/clients/enable", {{"client_id", env_["MB_OAUTH_CLIENT_ID"]}});
  EXPECT_THAT(t.status(), StatusIs(ErrorKind::kAuth, AllOf(HasSubstr("invalid_client"),
                                                           HasSubstr("app \"harness\""))));
  EXPECT_THAT(t.status().message(), Not(HasSubstr(env_["MB_OAUTH_CLIENT_SECRET"])));
  ASSERT_THAT(restored, IsOk());
  EXPECT_THAT((*client)->acquire({"harness", env_["MB_OAUTH_MAIL_SCOPE"], ""}, std::nullopt).status(),
              IsOk());
}

TEST_F(OAuthClientTest, RevokedGrantDeletesTheStoredGrant) {
  auto client = OAuthClient::create(public_app(), *http_, options());
  ASSERT_THAT(client.status(), IsOk());
  auto login = device_login(**client);
  ASSERT_THAT(login.status(), IsOk());
  auto store = TokenStore::open(dir_.file("tokens"), SecretRef{kKeyHex});
  ASSERT_THAT(store.status(), IsOk());
  TokenKey key{"harness", kDelegatedScope, env_["MB_OAUTH_TEST_ACCOUNT"]};
  ASSERT_THAT((*store)->save(key, *login->refresh_token), IsOk());
  ASSERT_THAT(admin("/grants/revoke", {{"token", *login->refresh_token}}), IsOk());

  TokenCache cache(**client, store->get());
  auto st = cache.token(key).status();
  EXPECT_THAT(st, StatusIs(ErrorKind::kAuth, HasSubstr("invalid_grant")));
  auto loaded = (*store)->load(key);
  ASSERT_THAT(loaded.status(), IsOk());
  EXPECT_EQ(*loaded, std::nullopt);
}

uint16_t closed_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);  // nothing listens there now
  return ntohs(addr.sin_port);
}

TEST_F(OAuthClientTest, UnreachableServerIsANetworkErrorAndKeepsTheGrant) {
  AppConfig a = public_app();
  a.token_endpoint = "https://localhost:" + std::to_string(closed_port()) + "/token";
  auto client = OAuthClient::create(a, *http_, options());
  ASSERT_THAT(client.status(), IsOk());
  auto store = TokenStore::open(dir_.file("tokens"), SecretRef{kKeyHex});
  ASSERT_THAT(store.status(), IsOk());
  TokenKey key{"harness", kDelegatedScope, "someone@mailbridge.test"};
  ASSERT_THAT((*store)->save(key, "RT-kept-0123456789"), IsOk());
  TokenCache cache(**client, store->get());
  auto st = cache.token(key).status();
  EXPECT_THAT(st, StatusIs(ErrorKind::kNetwork, HasSubstr("app \"harness\"")));
  EXPECT_THAT(st.message(), Not(HasSubstr("RT-kept-0123456789")));
  EXPECT_EQ(sleeps_.size(), 1u) << "retried once (max_attempts = 2)";
  EXPECT_EQ(*(*store)->load(key), std::optional<std::string>("RT-kept-0123456789"));
}

}  // namespace
}  // namespace mb::itest
