// File: tests/unit/auth/oauth_test.cpp — OAuthClient over a scripted HttpClient: the exact
// form of every grant, the PS256 client assertion checked with OpenSSL, token responses,
// typed errors from Entra's error bodies, retries with injected sleep, the device-code state
// machine, and that no secret, assertion or token ever reaches a message.
#include "auth/oauth.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>

#include <filesystem>
#include <set>

#include <nlohmann/json.hpp>

#include "auth/base64.h"
#include "tests/status_matchers.h"
#include "tests/unit/auth/oauth_fakes.h"

namespace mb {
namespace {

using ::mb::testing::FakeHttp;
using ::mb::testing::form_fields;
using ::mb::testing::IsOk;
using ::mb::testing::StatusIs;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;
using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr char kSecret[] = "S3cr3t~Value.with+odd/chars=";
constexpr char kTokenUrl[] = "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token";

AppConfig secret_app() {
  AppConfig app;
  app.name = "contoso";
  app.tenant = "contoso.onmicrosoft.com";
  app.client_id = "00001111-aaaa-2222-bbbb-3333cccc4444";
  app.client_secret = SecretRef{kSecret};
  return app;
}

AppConfig public_app() {
  AppConfig app = secret_app();
  app.client_secret = {};
  app.flow = "delegated";
  return app;
}

std::string token_body(const std::string& access, int expires_in = 3599,
                       const std::string& extra = "") {
  return R"({"token_type":"Bearer","access_token":")" + access + R"(","expires_in":)" +
         std::to_string(expires_in) + extra + "}";
}

// Records sleeps; advances a fake clock by each one.
struct FakeTime {
  std::vector<milliseconds> sleeps;
  std::chrono::system_clock::time_point now{seconds(1'800'000'000)};
  OAuthClientOptions options(int attempts = 4) {
    OAuthClientOptions o;
    o.max_attempts = attempts;
    o.sleep = [this](milliseconds d) { sleeps.push_back(d); now += d; };
    o.clock = [this] { return now; };
    return o;
  }
};

std::unique_ptr<OAuthClient> make_client(const AppConfig& app, FakeHttp& http, FakeTime& time,
                                         int attempts = 4) {
  auto c = OAuthClient::create(app, http, time.options(attempts));
  EXPECT_THAT(c.status(), IsOk());
  return c.ok() ? std::move(*c) : nullptr;
}

TokenKey app_key(const AppConfig& app) {
  return {app.name, "https://outlook.office365.com/.default", ""};
}

TEST(OAuthClient, ClientCredentialsWithSecretSendsEntrasForm) {
  FakeHttp http;
  FakeTime time;
  http.reply(200, token_body("AT-1", 3599, R"(,"ext_expires_in":3599)"));
  auto client = make_client(secret_app(), http, time);
  auto t = client->acquire(app_key(secret_app()), std::nullopt);
  ASSERT_THAT(t.status(), IsOk());
  EXPECT_EQ(t->access_token, "AT-1");
  EXPECT_EQ(t->expires_in, seconds(3599));
  EXPECT_FALSE(t->refresh_token.has_value());
  ASSERT_EQ(http.requests.size(), 1u);
  const HttpRequest& req = http.requests[0];
  EXPECT_EQ(req.method, "POST");
  EXPECT_EQ(req.url, kTokenUrl);
  EXPECT_TRUE(req.sensitive_body);
  EXPECT_THAT(req.headers, ::testing::Contains(std::pair<std::string, std::string>(
                               "Content-Type", "application/x-www-form-urlencoded")));
  int repeats = 0;
  auto form = form_fields(req.body, &repeats);
  EXPECT_EQ(repeats, 0);
  EXPECT_EQ(form, (std::map<std::string, std::string>{
                      {"grant_type", "client_credentials"},
                      {"scope", "https://outlook.office365.com/.default"},
                      {"client_id", "00001111-aaaa-2222-bbbb-3333cccc4444"},
                      {"client_secret", kSecret}}));
}

TEST(OAuthClient, ParsesRefreshInAndNumbersSentAsStrings) {
  FakeHttp http;
  FakeTime time;
  http.reply(200, R"({"token_type":"Bearer","access_token":"AT","expires_in":"4000",)"
                  R"("refresh_in":"2000","refresh_token":"RT-2","scope":"a b"})");
  auto client = make_client(public_app(), http, time);
  auto t = client->acquire({"contoso", "a b", "u@contoso.com"}, std::string("RT-1"));
  ASSERT_THAT(t.status(), IsOk());
  EXPECT_EQ(t->expires_in, seconds(4000));
  EXPECT_EQ(t->refresh_in, std::optional<seconds>(seconds(2000)));
  EXPECT_EQ(t->refresh_token, std::optional<std::string>("RT-2"));
  EXPECT_EQ(t->scope, "a b");
}

TEST(OAuthClient, MissingExpiresInMeansAnHour) {
  FakeHttp http;
  FakeTime time;
  http.reply(200, R"({"access_token":"AT"})");
  auto t = make_client(secret_app(), http, time)->acquire(app_key(secret_app()), std::nullopt);
  ASSERT_THAT(t.status(), IsOk());
  EXPECT_EQ(t->expires_in, seconds(3600));
  EXPECT_FALSE(t->refresh_in.has_value());
}

TEST(OAuthClient, AnAnswerWithoutAccessTokenIsAProtocolError) {
  FakeHttp http;
  FakeTime time;
  http.reply(200, R"({"token_type":"Bearer"})");
  http.reply(200, "<html>proxy login</html>");
  auto client = make_client(secret_app(), http, time);
  EXPECT_THAT(client->acquire(app_key(secret_app()), std::nullopt).status(),
              StatusIs(ErrorKind::kProtocol, HasSubstr("no access_token")));
  EXPECT_THAT(client->acquire(app_key(secret_app()), std::nullopt).status(),
              StatusIs(ErrorKind::kProtocol, HasSubstr("no access_token")));
}

TEST(OAuthClient, RefreshGrantAlwaysSendsScopeAndClientAuth) {
  FakeHttp http;
  FakeTime time;
  http.reply(200, token_body("AT", 3600, R"(,"refresh_token":"RT-new")"));
  AppConfig app = secret_app();
  app.flow = "delegated";  // a confidential client with users' grants
  auto client = make_client(app, http, time);
  TokenKey key{"contoso", "https://outlook.office365.com/IMAP.AccessAsUser.All offline_access",
               "u@contoso.com"};
  auto t = client->acquire(key, std::string("RT-old"));
  ASSERT_THAT(t.status(), IsOk());
  EXPECT_EQ(t->refresh_token, std::optional<std::string>("RT-new"));
  EXPECT_EQ(form_fields(http.requests.at(0).body),
            (std::map<std::string, std::string>{{"grant_type", "refresh_token"},
                                                {"refresh_token", "RT-old"},
                                                {"scope", key.scope},
                                                {"client_id", app.client_id},
                                                {"client_secret", kSecret}}));
}

TEST(OAuthClient, RefreshGrantOfAPublicClientSendsOnlyTheClientId) {
  FakeHttp http;
  FakeTime time;
  http.reply(200, token_body("AT"));
  auto client = make_client(public_app(), http, time);
  ASSERT_THAT(client->acquire({"contoso", "s1 offline_access", "u"}, std::string("RT")).status(),
              IsOk());
  auto form = form_fields(http.requests.at(0).body);
  EXPECT_EQ(form.count("client_secret"), 0u);
  EXPECT_EQ(form.count("client_assertion"), 0u);
  EXPECT_EQ(form["client_id"], public_app().client_id);
  EXPECT_EQ(form["scope"], "s1 offline_access");
}

TEST(OAuthClient, DelegatedWithoutAGrantAsksForAuthLogin) {
  FakeHttp http;
  FakeTime time;
  auto client = make_client(public_app(), http, time);
  EXPECT_THAT(client->acquire({"contoso", "s", "u@contoso.com"}, std::nullopt).status(),
              StatusIs(ErrorKind::kAuth, AllOf(HasSubstr("mailbridge auth login contoso"),
                                               HasSubstr("u@contoso.com"))));
  EXPECT_TRUE(http.requests.empty());
}

TEST(OAuthClient, EmptyFlowIsAppOnlyWithASecretAndDelegatedWithout) {
  FakeHttp http;
  FakeTime time;
  http.reply(200, token_body("AT"));
  AppConfig app = secret_app();
  app.flow.clear();
  ASSERT_THAT(make_client(app, http, time)->acquire(app_key(app), std::nullopt).status(), IsOk());
  app.client_secret = {};
  EXPECT_THAT(make_client(app, http, time)->acquire(app_key(app), std::nullopt).status(),
              StatusIs(ErrorKind::kAuth, HasSubstr("auth login")));
}

TEST(OAuthClient, CreateRefusesAMissingClientIdOrAnUnreadableSecret) {
  FakeHttp http;
  AppConfig app = secret_app();
  app.client_id.clear();
  EXPECT_THAT(OAuthClient::create(app, http).status(),
              StatusIs(ErrorKind::kConfig, HasSubstr("client_id")));
  app = secret_app();
  app.client_secret = SecretRef{"env:MB_OAUTH_TEST_SURELY_UNSET"};
  EXPECT_THAT(OAuthClient::create(app, http).status(),
              StatusIs(ErrorKind::kConfig, HasSubstr("MB_OAUTH_TEST_SURELY_UNSET")));
  app = secret_app();
  app.tenant.clear();
  EXPECT_THAT(OAuthClient::create(app, http).status(),
              StatusIs(ErrorKind::kConfig, HasSubstr("tenant")));
}

// ---- the certificate credential ----------------------------------------------------------

struct Jwt {
  nlohmann::json header, claims;
  std::string signing_input, signature;
};

std::string b64url_decode(std::string s) {
  for (char& c : s) c = c == '-' ? '+' : c == '_' ? '/' : c;
  while (s.size() % 4) s += '=';
  return base64_decode(s).value_or("<bad base64url>");
}

Jwt split_jwt(const std::string& jwt) {
  size_t a = jwt.find('.'), b = jwt.rfind('.');
  Jwt out;
  out.header = nlohmann::json::parse(b64url_decode(jwt.substr(0, a)));
  out.claims = nlohmann::json::parse(b64url_decode(jwt.substr(a + 1, b - a - 1)));
  out.signing_input = jwt.substr(0, b);
  out.signature = b64url_decode(jwt.substr(b + 1));
  EXPECT_EQ(jwt.find('='), std::string::npos) << "base64url must not be padded";
  return out;
}

// RSASSA-PSS with SHA-256 and a 32-byte salt, checked with the certificate's public key.
bool verify_ps256(const std::string& cert_pem, const Jwt& jwt) {
  BIO* bio = BIO_new_mem_buf(cert_pem.data(), static_cast<int>(cert_pem.size()));
  X509* cert = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  EVP_PKEY* pub = X509_get_pubkey(cert);
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_PKEY_CTX* pctx = nullptr;
  bool ok = EVP_DigestVerifyInit(ctx, &pctx, EVP_sha256(), nullptr, pub) == 1 &&
            EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) == 1 &&
            EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, 32) == 1 &&
            EVP_DigestVerify(ctx, reinterpret_cast<const unsigned char*>(jwt.signature.data()),
                             jwt.signature.size(),
                             reinterpret_cast<const unsigned char*>(jwt.signing_input.data()),
                             jwt.signing_input.size()) == 1;
  EVP_MD_CTX_free(ctx);
  EVP_PKEY_free(pub);
  X509_free(cert);
  return ok;
}

std::string x5t_s256(const std::string& cert_pem) {
  BIO* bio = BIO_new_mem_buf(cert_pem.data(), static_cast<int>(cert_pem.size()));
  X509* cert = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  unsigned char md[32];
  unsigned int len = 0;
  X509_digest(cert, EVP_sha256(), md, &len);
  X509_free(cert);
  std::string s = base64_encode(std::string(reinterpret_cast<char*>(md), len));
  while (!s.empty() && s.back() == '=') s.pop_back();
  for (char& c : s) c = c == '+' ? '-' : c == '/' ? '_' : c;
  return s;
}

class CertificateTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { cert_ = new testing::TestCert(testing::make_test_cert()); }
  static void TearDownTestSuite() { delete cert_; }
  static testing::TestCert* cert_;
};
testing::TestCert* CertificateTest::cert_ = nullptr;

TEST_F(CertificateTest, AssertionIsEntrasPs256Jwt) {
  auto now = std::chrono::system_clock::now();
  auto jwt = make_client_assertion({cert_->pem()}, "client-1", kTokenUrl, now);
  ASSERT_THAT(jwt.status(), IsOk());
  Jwt j = split_jwt(*jwt);
  EXPECT_EQ(j.header["alg"], "PS256");
  EXPECT_EQ(j.header["typ"], "JWT");
  EXPECT_EQ(j.header["x5t#S256"], x5t_s256(cert_->cert_pem));
  EXPECT_EQ(j.claims["aud"], kTokenUrl);
  EXPECT_EQ(j.claims["iss"], "client-1");
  EXPECT_EQ(j.claims["sub"], "client-1");
  int64_t t = std::chrono::duration_cast<seconds>(now.time_since_epoch()).count();
  EXPECT_EQ(j.claims["nbf"].get<int64_t>(), t);
  EXPECT_EQ(j.claims["iat"].get<int64_t>(), t);
  int64_t exp = j.claims["exp"].get<int64_t>();
  EXPECT_GT(exp, t);
  EXPECT_LE(exp - t, 600);
  EXPECT_TRUE(verify_ps256(cert_->cert_pem, j));
  Jwt tampered = j;
  tampered.signing_input += "x";
  EXPECT_FALSE(verify_ps256(cert_->cert_pem, tampered));
}

TEST_F(CertificateTest, EveryAssertionHasAFreshJti) {
  std::set<std::string> seen;
  for (int i = 0; i < 20; ++i) {
    auto jwt = make_client_assertion({cert_->pem()}, "c", kTokenUrl, std::chrono::system_clock::now());
    ASSERT_THAT(jwt.status(), IsOk());
    seen.insert(split_jwt(*jwt).claims["jti"].get<std::string>());
  }
  EXPECT_EQ(seen.size(), 20u);
}

TEST_F(CertificateTest, RefusesAPemWithoutCertificateOrWithAForeignKey) {
  auto now = std::chrono::system_clock::now();
  EXPECT_THAT(make_client_assertion({cert_->key_pem}, "c", kTokenUrl, now).status(),
              StatusIs(ErrorKind::kConfig, HasSubstr("no X.509 certificate")));
  EXPECT_THAT(make_client_assertion({cert_->cert_pem}, "c", kTokenUrl, now).status(),
              StatusIs(ErrorKind::kConfig, HasSubstr("no unencrypted private key")));
  testing::TestCert other = testing::make_test_cert("other");
  EXPECT_THAT(make_client_assertion({cert_->cert_pem + other.key_pem}, "c", kTokenUrl, now).status(),
              StatusIs(ErrorKind::kConfig, HasSubstr("does not belong")));
}

TEST_F(CertificateTest, ClientCredentialsWithACertificateSendAnAssertionPerRequest) {
  FakeHttp http;
  FakeTime time;
  http.reply(503, "");
  http.reply(200, token_body("AT"));
  AppConfig app = secret_app();
  app.client_secret = {};
  app.certificate = SecretRef{"file:" + testing::write_temp_file("cert.pem", cert_->pem())};
  int64_t start = std::chrono::duration_cast<seconds>(time.now.time_since_epoch()).count();
  auto client = make_client(app, http, time);
  ASSERT_THAT(client->acquire(app_key(app), std::nullopt).status(), IsOk());
  ASSERT_EQ(http.requests.size(), 2u);
  std::set<std::string> jtis;
  for (const auto& req : http.requests) {
    auto form = form_fields(req.body);
    EXPECT_EQ(form.size(), 5u);
    EXPECT_EQ(form["grant_type"], "client_credentials");
    EXPECT_EQ(form["client_id"], app.client_id);
    EXPECT_EQ(form["client_assertion_type"], "urn:ietf:params:oauth:client-assertion-type:jwt-bearer");
    EXPECT_EQ(form.count("client_secret"), 0u);
    Jwt j = split_jwt(form["client_assertion"]);
    EXPECT_EQ(j.claims["aud"], kTokenUrl);
    int64_t nbf = j.claims["nbf"].get<int64_t>();
    EXPECT_GE(nbf, start);
    EXPECT_LE(nbf, std::chrono::duration_cast<seconds>(time.now.time_since_epoch()).count());
    EXPECT_TRUE(verify_ps256(cert_->cert_pem, j));
    jtis.insert(j.claims["jti"].get<std::string>());
  }
  EXPECT_EQ(jtis.size(), 2u);
}

TEST_F(CertificateTest, AnUnusableCertificateIsAConfigErrorAtCreate) {
  FakeHttp http;
  AppConfig app = secret_app();
  app.certificate = SecretRef{"file:" + testing::write_temp_file("key-only.pem", cert_->key_pem)};
  EXPECT_THAT(OAuthClient::create(app, http).status(),
              StatusIs(ErrorKind::kConfig, AllOf(HasSubstr("key-only.pem"), HasSubstr("certificate"))));
}

// ---- errors -------------------------------------------------------------------------------

struct Fixture {
  long code;
  int status;
  std::string error, body;
};

std::vector<Fixture> entra_fixtures() {
  std::vector<Fixture> out;
  std::filesystem::path dir = std::filesystem::path(MB_SOURCE_DIR) / "tests/data/entra/token-errors";
  for (const auto& f : std::filesystem::directory_iterator(dir)) {
    if (f.path().extension() != ".json") continue;
    std::string stem = f.path().stem().string();  // CODE_STATUS_ERROR
    size_t a = stem.find('_'), b = stem.find('_', a + 1);
    out.push_back({std::stol(stem.substr(0, a)), std::stoi(stem.substr(a + 1, b - a - 1)),
                   stem.substr(b + 1), testing::read_file(f.path().string())});
  }
  EXPECT_GE(out.size(), 12u);
  return out;
}

TEST(OAuthErrors, ParsesEntrasErrorBody) {
  for (const Fixture& f : entra_fixtures()) {
    auto e = parse_oauth_error(f.status, f.body);
    ASSERT_TRUE(e.has_value()) << f.code;
    EXPECT_EQ(e->http_status, f.status);
    EXPECT_EQ(e->error, f.error);
    EXPECT_EQ(e->codes, std::vector<long>{f.code});
    EXPECT_THAT(e->description, HasSubstr("AADSTS" + std::to_string(f.code)));
    EXPECT_EQ(e->trace_id.size(), 36u);
    EXPECT_EQ(e->correlation_id.size(), 36u);
  }
}

TEST(OAuthErrors, NotAnErrorBody) {
  EXPECT_FALSE(parse_oauth_error(400, "").has_value());
  EXPECT_FALSE(parse_oauth_error(400, "<html>").has_value());
  EXPECT_FALSE(parse_oauth_error(400, "[1]").has_value());
  EXPECT_FALSE(parse_oauth_error(400, R"({"error":7})").has_value());
  auto e = parse_oauth_error(400, R"({"error":"invalid_grant","error_codes":"x"})");
  ASSERT_TRUE(e.has_value());
  EXPECT_TRUE(e->codes.empty());
}

TEST(OAuthErrors, TableHasEveryCodeOfTheIssueWithCauseAndFix) {
  for (long code : {7000215L, 7000222L, 700016L, 90002L, 65001L, 50173L, 700082L, 70043L, 53003L,
                    700027L, 50012L, 500133L, 7000218L, 700024L, 50034L, 50076L, 50079L, 90014L,
                    500011L, 7000112L, 50126L}) {
    const AadstsAdvice* a = find_aadsts(code);
    ASSERT_NE(a, nullptr) << code;
    EXPECT_FALSE(a->cause.empty());
    EXPECT_FALSE(a->fix.empty());
  }
  std::set<long> codes;
  for (const auto& a : aadsts_table()) EXPECT_TRUE(codes.insert(a.code).second) << a.code;
  EXPECT_EQ(find_aadsts(1), nullptr);
}

TEST(OAuthErrors, EveryEntraFixtureBecomesATypedErrorWithCauseFixAndTrace) {
  for (const Fixture& f : entra_fixtures()) {
    SCOPED_TRACE(f.code);
    FakeHttp http;
    FakeTime time;
    http.reply(f.status, f.body);
    auto st = make_client(secret_app(), http, time)->acquire(app_key(secret_app()), std::nullopt).status();
    auto e = parse_oauth_error(f.status, f.body);
    EXPECT_EQ(st.kind(), ErrorKind::kAuth);
    EXPECT_THAT(st.message(), HasSubstr("app \"contoso\""));
    EXPECT_THAT(st.message(), HasSubstr("(" + f.error + ", AADSTS" + std::to_string(f.code) + ")"));
    EXPECT_THAT(st.message(), HasSubstr("Trace ID " + e->trace_id));
    EXPECT_EQ(is_invalid_grant(st), f.error == "invalid_grant");
    if (const AadstsAdvice* a = find_aadsts(f.code)) {
      // secret_app() is app-only: its own fix where the table has one.
      std::string fix(a->app_only_fix.empty() ? a->fix : a->app_only_fix);
      fix = fix.substr(0, fix.find("{consent_url}"));
      EXPECT_THAT(st.message(), AllOf(HasSubstr(std::string(a->cause)), HasSubstr(fix)));
    }
    EXPECT_EQ(http.requests.size(), 1u) << "an authentication failure is not retried";
  }
}

// An app-only app without admin consent (AADSTS65001) is told to grant it, with the consent
// page of its own authority; no advice sends an app-only app to `mailbridge auth login`
// (a delegated app's sign-in), and a delegated app's advice names the app to sign in with.
TEST(OAuthErrors, AdviceFitsTheAppsFlow) {
  AppConfig app_only = secret_app();
  app_only.authority = "https://login.microsoftonline.us/";
  AppConfig delegated = public_app();
  for (const AadstsAdvice& a : aadsts_table()) {
    SCOPED_TRACE(a.code);
    OAuthError e{400, "invalid_request", "", {a.code}, "", ""};
    EXPECT_THAT(oauth_error_status(e, app_only).message(), Not(HasSubstr("auth login")));
    EXPECT_THAT(oauth_error_status(e, app_only).message(), Not(HasSubstr("{consent_url}")));
    EXPECT_THAT(oauth_error_status(e, delegated).message(), Not(HasSubstr("auth login APP")));
  }
  OAuthError consent{400, "invalid_grant", "AADSTS65001: ...", {65001}, "", ""};
  EXPECT_THAT(oauth_error_status(consent, app_only),
              StatusIs(ErrorKind::kAuth,
                       AllOf(HasSubstr("grant admin consent"),
                             HasSubstr("https://login.microsoftonline.us/contoso.onmicrosoft.com/"
                                       "adminconsent?client_id=00001111-aaaa-2222-bbbb-3333cccc4444"))));
  EXPECT_THAT(oauth_error_status(consent, delegated).message(),
              HasSubstr("`mailbridge auth login`"));
  OAuthError mfa{400, "invalid_grant", "", {50076}, "", ""};
  EXPECT_THAT(oauth_error_status(mfa, delegated).message(),
              HasSubstr("`mailbridge auth login contoso`"));
  EXPECT_EQ(admin_consent_url(app_only),
            "https://login.microsoftonline.us/contoso.onmicrosoft.com/adminconsent?client_id="
            "00001111-aaaa-2222-bbbb-3333cccc4444");
}

TEST(OAuthErrors, ExpiredSecretMessageReadsAsTheIssueShowsIt) {
  OAuthError e{401, "invalid_client", "AADSTS7000222: ...", {7000222}, "tr-1", ""};
  EXPECT_THAT(oauth_error_status(e, "contoso"),
              StatusIs(ErrorKind::kAuth,
                       HasSubstr("app \"contoso\": the token endpoint refused the client "
                                 "(invalid_client, AADSTS7000222): the client secret has expired "
                                 "— create a new secret under Certificates & secrets and update "
                                 "client_secret. Trace ID tr-1.")));
}

TEST(OAuthErrors, KindsPerErrorAndStatus) {
  auto kind = [](int status, const char* error) {
    return oauth_error_status(OAuthError{status, error, "", {}, "", ""}, "a").kind();
  };
  EXPECT_EQ(kind(401, "invalid_client"), ErrorKind::kAuth);
  EXPECT_EQ(kind(400, "unauthorized_client"), ErrorKind::kAuth);
  EXPECT_EQ(kind(400, "access_denied"), ErrorKind::kAuth);
  EXPECT_EQ(kind(400, "invalid_scope"), ErrorKind::kAuth);
  EXPECT_EQ(kind(400, "invalid_request"), ErrorKind::kAuth);
  EXPECT_EQ(kind(429, "invalid_request"), ErrorKind::kThrottled);
  EXPECT_EQ(kind(400, "temporarily_unavailable"), ErrorKind::kNetwork);
  EXPECT_EQ(kind(500, "server_error"), ErrorKind::kNetwork);
  EXPECT_EQ(kind(503, "server_error"), ErrorKind::kNetwork);
  EXPECT_TRUE(is_invalid_grant(oauth_error_status({400, "invalid_grant", "", {}, "", ""}, "a")));
  // An unknown code still shows the server's first line.
  auto st = oauth_error_status({400, "invalid_request", "AADSTS9999: odd.\r\nTrace ID: x", {9999}, "", ""}, "a");
  EXPECT_THAT(st, StatusIs(ErrorKind::kAuth, AllOf(HasSubstr("AADSTS9999: odd."), Not(HasSubstr("\n")))));
}

TEST(OAuthErrors, NonOAuthErrorAnswers) {
  FakeHttp http;
  FakeTime time;
  http.reply(404, "<html>not found</html>");
  http.reply(429, "", {{"retry-after", "30"}});
  auto client = make_client(secret_app(), http, time);
  EXPECT_THAT(client->acquire(app_key(secret_app()), std::nullopt).status(),
              StatusIs(ErrorKind::kProtocol, HasSubstr("HTTP 404")));
  auto st = client->acquire(app_key(secret_app()), std::nullopt).status();
  EXPECT_THAT(st, StatusIs(ErrorKind::kThrottled, HasSubstr("retry after 30 s")));
  EXPECT_EQ(st.retry_after(), std::optional<seconds>(seconds(30)));
  EXPECT_EQ(http.requests.size(), 2u) << "429 is not retried here: the cache backs off";
}

TEST(OAuthErrors, ThrottledWithAnOAuthBody) {
  FakeHttp http;
  FakeTime time;
  http.reply(429, R"({"error":"temporarily_unavailable","error_description":"slow down"})",
             {{"Retry-After", "12"}});
  auto st = make_client(secret_app(), http, time)->acquire(app_key(secret_app()), std::nullopt).status();
  EXPECT_THAT(st, StatusIs(ErrorKind::kThrottled, HasSubstr("retry after 12 s")));
  EXPECT_EQ(st.retry_after(), std::optional<seconds>(seconds(12)));
  EXPECT_EQ(http.requests.size(), 1u);
}

// ---- retries ------------------------------------------------------------------------------

TEST(OAuthRetry, FiveHundredsAreRetriedThenSucceed) {
  FakeHttp http;
  FakeTime time;
  http.reply(500, "");
  http.fail(Status(ErrorKind::kNetwork, "connection reset"));
  http.reply(400, R"({"error":"temporarily_unavailable"})");
  http.reply(200, token_body("AT"));
  auto t = make_client(secret_app(), http, time)->acquire(app_key(secret_app()), std::nullopt);
  ASSERT_THAT(t.status(), IsOk());
  EXPECT_EQ(http.requests.size(), 4u);
  EXPECT_EQ(time.sleeps.size(), 3u);
}

TEST(OAuthRetry, GivesUpAfterMaxAttemptsAsANetworkError) {
  FakeHttp http;
  FakeTime time;
  http.fallback = HttpResponse{503, {}, R"({"error":"server_error","error_description":"busy"})"};
  auto st = make_client(secret_app(), http, time, 3)->acquire(app_key(secret_app()), std::nullopt).status();
  EXPECT_THAT(st, StatusIs(ErrorKind::kNetwork, HasSubstr("app \"contoso\"")));
  EXPECT_EQ(http.requests.size(), 3u);
  EXPECT_EQ(time.sleeps.size(), 2u);
}

TEST(OAuthRetry, TlsAndConfigErrorsAreNotRetried) {
  FakeHttp http;
  FakeTime time;
  http.fail(Status(ErrorKind::kTls, "certificate verify failed"));
  auto st = make_client(secret_app(), http, time)->acquire(app_key(secret_app()), std::nullopt).status();
  EXPECT_THAT(st, StatusIs(ErrorKind::kTls, AllOf(HasSubstr("certificate verify failed"),
                                                  HasSubstr(kTokenUrl))));
  EXPECT_EQ(http.requests.size(), 1u);
  EXPECT_TRUE(time.sleeps.empty());
}

TEST(OAuthRetry, FullJitterStaysWithinItsBounds) {
  std::set<int64_t> distinct;
  for (int run = 0; run < 30; ++run) {
    FakeHttp http;
    FakeTime time;
    http.fallback = HttpResponse{502, {}, ""};
    OAuthClientOptions o = time.options(8);
    o.backoff_base = milliseconds(100);
    o.backoff_cap = milliseconds(1000);
    auto client = OAuthClient::create(secret_app(), http, o);
    ASSERT_THAT(client.status(), IsOk());
    EXPECT_THAT((*client)->acquire(app_key(secret_app()), std::nullopt).status(),
                StatusIs(ErrorKind::kNetwork, HasSubstr("HTTP 502")));
    ASSERT_EQ(time.sleeps.size(), 7u);
    for (size_t i = 0; i < time.sleeps.size(); ++i) {
      int64_t bound = std::min<int64_t>(1000, 100 << i);
      EXPECT_GE(time.sleeps[i].count(), 0);
      EXPECT_LE(time.sleeps[i].count(), bound) << "attempt " << i;
      distinct.insert(time.sleeps[i].count());
    }
  }
  EXPECT_GT(distinct.size(), 20u) << "the delays must be random, not fixed";
}

TEST(OAuthRetry, HonoursRetryAfterOn503) {
  FakeHttp http;
  FakeTime time;
  http.reply(503, "", {{"Retry-After", "7"}});
  http.reply(200, token_body("AT"));
  ASSERT_THAT(make_client(secret_app(), http, time)->acquire(app_key(secret_app()), std::nullopt).status(),
              IsOk());
  EXPECT_EQ(time.sleeps, std::vector<milliseconds>{milliseconds(7000)});
}

TEST(OAuthRetry, ARetryAfterBeyondTheCapIsHandedToTheCaller) {
  FakeHttp http;
  FakeTime time;
  http.reply(503, "", {{"Retry-After", "120"}});
  auto st = make_client(secret_app(), http, time)->acquire(app_key(secret_app()), std::nullopt).status();
  EXPECT_THAT(st, StatusIs(ErrorKind::kNetwork, HasSubstr("HTTP 503")));
  EXPECT_EQ(st.retry_after(), std::optional<seconds>(seconds(120)));
  EXPECT_TRUE(time.sleeps.empty());
  EXPECT_EQ(http.requests.size(), 1u);
}

// ---- device code --------------------------------------------------------------------------

constexpr char kDeviceUrl[] =
    "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/devicecode";

std::string device_body(int expires_in = 900, int interval = 5) {
  return R"({"user_code":"ABCD-EFGH","device_code":"DC-0123456789","verification_uri":)"
         R"("https://microsoft.com/devicelogin","expires_in":)" + std::to_string(expires_in) +
         R"(,"interval":)" + std::to_string(interval) +
         R"(,"message":"To sign in, use a web browser to open the page https://microsoft.com/devicelogin and enter the code ABCD-EFGH to authenticate."})";
}

std::string oauth_error(const std::string& error) { return R"({"error":")" + error + R"("})"; }

TEST(DeviceCode, StartSendsClientIdAndScopeAndParsesEntrasAnswer) {
  FakeHttp http;
  FakeTime time;
  http.reply(200, device_body());
  auto client = make_client(public_app(), http, time);
  EXPECT_EQ(client->endpoints().device_authorization, kDeviceUrl);
  auto a = client->start_device_login("https://outlook.office365.com/IMAP.AccessAsUser.All offline_access");
  ASSERT_THAT(a.status(), IsOk());
  EXPECT_EQ(a->user_code, "ABCD-EFGH");
  EXPECT_EQ(a->device_code, "DC-0123456789");
  EXPECT_EQ(a->verification_uri, "https://microsoft.com/devicelogin");
  EXPECT_EQ(a->expires_in, seconds(900));
  EXPECT_EQ(a->interval, seconds(5));
  EXPECT_THAT(a->message, HasSubstr("ABCD-EFGH"));
  EXPECT_EQ(http.requests.at(0).url, kDeviceUrl);
  EXPECT_EQ(form_fields(http.requests[0].body),
            (std::map<std::string, std::string>{
                {"client_id", public_app().client_id},
                {"scope", "https://outlook.office365.com/IMAP.AccessAsUser.All offline_access"}}));
}

TEST(DeviceCode, PollsAtTheIntervalAndSlowDownAddsFiveSeconds) {
  FakeHttp http;
  FakeTime time;
  http.reply(200, device_body());
  http.reply(400, oauth_error("authorization_pending"));
  http.reply(400, oauth_error("slow_down"));
  http.reply(400, oauth_error("authorization_pending"));
  http.reply(200, token_body("AT", 3600, R"(,"refresh_token":"RT-1","scope":"s offline_access")"));
  auto client = make_client(public_app(), http, time);
  auto a = client->start_device_login("s offline_access");
  ASSERT_THAT(a.status(), IsOk());
  auto t = client->finish_device_login(*a);
  ASSERT_THAT(t.status(), IsOk());
  EXPECT_EQ(t->refresh_token, std::optional<std::string>("RT-1"));
  EXPECT_EQ(time.sleeps, (std::vector<milliseconds>{seconds(5), seconds(5), seconds(10), seconds(10)}));
  ASSERT_EQ(http.requests.size(), 5u);
  for (size_t i = 1; i < 5; ++i) {
    EXPECT_EQ(http.requests[i].url, kTokenUrl);
    EXPECT_EQ(form_fields(http.requests[i].body),
              (std::map<std::string, std::string>{
                  {"grant_type", "urn:ietf:params:oauth:grant-type:device_code"},
                  {"device_code", "DC-0123456789"},
                  {"client_id", public_app().client_id}}));
  }
}

TEST(DeviceCode, DeniedAndExpiredEndTheFlowAsAuthErrors) {
  for (std::string error : {"access_denied", "authorization_declined", "expired_token"}) {
    SCOPED_TRACE(error);
    FakeHttp http;
    FakeTime time;
    http.reply(400, oauth_error("authorization_pending"));
    http.reply(400, oauth_error(error));
    DeviceAuthorization a{"DC-0123456789", "U", "https://x", "", "", seconds(900), seconds(5), "s"};
    auto st = make_client(public_app(), http, time)->finish_device_login(a).status();
    EXPECT_THAT(st, StatusIs(ErrorKind::kAuth, AllOf(HasSubstr(error),
                                                     HasSubstr("mailbridge auth login contoso"))));
    EXPECT_EQ(http.requests.size(), 2u);
  }
}

TEST(DeviceCode, StopsPollingWhenTheCodeHasExpired) {
  FakeHttp http;
  FakeTime time;
  http.fallback = HttpResponse{400, {}, oauth_error("authorization_pending")};
  DeviceAuthorization a{"DC-0123456789", "U", "https://x", "", "", seconds(12), seconds(5), "s"};
  auto st = make_client(public_app(), http, time)->finish_device_login(a).status();
  EXPECT_THAT(st, StatusIs(ErrorKind::kAuth, HasSubstr("expired")));
  EXPECT_EQ(http.requests.size(), 2u);  // at 5 s and 10 s; at 15 s the code is gone
}

TEST(DeviceCode, EntrasRealErrorBodiesDriveTheStateMachine) {
  auto fixture = [](const char* name) {
    return testing::read_file(std::string(MB_SOURCE_DIR) + "/tests/data/entra/token-errors/" + name);
  };
  FakeHttp http;
  FakeTime time;
  http.reply(400, fixture("70016_400_authorization_pending.json"));
  http.reply(400, fixture("70020_400_expired_token.json"));
  DeviceAuthorization a{"DC-0123456789", "U", "https://x", "", "", seconds(900), seconds(5), "s"};
  auto st = make_client(public_app(), http, time)->finish_device_login(a).status();
  EXPECT_THAT(st, StatusIs(ErrorKind::kAuth, HasSubstr("AADSTS70020")));
  EXPECT_EQ(http.requests.size(), 2u);
}

TEST(DeviceCode, NoDeviceEndpointForAPlainTokenEndpoint) {
  FakeHttp http;
  FakeTime time;
  AppConfig app = public_app();
  app.token_endpoint = "https://auth.example.test/token";
  EXPECT_THAT(make_client(app, http, time)->start_device_login("s").status(),
              StatusIs(ErrorKind::kConfig, HasSubstr("device_endpoint")));
}

// ---- no secret in any message -------------------------------------------------------------

// Every error path, provoked with a server (or proxy) that echoes the request back in its
// error, must leave out the client secret, the assertion, the refresh token and the device
// code.
TEST_F(CertificateTest, NoSecretOrTokenInAnyMessage) {
  const std::string rt = "RT-do-not-print-0123456789";
  const std::string dc = "DC-do-not-print-9876543210";
  std::vector<std::string> messages;
  auto collect = [&](const Status& st) {
    EXPECT_FALSE(st.ok());
    messages.push_back(st.message());
  };
  auto echo = [](const HttpRequest& req, int status, const std::string& error) {
    nlohmann::json j = {{"error", error}, {"error_description", "you sent: " + req.body},
                        {"error_codes", {7000215}}};
    return HttpResponse{status, {{"Retry-After", "1"}}, j.dump()};
  };
  AppConfig with_cert = secret_app();
  with_cert.client_secret = {};
  with_cert.certificate = SecretRef{"file:" + testing::write_temp_file("c2.pem", cert_->pem())};
  for (const AppConfig& app : {secret_app(), with_cert, public_app()}) {
    for (auto [status, error] : std::vector<std::pair<int, std::string>>{
             {400, "invalid_grant"}, {401, "invalid_client"}, {400, "odd_error"},
             {429, "slow"}, {503, "temporarily_unavailable"}, {400, "access_denied"}}) {
      struct Echo final : HttpClient {
        std::function<HttpResponse(const HttpRequest&)> fn;
        Result<HttpResponse> send(const HttpRequest& r) override { return fn(r); }
      } http;
      http.fn = [&, status = status, error = error](const HttpRequest& r) { return echo(r, status, error); };
      FakeTime time;
      auto client = OAuthClient::create(app, http, time.options(2));
      ASSERT_THAT(client.status(), IsOk());
      collect((*client)->acquire({"contoso", "s", "u"}, rt).status());
      if (!app.client_secret.empty() || !app.certificate.empty()) {
        collect((*client)->acquire({"contoso", "s", ""}, std::nullopt).status());
      }
      collect((*client)->start_device_login("s").status());
      DeviceAuthorization a{dc, "U", "https://x", "", "", seconds(60), seconds(5), "s"};
      collect((*client)->finish_device_login(a).status());
      http.fn = [&](const HttpRequest& r) -> HttpResponse {
        return {200, {}, "{\"oops\":\"" + r.body.substr(0, 0) + "\"}"};
      };
      collect((*client)->acquire({"contoso", "s", "u"}, rt).status());
    }
    // A transport error whose text carries the request (as a careless library might).
    struct Failing final : HttpClient {
      Result<HttpResponse> send(const HttpRequest& r) override {
        return Status(ErrorKind::kNetwork, "reset while sending " + r.body);
      }
    } failing;
    FakeTime time;
    auto client = OAuthClient::create(app, failing, time.options(2));
    ASSERT_THAT(client.status(), IsOk());
    collect((*client)->acquire({"contoso", "s", "u"}, rt).status());
    DeviceAuthorization a{dc, "U", "https://x", "", "", seconds(60), seconds(5), "s"};
    collect((*client)->finish_device_login(a).status());
  }
  ASSERT_GT(messages.size(), 50u);
  for (const std::string& m : messages) {
    EXPECT_THAT(m, Not(HasSubstr(kSecret))) << m;
    EXPECT_THAT(m, Not(HasSubstr(url_encode(kSecret)))) << m;
    EXPECT_THAT(m, Not(HasSubstr(rt))) << m;
    EXPECT_THAT(m, Not(HasSubstr(dc))) << m;
    EXPECT_THAT(m, Not(HasSubstr("eyJ"))) << "an assertion (a JWT) leaked: " << m;
  }
}

}  // namespace
}  // namespace mb
