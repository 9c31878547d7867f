// File: core/store_mailbox_state.cpp — the Store's per-mailbox state: the monitor's count,
// the connector's sync state, the last run and the server's requested pause.
#include "core/store.h"

#include <nlohmann/json.hpp>

#include <utility>

#include "core/internal/sqlite.h"
#include "core/internal/store_util.h"

namespace mb {

using internal::Stmt;
using internal::Transaction;

namespace {

constexpr std::pair<MailboxStatus, const char*> kMailboxStatusNames[] = {
    {MailboxStatus::kOk, "ok"},
    {MailboxStatus::kAuthFailed, "auth-failed"},
    {MailboxStatus::kError, "error"},
    {MailboxStatus::kPaused, "paused"},
};

constexpr const char* kStateColumns =
    "SELECT name, state, sync_state, last_run, imported, skipped, last_error, "
    "consecutive_auth_failures, alert_ticket_id, throttled_until, last_success "
    "FROM mailbox_state ";

Result<MailboxState> state_from_row(const Stmt& st) {
  MailboxState m;
  m.name = st.col_text(0);
  const std::string text = st.col_text(1);
  auto status = parse_mailbox_status(text);
  if (!status) {
    return Status(ErrorKind::kInternal, "mailbox state of \"" + m.name + "\" is \"" + text +
                                            "\", not ok | auth-failed | error | paused");
  }
  m.state = *status;
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
  m.last_success = st.col_text(10);
  return m;
}

}  // namespace

std::string to_string(MailboxStatus status) {
  for (const auto& [value, name] : kMailboxStatusNames) {
    if (value == status) return name;
  }
  return "?";
}

std::optional<MailboxStatus> parse_mailbox_status(std::string_view text) {
  for (const auto& [value, name] : kMailboxStatusNames) {
    if (text == name) return value;
  }
  return std::nullopt;
}

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
  return internal::collect_checked_rows(st, state_from_row);
}

Status Store::put_mailbox_state(const MailboxState& m) {
  MB_ASSIGN_OR_RETURN(st, Stmt::prepare(db_,
      "INSERT OR REPLACE INTO mailbox_state (name, state, sync_state, last_run, imported, "
      "skipped, last_error, consecutive_auth_failures, alert_ticket_id, throttled_until, "
      "last_success) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"));
  st.bind(1, m.name).bind(2, to_string(m.state)).bind(3, m.sync_state).bind(4, m.last_run);
  st.bind(5, m.imported).bind(6, nlohmann::json(m.skipped).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)).bind(7, m.last_error);
  st.bind(8, m.consecutive_auth_failures).bind(9, m.alert_ticket_id);
  st.bind(10, m.throttled_until).bind(11, m.last_success);
  return internal::write_alone(db_, [&] { return st.run().prefixed("mailbox state"); });
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

}  // namespace mb
