// File: connectors/smtp/smtp_sender.cpp — placeholder until the SMTP connector lands.
#include "connectors/smtp/smtp_sender.h"

namespace mb {

std::unique_ptr<Sender> make_smtp_sender(const SenderConfig&, SignIn, StreamFactory) {
  return nullptr;
}

}  // namespace mb
