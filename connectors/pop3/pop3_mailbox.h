// File: connectors/pop3/pop3_mailbox.h — the POP3 connector behind the Mailbox interface
// (RFC 1939, CAPA RFC 2449, STLS RFC 2595, AUTH RFC 5034).
//
// Keys are UIDL values. `after` is delete or leave (check-config refuses the rest).
#pragma once

#include <memory>

#include "connectors/connector.h"
#include "core/config.h"
#include "core/mailbox.h"

namespace mb {

// Builds the POP3 Mailbox for `config` (type "pop3"). Does not connect.
std::unique_ptr<Mailbox> make_pop3_mailbox(const MailboxConfig& config, SignIn sign_in,
                                           StreamFactory factory = {});

}  // namespace mb
