// File: core/config_connections.cpp — [[mailbox]] and [[sender]]: type, host, port,
// security, endpoint, tls, timeouts, auth, and what a mailbox does with the mail it reads.
// What a connector type allows comes from its row in core/connector_types.h.
#include <algorithm>
#include <cctype>
#include <vector>

#include <fmt/format.h>

#include "core/connector_types.h"
#include "core/internal/config_readers.h"

namespace mb::config_internal {
namespace {

enum class Role { kMailbox, kSender };

// What a table of a missing or wrong type is checked against: no more than any type needs,
// so that its other problems are reported once each (the type's error fails the file).
constexpr ConnectorSpec kUnknownType = {
    ConnectorType::kGraph, "", "", 0, 0, true, true, true, false, 443, 443, 443, true, true, true,
    false, true, false, {}, std::chrono::minutes(2)};

int rank(const ConnectorSpec& spec, Role role) {
  return role == Role::kMailbox ? spec.mailbox_rank : spec.sender_rank;
}

// "imap | pop3 | ews | graph": the types of `role`, in their rank's order.
std::string type_list(Role role) {
  std::vector<const ConnectorSpec*> specs;
  for (const ConnectorSpec& spec : connector_specs()) {
    if (rank(spec, role) > 0) specs.push_back(&spec);
  }
  std::sort(specs.begin(), specs.end(),
            [&](auto* a, auto* b) { return rank(*a, role) < rank(*b, role); });
  std::string list;
  for (auto* spec : specs) list += (list.empty() ? "" : " | ") + std::string(spec->name);
  return list;
}

// The row of type = "..."; kUnknownType when it is missing or not one of `role`'s types.
const ConnectorSpec& read_type(Section& s, Role role) {
  const ConnectorSpec* spec = nullptr;
  if (auto v = s.str("type")) {
    spec = find_connector(*v);
    if (spec == nullptr || rank(*spec, role) == 0) {
      s.error("type", fmt::format("must be {} (got {})", type_list(role), dq(*v)));
      spec = nullptr;
    }
  }
  if (!s.has("type")) s.error_here("type is missing (" + type_list(role) + ")");
  return spec ? *spec : kUnknownType;
}

// A key only some type accepts (max_concurrency, helo_name...): false, after an error,
// when `spec` is not that type.
bool own_key_allowed(Section& s, const ConnectorSpec& spec, std::string_view key) {
  if (std::find(spec.own_keys.begin(), spec.own_keys.end(), key) != spec.own_keys.end()) {
    return true;
  }
  const ConnectorSpec* owner = connector_owning_key(key);
  s.error(key, fmt::format("is only used with type = \"{}\"", owner ? owner->name : ""));
  return false;
}

// auth, app, user and password: shared by [[mailbox]] and [[sender]].
struct AuthFields {
  AuthMethod& auth;
  std::string& app;
  std::string& user;
  SecretRef& password;
};

// What the chosen auth needs: an [[app]] for oauth2, a password for password, a user.
void check_auth_needs(Section& s, const Config& cfg, AuthFields f) {
  std::string_view at = s.has("auth") ? "auth" : "name";
  if (f.auth == AuthMethod::kOAuth2) {
    if (f.app.empty()) {
      s.error_at(at, "auth = \"oauth2\" needs app = \"<name of an [[app]]>\"");
    } else if (!cfg.find_app(f.app)) {
      s.error("app", fmt::format("{} is not defined by any [[app]]", dq(f.app)));
    }
    if (!f.password.empty()) s.error("password", "is not used with auth = \"oauth2\"");
  } else if ((f.auth == AuthMethod::kPassword || f.auth == AuthMethod::kNtlm) &&
             f.password.empty() && !s.has("password")) {
    s.error_at(at, fmt::format("auth = \"{}\" needs password = \"env:NAME\" or \"file:PATH\"",
                               to_string(f.auth)));
  }
  if (f.auth != AuthMethod::kNone && f.user.empty() && !s.has("user")) {
    s.error_here("user is missing (the login name)");
  }
}

void read_auth(Section& s, const Config& cfg, const ConnectorSpec& spec, AuthFields f) {
  if (auto v = s.str("app")) f.app = *v;
  if (auto v = s.str("user")) {
    if (v->empty()) s.error("user", "must not be empty");
    f.user = *v;
  }
  read_secret(s, "password", f.password);
  f.auth = (!spec.password_auth || !f.app.empty()) ? AuthMethod::kOAuth2 : AuthMethod::kPassword;
  std::optional<std::string> v;
  const toml::node* written = s.node("auth");
  if (spec.ntlm_auth && written && written->value<std::string>() == std::optional<std::string>("basic")) {
    s.error("auth", "must be password | ntlm | oauth2 (got \"basic\": EWS's Basic "
                    "authentication is auth = \"password\")");
  } else if (spec.ntlm_auth) {
    v = read_choice(s, "auth", {"password", "ntlm", "oauth2"});
  } else {
    v = spec.relay ? read_choice(s, "auth", {"password", "oauth2", "none"})
                   : read_choice(s, "auth", {"password", "oauth2"});
  }
  if (v) f.auth = parse_auth_method(*v).value_or(f.auth);
  if (!spec.password_auth && f.auth != AuthMethod::kOAuth2) {
    s.error("auth", fmt::format("must be \"oauth2\" for type = \"{}\"", spec.name));
    return;
  }
  check_auth_needs(s, cfg, f);
}

// type, host, port, security, endpoint, tls, timeouts: shared by [[mailbox]] and [[sender]].
struct ConnectionFields {
  ConnectorType& type;
  std::string& host;
  uint16_t& port;
  Security& security;
  std::string& endpoint;
  TlsOptions& tls;
  Timeouts& timeouts;
};

Security read_security(Section& s, const char* fallback) {
  std::string sec = fallback;
  read_choice(s, "security", {"tls", "starttls", "none"}, sec);
  if (sec == "none" && s.has("security")) {
    s.warn("security", "= \"none\": mail and credentials travel unencrypted");
  }
  if (sec == "starttls") return Security::kStartTls;
  return sec == "none" ? Security::kNone : Security::kTls;
}

const ConnectorSpec& read_connection(Section& s, Role role, const char* security,
                                     ConnectionFields f) {
  const ConnectorSpec& spec = read_type(s, role);
  if (&spec != &kUnknownType) f.type = spec.type;
  f.security = read_security(s, security);
  if (auto v = s.str("host")) {
    if (v->empty()) s.error("host", "must not be empty");
    f.host = *v;
  }
  if (spec.needs_host && !s.has("host")) s.error_here("host is missing");
  auto port = read_port(s);
  f.port = port ? *port : default_port(spec.type, f.security);
  read_endpoint(s, f.endpoint);
  read_tls(s, f.tls);
  read_timeouts(s, f.timeouts);
  return spec;
}

std::optional<PostAction> read_after(Section& s, std::string_view key, const ConnectorSpec& spec) {
  auto v = s.str(key);
  if (!v) return std::nullopt;
  auto a = parse_post_action(*v);
  if (!a.ok()) {
    s.error(key, fmt::format("must be mark-read | delete | move:FOLDER | leave (got {})", dq(*v)));
    return std::nullopt;
  }
  if (!spec.folders && a->kind == PostAction::Kind::kMove) {
    s.error(key, fmt::format("cannot be move: for {}, which has no folders (use delete or "
                             "leave)", spec.name));
    return std::nullopt;
  }
  if (!spec.read_flag && a->kind == PostAction::Kind::kMarkRead) {
    s.error(key, fmt::format("cannot be mark-read for {}: {} has no read flag, a message is "
                             "either deleted or left on the server (use delete or leave)",
                             spec.name, spec.label));
    return std::nullopt;
  }
  return *a;
}

// A count within 1–max: nullopt after an error otherwise.
std::optional<uint32_t> in_range(Section& s, std::string_view key, int64_t v, int64_t max) {
  if (v < 1 || v > max) {
    s.error(key, fmt::format("must be 1–{} (got {})", max, v));
    return std::nullopt;
  }
  return static_cast<uint32_t>(v);
}

// folder, after, after_filtered, poll_interval, max_per_poll.
void read_mailbox_polling(Section& s, const ConnectorSpec& spec, MailboxConfig& m) {
  if (auto v = s.str("folder")) {
    if (v->empty()) s.error("folder", "must not be empty");
    else m.folder = *v;
  }
  // Without a read flag (POP3), "leave" is the nearest non-destructive default (the ledger
  // imports each message once), so a misconfigured mailbox never loses mail.
  if (!spec.read_flag) m.after = PostAction::leave();
  if (auto a = read_after(s, "after", spec)) m.after = *a;
  if (auto a = read_after(s, "after_filtered", spec)) m.after_filtered = *a;
  m.poll_interval = spec.default_poll_interval;  // graph 30 s, else 2 m
  if (auto d = read_duration(s, "poll_interval", 1, 86400)) m.poll_interval = *d;
  if (auto v = s.integer("max_per_poll")) {
    if (auto n = in_range(s, "max_per_poll", *v, 9999)) m.max_per_poll = *n;
  }
}

// project, max_concurrency, enabled, address.
void read_mailbox_rest(Section& s, const Config& cfg, const ConnectorSpec& spec,
                       MailboxConfig& m) {
  m.project = cfg.projects.empty() ? "IT" : cfg.projects.front().name;
  if (auto v = s.str("project")) {
    check_project_ref(s, cfg, *v);
    m.project = *v;
  }
  if (auto v = s.integer("max_concurrency"); v && own_key_allowed(s, spec, "max_concurrency")) {
    if (auto n = in_range(s, "max_concurrency", *v, 4)) m.max_concurrency = *n;
  }
  if (auto v = s.boolean("enabled")) m.enabled = *v;
  if (auto v = s.str("address")) {
    if (v->find('@') == std::string::npos) {
      s.error("address", fmt::format("must be an email address (got {})", dq(*v)));
    }
    m.address = *v;
  }
  if (m.address.empty()) m.address = m.user;
}

// EWS: access, the mailbox's address, the endpoint (for check-config) and Exchange Online's
// end of EWS. Runs after read_mailbox_rest (address).
void read_mailbox_access(Section& s, const Config& cfg, const ConnectorSpec& spec,
                         MailboxConfig& m) {
  const AppConfig* app = m.auth == AuthMethod::kOAuth2 ? cfg.find_app(m.app) : nullptr;
  const bool app_only = app != nullptr && app->flow == "app-only";
  if (s.has("access") && own_key_allowed(s, spec, "access")) {
    if (auto v = read_choice(s, "access", {"own", "impersonation", "delegate"})) {
      m.access = *v == "impersonation" ? MailboxAccess::kImpersonation
                 : *v == "delegate"    ? MailboxAccess::kDelegate
                                       : MailboxAccess::kOwn;
      if (app_only && m.access != MailboxAccess::kImpersonation) {
        s.error("access", fmt::format("must be \"impersonation\" with the app-only [[app]] \"{}\" "
                                      "(Exchange takes an app's token only with the "
                                      "ExchangeImpersonation header)", m.app));
      }
    }
  }
  if (s.has("delete_type") && own_key_allowed(s, spec, "delete_type")) {
    if (auto v = read_choice(s, "delete_type", {"MoveToDeletedItems", "HardDelete"})) {
      m.ews_hard_delete = *v == "HardDelete";
    }
  }
  if (s.has("listing") && own_key_allowed(s, spec, "listing")) {
    if (auto v = read_choice(s, "listing", {"sync", "find"})) m.ews_find_listing = *v == "find";
  }
  if (spec.type != ConnectorType::kEws) return;
  if (!s.has("access") && app_only) m.access = MailboxAccess::kImpersonation;
  if (m.address.find('@') == std::string::npos && !m.user.empty()) {
    s.error_at(s.has("address") ? "address" : "user",
               fmt::format("address is missing: EWS needs the mailbox's email address "
                           "(X-AnchorMailbox{}), and user = {} is not one",
                           m.access == MailboxAccess::kImpersonation ? ", impersonation" : "",
                           dq(m.user)));
  }
  if (m.enabled && spec.needs_endpoint && m.endpoint.empty() && s.checker().deep()) {
    s.error_here("endpoint is missing: the https:// URL of Exchange's EWS (e.g. "
                 "https://mail.corp.example/EWS/Exchange.asmx)");
  }
  if (m.enabled && exchange_online_endpoint(m.endpoint)) {
    s.warn("endpoint", fmt::format(
        "is Exchange Online, where EWS ends on 1 April 2027 (and since 1 October 2026 works "
        "only where the tenant allows it: Set-OrganizationConfig -EwsEnabled $true and this "
        "app in EwsAllowedAppIDs); replace this mailbox with type = \"graph\"{} and the "
        "same user and folder (docs/ews.md, \"Exchange Online\")",
        m.app.empty() ? " (an [[app]] registration with Mail.ReadWrite, docs/entra-setup.md)"
                      : fmt::format(" with the same app registration, app = {} (Mail.ReadWrite)",
                                    dq(m.app))));
  }
}

bool valid_helo_name(const std::string& v) {
  bool ok = !v.empty() && v.size() <= 255;
  for (char ch : v) {
    ok = ok && (std::isalnum(static_cast<unsigned char>(ch)) || ch == '.' || ch == '-' ||
                ch == '[' || ch == ']' || ch == ':');
  }
  return ok;
}

// one_message_per_connection, helo_name, save_to_sent_items.
void read_sender_options(Section& s, const ConnectorSpec& spec, SenderConfig& snd) {
  if (auto v = s.boolean("one_message_per_connection")) snd.one_message_per_connection = *v;
  if (auto v = s.str("helo_name")) {
    if (own_key_allowed(s, spec, "helo_name") && !valid_helo_name(*v)) {
      s.error("helo_name", fmt::format("must be a host name or [address] (got {})", dq(*v)));
    }
    snd.helo_name = *v;
  }
  if (auto v = s.boolean("save_to_sent_items")) {
    own_key_allowed(s, spec, "save_to_sent_items");
    snd.save_to_sent_items = *v;
  }
}

}  // namespace

void check_implemented(Section& s, const ConnectorSpec& spec, const char* what) {
  const bool mailbox = std::string_view(what) == "mailbox";
  if (!s.checker().deep() || (mailbox ? spec.mailbox_implemented : spec.sender_implemented)) {
    return;
  }
  s.error("type", fmt::format("= \"{}\": {} is not supported yet by this version of "
                              "mailbridge, so this {} would fail every time (use type = "
                              "\"graph\" for Exchange Online{})",
                              spec.name, spec.label, what,
                              mailbox ? ", or enabled = false" : ""));
}

void read_mailbox(const toml::table& t, size_t index, NameRegistry& names, Config& cfg,
                  Checker& c) {
  Section s(t, fmt::format("mailbox #{}", index + 1), c);
  MailboxConfig m;
  m.line_no = s.line();
  m.name = names.read(s);
  const ConnectorSpec& spec = read_connection(
      s, Role::kMailbox, "tls", {m.type, m.host, m.port, m.security, m.endpoint, m.tls,
                                 m.timeouts});
  read_auth(s, cfg, spec, {m.auth, m.app, m.user, m.password});
  read_mailbox_polling(s, spec, m);
  read_mailbox_rest(s, cfg, spec, m);
  read_mailbox_access(s, cfg, spec, m);
  if (m.enabled) check_implemented(s, spec, "mailbox");
  s.finish();
  cfg.mailboxes.push_back(std::move(m));
}

void read_sender(const toml::table& t, size_t index, NameRegistry& names, Config& cfg,
                 Checker& c) {
  Section s(t, fmt::format("sender #{}", index + 1), c);
  SenderConfig snd;
  snd.name = names.read(s);
  const ConnectorSpec& spec = read_connection(
      s, Role::kSender, "starttls", {snd.type, snd.host, snd.port, snd.security, snd.endpoint,
                                     snd.tls, snd.timeouts});
  read_auth(s, cfg, spec, {snd.auth, snd.app, snd.user, snd.password});
  check_implemented(s, spec, "sender");
  read_sender_options(s, spec, snd);
  s.finish();
  cfg.senders.push_back(std::move(snd));
}

}  // namespace mb::config_internal
