// File: tests/unit/core/tls_server.h — a test PKI made with the OpenSSL API and a small
// in-process server on 127.0.0.1 (ephemeral port, a thread per connection) that speaks
// implicit TLS, STARTTLS, or nothing at all.
//
//   mb::testing::TestPki pki;                        // CA + leaf for "localhost" in a temp dir
//   mb::testing::TestServer::Options o;
//   o.cert = pki.localhost.cert.get();
//   o.key = pki.localhost.key.get();
//   mb::testing::TestServer server(o);
//   auto s = mb::connect_stream("localhost", server.port(), mb::Security::kTls,
//                               tls_options_with_ca_file, timeouts);
#pragma once

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <arpa/inet.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

namespace mb::testing {

using PkeyPtr = std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)>;
using X509Ptr = std::unique_ptr<X509, decltype(&X509_free)>;

struct KeyCert {
  PkeyPtr key{nullptr, EVP_PKEY_free};
  X509Ptr cert{nullptr, X509_free};
};

inline void add_extension(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  if (ext == nullptr) throw std::runtime_error("bad extension " + value);
  X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
}

// A P-256 key and a certificate for it: self-signed when `issuer` is null. `sans` is an
// OpenSSL subjectAltName value such as "DNS:localhost" or "IP:127.0.0.1" (empty: none).
inline KeyCert make_cert(const std::string& cn, const KeyCert* issuer, bool is_ca,
                         const std::string& sans, long serial) {
  KeyCert kc;
  kc.key.reset(EVP_EC_gen("P-256"));
  kc.cert.reset(X509_new());
  X509* x = kc.cert.get();
  X509_set_version(x, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x), serial);
  X509_gmtime_adj(X509_getm_notBefore(x), -3600);
  X509_gmtime_adj(X509_getm_notAfter(x), 86400);
  X509_set_pubkey(x, kc.key.get());
  X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  X509* issuer_cert = issuer != nullptr ? issuer->cert.get() : x;
  X509_set_issuer_name(x, X509_get_subject_name(issuer_cert));
  add_extension(x, issuer_cert, NID_basic_constraints, is_ca ? "critical,CA:TRUE" : "CA:FALSE");
  add_extension(x, issuer_cert, NID_key_usage,
                is_ca ? "critical,keyCertSign,cRLSign" : "critical,digitalSignature");
  add_extension(x, issuer_cert, NID_subject_key_identifier, "hash");
  if (!sans.empty()) add_extension(x, issuer_cert, NID_subject_alt_name, sans);
  EVP_PKEY* signer = issuer != nullptr ? issuer->key.get() : kc.key.get();
  if (X509_sign(x, signer, EVP_sha256()) == 0) throw std::runtime_error("X509_sign failed");
  return kc;
}

// Two CAs, leaves signed by the first, and the CA certificates as PEM files in a temp dir.
struct TestPki {
  TestPki() {
    char tmpl[] = "/tmp/mb_net_test_XXXXXX";
    if (mkdtemp(tmpl) == nullptr) throw std::runtime_error("mkdtemp failed");
    dir = tmpl;
    ca = make_cert("mailbridge test CA", nullptr, true, "", 1);
    other_ca = make_cert("some other CA", nullptr, true, "", 2);
    localhost = make_cert("localhost", &ca, false, "DNS:localhost", 3);
    ip = make_cert("loopback", &ca, false, "IP:127.0.0.1", 4);
    ca_file = write_pem("ca.pem", ca.cert.get());
    other_ca_file = write_pem("other_ca.pem", other_ca.cert.get());
  }
  ~TestPki() {
    std::remove(ca_file.c_str());
    std::remove(other_ca_file.c_str());
    rmdir(dir.c_str());
  }

  std::string write_pem(const std::string& name, X509* cert) const {
    std::string path = dir + "/" + name;
    FILE* f = std::fopen(path.c_str(), "w");
    if (f == nullptr) throw std::runtime_error("cannot write " + path);
    PEM_write_X509(f, cert);
    std::fclose(f);
    return path;
  }

  std::string dir;
  KeyCert ca, other_ca, localhost, ip;
  std::string ca_file, other_ca_file;
};

