// File: tests/integration/entra_test.cpp — mailbridge's OAuth client (auth/oauth.h,
// auth/auth_context.h over core/http) against the Entra ID stand-in (tests/harness/entra.sh):
// v2.0 endpoints derived from authority + tenant, client credentials with a secret and with a
// certificate, Entra's claims, every AADSTS scenario as a kAuth naming cause and fix (never
// the secret), transient failures retried, 429 throttled, invalid_grant ending a stored grant
// while a 503 keeps it, the device-code flow, and the stand-in's bodies against Microsoft's
// documented examples.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "auth/auth_context.h"
#include "auth/oauth.h"
#include "auth/token_store.h"
#include "core/http.h"
#include "tests/integration/entra_harness.h"
#include "tests/integration/harness.h"
#include "tests/status_matchers.h"

namespace mb::itest {
namespace {

using ::mb::testing::IsOk;
using ::mb::testing::StatusIs;
using ::testing::AllOf;
using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::Not;
using json = nlohmann::json;

constexpr const char* kExchangeDefault = "https://outlook.office365.com/.default";
constexpr const char* kGraphDefault = "https://graph.microsoft.com/.default";
constexpr const char* kImapDelegated =
    "https://outlook.office365.com/IMAP.AccessAsUser.All offline_access";

std::set<std::string> keys_of(const json& j) {
  std::set<std::string> keys;
  for (const auto& [k, v] : j.items()) keys.insert(k);
  return keys;
}

json fixture(const std::string& name) {
  auto text = read_file(std::string(MB_SOURCE_DIR) + "/tests/data/entra/doc-examples/" + name);
  EXPECT_THAT(text.status(), IsOk());
  return text.ok() ? json::parse(*text, nullptr, false) : json();
}

class EntraTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(entra::env().empty());
    ASSERT_THAT(entra::admin("POST", "/faults/clear").status(), IsOk());
    ASSERT_THAT(entra::admin("POST", "/stats/reset").status(), IsOk());
    HttpOptions o;
    o.tls.ca_file = entra::at("MB_ENTRA_CA_FILE");
    o.timeouts = Timeouts{std::chrono::seconds(10), std::chrono::seconds(10)};
    http_ = make_http_client(o);
    options_.sleep = [this](std::chrono::milliseconds d) { sleeps_.push_back(d); };
    options_.backoff_base = std::chrono::milliseconds(1);
  }
  void TearDown() override {
    (void)entra::admin("POST", "/faults/clear");
    (void)entra::admin("POST", "/settings", {{"device_interval", 5}});
  }

  // A fresh app with every permission and a client secret.
  json new_secret_app(json extra = json::object()) {
    json spec = {{"secret", true}, {"roles", entra::all_roles()}, {"scopes", entra::all_scopes()}};
    spec.update(extra);
    auto app = entra::register_app(spec);
    EXPECT_THAT(app.status(), IsOk());
    return app.ok() ? *app : json::object();
  }

  std::unique_ptr<OAuthClient> client_for(const AppConfig& app) {
    auto c = OAuthClient::create(app, *http_, options_);
    EXPECT_THAT(c.status(), IsOk());
    return c.ok() ? std::move(*c) : nullptr;
  }

  Result<TokenResponse> app_only_token(const AppConfig& app, const std::string& scope) {
    auto c = client_for(app);
    if (!c) return Status(ErrorKind::kInternal, "no client");
    return c->acquire(TokenKey{app.name, scope, ""}, std::nullopt);
  }

  int64_t grant_count(const std::string& grant_type) {
    auto stats = entra::admin("GET", "/stats");
    if (!stats.ok()) return -1;
    return (*stats)["by_grant_type"].value(grant_type, int64_t{0});
  }

  // Starts a device login for the stand-in's public client; the injected sleep approves it.
  Result<TokenResponse> device_login(const AppConfig& app, const std::string& action) {
    auto c = client_for(app);
    if (!c) return Status(ErrorKind::kInternal, "no client");
    auto start = c->start_device_login(kImapDelegated);
    if (!start.ok()) return start.status();
    std::string user_code = start->user_code;
    options_sleep_action_ = [user_code, action](int call) {
      if (call == 0) {
        (void)entra::admin("POST", "/device/" + action, {{"user_code", user_code}});
      }
    };
    auto c2 = client_for(app);
    return c2->finish_device_login(*start);
  }

  std::unique_ptr<HttpClient> http_;
  OAuthClientOptions options_;
  std::vector<std::chrono::milliseconds> sleeps_;
  std::function<void(int)> options_sleep_action_;
};

