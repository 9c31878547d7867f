// File: cli/sync.cpp — `mailbridge sync [--once] [MAILBOX…]`: one pass over the mailboxes,
// up to four in parallel, each on its own thread with its own store connection, so that a
// slow or failing mailbox delays only itself. OAuth mailboxes share one AuthContext, so one
// token (and one refresh) serves every mailbox of an app and user.
#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>
#include <thread>

#include "auth/auth_context.h"
#include "auth/secrets.h"
#include "cli/auth_support.h"
#include "cli/cli.h"
#include "cli/outbox.h"
#include "cli/terminal.h"
#include "connectors/registry.h"
#include "core/ingest.h"
#include "core/monitor.h"
#include "core/store.h"
#include "core/utc.h"

namespace mb::cli {
namespace {

constexpr size_t kMaxParallel = 4;

struct MailboxRun {
  const MailboxConfig* config = nullptr;
  Status status;
  SyncStats stats;
  std::string paused;   // the monitor's reason for not contacting the mailbox
  std::string monitor;  // what the pass did to the auth-failure alert, if anything
  bool named = false;    // named on the command line: synced even while throttled
  std::string throttled;  // why a throttled mailbox was (or was not) contacted
};

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

// A mailbox that could not even be set up still gets its error into `status`; an
// auth-failed one stays so, with its alert ticket.
void record_setup_error(Store& store, const std::string& name, const Status& s) {
  store.update_mailbox_state(name, [&](MailboxState& st) {
    if (st.state != MailboxStatus::kAuthFailed) st.state = MailboxStatus::kError;
    st.last_run = now_iso8601();
    st.imported = 0;
    st.skipped.clear();
    st.last_error = Redactor::instance().scrub(s.message());
    return Status::Ok();
  }).status().ignore();
}

// One line about the alert when the pass changed it: opened, or closed by a sign-in probe.
std::string monitor_change(const MailboxState& before, const MailboxState& after) {
  if (before.state != MailboxStatus::kAuthFailed && after.state == MailboxStatus::kAuthFailed) {
    const int64_t n = after.consecutive_auth_failures;
    return fmt::format("polling paused after {} authentication failure{}; alert ticket #{} "
                       "opened", n, n == 1 ? "" : "s", after.alert_ticket_id);
  }
  if (before.state == MailboxStatus::kAuthFailed && after.state != MailboxStatus::kAuthFailed) {
    return before.alert_ticket_id > 0
               ? fmt::format("signed in again; polling resumed (note added to alert ticket "
                             "#{})", before.alert_ticket_id)
               : "signed in again; polling resumed";
  }
  return "";
}

// The process's sign-in machinery, made only when a selected mailbox signs in with OAuth
// (so a broken [auth] section cannot stop password mailboxes). When it cannot be made,
// `error` says why, and each OAuth mailbox reports it. Token outcomes are recorded through
// `store`, the main thread's connection, idle while the mailbox threads run.
struct SharedAuth {
  std::unique_ptr<AuthContext> context;
  Status error;
};

SharedAuth open_shared_auth(const Config& cfg, const std::vector<MailboxRun>& runs,
                            Store* store) {
  SharedAuth shared;
  bool wanted = std::any_of(runs.begin(), runs.end(),
                            [](const MailboxRun& r) { return r.config->auth == AuthMethod::kOAuth2; });
  if (!wanted) return shared;
  auto created = open_auth(cfg, store);
  if (created.ok()) shared.context = std::move(*created);
  else shared.error = created.status();
  return shared;
}

void run_one(const Config& cfg, MailboxRun& run, ProgressLine& progress, SharedAuth& auth,
             const std::string& tracking_secret) {
  const MailboxConfig& m = *run.config;
  auto store = Store::open(cfg.store.path);
  if (!store.ok()) {
    run.status = store.status();
    return;
  }
  auto before = (*store)->get_mailbox_state(m.name);
  if (!before.ok()) {
    run.status = before.status();
    return;
  }
  // Decided before the connector exists, so that a paused mailbox is not even resolved.
  PassPlan plan = before_pass(*before, cfg.monitor, Clock::now());
  if (plan.kind == PassPlan::Kind::kPaused) {
    run.paused = plan.message;
    return;
  }
  // The server asked for a pause (Graph Retry-After, POP3 [IN-USE]): honoured unless the
  // administrator named the mailbox, and said either way.
  if (auto until = parse_utc(before->throttled_until); until && *until > Clock::now()) {
    run.throttled = fmt::format("throttled until {} (the server asked for a pause); {}",
                                before->throttled_until,
                                run.named ? "synced anyway because it was named"
                                          : "not contacted — name it to sync it now");
    if (!run.named) return;
  }
  auto mbx = m.auth == AuthMethod::kOAuth2 && !auth.error.ok()
                 ? Result<std::unique_ptr<Mailbox>>(auth.error)
                 : make_mailbox(m, cfg, auth.context.get());
  if (!mbx.ok()) {
    run.status = mbx.status();
    record_setup_error(**store, m.name, run.status);
    return;
  }
  SyncOptions opts;
  opts.progress = [&](size_t done, size_t total) { progress.update(m.name, done, total); };
  opts.monitor.scrub = [](std::string_view text) { return Redactor::instance().scrub(text); };
  opts.tracking_secret = tracking_secret;
  opts.ignore_throttle = run.named;
  auto result = sync_mailbox(**mbx, m, cfg, **store, opts);
  (*mbx)->close();
  if (result.ok()) run.stats = *result;
  else run.status = result.status();
  auto after = (*store)->get_mailbox_state(m.name);
  if (after.ok()) run.monitor = monitor_change(*before, *after);
}

void run_guarded(const Config& cfg, MailboxRun& run, ProgressLine& progress, SharedAuth& auth,
                 const std::string& tracking_secret) {
  try {
    run_one(cfg, run, progress, auth, tracking_secret);
  } catch (const std::exception& e) {
    run.status = Status(ErrorKind::kInternal, std::string("unexpected exception: ") + e.what());
  }
}

std::string summary(const MailboxRun& run) {
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
  std::string line = fmt::format("{}: {} imported ({}, {}), {} skipped", run.config->name,
                                 s.imported, plural(s.tickets, "ticket", "tickets"),
                                 plural(s.notes, "note", "notes"), skipped);
  if (!reasons.empty()) line += " (" + reasons + ")";
  if (s.errors > 0) line += fmt::format(", {} failed (left on the server)", s.errors);
  if (s.more) line += "; more mail is waiting (max_per_poll reached)";
  return line;
}

Result<std::vector<MailboxRun>> select(Context& ctx, const Config& cfg,
                                       const std::vector<std::string>& names) {
  std::vector<MailboxRun> runs;
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
    runs.push_back({&m, Status(), {}, {}, {}, !names.empty(), {}});
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
  std::atomic<size_t> next{0};
  auto worker = [&] {
    for (size_t i; (i = next++) < runs->size();) {
      run_guarded(*cfg, (*runs)[i], progress, auth, *secret);
    }
  };
  std::vector<std::thread> threads;
  for (size_t i = 0; i < std::min(kMaxParallel, runs->size()); ++i) threads.emplace_back(worker);
  for (auto& t : threads) t.join();
  progress.clear();
  int code = 0;
  for (const auto& run : *runs) {
    if (!run.throttled.empty()) ctx.out << run.config->name << ": " << run.throttled << "\n";
    if (!run.throttled.empty() && !run.named) continue;
    if (!run.paused.empty()) {
      // Still an authentication failure for scripts; the alert ticket is already open.
      print_error(ctx, fmt::format("{}: {}", run.config->name, run.paused));
      code = worse_exit_code(code, exit_code(Status(ErrorKind::kAuth, run.paused)));
      continue;
    }
    if (run.status.ok()) {
      ctx.out << summary(run) << "\n";
      // A message left on the server for a retry fails the run (exit 1); a skip for good,
      // counted by its reason, does not.
      if (run.stats.errors > 0) code = worse_exit_code(code, 1);
    } else {
      print_error(ctx, fmt::format("{}: sync failed ({}): {}", run.config->name,
                                   to_string(run.status.kind()), run.status.message()));
      code = worse_exit_code(code, exit_code(run.status));
    }
    if (!run.monitor.empty()) {
      (run.status.ok() ? ctx.out : ctx.err) << run.config->name << ": " << run.monitor << "\n";
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
