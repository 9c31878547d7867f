// File: core/internal/migrations.h — the store's schema as an ordered list of migrations.
//
// Migration i (0-based) takes a database from PRAGMA user_version i to i + 1. Scripts are
// only ever appended: a released script is never edited, so every file upgrades the same way.
#pragma once

#include <span>

namespace mb::internal {

std::span<const char* const> store_migrations();

}  // namespace mb::internal