// ---- endpoints and grants ----

TEST_F(EntraTest, EndpointsAreDerivedFromAuthorityAndTenant) {
  AppConfig app = entra::app_config("contoso", "id", "s");
  app.tenant = entra::at("MB_ENTRA_TENANT_DOMAIN");
  auto ep = resolve_endpoints(app);
  ASSERT_THAT(ep.status(), IsOk());
  const std::string base = entra::at("MB_ENTRA_AUTHORITY") + "/" + app.tenant + "/oauth2/v2.0/";
  EXPECT_EQ(ep->token, base + "token");
  EXPECT_EQ(ep->device_authorization, base + "devicecode");
}

TEST_F(EntraTest, SecretGrantGivesAnExchangeTokenWithTheAppsRoles) {
  json reg = new_secret_app();
  AppConfig app = entra::app_config("contoso", reg["client_id"], reg["secret"]);
  app.tenant = entra::at("MB_ENTRA_TENANT_DOMAIN");  // a domain works as well as the id
  auto token = app_only_token(app, default_scope(app, Resource::kExchange));
  ASSERT_THAT(token.status(), IsOk());
  EXPECT_GT(token->expires_in.count(), 3000);
  EXPECT_FALSE(token->refresh_token.has_value());
  auto claims = decode_token_claims(token->access_token);
  ASSERT_TRUE(claims.has_value());
  EXPECT_EQ(claims->aud, "https://outlook.office365.com");
  EXPECT_EQ(claims->tid, entra::at("MB_ENTRA_TENANT_ID"));
  EXPECT_EQ(claims->iss, "https://sts.windows.net/" + entra::at("MB_ENTRA_TENANT_ID") + "/");
  EXPECT_EQ(claims->appid, reg["client_id"].get<std::string>());
  EXPECT_THAT(claims->roles, Contains("IMAP.AccessAsApp"));
  EXPECT_TRUE(claims->scp.empty());
  // The request went where the Entra profile says, with the documented form fields.
  auto reqs = entra::admin("GET", "/requests");
  ASSERT_THAT(reqs.status(), IsOk());
  const json& last = (*reqs)["requests"].back();
  EXPECT_EQ(last["path"], "/" + app.tenant + "/oauth2/v2.0/token");
  EXPECT_EQ(last["form"]["grant_type"], "client_credentials");
  EXPECT_EQ(last["form"]["scope"], kExchangeDefault);
}

TEST_F(EntraTest, GraphScopeGivesAGraphToken) {
  json reg = new_secret_app({{"roles", {{"graph", {"Mail.ReadWrite"}}}}});
  AppConfig app = entra::app_config("contoso", reg["client_id"], reg["secret"]);
  auto token = app_only_token(app, default_scope(app, Resource::kGraph));
  ASSERT_THAT(token.status(), IsOk());
  auto claims = decode_token_claims(token->access_token);
  ASSERT_TRUE(claims.has_value());
  EXPECT_EQ(claims->aud, "https://graph.microsoft.com");
  EXPECT_EQ(claims->roles, std::vector<std::string>{"Mail.ReadWrite"});
}

TEST_F(EntraTest, NationalCloudResourceBecomesTheAudience) {
  json reg = new_secret_app();
  AppConfig app = entra::app_config("usgov", reg["client_id"], reg["secret"]);
  app.scopes = {"https://graph.microsoft.us/.default"};
  auto token = app_only_token(app, default_scope(app, Resource::kGraph));
  ASSERT_THAT(token.status(), IsOk());
  EXPECT_EQ(decode_token_claims(token->access_token)->aud, "https://graph.microsoft.us");
  // And the profile's own derivation for that cloud's authority (no server needed).
  AppConfig gov = app;
  gov.authority = "https://login.microsoftonline.us";
  gov.scopes.clear();
  auto ep = resolve_endpoints(gov);
  ASSERT_THAT(ep.status(), IsOk());
  EXPECT_EQ(ep->token, "https://login.microsoftonline.us/" + gov.tenant + "/oauth2/v2.0/token");
  EXPECT_EQ(default_scope(gov, Resource::kGraph), "https://graph.microsoft.us/.default");
}

