// File: tests/integration/oauth_server_test.cpp — proves the test OAuth server
// (tests/harness/oauth.sh) from the C++ side: a minimal HTTP/1.1 POST over core/net's
// verified TLS stream runs client-credentials requests with a secret (post and basic), with a
// PS256 client assertion carrying x5t#S256, and checks the server's standard errors. The
// product's real HTTP client and grants come with other work; this only proves the harness.
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include <unistd.h>

#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <initializer_list>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <utility>

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "core/net.h"
#include "tests/integration/harness.h"
#include "tests/status_matchers.h"

namespace mb::itest {
namespace {

using ::mb::testing::IsOk;
using ::testing::HasSubstr;
using ::testing::Not;

// ---- the harness's DIR/env ----

using OAuthEnv = ServerEnv;

Result<OAuthEnv> read_oauth_env() { return read_server_env(oauth_harness_dir()); }

bool run_oauth_script(const std::string& action) {
  return run_harness_script("oauth.sh", {action, oauth_harness_dir()});
}

// Outside ctest's fixture, starts the server for this process (before any test: the tests of
// the other files that need it find it running) and stops it at the end.
class OAuthServerEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    auto env = read_oauth_env();
    if (env.ok() && server_running(*env, "MB_OAUTH_PID")) return;
    started_ = run_oauth_script("start");
  }
  void TearDown() override {
    if (started_) run_oauth_script("stop");
  }

 private:
  bool started_ = false;
};
[[maybe_unused]] auto* const kEnvironment =
    ::testing::AddGlobalTestEnvironment(new OAuthServerEnvironment);

// ---- a minimal HTTP/1.1 client ----

struct HttpResponse {
  int status = 0;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
};

Result<HttpResponse> parse_response(const std::string& raw) {
  auto head_end = raw.find("\r\n\r\n");
  if (head_end == std::string::npos) return Status(ErrorKind::kProtocol, "no header end");
  HttpResponse r;
  std::istringstream head(raw.substr(0, head_end));
  std::string line;
  std::getline(head, line);
  if (std::sscanf(line.c_str(), "HTTP/1.1 %d", &r.status) != 1) {
    return Status(ErrorKind::kProtocol, "bad status line: " + line);
  }
  while (std::getline(head, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string name = line.substr(0, colon);
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    r.headers[name] = line.substr(line.find_first_not_of(' ', colon + 1));
  }
  r.body = raw.substr(head_end + 4);
  return r;
}

// POSTs a form to path on the harness server; reads until Content-Length is complete.
Result<HttpResponse> post_form(const OAuthEnv& env, const std::string& path,
                               const std::string& form, const std::string& authorization = "") {
  TlsOptions tls;
  tls.ca_file = env.at("MB_OAUTH_CA_FILE");
  Timeouts timeouts{std::chrono::seconds(10), std::chrono::seconds(10)};
  const std::string& host = env.at("MB_OAUTH_HOST");
  auto port = static_cast<uint16_t>(std::stoi(env.at("MB_OAUTH_PORT")));
  auto stream = connect_stream(host, port, Security::kTls, tls, timeouts);
  if (!stream.ok()) return stream.status();
  std::string request = fmt::format(
      "POST {} HTTP/1.1\r\nHost: {}:{}\r\nAccept: application/json\r\n"
      "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n{}"
      "Connection: close\r\n\r\n{}",
      path, host, port, form.size(),
      authorization.empty() ? "" : "Authorization: " + authorization + "\r\n", form);
  MB_RETURN_IF_ERROR((*stream)->write_all(request));
  std::string raw;
  char buf[4096];
  for (;;) {
    if (auto parsed = parse_response(raw); parsed.ok()) {
      auto cl = parsed->headers.find("content-length");
      if (cl != parsed->headers.end() && parsed->body.size() >= std::stoul(cl->second)) {
        return parsed;
      }
    }
    auto n = (*stream)->read_some(buf, sizeof buf);
    if (!n.ok()) return parse_response(raw);  // closed: whatever arrived is the response
    raw.append(buf, *n);
  }
}

std::string form_escape(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += fmt::format("%{:02X}", c);
    }
  }
  return out;
}

std::string form(std::initializer_list<std::pair<std::string, std::string>> fields) {
  std::string out;
  for (const auto& [k, v] : fields) out += (out.empty() ? "" : "&") + k + "=" + form_escape(v);
  return out;
}

// ---- base64 and a PS256 client assertion ----

std::string base64(const unsigned char* data, size_t n, bool url) {
  std::string out(4 * ((n + 2) / 3) + 1, '\0');
  int len = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), data,
                            static_cast<int>(n));
  out.resize(static_cast<size_t>(len));
  if (!url) return out;
  while (!out.empty() && out.back() == '=') out.pop_back();
  for (char& c : out) c = c == '+' ? '-' : c == '/' ? '_' : c;
  return out;
}

