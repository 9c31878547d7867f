// File: core/store_outbox.cpp — the Store's durable outbox (store v4, v5; core/outbox.h drives
// it): queueing with its note, claiming, updating, the hand-over mark and the pause switch.
#include "core/store.h"

#include <sqlite3.h>

#include <utility>

#include "core/internal/sqlite.h"
#include "core/internal/store_util.h"
#include "core/utc.h"

namespace mb {

using internal::Stmt;
using internal::strings_from_json;
using internal::strings_to_json;
using internal::Transaction;

namespace {

constexpr std::pair<OutboxState, const char*> kOutboxStateNames[] = {
    {OutboxState::kQueued, "queued"},
    {OutboxState::kSending, "sending"},
    {OutboxState::kSent, "sent"},
    {OutboxState::kParked, "parked"},
};

constexpr const char* kOutboxColumns =
    "SELECT id, kind, sender, ifnull(ticket_id, 0), ifnull(note_id, 0), user, env_from, "
    "recipients, pending_recipients, to_display, subject, message_id, state, attempts, "
    "next_attempt_at, last_error, server_id, queued_only, recipient_results, claimed_by, "
    "claimed_at, ifnull(source_key, ''), created_at, sent_at, handed_over_at, unconfirmed";

Result<OutboxRow> outbox_from_row(const Stmt& st, bool with_raw) {
  OutboxRow r;
  r.id = st.col_int(0);
  r.kind = st.col_text(1);
  r.sender = st.col_text(2);
  r.ticket_id = st.col_int(3);
  r.note_id = st.col_int(4);
  r.user = st.col_text(5);
  r.env_from = st.col_text(6);
  r.recipients = strings_from_json(st.col_text(7));
  r.pending = strings_from_json(st.col_text(8));
  r.to = st.col_text(9);
  r.subject = st.col_text(10);
  r.message_id = st.col_text(11);
  const std::string state = st.col_text(12);
  auto parsed = parse_outbox_state(state);
  if (!parsed) {
    return Status(ErrorKind::kInternal, "outbox message " + std::to_string(r.id) +
                                            " is in state \"" + state +
                                            "\", not queued | sending | sent | parked");
  }
  r.state = *parsed;
  r.attempts = st.col_int(13);
  r.next_attempt_at = st.col_text(14);
  r.last_error = st.col_text(15);
  r.server_id = st.col_text(16);
  r.queued_only = st.col_int(17) != 0;
  r.recipient_results = st.col_text(18);
  r.claimed_by = st.col_text(19);
  r.claimed_at = st.col_text(20);
  r.source_key = st.col_text(21);
  r.created_at = st.col_text(22);
  r.sent_at = st.col_text(23);
  r.handed_over_at = st.col_text(24);
  r.unconfirmed = st.col_int(25) != 0;
  if (with_raw) r.raw = st.col_blob(26);
  return r;
}

// Runs an UPDATE in a write transaction of its own (write_alone); true when it changed a row.
Result<bool> run_counted(sqlite3* db, Stmt& st) {
  bool changed = false;
  MB_RETURN_IF_ERROR(internal::write_alone(db, [&] {
    MB_RETURN_IF_ERROR(st.run().prefixed("outbox"));
    changed = sqlite3_changes(db) > 0;
    return Status::Ok();
  }));
  return changed;
}

}  // namespace

std::string to_string(OutboxState state) {
  for (const auto& [value, name] : kOutboxStateNames) {
    if (value == state) return name;
  }
  return "?";
}

std::optional<OutboxState> parse_outbox_state(std::string_view text) {
  for (const auto& [value, name] : kOutboxStateNames) {
    if (text == name) return value;
  }
  return std::nullopt;
}

Result<int64_t> Store::insert_outbox(const OutboxRow& r) {
  MB_ASSIGN_OR_RETURN(st, Stmt::prepare(db_,
      "INSERT INTO outbox (kind, sender, ticket_id, note_id, user, env_from, recipients, "
      "pending_recipients, to_display, subject, raw, message_id, state, attempts, "
      "next_attempt_at, last_error, source_key, created_at) "
      "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"));
  st.bind(1, r.kind).bind(2, r.sender).bind_id_or_null(3, r.ticket_id);
  st.bind_id_or_null(4, r.note_id).bind(5, r.user).bind(6, r.env_from);
  st.bind(7, strings_to_json(r.recipients));
  st.bind(8, strings_to_json(r.pending.empty() ? r.recipients : r.pending));
  st.bind(9, r.to).bind(10, r.subject).bind_blob(11, r.raw).bind(12, r.message_id);
  st.bind(13, to_string(r.state)).bind(14, r.attempts);
  const std::string now = now_iso8601();
  st.bind(15, r.next_attempt_at.empty() ? now : r.next_attempt_at).bind(16, r.last_error);
  if (r.source_key.empty()) st.bind_null(17);
  else st.bind(17, r.source_key);
  st.bind(18, r.created_at.empty() ? now : r.created_at);
  MB_RETURN_IF_ERROR(st.run().prefixed("outbox"));
  return static_cast<int64_t>(sqlite3_last_insert_rowid(db_));
}

Result<OutboxRow> Store::enqueue_outbox(OutboxRow row, const Note* note,
                                        const OutboxFinish& finish) {
  MB_ASSIGN_OR_RETURN(tx, Transaction::begin_immediate(db_));
  int64_t note_id = 0;
  if (note != nullptr) {
    MB_ASSIGN_OR_RETURN(exists, ticket_exists(row.ticket_id));
    if (!exists) return Status(ErrorKind::kNotFound, "no ticket " + std::to_string(row.ticket_id));
    MB_ASSIGN_OR_RETURN(id, insert_note(row.ticket_id, *note, nullptr));
    note_id = id;
    for (const auto& a : note->attachments) MB_RETURN_IF_ERROR(insert_attachment(note_id, a));
    row.note_id = note_id;
  }
  if (finish) MB_RETURN_IF_ERROR(finish(note_id, row));
  if (note != nullptr) {
    // The note keeps the bytes that went out, so that `tickets show` can show its headers.
    MB_ASSIGN_OR_RETURN(st, Stmt::prepare(db_, "UPDATE notes SET raw = ? WHERE id = ?"));
    st.bind_blob(1, row.raw).bind(2, note_id);
    MB_RETURN_IF_ERROR(st.run().prefixed("note"));
  }
  MB_RETURN_IF_ERROR(fault("outbox"));
  MB_ASSIGN_OR_RETURN(id, insert_outbox(row));
  MB_RETURN_IF_ERROR(tx.commit());
  MB_ASSIGN_OR_RETURN(written, get_outbox(id));
  if (!written) return Status(ErrorKind::kInternal, "outbox row vanished after its commit");
  return std::move(*written);
}

Result<std::vector<OutboxRow>> Store::query_outbox(const std::string& where, bool with_raw,
                                                   const std::vector<std::string>& args) {
  std::string sql = std::string(kOutboxColumns) + (with_raw ? ", raw" : "") + " FROM outbox " +
                    where;
  MB_ASSIGN_OR_RETURN(st, Stmt::prepare(db_, sql));
  for (size_t i = 0; i < args.size(); ++i) st.bind(static_cast<int>(i + 1), args[i]);
  return internal::collect_checked_rows(
      st, [with_raw](const Stmt& row) { return outbox_from_row(row, with_raw); });
}

Result<std::vector<OutboxRow>> Store::list_outbox() {
  return query_outbox("ORDER BY id DESC", false, {});
}

Result<std::optional<OutboxRow>> Store::get_outbox(int64_t id) {
  MB_ASSIGN_OR_RETURN(rows, query_outbox("WHERE id = ?", true, {std::to_string(id)}));
  if (rows.empty()) return std::optional<OutboxRow>();
  return std::optional<OutboxRow>(std::move(rows.front()));
}

Result<std::vector<OutboxRow>> Store::sending_outbox() {
  return query_outbox("WHERE state = 'sending' ORDER BY id", false, {});
}

Result<std::optional<OutboxRow>> Store::outbox_for_note(int64_t note_id) {
  MB_RETURN_IF_ERROR(fault("lookup:outbox-for-note"));
  MB_ASSIGN_OR_RETURN(rows, query_outbox("WHERE note_id = ? AND kind = 'tracked' "
                                         "ORDER BY id LIMIT 1",
                                         false, {std::to_string(note_id)}));
  if (rows.empty()) return std::optional<OutboxRow>();
  return std::optional<OutboxRow>(std::move(rows.front()));
}

Result<std::vector<OutboxRow>> Store::claim_outbox(const std::string& now,
                                                   const std::string& owner, size_t limit) {
  MB_ASSIGN_OR_RETURN(tx, Transaction::begin_immediate(db_));
  MB_ASSIGN_OR_RETURN(rows, query_outbox("WHERE state = 'queued' AND next_attempt_at <= ? "
                                         "ORDER BY next_attempt_at, id LIMIT ?",
                                         true, {now, std::to_string(limit)}));
  MB_ASSIGN_OR_RETURN(st, Stmt::prepare(db_,
      "UPDATE outbox SET state = 'sending', attempts = attempts + 1, claimed_by = ?, "
      "claimed_at = ?, handed_over_at = '' WHERE id = ? AND state = 'queued'"));
  for (auto& r : rows) {
    MB_RETURN_IF_ERROR(st.reset());
    st.bind(1, owner).bind(2, now).bind(3, r.id);
    MB_RETURN_IF_ERROR(st.run().prefixed("outbox claim"));
    r.state = OutboxState::kSending;
    ++r.attempts;
    r.claimed_by = owner;
    r.claimed_at = now;
    r.handed_over_at.clear();
  }
  MB_RETURN_IF_ERROR(fault("outbox-claim"));
  MB_RETURN_IF_ERROR(tx.commit());
  return rows;
}

Result<bool> Store::update_outbox(const OutboxRow& r, OutboxState expected_state,
                                  const std::string& expected_owner) {
  MB_ASSIGN_OR_RETURN(st, Stmt::prepare(db_,
      "UPDATE outbox SET state = ?, pending_recipients = ?, attempts = ?, next_attempt_at = ?, "
      "last_error = ?, server_id = ?, queued_only = ?, recipient_results = ?, claimed_by = ?, "
      "claimed_at = ?, sent_at = ?, handed_over_at = ?, unconfirmed = ? "
      "WHERE id = ? AND state = ? AND (? = '' OR claimed_by = ?)"));
  st.bind(1, to_string(r.state)).bind(2, strings_to_json(r.pending)).bind(3, r.attempts);
  st.bind(4, r.next_attempt_at).bind(5, r.last_error).bind(6, r.server_id);
  st.bind(7, int64_t{r.queued_only ? 1 : 0}).bind(8, r.recipient_results);
  st.bind(9, r.claimed_by).bind(10, r.claimed_at).bind(11, r.sent_at);
  st.bind(12, r.handed_over_at).bind(13, int64_t{r.unconfirmed ? 1 : 0}).bind(14, r.id);
  st.bind(15, to_string(expected_state)).bind(16, expected_owner).bind(17, expected_owner);
  MB_RETURN_IF_ERROR(fault("outbox-update"));
  return run_counted(db_, st);
}

Result<bool> Store::mark_outbox_handed_over(int64_t id, const std::string& owner,
                                            const std::string& at,
                                            const std::string& recipient_results) {
  MB_ASSIGN_OR_RETURN(st, Stmt::prepare(db_,
      "UPDATE outbox SET handed_over_at = ?, recipient_results = ? "
      "WHERE id = ? AND state = 'sending' AND claimed_by = ?"));
  st.bind(1, at).bind(2, recipient_results).bind(3, id).bind(4, owner);
  MB_RETURN_IF_ERROR(fault("outbox-handed-over"));
  return run_counted(db_, st);
}

Result<bool> Store::outbox_paused() {
  MB_RETURN_IF_ERROR(fault("lookup:outbox-paused"));
  MB_ASSIGN_OR_RETURN(st, Stmt::prepare(db_, "SELECT paused FROM outbox_control WHERE id = 1"));
  MB_ASSIGN_OR_RETURN(row, st.step());
  return row && st.col_int(0) != 0;
}

Result<std::optional<std::string>> Store::next_outbox_due() {
  MB_ASSIGN_OR_RETURN(st, Stmt::prepare(db_,
      "SELECT next_attempt_at FROM outbox WHERE state = 'queued' "
      "ORDER BY next_attempt_at LIMIT 1"));
  MB_ASSIGN_OR_RETURN(row, st.step());
  if (!row) return std::optional<std::string>();
  return std::optional<std::string>(st.col_text(0));
}

Status Store::set_outbox_paused(bool paused) {
  MB_ASSIGN_OR_RETURN(st, Stmt::prepare(db_,
      "UPDATE outbox_control SET paused = ?, paused_at = ? WHERE id = 1"));
  st.bind(1, int64_t{paused ? 1 : 0}).bind(2, paused ? now_iso8601() : std::string());
  return internal::write_alone(db_, [&] { return st.run().prefixed("outbox control"); });
}

Result<Store::OutboxSummary> Store::outbox_summary() {
  OutboxSummary summary;
  for (const char* state : {"queued", "sending", "sent", "parked"}) summary.by_state[state] = 0;
  MB_ASSIGN_OR_RETURN(st, Stmt::prepare(db_, "SELECT state, COUNT(*) FROM outbox GROUP BY state"));
  for (;;) {
    MB_ASSIGN_OR_RETURN(row, st.step());
    if (!row) break;
    summary.by_state[st.col_text(0)] = st.col_int(1);
  }
  MB_ASSIGN_OR_RETURN(oldest, Stmt::prepare(db_,
      "SELECT MIN(created_at) FROM outbox WHERE state IN ('queued', 'sending')"));
  MB_ASSIGN_OR_RETURN(found, oldest.step());
  if (found) summary.oldest_unsent = oldest.col_text(0);
  return summary;
}

Result<std::optional<Store::EmailOut>> Store::find_email_out(int64_t note_id) {
  MB_RETURN_IF_ERROR(fault("lookup:email-out"));
  MB_ASSIGN_OR_RETURN(st, Stmt::prepare(db_,
      "SELECT n.ticket_id, n.id, t.project FROM notes n JOIN tickets t ON t.id = n.ticket_id "
      "WHERE n.id = ? AND n.kind = 'email-out'"));
  st.bind(1, note_id);
  MB_ASSIGN_OR_RETURN(row, st.step());
  if (!row) return std::optional<EmailOut>();
  return std::optional<EmailOut>(EmailOut{st.col_int(0), st.col_int(1), st.col_text(2)});
}

}  // namespace mb
