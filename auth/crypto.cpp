// File: auth/crypto.cpp — AES-256-GCM, random bytes and key parsing over OpenSSL EVP.
#include "auth/crypto.h"

#include <openssl/evp.h>
#include <openssl/rand.h>

#include <memory>

#include "core/ascii.h"

namespace mb {
namespace {

struct CipherCtxFree {
  void operator()(EVP_CIPHER_CTX* c) const { EVP_CIPHER_CTX_free(c); }
};
using CipherCtx = std::unique_ptr<EVP_CIPHER_CTX, CipherCtxFree>;

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool decode_hex(std::string_view in, std::string& out) {
  if (in.size() % 2 != 0) return false;
  out.clear();
  for (size_t i = 0; i < in.size(); i += 2) {
    int hi = hex_value(in[i]), lo = hex_value(in[i + 1]);
    if (hi < 0 || lo < 0) return false;
    out.push_back(static_cast<char>(hi * 16 + lo));
  }
  return true;
}

int base64_value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+' || c == '-') return 62;
  if (c == '/' || c == '_') return 63;
  return -1;
}

// Strict enough for a key: every character must be in the alphabet, padding only at the end,
// and the unused low bits of the last character must be zero (so one key has one spelling).
bool decode_base64(std::string_view in, std::string& out) {
  while (!in.empty() && in.back() == '=') in.remove_suffix(1);
  if (in.size() % 4 == 1) return false;
  out.clear();
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    int v = base64_value(c);
    if (v < 0) return false;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xFF));
    }
  }
  return (acc & ((1u << bits) - 1)) == 0;
}

const unsigned char* bytes(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

}  // namespace

Result<AesKey> parse_aes_key(std::string_view text, const std::string& what) {
  text = ascii_trim(text);
  std::string raw;
  bool decoded = text.size() == 64 ? decode_hex(text, raw) : decode_base64(text, raw);
  if (!decoded || raw.size() != 32) {
    return Status(ErrorKind::kConfig,
                  what + ": must be a 32-byte key written as 64 hex characters or as base64 "
                         "(e.g. `openssl rand -base64 32`)");
  }
  AesKey key;
  std::copy(raw.begin(), raw.end(), key.begin());
  return key;
}

Result<std::string> random_bytes(size_t n) {
  std::string out(n, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(n)) != 1) {
    return Status(ErrorKind::kInternal, "the random number generator failed");
  }
  return out;
}

Result<std::string> aes_gcm_seal(const AesKey& key, std::string_view plain,
                                 std::string_view aad) {
  Result<std::string> nonce = random_bytes(kGcmNonceSize);
  if (!nonce.ok()) return nonce.status();
  CipherCtx ctx(EVP_CIPHER_CTX_new());
  std::string out = *nonce;
  out.resize(kGcmNonceSize + plain.size() + kGcmTagSize);
  auto* dst = reinterpret_cast<unsigned char*>(out.data()) + kGcmNonceSize;
  int len = 0, fin = 0;
  bool ok = ctx && EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, key.data(),
                                      bytes(*nonce)) == 1 &&
            EVP_EncryptUpdate(ctx.get(), nullptr, &len, bytes(aad),
                              static_cast<int>(aad.size())) == 1 &&
            EVP_EncryptUpdate(ctx.get(), dst, &len, bytes(plain),
                              static_cast<int>(plain.size())) == 1 &&
            EVP_EncryptFinal_ex(ctx.get(), dst + len, &fin) == 1 &&
            EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, kGcmTagSize,
                                dst + plain.size()) == 1;
  if (!ok) return Status(ErrorKind::kInternal, "AES-256-GCM encryption failed");
  return out;
}

Result<std::string> aes_gcm_open(const AesKey& key, std::string_view sealed,
                                 std::string_view aad) {
  if (sealed.size() < kGcmNonceSize + kGcmTagSize) {
    return Status(ErrorKind::kInvalidInput, "authentication failed (too short)");
  }
  std::string_view nonce = sealed.substr(0, kGcmNonceSize);
  std::string_view body = sealed.substr(kGcmNonceSize, sealed.size() - kGcmNonceSize - kGcmTagSize);
  std::string tag(sealed.substr(sealed.size() - kGcmTagSize));
  CipherCtx ctx(EVP_CIPHER_CTX_new());
  std::string plain(body.size(), '\0');
  auto* dst = reinterpret_cast<unsigned char*>(plain.data());
  int len = 0, fin = 0;
  bool ok = ctx && EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, key.data(),
                                      bytes(nonce)) == 1 &&
            EVP_DecryptUpdate(ctx.get(), nullptr, &len, bytes(aad),
                              static_cast<int>(aad.size())) == 1 &&
            EVP_DecryptUpdate(ctx.get(), dst, &len, bytes(body),
                              static_cast<int>(body.size())) == 1 &&
            EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, kGcmTagSize, tag.data()) == 1 &&
            EVP_DecryptFinal_ex(ctx.get(), dst + len, &fin) == 1;
  if (!ok) return Status(ErrorKind::kInvalidInput, "authentication failed");
  return plain;
}

}  // namespace mb
