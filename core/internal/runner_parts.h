// File: core/internal/runner_parts.h — the pieces of core/runner.cpp: one mailbox's pass
// (shared by sync_once and the service's workers), a thread with a small stack, and the
// service's workers (runner_worker.cpp).
#pragma once

#include <pthread.h>

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <random>
#include <string>

#include "core/cancel.h"
#include "core/runner.h"
#include "core/schedule.h"

namespace mb::runner_internal {

// A worker's stack: enough for a pass (parsing, TLS, SQLite keep their big buffers on the
// heap), small enough that a thousand mailboxes cost little address space. Sanitizers need
// much more.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
inline constexpr size_t kWorkerStack = size_t{8} << 20;
#else
inline constexpr size_t kWorkerStack = size_t{512} << 10;
#endif

// A joinable thread with a chosen stack size (std::thread cannot set one).
class SmallThread {
 public:
  SmallThread() = default;
  ~SmallThread() { join(); }
  SmallThread(const SmallThread&) = delete;
  SmallThread& operator=(const SmallThread&) = delete;
  Status start(std::function<void()> body, size_t stack = kWorkerStack);
  void join();

 private:
  static void* trampoline(void* arg);
  pthread_t thread_{};
  bool started_ = false;
  std::function<void()> body_;
};

// What the runner shares with its workers.
struct Shared {
  RunnerOptions options;
  RunnerClock* clock = nullptr;
  std::mutex setup_mu;
  std::shared_ptr<const RunnerSetup> setup;  // the current one (reload replaces it)
  std::mutex jitter_mu;
  std::mt19937_64 random{std::random_device{}()};

  std::shared_ptr<const RunnerSetup> current_setup() {
    std::lock_guard lock(setup_mu);
    return setup;
  }
  double jitter();
  std::string scrub(std::string_view text) const {
    return options.scrub ? options.scrub(text) : std::string(text);
  }
};

// One mailbox's pass, as `sync` has always made it: the monitor's pause, the server's
// throttle (honoured unless `named`), the connector made (or the one in `*keep` reused),
// sync_mailbox, and what the pass did to the auth-failure alert.
struct PassInput {
  const RunnerSetup& setup;
  const MailboxConfig& mailbox;
  Store& store;
  Shared& shared;
  bool named = false;
  std::function<void(size_t, size_t)> progress;
  std::function<bool()> stop_requested;
  // The service's connection, kept open between passes when the connector can push and the
  // pass went well; nullptr: closed after the pass.
  std::unique_ptr<Mailbox>* keep = nullptr;
};
PassReport run_pass(const PassInput& in);

// A mailbox worker's or the outbox worker's life: started, asked to stop, woken, joined.
class Worker {
 public:
  explicit Worker(Shared& shared) : shared_(shared) {}
  virtual ~Worker() = default;
  Status start();
  // Asks the worker to finish what it has in hand; wakes its sleeps and push waits at once.
  void request_stop() { stop_.fire(); }
  // Wakes every blocking read of the worker (after the grace).
  void cancel() {
    stop_.fire();
    hard_.fire();
  }
  bool ended() const { return ended_.load(); }
  void join() { thread_.join(); }
  // Waits until every worker of `workers` ended or `grace` passed, cancels the rest, joins
  // them all.
  template <typename List>
  static void stop_all(const List& workers, std::chrono::milliseconds grace);

 protected:
  virtual void run() = 0;
  Shared& shared_;
  Cancel stop_;  // the stop request: wakes sleeps and push waits
  Cancel hard_;  // installed for the thread: wakes every blocking read

 private:
  static std::mutex end_mu_;
  static std::condition_variable end_cv_;
  std::atomic<bool> ended_{false};
  SmallThread thread_;
};

class MailboxWorker : public Worker {
 public:
  MailboxWorker(Shared& shared, std::string name);
  const std::string& name() const { return activity_.mailbox; }
  MailboxActivity activity() const;
  // Reload: the same settings under a new setup (used from the next pass on).
  void adopt(std::shared_ptr<const RunnerSetup> setup);

 protected:
  void run() override;

 private:
  enum class Wake { kStop, kPass, kPlan };
  void loop();
  Wake wait_for(const NextPass& next);
  Wake wait_on_server(const NextPass& next);
  void pass(const RunnerSetup& setup, const MailboxConfig& m);
  void set_activity(MailboxActivity::Kind kind, Clock::time_point next_run);
  void set_error(const std::string& error);
  std::shared_ptr<const RunnerSetup> setup();

  mutable std::mutex mu_;
  MailboxActivity activity_;
  std::shared_ptr<const RunnerSetup> adopted_;  // set by adopt(), taken by the next pass
  std::shared_ptr<const RunnerSetup> setup_;    // the one the current connection came from
  std::unique_ptr<Store> store_;
  std::unique_ptr<Mailbox> mailbox_;  // open between passes when the connector pushes
  bool push_ = false;                 // wait_for_change works on mailbox_
  bool changed_ = false;              // the server reported news: pass at once
  bool trim_pending_ = false;         // a pass ran since the last malloc_trim
  LastPass last_;
};

class OutboxWorker : public Worker {
 public:
  using Worker::Worker;

 protected:
  void run() override;

 private:
  bool due(Store& store, Clock::time_point now, bool first, Clock::time_point& next);
};

template <typename List>
void Worker::stop_all(const List& workers, std::chrono::milliseconds grace) {
  for (const auto& w : workers) w->request_stop();
  const auto deadline = std::chrono::steady_clock::now() + grace;
  {
    std::unique_lock lock(end_mu_);
    end_cv_.wait_until(lock, deadline, [&] {
      for (const auto& w : workers) {
        if (!w->ended()) return false;
      }
      return true;
    });
  }
  for (const auto& w : workers) w->cancel();
  for (const auto& w : workers) w->join();
}

// Flushes the outbox once through `store` (the caller's connection).
Result<FlushStats> flush_outbox(const RunnerSetup& setup, Store& store, Shared& shared);

}  // namespace mb::runner_internal
