// File: core/monitor.h — the auth-failure alert of SPEC §3: when a mailbox may be contacted,
// and what a pass's outcome does to its state.
//
// Consecutive authentication failures are counted in the mailbox's stored state across
// runs; network and TLS errors never count. At [monitor] auth_failure_threshold the mailbox
// goes to "auth-failed", stops being polled (one sign-in probe per auth_retry_interval, so a
// fixed password is noticed without a retry storm) and exactly one alert ticket is opened
// from [monitor.alert]. A successful sign-in resumes it and adds a note to that ticket.
//
// after_pass() and record_sign_in() run inside Store::update_mailbox_state's transaction, so
// the count, the state and the alert ticket are written together: neither a crash nor two
// processes can open a second alert ticket for one failure episode.
//
//   PassPlan plan = before_pass(state, cfg.monitor, clock());
//   if (plan.kind == PassPlan::Kind::kPaused) { print(plan.message); return; }
//   ... sync_mailbox() calls after_pass() when it records the pass ...
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "core/config.h"
#include "core/status.h"
#include "core/store.h"

namespace mb {

using Clock = std::chrono::system_clock;

// What the monitor needs from its surroundings; both may be left empty.
struct MonitorHooks {
  std::function<Clock::time_point()> now;                // empty: the system clock
  // Applied to every text that goes into an alert ticket or note (the CLI passes the
  // Redactor's scrub); empty: none.
  std::function<std::string(std::string_view)> scrub;

  Clock::time_point clock() const { return now ? now() : Clock::now(); }
  std::string clean(std::string_view text) const {
    return scrub ? scrub(text) : std::string(text);
  }
};

struct PassPlan {
  enum class Kind {
    kPoll,    // contact the mailbox as usual
    kProbe,   // auth-failed, but a sign-in probe is due: one normal pass
    kPaused,  // auth-failed: do not contact the mailbox
  };
  Kind kind = Kind::kPoll;
  Clock::time_point next_probe{};  // kPaused: when the next probe is due
  // kPaused: "paused after 3 authentication failures (alert ticket #7); fix the sign-in
  // and run `mailbridge test-connection support`".
  std::string message;
};

// Whether the mailbox may be contacted now. The probe interval counts from the last
// attempt (state.last_run); a paused pass writes nothing, so it does not move that time.
PassPlan before_pass(const MailboxState& state, const MonitorConfig& config,
                     Clock::time_point now);

// How a pass ended, as far as the monitor cares.
struct PassOutcome {
  bool signed_in = false;  // the server accepted the credentials during the pass
  Status status;           // OK, or the error that stopped the pass
};

// Moves `state` after a pass of `mailbox`: a sign-in resets the count and resumes an
// auth-failed mailbox (system note on its alert ticket); a kAuth error counts, and at the
// threshold opens the alert ticket and sets "auth-failed"; other errors leave the count
// alone. Sets state.state ("ok", "error" or "auth-failed"). Call it inside
// store.update_mailbox_state(); the tickets and notes it creates go through `store`.
Status after_pass(Store& store, const MailboxConfig& mailbox, const Config& config,
                  MailboxState& state, const PassOutcome& outcome, const MonitorHooks& hooks);

struct SignInRecord {
  bool resumed = false;         // the mailbox was auth-failed and polls again
  int64_t alert_ticket_id = 0;  // the alert ticket that got the note, if any
};

// A successful sign-in outside a pass (`mailbridge test-connection`): resets the count and
// resumes an auth-failed mailbox with a note on its alert ticket. Writes nothing when there
// is nothing to reset.
Result<SignInRecord> record_sign_in(Store& store, const MailboxConfig& mailbox,
                                    const MonitorHooks& hooks);

}  // namespace mb
