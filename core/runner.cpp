// File: core/runner.cpp — the runner (core/runner.h): sync_once, the outbox flush, and the
// service's workers (core/internal/runner_worker.cpp) started, reloaded and stopped.
#include "core/runner.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <thread>

#include "core/internal/runner_parts.h"

namespace mb {

using runner_internal::MailboxWorker;
using runner_internal::OutboxWorker;
using runner_internal::Shared;
using runner_internal::Worker;

namespace {

class SystemClock : public RunnerClock {
 public:
  Clock::time_point now() override { return Clock::now(); }
  bool sleep_until(Clock::time_point at, const Cancel& cancel) override {
    // In slices, so that a change of the wall clock is noticed within a minute.
    for (;;) {
      const auto left = at - Clock::now();
      if (left <= left.zero()) return cancel.fired();
      const auto slice = std::min<Clock::duration>(left, std::chrono::minutes(1));
      const auto until = std::chrono::steady_clock::now() +
                         std::chrono::duration_cast<std::chrono::steady_clock::duration>(slice);
      if (cancel.wait_until(until)) return true;
    }
  }
};

}  // namespace

RunnerClock& system_runner_clock() {
  static SystemClock clock;
  return clock;
}

const char* to_string(MailboxActivity::Kind kind) {
  switch (kind) {
    case MailboxActivity::Kind::kStarting: return "starting";
    case MailboxActivity::Kind::kPolling: return "polling";
    case MailboxActivity::Kind::kIdle: return "idle";
    case MailboxActivity::Kind::kWaiting: return "waiting";
    case MailboxActivity::Kind::kBackoff: return "backoff";
    case MailboxActivity::Kind::kThrottled: return "throttled";
    case MailboxActivity::Kind::kPaused: return "paused";
    case MailboxActivity::Kind::kStopped: return "stopped";
  }
  return "starting";
}

struct Runner::Impl {
  Shared shared;
  std::mutex mu;  // the workers (start, reload, stop, snapshot)
  std::vector<std::unique_ptr<MailboxWorker>> workers;  // configuration order
  std::unique_ptr<OutboxWorker> outbox;
  bool running = false;

