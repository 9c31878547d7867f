// File: connectors/imap/imap_syntax.h — pure helpers for writing IMAP commands: quoting
// (quoted string or literal), modified UTF-7 folder names, UID sets, and the
// "UIDVALIDITY:UID" message keys. (SASL messages live in auth/sasl.h.)
//
//   needs_literal("pa\"ss")  → false; quote("pa\"ss") → "\"pa\\\"ss\""
//   format_uid_set({1,2,3,7}) → "1:3,7"
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mb::imap {

// True when `s` cannot travel as a quoted string (CR, LF, NUL or 8-bit bytes) and must be
// sent as a literal.
bool needs_literal(std::string_view s);
// A quoted string with `"` and `\` escaped. Only for strings where !needs_literal(s).
std::string quote(std::string_view s);

// Folder name (UTF-8) → modified UTF-7 (RFC 3501 §5.1.3): "Entwürfe" → "Entw&APw-rfe".
std::string encode_mutf7(std::string_view utf8);

// Sorted, deduplicated UIDs → "1:3,7,9:10". Empty input gives "".
std::string format_uid_set(std::vector<uint32_t> uids);
// "1:3,7" → {1,2,3,7}. `star` stands in for '*'. nullopt when malformed or when the set
// would expand to more than `max_count` UIDs.
std::optional<std::vector<uint32_t>> parse_uid_set(std::string_view set, uint32_t star,
                                                   size_t max_count = 10'000'000);

// Message keys: "UIDVALIDITY:UID".
struct MessageKey {
  uint32_t uidvalidity = 0;
  uint32_t uid = 0;
};
std::string format_key(uint32_t uidvalidity, uint32_t uid);
// nullopt when malformed; UID 0 only with allow_zero_uid (list state "V:0": none listed).
std::optional<MessageKey> parse_key(std::string_view key, bool allow_zero_uid = false);

}  // namespace mb::imap