std::string base64url(const std::string& s) {
  return base64(reinterpret_cast<const unsigned char*>(s.data()), s.size(), true);
}

// x5t#S256: base64url of the SHA-256 of the certificate's DER encoding (RFC 7515 §4.1.8).
Result<std::string> x5t_s256(const std::string& cert_path) {
  std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(cert_path.c_str(), "r"), std::fclose);
  if (!f) return Status(ErrorKind::kConfig, "cannot open " + cert_path);
  std::unique_ptr<X509, void (*)(X509*)> cert(PEM_read_X509(f.get(), nullptr, nullptr, nullptr),
                                              X509_free);
  if (!cert) return Status(ErrorKind::kConfig, "no certificate in " + cert_path);
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int md_len = 0;
  if (X509_digest(cert.get(), EVP_sha256(), md, &md_len) != 1) {
    return Status(ErrorKind::kInternal, "X509_digest failed");
  }
  return base64(md, md_len, true);
}

Result<std::string> sign_ps256(const std::string& key_path, const std::string& input) {
  std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(key_path.c_str(), "r"), std::fclose);
  if (!f) return Status(ErrorKind::kConfig, "cannot open the key file");
  std::unique_ptr<EVP_PKEY, void (*)(EVP_PKEY*)> key(
      PEM_read_PrivateKey(f.get(), nullptr, nullptr, nullptr), EVP_PKEY_free);
  if (!key) return Status(ErrorKind::kConfig, "no private key in the key file");
  std::unique_ptr<EVP_MD_CTX, void (*)(EVP_MD_CTX*)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  EVP_PKEY_CTX* pctx = nullptr;
  size_t len = 0;
  if (EVP_DigestSignInit(ctx.get(), &pctx, EVP_sha256(), nullptr, key.get()) != 1 ||
      EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
      EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) != 1 ||
      EVP_DigestSign(ctx.get(), nullptr, &len,
                     reinterpret_cast<const unsigned char*>(input.data()), input.size()) != 1) {
    return Status(ErrorKind::kInternal, "PS256 signing setup failed");
  }
  std::string sig(len, '\0');
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &len,
                     reinterpret_cast<const unsigned char*>(input.data()), input.size()) != 1) {
    return Status(ErrorKind::kInternal, "PS256 signing failed");
  }
  sig.resize(len);
  return base64url(sig);
}

// An RFC 7523 client assertion as Entra ID expects it: PS256, x5t#S256, aud = token URL.
Result<std::string> client_assertion(const OAuthEnv& env, const std::string& x5t) {
  unsigned char jti[16];
  if (RAND_bytes(jti, sizeof jti) != 1) return Status(ErrorKind::kInternal, "RAND_bytes");
  auto now = static_cast<int64_t>(std::time(nullptr));
  nlohmann::json header = {{"alg", "PS256"}, {"typ", "JWT"}, {"x5t#S256", x5t}};
  const std::string& id = env.at("MB_OAUTH_JWT_CLIENT_ID");
  nlohmann::json claims = {{"iss", id}, {"sub", id}, {"aud", env.at("MB_OAUTH_TOKEN_URL")},
                           {"jti", base64(jti, sizeof jti, true)}, {"iat", now},
                           {"nbf", now}, {"exp", now + 300}};
  std::string input = base64url(header.dump()) + "." + base64url(claims.dump());
  auto sig = sign_ps256(env.at("MB_OAUTH_JWT_KEY"), input);
  if (!sig.ok()) return sig.status();
  return input + "." + *sig;
}

// ---- the tests ----

class OAuthServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto env = read_oauth_env();
    ASSERT_THAT(env.status(), IsOk()) << "is the OAuth harness running? (" << oauth_harness_dir() << ")";
    env_ = *env;
  }

  // A token request; fails the test on a transport error.
  HttpResponse token_request(const std::string& body, const std::string& authorization = "") {
    auto r = post_form(env_, "/token", body, authorization);
    EXPECT_THAT(r.status(), IsOk());
    return r.ok() ? *r : HttpResponse{};
  }

  static void expect_bearer(const HttpResponse& r) {
    ASSERT_EQ(r.status, 200) << r.body;
    auto j = parse_json(r.body);
    ASSERT_FALSE(j.is_discarded()) << r.body;
    EXPECT_EQ(j.value("token_type", ""), "Bearer");
    EXPECT_FALSE(j.value("access_token", "").empty());
    ASSERT_TRUE(j.contains("expires_in") && j["expires_in"].is_number_integer()) << r.body;
    EXPECT_GT(j["expires_in"].get<int64_t>(), 0);
  }

  static void expect_error(const HttpResponse& r, int status, const std::string& error) {
    EXPECT_EQ(r.status, status) << r.body;
    EXPECT_THAT(r.body, HasSubstr("\"error\":\"" + error + "\""));
  }

  OAuthEnv env_;
};