TEST_F(EntraTest, CertificateGrantSignsAFreshAssertionEachTime) {
  AppConfig app = entra::app_config("cert", entra::at("MB_ENTRA_CERT_APP_ID"), "");
  app.certificate = SecretRef{"file:" + entra::at("MB_ENTRA_CERT_PEM")};
  auto c = client_for(app);
  ASSERT_NE(c, nullptr);
  for (int i = 0; i < 2; ++i) {  // the stand-in refuses a reused jti
    auto token = c->acquire(TokenKey{app.name, kExchangeDefault, ""}, std::nullopt);
    ASSERT_THAT(token.status(), IsOk()) << "attempt " << i;
    EXPECT_THAT(decode_token_claims(token->access_token)->roles, Contains("IMAP.AccessAsApp"));
  }
  auto reqs = entra::admin("GET", "/requests");
  ASSERT_THAT(reqs.status(), IsOk());
  const json& form = (*reqs)["requests"].back()["form"];
  EXPECT_EQ(form["client_assertion_type"], "urn:ietf:params:oauth:client-assertion-type:jwt-bearer");
  EXPECT_EQ(form["client_assertion"], "<present>");
  EXPECT_FALSE(form.contains("client_secret"));
}

// ---- AADSTS scenarios ----

struct Scenario {
  std::string name;
  long code;
  json app_spec;          // registered first (secret, roles, ...)
  std::string tenant;     // "" = the app's tenant; "other" = the second tenant; else literal
  bool wrong_secret = false;
  bool unknown_app = false;
};

TEST_F(EntraTest, EveryAadstsScenarioIsAnAuthErrorWithCauseAndNoSecret) {
  const std::vector<Scenario> scenarios = {
      {"wrong secret", 7000215, json::object(), "", true, false},
      {"expired secret", 7000222, {{"secret_expired", true}}, "", false, false},
      {"unknown app", 700016, json::object(), "", false, true},
      {"wrong tenant", 700016, json::object(), "other", false, false},
      {"unknown tenant", 90002, json::object(), "nosuch.onmicrosoft.com", false, false},
      {"no admin consent", 65001, {{"consent", false}}, "", false, false},
      {"conditional access", 53003, {{"force_error", 53003}}, "", false, false},
      {"app disabled", 7000112, {{"disabled", true}}, "", false, false},
  };
  for (const Scenario& s : scenarios) {
    SCOPED_TRACE(s.name);
    json reg = new_secret_app(s.app_spec);
    std::string secret = reg.value("secret", "");
    ASSERT_FALSE(secret.empty());
    std::string client_id = s.unknown_app ? "11111111-2222-3333-4444-555555555555"
                                          : reg["client_id"].get<std::string>();
    std::string used_secret = s.wrong_secret ? secret + "x" : secret;
    AppConfig app = entra::app_config("contoso-" + std::to_string(s.code), client_id, used_secret);
    if (s.tenant == "other") app.tenant = entra::at("MB_ENTRA_OTHER_TENANT_ID");
    else if (!s.tenant.empty()) app.tenant = s.tenant;
    auto token = app_only_token(app, kExchangeDefault);
    ASSERT_THAT(token.status(), StatusIs(ErrorKind::kAuth, AllOf(HasSubstr(std::to_string(s.code)),
                                                                  HasSubstr(app.name))));
    const std::string msg = token.status().message();
    EXPECT_THAT(msg, Not(HasSubstr(secret)));
    EXPECT_THAT(msg, Not(HasSubstr(used_secret)));
    EXPECT_THAT(msg, Not(HasSubstr("auth login"))) << "app-only apps do not sign users in";
    if (s.code == 65001) {
      EXPECT_THAT(msg, HasSubstr(admin_consent_url(app)));
    }
    if (const AadstsAdvice* advice = find_aadsts(s.code)) {
      std::string fix(advice->app_only_fix.empty() ? advice->fix : advice->app_only_fix);
      EXPECT_THAT(msg, AllOf(HasSubstr(std::string(advice->cause)),
                             HasSubstr(fix.substr(0, fix.find("{consent_url}")))));
    } else {
      ADD_FAILURE() << "aadsts_table() has no advice for " << s.code;
    }
  }
}

TEST_F(EntraTest, AssertionWithAnUnregisteredCertificateIs700027) {
  AppConfig app = entra::app_config("cert", entra::at("MB_ENTRA_CERT_APP_ID"), "");
  app.certificate = SecretRef{"file:" + entra::at("MB_ENTRA_OTHER_CERT_PEM")};
  auto token = app_only_token(app, kExchangeDefault);
  EXPECT_THAT(token.status(), StatusIs(ErrorKind::kAuth, HasSubstr("700027")));
  EXPECT_THAT(token.status().message(), Not(HasSubstr("eyJ")));  // no assertion text
}

