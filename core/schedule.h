// File: core/schedule.h — when a mailbox's next pass is due, and why it waits until then.
//
// Pure functions: no I/O, no clock reads; the service's worker (core/runner.cpp) passes the
// mailbox's configuration, its stored state, how its last pass ended, a jitter value and the
// time. The rules, first match wins:
//   1. auth-failed and no sign-in probe due (core/monitor.h before_pass): paused until the
//      next probe;
//   2. throttled_until ahead (the server asked for a pause): throttled until then;
//   3. no pass yet, or the last one reached max_per_poll (`more`), or it was cancelled: due
//      at once;
//   4. the last pass failed with a transient error (network, time-outs included; protocol;
//      TLS; a busy store, kBusy: SQLite's lock or this process's writer queue held past the
//      wait): capped exponential backoff with equal jitter (core/backoff.h) from when it ended —
//      first retry after min(poll_interval, 15 s)·[½, 1], doubling up to a cap of
//      max(poll_interval, min(8·poll_interval, 15 min)); a pass that succeeds resets it;
//   5. otherwise (it passed, or failed in a way a sooner retry cannot help: auth, config,
//      store): poll_interval after it ended, lengthened by 0–10 % jitter (never shortened,
//      so that a server's minimum interval is always kept) so that mailboxes started together
//      drift apart.
//
//   LastPass last{classify_pass(status, stats.more), failures, finished};
//   NextPass next = plan_next_pass(mailbox, config.monitor, state, last, jitter(), now);
//   clock.sleep_until(next.at, cancel);
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "core/config.h"
#include "core/monitor.h"
#include "core/status.h"
#include "core/store.h"

namespace mb {

// How a pass ended, as far as the schedule cares.
enum class PassResult {
  kNone,       // no pass yet
  kOk,         // passed; nothing more waiting
  kMore,       // passed, and max_per_poll left mail waiting: go on at once
  kTransient,  // network (time-outs included), protocol, TLS or a busy store: back off
  kOther,      // any other error (auth, config, store, throttled): the usual interval
  kCancelled,  // woken by the service: nothing happened; due at once when it runs again
};

PassResult classify_pass(const Status& status, bool more);

struct LastPass {
  PassResult result = PassResult::kNone;
  // Transient failures in a row, this one included (0 after any other outcome).
  int64_t transient_failures = 0;
  Clock::time_point finished{};  // when the pass ended
};

// The next LastPass::transient_failures after a pass with `result`.
int64_t next_failure_count(int64_t previous, PassResult result);

struct NextPass {
  enum class Why {
    kDue,        // due at once (first pass, `more`, a sign-in probe, a cancelled pass)
    kPoll,       // the poll interval
    kBackoff,    // after transient errors
    kThrottled,  // the server's throttled_until
    kPaused,     // auth-failed: the next sign-in probe
  };
  Why why = Why::kDue;
  Clock::time_point at{};
};
const char* to_string(NextPass::Why why);  // "due", "poll", "backoff", "throttled", "paused"

// poll_interval · (1 + jitter/10), jitter in [0, 1) (clamped).
std::chrono::milliseconds poll_delay(std::chrono::seconds poll_interval, double jitter);
// The wait before retry after `failures` transient failures in a row (≥ 1).
std::chrono::milliseconds backoff_delay(std::chrono::seconds poll_interval, int64_t failures,
                                        double jitter);
// The backoff's cap: max(poll_interval, min(8·poll_interval, 15 min)).
std::chrono::milliseconds backoff_cap(std::chrono::seconds poll_interval);

NextPass plan_next_pass(const MailboxConfig& mailbox, const MonitorConfig& monitor,
                        const MailboxState& state, const LastPass& last, double jitter,
                        Clock::time_point now);

}  // namespace mb
