// File: auth/jwt.cpp — JSON Web Tokens: the RFC 7523 client assertion Entra ID documents for
// certificate credentials, and decoding the claims of an access token for `mailbridge doctor`.
//
// The assertion follows "Microsoft identity platform certificate credentials"
// (learn.microsoft.com/entra/identity-platform/certificate-credentials): header alg PS256,
// typ JWT, x5t#S256 = base64url(SHA-256(DER certificate)); claims aud (the token endpoint),
// iss = sub = client id, jti (unique), nbf and iat (now), exp (5–10 minutes after nbf);
// signed with RSASSA-PSS, SHA-256, salt length = digest length (RFC 7518 §3.5).
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include <algorithm>
#include <memory>

#include <nlohmann/json.hpp>

#include "auth/base64.h"
#include "auth/crypto.h"
#include "auth/internal/oauth_util.h"
#include "auth/oauth.h"
#include "core/hash.h"

namespace mb {
namespace {

struct BioFree { void operator()(BIO* b) const { BIO_free(b); } };
struct X509Free { void operator()(X509* x) const { X509_free(x); } };
struct PkeyFree { void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); } };
struct MdCtxFree { void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); } };

constexpr std::chrono::minutes kAssertionLifetime{5};

Status cert_error(const std::string& detail) {
  return Status(ErrorKind::kConfig, "certificate: " + detail);
}

std::unique_ptr<BIO, BioFree> pem_bio(const std::string& pem) {
  return std::unique_ptr<BIO, BioFree>(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
}

Result<std::string> sign_ps256(EVP_PKEY* key, std::string_view input) {
  std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
  EVP_PKEY_CTX* pctx = nullptr;
  size_t len = 0;
  if (!ctx || EVP_DigestSignInit(ctx.get(), &pctx, EVP_sha256(), nullptr, key) != 1 ||
      EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
      EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) != 1 ||
      EVP_DigestSign(ctx.get(), nullptr, &len,
                     reinterpret_cast<const unsigned char*>(input.data()), input.size()) != 1) {
    return Status(ErrorKind::kInternal, "PS256 signing failed to start");
  }
  std::string sig(len, '\0');
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &len,
                     reinterpret_cast<const unsigned char*>(input.data()), input.size()) != 1) {
    return Status(ErrorKind::kInternal, "PS256 signing failed");
  }
  sig.resize(len);
  return sig;
}

// A random version-4 UUID, as Entra's examples show for jti.
Result<std::string> new_uuid() {
  auto bytes = random_bytes(16);
  if (!bytes.ok()) return bytes.status();
  std::string b = *bytes;
  b[6] = static_cast<char>((b[6] & 0x0F) | 0x40);
  b[8] = static_cast<char>((b[8] & 0x3F) | 0x80);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < b.size(); ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out += '-';
    auto c = static_cast<unsigned char>(b[i]);
    out += kHex[c >> 4];
    out += kHex[c & 0x0F];
  }
  return out;
}

int64_t unix_seconds(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

std::vector<std::string> string_list(const nlohmann::json& v, bool space_separated) {
  std::vector<std::string> out;
  if (v.is_array()) {
    for (const auto& x : v) {
      if (x.is_string()) out.push_back(x.get<std::string>());
    }
  } else if (v.is_string()) {
    std::string s = v.get<std::string>();
    if (!space_separated) return {s};
    size_t pos = 0;
    while (pos < s.size()) {
      size_t sp = std::min(s.find(' ', pos), s.size());
      if (sp > pos) out.push_back(s.substr(pos, sp - pos));
      pos = sp + 1;
    }
  }
  return out;
}

}  // namespace

namespace oauth_internal {

std::string base64url_encode(std::string_view data) {
  std::string s = base64_encode(data);
  while (!s.empty() && s.back() == '=') s.pop_back();
  std::replace(s.begin(), s.end(), '+', '-');
  std::replace(s.begin(), s.end(), '/', '_');
  return s;
}

std::optional<std::string> base64url_decode(std::string_view text) {
  std::string s(text);
  while (!s.empty() && s.back() == '=') s.pop_back();
  if (s.find_first_of("+/") != std::string::npos) return std::nullopt;
  std::replace(s.begin(), s.end(), '-', '+');
  std::replace(s.begin(), s.end(), '_', '/');
  while (s.size() % 4 != 0) s.push_back('=');
  return base64_decode(s);
}

}  // namespace oauth_internal

