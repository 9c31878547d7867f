// File: connectors/ews/ews_config.cpp — a configured EWS mailbox as connector options
// (ews_config.h).
#include "connectors/ews/ews_config.h"

#include "core/ascii.h"

namespace mb::ews {
namespace {

SignInMethod method_of(AuthMethod auth) {
  switch (auth) {
    case AuthMethod::kNtlm: return SignInMethod::kNtlm;
    case AuthMethod::kOAuth2: return SignInMethod::kBearer;
    case AuthMethod::kPassword:
    case AuthMethod::kNone: return SignInMethod::kBasic;
  }
  return SignInMethod::kBasic;
}

Access access_of(MailboxAccess access) {
  switch (access) {
    case MailboxAccess::kImpersonation: return Access::kImpersonation;
    case MailboxAccess::kDelegate: return Access::kDelegate;
    case MailboxAccess::kOwn: return Access::kOwn;
  }
  return Access::kOwn;
}

}  // namespace

Result<std::string> resolve_endpoint(const MailboxConfig& m) {
  if (!m.endpoint.empty()) return m.endpoint;
  return Status(ErrorKind::kConfig,
                "mailbox " + m.name + ": endpoint is required: the https:// URL of Exchange's "
                "EWS (e.g. https://mail.corp.example/EWS/Exchange.asmx)");
}

Result<MailboxOptions> mailbox_options(const MailboxConfig& m) {
  auto endpoint = resolve_endpoint(m);
  if (!endpoint.ok()) return endpoint.status();
  MailboxOptions o;
  o.client.endpoint = *endpoint;
  o.client.mailbox = m.address.empty() ? m.user : m.address;
  o.client.method = method_of(m.auth);
  o.client.user = m.auth == AuthMethod::kOAuth2 ? "" : m.user;
  o.client.access = access_of(m.access);
  o.client.tls = m.tls;
  o.client.timeouts = m.timeouts;
  // A distinguished folder id is lower case in EWS's schema; the configuration's default
  // ("INBOX", shared with IMAP) means the Inbox. Other names pass through as written.
  o.folder = ascii_iequals(m.folder, "inbox") ? "inbox" : m.folder;
  o.max_message_bytes = m.max_message_bytes;
  return o;
}

}  // namespace mb::ews