// ---- transient failures ----

TEST_F(EntraTest, ServiceUnavailableIsRetriedThenSucceeds) {
  json reg = new_secret_app();
  AppConfig app = entra::app_config("contoso", reg["client_id"], reg["secret"]);
  ASSERT_THAT(entra::admin("POST", "/faults", {{"status", 503}, {"count", 2}}).status(), IsOk());
  auto token = app_only_token(app, kExchangeDefault);
  ASSERT_THAT(token.status(), IsOk());
  EXPECT_EQ(grant_count("client_credentials"), 3);
  EXPECT_EQ(sleeps_.size(), 2u);
}

TEST_F(EntraTest, TemporarilyUnavailableIn400IsRetriedToo) {
  json reg = new_secret_app();
  AppConfig app = entra::app_config("contoso", reg["client_id"], reg["secret"]);
  ASSERT_THAT(entra::admin("POST", "/faults",
                           {{"status", 400}, {"error", "temporarily_unavailable"}, {"count", 1}})
                  .status(),
              IsOk());
  ASSERT_THAT(app_only_token(app, kExchangeDefault).status(), IsOk());
  EXPECT_EQ(grant_count("client_credentials"), 2);
}

TEST_F(EntraTest, EndlessServiceUnavailableIsANetworkErrorAfterMaxAttempts) {
  json reg = new_secret_app();
  AppConfig app = entra::app_config("contoso", reg["client_id"], reg["secret"]);
  ASSERT_THAT(entra::admin("POST", "/faults", {{"status", 503}, {"count", 50}}).status(), IsOk());
  auto token = app_only_token(app, kExchangeDefault);
  EXPECT_THAT(token.status(), StatusIs(ErrorKind::kNetwork, HasSubstr(app.name)));
  EXPECT_EQ(grant_count("client_credentials"), options_.max_attempts);
}

TEST_F(EntraTest, TooManyRequestsIsThrottledWithRetryAfter) {
  json reg = new_secret_app();
  AppConfig app = entra::app_config("contoso", reg["client_id"], reg["secret"]);
  ASSERT_THAT(entra::admin("POST", "/faults",
                           {{"status", 429}, {"error", "invalid_request"}, {"retry_after", 7}})
                  .status(),
              IsOk());
  auto token = app_only_token(app, kExchangeDefault);
  ASSERT_THAT(token.status(), StatusIs(ErrorKind::kThrottled, HasSubstr(app.name)));
  ASSERT_TRUE(token.status().retry_after().has_value());
  EXPECT_EQ(*token.status().retry_after(), std::chrono::seconds(7));
  EXPECT_EQ(grant_count("client_credentials"), 1);  // not retried here: the caller waits
}

// ---- delegated: device code, refresh, grant lifecycle ----

class EntraDelegatedTest : public EntraTest {
 protected:
  void SetUp() override {
    EntraTest::SetUp();
    options_.sleep = [this](std::chrono::milliseconds d) {
      sleeps_.push_back(d);
      if (options_sleep_action_) options_sleep_action_(static_cast<int>(sleeps_.size()) - 1);
    };
    app_ = entra::app_config("desk", entra::at("MB_ENTRA_PUBLIC_APP_ID"), "", "delegated");
  }
  AppConfig app_;
};

TEST_F(EntraDelegatedTest, DeviceCodeApprovedGivesAUserTokenAndARefreshToken) {
  auto c = client_for(app_);
  ASSERT_NE(c, nullptr);
  auto start = c->start_device_login(kImapDelegated);
  ASSERT_THAT(start.status(), IsOk());
  EXPECT_FALSE(start->user_code.empty());
  EXPECT_EQ(start->verification_uri, "https://microsoft.com/devicelogin");
  EXPECT_THAT(start->message, HasSubstr(start->user_code));
  EXPECT_EQ(start->interval, std::chrono::seconds(5));
  options_sleep_action_ = [code = start->user_code](int call) {
    if (call == 0) (void)entra::admin("POST", "/device/approve", {{"user_code", code}});
  };
  auto c2 = client_for(app_);
  auto token = c2->finish_device_login(*start);
  ASSERT_THAT(token.status(), IsOk());
  ASSERT_TRUE(token->refresh_token.has_value());
  auto claims = decode_token_claims(token->access_token);
  ASSERT_TRUE(claims.has_value());
  EXPECT_EQ(claims->upn, entra::at("MB_ENTRA_USER"));
  EXPECT_THAT(claims->scp, Contains("IMAP.AccessAsUser.All"));
  EXPECT_TRUE(claims->roles.empty());
  ASSERT_FALSE(sleeps_.empty());
  EXPECT_EQ(sleeps_.front(), std::chrono::seconds(5));
}