namespace {
// A passphrase-protected key must fail, not make OpenSSL prompt on the terminal (which
// would hang a service or `doctor`): a password callback that supplies nothing.
int no_passphrase(char*, int, int, void*) { return 0; }
}  // namespace

Result<std::string> make_client_assertion(const ClientCertificate& certificate,
                                          std::string_view client_id,
                                          std::string_view token_endpoint,
                                          std::chrono::system_clock::time_point now) {
  using oauth_internal::base64url_encode;
  auto bio = pem_bio(certificate.pem);
  std::unique_ptr<X509, X509Free> cert(
      bio ? PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr) : nullptr);
  if (!cert) return cert_error("the PEM holds no X.509 certificate");
  bio = pem_bio(certificate.pem);
  std::unique_ptr<EVP_PKEY, PkeyFree> key(
      bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, no_passphrase, nullptr) : nullptr);
  if (!key) {
    return cert_error("the PEM holds no unencrypted private key (keys with a passphrase are "
                      "refused)");
  }
  if (EVP_PKEY_get_base_id(key.get()) != EVP_PKEY_RSA) {
    return cert_error("the private key is not an RSA key (PS256 needs RSA)");
  }
  if (X509_check_private_key(cert.get(), key.get()) != 1) {
    return cert_error("the private key does not belong to the certificate");
  }
  int der_len = i2d_X509(cert.get(), nullptr);
  std::string der(static_cast<size_t>(std::max(der_len, 0)), '\0');
  auto* p = reinterpret_cast<unsigned char*>(der.data());
  if (der_len <= 0 || i2d_X509(cert.get(), &p) != der_len) {
    return cert_error("the certificate cannot be DER-encoded");
  }
  const std::string thumb = sha256(der);
  if (thumb.empty()) return Status(ErrorKind::kInternal, "SHA-256 failed");
  auto jti = new_uuid();
  if (!jti.ok()) return jti.status();

  nlohmann::json header = {{"alg", "PS256"}, {"typ", "JWT"},
                           {"x5t#S256", base64url_encode(thumb)}};
  int64_t iat = unix_seconds(now);
  nlohmann::json claims = {{"aud", std::string(token_endpoint)},
                           {"iss", std::string(client_id)},
                           {"sub", std::string(client_id)},
                           {"jti", *jti},
                           {"nbf", iat},
                           {"iat", iat},
                           {"exp", unix_seconds(now + kAssertionLifetime)}};
  std::string input = base64url_encode(header.dump()) + "." + base64url_encode(claims.dump());
  auto sig = sign_ps256(key.get(), input);
  if (!sig.ok()) return sig.status();
  return input + "." + base64url_encode(*sig);
}

std::optional<TokenClaims> decode_token_claims(std::string_view access_token) {
  size_t dot1 = access_token.find('.');
  if (dot1 == std::string_view::npos) return std::nullopt;
  size_t dot2 = access_token.find('.', dot1 + 1);
  if (dot2 == std::string_view::npos || access_token.find('.', dot2 + 1) != std::string_view::npos) {
    return std::nullopt;
  }
  auto payload = oauth_internal::base64url_decode(access_token.substr(dot1 + 1, dot2 - dot1 - 1));
  if (!payload) return std::nullopt;
  nlohmann::json j = nlohmann::json::parse(*payload, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return std::nullopt;
  auto str = [&](std::initializer_list<const char*> names) {
    for (const char* n : names) {
      auto it = j.find(n);
      if (it != j.end() && it->is_string()) return it->get<std::string>();
    }
    return std::string();
  };
  TokenClaims c;
  if (auto aud = j.find("aud"); aud != j.end()) {
    auto auds = string_list(*aud, /*space_separated=*/false);
    if (!auds.empty()) c.aud = auds.front();
  }
  c.tid = str({"tid"});
  c.appid = str({"appid", "azp", "client_id"});
  c.upn = str({"upn", "preferred_username", "unique_name"});
  c.iss = str({"iss"});
  if (auto it = j.find("roles"); it != j.end()) c.roles = string_list(*it, false);
  if (auto it = j.find("scp"); it != j.end()) c.scp = string_list(*it, true);
  if (auto it = j.find("scope"); c.scp.empty() && it != j.end()) c.scp = string_list(*it, true);
  if (auto it = j.find("exp"); it != j.end() && it->is_number()) {
    c.exp = std::chrono::system_clock::time_point(std::chrono::seconds(it->get<int64_t>()));
  }
  return c;
}

}  // namespace mb
