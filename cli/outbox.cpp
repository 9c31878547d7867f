// File: cli/outbox.cpp — `mailbridge outbox list [--json] | pause | resume | flush |
// retry ID`, and the outbox pass that `sync` ends with.
#include "cli/outbox.h"

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>

#include "auth/secrets.h"
#include "cli/auth_support.h"
#include "cli/terminal.h"
#include "connectors/registry.h"
#include "core/runner.h"

namespace mb::cli {

Result<std::string> tracking_secret(const Config& config) {
  const SecretRef& ref = config.tracking.secret;
  if (ref.empty()) return std::string();
  // A reference (env:NAME, file:PATH) is named; a literal is the secret itself.
  const std::string what = is_secret_reference(ref.ref)
                               ? "[tracking] secret (" + ref.ref + ")"
                               : std::string("[tracking] secret");
  auto value = resolve_secret(ref, what);
  if (!value.ok()) {
    return Status(ErrorKind::kConfig, value.status().message() +
                                          "; tracking cookies are signed and checked with it");
  }
  return value;
}

OutboxOptions cli_outbox_options() {
  OutboxOptions o;
  o.scrub = [](std::string_view text) { return Redactor::instance().scrub(text); };
  return o;
}

SenderFactory sender_factory(const Config& config, Store& store,
                             std::unique_ptr<AuthContext>& auth) {
  return [&config, &store, &auth](const std::string& name) -> Result<std::unique_ptr<Sender>> {
    const SenderConfig* s = config.find_sender(name);
    if (s == nullptr) {
      return Status(ErrorKind::kConfig, "no [[sender]] named \"" + name + "\" any more");
    }
    if (s->auth == AuthMethod::kOAuth2 && !auth) {
      auto opened = open_auth(config, &store);
      if (!opened.ok()) return opened.status();
      auth = std::move(*opened);
    }
    return make_sender(*s, config, auth.get());
  };
}

int outbox_pass(Context& ctx, const Config& config, Store& store, bool quiet) {
  auto secret = tracking_secret(config);
  if (!secret.ok()) {
    print_error(ctx, "outbox: " + secret.status().message());
    return exit_code(secret.status());
  }
  // The runner does the flush (core/runner.h); the senders sign in through one AuthContext,
  // made on the first OAuth sender.
  auto auth = std::make_shared<std::unique_ptr<AuthContext>>();
  RunnerSetup setup{config, *secret, {}, [&config, auth](Store& s) {
                      return sender_factory(config, s, *auth);
                    }};
  RunnerOptions options;
  options.scrub = [](std::string_view text) { return Redactor::instance().scrub(text); };
  Runner runner(std::move(setup), std::move(options));
  auto stats = runner.flush_outbox(store);
  if (!stats.ok()) {
    print_error(ctx, "outbox: " + stats.status().message());
    return exit_code(stats.status());
  }
  for (const auto& e : stats->errors) print_error(ctx, "outbox " + e);
  if (stats->paused) {
    ctx.out << "outbox: paused (mailbridge outbox resume), nothing sent\n";
    return 0;
  }
  const bool idle = stats->sent + stats->retrying + stats->parked + stats->recovered == 0;
  if (!(quiet && idle)) {
    ctx.out << fmt::format("outbox: {} sent, {} to retry, {} parked", stats->sent,
                           stats->retrying, stats->parked);
    if (stats->unconfirmed > 0) {
      ctx.out << fmt::format(" ({} of them unconfirmed: the server's answer was lost)",
                             stats->unconfirmed);
    }
    if (stats->recovered > 0) {
      ctx.out << fmt::format(" ({} interrupted send(s) taken back)", stats->recovered);
    }
    ctx.out << "\n";
  }
  return quiet || stats->errors.empty() ? 0 : 1;
}

namespace {

nlohmann::json row_json(const OutboxRow& r) {
  auto results = nlohmann::json::parse(r.recipient_results, nullptr, false);
  auto id_or_null = [](int64_t v) { return v > 0 ? nlohmann::json(v) : nlohmann::json(); };
  return {{"id", r.id},
          {"kind", r.kind},
          {"sender", r.sender},
          {"ticket", id_or_null(r.ticket_id)},
          {"note", id_or_null(r.note_id)},
          {"user", r.user},
          {"from", r.env_from},
          {"to", r.to},
          {"recipients", r.recipients},
          {"pending_recipients", r.pending},
          {"subject", r.subject},
          {"state", to_string(r.state)},
          {"attempts", r.attempts},
          {"next_attempt_at", r.state == OutboxState::kQueued ? nlohmann::json(r.next_attempt_at)
                                                              : nlohmann::json()},
          {"last_error", r.last_error},
          {"message_id", r.message_id},
          {"server_id", r.server_id},
          {"queued_only", r.queued_only},
          {"unconfirmed", r.unconfirmed},
          {"handed_over_at", r.handed_over_at.empty() ? nlohmann::json()
                                                      : nlohmann::json(r.handed_over_at)},
          {"recipient_results", results.is_discarded() ? nlohmann::json::array() : results},
          {"created_at", r.created_at},
          {"sent_at", r.sent_at.empty() ? nlohmann::json() : nlohmann::json(r.sent_at)}};
}

int run_outbox_list(Context& ctx, bool json) {
  auto o = open_config_and_store(ctx);
  if (!o.ok()) return exit_code(o.status());
  auto rows = o->store->list_outbox();
  auto paused = o->store->outbox_paused();
  if (!rows.ok()) return fail(ctx, rows.status());
  if (!paused.ok()) return fail(ctx, paused.status());
  if (json) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& r : *rows) out.push_back(row_json(r));
    ctx.out << safe_dump(out, 2) << "\n";
    return 0;
  }
  if (*paused) ctx.out << "sending is paused (mailbridge outbox resume)\n";
  if (rows->empty()) ctx.out << "the outbox is empty\n";
  for (const auto& r : *rows) {
    std::string when = r.state == OutboxState::kSent
                           ? (r.unconfirmed ? "sent (unconfirmed) " : "sent ") + r.sent_at
                       : r.state == OutboxState::kQueued ? "next " + r.next_attempt_at
                                                         : "";
    ctx.out << fmt::format("#{} {} ticket {} to {} \"{}\" attempts {} {}\n", r.id,
                           to_string(r.state),
                           r.ticket_id, printable(r.to), printable(r.subject), r.attempts, when);
    if (!r.last_error.empty()) ctx.out << "    " << printable(r.last_error) << "\n";
  }
  return 0;
}

