// File: cli/run.cpp — `mailbridge run`: the service (SPEC §7). Takes the store's
// single-instance lock, builds the Runner's setup the way `sync` and `outbox flush` do
// (one shared AuthContext for the OAuth mailboxes, senders from sender_factory), records
// what each mailbox's worker is doing for `status`, and waits for signals
// (cli/service.h): SIGHUP reloads, SIGTERM and SIGINT stop within seconds, exit 0.
//
// Exit codes: 0 stopped by a signal; 1 another `run` holds the store (the message names
// the lock file and its pid) or the service could not start; 2 a configuration error.
#include <malloc.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <memory>
#include <mutex>

#include "auth/auth_context.h"
#include "auth/secrets.h"
#include "cli/auth_support.h"
#include "cli/cli.h"
#include "cli/outbox.h"
#include "cli/service.h"
#include "connectors/registry.h"
#include "core/instance_lock.h"
#include "core/metrics.h"
#include "core/metrics_server.h"
#include "core/runner.h"
#include "core/service_activity.h"
#include "core/utc.h"

namespace mb::cli {
namespace {

// What one setup's closures share, kept alive by them for as long as the runner holds the
// setup. Each AuthContext records its token outcomes through a store connection of its own.
struct SetupState {
  Config config;
  std::unique_ptr<Store> auth_store;
  std::unique_ptr<AuthContext> auth;  // the OAuth mailboxes'; null when none or it failed
  Status auth_error;
  std::unique_ptr<Store> sender_store;
  std::unique_ptr<AuthContext> sender_auth;  // opened by the first OAuth sender
};

bool any_oauth_mailbox(const Config& cfg) {
  return std::any_of(cfg.mailboxes.begin(), cfg.mailboxes.end(), [](const MailboxConfig& m) {
    return m.enabled && m.auth == AuthMethod::kOAuth2;
  });
}

Result<RunnerSetup> make_setup(const Config& cfg, const std::string& secret) {
  auto state = std::make_shared<SetupState>();
  state->config = cfg;
  auto auth_store = Store::open(cfg.store.path);
  if (!auth_store.ok()) return auth_store.status();
  state->auth_store = std::move(*auth_store);
  auto sender_store = Store::open(cfg.store.path);
  if (!sender_store.ok()) return sender_store.status();
  state->sender_store = std::move(*sender_store);
  // Made only when a mailbox signs in with OAuth, so that a broken [auth] section cannot
  // stop the password mailboxes; each OAuth mailbox then reports why.
  if (any_oauth_mailbox(cfg)) {
    auto opened = open_auth(state->config, state->auth_store.get());
    if (opened.ok()) state->auth = std::move(*opened);
    else state->auth_error = opened.status();
  }
  RunnerSetup setup;
  setup.config = cfg;
  setup.tracking_secret = secret;
  setup.make_mailbox = [state](const MailboxConfig& m) -> Result<std::unique_ptr<Mailbox>> {
    if (m.auth == AuthMethod::kOAuth2 && !state->auth) return state->auth_error;
    return make_mailbox(m, state->config, state->auth.get());
  };
  // One outbox worker calls it at a time; its senders sign in through their own context.
  setup.make_senders = [state](Store& /*the worker's*/) {
    return sender_factory(state->config, *state->sender_store, state->sender_auth);
  };
  return setup;
}

ServiceActivityRecord to_record(const MailboxActivity& a) {
  auto when = [](std::chrono::system_clock::time_point t) {
    return t == std::chrono::system_clock::time_point{} ? std::string() : format_utc(t);
  };
  return {a.mailbox, to_string(a.kind), when(a.next_run),
          Redactor::instance().scrub(a.last_error), when(a.since), 0};
}

// One log line per pass that did something or failed.
void log_pass(const PassReport& r) {
  if (!r.status.ok()) {
    if (r.status.kind() == ErrorKind::kCancelled) return;
    spdlog::warn("{}: pass failed ({}): {}", r.mailbox, to_string(r.status.kind()),
                 Redactor::instance().scrub(r.status.message()));
  } else if (r.stats.imported > 0 || r.stats.errors > 0) {
    spdlog::info("{}: {} imported ({} tickets, {} notes), {} failed", r.mailbox,
                 r.stats.imported, r.stats.tickets, r.stats.notes, r.stats.errors);
  }
  // r.monitor (alert opened or closed) is not repeated: core/monitor logs it as it happens.
}

class RunnerControl : public ServiceControl {
 public:
  explicit RunnerControl(Runner& runner) : runner_(runner) {}
  void reload(const Config& config, const std::string& secret) override {
    auto setup = make_setup(config, secret);
    if (!setup.ok()) {
      spdlog::error("configuration not reloaded: {}", setup.status().message());
      return;
    }
    runner_.reload(std::move(*setup));
  }
  void stop() override { runner_.stop(); }

