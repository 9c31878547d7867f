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
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "core/config.h"
#include "core/mailbox.h"
#include "core/net.h"
#include "core/status.h"

namespace mb {

// Opens the connection (TLS done for security = tls). Tests inject a ScriptedStream.
using StreamFactory = std::function<Result<std::unique_ptr<Stream>>()>;

// Builds the IMAP Mailbox for `config` (type "imap", auth "password"). Does not connect.
// An empty `factory` connects with connect_stream(host, port, security, tls, timeouts).
std::unique_ptr<Mailbox> make_imap_mailbox(const MailboxConfig& config, std::string password,
                                           StreamFactory factory = {});

}  // namespace mb
