// File: core/cancel.cpp — the Cancel flag (an eventfd) and the thread's current one.
#include "core/cancel.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <vector>

namespace mb {
namespace {
thread_local Cancel* current_cancel = nullptr;
}  // namespace

Cancel::Cancel() : fd_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {}

Cancel::~Cancel() {
  if (fd_ >= 0) ::close(fd_);
}

void Cancel::fire() {
  // Held while the callbacks run, so that remove_callback() returns only once its callback
  // has finished or will never run: its owner may then be destroyed.
  std::lock_guard running(callbacks_mu_);
  std::map<uint64_t, std::function<void()>> callbacks;
  {
    std::lock_guard lock(mu_);
    if (fired_) return;
    fired_ = true;
    callbacks.swap(callbacks_);
  }
  if (fd_ >= 0) {
    uint64_t one = 1;
    // Only fails when the counter would overflow, which one write cannot do.
    [[maybe_unused]] ssize_t n = ::write(fd_, &one, sizeof one);
  }
  cv_.notify_all();
  for (auto& [handle, callback] : callbacks) callback();
}

bool Cancel::fired() const {
  std::lock_guard lock(mu_);
  return fired_;
}

bool Cancel::wait_until(std::chrono::steady_clock::time_point deadline) const {
  std::unique_lock lock(mu_);
  return cv_.wait_until(lock, deadline, [this] { return fired_; });
}

uint64_t Cancel::on_fire(std::function<void()> callback) {
  {
    std::lock_guard lock(mu_);
    if (!fired_) {
      uint64_t handle = next_handle_++;
      callbacks_.emplace(handle, std::move(callback));
      return handle;
    }
  }
  callback();
  return 0;
}

void Cancel::remove_callback(uint64_t handle) {
  std::lock_guard running(callbacks_mu_);
  std::lock_guard lock(mu_);
  callbacks_.erase(handle);
}

Status Cancel::cancelled(const std::string& doing) {
  return Status(ErrorKind::kCancelled, "interrupted while " + doing + ": stopped by the service (shutdown or reload)",
                ErrorScope::kConnection);
}

CancelScope::CancelScope(const Cancel* cancel) : previous_(current_cancel) {
  current_cancel = const_cast<Cancel*>(cancel);
}

CancelScope::~CancelScope() { current_cancel = previous_; }

Cancel* CancelScope::current() { return current_cancel; }

}  // namespace mb
