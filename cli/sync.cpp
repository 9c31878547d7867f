// File: cli/sync.cpp — `mailbridge sync [--once] [MAILBOX…]`: one pass over the mailboxes
// through the runner's sync_once (core/runner.h: up to four in parallel, each on its own
// thread with its own store connection, so that a slow or failing mailbox delays only
// itself). This file parses, prints and maps to exit codes; it builds the connectors, and
// OAuth mailboxes share one AuthContext, so one token (and one refresh) serves every mailbox
// of an app and user.
#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>
#include <mutex>

#include "auth/auth_context.h"
#include "auth/secrets.h"
#include "cli/auth_support.h"
#include "cli/cli.h"
#include "cli/outbox.h"
#include "cli/terminal.h"
#include "connectors/registry.h"
#include "core/runner.h"
#include "core/store.h"

namespace mb::cli {
namespace {

constexpr size_t kMaxParallel = 4;

// One progress line on a terminal, redrawn in place, covering every mailbox in flight.
class ProgressLine {
 public:
  ProgressLine(std::ostream& err, bool enabled) : err_(err), enabled_(enabled) {}
  void update(const std::string& name, size_t done, size_t total) {
    if (!enabled_) return;
    std::lock_guard lock(mu_);
    progress_[name] = {done, total};
    std::string line;
    for (const auto& [n, p] : progress_) {
      line += fmt::format("{}{} {}/{}", line.empty() ? "" : ", ", printable(n), p.first, p.second);
    }
    err_ << "\r\x1b[K" << "sync: " << line << std::flush;
  }
  void clear() {
    std::lock_guard lock(mu_);
    if (enabled_ && !progress_.empty()) err_ << "\r\x1b[K" << std::flush;
  }

