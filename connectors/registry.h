// File: connectors/registry.h — maps a configured mailbox `type` to its connector.
#pragma once

#include <memory>

#include "core/config.h"
#include "core/mailbox.h"
#include "core/status.h"

namespace mb {

class AuthContext;

// Builds the connector for `mailbox` (imap today; pop3, ews, graph as they land). Resolves
// its secrets; kConfig for an unknown type, kConfig naming the reference for a secret that
// cannot be read. Does not connect.
//
// auth = "oauth2" needs `auth`, the process's AuthContext (kConfig without one, or for an
// unknown app); the connector asks it for tokens of key_for(app, kExchange, "imap", user)
// at its first sign-in, not here. `auth` must outlive the connector.
Result<std::unique_ptr<Mailbox>> make_mailbox(const MailboxConfig& mailbox, const Config& config,
                                              AuthContext* auth = nullptr);

}  // namespace mb
