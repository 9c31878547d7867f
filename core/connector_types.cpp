// File: core/connector_types.cpp — the table of connector types (core/connector_types.h).
#include "core/connector_types.h"

#include <algorithm>

#include "core/ascii.h"

namespace mb {
namespace {

// name, label, mailbox rank, sender rank, mailbox implemented, sender implemented, http,
// needs host, ports (tls, starttls, none), folders, read flag, password auth, relay, ntlm
// auth, needs endpoint, own keys, default poll interval.
constexpr ConnectorSpec kConnectors[] = {
    {ConnectorType::kImap, "imap", "IMAP", 1, 0, true, false, false, true, 993, 143, 143, true,
     true, true, false, false, false, {}, std::chrono::minutes(2)},
    {ConnectorType::kPop3, "pop3", "POP3", 2, 0, true, false, false, true, 995, 110, 110, false,
     false, true, false, false, false, {}, std::chrono::minutes(2)},
    // EWS: a mailbox's endpoint is required until its autodiscover lands
    // (connectors/ews/ews_config.h, resolve_endpoint); a sender without one autodiscovers.
    {ConnectorType::kEws, "ews", "EWS", 3, 3, true, true, true, false, 443, 443, 443, true,
     true, true, false, true, true, {"access", "delete_type", "listing", "save_to_sent_items"},
     std::chrono::minutes(2)},
    {ConnectorType::kGraph, "graph", "Graph", 4, 2, true, true, true, false, 443, 443, 443, true,
     true, false, false, false, false, {"max_concurrency", "save_to_sent_items"},
     std::chrono::seconds(30)},
    {ConnectorType::kSmtp, "smtp", "SMTP", 0, 1, false, true, false, true, 465, 587, 25, false,
     false, true, true, false, false, {"helo_name"}, std::chrono::seconds(0)},
};

static_assert(std::size(kConnectors) == static_cast<size_t>(ConnectorType::kSmtp) + 1);

}  // namespace

std::span<const ConnectorSpec> connector_specs() { return kConnectors; }

const ConnectorSpec& connector_spec(ConnectorType type) {
  return kConnectors[static_cast<size_t>(type)];
}

const ConnectorSpec* find_connector(std::string_view name) {
  for (const ConnectorSpec& spec : kConnectors) {
    if (spec.name == name) return &spec;
  }
  return nullptr;
}

const ConnectorSpec* connector_owning_key(std::string_view key) {
  if (key.empty()) return nullptr;
  for (const ConnectorSpec& spec : kConnectors) {
    if (std::find(spec.own_keys.begin(), spec.own_keys.end(), key) != spec.own_keys.end()) {
      return &spec;
    }
  }
  return nullptr;
}

std::string to_string(ConnectorType type) { return std::string(connector_spec(type).name); }

std::string to_string(AuthMethod auth) {
  switch (auth) {
    case AuthMethod::kPassword: return "password";
    case AuthMethod::kOAuth2: return "oauth2";
    case AuthMethod::kNone: return "none";
    case AuthMethod::kNtlm: return "ntlm";
  }
  return "password";
}

std::optional<AuthMethod> parse_auth_method(std::string_view text) {
  for (AuthMethod a :
       {AuthMethod::kPassword, AuthMethod::kOAuth2, AuthMethod::kNone, AuthMethod::kNtlm}) {
    if (to_string(a) == text) return a;
  }
  return std::nullopt;
}

bool exchange_online_endpoint(std::string_view url) {
  constexpr std::string_view kScheme = "https://";
  if (url.substr(0, kScheme.size()) != kScheme) return false;
  std::string_view rest = url.substr(kScheme.size());
  std::string_view authority = rest.substr(0, rest.find_first_of("/?#"));
  if (size_t at = authority.rfind('@'); at != std::string_view::npos) {
    authority = authority.substr(at + 1);
  }
  std::string host = ascii_lower(authority.substr(0, authority.find(':')));
  while (!host.empty() && host.back() == '.') host.pop_back();
  return host == "outlook.office.com" || host.ends_with(".office365.com");
}

uint16_t default_port(ConnectorType type, Security security) {
  const ConnectorSpec& spec = connector_spec(type);
  switch (security) {
    case Security::kTls: return spec.port_tls;
    case Security::kStartTls: return spec.port_starttls;
    case Security::kNone: return spec.port_none;
  }
  return spec.port_tls;
}

}  // namespace mb
