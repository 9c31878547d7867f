// File: auth/crypto.h — the few cryptographic primitives the token store needs: AES-256-GCM
// sealing with additional authenticated data, random bytes, and parsing a 32-byte
// key given as base64 or hex. Thin wrappers over OpenSSL EVP; no OpenSSL type leaks out.
//
//   auto key = mb::parse_aes_key(text, "token store key");   // 32 bytes or kConfig
//   auto sealed = mb::aes_gcm_seal(*key, plaintext, aad);    // nonce ‖ ciphertext ‖ tag
//   auto plain = mb::aes_gcm_open(*key, *sealed, aad);       // kInvalidInput if tampered
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/status.h"

namespace mb {

using AesKey = std::array<uint8_t, 32>;

inline constexpr size_t kGcmNonceSize = 12;
inline constexpr size_t kGcmTagSize = 16;

// parse_aes_key reads exactly 32 bytes written as 64 hex characters or as base64 (standard
// or URL alphabet, padding optional); surrounding whitespace is ignored. Anything else is
// kConfig naming `what` and the expected forms — never the text itself.
Result<AesKey> parse_aes_key(std::string_view text, const std::string& what);

// aes_gcm_seal encrypts `plain` under `key` with a fresh random 12-byte nonce and returns
// nonce ‖ ciphertext ‖ 16-byte tag. `aad` is authenticated but not stored.
Result<std::string> aes_gcm_seal(const AesKey& key, std::string_view plain, std::string_view aad);

// aes_gcm_open reverses aes_gcm_seal. A wrong key, a different `aad`, or any altered byte
// gives kInvalidInput ("authentication failed"); the two cannot be told apart, by design.
Result<std::string> aes_gcm_open(const AesKey& key, std::string_view sealed, std::string_view aad);

// random_bytes fills `n` bytes from OpenSSL's CSPRNG.
Result<std::string> random_bytes(size_t n);

}  // namespace mb
