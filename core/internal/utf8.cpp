// File: core/internal/utf8.cpp
#include "core/internal/utf8.h"

#include <glib.h>

#include <cerrno>

namespace mb::internal {

std::string sanitized_utf8(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  const char* p = in.data();
  const char* end = p + in.size();
  while (p < end) {
    const gchar* valid_end = nullptr;
    // With a length, g_utf8_validate also stops at a NUL byte.
    if (g_utf8_validate(p, end - p, &valid_end)) {
      out.append(p, end);
      break;
    }
    out.append(p, valid_end);
    out.append(kReplacement);
    p = valid_end + 1;
  }
  return out;
}

std::string iconv_to_utf8(iconv_t cd, std::string_view in) {
  std::string out;
  out.reserve(in.size() + in.size() / 4 + 16);
  char* inbuf = const_cast<char*>(in.data());  // iconv's signature; input is not written
  size_t inleft = in.size();
  char buf[16384];
  for (;;) {
    char* outbuf = buf;
    size_t outleft = sizeof buf;
    size_t rc = iconv(cd, &inbuf, &inleft, &outbuf, &outleft);
    int err = errno;
    out.append(buf, static_cast<size_t>(outbuf - buf));
    if (rc != static_cast<size_t>(-1)) break;  // all converted; UTF-8 output needs no flush
    if (err == E2BIG) continue;
    out.append(kReplacement);
    if (err == EINVAL || inleft == 0) break;  // truncated sequence at the end
    ++inbuf;
    --inleft;
  }
  return out;
}

}  // namespace mb::internal
