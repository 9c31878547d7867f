// File: core/outbox.h — the durable outbox (SPEC §4): tracked mail is queued in the store
// with its email-out note, then sent by flush() through a Sender, retried with exponential
// backoff and jitter on transient failures, and parked with its error when a failure is
// permanent or the attempts run out.
//
// Crash safety (docs/reliability.md): flush() claims rows as `sending` in one write
// transaction before it talks to a server; the moment the message's end is written to the
// server (SMTP's final ".") is written to this process's hand-over log (core/handover_log.h,
// one pwrite) and then committed as handed_over_at, before the server's answer is read; and
// each outcome is committed in its own transaction right after that answer. A `sending` row
// whose claimer is gone (its process no longer runs, or the claim is older than the lease)
// was interrupted: when neither handed_over_at nor the dead process's log names it, the
// server never had the whole message and recover() queues it again (same bytes, same
// Message-ID); otherwise the message is in doubt and [outbox] in_doubt decides (by default:
// sent, marked unconfirmed). So a crash loses nothing, and sends a message twice only if it
// lands between the write of the "." and the pwrite of the log.
//
//   mb::Outbox outbox(*store, config, secret);
//   auto row = outbox.queue_tracked({.ticket_id = 12, .user = "ann@corp.example",
//                                    .to = {{"", "bob@example.com"}}, .subject = "Printer",
//                                    .text = "Fixed?"});
//   auto stats = outbox.flush(make_sender_for_name);
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/compose.h"
#include "core/config.h"
#include "core/handover_log.h"
#include "core/message.h"
#include "core/sender.h"
#include "core/status.h"
#include "core/store.h"

namespace mb {

struct TrackedMail {
  int64_t ticket_id = 0;
  std::string sender;              // [[sender]] name; empty: [tracking] sender
  std::string user;                // the technician it is sent for (a [[user]]); may be empty
  std::vector<Address> to;
  std::vector<Address> cc;
  std::string subject;
  std::string text;
  std::string html;
  std::vector<OutgoingAttachment> attachments;
};

struct OutboxOptions {
  std::function<std::chrono::system_clock::time_point()> now;  // empty: the system clock
  std::function<double()> jitter;  // uniform in [0, 1); empty: a CSPRNG-seeded generator
  std::string owner;               // claimed_by; empty: "<host>:<pid>"
  // A `sending` row claimed longer ago than this is taken back even if its claimer still
  // seems alive (a recycled pid): longer than any send can take under the timeouts.
  std::chrono::seconds lease{900};
  // Whether the claimer `owner` still runs; empty: same host and kill(pid, 0) succeeds.
  std::function<bool(const std::string& owner)> owner_alive;
  // Applied to every error text before it is stored (auth/secrets Redactor in the CLI).
  std::function<std::string(std::string_view)> scrub;
};

struct FlushStats {
  int64_t sent = 0;                // every recipient accepted or refused for good
  int64_t retrying = 0;            // queued again after a transient failure
  int64_t parked = 0;
  int64_t recovered = 0;           // interrupted sends taken back first
  int64_t unconfirmed = 0;         // counted in `sent`: in doubt, recorded as sent
  bool paused = false;             // nothing was sent: sending is paused
  std::vector<std::string> errors; // one line per failed attempt ("#12: network: …")
};

// Makes the Sender for a [[sender]] name (connectors/registry.h make_sender in the CLI).
using SenderFactory = std::function<Result<std::unique_ptr<Sender>>(const std::string& name)>;

class Outbox {
 public:
  // `tracking_secret`: the resolved [tracking] secret; tracked mail cannot be queued
  // without it (kConfig), everything else works.
  Outbox(Store& store, const Config& config, std::string tracking_secret,
         OutboxOptions options = {});

  // Composes and queues a tracked email about mail.ticket_id: its email-out note (with the
  // Message-ID) and the outbox row, in one transaction. kNotFound for an unknown ticket,
  // kConfig for a sender or From problem, kInvalidInput for header injection or bad input.
  Result<OutboxRow> queue_tracked(const TrackedMail& mail);

  // Sends what is due now, once: recovers interrupted rows, then claims batches until none
  // is due. Stops between batches when sending gets paused. Errors of single messages are
  // recorded on them and listed in FlushStats::errors; only store errors are returned.
  Result<FlushStats> flush(const SenderFactory& senders);

  // Rows left `sending` by a claimer that is gone: queued again, due now.
  Result<int64_t> recover();

  Status pause();
  Status resume();
  Result<bool> paused();
  // A parked (or waiting) message queued again, due now, with its attempts reset.
  // kNotFound for an unknown id; kRejected for one sent or being sent.
  Status retry(int64_t id);

  // The delay after the `attempts`-th failure: retry_initial · 2^(attempts−1), capped at
  // retry_max, then "equal jitter": half of it fixed, half scaled by `jitter` in [0, 1).
  std::chrono::seconds backoff(int64_t attempts, double jitter) const;

 private:
  std::chrono::system_clock::time_point now() const;
  std::string scrub(std::string_view text) const;
  void record_result(OutboxRow& row, const Result<SendResult>& result, FlushStats& stats);
  void schedule_retry(OutboxRow& row, const Status& why, FlushStats& stats);
  Status send_one(OutboxRow& row, Sender* sender, const Status& setup, FlushStats& stats);
  void resolve_in_doubt(OutboxRow& row, const std::string& why, FlushStats& stats);
  bool claimer_gone(const OutboxRow& row) const;

  Store& store_;
  const Config& config_;
  std::string secret_;
  OutboxOptions options_;
  HandoverLog log_;  // this process's hand-over log (core/handover_log.h)
};

// The forward of a tracked reply (SPEC §4) to `original.user`, through the [tracking]
// sender: "Fwd:" + the reply's subject, the reply's text, HTML and attachments, In-Reply-To
// the original. `source_key` makes queueing it idempotent. Not written to the store: the
// caller puts it in the reply's MessageCommit so both commit together.
// `reply` is the reply's note (author, text, html, message_id), `subject` its subject.
Result<OutboxRow> build_forward(const Config& config, const OutboxRow& original,
                                const Note& reply, const std::string& subject,
                                const std::vector<StoredAttachment>& attachments,
                                const std::string& source_key);

}  // namespace mb
