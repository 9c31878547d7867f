// File: connectors/smtp/smtp_sender.h — the SMTP connector behind the Sender interface
// (RFC 5321; AUTH RFC 4954; STARTTLS RFC 3207; SIZE, PIPELINING, 8BITMIME, SMTPUTF8).
#pragma once

#include <memory>

#include "connectors/connector.h"
#include "core/config.h"
#include "core/sender.h"

namespace mb {

// Builds the SMTP Sender for `config` (type "smtp"). Does not connect.
std::unique_ptr<Sender> make_smtp_sender(const SenderConfig& config, SignIn sign_in,
                                         StreamFactory factory = {});

}  // namespace mb