TEST_F(EntraDelegatedTest, SlowDownAddsFiveSecondsToTheInterval) {
  auto c = client_for(app_);
  ASSERT_NE(c, nullptr);
  auto start = c->start_device_login(kImapDelegated);
  ASSERT_THAT(start.status(), IsOk());
  // The injected sleep does not wait, so a second poll of a pending code comes too soon and
  // gets slow_down; the code is approved once the client has lengthened its interval.
  options_sleep_action_ = nullptr;
  options_.sleep = [this, code = start->user_code](std::chrono::milliseconds d) {
    sleeps_.push_back(d);
    if (d > std::chrono::seconds(5)) {
      (void)entra::admin("POST", "/device/approve", {{"user_code", code}});
    }
  };
  auto c2 = client_for(app_);
  auto token = c2->finish_device_login(*start);
  ASSERT_THAT(token.status(), IsOk());
  ASSERT_GE(sleeps_.size(), 2u);
  EXPECT_EQ(sleeps_.back() - sleeps_[sleeps_.size() - 2], std::chrono::seconds(5));
  EXPECT_EQ(sleeps_.back(), std::chrono::seconds(10));
  auto stats = entra::admin("GET", "/stats");
  ASSERT_THAT(stats.status(), IsOk());
  EXPECT_EQ((*stats)["slow_down"], 1);
}

TEST_F(EntraDelegatedTest, DeniedAndExpiredDeviceCodesEndTheLogin) {
  for (const char* action : {"deny", "expire"}) {
    SCOPED_TRACE(action);
    sleeps_.clear();
    auto token = device_login(app_, action);
    EXPECT_THAT(token.status(), StatusIs(ErrorKind::kAuth, HasSubstr(app_.name)));
  }
}

TEST_F(EntraDelegatedTest, RefreshRotatesAndInvalidGrantDeletesTheStoredGrantWhile503KeepsIt) {
  auto login = device_login(app_, "approve");
  ASSERT_THAT(login.status(), IsOk());
  ASSERT_TRUE(login->refresh_token.has_value());

  TempDir tmp;
  Config cfg;
  cfg.store.path = tmp.file("mb.db");
  cfg.auth.token_dir = tmp.file("tokens");
  cfg.auth.key = SecretRef{"MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="};
  cfg.apps = {app_};
  TokenCacheOptions cache_options;
  cache_options.failure_backoff = std::chrono::seconds(0);
  auto auth = AuthContext::create(cfg, nullptr, options_, cache_options);
  ASSERT_THAT(auth.status(), IsOk());
  auto key = (*auth)->key_for(app_.name, Resource::kExchange, "imap", entra::at("MB_ENTRA_USER"));
  ASSERT_THAT(key.status(), IsOk());
  ASSERT_NE((*auth)->store(), nullptr);
  ASSERT_THAT((*auth)->store()->save(*key, *login->refresh_token), IsOk());

  // A refresh rotates the stored refresh token.
  ASSERT_THAT((*auth)->token(*key).status(), IsOk());
  auto stored = (*auth)->store()->load(*key);
  ASSERT_THAT(stored.status(), IsOk());
  ASSERT_TRUE(stored->has_value());
  EXPECT_NE(**stored, *login->refresh_token);
  EXPECT_EQ(grant_count("refresh_token"), 1);
  auto reqs = entra::admin("GET", "/requests");
  ASSERT_THAT(reqs.status(), IsOk());
  EXPECT_EQ((*reqs)["requests"].back()["form"].value("scope", ""), key->scope);

  // 503s until the client gives up: a network error, and the grant stays.
  (*auth)->cache().invalidate(*key, *(*auth)->token(*key));
  ASSERT_THAT(entra::admin("POST", "/faults", {{"status", 503}, {"count", 50}}).status(), IsOk());
  EXPECT_THAT((*auth)->token(*key).status(), StatusIs(ErrorKind::kNetwork, HasSubstr(app_.name)));
  ASSERT_THAT(entra::admin("POST", "/faults/clear").status(), IsOk());
  stored = (*auth)->store()->load(*key);
  ASSERT_THAT(stored.status(), IsOk());
  EXPECT_TRUE(stored->has_value());

  // The administrator revokes the grant: invalid_grant (AADSTS50173) deletes it.
  ASSERT_THAT(entra::admin("POST", "/grants/revoke", {{"client_id", app_.client_id}}).status(),
              IsOk());
  auto dead = (*auth)->token(*key);
  EXPECT_THAT(dead.status(), StatusIs(ErrorKind::kAuth, HasSubstr("50173")));
  EXPECT_TRUE(is_invalid_grant(dead.status()));
  stored = (*auth)->store()->load(*key);
  ASSERT_THAT(stored.status(), IsOk());
  EXPECT_FALSE(stored->has_value());
}

