// File: connectors/pop3/pop3_mailbox.cpp — placeholder until the POP3 connector lands.
#include "connectors/pop3/pop3_mailbox.h"

namespace mb {

std::unique_ptr<Mailbox> make_pop3_mailbox(const MailboxConfig&, SignIn, StreamFactory) {
  return nullptr;
}

}  // namespace mb
