// File: core/hash.h — SHA-256 and hex, for content hashes (ledger, attachments), file names
// derived from keys (auth/token_store) and certificate thumbprints (auth/jwt).
//
//   sha256_hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
#pragma once

#include <string>
#include <string_view>

namespace mb {

// The 32-byte digest; empty only if OpenSSL fails (it does not for SHA-256 in practice).
std::string sha256(std::string_view data);
// The digest as 64 lower-case hex digits.
std::string sha256_hex(std::string_view data);
// Every byte as two lower-case hex digits.
std::string hex_lower(std::string_view bytes);

}  // namespace mb