TEST_F(EntraDelegatedTest, ExpiredRefreshTokenIs700082) {
  auto login = device_login(app_, "approve");
  ASSERT_THAT(login.status(), IsOk());
  ASSERT_THAT(entra::admin("POST", "/grants/expire", {{"client_id", app_.client_id}}).status(),
              IsOk());
  auto c = client_for(app_);
  auto token = c->acquire(TokenKey{app_.name, kImapDelegated, entra::at("MB_ENTRA_USER")},
                          login->refresh_token);
  EXPECT_THAT(token.status(), StatusIs(ErrorKind::kAuth, HasSubstr("700082")));
  EXPECT_TRUE(is_invalid_grant(token.status()));
  EXPECT_THAT(token.status().message(), Not(HasSubstr(*login->refresh_token)));
}

// ---- the stand-in's bodies against Microsoft's documented examples ----

TEST_F(EntraTest, ResponsesHaveTheFieldsOfMicrosoftsExamples) {
  auto post = [&](const std::string& url, const std::string& form) {
    HttpRequest req;
    req.method = "POST";
    req.url = url;
    req.headers = {{"Content-Type", "application/x-www-form-urlencoded"}};
    req.body = form;
    return http_->send(req);
  };
  const std::string token_url = entra::at("MB_ENTRA_TOKEN_URL");
  auto err = post(token_url, form_encode({{"grant_type", "client_credentials"},
                                          {"client_id", entra::at("MB_ENTRA_APP_ID")},
                                          {"client_secret", "wrong"},
                                          {"scope", kExchangeDefault}}));
  ASSERT_THAT(err.status(), IsOk());
  EXPECT_EQ(err->status, 401);
  json body = json::parse(err->body);
  EXPECT_EQ(keys_of(body), keys_of(fixture("error_response.json")));
  EXPECT_THAT(body["error_description"].get<std::string>(),
              AllOf(HasSubstr("AADSTS7000215: "), HasSubstr("\r\nTrace ID: "),
                    HasSubstr("\r\nCorrelation ID: "), HasSubstr("\r\nTimestamp: ")));
  EXPECT_EQ(body["error_codes"], json::array({7000215}));

  auto ok = post(token_url, form_encode({{"grant_type", "client_credentials"},
                                         {"client_id", entra::at("MB_ENTRA_APP_ID")},
                                         {"client_secret", entra::at("MB_ENTRA_APP_SECRET")},
                                         {"scope", kGraphDefault}}));
  ASSERT_THAT(ok.status(), IsOk());
  ASSERT_EQ(ok->status, 200);
  for (const auto& k : keys_of(fixture("client_credentials_response.json"))) {
    EXPECT_TRUE(json::parse(ok->body).contains(k)) << k;
  }

  auto dc = post(entra::at("MB_ENTRA_DEVICE_URL"),
                 form_encode({{"client_id", entra::at("MB_ENTRA_PUBLIC_APP_ID")},
                              {"scope", kImapDelegated}}));
  ASSERT_THAT(dc.status(), IsOk());
  ASSERT_EQ(dc->status, 200);
  json dcb = json::parse(dc->body);
  EXPECT_EQ(keys_of(dcb), keys_of(fixture("devicecode_response.json")));
  auto pending = post(token_url, form_encode({{"grant_type",
                                               "urn:ietf:params:oauth:grant-type:device_code"},
                                              {"client_id", entra::at("MB_ENTRA_PUBLIC_APP_ID")},
                                              {"device_code", dcb["device_code"]}}));
  ASSERT_THAT(pending.status(), IsOk());
  json pb = json::parse(pending->body);
  EXPECT_EQ(keys_of(pb), keys_of(fixture("authorization_pending.json")));
  EXPECT_EQ(pb["error"], "authorization_pending");
  EXPECT_EQ(pb["error_codes"], json::array({70016}));
}

}  // namespace
}  // namespace mb::itest
