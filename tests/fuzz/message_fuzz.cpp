// File: tests/fuzz/message_fuzz.cpp — libFuzzer target for parse_message.
//
// Built and run by tests/fuzz/CMakeLists.txt and run.sh (see README.md there); by hand, e.g.:
//   clang++ -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -I. \
//     tests/fuzz/message_fuzz.cpp core/message.cpp core/rfc2047.cpp core/status.cpp \
//     $(pkg-config --cflags --libs gmime-3.0) -o message_fuzz
//   ./message_fuzz -max_len=65536 tests/data/mail/
// Properties checked: no crash, only kInvalidInput as an error, text fields valid UTF-8.
#include <glib.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "core/message.h"

namespace {

void require_utf8(const std::string& s) {
  if (!g_utf8_validate(s.data(), static_cast<gssize>(s.size()), nullptr)) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view raw(reinterpret_cast<const char*>(data), size);
  auto r = mb::parse_message(raw);
  if (!r.ok()) {
    if (r.status().kind() != mb::ErrorKind::kInvalidInput) std::abort();
    return 0;
  }
  const mb::ParsedMessage& m = *r;
  for (const std::string* s : {&m.subject, &m.from.name, &m.from.email, &m.reply_to, &m.return_path,
                               &m.message_id, &m.in_reply_to, &m.date, &m.text, &m.html}) {
    require_utf8(*s);
  }
  for (const auto& a : m.attachments) {
    require_utf8(a.filename);
    require_utf8(a.content_id);
    if (a.filename.empty()) std::abort();
  }
  for (const auto& [name, value] : m.headers) {
    require_utf8(name);
    require_utf8(value);
  }
  // A message must parse again from an attached copy of itself without trouble.
  for (const auto& a : m.attachments) {
    if (a.content_type == "message/rfc822") (void)mb::parse_message(a.data);
  }
  return 0;
}
