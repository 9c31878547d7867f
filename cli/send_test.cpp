// File: cli/send_test.cpp — `mailbridge send-test SENDER --to ADDR`: composes a small test
// email and sends it through one [[sender]] (any type make_sender knows), reporting each step
// — compose, then the connection steps of test-connection, then the send and every
// recipient's answer. Never prints a secret.
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <chrono>

#include "auth/auth_context.h"
#include "auth/secrets.h"
#include "cli/auth_support.h"
#include "cli/cli.h"
#include "connectors/registry.h"
#include "core/ascii.h"
#include "core/compose.h"
#include "core/net.h"
#include "core/store.h"

namespace mb::cli {
namespace {

struct SendTestOptions {
  std::string sender;
  std::vector<std::string> to;
  std::string from;
};

// From: --from when given, else the sender's user when it is an address, else the first
// configured mailbox address. It must be a configured mailbox address or the sender's user
// (SPEC §4: mail goes out only as an address the help desk owns).
Result<std::string> pick_from(const Config& cfg, const SenderConfig& snd, const std::string& want) {
  std::vector<std::string> allowed = configured_addresses(cfg);
  if (snd.user.find('@') != std::string::npos) allowed.push_back(ascii_lower(snd.user));
  std::string from = ascii_lower(want);
  if (from.empty()) {
    if (snd.user.find('@') != std::string::npos) return ascii_lower(snd.user);
    if (!allowed.empty()) return allowed.front();
    return Status(ErrorKind::kConfig, "sender " + snd.name + " has no address to send from: "
                  "give --from, or configure a [[mailbox]] address or the sender's user");
  }
  if (std::find(allowed.begin(), allowed.end(), from) == allowed.end()) {
    std::string list;
    for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
    return Status(ErrorKind::kConfig, "--from " + want + " is neither a configured mailbox "
                  "address nor the sender's user (allowed: " + (list.empty() ? "none" : list) +
                  ")");
  }
  return from;
}

Result<ComposedMail> compose_test(const SenderConfig& snd, const std::string& from,
                                  const std::vector<std::string>& to) {
  MailSpec spec;
  spec.from = Address{"mailbridge", from};
  for (const auto& t : to) spec.to.push_back(Address{"", t});
  spec.subject = "mailbridge test email from sender " + snd.name;
  auto now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  spec.text = fmt::format(
      "This is a test email sent by `mailbridge send-test {}`.\r\n\r\n"
      "Sender: {} ({} {})\r\nSent at: {} (Unix time)\r\n\r\n"
      "If you received it, outgoing mail through this sender works. No reply is needed.\r\n",
      snd.name, snd.name, to_string(snd.type), server_address(snd.host, snd.port, snd.endpoint),
      static_cast<long long>(now));
  return compose_message(spec);
}

// `store` (null when there is none yet) records the token outcomes of an OAuth sender.
Result<std::unique_ptr<Sender>> build(const Config& cfg, const SenderConfig& snd, Store* store,
                                      std::unique_ptr<AuthContext>& auth) {
  if (snd.auth != AuthMethod::kOAuth2) return make_sender(snd, cfg);
  auto created = open_auth(cfg, store);
  if (!created.ok()) return created.status();
  auth = std::move(*created);
  return make_sender(snd, cfg, auth.get());
}

// The send step and one line per recipient the server refused; returns the exit code.
int report_send(Context& ctx, const Result<SendResult>& sent) {
  if (!sent.ok()) {
    print_step(ctx, false, "send", sent.status().message());
    return exit_code(sent.status());
  }
  std::string accepted;
  int code = 0;
  for (const auto& r : sent->recipients) {
    if (r.accepted) {
      accepted += (accepted.empty() ? "" : ", ") + r.address;
      continue;
    }
    print_step(ctx, false, "recipient", r.address + ": " + r.reply);
    code = 1;
  }
  std::string detail = (sent->queued_only ? "queued for " : "accepted for ") + accepted;
  if (!sent->server_id.empty()) detail += " (server id " + sent->server_id + ")";
  print_step(ctx, true, "send", detail);
  return code;
}

int run_send_test(Context& ctx, const SendTestOptions& o) {
  auto cfg = load(ctx, true);
  if (!cfg.ok()) return exit_code(cfg.status());
  const SenderConfig* snd = cfg->find_sender(o.sender);
  if (snd == nullptr) {
    return fail(ctx, Status(ErrorKind::kConfig,
                            fmt::format("no sender \"{}\" in {}", o.sender, ctx.config_path)));
  }
  // Only an OAuth sender uses the store (its token outcomes). A test must not create it,
  // and one that cannot be opened stops the test.
  std::unique_ptr<Store> store;
  if (snd->auth == AuthMethod::kOAuth2) {
    auto opened = open_store(ctx, *cfg, StoreUse::kIfExists);
    if (!opened.ok()) return exit_code(opened.status());
    store = std::move(*opened);
  }
  ctx.out << fmt::format("{} ({} {}, user {}{})\n", snd->name, to_string(snd->type),
                         server_address(snd->host, snd->port, snd->endpoint),
                         snd->user.empty() ? "none" : snd->user,
                         snd->auth == AuthMethod::kOAuth2 ? ", OAuth app " + snd->app : "");
  auto from = pick_from(*cfg, *snd, o.from);
  if (!from.ok()) {
    print_step(ctx, false, "configure", from.status().message());
    return exit_code(from.status());
  }
  auto mail = compose_test(*snd, *from, o.to);
  if (!mail.ok()) {
    print_step(ctx, false, "compose", mail.status().message());
    return exit_code(mail.status());
  }
  print_step(ctx, true, "compose", fmt::format("Message-ID <{}>, {} bytes, from {}",
                                                 mail->message_id, mail->raw.size(), *from));
  std::unique_ptr<AuthContext> auth;
  auto sender = build(*cfg, *snd, store.get(), auth);
  if (!sender.ok()) {
    print_step(ctx, false, "configure", sender.status().message());
    return exit_code(sender.status());
  }
  ConnectionReport report = (*sender)->test_connection();
  for (const auto& step : report.steps) print_step(ctx, step.ok, step.name, step.detail);
  if (!report.status.ok()) return exit_code(report.status);
  auto sent = (*sender)->send(OutgoingMail{.id = "send-test", .envelope = mail->envelope,
                                           .raw = mail->raw, .on_handed_over = {}});
  (*sender)->close();
  return report_send(ctx, sent);
}

}  // namespace

void add_send_test(CLI::App& app, Context& ctx) {
  auto* cmd = app.add_subcommand("send-test", "send a test email through one sender, step by step");
  auto o = std::make_shared<SendTestOptions>();
  cmd->add_option("SENDER", o->sender, "sender name")->required();
  cmd->add_option("--to", o->to, "recipient address (repeatable)")->required();
  cmd->add_option("--from", o->from,
                  "From address: a configured mailbox address or the sender's user "
                  "(default: the sender's user, else the first mailbox address)");
  cmd->callback([&ctx, o] {
    ctx.action = [&ctx, o] { return run_send_test(ctx, *o); };
  });
}

}  // namespace mb::cli
