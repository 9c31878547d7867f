// File: core/store_tokens.cpp — the Store's OAuth token state (for `mailbridge auth status`
// in another process); never a token or secret.
#include "core/store.h"

#include "core/internal/sqlite.h"
#include "core/internal/store_util.h"
#include "core/utc.h"

namespace mb {

using internal::Stmt;

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
  return internal::write_alone(db_, [&] { return st.run().prefixed("token state"); });
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
  return internal::collect_rows(st, token_state_from_row);
}

}  // namespace mb
