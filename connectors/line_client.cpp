// File: connectors/line_client.cpp — the connection recipe of the line-protocol clients.
#include "connectors/line_client.h"

#include <spdlog/spdlog.h>

#include "auth/token_cache.h"

namespace mb {

std::function<void(const std::string&)> trace_sink(const LineClientOptions& options,
                                                   const std::string& fallback) {
  if (options.trace) return options.trace;
  if (!spdlog::should_log(spdlog::level::trace)) return {};
  std::string label = options.label.empty() ? fallback : options.label;
  return [label](const std::string& line) { spdlog::trace("{}: {}", label, line); };
}

Status upgrade_to_tls(LineChannel& channel, const LineClientOptions& options) {
  channel.set_timeout(options.timeouts.connect);
  Status tls = channel.start_tls(options.host, options.tls);
  channel.set_timeout(options.timeouts.response);
  return tls;
}

void fill_options(LineClientOptions& options, const Endpoint& e, std::string label) {
  options.host = e.host;
  options.tls = e.tls;
  options.timeouts = e.timeouts;
  options.label = std::move(label);
  options.allow_plaintext_auth = e.security == Security::kNone;
}

sasl::Credentials credentials(const Endpoint& e, const std::string& user, std::string secret,
                              sasl::CredentialKind kind) {
  sasl::Credentials creds;
  creds.kind = kind;
  creds.user = user;
  creds.secret = std::move(secret);
  creds.host = e.host;
  creds.port = e.port;
  return creds;
}

Status as_token_rejection(Status s) {
  if (s.ok() || s.kind() != ErrorKind::kAuth || is_token_rejected(s)) return s;
  return Status(ErrorKind::kAuth, s.message() + " (token rejected)", s.scope());
}

Result<std::unique_ptr<Stream>> open_stream(const Endpoint& e, const StreamFactory& factory) {
  if (factory) return factory();
  return connect_stream(e.host, e.port, e.security, e.tls, e.timeouts);
}

bool ConnectionSteps::operator()(const char* name, const Status& s, std::string detail) {
  report.steps.push_back(StepReport{name, s.ok(), s.ok() ? std::move(detail) : s.message()});
  if (!s.ok()) report.status = s;
  return s.ok();
}

bool ConnectionSteps::open(const Endpoint& e, const StreamFactory& factory, const Greet& greet,
                           bool greeting_apart, Status* greeting) {
  auto& step = *this;
  std::string where = server_address(e.host, e.port);
  auto addrs = resolve_host(e.host, e.port, e.timeouts.connect);
  if (!step("resolve", addrs.status(), addrs.ok() ? e.host + " → " + *addrs : "")) return false;
  // Without a test factory TCP and TLS are separate steps, so a failure names its layer.
  auto stream = factory ? factory() : connect_tcp(e.host, e.port, e.timeouts);
  if (!stream.ok()) return step("connect", stream.status(), "");
  Status s;
  if (e.security != Security::kTls) {
    s = greet(std::move(*stream));
    if (greeting_apart) *greeting = s;
    return step("connect", greeting_apart ? Status::Ok() : s,
                "connected to " + where + (greeting_apart ? "" : "; server greeting received"));
  }
  step("connect", s, "connected to " + where);
  if (!factory) {
    (*stream)->set_timeout(e.timeouts.connect);
    s = (*stream)->start_tls(e.host, e.tls);
    (*stream)->set_timeout(e.timeouts.response);
  }
  std::string summary = s.ok() ? (*stream)->tls_summary() : "";
  if (summary.empty()) summary = "TLS set up by the stream";
  if (!s.ok()) return step("tls", s, summary);
  s = greet(std::move(*stream));  // the greeting comes over TLS
  if (greeting_apart) {
    *greeting = s;
    s = Status::Ok();
  }
  return step("tls", s, summary);
}

bool ConnectionSteps::token(const SignIn& sign_in) {
  Status t = sign_in.with_token([](const std::string&) { return Status::Ok(); });
  std::string detail = sign_in.describe && t.ok() ? sign_in.describe() : "access token obtained";
  return (*this)("token", t, detail);
}

}  // namespace mb
