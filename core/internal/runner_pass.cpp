// File: core/internal/runner_pass.cpp — one mailbox's pass for the runner (sync_once and
// the service's workers), the outbox flush, and SmallThread.
#include <fmt/format.h>

#include "core/internal/runner_parts.h"
#include "core/monitor.h"
#include "core/utc.h"

namespace mb::runner_internal {
namespace {

// A mailbox that could not even be set up still gets its error into `status`; an
// auth-failed one stays so, with its alert ticket.
void record_setup_error(const PassInput& in, const Status& s) {
  in.store.update_mailbox_state(in.mailbox.name, [&](MailboxState& st) {
    if (st.state != MailboxStatus::kAuthFailed) st.state = MailboxStatus::kError;
    st.last_run = format_utc(in.shared.clock->now());
    st.imported = 0;
    st.skipped.clear();
    st.last_error = in.shared.scrub(s.message());
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

// The connector for the pass: the kept one, or a new one.
Result<std::unique_ptr<Mailbox>> connector(const PassInput& in) {
  if (in.keep != nullptr && *in.keep) return std::move(*in.keep);
  if (!in.setup.make_mailbox) {
    return Status(ErrorKind::kInternal, "the runner was given no connector factory");
  }
  return in.setup.make_mailbox(in.mailbox);
}

void sync_with(const PassInput& in, Mailbox& mbx, PassReport& report) {
  SyncOptions opts;
  opts.progress = in.progress;
  Shared& shared = in.shared;
  opts.monitor.now = [&shared] { return shared.clock->now(); };
  opts.monitor.scrub = [&shared](std::string_view text) { return shared.scrub(text); };
  opts.tracking_secret = in.setup.tracking_secret;
  opts.ignore_throttle = in.named;
  opts.stop_requested = in.stop_requested;
  auto result = sync_mailbox(mbx, in.mailbox, in.setup.config, in.store, opts);
  if (result.ok()) report.stats = *result;
  else report.status = result.status();
}

}  // namespace

PassReport run_pass(const PassInput& in) {
  PassReport report;
  report.mailbox = in.mailbox.name;
  report.named = in.named;
  const auto now = in.shared.clock->now();
  auto before = in.store.get_mailbox_state(in.mailbox.name);
  if (!before.ok()) {
    report.status = before.status();
    return report;
  }
  // Decided before the connector exists, so that a paused mailbox is not even resolved.
  PassPlan plan = before_pass(*before, in.setup.config.monitor, now);
  if (plan.kind == PassPlan::Kind::kPaused) {
    report.paused = plan.message;
    return report;
  }
  // The server asked for a pause (Graph Retry-After, POP3 [IN-USE]): honoured unless the
  // administrator named the mailbox, and said either way.
  if (auto until = parse_utc(before->throttled_until); until && *until > now) {
    report.throttled = fmt::format("throttled until {} (the server asked for a pause); {}",
                                   before->throttled_until,
                                   in.named ? "synced anyway because it was named"
                                            : "not contacted — name it to sync it now");
    if (!in.named) return report;
  }
  auto mbx = connector(in);
  if (!mbx.ok()) {
    report.status = mbx.status();
    if (report.status.kind() != ErrorKind::kCancelled) record_setup_error(in, report.status);
    return report;
  }
  sync_with(in, **mbx, report);
  if (in.keep != nullptr && report.status.ok() && (*mbx)->capabilities().push) {
    *in.keep = std::move(*mbx);
  } else {
    (*mbx)->close();
  }
  auto after = in.store.get_mailbox_state(in.mailbox.name);
  if (after.ok()) report.monitor = monitor_change(*before, *after);
  return report;
}

Result<FlushStats> flush_outbox(const RunnerSetup& setup, Store& store, Shared& shared) {
  if (!setup.make_senders) return FlushStats{};
  OutboxOptions options;
  options.scrub = [&shared](std::string_view text) { return shared.scrub(text); };
  options.now = [&shared] { return shared.clock->now(); };
  if (shared.options.jitter) options.jitter = shared.options.jitter;
  Outbox outbox(store, setup.config, setup.tracking_secret, options);
  return outbox.flush(setup.make_senders(store));
}

double Shared::jitter() {
  if (options.jitter) return options.jitter();
  std::lock_guard lock(jitter_mu);
  return std::uniform_real_distribution<double>(0.0, 1.0)(random);
}

Status SmallThread::start(std::function<void()> body, size_t stack) {
  body_ = std::move(body);
  pthread_attr_t attr;
  if (pthread_attr_init(&attr) != 0) return Status(ErrorKind::kInternal, "pthread_attr_init");
  pthread_attr_setstacksize(&attr, std::max<size_t>(stack, PTHREAD_STACK_MIN));
  int rc = pthread_create(&thread_, &attr, &SmallThread::trampoline, this);
  pthread_attr_destroy(&attr);
  if (rc != 0) {
    return Status(ErrorKind::kInternal, fmt::format("cannot start a worker thread (error {})", rc));
  }
  started_ = true;
  return Status::Ok();
}

void* SmallThread::trampoline(void* arg) {
  auto* self = static_cast<SmallThread*>(arg);
  self->body_();
  return nullptr;
}

void SmallThread::join() {
  if (!started_) return;
  pthread_join(thread_, nullptr);
  started_ = false;
}

}  // namespace mb::runner_internal