 private:
  Runner& runner_;
};

// [service] metrics: Prometheus /metrics and /healthz on loopback (docs/operations.md), off
// when the key is absent. The page is rendered on the server's thread through a store
// connection of its own. A change of the key takes a restart (SIGHUP leaves it).
Result<std::unique_ptr<MetricsServer>> start_metrics(const Config& cfg) {
  if (cfg.service.metrics.empty()) return std::unique_ptr<MetricsServer>();
  auto opened = Store::open(cfg.store.path);
  if (!opened.ok()) return opened.status();
  std::shared_ptr<Store> store = std::move(*opened);
  auto mu = std::make_shared<std::mutex>();
  auto server = MetricsServer::start(cfg.service.metrics, [store, mu] {
    std::lock_guard lock(*mu);
    return metrics::render(store.get());
  });
  if (!server.ok()) return server.status().prefixed("[service] metrics");
  spdlog::info("metrics on http://{}/metrics (port {})", cfg.service.metrics, (*server)->port());
  return server;
}

// glibc's allocator for a process that holds one thread and one connection per mailbox for
// weeks: a block of 32 KiB or more gets a mapping of its own, so that freeing it returns it
// to the kernel and only its touched pages count — SQLite's initial page-cache block of each
// worker's store connection (87 KiB, mostly unused), a large answer's buffers. The default
// (128 KiB, raised on the fly up to 32 MiB as large blocks are freed) left them in the heaps
// among long-lived allocations: about 60 KiB more resident memory per mailbox
// (docs/performance.md, "The service"). M_ARENA_MAX made no measurable difference.
void tune_allocator() { mallopt(M_MMAP_THRESHOLD, 32 * 1024); }

int run_service(Context& ctx) {
  // First of all: the process may start again (same pid, arguments and descriptors).
  restart_without_thread_cache();
  // Before any thread exists (the runner's, the activity writer's, cpprestsdk's), so that
  // only serve_signals() ever receives them.
  block_service_signals();
  tune_allocator();
  auto cfg = load(ctx, true);
  if (!cfg.ok()) return exit_code(cfg.status());
  auto secret = tracking_secret(*cfg);
  if (!secret.ok()) return fail(ctx, secret.status());
  auto lock = InstanceLock::acquire(instance_lock_path(cfg->store.path));
  if (!lock.ok()) return fail(ctx, lock.status());
  // Opened once here so that migrations run before the workers open their own connections.
  auto store = open_store(ctx, *cfg);
  if (!store.ok()) return exit_code(store.status());
  auto writer = ServiceActivityWriter::start(cfg->store.path, ::getpid(), {});
  if (!writer.ok()) return fail(ctx, writer.status());
  auto setup = make_setup(*cfg, *secret);
  if (!setup.ok()) return fail(ctx, setup.status());
  auto metrics_server = start_metrics(*cfg);
  if (!metrics_server.ok()) return fail(ctx, metrics_server.status());
  RunnerOptions options;
  options.on_activity = [w = writer->get()](const MailboxActivity& a) { w->record(to_record(a)); };
  options.on_pass = log_pass;
  options.scrub = [](std::string_view text) { return Redactor::instance().scrub(text); };
  Runner runner(std::move(*setup), options);
  size_t enabled = std::count_if(cfg->mailboxes.begin(), cfg->mailboxes.end(),
                                 [](const MailboxConfig& m) { return m.enabled; });
  std::string limit = raise_open_file_limit(enabled);
  if (!limit.empty()) spdlog::warn("{}", limit);
  Status started = runner.start();
  if (!started.ok()) return fail(ctx, started);
  spdlog::info("running (pid {}): {} mailbox(es), store {}, lock {}", ::getpid(), enabled,
               cfg->store.path, (*lock)->path());
  RunnerControl control(runner);
  ServeHooks hooks;
  hooks.reloaded = [w = writer->get()](const MailboxChanges& changes) {
    for (const auto& name : changes.removed) w->forget(name);
  };
  int code = serve_signals(ctx.config_path, std::move(*cfg), control, hooks);
  if (*metrics_server) (*metrics_server)->stop();
  (*writer)->stop();
  spdlog::info("exiting");
  return code;
}

}  // namespace

void add_run(CLI::App& app, Context& ctx) {
  auto* cmd = app.add_subcommand("run", "the service: every mailbox on its schedule, the "
                                        "outbox, until SIGTERM (SIGHUP reloads)");
  cmd->callback([&app, &ctx] {
    // The service says what it does at info level unless told otherwise.
    bool explicit_level = app.get_option("--log-level")->count() > 0;
    ctx.action = [&ctx, explicit_level] {
      if (!explicit_level) spdlog::set_level(spdlog::level::info);
      return run_service(ctx);
    };
  });
}

}  // namespace mb::cli
