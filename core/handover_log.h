// File: core/handover_log.h — the outbox's hand-over log: one small file per sending
// process, beside the store, holding the id of the last outbox message whose end that
// process wrote to a server.
//
// Why (docs/reliability.md, "The outbox"): after SMTP's final "." is written, the server may
// keep the message whatever becomes of us. The outbox records that instant in the store
// (handed_over_at), but a SQLite commit takes tens of microseconds, and a crash inside them
// would find no record and send the message again. An 8-byte pwrite into a file opened
// beforehand takes a few: the log is written first, right after the "." and before the
// store, so a crash leaves a second copy only if it lands between those two system calls.
// SIGKILL loses nothing written to the page cache, so no fsync is needed for that promise
// (power loss is what the store's own durability rules cover).
//
//   HandoverLog log(HandoverLog::path_for(store_dir, owner));
//   log.starting(row.id);      // before the send: "row N, end not written yet"
//   log.handed_over(row.id);   // right after the "."
//   HandoverLog::last_handed_over(path) == row.id   // in a later process, for a dead owner
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "core/status.h"

namespace mb {

class HandoverLog {
 public:
  // The log of the process `owner` ("host:pid") for the store at `store_path`:
  // "<store_path>-handover-<owner, made file-safe>". Empty for an in-memory store.
  static std::string path_for(const std::string& store_path, const std::string& owner);

  // Opens (creating, mode 0600) lazily at the first write; never throws. A log that cannot
  // be written is reported once (spdlog) and the outbox falls back to the store's record.
  explicit HandoverLog(std::string path);
  ~HandoverLog();
  HandoverLog(const HandoverLog&) = delete;
  HandoverLog& operator=(const HandoverLog&) = delete;

  // Before a send of outbox message `id`: whatever the log said before no longer holds.
  void starting(int64_t id) { write(-id); }
  // Right after the end of message `id` was written to the server.
  void handed_over(int64_t id) { write(id); }
  // Closes and deletes the file (the process has recorded every outcome).
  void remove();

  // The id a (dead) process last wrote as handed over, or nullopt (no file, a send that
  // had only started, a file cut short). A log that exists but cannot be read is an error
  // (kInternal), never "nothing was handed over", which would send the message again.
  static Result<std::optional<int64_t>> last_handed_over(const std::string& path);
  static void remove_file(const std::string& path);

 private:
  void write(int64_t value);

  std::string path_;
  int fd_ = -1;
  bool failed_ = false;
};

}  // namespace mb
