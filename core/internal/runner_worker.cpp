// File: core/internal/runner_worker.cpp — the service's workers: one per mailbox (plan,
// sleep or wait on the server, pass, again) and one for the outbox.
#include <malloc.h>
#include <spdlog/spdlog.h>

#include <algorithm>

#include "core/internal/runner_parts.h"
#include "core/utc.h"

namespace mb::runner_internal {

std::mutex Worker::end_mu_;
std::condition_variable Worker::end_cv_;

Status Worker::start() {
  return thread_.start([this] {
    {
      CancelScope scope(&hard_);
      try {
        run();
      } catch (const std::exception& e) {
        spdlog::error("service worker ended by an unexpected exception: {}", e.what());
      }
    }
    {
      std::lock_guard lock(end_mu_);
      ended_ = true;
    }
    end_cv_.notify_all();
  });
}

MailboxWorker::MailboxWorker(Shared& shared, std::string name) : Worker(shared) {
  activity_.mailbox = std::move(name);
  activity_.since = shared.clock->now();
}

MailboxActivity MailboxWorker::activity() const {
  std::lock_guard lock(mu_);
  return activity_;
}

void MailboxWorker::adopt(std::shared_ptr<const RunnerSetup> setup) {
  std::lock_guard lock(mu_);
  adopted_ = std::move(setup);
}

std::shared_ptr<const RunnerSetup> MailboxWorker::setup() {
  std::lock_guard lock(mu_);
  if (adopted_) setup_ = std::move(adopted_);
  return setup_;
}

void MailboxWorker::set_activity(MailboxActivity::Kind kind, Clock::time_point next_run) {
  MailboxActivity copy;
  {
    std::lock_guard lock(mu_);
    if (activity_.kind == kind && activity_.next_run == next_run) return;
    activity_.kind = kind;
    activity_.next_run = next_run;
    activity_.since = shared_.clock->now();
    copy = activity_;
  }
  if (shared_.options.on_activity) shared_.options.on_activity(copy);
}

void MailboxWorker::set_error(const std::string& error) {
  std::lock_guard lock(mu_);
  activity_.last_error = error;
}

void MailboxWorker::run() {
  {
    std::lock_guard lock(mu_);
    if (!setup_) setup_ = shared_.current_setup();
  }
  loop();
  if (mailbox_) mailbox_->close();
  mailbox_.reset();
  set_activity(MailboxActivity::Kind::kStopped, {});
}

namespace {

MailboxActivity::Kind activity_of(NextPass::Why why) {
  switch (why) {
    case NextPass::Why::kBackoff: return MailboxActivity::Kind::kBackoff;
    case NextPass::Why::kThrottled: return MailboxActivity::Kind::kThrottled;
    case NextPass::Why::kPaused: return MailboxActivity::Kind::kPaused;
    case NextPass::Why::kDue:
    case NextPass::Why::kPoll: break;
  }
  return MailboxActivity::Kind::kWaiting;
}

}  // namespace

void MailboxWorker::loop() {
  while (!stop_.fired()) {
    auto setup = this->setup();
    const MailboxConfig* m = setup->config.find_mailbox(name());
    if (m == nullptr) return;
    MailboxState state;
    state.name = name();
    if (!store_) {
      auto opened = Store::open(setup->config.store.path);
      if (opened.ok()) store_ = std::move(*opened);
      else spdlog::warn("mailbox {}: cannot open the store: {}", name(), opened.status().message());
    }
    if (store_) {
      auto loaded = store_->get_mailbox_state(name());
      if (loaded.ok()) state = *loaded;
    }
    const auto now = shared_.clock->now();
    NextPass next = plan_next_pass(*m, setup->config.monitor, state, last_, shared_.jitter(), now);
    // News from the server: a pass now, unless the monitor or the server said to wait.
    if (changed_ && next.why == NextPass::Why::kPoll) next = {NextPass::Why::kDue, now};
    changed_ = false;
    if (next.at > now) {
      Wake wake = wait_for(next);
      if (wake == Wake::kStop) return;
      if (wake == Wake::kPlan) continue;
    }
    if (!store_) {
      last_ = {PassResult::kTransient, next_failure_count(last_.transient_failures,
                                                           PassResult::kTransient),
               shared_.clock->now()};
      set_error("cannot open the store " + setup->config.store.path);
      continue;
    }
    pass(*setup, *m);
    trim_pending_ = true;
  }
}

MailboxWorker::Wake MailboxWorker::wait_for(const NextPass& next) {
  // No store connection is held while waiting: with a thousand mailboxes, a thousand idle
  // SQLite connections (each with its page cache) would be most of the service's memory.
  // The next turn of the loop opens one again (a file open and a version check).
  store_.reset();
  // What the pass freed (message bodies, the SQLite connection's page cache) goes back to the
  // kernel before a wait that may last minutes: glibc otherwise keeps it in the arena, and a
  // thousand workers each keeping their last pass's peak is most of the service's memory
  // (measured: about 25 KiB a mailbox; docs/performance.md, "The service").
  if (trim_pending_) {
    malloc_trim(0);
    trim_pending_ = false;
  }
  if (mailbox_ && push_ && next.why == NextPass::Why::kPoll) return wait_on_server(next);
  set_activity(activity_of(next.why), next.at);
  if (shared_.clock->sleep_until(next.at, stop_)) return Wake::kStop;
  return Wake::kPlan;
}

// Waits on the open connection (IMAP IDLE) until the next poll is due. The stop request
// is the thread's Cancel meanwhile, so that a stop ends the wait at once.
MailboxWorker::Wake MailboxWorker::wait_on_server(const NextPass& next) {
  set_activity(MailboxActivity::Kind::kIdle, next.at);
  const auto left = next.at - shared_.clock->now();
  const auto deadline =
      std::chrono::steady_clock::now() +
      std::chrono::duration_cast<std::chrono::steady_clock::duration>(left);
  Result<ChangeWait> seen = ChangeWait::kTimedOut;
  {
    CancelScope scope(&stop_);
    seen = mailbox_->wait_for_change(deadline);
  }
  if (stop_.fired()) return Wake::kStop;
  if (seen.ok() && *seen == ChangeWait::kChanged) {
    changed_ = true;
    return Wake::kPlan;
  }
  if (seen.ok() && *seen == ChangeWait::kUnsupported) push_ = false;
  if (!seen.ok()) {
    // The connection broke: reconnect on the backoff's schedule.
    mailbox_->close();
    mailbox_.reset();
    last_ = {PassResult::kTransient,
             next_failure_count(last_.transient_failures, PassResult::kTransient),
             shared_.clock->now()};
    set_error(shared_.scrub(seen.status().to_string()));
  }
  return Wake::kPlan;
}

void MailboxWorker::pass(const RunnerSetup& setup, const MailboxConfig& m) {
  set_activity(MailboxActivity::Kind::kPolling, {});
  PassInput in{setup, m, *store_, shared_, false, {}, {}, nullptr};
  in.stop_requested = [this] { return stop_.fired(); };
  in.keep = &mailbox_;
  PassReport report;
  try {
    report = run_pass(in);
  } catch (const std::exception& e) {
    report.mailbox = m.name;
    report.status = Status(ErrorKind::kInternal, std::string("unexpected exception: ") + e.what());
  }
  push_ = mailbox_ != nullptr;
  PassResult result = classify_pass(report.status, report.stats.more);
  last_ = {result, next_failure_count(last_.transient_failures, result), shared_.clock->now()};
  if (result != PassResult::kCancelled) {
    set_error(report.status.ok() ? "" : shared_.scrub(report.status.to_string()));
  }
  if (shared_.options.on_pass) shared_.options.on_pass(report);
}

// The outbox: a flush at start (it also takes back sends a dead process left), then one
// whenever a queued row is due and sending is not paused; the store is asked every second.
void OutboxWorker::run() {
  std::unique_ptr<Store> store;
  bool first = true;
  bool flushed = false;  // just now: wait a second before the next look
  while (!stop_.fired()) {
    auto setup = shared_.current_setup();
    const auto now = shared_.clock->now();
    Clock::time_point wake = now + std::chrono::seconds(1);
    if (!store) {
      auto opened = Store::open(setup->config.store.path);
      if (opened.ok()) store = std::move(*opened);
    }
    Clock::time_point next = wake;
    if (store && !flushed && due(*store, now, first, next)) {
      first = false;
      flushed = true;
      auto stats = flush_outbox(*setup, *store, shared_);
      if (!stats.ok()) spdlog::warn("outbox: {}", stats.status().to_string());
      else for (const auto& e : stats->errors) spdlog::warn("outbox {}", e);
      continue;
    }
    flushed = false;
    if (shared_.clock->sleep_until(std::min(wake, next), stop_)) return;
  }
}

// Whether a flush is due now; `next`: when the earliest queued row falls due.
bool OutboxWorker::due(Store& store, Clock::time_point now, bool first, Clock::time_point& next) {
  auto paused = store.outbox_paused();
  if (!paused.ok() || *paused) return false;
  if (first) return true;
  auto earliest = store.next_outbox_due();
  if (!earliest.ok() || !*earliest) return false;
  auto at = parse_utc(**earliest);
  if (!at) return true;  // unreadable: let flush() decide
  if (*at <= now) return true;
  next = *at;
  return false;
}

}  // namespace mb::runner_internal
