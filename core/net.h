// File: core/net.h — byte streams over TCP and TLS (OpenSSL) with mailbridge's policy.
//
// A Stream is the small interface the line-protocol layer (core/line.h) reads and writes
// through, so that protocols can be tested over scripted in-memory streams and the engine
// underneath can change without touching them.
//
// Policy (SPEC §3): TLS 1.2 minimum (1.3 selectable); peer and hostname verification on by
// default, against the system store or TlsOptions::ca_file; optional SHA-256 public-key
// pins; verify = false only when configured, and then warned about at every connection.
// Every read and write has a deadline (Timeouts). Errors keep kinds apart: kNetwork (DNS,
// refused, reset, timeout), kTls (handshake, certificate, hostname, pin).
//
//   auto s = mb::connect_tcp("imap.example", 993, timeouts);
//   MB_RETURN_IF_ERROR(mb::start_tls(*s, "imap.example", tls_options));
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "core/tls_options.h"
#include "core/status.h"

namespace mb {

class Stream {
 public:
  virtual ~Stream() = default;
  // Reads at least 1 and at most `cap` bytes into `buf`. kNetwork on EOF ("connection
  // closed by server"), reset or timeout (scope kConnection).
  virtual Result<size_t> read_some(char* buf, size_t cap) = 0;
  // Writes all of `data`.
  virtual Status write_all(std::string_view data) = 0;
  // The deadline applied to each later read_some/write_all (a limit on silence).
  virtual void set_timeout(std::chrono::milliseconds t) = 0;
  // An absolute deadline that caps every later wait, whatever set_timeout says (nullopt:
  // none). Bytes that already arrived are still returned after it; a wait past it fails
  // with kNetwork. LineChannel uses it for the deadline of a whole protocol step.
  virtual void set_deadline(std::optional<std::chrono::steady_clock::time_point> at) = 0;
  // Upgrades the stream to TLS in place (STARTTLS); a no-op stream returns kInternal.
  virtual Status start_tls(const std::string& host, const TlsOptions& options) = 0;
  virtual bool is_tls() const = 0;
  // One line for test-connection: "TLSv1.3 TLS_AES_256_GCM_SHA384, certificate CN=... issued
  // by ..., verified" — empty before TLS.
  virtual std::string tls_summary() const = 0;
  virtual void close() = 0;
};

// Resolves `host` and connects to the first address that answers within timeouts.connect.
// The name lookup too must answer within timeouts.connect (core/internal/resolver.h).
// The read/write timeout of the returned stream is timeouts.response.
Result<std::unique_ptr<Stream>> connect_tcp(const std::string& host, uint16_t port,
                                            const Timeouts& timeouts);

// Where a mailbox or sender connects, for messages and headers: "host:port", an IPv6 literal
// in brackets ("[::1]:993"); a host that already names its port ("localhost:40845",
// "[::1]:993") or is a URL is shown as given, without a second port. With no host,
// `endpoint` (graph, ews: a URL carrying its own port), else "default endpoint".
std::string server_address(const std::string& host, uint16_t port,
                           const std::string& endpoint = "");

// Resolve only (for test-connection's "resolve" step): "127.0.0.1, ::1". A lookup that does
// not answer within `timeout` is a kNetwork error.
Result<std::string> resolve_host(const std::string& host, uint16_t port,
                                 std::chrono::milliseconds timeout = std::chrono::seconds(30));

// Connects and, for Security::kTls, completes the TLS handshake (implicit TLS). The
// handshake runs on timeouts.connect; the returned stream then uses timeouts.response (a
// protocol that waits for its greeting on the connect timeout sets it around that read).
Result<std::unique_ptr<Stream>> connect_stream(const std::string& host, uint16_t port,
                                               Security security, const TlsOptions& tls,
                                               const Timeouts& timeouts);

// Installs the function that receives the "verification is off" warning at every
// connection made with verify = false (default: spdlog::warn; nullptr restores it).
// The message names the server ("host:port") and never holds a secret.
void set_insecure_tls_warning_sink(void (*sink)(const std::string& message));

}  // namespace mb
