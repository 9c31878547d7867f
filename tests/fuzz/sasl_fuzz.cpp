// File: tests/fuzz/sasl_fuzz.cpp — libFuzzer entry point for what SASL reads from a server:
// base64 decoding, the bearer error JSON, and every mechanism answering hostile challenges.
//
//   clang++ -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -I. tests/fuzz/sasl_fuzz.cpp \
//     auth/base64.cpp auth/sasl*.cpp core/status.cpp -o sasl_fuzz
//   ./sasl_fuzz -max_len=4096
//
// Invariants: whatever decodes re-encodes to the same text (one encoding per byte string);
// an exchange never answers with anything but base64 or "*"; no failure message holds the
// secret.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "auth/base64.h"
#include "auth/sasl.h"

namespace {

constexpr const char* kSecret = "fuzz-secret-7f3a";

void check(bool ok) {
  if (!ok) std::abort();
}

void drive(std::unique_ptr<mb::sasl::Mechanism> mech, std::string_view input, bool ir) {
  mb::sasl::Exchange ex(*mech);
  if (ir) ex.initial_response();
  // Each NUL-separated piece of the input is one challenge, as received after "+ ".
  size_t start = 0;
  for (int n = 0; n < 8 && start <= input.size(); ++n) {
    size_t end = input.find('\0', start);
    std::string_view text = input.substr(start, end == std::string_view::npos ? end : end - start);
    mb::sasl::Reply r = ex.answer(text);
    check(r.line == "*" || r.line == "=" || mb::base64_decode(r.line).has_value());
    check(ex.failure().message().find(kSecret) == std::string::npos);
    if (end == std::string_view::npos) break;
    start = end + 1;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  if (auto bytes = mb::base64_decode(in)) check(mb::base64_encode(*bytes) == in);
  if (auto e = mb::sasl::parse_bearer_error(in)) {
    check(!mb::sasl::describe(*e).empty());
  }
  mb::sasl::Credentials password{mb::sasl::CredentialKind::kPassword, "user", kSecret, "", "", 0};
  mb::sasl::Credentials token{mb::sasl::CredentialKind::kToken, "user", kSecret, "", "h", 993};
  bool ir = size > 0 && (data[0] & 1);
  drive(mb::sasl::make_plain(password), in, ir);
  drive(mb::sasl::make_login(password), in, ir);
  drive(mb::sasl::make_xoauth2(token), in, ir);
  drive(mb::sasl::make_oauthbearer(token), in, ir);
  return 0;
}
