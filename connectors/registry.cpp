// File: connectors/registry.cpp — configured mailbox type → connector.
#include "connectors/registry.h"

#include "auth/secrets.h"
#include "connectors/imap/imap_mailbox.h"

namespace mb {

Result<std::unique_ptr<Mailbox>> make_mailbox(const MailboxConfig& mailbox, const Config& config) {
  const std::string who = "mailbox " + mailbox.name;
  if (mailbox.type != "imap") {
    return Status(ErrorKind::kConfig, who + ": type " + mailbox.type + " is not supported yet");
  }
  if (mailbox.auth != "password") {
    return Status(ErrorKind::kConfig,
                  who + ": auth " + mailbox.auth + " for type imap is not supported yet");
  }
  auto password = resolve_secret(mailbox.password, who + ": password");
  if (!password.ok()) return password.status();
  return make_imap_mailbox(mailbox, std::move(*password));
}

}  // namespace mb
