// File: cli/service.h — what `mailbridge run` does around the runner: the signals it waits
// for, the re-reading of the configuration on SIGHUP, and what a reload changes. Kept apart
// from cli/run.cpp (which builds the Runner) so that tests drive it with a fake service.
//
//   block_service_signals();                      // before any thread starts
//   ... start the runner (its threads inherit the blocked mask) ...
//   int code = serve_signals(config_path, config, control, {});   // until SIGTERM/SIGINT
#pragma once

#include <signal.h>

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "core/config.h"
#include "core/status.h"

namespace mb::cli {

// What serve_signals() drives: the Runner in `run`, a fake in tests.
class ServiceControl {
 public:
  virtual ~ServiceControl() = default;
  // Applies a configuration that reread_config() has validated, with its tracking secret.
  virtual void reload(const Config& config, const std::string& tracking_secret) = 0;
  // Finishes the message in hand everywhere and returns when every worker has ended.
  virtual void stop() = 0;
};

// SIGTERM, SIGINT and SIGHUP.
sigset_t service_signals();
// Blocks service_signals() in the calling thread, and so in every thread it starts later:
// call it before the first thread exists, so that only serve_signals() ever sees them.
void block_service_signals();

// Mailboxes by name whose settings a reload adds, changes or removes (enabled ones only: a
// mailbox switched off counts as removed, switched on as added).
struct MailboxChanges {
  std::vector<std::string> added, changed, removed;
  bool empty() const { return added.empty() && changed.empty() && removed.empty(); }
};
MailboxChanges compare_mailboxes(const Config& before, const Config& after);
// "added: a, b; changed: c; removed: d" ("no mailbox changed" when empty).
std::string describe(const MailboxChanges& changes);

// Re-reads `path` and validates it as check-config does (every error, naming key and line,
// one per line of the message), resolves its tracking secret, and refuses a [store] path
// other than the running one's (the store cannot change without a restart): kConfig.
Result<std::pair<Config, std::string>> reread_config(const std::string& path,
                                                     const Config& running);

// The open-file limit `mailbridge run` needs: each mailbox's worker holds a socket and its
// Cancel's eventfd, and during a pass a SQLite connection (the database, its WAL and shared
// memory) — kDescriptorsPerMailbox in all — beside a fixed reserve. Raises the soft
// RLIMIT_NOFILE to the hard limit (the usual soft 1,024 is too few for a thousand mailboxes)
// and returns a warning naming LimitNOFILE when even the hard limit is below what `mailboxes`
// need, "" otherwise.
constexpr size_t kDescriptorsPerMailbox = 6;
constexpr size_t kDescriptorReserve = 64;
std::string raise_open_file_limit(size_t mailboxes);

// glibc's per-thread cache of freed blocks (tcache) keeps about 34 KiB for each of the
// service's threads — one per mailbox, for weeks — that malloc_trim cannot return: at 1,000
// mailboxes it was a third of the memory per mailbox (docs/performance.md, "The service").
// It can only be switched off before the process starts (GLIBC_TUNABLES), so `run` starts
// itself again once with it off. thread_cache_tunables() is the GLIBC_TUNABLES value to start
// with ("" when `current` already sets glibc.malloc.tcache_count: the operator's choice
// stands); restart_without_thread_cache() re-executes /proc/self/exe with the same arguments
// and that value, and returns only when it does not (already set, or exec failed: then the
// service runs with the cache, which costs memory, nothing else).
// Only the executable's main() allows it (allow_restart()): a test that runs the CLI in its
// own process must never re-execute itself.
std::string thread_cache_tunables(const char* current);
void allow_restart();
void restart_without_thread_cache();

struct ServeHooks {
  // After a reload was applied (e.g. to forget removed mailboxes' activity).
  std::function<void(const MailboxChanges&)> reloaded;
};

// Waits for the service signals in the calling thread (they must be blocked): SIGHUP
// re-reads the configuration (on error the running one stays, and the error is logged);
// SIGTERM or SIGINT stop the service. Returns 0 once `control` has stopped. Logs each step.
int serve_signals(const std::string& config_path, Config running, ServiceControl& control,
                  const ServeHooks& hooks = {});

}  // namespace mb::cli
