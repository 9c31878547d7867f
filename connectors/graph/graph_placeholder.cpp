// File: connectors/graph/graph_placeholder.cpp — placeholder until the Graph connector lands.
#include "connectors/graph/graph.h"

namespace mb {

std::unique_ptr<Mailbox> make_graph_mailbox(const MailboxConfig&, std::string, SignIn,
                                            GraphHttpFactory) {
  return nullptr;
}
std::unique_ptr<Sender> make_graph_sender(const SenderConfig&, std::string, SignIn,
                                          GraphHttpFactory) {
  return nullptr;
}

}  // namespace mb
