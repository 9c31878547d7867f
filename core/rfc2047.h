// File: core/rfc2047.h — RFC 2047 encoded-words in header text, decoded to UTF-8 by us.
//
// GMime 3.2.13 (Debian 12's) loses everything after a base64 encoded-word that ends in
// padding ("=?UTF-8?B?Q2Fmw6kg4oCUIA==?= =?UTF-8?B?4oKsNSDinJM=?=" gives "Café — ").
// These pure functions (no I/O) decode instead: each word's bytes with its own padding (B)
// or escapes (Q); the whitespace between adjacent encoded-words dropped (RFC 2047 §6.2);
// the bytes of adjacent words of one charset joined before conversion, so that a UTF-8 or
// ISO-2022-JP sequence split across words survives; an RFC 2231 language suffix
// ("UTF-8*en") ignored. A malformed word stays as literal text; text outside words is
// taken as UTF-8 when valid, else as Windows-1252. Output is valid UTF-8 without NUL.
//
//   mb::decode_header_text(" =?UTF-8?Q?Caf=C3=A9?=\r\n =?UTF-8?B?IOKCrA==?=")  // "Café €"
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mb {

// Decodes an unstructured header value (folded as received) to one UTF-8 string: folding
// line breaks removed (RFC 5322 §2.2.3), encoded-words decoded. Not trimmed.
std::string decode_header_text(std::string_view raw);

// Converts `bytes` in `charset` (MIME name, an RFC 2231 "*lang" suffix allowed) to valid
// UTF-8 without NUL; undecodable bytes become U+FFFD. An empty or unknown charset is taken
// as undeclared (UTF-8 when valid, else Windows-1252); ISO-8859-1 is read as Windows-1252.
std::string charset_to_utf8(std::string_view bytes, std::string_view charset);

// A structured header (an address list) with every run of encoded-words replaced by a
// placeholder atom, so that a parser that would decode them itself (GMime's address parser)
// sees none, and the runs' text decoded here can be put back in what it returns.
struct MaskedHeader {
  std::string text;  // the header with placeholders
  struct Run {
    std::string placeholder;  // an atom found nowhere in the original header
    std::string original;     // the encoded-words as written
    std::string decoded;      // their UTF-8 text
  };
  std::vector<Run> runs;

  // `s` (a name or address the parser returned) with each placeholder replaced by its
  // decoded text, or by the original words when `decoded` is false.
  std::string unmask(std::string_view s, bool decoded = true) const;
};
MaskedHeader mask_encoded_words(std::string_view raw);

// The value of MIME parameter `name` in a Content-Type or Content-Disposition value as
// written (quotes and backslash escapes removed, not otherwise decoded); nullopt when absent.
// Only the plain `name=` form: RFC 2231 `name*=` / `name*0*=` forms are not matched.
std::optional<std::string> raw_parameter(std::string_view header_value, std::string_view name);
// True when the value has an RFC 2231 form of parameter `name` (`name*=`, `name*0=`, …).
bool has_rfc2231_parameter(std::string_view header_value, std::string_view name);

}  // namespace mb