  Status start_mailbox(const std::string& name) {
    auto w = std::make_unique<MailboxWorker>(shared, name);
    MB_RETURN_IF_ERROR(w->start());
    workers.push_back(std::move(w));
    return Status::Ok();
  }
  void order_workers(const Config& config) {
    auto rank = [&config](const std::unique_ptr<MailboxWorker>& w) {
      auto it = std::find_if(config.mailboxes.begin(), config.mailboxes.end(),
                             [&w](const MailboxConfig& m) { return m.name == w->name(); });
      return it - config.mailboxes.begin();
    };
    std::stable_sort(workers.begin(), workers.end(),
                     [&](const auto& a, const auto& b) { return rank(a) < rank(b); });
  }
};

Runner::Runner(RunnerSetup setup, RunnerOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->shared.options = std::move(options);
  impl_->shared.clock =
      impl_->shared.options.clock ? impl_->shared.options.clock : &system_runner_clock();
  impl_->shared.setup = std::make_shared<const RunnerSetup>(std::move(setup));
}

Runner::~Runner() { stop(); }

Result<std::vector<PassReport>> Runner::sync_once(const std::vector<std::string>& names) {
  auto setup = impl_->shared.current_setup();
  const Config& config = setup->config;
  for (const auto& name : names) {
    if (!config.find_mailbox(name)) {
      return Status(ErrorKind::kConfig, fmt::format("no mailbox \"{}\" in {}", name, config.path));
    }
  }
  std::vector<const MailboxConfig*> chosen;
  for (const auto& m : config.mailboxes) {
    if (!m.enabled) continue;
    if (names.empty() || std::count(names.begin(), names.end(), m.name) > 0) chosen.push_back(&m);
  }
  std::vector<PassReport> reports(chosen.size());
  std::atomic<size_t> next{0};
  Shared& shared = impl_->shared;
  auto worker = [&] {
    for (size_t i; (i = next++) < chosen.size();) {
      const MailboxConfig& m = *chosen[i];
      reports[i].mailbox = m.name;
      reports[i].named = !names.empty();
      try {
        auto store = Store::open(config.store.path);
        if (!store.ok()) {
          reports[i].status = store.status();
          continue;
        }
        runner_internal::PassInput in{*setup,        m,  **store, shared,
                                      !names.empty(), {}, {},      nullptr};
        if (shared.options.progress) {
          in.progress = [&shared, &m](size_t done, size_t total) {
            shared.options.progress(m.name, done, total);
          };
        }
        reports[i] = runner_internal::run_pass(in);
      } catch (const std::exception& e) {
        reports[i].status =
            Status(ErrorKind::kInternal, std::string("unexpected exception: ") + e.what());
      }
    }
  };
  const size_t lanes = std::min(std::max<size_t>(shared.options.sync_once_parallel, 1),
                                chosen.size());
  std::vector<std::thread> threads;
  for (size_t i = 0; i < lanes; ++i) threads.emplace_back(worker);
  for (auto& t : threads) t.join();
  return reports;
}

Result<FlushStats> Runner::flush_outbox(Store& store) {
  auto setup = impl_->shared.current_setup();
  return runner_internal::flush_outbox(*setup, store, impl_->shared);
}

Status Runner::start() {
  std::lock_guard lock(impl_->mu);
  if (impl_->running) return Status::Ok();
  auto setup = impl_->shared.current_setup();
  impl_->running = true;
  impl_->workers.clear();
  impl_->outbox.reset();
  for (const auto& m : setup->config.mailboxes) {
    if (!m.enabled) continue;
    Status s = impl_->start_mailbox(m.name);
    if (!s.ok()) return s;
  }
  impl_->outbox = std::make_unique<OutboxWorker>(impl_->shared);
  return impl_->outbox->start();
}

void Runner::reload(RunnerSetup setup) {
  auto next = std::make_shared<const RunnerSetup>(std::move(setup));
  std::lock_guard lock(impl_->mu);
  auto previous = impl_->shared.current_setup();
  {
    std::lock_guard setup_lock(impl_->shared.setup_mu);
    impl_->shared.setup = next;
  }
  if (!impl_->running) return;
  // Workers whose mailbox is gone, disabled or changed stop together, as stop() does.
  std::vector<std::unique_ptr<MailboxWorker>> ending;
  std::vector<std::unique_ptr<MailboxWorker>> kept;
  for (auto& w : impl_->workers) {
    const MailboxConfig* now = next->config.find_mailbox(w->name());
    const MailboxConfig* was = previous->config.find_mailbox(w->name());
    if (now != nullptr && now->enabled && was != nullptr && same_settings(*was, *now)) {
      w->adopt(next);
      kept.push_back(std::move(w));
    } else {
      ending.push_back(std::move(w));
    }
  }
  Worker::stop_all(ending, impl_->shared.options.stop_grace);
  impl_->workers = std::move(kept);
  for (const auto& m : next->config.mailboxes) {
    if (!m.enabled) continue;
    bool running = std::any_of(impl_->workers.begin(), impl_->workers.end(),
                               [&m](const auto& w) { return w->name() == m.name; });
    if (running) continue;
    Status s = impl_->start_mailbox(m.name);
    if (!s.ok()) spdlog::error("mailbox {}: not started: {}", m.name, s.to_string());
  }
  impl_->order_workers(next->config);
}

void Runner::stop() {
  std::lock_guard lock(impl_->mu);
  if (!impl_->running) return;
  std::vector<Worker*> all;
  for (auto& w : impl_->workers) all.push_back(w.get());
  if (impl_->outbox) all.push_back(impl_->outbox.get());
  Worker::stop_all(all, impl_->shared.options.stop_grace);
  impl_->running = false;
}

std::vector<MailboxActivity> Runner::snapshot() const {
  std::lock_guard lock(impl_->mu);
  std::vector<MailboxActivity> out;
  for (const auto& w : impl_->workers) out.push_back(w->activity());
  return out;
}

}  // namespace mb
