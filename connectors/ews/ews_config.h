// File: connectors/ews/ews_config.h — an EWS [[mailbox]] of the configuration as the
// connector's options (ews_mailbox.h): where its EWS endpoint is, how it signs in (auth =
// "password" is HTTP Basic, "ntlm" Windows authentication, "oauth2" an [[app]]'s bearer
// tokens for https://outlook.office365.com), whose mailbox it opens (access), the folder,
// the message size limit, TLS and time-outs. connectors/registry.cpp builds the mailbox
// from these.
//
//   auto options = mb::ews::mailbox_options(mailbox_config);   // kConfig without endpoint
//   auto mbx = mb::ews::make_ews_mailbox(*options, std::move(sign_in));
#pragma once

#include <string>

#include "connectors/ews/ews_mailbox.h"
#include "connectors/ews/ews_sender.h"
#include "core/config.h"
#include "core/status.h"

namespace mb::ews {

// The EWS URL mailbox `m` talks to: its `endpoint`. This is the one place where the URL is
// decided: autodiscover, when it comes, starts here for a mailbox without one (and the
// EWS row's needs_endpoint in core/connector_types.cpp, which makes check-config ask for
// it, goes false). Until then an empty endpoint is kConfig, naming the key.
Result<std::string> resolve_endpoint(const MailboxConfig& m);

// The connector's options for `m` (its endpoint from resolve_endpoint). Does not connect.
Result<MailboxOptions> mailbox_options(const MailboxConfig& m);

// The sender's options for `s`: its `user` is the sending mailbox's address (the account
// that signs in, for Basic and NTLM as well — an account name such as CORP\\name is refused,
// kConfig); `endpoint` empty: autodiscover for that address on first use (ews_sender.h).
Result<SenderOptions> sender_options(const SenderConfig& s);

}  // namespace mb::ews
