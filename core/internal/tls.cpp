// File: core/internal/tls.cpp — client TLS sessions over OpenSSL 3 with mailbridge's policy.
#include "core/internal/tls.h"

#include <arpa/inet.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <compare>
#include <cstring>
#include <map>
#include <mutex>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <openssl/x509v3.h>

#include "core/files.h"

namespace mb::internal {
namespace {

Status tls_error(std::string message) {
  return Status(ErrorKind::kTls, std::move(message), ErrorScope::kConnection);
}

std::string openssl_reason(unsigned long e) {
  if (e == 0) return "unknown error";
  const char* r = ERR_reason_error_string(e);
  if (r != nullptr) return r;
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  return buf;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool decode_base64_digest(const std::string& b64, Sha256& out) {
  // 32 bytes are 43 base64 characters and one '=' of padding.
  if (b64.size() != 44 || b64[43] != '=' || b64[42] == '=') return false;
  unsigned char buf[48];
  int n = EVP_DecodeBlock(buf, reinterpret_cast<const unsigned char*>(b64.data()), 44);
  if (n != 33) return false;  // EVP_DecodeBlock counts the padding as a zero byte
  std::copy(buf, buf + 32, out.begin());
  return true;
}

bool decode_hex_digest(const std::string& hex, Sha256& out) {
  if (hex.size() != 64) return false;
  for (size_t i = 0; i < 32; ++i) {
    int hi = hex_value(hex[2 * i]);
    int lo = hex_value(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    out[i] = static_cast<unsigned char>(hi * 16 + lo);
  }
  return true;
}

Sha256 spki_digest(X509* cert) {
  Sha256 digest{};
  unsigned char* der = nullptr;
  int len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cert), &der);
  if (len > 0) SHA256(der, static_cast<size_t>(len), digest.data());
  OPENSSL_free(der);
  return digest;
}

std::string common_name(X509_NAME* name) {
  if (name == nullptr) return "?";
  int i = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
  if (i < 0) {
    char buf[256];
    X509_NAME_oneline(name, buf, sizeof buf);
    return buf;
  }
  unsigned char* utf8 = nullptr;
  int len = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i)));
  std::string cn = len >= 0 ? std::string(reinterpret_cast<char*>(utf8), len) : "?";
  OPENSSL_free(utf8);
  return cn;
}

std::string ip_text(const ASN1_OCTET_STRING* ip) {
  char buf[INET6_ADDRSTRLEN] = "?";
  int len = ASN1_STRING_length(ip);
  const unsigned char* data = ASN1_STRING_get0_data(ip);
  if (len == 4) inet_ntop(AF_INET, data, buf, sizeof buf);
  if (len == 16) inet_ntop(AF_INET6, data, buf, sizeof buf);
  return buf;
}

}  // namespace

std::string certificate_names(X509* cert) {
  std::string names;
  auto* sans = static_cast<GENERAL_NAMES*>(
      X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  for (int i = 0; sans != nullptr && i < sk_GENERAL_NAME_num(sans); ++i) {
    const GENERAL_NAME* gn = sk_GENERAL_NAME_value(sans, i);
    std::string one;
    if (gn->type == GEN_DNS) {
      one.assign(reinterpret_cast<const char*>(ASN1_STRING_get0_data(gn->d.dNSName)),
                 ASN1_STRING_length(gn->d.dNSName));
    } else if (gn->type == GEN_IPADD) {
      one = ip_text(gn->d.iPAddress);
    } else {
      continue;
    }
    names += (names.empty() ? "" : ", ") + one;
  }
  GENERAL_NAMES_free(sans);
  return names.empty() ? common_name(X509_get_subject_name(cert)) : names;
}

namespace {

// Records the leaf's names so that a hostname mismatch can say what the certificate is
// for; the verdict itself is OpenSSL's.
int verify_callback(int preverify_ok, X509_STORE_CTX* store) {
  auto* ssl = static_cast<SSL*>(
      X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx()));
  auto* session = ssl != nullptr ? static_cast<TlsSession*>(SSL_get_app_data(ssl)) : nullptr;
  X509* leaf = X509_STORE_CTX_get0_cert(store);
  if (session != nullptr && leaf != nullptr && session->leaf_names.empty()) {
    session->leaf_names = certificate_names(leaf);
  }
  return preverify_ok;
}

bool is_version_refusal(int reason) {
  switch (reason) {
    case SSL_R_TLSV1_ALERT_PROTOCOL_VERSION:
    case SSL_R_UNSUPPORTED_PROTOCOL:
    case SSL_R_NO_PROTOCOLS_AVAILABLE:
    case SSL_R_VERSION_TOO_LOW:
      return true;
    default:
      return false;
  }
}

bool is_not_tls(int reason) {
  switch (reason) {
    case SSL_R_WRONG_VERSION_NUMBER:
    case SSL_R_PACKET_LENGTH_TOO_LONG:
    case SSL_R_RECORD_LENGTH_MISMATCH:
    case SSL_R_UNKNOWN_PROTOCOL:
      return true;
    default:
      return false;
  }
}

}  // namespace

