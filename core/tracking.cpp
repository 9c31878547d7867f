// File: core/tracking.cpp — signing, verifying and finding tracking cookies (OpenSSL HMAC).
#include "core/tracking.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <cctype>
#include <cstdint>

namespace mb {
namespace {

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
constexpr uint8_t kVersion = 1;
// 80 bits of MAC. The secret never leaves the server and nothing answers "valid or not" to
// an outsider, so a forger can only guess online, one reply per guess, each succeeding with
// probability 2^-80; that is the bound NIST SP 800-107 gives for a truncated HMAC, and far
// beyond anything mail can carry. Longer would only lengthen every subject line.
constexpr size_t kMacBytes = 10;
// Keeps a cookie's MAC from ever being valid as another use of the same secret.
constexpr std::string_view kLabel = "mailbridge tracking cookie v1\n";

int base32_value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a';
  if (c >= '2' && c <= '7') return c - '2' + 26;
  return -1;
}

void put_varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

std::optional<uint64_t> get_varint(std::string_view in, size_t& pos) {
  uint64_t v = 0;
  for (int shift = 0; shift < 63 && pos < in.size(); shift += 7) {
    auto b = static_cast<uint8_t>(in[pos++]);
    v |= static_cast<uint64_t>(b & 0x7f) << shift;
    if ((b & 0x80) == 0) return v;
  }
  return std::nullopt;
}

bool ieq_prefix(std::string_view text, size_t pos, std::string_view prefix) {
  if (text.size() - pos < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i) {
    char c = text[pos + i];
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
    if (c != prefix[i]) return false;
  }
  return true;
}

}  // namespace

std::string base32_encode(std::string_view data) {
  std::string out;
  uint32_t buffer = 0;
  int bits = 0;
  for (unsigned char c : data) {
    buffer = (buffer << 8) | c;
    bits += 8;
    while (bits >= 5) {
      out.push_back(kAlphabet[(buffer >> (bits - 5)) & 31]);
      bits -= 5;
    }
  }
  if (bits > 0) out.push_back(kAlphabet[(buffer << (5 - bits)) & 31]);
  return out;
}

std::optional<std::string> base32_decode(std::string_view text) {
  // Lengths 1, 3 and 6 (mod 8) cannot come from whole bytes.
  size_t rem = text.size() % 8;
  if (rem == 1 || rem == 3 || rem == 6) return std::nullopt;
  std::string out;
  uint32_t buffer = 0;
  int bits = 0;
  for (char c : text) {
    int v = base32_value(c);
    if (v < 0) return std::nullopt;
    buffer = (buffer << 5) | static_cast<uint32_t>(v);
    bits += 5;
    if (bits >= 8) {
      out.push_back(static_cast<char>((buffer >> (bits - 8)) & 0xff));
      bits -= 8;
    }
  }
  return out;
}

TrackingSigner::TrackingSigner(std::string secret) : secret_(std::move(secret)) {}

std::string TrackingSigner::mac(std::string_view payload) const {
  std::string input(kLabel);
  input.append(payload);
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), secret_.data(), static_cast<int>(secret_.size()),
       reinterpret_cast<const unsigned char*>(input.data()), input.size(), md, &len);
  return std::string(reinterpret_cast<const char*>(md), kMacBytes);
}

std::string TrackingSigner::make(const TrackingCookie& cookie) const {
  std::string payload(1, static_cast<char>(kVersion));
  put_varint(payload, static_cast<uint64_t>(std::max<int64_t>(0, cookie.ticket)));
  put_varint(payload, static_cast<uint64_t>(std::max<int64_t>(0, cookie.email)));
  payload.append(cookie.project.substr(0, kMaxCookieProject));
  return "MB-" + base32_encode(payload + mac(payload));
}

std::string TrackingSigner::bracketed(const TrackingCookie& cookie) const {
  return "[#" + make(cookie) + "]";
}

std::optional<TrackingCookie> TrackingSigner::verify(std::string_view token) const {
  if (ieq_prefix(token, 0, "MB-")) token.remove_prefix(3);
  auto bytes = base32_decode(token);
  // version + two one-byte varints at least, then the MAC.
  if (!bytes || bytes->size() < 3 + kMacBytes) return std::nullopt;
  std::string_view payload(bytes->data(), bytes->size() - kMacBytes);
  std::string_view tag(bytes->data() + payload.size(), kMacBytes);
  std::string expected = mac(payload);
  if (CRYPTO_memcmp(expected.data(), tag.data(), kMacBytes) != 0) return std::nullopt;
  // Authentic from here on: only we could have written it, yet parse it defensively.
  if (static_cast<uint8_t>(payload[0]) != kVersion) return std::nullopt;
  size_t pos = 1;
  auto ticket = get_varint(payload, pos);
  auto email = get_varint(payload, pos);
  if (!ticket || !email || *ticket == 0 || *ticket > INT64_MAX || *email > INT64_MAX) {
    return std::nullopt;
  }
  TrackingCookie c;
  c.ticket = static_cast<int64_t>(*ticket);
  c.email = static_cast<int64_t>(*email);
  c.project = std::string(payload.substr(pos));
  return c;
}

std::optional<TrackingCookie> TrackingSigner::find_in(std::string_view text) const {
  for (size_t pos = 0; pos + 3 < text.size(); ++pos) {
    if (!ieq_prefix(text, pos, "MB-")) continue;
    // "MB-" must start a word: "XMB-…" is somebody else's token.
    if (pos > 0 && std::isalnum(static_cast<unsigned char>(text[pos - 1])) != 0) continue;
    size_t end = pos + 3;
    while (end < text.size() && base32_value(text[end]) >= 0) ++end;
    if (auto c = verify(text.substr(pos + 3, end - pos - 3))) return c;
  }
  return std::nullopt;
}

std::optional<TrackingCookie> TrackingSigner::find(
    std::initializer_list<std::string_view> texts) const {
  for (std::string_view t : texts) {
    if (auto c = find_in(t)) return c;
  }
  return std::nullopt;
}

}  // namespace mb
