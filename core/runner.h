// File: core/runner.h — the one runner that drives mailboxes and senders: `sync --once`,
// `outbox flush` and `mailbridge run` (the service) are three ways of driving it; the CLI
// parses, prints and maps statuses to exit codes.
//
// The service gives each enabled mailbox its own worker thread (a 512 KiB stack,
// core/internal/runner_parts.h) with its own store connection and its own Cancel
// (core/cancel.h), so a slow, hanging or failing mailbox delays only itself, however many
// there are, and stop or reload wake every blocking read at once. Each worker follows the
// mailbox's schedule (core/schedule.h): its poll_interval with jitter and max_per_poll,
// capped backoff after network errors, the server's throttled_until, and the auth-failure
// monitor's probe interval (core/monitor.h). Where the connector can
// push (Mailbox::wait_for_change: IMAP IDLE) the worker waits on the open connection between
// passes; elsewhere it sleeps until the next poll. One more worker sends the outbox: each
// message when it becomes due; pause and resume take effect within a second.
//
//   RunnerSetup setup{config, secret, make_mailbox, make_senders};
//   Runner runner(std::move(setup), RunnerOptions{});
//   auto reports = runner.sync_once({});                  // `sync --once`
//   runner.start();                                       // `run`
//   runner.reload(std::move(new_setup));                  // SIGHUP, after validating it
//   runner.stop();                                        // SIGTERM: ends within seconds
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/cancel.h"
#include "core/config.h"
#include "core/ingest.h"
#include "core/mailbox.h"
#include "core/outbox.h"
#include "core/status.h"
#include "core/store.h"

namespace mb {

// What the runner needs from the layers above core (connectors, auth): closures the CLI
// builds from connectors/registry and its shared AuthContext, so that core links neither.
struct RunnerSetup {
  Config config;
  std::string tracking_secret;  // resolved [tracking] secret ("" when none)
  // A connector for one mailbox (not yet connected).
  std::function<Result<std::unique_ptr<Mailbox>>(const MailboxConfig&)> make_mailbox;
  // The senders for an outbox pass over `store` (the worker's own connection); empty: the
  // runner sends nothing.
  std::function<SenderFactory(Store& store)> make_senders;
};

// The clock the scheduler reads and sleeps on; tests inject one they advance by hand, so
// poll intervals are checked without sleeping.
class RunnerClock {
 public:
  virtual ~RunnerClock() = default;
  virtual std::chrono::system_clock::time_point now() = 0;
  // Sleeps until `at` (on this clock) or until `cancel` fires; true when it fired.
  virtual bool sleep_until(std::chrono::system_clock::time_point at, const Cancel& cancel) = 0;
};
// The system clock.
RunnerClock& system_runner_clock();

// What a mailbox's worker is doing, for `status` and the metrics.
struct MailboxActivity {
  enum class Kind {
    kStarting,
    kPolling,    // a pass is running
    kIdle,       // waiting on the server for news (IMAP IDLE or NOOP polls)
    kWaiting,    // sleeping until next_run
    kBackoff,    // after a network error, until next_run
    kThrottled,  // the server asked for a pause, until next_run
    kPaused,     // auth-failed: next_run is the next sign-in probe
    kStopped,
  };
  std::string mailbox;
  Kind kind = Kind::kStarting;
  std::chrono::system_clock::time_point next_run{};  // when the next pass is due
  std::string last_error;                             // of the last pass ("" when it passed)
  std::chrono::system_clock::time_point since{};      // when this activity began
};
const char* to_string(MailboxActivity::Kind kind);  // "starting", "polling", "idle", …

// One mailbox's pass of sync_once().
struct PassReport {
  std::string mailbox;
  Status status;            // what stopped the pass, or OK
  SyncStats stats;
  std::string paused;       // the monitor's reason for not contacting it (auth-failed)
  std::string throttled;    // why a throttled mailbox was (or was not) contacted
  std::string monitor;      // what the pass did to the auth-failure alert, if anything
  bool named = false;       // named by the caller: synced even while throttled
};

struct RunnerOptions {
  RunnerClock* clock = nullptr;            // nullptr: system_runner_clock()
  std::function<double()> jitter;          // uniform [0, 1); empty: a seeded generator
  size_t sync_once_parallel = 4;           // sync_once(): mailboxes in flight at once
  // Called (from worker threads) whenever a mailbox's activity changes; may be empty.
  std::function<void(const MailboxActivity&)> on_activity;
  // Called after each pass of the service (from its worker thread); may be empty.
  std::function<void(const PassReport&)> on_pass;
  // sync_once() progress: (mailbox, done, total); may be empty.
  std::function<void(const std::string&, size_t, size_t)> progress;
  // Applied to every server text stored in the mailbox state, alert tickets and the outbox
  // (the CLI passes auth/secrets' Redactor scrub); empty: none.
  std::function<std::string(std::string_view)> scrub;
  // stop(): how long a pass may take to finish the message in hand before every blocking
  // read is woken.
  std::chrono::milliseconds stop_grace{3000};
};

class Runner {
 public:
  Runner(RunnerSetup setup, RunnerOptions options);
  ~Runner();  // stop()
  Runner(const Runner&) = delete;
  Runner& operator=(const Runner&) = delete;

  // `sync --once`: one pass over the mailboxes named (all enabled ones when empty; a name
  // not configured is a kConfig error), at most options.sync_once_parallel at once, then
  // returns one report per mailbox in configuration order.
  Result<std::vector<PassReport>> sync_once(const std::vector<std::string>& names);
  // `outbox flush` and the end of `sync`: one pass over the outbox through `store`.
  Result<FlushStats> flush_outbox(Store& store);

  // `run`: starts a worker per enabled mailbox and the outbox worker; returns at once.
  Status start();
  // Applies a new, already validated setup: workers of removed, disabled or changed
  // mailboxes (same_settings() in core/config.h: every setting but line_no) stop as stop()
  // stops them, new ones start with a pass at once, unchanged ones go on undisturbed and use
  // the new setup (filters, closures, tracking secret) from their next pass on — a push
  // connection kept open stays until it breaks. The outbox worker takes it at its next look.
  // Before start(): only replaces the setup.
  void reload(RunnerSetup setup);
  // Asks every worker to finish the message in hand and stop; after options.stop_grace
  // wakes every blocking read. Returns when every worker has ended. Idempotent.
  void stop();
  // What every worker is doing now (configuration order).
  std::vector<MailboxActivity> snapshot() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace mb