 private:
  std::ostream& err_;
  bool enabled_;
  std::mutex mu_;
  std::map<std::string, std::pair<size_t, size_t>> progress_;
};

// The process's sign-in machinery, made only when a selected mailbox signs in with OAuth
// (so a broken [auth] section cannot stop password mailboxes). When it cannot be made,
// `error` says why, and each OAuth mailbox reports it. Token outcomes are recorded through
// `store`, the main thread's connection, idle while the mailbox threads run.
struct SharedAuth {
  std::unique_ptr<AuthContext> context;
  Status error;
};

SharedAuth open_shared_auth(const Config& cfg, const std::vector<const MailboxConfig*>& runs,
                            Store* store) {
  SharedAuth shared;
  bool wanted = std::any_of(runs.begin(), runs.end(), [](const MailboxConfig* m) {
    return m->auth == AuthMethod::kOAuth2;
  });
  if (!wanted) return shared;
  auto created = open_auth(cfg, store);
  if (created.ok()) shared.context = std::move(*created);
  else shared.error = created.status();
  return shared;
}

std::string summary(const PassReport& run) {
  const SyncStats& s = run.stats;
  int64_t skipped = 0;
  std::string reasons;
  for (const auto& [reason, n] : s.skipped) {
    skipped += n;
    reasons += fmt::format("{}{}: {}", reasons.empty() ? "" : ", ", reason, n);
  }
  auto plural = [](int64_t n, const char* one, const char* many) {
    return fmt::format("{} {}", n, n == 1 ? one : many);
  };
  std::string line = fmt::format("{}: {} imported ({}, {}), {} skipped", run.mailbox,
                                 s.imported, plural(s.tickets, "ticket", "tickets"),
                                 plural(s.notes, "note", "notes"), skipped);
  if (!reasons.empty()) line += " (" + reasons + ")";
  if (s.errors > 0) line += fmt::format(", {} failed (left on the server)", s.errors);
  if (s.more) line += "; more mail is waiting (max_per_poll reached)";
  return line;
}

Result<std::vector<const MailboxConfig*>> select(Context& ctx, const Config& cfg,
                                                 const std::vector<std::string>& names) {
  std::vector<const MailboxConfig*> runs;
  for (const auto& name : names) {
    if (!cfg.find_mailbox(name)) {
      return Status(ErrorKind::kConfig, fmt::format("no mailbox \"{}\" in {}", name,
                                                    ctx.config_path));
    }
  }
  for (const auto& m : cfg.mailboxes) {
    bool wanted = names.empty() || std::count(names.begin(), names.end(), m.name) > 0;
    if (!wanted) continue;
    if (!m.enabled) {
      ctx.out << m.name << ": disabled (enabled = false), not synced\n";
      continue;
    }
    runs.push_back(&m);
  }
  return runs;
}

int run_sync(Context& ctx, const std::vector<std::string>& names) {
  auto cfg = load(ctx, true);
  if (!cfg.ok()) return exit_code(cfg.status());
  auto runs = select(ctx, *cfg, names);
  if (!runs.ok()) return fail(ctx, runs.status());
  // Without it cookie routing and forwards would silently stop: a configuration error.
  auto secret = tracking_secret(*cfg);
  if (!secret.ok()) return fail(ctx, secret.status());
  // Opened once here so that migrations run before the workers open their own connections.
  auto store = open_store(ctx, *cfg);
  if (!store.ok()) return exit_code(store.status());
  ProgressLine progress(ctx.raw_err, ctx.err_is_terminal);  // its own escapes; names from config
  SharedAuth auth = open_shared_auth(*cfg, *runs, store->get());
  // The runner (core/runner.h) makes the passes; the connectors come from here, with the
  // shared sign-in machinery.
  const Config& config = *cfg;
  RunnerSetup setup{config, *secret, [&config, &auth](const MailboxConfig& m) {
                      return m.auth == AuthMethod::kOAuth2 && !auth.error.ok()
                                 ? Result<std::unique_ptr<Mailbox>>(auth.error)
                                 : make_mailbox(m, config, auth.context.get());
                    }, {}};
  RunnerOptions options;
  options.sync_once_parallel = kMaxParallel;
  options.progress = [&progress](const std::string& name, size_t done, size_t total) {
    progress.update(name, done, total);
  };
  options.scrub = [](std::string_view text) { return Redactor::instance().scrub(text); };
  Runner runner(std::move(setup), std::move(options));
  std::vector<std::string> chosen;
  for (const MailboxConfig* m : *runs) chosen.push_back(m->name);
  // Every mailbox named is disabled: nothing to sync (an empty list would mean all).
  auto reports = !names.empty() && chosen.empty()
                     ? Result<std::vector<PassReport>>(std::vector<PassReport>())
                     : runner.sync_once(names.empty() ? std::vector<std::string>() : chosen);
  if (!reports.ok()) return fail(ctx, reports.status());
  progress.clear();
  int code = 0;
  for (const auto& run : *reports) {
    if (!run.throttled.empty()) ctx.out << run.mailbox << ": " << run.throttled << "\n";
    if (!run.throttled.empty() && !run.named) continue;
    if (!run.paused.empty()) {
      // Still an authentication failure for scripts; the alert ticket is already open.
      print_error(ctx, fmt::format("{}: {}", run.mailbox, run.paused));
      code = worse_exit_code(code, exit_code(Status(ErrorKind::kAuth, run.paused)));
      continue;
    }
    if (run.status.ok()) {
      ctx.out << summary(run) << "\n";
      // A message left on the server for a retry fails the run (exit 1); a skip for good,
      // counted by its reason, does not.
      if (run.stats.errors > 0) code = worse_exit_code(code, 1);
    } else {
      print_error(ctx, fmt::format("{}: sync failed ({}): {}", run.mailbox,
                                   to_string(run.status.kind()), run.status.message()));
      code = worse_exit_code(code, exit_code(run.status));
    }
    if (!run.monitor.empty()) {
      (run.status.ok() ? ctx.out : ctx.err) << run.mailbox << ": " << run.monitor << "\n";
    }
  }
  // SPEC §5: a sync ends with one pass over the outbox unless sending is paused.
  code = worse_exit_code(code, outbox_pass(ctx, *cfg, **store, /*quiet=*/true));
  return code;
}

}  // namespace

void add_sync(CLI::App& app, Context& ctx) {
  auto* cmd = app.add_subcommand("sync", "one pass over the mailboxes");
  auto names = std::make_shared<std::vector<std::string>>();
  // Accepted for scripts that will keep working once `run` exists; one pass is all sync does.
  cmd->add_flag("--once")->description("one pass, then exit");
  cmd->add_option("MAILBOX", *names, "mailboxes to sync (default: every enabled one)");
  cmd->callback([&ctx, names] {
    ctx.action = [&ctx, names] { return run_sync(ctx, *names); };
  });
}

}  // namespace mb::cli
