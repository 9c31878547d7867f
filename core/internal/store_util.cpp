// File: core/internal/store_util.cpp — helpers shared by the parts of the Store.
#include "core/internal/store_util.h"

#include <sqlite3.h>

#include <nlohmann/json.hpp>

namespace mb::internal {

std::string strings_to_json(const std::vector<std::string>& strings) {
  return nlohmann::json(strings).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::vector<std::string> strings_from_json(const std::string& text) {
  auto j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  std::vector<std::string> out;
  if (!j.is_array()) return out;
  for (const auto& v : j) {
    if (v.is_string()) out.push_back(v.get<std::string>());
  }
  return out;
}

Result<std::optional<Transaction>> begin_unless_nested(sqlite3* db) {
  if (sqlite3_get_autocommit(db) == 0) return std::optional<Transaction>();
  auto tx = Transaction::begin_immediate(db);
  if (!tx.ok()) return tx.status();
  return std::optional<Transaction>(std::move(*tx));
}

Status commit_if_own(std::optional<Transaction>& tx) {
  return tx ? tx->commit() : Status::Ok();
}

Status write_alone(sqlite3* db, const std::function<Status()>& write) {
  auto tx = begin_unless_nested(db);
  if (!tx.ok()) return tx.status();
  MB_RETURN_IF_ERROR(write());
  return commit_if_own(*tx);
}

}  // namespace mb::internal