Result<Sha256> parse_pin(const std::string& pin) {
  Sha256 digest{};
  bool ok = pin.rfind("sha256/", 0) == 0 ? decode_base64_digest(pin.substr(7), digest)
                                          : decode_hex_digest(pin, digest);
  if (!ok) {
    return Status(ErrorKind::kConfig, "invalid tls pin \"" + pin +
                                          "\": expected sha256/<base64 of a SHA-256 digest> "
                                          "or 64 hex digits");
  }
  return digest;
}

std::string spki_pin(X509* cert) {
  Sha256 digest = spki_digest(cert);
  unsigned char b64[48];
  int n = EVP_EncodeBlock(b64, digest.data(), static_cast<int>(digest.size()));
  return "sha256/" + std::string(reinterpret_cast<char*>(b64), n);
}

bool is_ip_literal(const std::string& host) {
  unsigned char buf[sizeof(struct in6_addr)];
  return inet_pton(AF_INET, host.c_str(), buf) == 1 ||
         inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

Result<std::unique_ptr<TlsSession>> TlsSession::create(int fd, const std::string& host,
                                                       const std::string& peer,
                                                       const TlsOptions& options) {
  std::unique_ptr<TlsSession> s(new TlsSession());
  s->host_ = host;
  s->peer_ = peer;
  s->options_ = options;
  MB_RETURN_IF_ERROR(s->setup(fd, host, options));
  return s;
}

TlsSession::~TlsSession() { SSL_free(ssl_); }

namespace {

// What a shared context holds; sessions whose options give the same key share it.
struct ContextKey {
  bool verify = true;
  TlsVersion min_version = TlsVersion::k1_2;
  std::string ca_file;  // empty: the system store (or verify off)
  // tls.ca_file as it is on disk: the same path rewritten is another context.
  dev_t dev = 0;
  ino_t ino = 0;
  off_t size = 0;
  int64_t mtime_ns = 0;
  auto operator<=>(const ContextKey&) const = default;
};

struct ContextCache {
  std::mutex mu;
  std::map<ContextKey, std::weak_ptr<SSL_CTX>> contexts;
};

// Never destroyed: a session may outlive static destruction (a detached thread at exit).
ContextCache& context_cache() {
  static auto* cache = new ContextCache;
  return *cache;
}

std::atomic<size_t> g_contexts_created{0};

Result<std::shared_ptr<SSL_CTX>> build_context(const TlsOptions& options) {
  ERR_clear_error();
  SSL_CTX* raw = SSL_CTX_new(TLS_client_method());
  if (raw == nullptr) return Status(ErrorKind::kInternal, "cannot create a TLS context");
  std::shared_ptr<SSL_CTX> ctx(raw, SSL_CTX_free);
  bool tls13 = options.min_version == TlsVersion::k1_3;
  SSL_CTX_set_min_proto_version(raw, tls13 ? TLS1_3_VERSION : TLS1_2_VERSION);
  // RELEASE_BUFFERS: a connection waiting in IMAP IDLE holds no 16 KiB record buffers.
  SSL_CTX_set_mode(raw, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                            SSL_MODE_RELEASE_BUFFERS);
  if (!options.verify) {
    SSL_CTX_set_verify(raw, SSL_VERIFY_NONE, nullptr);
    ++g_contexts_created;
    return ctx;
  }
  bool loaded = options.ca_file.empty()
                    ? SSL_CTX_set_default_verify_paths(raw) == 1
                    : SSL_CTX_load_verify_locations(raw, options.ca_file.c_str(), nullptr) == 1;
  if (!loaded) {
    std::string what =
        options.ca_file.empty() ? "the system CA store" : "tls.ca_file " + options.ca_file;
    return Status(ErrorKind::kConfig,
                  "cannot load " + what + ": " + openssl_reason(ERR_peek_last_error()));
  }
  SSL_CTX_set_verify(raw, SSL_VERIFY_PEER, verify_callback);
  ++g_contexts_created;
  return ctx;
}

}  // namespace

Result<std::shared_ptr<SSL_CTX>> shared_tls_context(const TlsOptions& options) {
  ContextKey key;
  key.verify = options.verify;
  key.min_version = options.min_version;
  if (options.verify && !options.ca_file.empty()) {
    // OpenSSL would read a FIFO or /dev/zero without end: only a bounded regular file.
    MB_RETURN_IF_ERROR(
        check_regular_file(options.ca_file, kMaxCaFileBytes, "cannot load tls.ca_file"));
    key.ca_file = options.ca_file;
    struct stat st {};
    if (stat(options.ca_file.c_str(), &st) == 0) {
      key.dev = st.st_dev;
      key.ino = st.st_ino;
      key.size = st.st_size;
      key.mtime_ns = int64_t{st.st_mtim.tv_sec} * 1000000000 + st.st_mtim.tv_nsec;
    }
  }
  ContextCache& cache = context_cache();
  std::lock_guard<std::mutex> lock(cache.mu);
  if (auto it = cache.contexts.find(key); it != cache.contexts.end()) {
    if (auto ctx = it->second.lock()) return ctx;
  }
  auto built = build_context(options);
  if (!built.ok()) return built.status();
  std::erase_if(cache.contexts, [](const auto& entry) { return entry.second.expired(); });
  cache.contexts[key] = *built;
  return built;
}

size_t tls_contexts_created() { return g_contexts_created.load(); }

Status TlsSession::setup(int fd, const std::string& host, const TlsOptions& options) {
  for (const auto& pin : options.pins) {
    auto digest = parse_pin(pin);
    if (!digest.ok()) return digest.status();
    pins_.push_back(*digest);
  }
  auto ctx = shared_tls_context(options);
  if (!ctx.ok()) return ctx.status();
  ctx_ = std::move(*ctx);
  ERR_clear_error();
  ssl_ = SSL_new(ctx_.get());
  if (ssl_ == nullptr || SSL_set_fd(ssl_, fd) != 1) {
    return Status(ErrorKind::kInternal, "cannot create a TLS session");
  }
  SSL_set_app_data(ssl_, this);
  bool ip = is_ip_literal(host);
  if (!ip) SSL_set_tlsext_host_name(ssl_, host.c_str());  // SNI is for names only
  if (options.verify) {
    int set = ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl_), host.c_str())
                 : SSL_set1_host(ssl_, host.c_str());
    if (set != 1) return tls_error("cannot verify host name \"" + host + "\"");
    SSL_set_hostflags(ssl_, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
  }
  return Status::Ok();
}

