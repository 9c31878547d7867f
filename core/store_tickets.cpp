// File: core/store_tickets.cpp — the Store's tickets, notes and attachments, and the lookup
// of an email-out note by its Message-ID (routing, SPEC §2 rule 1).
#include "core/store.h"

#include <sqlite3.h>

#include <utility>

#include "core/hash.h"
#include "core/internal/sqlite.h"
#include "core/internal/store_util.h"
#include "core/utc.h"

namespace mb {

using internal::begin_unless_nested;
using internal::commit_if_own;
using internal::Stmt;
using internal::strings_from_json;
using internal::strings_to_json;

namespace {

constexpr const char* kTicketColumns =
    "SELECT t.id, t.project, t.subject, t.status, t.source, t.requester, t.requester_name, "
    "t.mailbox, t.created_at, (SELECT count(*) FROM notes n WHERE n.ticket_id = t.id) "
    "FROM tickets t ";

Ticket ticket_from_row(const Stmt& st) {
  Ticket t;
  t.id = st.col_int(0);
  t.project = st.col_text(1);
  t.subject = st.col_text(2);
  t.status = st.col_text(3);
  t.source = st.col_text(4);
  t.requester = st.col_text(5);
  t.requester_name = st.col_text(6);
  t.mailbox = st.col_text(7);
  t.created_at = st.col_text(8);
  t.note_count = st.col_int(9);
  return t;
}

// The columns of load_notes.
Note note_from_row(const Stmt& st) {
  Note n;
  n.id = st.col_int(0);
  n.kind = st.col_text(1);
  n.author = st.col_text(2);
  n.author_name = st.col_text(3);
  n.text = st.col_text(4);
  n.html = st.col_text(5);
  n.message_id = st.col_text(6);
  if (!st.col_null(7)) n.in_reply_to = st.col_int(7);
  n.dropped_attachments = strings_from_json(st.col_text(8));
  n.created_at = st.col_text(9);
  n.ticket_id = st.col_int(10);
  return n;
}

// An attachment without its data.
StoredAttachment attachment_from_row(const Stmt& st) {
  return {st.col_int(0), st.col_text(1), st.col_text(2), st.col_text(3),
          st.col_int(4) != 0, st.col_int(5), st.col_text(6), {}};
}

}  // namespace

Result<int64_t> Store::insert_ticket(const Ticket& t) {
  MB_ASSIGN_OR_RETURN(st, Stmt::prepare(db_,
      "INSERT INTO tickets (project, subject, status, source, requester, requester_name, "
      "mailbox, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"));
  st.bind(1, t.project).bind(2, t.subject).bind(3, t.status).bind(4, t.source);
  st.bind(5, t.requester).bind(6, t.requester_name).bind(7, t.mailbox);
  st.bind(8, t.created_at.empty() ? now_iso8601() : t.created_at);
  MB_RETURN_IF_ERROR(st.run().prefixed("ticket"));
  return static_cast<int64_t>(sqlite3_last_insert_rowid(db_));
}

Result<int64_t> Store::insert_note(int64_t ticket_id, const Note& n, const std::string* raw) {
  MB_ASSIGN_OR_RETURN(st, Stmt::prepare(db_,
      "INSERT INTO notes (ticket_id, kind, author, author_name, text, html, message_id, "
      "in_reply_to, raw, dropped_attachments, created_at) "
      "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"));
  st.bind(1, ticket_id).bind(2, n.kind).bind(3, n.author).bind(4, n.author_name);
  st.bind(5, n.text).bind(6, n.html).bind(7, n.message_id);
  st.bind_id_or_null(8, n.in_reply_to.value_or(0));
  if (raw != nullptr) {
    st.bind_blob(9, *raw);
  } else {
    st.bind_null(9);
  }
  st.bind(10, strings_to_json(n.dropped_attachments));
  st.bind(11, n.created_at.empty() ? now_iso8601() : n.created_at);
  MB_RETURN_IF_ERROR(st.run().prefixed("note"));
  return static_cast<int64_t>(sqlite3_last_insert_rowid(db_));
}

Status Store::insert_attachment(int64_t note_id, const StoredAttachment& a) {
  MB_ASSIGN_OR_RETURN(st, Stmt::prepare(db_,
      "INSERT INTO attachments (note_id, filename, content_type, content_id, inline_part, "
      "size, sha256, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"));
  st.bind(1, note_id).bind(2, a.filename).bind(3, a.content_type).bind(4, a.content_id);
  st.bind(5, int64_t{a.inline_part ? 1 : 0}).bind(6, static_cast<int64_t>(a.data.size()));
  st.bind(7, a.sha256.empty() ? sha256_hex(a.data) : a.sha256).bind_blob(8, a.data);
  return st.run().prefixed("attachment");
}


Result<bool> Store::ticket_exists(int64_t id) {
  MB_RETURN_IF_ERROR(fault("lookup:ticket"));
  MB_ASSIGN_OR_RETURN(st, Stmt::prepare(db_, "SELECT 1 FROM tickets WHERE id = ?"));
  st.bind(1, id);
  return st.step();
}

Result<std::vector<Note>> Store::load_notes(int64_t ticket_id) {
  MB_ASSIGN_OR_RETURN(st, Stmt::prepare(db_,
      "SELECT id, kind, author, author_name, text, html, message_id, in_reply_to, "
      "dropped_attachments, created_at, ticket_id FROM notes WHERE ticket_id = ? ORDER BY id"));
  st.bind(1, ticket_id);
  MB_ASSIGN_OR_RETURN(notes, internal::collect_rows(st, note_from_row));
  MB_ASSIGN_OR_RETURN(at, Stmt::prepare(db_,
      "SELECT id, filename, content_type, content_id, inline_part, size, sha256 "
      "FROM attachments WHERE note_id = ? ORDER BY id"));
  for (auto& n : notes) {
    MB_RETURN_IF_ERROR(at.reset());
    at.bind(1, n.id);
    MB_ASSIGN_OR_RETURN(attachments, internal::collect_rows(at, attachment_from_row));
    n.attachments = std::move(attachments);
  }
  return notes;
}

Result<std::optional<Ticket>> Store::find_ticket(int64_t id) {
  MB_ASSIGN_OR_RETURN(st, Stmt::prepare(db_, std::string(kTicketColumns) + "WHERE t.id = ?"));
  st.bind(1, id);
  MB_ASSIGN_OR_RETURN(row, st.step());
  if (!row) return std::optional<Ticket>();
  return std::optional<Ticket>(ticket_from_row(st));
}

Result<std::optional<Ticket>> Store::get_ticket(int64_t id) {
  MB_ASSIGN_OR_RETURN(found, find_ticket(id));
  if (!found) return found;
  Ticket t = std::move(*found);
  MB_ASSIGN_OR_RETURN(notes, load_notes(id));
  t.notes = std::move(notes);
  return std::optional<Ticket>(std::move(t));
}

Result<std::vector<Ticket>> Store::list_tickets() {
  MB_ASSIGN_OR_RETURN(st, Stmt::prepare(db_, std::string(kTicketColumns) + "ORDER BY t.id"));
  return internal::collect_rows(st, ticket_from_row);
}

Result<std::string> Store::get_note_raw(int64_t note_id) {
  MB_ASSIGN_OR_RETURN(st, Stmt::prepare(db_, "SELECT raw FROM notes WHERE id = ?"));
  st.bind(1, note_id);
  MB_ASSIGN_OR_RETURN(row, st.step());
  if (!row) return Status(ErrorKind::kNotFound, "no note " + std::to_string(note_id));
  return st.col_blob(0);
}

Result<std::string> Store::get_attachment_data(int64_t attachment_id) {
  MB_ASSIGN_OR_RETURN(st, Stmt::prepare(db_, "SELECT data FROM attachments WHERE id = ?"));
  st.bind(1, attachment_id);
  MB_ASSIGN_OR_RETURN(row, st.step());
  if (!row) return Status(ErrorKind::kNotFound, "no attachment " + std::to_string(attachment_id));
  return st.col_blob(0);
}

Result<int64_t> Store::create_ticket(const Ticket& ticket, const Note& first_note) {
  MB_ASSIGN_OR_RETURN(tx, begin_unless_nested(db_));
  MB_ASSIGN_OR_RETURN(id, insert_ticket(ticket));
  const std::string* raw = first_note.raw.empty() ? nullptr : &first_note.raw;
  MB_ASSIGN_OR_RETURN(note_id, insert_note(id, first_note, raw));
  for (const auto& a : first_note.attachments) {
    MB_RETURN_IF_ERROR(insert_attachment(note_id, a));
  }
  MB_RETURN_IF_ERROR(commit_if_own(tx));
  return id;
}

Result<int64_t> Store::add_note(int64_t ticket_id, const Note& note) {
  MB_ASSIGN_OR_RETURN(tx, begin_unless_nested(db_));
  MB_ASSIGN_OR_RETURN(exists, ticket_exists(ticket_id));
  if (!exists) return Status(ErrorKind::kNotFound, "no ticket " + std::to_string(ticket_id));
  const std::string* raw = note.raw.empty() ? nullptr : &note.raw;
  MB_ASSIGN_OR_RETURN(note_id, insert_note(ticket_id, note, raw));
  for (const auto& a : note.attachments) {
    MB_RETURN_IF_ERROR(insert_attachment(note_id, a));
  }
  MB_RETURN_IF_ERROR(commit_if_own(tx));
  return note_id;
}

Result<std::optional<SentMessage>> Store::find_sent_message(const std::string& message_id) {
  if (message_id.empty()) return std::optional<SentMessage>();
  MB_RETURN_IF_ERROR(fault("lookup:sent-message"));
  MB_ASSIGN_OR_RETURN(st, Stmt::prepare(db_,
      // "message_id <> ''" repeats the partial index's condition so that SQLite can use
      // notes_by_message_id; without it every lookup scanned all notes (raw messages too).
      "SELECT ticket_id, id FROM notes WHERE message_id = ? AND message_id <> '' "
      "AND kind = 'email-out' ORDER BY id LIMIT 1"));
  st.bind(1, message_id);
  MB_ASSIGN_OR_RETURN(row, st.step());
  if (!row) return std::optional<SentMessage>();
  return std::optional<SentMessage>(SentMessage{st.col_int(0), st.col_int(1)});
}

Result<std::optional<int64_t>> Store::ticket_for_sent_message_id(const std::string& message_id) {
  MB_ASSIGN_OR_RETURN(sent, find_sent_message(message_id));
  if (!sent) return std::optional<int64_t>();
  return std::optional<int64_t>(sent->ticket_id);
}

}  // namespace mb
