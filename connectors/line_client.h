// File: connectors/line_client.h — the connection recipe the line-protocol clients (IMAP,
// POP3, SMTP) and their connectors share: the client options, the trace set-up, the TLS
// upgrade of STARTTLS/STLS, how a connector opens its stream, and the steps of
// test-connection (resolve, connect, TLS, token) reported one by one.
//
//   ConnectionSteps steps;
//   Status greeting;
//   if (!steps.open(endpoint, factory, greet, /*greeting_apart=*/false, &greeting)) return
//   steps.report;
//   if (sign_in.oauth() && !steps.token(sign_in)) ...
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "auth/sasl.h"
#include "connectors/connector.h"
#include "core/config.h"
#include "core/line.h"
#include "core/mailbox.h"
#include "core/net.h"
#include "core/status.h"

namespace mb {

// What every line-protocol client is told; each protocol's ClientOptions adds its own.
struct LineClientOptions {
  std::string host;   // for STARTTLS certificate checks and messages
  TlsOptions tls;     // for STARTTLS
  Timeouts timeouts;  // connect: the greeting and the TLS handshake; response: the rest
  std::string label;  // prefixes trace lines ("mailbox support", "sender outgoing")
  // Receives every protocol line, secrets redacted. Empty: spdlog trace.
  std::function<void(const std::string&)> trace;
  // Lets sign_in() send a password over a connection without TLS; only for security = none
  // written explicitly.
  bool allow_plaintext_auth = false;
};

// What the IMAP, POP3 and SMTP clients share: the channel, not copyable, what TLS says.
class LineClient {
 public:
  LineClient(const LineClient&) = delete;
  LineClient& operator=(const LineClient&) = delete;

  bool is_tls() const { return channel_ && channel_->stream().is_tls(); }
  std::string tls_summary() const {
    return channel_ ? channel_->stream().tls_summary() : std::string();
  }

 protected:
  LineClient() = default;
  ~LineClient() = default;

  // A new channel over `stream`, its lines to `trace` (trace_sink()).
  void open_channel(std::unique_ptr<Stream> stream, size_t max_line,
                    std::function<void(const std::string&)> trace) {
    channel_ = std::make_unique<LineChannel>(std::move(stream), max_line);
    channel_->set_trace(std::move(trace));
  }
  // Runs `read` (the greeting) as one step within timeouts.connect, then sets the time-out
  // for the rest of the session to timeouts.response.
  template <typename Read>
  auto read_greeting(const Timeouts& timeouts, Read read) -> decltype(read()) {
    channel_->set_timeout(timeouts.connect);
    channel_->begin_step("the greeting", timeouts.connect);
    auto r = read();
    if (channel_) {
      channel_->end_step();
      channel_->set_timeout(timeouts.response);
    }
    return r;
  }

  std::unique_ptr<LineChannel> channel_;
};

// Where the trace lines go: options.trace, else spdlog trace under the label (`fallback`
// when the label is empty) while trace level is on; empty when nothing would show them.
std::function<void(const std::string&)> trace_sink(const LineClientOptions& options,
                                                   const std::string& fallback = "");

// The TLS handshake after the server's yes to STARTTLS/STLS, within timeouts.connect; the
// caller then forgets what the server said in plaintext and asks again.
Status upgrade_to_tls(LineChannel& channel, const LineClientOptions& options);

// Where a connector connects: its configured host, port, security, TLS and time-outs.
struct Endpoint {
  std::string host;
  uint16_t port = 0;
  Security security = Security::kTls;
  TlsOptions tls;
  Timeouts timeouts;
};

template <typename Config>  // MailboxConfig, SenderConfig
Endpoint endpoint_of(const Config& c) {
  return Endpoint{c.host, c.port, c.security, c.tls, c.timeouts};
}

// The options every client of a connector at `e` gets (plaintext sign-in only for
// security = none).
void fill_options(LineClientOptions& options, const Endpoint& e, std::string label);

// The credentials for signing in as `user` at `e` (host and port for OAUTHBEARER).
sasl::Credentials credentials(const Endpoint& e, const std::string& user, std::string secret,
                              sasl::CredentialKind kind = sasl::CredentialKind::kPassword);

// A server that refuses a token may say why in an error challenge ("token rejected: status
// 401 …") or only answer NO / -ERR / 535. Either way the token is what failed: a kAuth
// failure gets "(token rejected)", so the token cache replaces the token once.
Status as_token_rejection(Status s);

// The connector's stream: `factory`'s (tests) or connect_stream() (TLS done for
// security = tls).
Result<std::unique_ptr<Stream>> open_stream(const Endpoint& e, const StreamFactory& factory);

// test-connection's report, step by step.
class ConnectionSteps {
 public:
  using Greet = std::function<Status(std::unique_ptr<Stream>)>;

  // Adds a step; the first failure becomes report.status. Returns s.ok().
  bool operator()(const char* name, const Status& s, std::string detail);
  // "resolve", "connect" and, for security = tls, "tls" (the handshake on the stream unless
  // a test factory supplied it), then `greet` with the stream. With `greeting_apart` the
  // greeting's status goes to *greeting for a later step of its own (SMTP's "ehlo");
  // otherwise it is part of the "connect" (or "tls") step. False once a step failed.
  bool open(const Endpoint& e, const StreamFactory& factory, const Greet& greet,
            bool greeting_apart, Status* greeting);
  // "token": obtains the access token the sign-in will use (so a failing grant is named as
  // such, not as a refused login) and describes it.
  bool token(const SignIn& sign_in);

  ConnectionReport report;
};

}  // namespace mb