Status certificate_error(long code, const std::string& host, const std::string& peer,
                         const std::string& leaf_names) {
  std::string what = X509_verify_cert_error_string(code);
  switch (code) {
    case X509_V_ERR_HOSTNAME_MISMATCH:
    case X509_V_ERR_IP_ADDRESS_MISMATCH:
      return tls_error("TLS certificate does not match host " + host + " (it is for: " +
                       (leaf_names.empty() ? std::string("?") : leaf_names) + ")");
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
    case X509_V_ERR_CERT_UNTRUSTED:
      return tls_error("TLS certificate of " + peer + " is not trusted: " + what +
                       " (self-signed or private CA? set tls.ca_file)");
    case X509_V_ERR_CERT_HAS_EXPIRED:
    case X509_V_ERR_CERT_NOT_YET_VALID:
      return tls_error("TLS certificate of " + peer + " is not valid now: " + what +
                       " (check the server's certificate and this machine's clock)");
    default:
      return tls_error("TLS certificate of " + peer + " failed verification: " + what);
  }
}

Status handshake_failure(unsigned long e, const std::string& peer, TlsVersion min_version) {
  int reason = ERR_GET_REASON(e);
  if (is_version_refusal(reason)) {
    if (min_version == TlsVersion::k1_3) {
      return tls_error("server " + peer + " does not support TLS 1.3 (min_version = 1.3)");
    }
    return tls_error("server " + peer + " does not support TLS 1.2 or later (" +
                     openssl_reason(e) + ")");
  }
  if (is_not_tls(reason)) {
    return tls_error("server " + peer + " did not answer with TLS (" + openssl_reason(e) +
                     "): is this a plaintext or STARTTLS port? check the port and the "
                     "security setting");
  }
  return tls_error("TLS handshake with " + peer + " failed: " + openssl_reason(e));
}

