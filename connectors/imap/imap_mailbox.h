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
// wait_for_change() (push): IDLE (RFC 2177) where the server offers it, re-issued every
// idle_refresh (servers drop idle connections: Exchange Online after about 10 minutes, and
// RFC 2177 asks for at least every 29); else a NOOP every noop_interval. Either returns
// kChanged as soon as the folder grew ("* n EXISTS" above the known size), including growth
// seen in any answer since the last list_pending, so that nothing arriving between a
// listing and the wait is missed.
//
// With auth = "oauth2" (SignIn::with_token set) it signs in with SASL XOAUTH2 (OAUTHBEARER
// when the server offers only that; the one order of auth/sasl.h): a token the server
// refuses (the decoded error challenge, or a bare NO) is reported as "token rejected", so
// the token cache invalidates it and the sign-in is tried once more with a fresh one.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "connectors/connector.h"
#include "core/config.h"
#include "core/mailbox.h"
#include "core/net.h"
#include "core/status.h"

namespace mb {

// The periods of wait_for_change(); tests make them short.
struct ImapPushOptions {
  std::chrono::milliseconds idle_refresh = std::chrono::minutes(9);
  std::chrono::milliseconds noop_interval = std::chrono::seconds(60);
};

// Builds the IMAP Mailbox for `config` (type "imap"). Does not connect, and asks for no
// token until the first sign-in. An empty `factory` connects with connect_stream(host, port,
// security, tls, timeouts).
std::unique_ptr<Mailbox> make_imap_mailbox(const MailboxConfig& config, SignIn sign_in,
                                           StreamFactory factory = {},
                                           ImapPushOptions push = {});

}  // namespace mb
