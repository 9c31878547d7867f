// File: cli/test_connection.cpp — `mailbridge test-connection [MAILBOX]`: a step-by-step
// sign-in report for one mailbox or all of them; never prints a secret. OAuth mailboxes get
// a "token" step (app, token endpoint, expiry) before the sign-in.
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <optional>

#include "auth/auth_context.h"
#include "auth/secrets.h"
#include "cli/auth_support.h"
#include "cli/cli.h"
#include "connectors/registry.h"
#include "core/monitor.h"
#include "core/net.h"
#include "core/store.h"

namespace mb::cli {
namespace {

bool signed_in(const ConnectionReport& report) {
  if (report.status.ok()) return true;
  for (const auto& step : report.steps) {
    if (step.name == "sign-in" && step.ok) return true;
  }
  return false;
}

// A sign-in that works again resumes a mailbox the auth-failure alert paused. `store` is
// null when there is none yet: then there is nothing to resume.
void record_success(Context& ctx, Store* store, const MailboxConfig& m) {
  if (store == nullptr) return;
  MonitorHooks hooks;
  hooks.scrub = [](std::string_view text) { return Redactor::instance().scrub(text); };
  auto rec = record_sign_in(*store, m, hooks);
  if (!rec.ok()) {
    print_error(ctx, fmt::format("{}: could not record the successful sign-in: {}", m.name,
                                 rec.status().message()));
    return;
  }
  if (!rec->resumed) return;
  std::string detail = "polling resumes with the next sync";
  if (rec->alert_ticket_id > 0) {
    detail += fmt::format("; note added to alert ticket #{}", rec->alert_ticket_id);
  }
  print_step(ctx, true, "resumed", detail);
}

// The process's one AuthContext, made on first need; its error is kept for every later
// OAuth mailbox of the same run. Token outcomes go to the store when there is one.
struct LazyAuth {
  Store* store = nullptr;
  std::unique_ptr<AuthContext> context;
  std::optional<Status> error;

  Result<AuthContext*> get(const Config& cfg) {
    if (context) return context.get();
    if (error) return *error;
    auto created = open_auth(cfg, store);
    if (!created.ok()) {
      error = created.status();
      return *error;
    }
    context = std::move(*created);
    return context.get();
  }
};

Result<std::unique_ptr<Mailbox>> build(const Config& cfg, const MailboxConfig& m, LazyAuth& auth) {
  if (m.auth != AuthMethod::kOAuth2) return make_mailbox(m, cfg);
  auto context = auth.get(cfg);
  if (!context.ok()) return context.status();
  return make_mailbox(m, cfg, *context);
}

// Returns the exit code for this mailbox.
int test_one(Context& ctx, const Config& cfg, const MailboxConfig& m, LazyAuth& auth) {
  ctx.out << fmt::format("{} ({} {}, user {}{})\n", m.name, to_string(m.type),
                         server_address(m.host, m.port, m.endpoint), m.user,
                         m.auth == AuthMethod::kOAuth2 ? ", OAuth app " + m.app : "");
  auto mbx = build(cfg, m, auth);
  if (!mbx.ok()) {
    print_step(ctx, false, "configure", mbx.status().message());
    return exit_code(mbx.status());
  }
  ConnectionReport report = (*mbx)->test_connection();
  (*mbx)->close();
  bool printed_failure = false;
  for (const auto& step : report.steps) {
    print_step(ctx, step.ok, step.name, step.detail);
    printed_failure = printed_failure || !step.ok;
  }
  if (signed_in(report)) record_success(ctx, auth.store, m);
  if (report.status.ok()) return 0;
  if (!printed_failure) {
    print_step(ctx, false, to_string(report.status.kind()), report.status.message());
  }
  return exit_code(report.status);
}

int run_test_connection(Context& ctx, const std::string& name) {
  auto cfg = load(ctx, true);
  if (!cfg.ok()) return exit_code(cfg.status());
  std::vector<const MailboxConfig*> targets;
  if (!name.empty()) {
    const MailboxConfig* m = cfg->find_mailbox(name);
    if (!m) {
      return fail(ctx, Status(ErrorKind::kConfig,
                              fmt::format("no mailbox \"{}\" in {}", name, ctx.config_path)));
    }
    targets.push_back(m);
  } else {
    for (const auto& m : cfg->mailboxes) targets.push_back(&m);
  }
  if (targets.empty()) {
    return fail(ctx, Status(ErrorKind::kConfig, "no [[mailbox]] is configured"));
  }
  // Sign-ins and token outcomes are recorded in the store when it exists; a connection
  // test must not create it, and one that cannot be opened stops the test.
  auto store = open_store(ctx, *cfg, StoreUse::kIfExists);
  if (!store.ok()) return exit_code(store.status());
  // The first failure decides the exit code, as the report reads top to bottom.
  int code = 0;
  LazyAuth auth{.store = store->get(), .context = {}, .error = {}};
  for (const MailboxConfig* m : targets) {
    int rc = test_one(ctx, *cfg, *m, auth);
    if (code == 0) code = rc;
  }
  return code;
}

}  // namespace

void add_test_connection(CLI::App& app, Context& ctx) {
  auto* cmd = app.add_subcommand("test-connection",
                                 "check a mailbox's connection and sign-in, step by step");
  auto name = std::make_shared<std::string>();
  cmd->add_option("MAILBOX", *name, "mailbox name (default: every mailbox)");
  cmd->callback([&ctx, name] {
    ctx.action = [&ctx, name] { return run_test_connection(ctx, *name); };
  });
}

}  // namespace mb::cli
