// File: core/schedule.cpp — the service's schedule rules (core/schedule.h).
#include "core/schedule.h"

#include <algorithm>

#include "core/backoff.h"
#include "core/utc.h"

namespace mb {
namespace {

using std::chrono::milliseconds;

constexpr milliseconds kFirstRetry = std::chrono::seconds(15);
constexpr milliseconds kMaxBackoff = std::chrono::minutes(15);

}  // namespace

PassResult classify_pass(const Status& status, bool more) {
  if (status.ok()) return more ? PassResult::kMore : PassResult::kOk;
  switch (status.kind()) {
    case ErrorKind::kNetwork:
    case ErrorKind::kProtocol:
    case ErrorKind::kTls:
    case ErrorKind::kBusy:  // the store's writers queued past the wait: retry soon
      return PassResult::kTransient;
    case ErrorKind::kCancelled:
      return PassResult::kCancelled;
    default:
      return PassResult::kOther;
  }
}

int64_t next_failure_count(int64_t previous, PassResult result) {
  if (result == PassResult::kTransient) return previous + 1;
  // A cancelled pass says nothing about the server: the count stands.
  if (result == PassResult::kCancelled || result == PassResult::kNone) return previous;
  return 0;
}

const char* to_string(NextPass::Why why) {
  switch (why) {
    case NextPass::Why::kDue: return "due";
    case NextPass::Why::kPoll: return "poll";
    case NextPass::Why::kBackoff: return "backoff";
    case NextPass::Why::kThrottled: return "throttled";
    case NextPass::Why::kPaused: return "paused";
  }
  return "due";
}

milliseconds poll_delay(std::chrono::seconds poll_interval, double jitter) {
  const double u = std::clamp(jitter, 0.0, 1.0);
  const milliseconds base = poll_interval;
  return base + milliseconds(static_cast<int64_t>(static_cast<double>(base.count()) * u / 10));
}

milliseconds backoff_cap(std::chrono::seconds poll_interval) {
  const milliseconds poll = poll_interval;
  return std::max(poll, std::min(poll * 8, kMaxBackoff));
}

milliseconds backoff_delay(std::chrono::seconds poll_interval, int64_t failures, double jitter) {
  const milliseconds poll = poll_interval;
  const Backoff<milliseconds> b{std::min(poll, kFirstRetry), backoff_cap(poll_interval),
                                Jitter::kEqual};
  return b.delay(std::max<int64_t>(failures, 1) - 1, jitter);
}

NextPass plan_next_pass(const MailboxConfig& mailbox, const MonitorConfig& monitor,
                        const MailboxState& state, const LastPass& last, double jitter,
                        Clock::time_point now) {
  PassPlan probe = before_pass(state, monitor, now);
  if (probe.kind == PassPlan::Kind::kPaused) return {NextPass::Why::kPaused, probe.next_probe};
  if (probe.kind == PassPlan::Kind::kProbe) return {NextPass::Why::kDue, now};
  if (auto until = parse_utc(state.throttled_until); until && *until > now) {
    return {NextPass::Why::kThrottled, *until};
  }
  switch (last.result) {
    case PassResult::kNone:
    case PassResult::kMore:
    case PassResult::kCancelled:
      return {NextPass::Why::kDue, now};
    case PassResult::kTransient:
      return {NextPass::Why::kBackoff,
              last.finished + backoff_delay(mailbox.poll_interval, last.transient_failures,
                                            jitter)};
    case PassResult::kOk:
    case PassResult::kOther:
      break;
  }
  return {NextPass::Why::kPoll, last.finished + poll_delay(mailbox.poll_interval, jitter)};
}

}  // namespace mb
