// File: core/store_service.cpp — the Store's service activity (store v6): what each
// mailbox's worker of `mailbridge run` is doing, for `status` in another process.
#include "core/store.h"

#include "core/internal/sqlite.h"
#include "core/internal/store_util.h"

namespace mb {

using internal::Stmt;
using internal::Transaction;

namespace {

ServiceActivityRecord activity_from_row(const Stmt& st) {
  ServiceActivityRecord r;
  r.mailbox = st.col_text(0);
  r.activity = st.col_text(1);
  r.next_run = st.col_text(2);
  r.last_error = st.col_text(3);
  r.since = st.col_text(4);
  r.pid = st.col_int(5);
  return r;
}

}  // namespace

Status Store::put_service_activities(const std::vector<ServiceActivityRecord>& records) {
  if (records.empty()) return Status::Ok();
  MB_ASSIGN_OR_RETURN(tx, Transaction::begin_immediate(db_));
  MB_ASSIGN_OR_RETURN(st, Stmt::prepare(db_,
      "INSERT OR REPLACE INTO service_activity (mailbox, activity, next_run, last_error, "
      "since, pid) VALUES (?, ?, ?, ?, ?, ?)"));
  for (const auto& r : records) {
    MB_RETURN_IF_ERROR(st.reset());
    st.bind(1, r.mailbox).bind(2, r.activity).bind(3, r.next_run).bind(4, r.last_error);
    st.bind(5, r.since).bind(6, r.pid);
    MB_RETURN_IF_ERROR(st.run().prefixed("service activity"));
  }
  return tx.commit();
}

Status Store::delete_service_activity(const std::string& mailbox) {
  MB_ASSIGN_OR_RETURN(st, Stmt::prepare(db_, mailbox.empty()
      ? "DELETE FROM service_activity"
      : "DELETE FROM service_activity WHERE mailbox = ?"));
  if (!mailbox.empty()) st.bind(1, mailbox);
  return internal::write_alone(db_, [&] { return st.run().prefixed("service activity"); });
}

Result<std::vector<ServiceActivityRecord>> Store::service_activities() {
  MB_ASSIGN_OR_RETURN(st, Stmt::prepare(db_,
      "SELECT mailbox, activity, next_run, last_error, since, pid FROM service_activity "
      "ORDER BY mailbox"));
  return internal::collect_rows(st, activity_from_row);
}

}  // namespace mb
