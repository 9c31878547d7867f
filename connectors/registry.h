// File: connectors/registry.h — maps a configured mailbox or sender `type` to its connector.
#pragma once

#include <memory>
#include <string>

#include "core/config.h"
#include "core/mailbox.h"
#include "core/sender.h"
#include "core/status.h"

namespace mb {

class AuthContext;

// Builds the connector for `mailbox` (imap, pop3, graph, ews). Resolves its
// secrets; kConfig for an unknown type, kConfig naming the reference for a secret that
// cannot be read. Does not connect.
//
// auth = "oauth2" needs `auth`, the process's AuthContext (kConfig without one, or for an
// unknown app); the connector asks it for tokens of key_for(app, resource, protocol, user)
// — resource kGraph for graph, kExchange for the rest — at its first sign-in, not here.
// auth = "ntlm" (ews) resolves the password as auth = "password" does.
// `auth` must outlive the connector.
Result<std::unique_ptr<Mailbox>> make_mailbox(const MailboxConfig& mailbox, const Config& config,
                                              AuthContext* auth = nullptr);

// The same for a [[sender]] (smtp, graph; ews when it lands).
Result<std::unique_ptr<Sender>> make_sender(const SenderConfig& sender, const Config& config,
                                            AuthContext* auth = nullptr);

// The Graph root a graph mailbox or sender talks to: its `endpoint` when set, else the
// Graph host of its app's cloud (https://graph.microsoft.us for login.microsoftonline.us),
// else https://graph.microsoft.com. No trailing slash, no version.
std::string graph_service_url(const std::string& endpoint, const AppConfig* app);

}  // namespace mb
