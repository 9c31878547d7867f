// File: core/internal/store_util.h — what the parts of the Store (core/store*.cpp) share:
// unwrapping a Result, reading every row of a statement, JSON string lists in columns, and
// joining a caller's write transaction.
//
//   MB_ASSIGN_OR_RETURN(st, Stmt::prepare(db_, "SELECT ..."));
//   return collect_rows(st, ticket_from_row);   // Result<std::vector<Ticket>>
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "core/internal/sqlite.h"
#include "core/status.h"

struct sqlite3;

// Unwraps a Result<T> into `var` or returns its Status from the enclosing function.
#define MB_ASSIGN_OR_RETURN(var, expr)                    \
  auto var##_result_ = (expr);                            \
  if (!var##_result_.ok()) return var##_result_.status(); \
  auto var = std::move(*var##_result_)

namespace mb::internal {

// Steps `st` to its end and returns from_row(st) of every row, in order.
template <typename FromRow>
auto collect_rows(Stmt& st, FromRow from_row)
    -> Result<std::vector<std::decay_t<decltype(from_row(std::as_const(st)))>>> {
  std::vector<std::decay_t<decltype(from_row(std::as_const(st)))>> out;
  for (;;) {
    auto row = st.step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    out.push_back(from_row(std::as_const(st)));
  }
  return out;
}

// Same for a from_row that can fail (returns a Result<T>): its first error is the result.
template <typename FromRow>
auto collect_checked_rows(Stmt& st, FromRow from_row)
    -> Result<std::vector<std::decay_t<decltype(*from_row(std::as_const(st)))>>> {
  std::vector<std::decay_t<decltype(*from_row(std::as_const(st)))>> out;
  for (;;) {
    auto row = st.step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    auto value = from_row(std::as_const(st));
    if (!value.ok()) return value.status();
    out.push_back(std::move(*value));
  }
  return out;
}

// A JSON array of strings; invalid UTF-8 is replaced, not thrown on: a hostile file name or
// address must not abort a commit.
std::string strings_to_json(const std::vector<std::string>& strings);
// The strings of a JSON array; anything else (or a non-string element) is left out.
std::vector<std::string> strings_from_json(const std::string& text);

// A write transaction of its own, or none when the caller already holds one
// (Store::update_mailbox_state), whose commit or rollback then covers this work too.
Result<std::optional<Transaction>> begin_unless_nested(sqlite3* db);
Status commit_if_own(std::optional<Transaction>& tx);

// Runs `write` (statements that change the store) in a write transaction of its own, or in
// the caller's (begin_unless_nested). Even one UPDATE goes through a Transaction so that it
// takes its turn at the store's writer gate (core/internal/writer_gate.h) instead of meeting
// the queued writers in SQLite's busy handler, where it could lose every retry.
Status write_alone(sqlite3* db, const std::function<Status()>& write);

}  // namespace mb::internal
