// File: core/internal/writer_gate.h — the in-process writer gate of a store file: one FIFO
// queue per database file, shared by every connection of this process to it, that a write
// transaction joins before BEGIN IMMEDIATE and leaves at COMMIT or ROLLBACK.
//
// SQLite has one writer per database; a connection that finds the write lock taken sleeps and
// retries in its busy handler, which is no queue: with hundreds of threads contending (the
// service's mailbox workers) some lose every retry and fail after the busy time-out while
// others write many times. Within a process the gate makes the writers take turns in arrival
// order instead, so a writer waits for the transactions ahead of it and no longer; SQLite's
// busy time-out still covers the other processes (the CLI beside the service, a backup).
//
//   auto gate = WriterGate::for_file("/var/lib/mailbridge/mailbridge.db");
//   MB_RETURN_IF_ERROR(gate->acquire(std::chrono::seconds(30)));   // kBusy past the wait
//   ... BEGIN IMMEDIATE … COMMIT ...
//   gate->release();
//
// acquire() fails rather than waits: with kBusy when one turn ahead lasts past the wait
// (naming the store, the wait and the queue; a long queue that moves is no error), with kCancelled when the thread's Cancel (core/cancel.h) fires,
// and with kInternal at once when the calling thread already holds the gate (a second write
// transaction on another connection of the same file, which would wait for itself forever).
// Threading: every member is thread-safe. Transaction (core/internal/sqlite.h) is the user.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "core/status.h"

namespace mb::internal {

class WriterGate {
 public:
  // The gate of the database file `path` (as sqlite3_db_filename gives it), made on first use.
  // nullptr for "" (an in-memory or temporary database: no other connection shares it).
  static std::shared_ptr<WriterGate> for_file(const std::string& path);

  explicit WriterGate(std::string path) : path_(std::move(path)) {}
  WriterGate(const WriterGate&) = delete;
  WriterGate& operator=(const WriterGate&) = delete;

  // Waits for this thread's turn for as long as the queue moves: kBusy once the writer
  // ahead has held the gate for `wait` (a stalled turn, not a long queue). OK: the caller
  // holds the gate and must release() it exactly once.
  Status acquire(std::chrono::milliseconds wait);
  // Hands the gate to the longest waiting thread, if any.
  void release();

  // For tests and diagnostics: threads waiting now, and whether someone holds the gate.
  size_t waiting() const;
  bool held() const;

 private:
  struct Waiter {
    std::condition_variable cv;
    std::thread::id thread;
    bool granted = false;    // release() handed the gate to this waiter
    bool cancelled = false;  // the thread's Cancel fired
  };
  Status wait_in_queue(std::chrono::milliseconds wait);
  Status nested_error() const;
  Status deadline_error(std::chrono::milliseconds wait, size_t ahead) const;

  const std::string path_;
  mutable std::mutex mu_;
  bool held_ = false;
  std::thread::id owner_;
  std::chrono::steady_clock::time_point held_since_{};
  std::list<Waiter*> queue_;  // oldest first
};

}  // namespace mb::internal
