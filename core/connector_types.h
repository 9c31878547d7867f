// File: core/connector_types.h — the kinds of connector ([[mailbox]] and [[sender]] type)
// and of sign-in (auth), and one table row per connector type with what the configuration
// checks about it: the default ports, the `after` actions it can carry out, the auth it
// accepts, the keys it requires or alone accepts, and whether this version implements it.
//
// Adding a connector is adding a row to kConnectors (core/connector_types.cpp), an
// enumerator here, and the connector itself (connectors/registry.cpp).
//
//   const ConnectorSpec& spec = connector_spec(ConnectorType::kPop3);
//   uint16_t port = default_port(ConnectorType::kImap, Security::kTls);  // 993
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "core/tls_options.h"

namespace mb {

enum class ConnectorType { kImap, kPop3, kEws, kGraph, kSmtp };

// password: the protocol's own (EWS: HTTP Basic); ntlm: EWS's Windows authentication;
// oauth2: an [[app]]'s tokens; none: an open SMTP relay.
enum class AuthMethod { kPassword, kOAuth2, kNone, kNtlm };

struct ConnectorSpec {
  ConnectorType type;
  std::string_view name;          // as written: type = "imap"
  std::string_view label;         // in prose: "IMAP"
  int mailbox_rank;               // 0: no [[mailbox]]; else its place in the listed types
  int sender_rank;                // 0: no [[sender]]; else its place in the listed types
  bool mailbox_implemented;       // false: check-config refuses it as a [[mailbox]] (not built yet)
  bool sender_implemented;        // the same for a [[sender]]
  bool http;                      // an HTTPS service at an endpoint (else a line protocol)
  bool needs_host;                // host is required
  uint16_t port_tls;              // default ports by security
  uint16_t port_starttls;
  uint16_t port_none;
  bool folders;                   // after = "move:FOLDER" is possible
  bool read_flag;                 // after = "mark-read" is possible (else default "leave")
  bool password_auth;             // auth = "password" is accepted (else only "oauth2")
  bool relay;                     // auth = "none" is accepted (an open relay)
  bool ntlm_auth;                 // auth = "ntlm" is accepted
  // An enabled [[mailbox]] needs `endpoint` (check-config says so; the connector too).
  bool needs_endpoint;
  std::array<std::string_view, 4> own_keys;  // keys only this type accepts
  // A [[mailbox]]'s poll_interval when the file sets none (0 for sender-only types). Graph
  // polls its delta query every 30 s: a few requests a minute, far inside Microsoft's limit
  // of 10,000 requests per 10 minutes per app and mailbox. IMAP waits with IDLE between
  // polls anyway; POP3 has no push, and its servers mind frequent logins.
  std::chrono::seconds default_poll_interval;
};

// Every connector type, in the order of the enum.
std::span<const ConnectorSpec> connector_specs();
const ConnectorSpec& connector_spec(ConnectorType type);
// The row named `name` ("imap"), or nullptr.
const ConnectorSpec* find_connector(std::string_view name);
// The row whose own_keys hold `key`, or nullptr.
const ConnectorSpec* connector_owning_key(std::string_view key);

std::string to_string(ConnectorType type);
std::string to_string(AuthMethod auth);
std::optional<AuthMethod> parse_auth_method(std::string_view text);

// Whether an https URL's host is Exchange Online's (outlook.office365.com, any other host
// under office365.com, outlook.office.com), where EWS ends on 1 April 2027.
bool exchange_online_endpoint(std::string_view url);

// The default port of a connector type under a security mode (imap tls → 993, starttls →
// 143; graph and ews: 443).
uint16_t default_port(ConnectorType type, Security security);

}  // namespace mb
