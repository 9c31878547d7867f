// File: core/tls_options.h — how one connection is secured and timed: the TLS policy
// (TlsOptions), the deadlines (Timeouts) and the security mode (Security).
//
// The configuration fills these in (core/config.h), and the transport (core/net.h,
// core/http.h) reads them; this header lets the transport do so without the configuration
// and the mailbox interface behind it.
//
//   mb::TlsOptions tls;  tls.min_version = mb::TlsVersion::k1_3;
#pragma once

#include <chrono>
#include <string>
#include <vector>

namespace mb {

enum class TlsVersion { k1_2, k1_3 };

struct TlsOptions {
  bool verify = true;                  // peer and hostname verification
  std::string ca_file;                 // empty: the system store
  TlsVersion min_version = TlsVersion::k1_2;
  std::vector<std::string> pins;       // SHA-256 of SubjectPublicKeyInfo, "sha256/BASE64" or hex
  bool operator==(const TlsOptions&) const = default;
};

struct Timeouts {
  std::chrono::seconds connect{30};    // TCP connect + TLS handshake + greeting
  std::chrono::seconds response{60};   // every later response
  bool operator==(const Timeouts&) const = default;
};

enum class Security { kTls, kStartTls, kNone };

}  // namespace mb
