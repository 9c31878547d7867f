// File: core/store_ledger.cpp — the Store's ingest ledger: one row per message a mailbox has
// seen, what became of it and whether its post-action is done.
#include "core/store.h"

#include <utility>

#include "core/internal/sqlite.h"
#include "core/internal/store_util.h"
#include "core/utc.h"

namespace mb {

using internal::Stmt;

namespace {

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

}  // namespace

Result<std::vector<LedgerEntry>> Store::query_ledger(const char* where, const std::string& mailbox,
                                                     const std::string* arg) {
  MB_ASSIGN_OR_RETURN(st, Stmt::prepare(db_, std::string(kLedgerColumns) + where));
  st.bind(1, mailbox);
  if (arg != nullptr) st.bind(2, *arg);
  return internal::collect_rows(st, ledger_from_row);
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

Status Store::mark_post_action_done(const std::string& mailbox, const std::string& key) {
  MB_ASSIGN_OR_RETURN(st, Stmt::prepare(db_, "UPDATE ledger SET post_action_done = 1 "
                                             "WHERE mailbox = ? AND key = ?"));
  st.bind(1, mailbox).bind(2, key);
  return internal::write_alone(db_, [&] { return st.run(); });
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

}  // namespace mb
