// File: connectors/imap/imap_syntax.cpp — quoting, modified UTF-7, UID sets, message keys.
#include "connectors/imap/imap_syntax.h"

#include <algorithm>
#include <charconv>

#include "auth/base64.h"

namespace mb::imap {
namespace {

// Decodes one UTF-8 code point at `i`; invalid bytes map to U+FFFD so that a stray byte
// still yields a valid (if lossy) folder name rather than a broken command.
char32_t next_code_point(std::string_view s, size_t& i) {
  unsigned char c = static_cast<unsigned char>(s[i++]);
  int extra = c >= 0xF0 ? 3 : c >= 0xE0 ? 2 : c >= 0xC0 ? 1 : 0;
  if (c >= 0x80 && extra == 0) return 0xFFFD;
  char32_t cp = extra == 0 ? c : c & (0x3F >> extra);
  for (int k = 0; k < extra; ++k) {
    if (i >= s.size() || (static_cast<unsigned char>(s[i]) & 0xC0) != 0x80) return 0xFFFD;
    cp = (cp << 6) | (static_cast<unsigned char>(s[i++]) & 0x3F);
  }
  return cp > 0x10FFFF ? 0xFFFD : cp;
}

// Modified base64 of UTF-16BE (',' instead of '/', no padding).
std::string mbase64_utf16(const std::u16string& units) {
  std::string bytes;
  for (char16_t u : units) {
    bytes.push_back(static_cast<char>(u >> 8));
    bytes.push_back(static_cast<char>(u & 0xFF));
  }
  std::string b64 = base64_encode(bytes);
  while (!b64.empty() && b64.back() == '=') b64.pop_back();
  std::replace(b64.begin(), b64.end(), '/', ',');
  return b64;
}

std::optional<uint32_t> parse_u32(std::string_view s) {
  uint32_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size() || s.empty()) return std::nullopt;
  return v;
}

}  // namespace

bool needs_literal(std::string_view s) {
  return std::any_of(s.begin(), s.end(), [](char c) {
    auto u = static_cast<unsigned char>(c);
    return u == '\r' || u == '\n' || u == 0 || u >= 0x80;
  });
}

std::string quote(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 2);
  out.push_back('"');
  for (char c : s) {
    if (c == '"' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  out.push_back('"');
  return out;
}

std::string encode_mutf7(std::string_view utf8) {
  std::string out;
  std::u16string pending;
  auto flush = [&] {
    if (pending.empty()) return;
    out += '&' + mbase64_utf16(pending) + '-';
    pending.clear();
  };
  size_t i = 0;
  while (i < utf8.size()) {
    char32_t cp = next_code_point(utf8, i);
    if (cp >= 0x20 && cp <= 0x7E) {
      flush();
      out += cp == '&' ? std::string("&-") : std::string(1, static_cast<char>(cp));
    } else if (cp >= 0x10000) {
      cp -= 0x10000;
      pending.push_back(static_cast<char16_t>(0xD800 + (cp >> 10)));
      pending.push_back(static_cast<char16_t>(0xDC00 + (cp & 0x3FF)));
    } else {
      pending.push_back(static_cast<char16_t>(cp));
    }
  }
  flush();
  return out;
}

std::string format_uid_set(std::vector<uint32_t> uids) {
  std::sort(uids.begin(), uids.end());
  uids.erase(std::unique(uids.begin(), uids.end()), uids.end());
  std::string out;
  for (size_t i = 0; i < uids.size();) {
    size_t j = i;
    while (j + 1 < uids.size() && uids[j + 1] == uids[j] + 1) ++j;
    if (!out.empty()) out += ',';
    out += std::to_string(uids[i]);
    if (j > i) out += ':' + std::to_string(uids[j]);
    i = j + 1;
  }
  return out;
}

std::optional<std::vector<uint32_t>> parse_uid_set(std::string_view set, uint32_t star,
                                                   size_t max_count) {
  std::vector<uint32_t> out;
  auto number = [&](std::string_view s) -> std::optional<uint32_t> {
    return s == "*" ? std::optional<uint32_t>(star) : parse_u32(s);
  };
  while (!set.empty()) {
    size_t comma = set.find(',');
    std::string_view item = set.substr(0, comma);
    set = comma == std::string_view::npos ? std::string_view() : set.substr(comma + 1);
    size_t colon = item.find(':');
    auto lo = number(item.substr(0, colon));
    auto hi = colon == std::string_view::npos ? lo : number(item.substr(colon + 1));
    if (!lo || !hi) return std::nullopt;
    if (*lo > *hi) std::swap(lo, hi);
    if (uint64_t{*hi} - *lo + out.size() >= max_count) return std::nullopt;
    for (uint64_t u = *lo; u <= *hi; ++u) out.push_back(static_cast<uint32_t>(u));
  }
  return out;
}

std::string format_key(uint32_t uidvalidity, uint32_t uid) {
  return std::to_string(uidvalidity) + ":" + std::to_string(uid);
}

std::optional<MessageKey> parse_key(std::string_view key, bool allow_zero_uid) {
  size_t colon = key.find(':');
  if (colon == std::string_view::npos) return std::nullopt;
  auto v = parse_u32(key.substr(0, colon));
  auto u = parse_u32(key.substr(colon + 1));
  if (!v || !u || (*u == 0 && !allow_zero_uid)) return std::nullopt;
  return MessageKey{*v, *u};
}

}  // namespace mb::imap
