// File: core/cancel.h — wake a blocked worker: the service's stop and reload never wait for
// a time-out.
//
// A Cancel is a one-shot flag with a file descriptor that becomes readable when it fires.
// The service gives each mailbox worker its own Cancel and installs it for the worker's
// thread with a CancelScope; every blocking wait of that thread then also wakes when it
// fires: core/net's reads, writes and connects (the descriptor joins their poll()),
// core/http's requests (cancelled through cpprestsdk's cancellation token), and
// Cancel::wait_until (the scheduler's sleeps). A woken operation returns
// ErrorKind::kCancelled, which nothing records as a failure of the server.
//
//   Cancel stop;
//   std::thread worker([&] {
//     CancelScope scope(&stop);
//     while (!stop.fired()) { run_pass(); stop.wait_until(next_due); }
//   });
//   stop.fire();      // from any thread, or from a signal-handling thread
//   worker.join();    // returns at once, not after the server's time-out
//
// Threading: fire(), fired(), wait_until() and on_fire() are thread-safe. fire() is not
// async-signal-safe: call it from a thread that waits for signals (sigwait), not from a
// handler.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>

#include "core/status.h"

namespace mb {

class Cancel {
 public:
  Cancel();
  ~Cancel();
  Cancel(const Cancel&) = delete;
  Cancel& operator=(const Cancel&) = delete;

  // Fires the flag (idempotent): wakes every wait on it and runs the on_fire callbacks once.
  void fire();
  bool fired() const;
  // Readable once fired; -1 when the process is out of descriptors (then waits fall back to
  // short slices, so a fire is still seen within 100 ms).
  int fd() const { return fd_; }
  // Sleeps until `deadline` or until fired; true when fired.
  bool wait_until(std::chrono::steady_clock::time_point deadline) const;
  // A callback run (once, on the firing thread) when the flag fires; at once when it has
  // already fired. Returns a handle for remove_callback(). Callbacks must not block.
  uint64_t on_fire(std::function<void()> callback);
  // After it returns the callback is not running and never will.
  void remove_callback(uint64_t handle);
  // The status a woken operation returns.
  static Status cancelled(const std::string& doing);

 private:
  int fd_ = -1;
  std::mutex callbacks_mu_;  // held by fire() while callbacks run
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  bool fired_ = false;
  uint64_t next_handle_ = 1;
  std::map<uint64_t, std::function<void()>> callbacks_;
};

// Installs a Cancel for the current thread for the scope's lifetime (nesting restores the
// outer one). current() is nullptr when none is installed.
class CancelScope {
 public:
  explicit CancelScope(const Cancel* cancel);
  ~CancelScope();
  CancelScope(const CancelScope&) = delete;
  CancelScope& operator=(const CancelScope&) = delete;
  static Cancel* current();

 private:
  Cancel* previous_;
};

}  // namespace mb
