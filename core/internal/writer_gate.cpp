// File: core/internal/writer_gate.cpp — the per-file FIFO writer gate (writer_gate.h).
#include "core/internal/writer_gate.h"

#include <fmt/format.h>

#include <iterator>
#include <map>

#include "core/cancel.h"

namespace mb::internal {
namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;

int64_t ms_since(steady_clock::time_point t) {
  return std::chrono::duration_cast<milliseconds>(steady_clock::now() - t).count();
}

}  // namespace

std::shared_ptr<WriterGate> WriterGate::for_file(const std::string& path) {
  if (path.empty()) return nullptr;
  // Gates of files no transaction uses any more are dropped as new ones are made: a gate
  // nobody references has nobody waiting, so nothing is lost.
  static std::mutex mu;
  static std::map<std::string, std::weak_ptr<WriterGate>> gates;
  std::lock_guard lock(mu);
  auto it = gates.find(path);
  if (it != gates.end()) {
    if (auto gate = it->second.lock()) return gate;
  }
  for (auto i = gates.begin(); i != gates.end();) {
    i = i->second.expired() ? gates.erase(i) : std::next(i);
  }
  auto gate = std::make_shared<WriterGate>(path);
  gates[path] = gate;
  return gate;
}

Status WriterGate::acquire(milliseconds wait) {
  {
    std::lock_guard lock(mu_);
    if (held_ && owner_ == std::this_thread::get_id()) return nested_error();
    if (!held_ && queue_.empty()) {
      held_ = true;
      owner_ = std::this_thread::get_id();
      held_since_ = steady_clock::now();
      return Status::Ok();
    }
  }
  return wait_in_queue(wait);
}

// The contended path: join the queue's end and wait for release() to hand the gate over,
// for the deadline, or for the thread's Cancel.
Status WriterGate::wait_in_queue(milliseconds wait) {
  Cancel* cancel = CancelScope::current();
  const std::string doing = "waiting for a write turn on store " + path_;
  if (cancel != nullptr && cancel->fired()) return Cancel::cancelled(doing);
  Waiter w;
  w.thread = std::this_thread::get_id();
  // Registered before the queue's lock is taken: on_fire runs the callback at once (on this
  // thread) when the Cancel has fired meanwhile, and the callback takes that lock.
  const uint64_t handle = cancel == nullptr ? 0 : cancel->on_fire([this, &w] {
    std::lock_guard lock(mu_);
    w.cancelled = true;
    w.cv.notify_one();
  });
  Status result;
  {
    std::unique_lock lock(mu_);
    if (held_ && owner_ == w.thread) {
      result = nested_error();
    } else if (!held_ && queue_.empty()) {  // freed meanwhile
      held_ = true;
      owner_ = w.thread;
      held_since_ = steady_clock::now();
    } else {
      auto me = queue_.insert(queue_.end(), &w);
      // The bound is on a stalled queue, not on its length: while writers ahead keep taking
      // their turns (a thousand workers committing at start-up), the wait goes on; it ends
      // when one turn has lasted `wait` (a stuck transaction).
      while (!w.granted && !w.cancelled) {
        if (w.cv.wait_until(lock, held_since_ + wait) == std::cv_status::timeout &&
            !w.granted && !w.cancelled && steady_clock::now() - held_since_ >= wait) {
          break;
        }
      }
      // Granted wins over a late cancel or deadline: the gate is ours; the caller's next wait
      // sees the Cancel.
      if (!w.granted) {
        const size_t ahead = static_cast<size_t>(std::distance(queue_.begin(), me));
        queue_.erase(me);
        result = w.cancelled ? Cancel::cancelled(doing) : deadline_error(wait, ahead);
      }
    }
  }
  if (cancel != nullptr) cancel->remove_callback(handle);
  return result;
}

void WriterGate::release() {
  std::lock_guard lock(mu_);
  if (queue_.empty()) {
    held_ = false;
    owner_ = std::thread::id();
    return;
  }
  Waiter* next = queue_.front();
  queue_.pop_front();
  owner_ = next->thread;
  held_since_ = steady_clock::now();
  next->granted = true;
  next->cv.notify_one();
}

size_t WriterGate::waiting() const {
  std::lock_guard lock(mu_);
  return queue_.size();
}

bool WriterGate::held() const {
  std::lock_guard lock(mu_);
  return held_;
}

Status WriterGate::nested_error() const {
  return Status(ErrorKind::kInternal,
                fmt::format("store {}: this thread already holds a write transaction on another "
                            "connection to this file; a second one would wait for itself "
                            "(nested write transactions must share one connection)",
                            path_));
}

Status WriterGate::deadline_error(milliseconds wait, size_t ahead) const {
  return Status(ErrorKind::kBusy,
                fmt::format("store {}: no write turn: the writer ahead has held the store "
                            "for {} ms, past the {} ms a turn may take ({} writer{} of this "
                            "process still ahead)",
                            path_, ms_since(held_since_), wait.count(), ahead + 1,
                            ahead == 0 ? "" : "s"));
}

}  // namespace mb::internal
