// File: connectors/imap/imap_mailbox.h — the IMAP connector behind the Mailbox interface.
//
// Keys are "UIDVALIDITY:UID". What list_pending() returns depends on the configured
// post-action: mark-read → UNSEEN; leave → UIDs above the last one listed (state
// "UIDVALIDITY:LASTUID"; a changed UIDVALIDITY starts again from 1); delete / move →
// everything not \Deleted. The connection is opened on first use, kept between calls, and
// reopened lazily after an error that broke it.
//
//   auto mbx = mb::make_imap_mailbox(cfg, password);
//   auto pending = mbx->list_pending(50, state);
//
// With auth = "oauth2" it signs in with SASL XOAUTH2 (OAUTHBEARER when the server offers
// only that), asking ImapOAuth::with_token for the access token: a token the server refuses
// (the decoded error challenge, or a bare NO) is reported as "token rejected", so the token
// cache invalidates it and the sign-in is tried once more with a fresh one.
//
//   auto mbx = mb::make_imap_oauth_mailbox(cfg, {.with_token = [&](const auto& fn) {
//     return auth.with_token(key, fn); }});
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

struct ImapOAuth {
  TokenRunner with_token;
  // The detail of test-connection's "token" step once a token was obtained: the app, its
  // token endpoint and the token's expiry — never the token. Empty: "access token obtained".
  std::function<std::string()> describe;
};

// Builds the IMAP Mailbox for `config` (type "imap", auth "password"). Does not connect.
// An empty `factory` connects with connect_stream(host, port, security, tls, timeouts).
std::unique_ptr<Mailbox> make_imap_mailbox(const MailboxConfig& config, std::string password,
                                           StreamFactory factory = {});

// The same for auth = "oauth2": tokens from `oauth` instead of a password. Does not connect
// and asks for no token until the first sign-in.
std::unique_ptr<Mailbox> make_imap_oauth_mailbox(const MailboxConfig& config, ImapOAuth oauth,
                                                 StreamFactory factory = {});

}  // namespace mb
