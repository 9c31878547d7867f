// File: connectors/imap/imap_mailbox.h — the IMAP connector behind the Mailbox interface.
//
// Keys are "UIDVALIDITY:UID". What list_pending() returns depends on the configured
// post-action: mark-read → UNSEEN; leave → UIDs above the last one listed (state
// "UIDVALIDITY:LASTUID"; a changed UIDVALIDITY starts again from 1); delete / move →
// everything not \Deleted. The connection is opened on first use, kept between calls, and
// reopened lazily after an error that broke it.
//
//   auto mbx = mb::make_imap_mailbox(cfg, SignIn{.password = password});
//   auto pending = mbx->list_pending(50, state);
//
// With auth = "oauth2" (SignIn::with_token set) it signs in with SASL XOAUTH2 (OAUTHBEARER
// when the server offers only that; the one order of auth/sasl.h): a token the server
// refuses (the decoded error challenge, or a bare NO) is reported as "token rejected", so
// the token cache invalidates it and the sign-in is tried once more with a fresh one.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "connectors/connector.h"
#include "core/config.h"
#include "core/mailbox.h"
#include "core/net.h"
#include "core/status.h"

namespace mb {

// Builds the IMAP Mailbox for `config` (type "imap"). Does not connect, and asks for no
// token until the first sign-in. An empty `factory` connects with connect_stream(host, port,
// security, tls, timeouts).
std::unique_ptr<Mailbox> make_imap_mailbox(const MailboxConfig& config, SignIn sign_in,
                                           StreamFactory factory = {});

}  // namespace mb
