// File: core/mailbox.h — the one interface every mail-reading connector implements.
//
// A connector (IMAP, POP3, EWS, Graph) lists the messages waiting in one folder of one
// mailbox, hands their raw RFC 5322 bytes to the caller, and applies the post-action the
// caller asks for. It knows nothing of tickets, the store or the ledger: exactly-once is
// the caller's job (core/ingest), which only asks for a post-action after its commit.
//
// Threading: a Mailbox is used by one thread at a time. Different Mailbox objects are
// independent and may run on different threads.
//
//   auto mbx = make_mailbox(config, secrets);   // connectors/registry.h
//   auto pending = mbx->list_pending(50, state);
//   mbx->fetch(pending->keys, [&](const std::string& key, Result<std::string> raw) {...});
//   mbx->apply({key}, PostAction::mark_read());
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"

namespace mb {

// One step of test-connection ("resolve", "connect", "tls", "sign-in", "open-folder",
// "count"). detail is for an administrator and never holds a secret.
struct StepReport {
  std::string name;
  bool ok = false;
  std::string detail;
};

struct ConnectionReport {
  std::vector<StepReport> steps;
  Status status;                        // the first failure, or OK
  std::optional<uint64_t> message_count;  // set when the "count" step ran
};

// What to do with a message on the server after its ticket or note is committed.
struct PostAction {
  enum class Kind { kMarkRead, kDelete, kMove, kLeave };
  Kind kind = Kind::kLeave;
  std::string folder;  // for kMove

  static PostAction mark_read() { return {Kind::kMarkRead, {}}; }
  static PostAction remove() { return {Kind::kDelete, {}}; }
  static PostAction move(std::string f) { return {Kind::kMove, std::move(f)}; }
  static PostAction leave() { return {Kind::kLeave, {}}; }
  std::string to_string() const;  // "mark-read", "delete", "move:Processed", "leave"
  bool operator==(const PostAction&) const = default;
};

// What Mailbox::wait_for_change() saw.
enum class ChangeWait {
  kChanged,      // the server reported new mail (or may have): run a pass now
  kTimedOut,     // the deadline passed without news
  kUnsupported,  // the connector cannot wait for news (POP3, Graph): poll on poll_interval
};

struct Capabilities {
  bool push = false;   // wait_for_change() works (IMAP: IDLE, or NOOP polling without it)
  bool move = false;   // server-side move without copy+delete
  bool delta = false;  // Graph delta
};

// The result of list_pending.
struct Pending {
  // Stable keys, oldest first: IMAP "UIDVALIDITY:UID", POP3 UIDL, Graph immutable id,
  // EWS ItemId. A key names the same message for as long as the server keeps it.
  std::vector<std::string> keys;
  // Opaque connector state to pass to the next list_pending once every key above has been
  // committed or deliberately skipped (IMAP: "UIDVALIDITY:highest UID"; Graph: deltaLink).
  std::string next_state;
  // True when more messages were waiting than `limit` allowed.
  bool more = false;
};

// Called once per requested key, in the order requested. `raw` holds the whole message or
// the error that affected only this message (scope kMessage):
//   - kTooLarge: the server reported a size over the connector's max_message_bytes
//     (IMAP RFC822.SIZE, POP3 LIST, Graph size) or the download passed it; the message was
//     not kept in memory. The ingest records it once as skipped "too-large".
//   - kInvalidInput: the message's bytes could not be read (e.g. a line over every bound,
//     broken framing). The ingest records it once as skipped "unreadable".
//   - any other kind: a transient failure of this message; it is tried again next pass. Returning a non-OK Status
// stops the fetch and fetch() returns it.
using FetchCallback = std::function<Status(const std::string& key, Result<std::string> raw)>;

class Mailbox {
 public:
  virtual ~Mailbox() = default;

  // Runs every step a sign-in needs and reports each; never throws; opens nothing that
  // outlives the call unless the connector caches its connection.
  virtual ConnectionReport test_connection() = 0;

  // Connects if needed and lists up to `limit` pending messages. `state` is the last
  // Pending::next_state the caller stored ("" on the first run). Which messages are pending
  // depends on the post-action the mailbox is configured with (e.g. IMAP mark-read: unseen).
  virtual Result<Pending> list_pending(size_t limit, const std::string& state) = 0;

  // Downloads the raw bytes of `keys` (pipelined where the protocol allows) without
  // changing any flag on the server, calling `cb` for each. Errors that break the
  // connection are returned (scope kConnection); the callback is not called for the rest.
  virtual Status fetch(const std::vector<std::string>& keys, const FetchCallback& cb) = 0;

  // Applies `action` to `keys`. Creates a missing move target. Idempotent: a key that is
  // already gone (deleted or moved by an earlier, interrupted run) is not an error.
  virtual Status apply(const std::vector<std::string>& keys, const PostAction& action) = 0;

  virtual Capabilities capabilities() const = 0;
  // Push: waits on the open connection (opened if needed) until the server reports new mail
  // in the folder, or until `deadline`. IMAP: IDLE (RFC 2177), re-issued before servers
  // drop it (at least every 9 minutes), a NOOP poll where IDLE is absent. Woken at once by
  // the thread's Cancel (core/cancel.h) with kCancelled. An error that broke the connection
  // is returned (the caller reconnects with backoff and resumes from its stored state).
  // The default: kUnsupported.
  virtual Result<ChangeWait> wait_for_change(std::chrono::steady_clock::time_point deadline) {
    (void)deadline;
    return ChangeWait::kUnsupported;
  }

  // Logs out and closes the connection; safe to call more than once.
  virtual void close() = 0;
};

}  // namespace mb