class TestServer {
 public:
  enum class Mode {
    kTls,       // handshake, send greeting + payload, then echo what arrives
    kStartTls,  // plaintext "* OK plain", one command line, "a1 OK begin TLS", then as kTls
    kSilent,    // accept and never answer
  };
  struct Options {
    Mode mode = Mode::kTls;
    X509* cert = nullptr;
    EVP_PKEY* key = nullptr;
    int max_version = 0;  // e.g. TLS1_2_VERSION; 0: the library's highest
    std::string greeting = "* OK ready\r\n";
    std::string payload;  // sent right after the greeting
  };

  explicit TestServer(Options options) : options_(std::move(options)) {
    std::signal(SIGPIPE, SIG_IGN);  // a client that hangs up must not kill the test
    if (options_.cert != nullptr) setup_ssl();
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        ::listen(listen_fd_, 16) != 0 ||
        ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len) != 0 ||
        ::pipe(wake_) != 0) {
      throw std::runtime_error("cannot start the test server");
    }
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { run(); });
  }
  ~TestServer() {
    char c = 'x';
    (void)!::write(wake_[1], &c, 1);
    thread_.join();
    ::close(listen_fd_);
    ::close(wake_[0]);
    ::close(wake_[1]);
    SSL_CTX_free(ctx_);
  }
  TestServer(const TestServer&) = delete;
  TestServer& operator=(const TestServer&) = delete;

  uint16_t port() const { return port_; }
  int accepted() const { return accepted_; }
  int handshakes() const { return handshakes_; }

 private:
  void setup_ssl() {
    ctx_ = SSL_CTX_new(TLS_server_method());
    SSL_CTX_use_certificate(ctx_, options_.cert);
    SSL_CTX_use_PrivateKey(ctx_, options_.key);
    if (options_.max_version != 0) SSL_CTX_set_max_proto_version(ctx_, options_.max_version);
  }

  // Waits until fd is readable; false when the server is being stopped.
  bool wait_readable(int fd) {
    pollfd p[2] = {{fd, POLLIN, 0}, {wake_[0], POLLIN, 0}};
    while (::poll(p, 2, -1) < 0) {
    }
    return (p[1].revents & POLLIN) == 0;
  }

  // One thread per connection, so that a test can hold several connections at once.
  void run() {
    std::vector<std::thread> connections;
    while (wait_readable(listen_fd_)) {
      int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) continue;
      ++accepted_;
      timeval tv{10, 0};  // a safety net: a stuck client cannot hang the suite
      setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
      connections.emplace_back([this, fd] {
        serve(fd);
        ::close(fd);
      });
    }
    for (auto& t : connections) t.join();
  }

  void serve(int fd) {
    if (options_.mode == Mode::kSilent) {
      char buf[4096];
      while (wait_readable(fd) && ::recv(fd, buf, sizeof buf, 0) > 0) {
      }
      return;
    }
    if (options_.mode == Mode::kStartTls && !plain_starttls(fd)) return;
    serve_tls(fd);
  }

  bool plain_starttls(int fd) {
    std::string hello = "* OK plain\r\n";
    ::send(fd, hello.data(), hello.size(), MSG_NOSIGNAL);
    char c = 0;
    while (c != '\n') {  // byte by byte so that nothing of the handshake is consumed
      if (!wait_readable(fd) || ::recv(fd, &c, 1, 0) != 1) return false;
    }
    std::string ok = "a1 OK begin TLS\r\n";
    return ::send(fd, ok.data(), ok.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(ok.size());
  }

  void serve_tls(int fd) {
    SSL* ssl = SSL_new(ctx_);
    SSL_set_fd(ssl, fd);
    if (SSL_accept(ssl) == 1) {
      ++handshakes_;
      std::string first = options_.greeting + options_.payload;
      if (SSL_write(ssl, first.data(), static_cast<int>(first.size())) > 0) echo(ssl, fd);
      SSL_shutdown(ssl);
    }
    SSL_free(ssl);
  }

  void echo(SSL* ssl, int fd) {
    char buf[16384];
    for (;;) {
      if (SSL_pending(ssl) == 0 && !wait_readable(fd)) return;
      int n = SSL_read(ssl, buf, sizeof buf);
      if (n <= 0 || SSL_write(ssl, buf, n) <= 0) return;
    }
  }

  Options options_;
  SSL_CTX* ctx_ = nullptr;
  int listen_fd_ = -1;
  int wake_[2] = {-1, -1};
  uint16_t port_ = 0;
  std::atomic<int> accepted_{0};
  std::atomic<int> handshakes_{0};
  std::thread thread_;
};

}  // namespace mb::testing