TEST_F(OAuthServerTest, ClientCredentialsWithSecretPostGivesBearerTokenForTheScope) {
  HttpResponse r = token_request(form({{"grant_type", "client_credentials"},
                                       {"client_id", env_.at("MB_OAUTH_CLIENT_ID")},
                                       {"client_secret", env_.at("MB_OAUTH_CLIENT_SECRET")},
                                       {"scope", env_.at("MB_OAUTH_MAIL_SCOPE")}}));
  expect_bearer(r);
  EXPECT_EQ(parse_json(r.body).value("scope", ""), env_.at("MB_OAUTH_MAIL_SCOPE"));
  EXPECT_THAT(r.headers["cache-control"], HasSubstr("no-store"));
}

TEST_F(OAuthServerTest, ClientCredentialsWithSecretBasicGivesBearerToken) {
  // RFC 6749 §2.3.1: id and secret are form-encoded before they are joined and encoded.
  std::string pair = form_escape(env_.at("MB_OAUTH_CLIENT_ID")) + ":" +
                     form_escape(env_.at("MB_OAUTH_CLIENT_SECRET"));
  std::string basic = "Basic " + base64(reinterpret_cast<const unsigned char*>(pair.data()),
                                        pair.size(), false);
  expect_bearer(token_request(form({{"grant_type", "client_credentials"},
                                    {"scope", "mail.access"}}), basic));
}

TEST_F(OAuthServerTest, WrongSecretGives401InvalidClient) {
  HttpResponse r = token_request(form({{"grant_type", "client_credentials"},
                                       {"client_id", env_.at("MB_OAUTH_CLIENT_ID")},
                                       {"client_secret", "not-the-secret"}}));
  expect_error(r, 401, "invalid_client");
  EXPECT_THAT(r.body, Not(HasSubstr("access_token")));
}

TEST_F(OAuthServerTest, TokenFromTheServerIntrospectsActiveWithItsAudience) {
  HttpResponse t = token_request(form({{"grant_type", "client_credentials"},
                                       {"client_id", env_.at("MB_OAUTH_CLIENT_ID")},
                                       {"client_secret", env_.at("MB_OAUTH_CLIENT_SECRET")},
                                       {"scope", "mail.access"}}));
  ASSERT_EQ(t.status, 200) << t.body;
  auto r = post_form(env_, "/token/introspection",
                     form({{"token", parse_json(t.body).value("access_token", "")},
                           {"client_id", env_.at("MB_OAUTH_INTROSPECT_CLIENT_ID")},
                           {"client_secret", env_.at("MB_OAUTH_INTROSPECT_SECRET")}}));
  ASSERT_THAT(r.status(), IsOk());
  ASSERT_EQ(r->status, 200) << r->body;
  auto j = parse_json(r->body);
  EXPECT_EQ(j.value("active", false), true) << r->body;
  EXPECT_EQ(j.value("aud", ""), env_.at("MB_OAUTH_MAIL_RESOURCE"));
  EXPECT_EQ(j.value("client_id", ""), env_.at("MB_OAUTH_CLIENT_ID"));
}

TEST_F(OAuthServerTest, Ps256AssertionWithCertificateThumbprintGivesBearerToken) {
  auto x5t = x5t_s256(env_.at("MB_OAUTH_JWT_CERT"));
  ASSERT_THAT(x5t.status(), IsOk());
  EXPECT_EQ(*x5t, env_.at("MB_OAUTH_JWT_X5T_S256"));
  auto assertion = client_assertion(env_, *x5t);
  ASSERT_THAT(assertion.status(), IsOk());
  expect_bearer(token_request(form(
      {{"grant_type", "client_credentials"},
       {"client_id", env_.at("MB_OAUTH_JWT_CLIENT_ID")},
       {"client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
       {"client_assertion", *assertion},
       {"scope", env_.at("MB_OAUTH_MAIL_SCOPE")}})));
}

TEST_F(OAuthServerTest, AssertionNamingAnotherCertificateGivesInvalidClient) {
  auto assertion = client_assertion(env_, base64url(std::string(32, '\x01')));
  ASSERT_THAT(assertion.status(), IsOk());
  expect_error(token_request(form(
      {{"grant_type", "client_credentials"},
       {"client_id", env_.at("MB_OAUTH_JWT_CLIENT_ID")},
       {"client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
       {"client_assertion", *assertion}})), 401, "invalid_client");
}

}  // namespace
}  // namespace mb::itest
