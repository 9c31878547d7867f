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
  o.after = m.after;
  o.delete_type = m.ews_hard_delete ? DeleteType::kHardDelete : DeleteType::kMoveToDeletedItems;
  o.listing = m.ews_find_listing ? Listing::kFind : Listing::kSync;
  return o;
}

Result<SenderOptions> sender_options(const SenderConfig& s) {
  if (s.user.find('@') == std::string::npos) {
    return Status(ErrorKind::kConfig,
                  "sender " + s.name + ": user = \"" + s.user + "\" is not an email address: an "
                  "EWS sender's user is the sending mailbox's address (its UPN)");
  }
  SenderOptions o;
  o.client.endpoint = s.endpoint;
  o.client.mailbox = s.user;
  o.client.method = method_of(s.auth);
  o.client.user = s.auth == AuthMethod::kOAuth2 ? "" : s.user;
  // An app-only token opens a mailbox only by impersonation; an account sends as itself.
  o.client.access = s.auth == AuthMethod::kOAuth2 ? Access::kImpersonation : Access::kOwn;
  o.client.tls = s.tls;
  o.client.timeouts = s.timeouts;
  o.save_to_sent_items = s.save_to_sent_items;
  return o;
}

}  // namespace mb::ews
