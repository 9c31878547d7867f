// File: core/ascii.h — ASCII case mapping for protocol words, header names, addresses and
// keys. Only A–Z and a–z change; every other byte (UTF-8 included) is kept as it is, whatever
// the process locale.
//
//   ascii_lower("Content-Type") == "content-type";  ascii_upper("auth") == "AUTH"
//   ascii_iequals("PREFER", "prefer")
#pragma once

#include <string>
#include <string_view>

namespace mb {

char ascii_lower_char(char c);
std::string ascii_lower(std::string_view s);
std::string ascii_upper(std::string_view s);
// Equal but for ASCII case.
bool ascii_iequals(std::string_view a, std::string_view b);
// The value of a base64 digit (RFC 4648 §4: A–Z a–z 0–9 + /), -1 for any other byte.
int ascii_base64_value(char c);
// `s` without the ASCII white space (space, \t, \r, \n, \v, \f) at either end.
std::string_view ascii_trim(std::string_view s);

}  // namespace mb