Status check_pin(X509* leaf, const std::vector<Sha256>& pins, const std::string& peer) {
  if (pins.empty()) return Status::Ok();
  if (leaf == nullptr) return tls_error("server " + peer + " sent no certificate to pin");
  Sha256 digest = spki_digest(leaf);
  if (std::find(pins.begin(), pins.end(), digest) != pins.end()) return Status::Ok();
  return tls_error("public key pin mismatch for " + peer + ": the server's key is " +
                   spki_pin(leaf) + ", which is not in tls.pins");
}

namespace {
int keep_verdict(int preverify_ok, X509_STORE_CTX*) { return preverify_ok; }
}  // namespace

Status verify_peer_chain(X509_STORE_CTX* store, const std::string& host, const std::string& peer,
                         const TlsOptions& options, const std::vector<Sha256>& pins) {
  X509* leaf = X509_STORE_CTX_get0_cert(store);
  if (options.verify) {
    // The engines' own per-certificate callbacks (cpprestsdk's rfc2818 check mangles IPv6
    // literals) stay out: OpenSSL's host check below is the one core/net uses.
    X509_STORE_CTX_set_verify_cb(store, &keep_verdict);
    X509_VERIFY_PARAM* param = X509_STORE_CTX_get0_param(store);
    int set = is_ip_literal(host) ? X509_VERIFY_PARAM_set1_ip_asc(param, host.c_str())
                                  : X509_VERIFY_PARAM_set1_host(param, host.c_str(), host.size());
    X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    if (set != 1) return tls_error("cannot verify host name \"" + host + "\"");
    if (X509_verify_cert(store) != 1) {
      long code = X509_STORE_CTX_get_error(store);
      return certificate_error(code, host, peer, leaf != nullptr ? certificate_names(leaf) : "");
    }
  }
  Status pinned = check_pin(leaf, pins, peer);
  if (!pinned.ok()) X509_STORE_CTX_set_error(store, X509_V_ERR_APPLICATION_VERIFICATION);
  return pinned;
}

Result<X509_STORE*> load_ca_store(const std::string& ca_file) {
  // OpenSSL would read a FIFO or /dev/zero without end: only a bounded regular file.
  MB_RETURN_IF_ERROR(check_regular_file(ca_file, kMaxCaFileBytes, "cannot load tls.ca_file"));
  ERR_clear_error();
  X509_STORE* store = X509_STORE_new();
  if (store == nullptr || X509_STORE_load_file(store, ca_file.c_str()) != 1) {
    X509_STORE_free(store);
    unsigned long e = ERR_peek_last_error();
    const char* why = e != 0 ? ERR_reason_error_string(e) : nullptr;
    ERR_clear_error();
    return Status(ErrorKind::kConfig, "cannot load tls.ca_file " + ca_file + ": " +
                                          (why != nullptr ? why : "unreadable"));
  }
  return store;
}

Status TlsSession::verify_error(long code) const {
  return certificate_error(code, host_, peer_, leaf_names);
}

Status TlsSession::handshake_error(int ssl_error) const {
  long verify = SSL_get_verify_result(ssl_);
  if (options_.verify && verify != X509_V_OK) return verify_error(verify);
  unsigned long e = ERR_peek_last_error();
  int reason = ERR_GET_REASON(e);
  if ((ssl_error == SSL_ERROR_SYSCALL && e == 0) ||
      (ssl_error == SSL_ERROR_SSL && reason == SSL_R_UNEXPECTED_EOF_WHILE_READING)) {
    return Status(ErrorKind::kNetwork,
                  "connection closed by server during the TLS handshake with " + peer_,
                  ErrorScope::kConnection);
  }
  return handshake_failure(e, peer_, options_.min_version);
}

Status TlsSession::check_pins() const {
  return check_pin(SSL_get0_peer_certificate(ssl_), pins_, peer_);
}

std::string TlsSession::summary() const {
  std::string s = std::string(SSL_get_version(ssl_)) + " " + SSL_get_cipher_name(ssl_);
  if (X509* leaf = SSL_get0_peer_certificate(ssl_)) {
    s += ", certificate CN=" + common_name(X509_get_subject_name(leaf)) + " issued by CN=" +
         common_name(X509_get_issuer_name(leaf));
  }
  bool verified = options_.verify && SSL_get_verify_result(ssl_) == X509_V_OK;
  s += verified ? ", verified" : ", NOT verified";
  if (!pins_.empty()) s += ", public key pinned";
  return s;
}

}  // namespace mb::internal
