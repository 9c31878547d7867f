// File: core/store.cpp — the SQLite store: schema migrations, the atomic ingest commit,
// tickets, notes, attachments, the ledger and per-mailbox state.
#include "core/store.h"

#include <openssl/evp.h>
#include <sqlite3.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <nlohmann/json.hpp>
#include <utility>

#include "core/internal/migrations.h"
#include "core/internal/sqlite.h"

namespace mb {

using internal::Stmt;
using internal::Transaction;

namespace {

// Unwraps a Result<T> into `var` or returns its Status from the enclosing function.
#define MB_ASSIGN_OR_RETURN(var, expr)          \
  auto var##_result_ = (expr);                  \
  if (!var##_result_.ok()) return var##_result_.status(); \
  auto var = std::move(*var##_result_)

std::string dropped_to_json(const std::vector<std::string>& names) {
  // Replace, not throw, on invalid UTF-8: a hostile file name must not abort the commit.
  return nlohmann::json(names).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::vector<std::string> dropped_from_json(const std::string& text) {
  auto j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  std::vector<std::string> out;
  if (!j.is_array()) return out;
  for (const auto& v : j) {
    if (v.is_string()) out.push_back(v.get<std::string>());
  }
  return out;
}

constexpr const char* kLedgerColumns =
    "SELECT mailbox, key, sha256, outcome, reason, ifnull(ticket_id, 0), ifnull(note_id, 0), "
    "post_action, post_action_done FROM ledger ";

LedgerEntry ledger_from_row(const Stmt& st) {
  LedgerEntry e;
  e.mailbox = st.col_text(0);
  e.key = st.col_text(1);
  e.sha256 = st.col_text(2);
  e.outcome = st.col_text(3);
  e.reason = st.col_text(4);
  e.ticket_id = st.col_int(5);
  e.note_id = st.col_int(6);
  e.post_action = st.col_text(7);
  e.post_action_done = st.col_int(8) != 0;
  return e;
}

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

}  // namespace

std::string sha256_hex(std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr);
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(len * 2);
  for (unsigned int i = 0; i < len; ++i) {
    out.push_back(kHex[md[i] >> 4]);
    out.push_back(kHex[md[i] & 0xf]);
  }
  return out;
}

std::string now_iso8601() {
  std::time_t t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// --- opening and migrations -------------------------------------------------------------

Store::Store(sqlite3* db) : db_(db) {}

Store::~Store() { sqlite3_close_v2(db_); }

namespace {

// Creates the database file with mode 0600 before SQLite would create it 0644 (under umask
// 022): it holds every message and the outbox. SQLite gives the -wal, -shm and -journal files
// the database file's mode. An existing file keeps its mode. A path that cannot be a database
// file is a configuration error naming it.
Status prepare_store_file(const std::string& path) {
  if (path.empty() || path == ":memory:" || path.rfind("file:", 0) == 0) return Status::Ok();
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
    return Status(ErrorKind::kConfig, "store " + path + " is a directory; [store] path names "
                                      "the database file (e.g. " + path + "/mailbridge.db)");
  }
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    const int e = errno;
    const ErrorKind kind = e == ENOENT || e == ENOTDIR || e == EISDIR || e == EACCES
                               ? ErrorKind::kConfig
                               : ErrorKind::kInternal;
    return Status(kind, "cannot open store " + path + ": " + std::strerror(e));
  }
  ::close(fd);
  return Status::Ok();
}

}  // namespace

Result<std::unique_ptr<Store>> Store::open(const std::string& path) {
  MB_RETURN_IF_ERROR(prepare_store_file(path));
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
                           nullptr);
  std::unique_ptr<Store> store(new Store(db));  // closes db on every early return
  if (rc != SQLITE_OK) {
    return internal::sqlite_error(db, "cannot open store " + path);
  }
  sqlite3_extended_result_codes(db, 1);
  sqlite3_busy_timeout(db, 10000);
  // synchronous=NORMAL: in WAL mode every commit survives a crash of the process; what it
  // does not survive is power loss before the next WAL sync. Ingest calls make_durable() (one
  // fsync for the whole batch) before it asks the server to delete or move anything, which is
  // the only point where losing a commit would lose mail.
  Status s = internal::exec(db,
                            "PRAGMA journal_mode = WAL; PRAGMA foreign_keys = ON; "
                            "PRAGMA synchronous = NORMAL;");
  if (!s.ok()) return s.prefixed("store " + path);
  s = store->migrate();
  if (!s.ok()) return s.prefixed("store " + path);
  return store;
}

std::string Store::path() const {
  const char* f = sqlite3_db_filename(db_, "main");
  return f != nullptr ? f : "";
}

int Store::schema_version() const {
  auto st = Stmt::prepare(db_, "PRAGMA user_version");
  if (!st.ok()) return -1;
  auto row = st->step();
  if (!row.ok() || !*row) return -1;
  return static_cast<int>(st->col_int(0));
}

Status Store::migrate() {
  auto scripts = internal::store_migrations();
  if (schema_version() == static_cast<int>(scripts.size())) return Status::Ok();
  // Re-read the version under the write lock: another process may be migrating right now.
  MB_ASSIGN_OR_RETURN(tx, Transaction::begin_immediate(db_));
  int version = schema_version();
  if (version < 0) return Status(ErrorKind::kInternal, "cannot read schema version");
  if (version > static_cast<int>(scripts.size())) {
    return Status(ErrorKind::kInternal,
                  "schema version " + std::to_string(version) + " is newer than this build");
  }
  for (size_t i = static_cast<size_t>(version); i < scripts.size(); ++i) {
    MB_RETURN_IF_ERROR(internal::exec(db_, scripts[i]).prefixed(
        "migration " + std::to_string(i + 1)));
    std::string pragma = "PRAGMA user_version = " + std::to_string(i + 1);
    MB_RETURN_IF_ERROR(internal::exec(db_, pragma.c_str()));
  }
  return tx.commit();
}

// --- ledger -------------------------------------------------------------------------------

Result<std::vector<LedgerEntry>> Store::query_ledger(const char* where, const std::string& mailbox,
                                                     const std::string* arg) {
  MB_ASSIGN_OR_RETURN(st, Stmt::prepare(db_, std::string(kLedgerColumns) + where));
  st.bind(1, mailbox);
  if (arg != nullptr) st.bind(2, *arg);
  std::vector<LedgerEntry> out;
  for (;;) {
    MB_ASSIGN_OR_RETURN(row, st.step());
    if (!row) break;
    out.push_back(ledger_from_row(st));
  }
  return out;
}

Result<std::optional<LedgerEntry>> Store::find_ledger(const std::string& mailbox,
                                                      const std::string& key) {
  MB_ASSIGN_OR_RETURN(rows, query_ledger("WHERE mailbox = ? AND key = ?", mailbox, &key));
  if (rows.empty()) return std::optional<LedgerEntry>();
  return std::optional<LedgerEntry>(std::move(rows.front()));
}

Result<std::optional<LedgerEntry>> Store::find_ledger_by_sha(const std::string& mailbox,
                                                             const std::string& sha256) {
  // The first record of those bytes is the original; later ones are its duplicates.
  MB_ASSIGN_OR_RETURN(rows, query_ledger("WHERE mailbox = ? AND sha256 = ? AND sha256 <> '' "
                                         "ORDER BY rowid LIMIT 1",
                                         mailbox, &sha256));
  if (rows.empty()) return std::optional<LedgerEntry>();
  return std::optional<LedgerEntry>(std::move(rows.front()));
}

Result<std::vector<LedgerEntry>> Store::pending_post_actions(const std::string& mailbox) {
  return query_ledger("WHERE mailbox = ? AND post_action_done = 0 ORDER BY rowid", mailbox,
                      nullptr);
}

Result<std::vector<LedgerEntry>> Store::list_ledger(const std::string& mailbox) {
  return query_ledger("WHERE mailbox = ? ORDER BY key", mailbox, nullptr);
}

Result<int64_t> Store::count_left_on_server(const std::string& mailbox) {
  MB_ASSIGN_OR_RETURN(st, Stmt::prepare(db_, "SELECT COUNT(*) FROM ledger "
                                             "WHERE mailbox = ? AND post_action = 'leave'"));
  st.bind(1, mailbox);
  MB_ASSIGN_OR_RETURN(row, st.step());
  return row ? st.col_int(0) : int64_t{0};
}

Status Store::make_durable() {
  // Under synchronous=FULL a WAL commit is fsynced, and the fsync covers every frame before
  // it. The barrier row guarantees the commit writes a frame (an empty one would not sync).
  MB_RETURN_IF_ERROR(internal::exec(db_, "PRAGMA synchronous = FULL"));
  Status s = internal::exec(db_, "UPDATE durability SET barrier = barrier + 1 WHERE id = 1");
  Status back = internal::exec(db_, "PRAGMA synchronous = NORMAL");
  MB_RETURN_IF_ERROR(s);
  return back;
}

Status Store::mark_post_action_done(const std::string& mailbox, const std::string& key) {
  MB_ASSIGN_OR_RETURN(st, Stmt::prepare(db_, "UPDATE ledger SET post_action_done = 1 "
                                             "WHERE mailbox = ? AND key = ?"));
  st.bind(1, mailbox).bind(2, key);
  return st.run();
}

Status Store::insert_ledger(const LedgerEntry& e) {
  MB_ASSIGN_OR_RETURN(st, Stmt::prepare(db_,
      "INSERT INTO ledger (mailbox, key, sha256, outcome, reason, ticket_id, note_id, "
      "post_action, post_action_done, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"));
  st.bind(1, e.mailbox).bind(2, e.key).bind(3, e.sha256).bind(4, e.outcome).bind(5, e.reason);
  st.bind_id_or_null(6, e.ticket_id).bind_id_or_null(7, e.note_id);
  st.bind(8, e.post_action).bind(9, int64_t{e.post_action_done ? 1 : 0});
  st.bind(10, now_iso8601());
  return st.run().prefixed("ledger");
}

// --- the ingest commit --------------------------------------------------------------------

Status Store::fault(std::string_view step) const {
  if (!fault_hook_) return Status::Ok();
  return fault_hook_(step);
}

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
  st.bind(10, dropped_to_json(n.dropped_attachments));
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

// --- tickets and notes --------------------------------------------------------------------

Result<bool> Store::ticket_exists(int64_t id) {
  MB_RETURN_IF_ERROR(fault("lookup:ticket"));
  MB_ASSIGN_OR_RETURN(st, Stmt::prepare(db_, "SELECT 1 FROM tickets WHERE id = ?"));
  st.bind(1, id);
  return st.step();
}

Result<std::vector<Note>> Store::load_notes(int64_t ticket_id) {
  MB_ASSIGN_OR_RETURN(st, Stmt::prepare(db_,
      "SELECT id, kind, author, author_name, text, html, message_id, in_reply_to, "
      "dropped_attachments, created_at FROM notes WHERE ticket_id = ? ORDER BY id"));
  st.bind(1, ticket_id);
  std::vector<Note> notes;
  for (;;) {
    MB_ASSIGN_OR_RETURN(row, st.step());
    if (!row) break;
    Note n;
    n.id = st.col_int(0);
    n.ticket_id = ticket_id;
    n.kind = st.col_text(1);
    n.author = st.col_text(2);
    n.author_name = st.col_text(3);
    n.text = st.col_text(4);
    n.html = st.col_text(5);
    n.message_id = st.col_text(6);
    if (!st.col_null(7)) n.in_reply_to = st.col_int(7);
    n.dropped_attachments = dropped_from_json(st.col_text(8));
    n.created_at = st.col_text(9);
    notes.push_back(std::move(n));
  }
  MB_ASSIGN_OR_RETURN(at, Stmt::prepare(db_,
      "SELECT id, filename, content_type, content_id, inline_part, size, sha256 "
      "FROM attachments WHERE note_id = ? ORDER BY id"));
  for (auto& n : notes) {
    MB_RETURN_IF_ERROR(at.reset());
    at.bind(1, n.id);
    for (;;) {
      MB_ASSIGN_OR_RETURN(row, at.step());
      if (!row) break;
      n.attachments.push_back({at.col_int(0), at.col_text(1), at.col_text(2), at.col_text(3),
                               at.col_int(4) != 0, at.col_int(5), at.col_text(6), {}});
    }
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
  std::vector<Ticket> out;
  for (;;) {
    MB_ASSIGN_OR_RETURN(row, st.step());
    if (!row) break;
    out.push_back(ticket_from_row(st));
  }
  return out;
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

namespace {

// A write transaction of its own, or none when the caller already holds one
// (update_mailbox_state), whose commit or rollback then covers this work too.
Result<std::optional<Transaction>> begin_unless_nested(sqlite3* db) {
  if (sqlite3_get_autocommit(db) == 0) return std::optional<Transaction>();
  auto tx = Transaction::begin_immediate(db);
  if (!tx.ok()) return tx.status();
  return std::optional<Transaction>(std::move(*tx));
}

Status commit_if_own(std::optional<Transaction>& tx) {
  return tx ? tx->commit() : Status::Ok();
}

}  // namespace

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

// --- mailbox state ------------------------------------------------------------------------

namespace {

constexpr const char* kStateColumns =
    "SELECT name, state, sync_state, last_run, imported, skipped, last_error, "
    "consecutive_auth_failures, alert_ticket_id, throttled_until FROM mailbox_state ";

MailboxState state_from_row(const Stmt& st) {
  MailboxState m;
  m.name = st.col_text(0);
  m.state = st.col_text(1);
  m.sync_state = st.col_text(2);
  m.last_run = st.col_text(3);
  m.imported = st.col_int(4);
  auto j = nlohmann::json::parse(st.col_text(5), nullptr, /*allow_exceptions=*/false);
  if (j.is_object()) {
    for (const auto& [reason, count] : j.items()) {
      if (count.is_number_integer()) m.skipped[reason] = count.get<int64_t>();
    }
  }
  m.last_error = st.col_text(6);
  m.consecutive_auth_failures = st.col_int(7);
  m.alert_ticket_id = st.col_int(8);
  m.throttled_until = st.col_text(9);
  return m;
}

}  // namespace

Result<MailboxState> Store::get_mailbox_state(const std::string& name) {
  MB_ASSIGN_OR_RETURN(st, Stmt::prepare(db_, std::string(kStateColumns) + "WHERE name = ?"));
  st.bind(1, name);
  MB_ASSIGN_OR_RETURN(row, st.step());
  if (!row) {
    MailboxState m;
    m.name = name;
    return m;
  }
  return state_from_row(st);
}

Result<std::vector<MailboxState>> Store::list_mailbox_states() {
  MB_ASSIGN_OR_RETURN(st, Stmt::prepare(db_, std::string(kStateColumns) + "ORDER BY name"));
  std::vector<MailboxState> out;
  for (;;) {
    MB_ASSIGN_OR_RETURN(row, st.step());
    if (!row) break;
    out.push_back(state_from_row(st));
  }
  return out;
}

Status Store::put_mailbox_state(const MailboxState& m) {
  MB_ASSIGN_OR_RETURN(st, Stmt::prepare(db_,
      "INSERT OR REPLACE INTO mailbox_state (name, state, sync_state, last_run, imported, "
      "skipped, last_error, consecutive_auth_failures, alert_ticket_id, throttled_until) "
      "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"));
  st.bind(1, m.name).bind(2, m.state).bind(3, m.sync_state).bind(4, m.last_run);
  st.bind(5, m.imported).bind(6, nlohmann::json(m.skipped).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)).bind(7, m.last_error);
  st.bind(8, m.consecutive_auth_failures).bind(9, m.alert_ticket_id);
  st.bind(10, m.throttled_until);
  return st.run().prefixed("mailbox state");
}

Result<MailboxState> Store::update_mailbox_state(const std::string& name,
                                                const StateChange& change) {
  MB_ASSIGN_OR_RETURN(tx, Transaction::begin_immediate(db_));
  MB_ASSIGN_OR_RETURN(state, get_mailbox_state(name));
  state.name = name;
  MB_RETURN_IF_ERROR(change(state));
  MB_RETURN_IF_ERROR(fault("mailbox-state"));
  MB_RETURN_IF_ERROR(put_mailbox_state(state));
  MB_RETURN_IF_ERROR(tx.commit());
  return state;
}

// --- token state ---------------------------------------------------------------------------

namespace {

constexpr const char* kTokenStateColumns =
    "SELECT key, app, user, scope, expires_at, last_refresh, last_error, refreshes, failures, "
    "updated_at FROM token_state ";

TokenStateRecord token_state_from_row(const Stmt& st) {
  TokenStateRecord r;
  r.key = st.col_text(0);
  r.app = st.col_text(1);
  r.user = st.col_text(2);
  r.scope = st.col_text(3);
  r.expires_at = st.col_text(4);
  r.last_refresh = st.col_text(5);
  r.last_error = st.col_text(6);
  r.refreshes = st.col_int(7);
  r.failures = st.col_int(8);
  r.updated_at = st.col_text(9);
  return r;
}

}  // namespace

Status Store::save_token_state(const TokenStateRecord& r) {
  MB_ASSIGN_OR_RETURN(st, Stmt::prepare(db_,
      "INSERT OR REPLACE INTO token_state (key, app, user, scope, expires_at, last_refresh, "
      "last_error, refreshes, failures, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"));
  st.bind(1, r.key).bind(2, r.app).bind(3, r.user).bind(4, r.scope).bind(5, r.expires_at);
  st.bind(6, r.last_refresh).bind(7, r.last_error).bind(8, r.refreshes).bind(9, r.failures);
  st.bind(10, now_iso8601());
  return st.run().prefixed("token state");
}

Result<std::optional<TokenStateRecord>> Store::get_token_state(const std::string& key) {
  MB_ASSIGN_OR_RETURN(st, Stmt::prepare(db_, std::string(kTokenStateColumns) + "WHERE key = ?"));
  st.bind(1, key);
  MB_ASSIGN_OR_RETURN(row, st.step());
  if (!row) return std::optional<TokenStateRecord>();
  return std::optional<TokenStateRecord>(token_state_from_row(st));
}

Result<std::vector<TokenStateRecord>> Store::token_states() {
  MB_ASSIGN_OR_RETURN(st, Stmt::prepare(db_, std::string(kTokenStateColumns) +
                                                  "ORDER BY app, user, scope, key"));
  std::vector<TokenStateRecord> out;
  for (;;) {
    MB_ASSIGN_OR_RETURN(row, st.step());
    if (!row) break;
    out.push_back(token_state_from_row(st));
  }
  return out;
}

// --- outbox (store v4) ---------------------------------------------------------------------

namespace {

std::string strings_to_json(const std::vector<std::string>& v) {
  return nlohmann::json(v).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

constexpr const char* kOutboxColumns =
    "SELECT id, kind, sender, ifnull(ticket_id, 0), ifnull(note_id, 0), user, env_from, "
    "recipients, pending_recipients, to_display, subject, message_id, state, attempts, "
    "next_attempt_at, last_error, server_id, queued_only, recipient_results, claimed_by, "
    "claimed_at, ifnull(source_key, ''), created_at, sent_at, handed_over_at, unconfirmed";

OutboxRow outbox_from_row(const Stmt& st, bool with_raw) {
  OutboxRow r;
  r.id = st.col_int(0);
  r.kind = st.col_text(1);
  r.sender = st.col_text(2);
  r.ticket_id = st.col_int(3);
  r.note_id = st.col_int(4);
  r.user = st.col_text(5);
  r.env_from = st.col_text(6);
  r.recipients = dropped_from_json(st.col_text(7));
  r.pending = dropped_from_json(st.col_text(8));
  r.to = st.col_text(9);
  r.subject = st.col_text(10);
  r.message_id = st.col_text(11);
  r.state = st.col_text(12);
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

}  // namespace

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
  st.bind(13, r.state).bind(14, r.attempts);
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
  std::vector<OutboxRow> out;
  for (;;) {
    MB_ASSIGN_OR_RETURN(row, st.step());
    if (!row) break;
    out.push_back(outbox_from_row(st, with_raw));
  }
  return out;
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
    r.state = "sending";
    ++r.attempts;
    r.claimed_by = owner;
    r.claimed_at = now;
    r.handed_over_at.clear();
  }
  MB_RETURN_IF_ERROR(fault("outbox-claim"));
  MB_RETURN_IF_ERROR(tx.commit());
  return rows;
}

Result<bool> Store::update_outbox(const OutboxRow& r, const std::string& expected_state,
                                  const std::string& expected_owner) {
  MB_ASSIGN_OR_RETURN(st, Stmt::prepare(db_,
      "UPDATE outbox SET state = ?, pending_recipients = ?, attempts = ?, next_attempt_at = ?, "
      "last_error = ?, server_id = ?, queued_only = ?, recipient_results = ?, claimed_by = ?, "
      "claimed_at = ?, sent_at = ?, handed_over_at = ?, unconfirmed = ? "
      "WHERE id = ? AND state = ? AND (? = '' OR claimed_by = ?)"));
  st.bind(1, r.state).bind(2, strings_to_json(r.pending)).bind(3, r.attempts);
  st.bind(4, r.next_attempt_at).bind(5, r.last_error).bind(6, r.server_id);
  st.bind(7, int64_t{r.queued_only ? 1 : 0}).bind(8, r.recipient_results);
  st.bind(9, r.claimed_by).bind(10, r.claimed_at).bind(11, r.sent_at);
  st.bind(12, r.handed_over_at).bind(13, int64_t{r.unconfirmed ? 1 : 0}).bind(14, r.id);
  st.bind(15, expected_state).bind(16, expected_owner).bind(17, expected_owner);
  MB_RETURN_IF_ERROR(fault("outbox-update"));
  MB_RETURN_IF_ERROR(st.run().prefixed("outbox"));
  return sqlite3_changes(db_) > 0;
}

Result<bool> Store::mark_outbox_handed_over(int64_t id, const std::string& owner,
                                            const std::string& at,
                                            const std::string& recipient_results) {
  MB_ASSIGN_OR_RETURN(st, Stmt::prepare(db_,
      "UPDATE outbox SET handed_over_at = ?, recipient_results = ? "
      "WHERE id = ? AND state = 'sending' AND claimed_by = ?"));
  st.bind(1, at).bind(2, recipient_results).bind(3, id).bind(4, owner);
  MB_RETURN_IF_ERROR(fault("outbox-handed-over"));
  MB_RETURN_IF_ERROR(st.run().prefixed("outbox"));
  return sqlite3_changes(db_) > 0;
}

Result<bool> Store::outbox_paused() {
  MB_RETURN_IF_ERROR(fault("lookup:outbox-paused"));
  MB_ASSIGN_OR_RETURN(st, Stmt::prepare(db_, "SELECT paused FROM outbox_control WHERE id = 1"));
  MB_ASSIGN_OR_RETURN(row, st.step());
  return row && st.col_int(0) != 0;
}

Status Store::set_outbox_paused(bool paused) {
  MB_ASSIGN_OR_RETURN(st, Stmt::prepare(db_,
      "UPDATE outbox_control SET paused = ?, paused_at = ? WHERE id = 1"));
  st.bind(1, int64_t{paused ? 1 : 0}).bind(2, paused ? now_iso8601() : std::string());
  return st.run().prefixed("outbox control");
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
