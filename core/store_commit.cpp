// File: core/store_commit.cpp — the Store's atomic ingest commit: a message's ticket or note,
// attachments, extra notes, outbox rows and ledger row in one transaction, and the fsync that
// makes the commits so far durable.
#include "core/store.h"

#include <utility>

#include "core/internal/sqlite.h"
#include "core/internal/store_util.h"

namespace mb {

using internal::Transaction;

Status Store::make_durable() {
  // Under synchronous=FULL a WAL commit is fsynced, and the fsync covers every frame before
  // it. The barrier row guarantees the commit writes a frame (an empty one would not sync).
  MB_RETURN_IF_ERROR(internal::exec(db_, "PRAGMA synchronous = FULL"));
  Status s = internal::write_alone(db_, [&] {
    return internal::exec(db_, "UPDATE durability SET barrier = barrier + 1 WHERE id = 1");
  });
  Status back = internal::exec(db_, "PRAGMA synchronous = NORMAL");
  MB_RETURN_IF_ERROR(s);
  return back;
}

// Writes the ticket or note of a non-skipped commit; the caller owns the transaction.
Result<CommitResult> Store::commit_content(const MessageCommit& c, const std::string& raw) {
  CommitResult res;
  res.ticket_id = c.ticket_id;
  if (res.ticket_id == 0) {
    MB_RETURN_IF_ERROR(fault("ticket"));
    MB_ASSIGN_OR_RETURN(id, insert_ticket(c.new_ticket));
    res.ticket_id = id;
  }
  MB_RETURN_IF_ERROR(fault("note"));
  MB_ASSIGN_OR_RETURN(note_id, insert_note(res.ticket_id, c.note, &raw));
  res.note_id = note_id;
  for (const auto& a : c.attachments) {
    MB_RETURN_IF_ERROR(fault("attachment"));
    MB_RETURN_IF_ERROR(insert_attachment(note_id, a));
  }
  for (const auto& n : c.extra_notes) {
    MB_RETURN_IF_ERROR(fault("extra-note"));
    MB_ASSIGN_OR_RETURN(extra_id, insert_note(res.ticket_id, n, nullptr));
    (void)extra_id;
  }
  for (OutboxRow row : c.outbox) {
    MB_RETURN_IF_ERROR(fault("outbox"));
    if (row.note_id == 0) row.note_id = note_id;
    if (row.ticket_id == 0) row.ticket_id = res.ticket_id;
    MB_ASSIGN_OR_RETURN(outbox_id, insert_outbox(row));
    (void)outbox_id;
  }
  return res;
}

Result<CommitResult> Store::commit_message(const MessageCommit& c, const std::string& raw) {
  MB_ASSIGN_OR_RETURN(tx, Transaction::begin_immediate(db_));
  MB_ASSIGN_OR_RETURN(existing, find_ledger(c.mailbox, c.key));
  if (existing) {
    return CommitResult{existing->ticket_id, existing->note_id, true};
  }
  LedgerEntry e{c.mailbox, c.key, c.sha256, "skipped", c.skip_reason, 0, 0, false,
                c.post_action};
  CommitResult res;
  std::optional<LedgerEntry> same_bytes;
  if (!c.skip && !c.sha256.empty()) {
    MB_ASSIGN_OR_RETURN(found, find_ledger_by_sha(c.mailbox, c.sha256));
    same_bytes = std::move(found);
  }
  if (same_bytes) {
    // Another process recorded these bytes under another key since the caller looked.
    e.reason = "duplicate";
    e.ticket_id = same_bytes->ticket_id;
    e.note_id = same_bytes->note_id;
    e.post_action = same_bytes->post_action;
    res = {same_bytes->ticket_id, same_bytes->note_id, true};
  } else if (c.skip) {
    e.ticket_id = c.ticket_id;  // a duplicate names its original's ticket and note
    e.note_id = c.note.id;
  } else {
    MB_ASSIGN_OR_RETURN(written, commit_content(c, raw));
    res = written;
    e.outcome = c.ticket_id == 0 ? "ticket" : "note";
    e.reason.clear();
    e.ticket_id = res.ticket_id;
    e.note_id = res.note_id;
  }
  MB_RETURN_IF_ERROR(fault("ledger"));
  MB_RETURN_IF_ERROR(insert_ledger(e));
  MB_RETURN_IF_ERROR(fault("commit"));
  MB_RETURN_IF_ERROR(tx.commit());
  return res;
}

}  // namespace mb
