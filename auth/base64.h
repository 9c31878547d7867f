// File: auth/base64.h — standard base64 (RFC 4648 §4), as SASL exchanges carry it.
//
//   base64_encode("\0tim\0tanstaaftanstaaf") → "AHRpbQB0YW5zdGFhZnRhbnN0YWFm"
//   base64_decode("Zm8=") → "fo";  base64_decode("Zm8") → nullopt (padding is required)
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace mb {

// Padded standard base64 of `data` ("" for "").
std::string base64_encode(std::string_view data);
// The same appended to `out` (no copy of the result: a large body encoded in place).
void base64_append(std::string_view data, std::string& out);

// The bytes `text` encodes, or nullopt when it is not padded standard base64 (a wrong
// length, a character outside the alphabet, '=' anywhere but the end, or non-zero bits left
// over in the last character). Nothing is skipped: no whitespace, no line breaks.
std::optional<std::string> base64_decode(std::string_view text);

}  // namespace mb
