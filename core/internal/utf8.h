// File: core/internal/utf8.h — the two UTF-8 primitives that message bodies (core/message)
// and encoded-word headers (core/rfc2047) share: repairing invalid UTF-8 and converting
// with an open iconv descriptor. Not API.
#pragma once

#include <iconv.h>

#include <string>
#include <string_view>

namespace mb::internal {

inline constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

// `in` with every byte that does not start a valid UTF-8 sequence, and every NUL, replaced
// by U+FFFD.
std::string sanitized_utf8(std::string_view in);

// `in` converted by `cd` (opened to UTF-8); each byte it cannot convert becomes U+FFFD and
// conversion goes on after it. The caller closes `cd`.
std::string iconv_to_utf8(iconv_t cd, std::string_view in);

}  // namespace mb::internal
