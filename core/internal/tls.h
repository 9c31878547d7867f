// File: core/internal/tls.h — the OpenSSL side of core/net: one client TLS session with
// mailbridge's verification policy, and the translation of OpenSSL failures into Status
// messages an administrator can act on. Not API: only core/net.cpp and its tests use it.
//
// Sessions under one policy share one SSL_CTX (shared_tls_context): the CA store loaded
// into a context costs hundreds of KiB, and the service holds a connection per mailbox.
// What differs per connection — the host name checked (SSL_set1_host), SNI, the pins —
// lives on the session.
//
//   auto s = TlsSession::create(fd, "imap.example", "imap.example:993", options);
//   // drive SSL_connect(s->ssl()) over the non-blocking socket, then:
//   if (rc != 1) return s->handshake_error(ssl_error);
//   MB_RETURN_IF_ERROR(s->check_pins());
#pragma once

#include <array>
#include <memory>
#include <string>
#include <vector>

#include <openssl/ssl.h>

#include "core/tls_options.h"
#include "core/status.h"

namespace mb::internal {

using Sha256 = std::array<unsigned char, 32>;

// Parses one pin, "sha256/<base64>" or 64 hex digits, into the digest; kConfig otherwise.
Result<Sha256> parse_pin(const std::string& pin);
// SHA-256 of the certificate's SubjectPublicKeyInfo DER, written "sha256/<base64>".
std::string spki_pin(X509* cert);
// True when `host` is an IPv4 or IPv6 literal (no SNI, IP-address verification).
bool is_ip_literal(const std::string& host);

// The pieces of TlsSession's policy that core/http reuses with cpprestsdk's OpenSSL
// contexts, so that both report the same failures in the same words.
// The names a certificate is valid for: its subjectAltName entries, else its CN.
std::string certificate_names(X509* cert);
// A failed chain or hostname verification (`code` from X509_STORE_CTX_get_error).
Status certificate_error(long code, const std::string& host, const std::string& peer,
                         const std::string& leaf_names);
// A failed handshake that is not a certificate verdict (`e` from the OpenSSL error queue).
Status handshake_failure(unsigned long e, const std::string& peer, TlsVersion min_version);
// Compares the leaf's public key with `pins` (none: OK).
Status check_pin(X509* leaf, const std::vector<Sha256>& pins, const std::string& peer);
// The certificate check core/http's engines install with SSL_CTX_set_cert_verify_callback
// in place of OpenSSL's: with verification on, the chain against the context's store and
// `host` (an IP literal as an address), then the public-key pins. OK when the peer passes;
// otherwise the Status says why in core/net's words.
Status verify_peer_chain(X509_STORE_CTX* store, const std::string& host, const std::string& peer,
                         const TlsOptions& options, const std::vector<Sha256>& pins);
// Loads tls.ca_file (a bounded regular file) into a new store, for every connection of a
// client to share: kConfig naming the file when it cannot be read.
Result<X509_STORE*> load_ca_store(const std::string& ca_file);
// Hands the "verification is off" warning for `peer` to the sink that
// set_insecure_tls_warning_sink() installed (defined in core/net.cpp, where the sink lives).
void warn_insecure_tls(const std::string& peer);

// The client context for the parts of `options` a context holds — verify (and with it the
// CA store: the system's, or tls.ca_file as it is on disk now), min_version — built once and
// shared while any session uses it (then freed). A changed tls.ca_file (another file, or
// the same path rewritten) gets a new context; the system store is read once per process
// while in use. Pins are not part of it: each session checks its own. Thread-safe.
// kConfig when the CA store cannot be loaded.
Result<std::shared_ptr<SSL_CTX>> shared_tls_context(const TlsOptions& options);
// How many contexts shared_tls_context has built in this process (for tests).
size_t tls_contexts_created();

class TlsSession {
 public:
  // Builds the session (on the shared context for `options`) over connected socket `fd` (not owned). `host` is
  // what the certificate must match; `peer` ("host:port") names the server in messages.
  static Result<std::unique_ptr<TlsSession>> create(int fd, const std::string& host,
                                                    const std::string& peer,
                                                    const TlsOptions& options);
  ~TlsSession();
  TlsSession(const TlsSession&) = delete;
  TlsSession& operator=(const TlsSession&) = delete;

  SSL* ssl() const { return ssl_; }
  // Explains a failed SSL_connect (`ssl_error` from SSL_get_error); call before clearing
  // the thread's OpenSSL error queue.
  Status handshake_error(int ssl_error) const;
  // After the handshake: compares the leaf's public key with the configured pins.
  Status check_pins() const;
  // "TLSv1.3 TLS_AES_256_GCM_SHA384, certificate CN=a issued by CN=b, verified".
  std::string summary() const;
  // The shared context this session runs on (tests compare them).
  const SSL_CTX* context() const { return ctx_.get(); }

  // Filled by the verify callback: the leaf's names, for a hostname-mismatch message.
  std::string leaf_names;

 private:
  TlsSession() = default;
  Status setup(int fd, const std::string& host, const TlsOptions& options);
  Status verify_error(long code) const;

  std::shared_ptr<SSL_CTX> ctx_;
  SSL* ssl_ = nullptr;
  std::string host_;
  std::string peer_;
  TlsOptions options_;
  std::vector<Sha256> pins_;
};

}  // namespace mb::internal