int run_pause(Context& ctx, bool pause) {
  auto o = open_config_and_store(ctx);
  if (!o.ok()) return exit_code(o.status());
  Status s = o->store->set_outbox_paused(pause);
  if (!s.ok()) return fail(ctx, s);
  ctx.out << (pause ? "sending paused; mail is still queued\n"
                    : "sending resumed; `mailbridge outbox flush` or the next sync sends it\n");
  return 0;
}

int run_flush(Context& ctx) {
  auto o = open_config_and_store(ctx, /*connects=*/true);
  if (!o.ok()) return exit_code(o.status());
  return outbox_pass(ctx, o->config, *o->store, false);
}

int run_retry(Context& ctx, int64_t id) {
  auto o = open_config_and_store(ctx);
  if (!o.ok()) return exit_code(o.status());
  Outbox outbox(*o->store, o->config, "", cli_outbox_options());
  Status s = outbox.retry(id);
  if (!s.ok()) return fail(ctx, s);
  ctx.out << "#" << id << " queued again\n";
  return 0;
}

}  // namespace

void add_outbox(CLI::App& app, Context& ctx) {
  auto* cmd = app.add_subcommand("outbox", "the outbox of outgoing mail");
  cmd->require_subcommand(1);
  auto json = std::make_shared<bool>(false);
  auto* list = cmd->add_subcommand("list", "every queued, sent and parked message");
  list->add_flag("--json", *json, "print JSON");
  list->callback([&ctx, json] { ctx.action = [&ctx, json] { return run_outbox_list(ctx, *json); }; });
  cmd->add_subcommand("pause", "stop sending (queueing goes on)")->callback([&ctx] {
    ctx.action = [&ctx] { return run_pause(ctx, true); };
  });
  cmd->add_subcommand("resume", "send again")->callback([&ctx] {
    ctx.action = [&ctx] { return run_pause(ctx, false); };
  });
  cmd->add_subcommand("flush", "send what is due now, once")->callback([&ctx] {
    ctx.action = [&ctx] { return run_flush(ctx); };
  });
  auto id = std::make_shared<int64_t>(0);
  auto* retry = cmd->add_subcommand("retry", "queue a parked message again");
  retry->add_option("ID", *id, "outbox id")->required();
  retry->callback([&ctx, id] { ctx.action = [&ctx, id] { return run_retry(ctx, *id); }; });
}

}  // namespace mb::cli
