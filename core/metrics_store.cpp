// File: core/metrics_store.cpp — metrics::render(Store*): the registry's families plus what
// the store holds, read at scrape time.
#include <spdlog/spdlog.h>

#include <chrono>

#include "core/metrics.h"
#include "core/store.h"
#include "core/utc.h"

namespace mb::metrics {
namespace {

double epoch_seconds(std::chrono::system_clock::time_point t) {
  return static_cast<double>(
      std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count());
}

Status collect_outbox(Store& store, std::vector<Family>& out) {
  auto summary = store.outbox_summary();
  if (!summary.ok()) return summary.status();
  Family depth{"mailbridge_outbox_depth", "Outbox messages by state.", Type::kGauge, {}};
  for (const auto& [state, n] : summary->by_state) {
    depth.samples.push_back({{{"state", state}}, static_cast<double>(n)});
  }
  double age = 0;
  if (auto oldest = parse_utc(summary->oldest_unsent)) {
    auto now = std::chrono::system_clock::now();
    age = std::max(0.0, epoch_seconds(now) - epoch_seconds(*oldest));
  }
  out.push_back(std::move(depth));
  out.push_back({"mailbridge_outbox_oldest_queued_age_seconds",
                 "Age of the oldest outbox message not sent yet (queued or sending); 0 when "
                 "there is none.",
                 Type::kGauge,
                 {{{}, age}}});
  return Status::Ok();
}

Status collect_mailboxes(Store& store, std::vector<Family>& out) {
  auto states = store.list_mailbox_states();
  if (!states.ok()) return states.status();
  Family last{"mailbridge_last_success_timestamp_seconds",
              "When the mailbox last finished a pass without an error (Unix time).",
              Type::kGauge, {}};
  for (const auto& m : *states) {
    if (auto t = parse_utc(m.last_success)) {
      last.samples.push_back({{{"mailbox", m.name}}, epoch_seconds(*t)});
    }
  }
  out.push_back(std::move(last));
  return Status::Ok();
}

}  // namespace

std::string render(Store* store) {
  std::vector<Family> extra;
  if (store != nullptr) {
    Status s = collect_outbox(*store, extra);
    if (s.ok()) s = collect_mailboxes(*store, extra);
    if (!s.ok()) {
      spdlog::warn("metrics: cannot read the store: {}", s.to_string());
      extra.clear();
    }
    extra.push_back({"mailbridge_store_up",
                     "1 when the store could be read for this scrape, else 0.", Type::kGauge,
                     {{{}, s.ok() ? 1.0 : 0.0}}});
  }
  return render_families(extra);
}

}  // namespace mb::metrics
