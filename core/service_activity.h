// File: core/service_activity.h — persists what the service's mailbox workers are doing
// (store v6, service_activity) so that `mailbridge status`, another process, can show it.
//
// record() is called from the workers (the runner's on_activity) and never waits for
// SQLite: it keeps the latest record of each mailbox, and only when its activity or last
// error changed (a new next_run alone is not worth a write). One writer thread with its own
// store connection writes what changed at most once per `interval`, every mailbox in one
// transaction, so 1,000 mailboxes cost one write a second at most.
//
//   auto writer = ServiceActivityWriter::start(cfg.store.path, getpid(), {});
//   options.on_activity = [&](const MailboxActivity& a) { (*writer)->record(to_record(a)); };
//   ...
//   (*writer)->stop();  // writes what is left
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include "core/status.h"
#include "core/store.h"

namespace mb {

class ServiceActivityWriter {
 public:
  struct Options {
    std::chrono::milliseconds interval{1000};  // at most one write transaction per interval
  };
  // Opens its own connection to the store, deletes the rows an earlier service left and
  // starts the writer thread.
  static Result<std::unique_ptr<ServiceActivityWriter>> start(const std::string& store_path,
                                                              int64_t pid, Options options);
  ~ServiceActivityWriter();  // stop()
  ServiceActivityWriter(const ServiceActivityWriter&) = delete;
  ServiceActivityWriter& operator=(const ServiceActivityWriter&) = delete;

  // Thread-safe, never blocks on the store. record.pid is set to the writer's pid.
  void record(ServiceActivityRecord record);
  // A mailbox removed from the configuration: its row is deleted.
  void forget(const std::string& mailbox);
  // Writes what is pending and ends the writer thread. Idempotent.
  void stop();
  // Write transactions so far (tests).
  uint64_t writes() const;

 private:
  ServiceActivityWriter(std::unique_ptr<Store> store, int64_t pid, Options options);
  void loop();
  void write_pending();

  std::unique_ptr<Store> store_;  // the writer thread's only
  const int64_t pid_;
  const Options options_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::map<std::string, ServiceActivityRecord> last_;     // as last accepted
  std::map<std::string, ServiceActivityRecord> pending_;  // not yet written
  std::set<std::string> forgotten_;
  uint64_t writes_ = 0;
  std::thread thread_;
};

}  // namespace mb
