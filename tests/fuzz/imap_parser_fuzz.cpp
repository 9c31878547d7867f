// File: tests/fuzz/imap_parser_fuzz.cpp — libFuzzer entry point for the IMAP response parser
// and the UID-set / key parsers.
//
//   clang++ -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -I. \
//     tests/fuzz/imap_parser_fuzz.cpp connectors/imap/imap_parser.cpp \
//     connectors/imap/imap_syntax.cpp auth/base64.cpp core/status.cpp core/ascii.cpp \
//     -o imap_parser_fuzz
//   ./imap_parser_fuzz -max_len=4096
//
// The first byte picks the size of the pieces the input is fed in, so the fuzzer also
// explores how responses are split across reads. Invariants: the parser always consumes
// what it is fed (or stops with an error), never returns a response after an error, and
// after reset() it accepts input again; folder_news() (what IDLE makes of each response)
// never lets the folder's count run below zero or report growth without a larger count.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "connectors/imap/imap_parser.h"
#include "connectors/imap/imap_syntax.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace mb::imap;
  if (size == 0) return 0;
  size_t piece = 1 + data[0] % 64;
  std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);

  ParserLimits limits;
  limits.max_line = 1024;
  limits.max_literal = 1 << 16;
  limits.max_depth = 16;
  ResponseParser parser(limits);
  FolderCounts counts{data[0] % 8u, 0};
  while (!in.empty()) {
    std::string_view chunk = in.substr(0, piece);
    size_t before = chunk.size();
    ParseStep step = parser.feed(chunk);
    size_t used = before - chunk.size();
    in.remove_prefix(used);
    if (step.kind == ParseStep::kResponse) {
      ImapResponse r = parser.take_response();
      FolderCounts before = counts;
      FolderNews news = folder_news(r, counts);
      if (news == FolderNews::kNewMail && counts.exists <= before.exists &&
          counts.recent <= before.recent)
        std::abort();  // growth must be growth
      if (!parser.between_responses()) std::abort();
    } else if (step.kind == ParseStep::kError) {
      if (parser.error().ok()) std::abort();  // an error must say why
      parser.reset();
      if (used == 0) in.remove_prefix(1);  // skip the byte that broke it
    } else if (step.kind == ParseStep::kNeedMore && !chunk.empty()) {
      std::abort();  // need-more must mean everything was consumed
    }
  }

  std::string_view text(reinterpret_cast<const char*>(data), size);
  (void)parse_uid_set(text, 100, 10000);
  (void)parse_key(text);
  (void)encode_mutf7(text);
  return 0;
}
