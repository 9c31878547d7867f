// File: connectors/graph/graph.h — the Microsoft Graph connector: a Mailbox (messages delta
// query, $value, PATCH/move/DELETE) and a Sender (sendMail, upload sessions), app-only
// OAuth with tokens for https://graph.microsoft.com (or the app's national cloud).
#pragma once

#include <chrono>
#include <cstdint>
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

// How the connector waits and retries; tests inject a sleep that only records.
struct GraphTuning {
  // Waits between retries of a throttled request. Empty: std::this_thread::sleep_for.
  std::function<void(std::chrono::milliseconds)> sleep{};
  // A 429/503/504 is retried after its Retry-After (else exponential backoff with jitter)
  // until this much waiting was spent on one request; then the request fails with
  // kThrottled and retry_after, so that ingest records the mailbox's throttled_until.
  std::chrono::seconds max_retry_wait{120};
  int max_attempts = 8;
  // Random numbers for the jitter. Empty: std::random_device-seeded.
  std::function<uint64_t()> random{};
  // Bytes per PUT to an attachment upload session (at most 4 MiB each).
  size_t upload_chunk = 10 * 320 * 1024;
};

// `service` is the Graph root without version, e.g. "https://graph.microsoft.com" (the
// app's cloud, or `endpoint` of the configuration). sign_in.with_token gives Graph tokens.
// Neither connects.
std::unique_ptr<Mailbox> make_graph_mailbox(const MailboxConfig& config, std::string service,
                                            SignIn sign_in, GraphHttpFactory http = {});
std::unique_ptr<Sender> make_graph_sender(const SenderConfig& config, std::string service,
                                          SignIn sign_in, GraphHttpFactory http = {});

// The same with explicit tuning (tests).
std::unique_ptr<Mailbox> make_graph_mailbox(const MailboxConfig& config, std::string service,
                                            SignIn sign_in, GraphHttpFactory http,
                                            GraphTuning tuning);
std::unique_ptr<Sender> make_graph_sender(const SenderConfig& config, std::string service,
                                          SignIn sign_in, GraphHttpFactory http,
                                          GraphTuning tuning);

}  // namespace mb
