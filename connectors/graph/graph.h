// File: connectors/graph/graph.h — the Microsoft Graph connector: a Mailbox (messages delta
// query, $value, PATCH/move/DELETE) and a Sender (sendMail, upload sessions), app-only
// OAuth with tokens for https://graph.microsoft.com (or the app's national cloud).
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "connectors/connector.h"
#include "core/config.h"
#include "core/http.h"
#include "core/mailbox.h"
#include "core/sender.h"

namespace mb {

// Builds an HTTP client; tests inject fakes. Empty: make_http_client(options).
using GraphHttpFactory = std::function<std::unique_ptr<HttpClient>(const HttpOptions& options)>;

// `service` is the Graph root without version, e.g. "https://graph.microsoft.com" (the
// app's cloud, or `endpoint` of the configuration). sign_in.with_token gives Graph tokens.
// Neither connects.
std::unique_ptr<Mailbox> make_graph_mailbox(const MailboxConfig& config, std::string service,
                                            SignIn sign_in, GraphHttpFactory http = {});
std::unique_ptr<Sender> make_graph_sender(const SenderConfig& config, std::string service,
                                          SignIn sign_in, GraphHttpFactory http = {});

}  // namespace mb
