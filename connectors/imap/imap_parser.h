// File: connectors/imap/imap_parser.h — the IMAP4rev1/rev2 response parser: bytes in, a
// response tree out, with no I/O.
//
// ResponseParser is incremental. Feed it whatever bytes arrived; it answers need-more, a
// complete response, a literal that is due, or an error (kProtocol with the reason). When a
// literal `{N}` is due the caller may read its N bytes itself straight into a string
// reserved to N and hand the string over with supply_literal() — no copy of a large message
// body — or simply keep feeding bytes (how the tests and the fuzzer drive it).
//
//   ResponseParser p;
//   std::string_view in = "* 3 EXISTS\r\n";
//   ParseStep step = p.feed(in);          // step.kind == ParseStep::kResponse
//   ImapResponse r = p.take_response();   // r.number == 3, r.name == "EXISTS"
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace mb::imap {

// One value of a parsed response: atom, number, string (quoted or literal), NIL or list.
struct Value {
  enum class Type { kAtom, kNumber, kString, kNil, kList };
  Type type = Type::kAtom;
  std::string text;          // atom text (case kept) or string contents
  uint64_t number = 0;       // for kNumber (text holds its digits too)
  bool literal = false;      // a kString that arrived as a literal
  std::vector<Value> list;   // for kList

  bool is_atom(std::string_view upper_name) const;  // case-insensitive atom comparison
  // A number, or an atom/string made only of digits (servers are not always tidy).
  std::optional<uint64_t> as_number() const;
  // Atom, string or number text; empty for NIL and lists.
  std::string_view as_string() const { return text; }
};

enum class Condition { kNone, kOk, kNo, kBad, kPreauth, kBye };

// One complete server response.
struct ImapResponse {
  enum class Kind { kUntagged, kTagged, kContinuation };
  Kind kind = Kind::kUntagged;
  std::string tag;                   // for kTagged
  Condition condition = Condition::kNone;  // status responses (OK NO BAD PREAUTH BYE)
  std::string code;                  // response code name, upper-cased: "UIDVALIDITY"
  std::vector<Value> code_args;      // [UIDVALIDITY 3] → {3}; [CAPABILITY A B] → {A, B}
  std::string text;                  // human-readable text (or a continuation's payload)
  std::optional<uint64_t> number;    // "* 3 EXISTS" → 3
  std::string name;                  // upper-cased: EXISTS, FETCH, SEARCH, CAPABILITY, ...
  std::vector<Value> args;           // what follows the name

  bool is_status() const { return condition != Condition::kNone; }
};

const char* to_string(Condition c);

struct ParserLimits {
  size_t max_line = 64 * 1024;              // one line, CRLF excluded
  uint64_t max_literal = 1024ull << 20;     // one literal (1 GiB)
  size_t max_depth = 32;                    // nested lists
  size_t max_literals = 100000;             // literals in one response
};

struct ParseStep {
  enum Kind { kNeedMore, kLiteral, kResponse, kError };
  Kind kind = kNeedMore;
  uint64_t literal_size = 0;  // for kLiteral
};

class ResponseParser {
 public:
  explicit ResponseParser(ParserLimits limits = {});

  // Consumes bytes from the front of `in` until a response is complete, a literal is due,
  // or `in` is empty. After kLiteral, either call supply_literal() or keep feeding bytes.
  // After kResponse call take_response(); after kError call error() (the parser then
  // refuses further input until reset()).
  ParseStep feed(std::string_view& in);
  // Feeds a line that the caller already split off (without its CRLF).
  ParseStep feed_line(std::string_view line);
  // Hands over the body of the literal announced by kLiteral (exactly literal_size bytes).
  ParseStep supply_literal(std::string body);

  // While a literal is due (after kLiteral): the response's name ("FETCH"), how deep the
  // literal sits (1: an argument of the response, 2: inside its first list) and the atom
  // just before it in its list ("BODY[]"), or "" — so that the caller can tell a body it
  // asked for from data it did not.
  struct LiteralContext {
    std::string_view name;
    size_t depth = 0;
    std::string_view key;
  };
  LiteralContext literal_context() const;

  ImapResponse take_response();
  // True when no response is partly read (a wait may stop here and resume later).
  bool between_responses() const {
    return phase_ == Phase::kLine && first_line_ && line_.empty() && !cr_seen_;
  }
  const Status& error() const { return error_; }
  void reset();

 private:
  enum class Phase { kLine, kLiteral, kDone, kError };
  ParseStep on_line_end();
  ParseStep fail(std::string reason);
  ParseStep fail_with(Status s);
  Status parse_first_line(std::string_view line, size_t& pos, bool& done);
  ParseStep tokenize_segment(std::string_view line, size_t pos);

  ParserLimits limits_;
  Phase phase_ = Phase::kLine;
  std::string line_;           // the line being collected
  bool cr_seen_ = false;
  bool first_line_ = true;
  uint64_t literal_left_ = 0;
  std::string literal_;        // a literal collected by feed()
  size_t literal_count_ = 0;
  std::vector<std::vector<Value>*> stack_;  // open lists, outermost (the args) first
  ImapResponse response_;
  Status error_;
};

// What the client knows of the selected folder's size from untagged responses.
struct FolderCounts {
  uint64_t exists = 0;  // "* n EXISTS", less one per "* n EXPUNGE" since
  uint64_t recent = 0;  // "* n RECENT"
};

// What one response says about the selected folder (RFC 3501 §7.3–7.4, RFC 2177 IDLE):
// kNewMail for "* n EXISTS" above counts.exists or "* n RECENT" above counts.recent (the
// folder grew), kBye for an untagged BYE (the server is closing the connection), else kNone.
// Updates `counts`: EXISTS and RECENT set them, EXPUNGE takes one message off (so that an
// EXISTS after expunges is compared with the real size, not a stale one). Pure, for the
// client and the fuzzer.
enum class FolderNews { kNone, kNewMail, kBye };
FolderNews folder_news(const ImapResponse& r, FolderCounts& counts);

// Parses one complete response held in `bytes` (lines and literals inline); for tests and
// the fuzzer. kProtocol on malformed input or when `bytes` holds less than a response.
Result<ImapResponse> parse_response(std::string_view bytes, ParserLimits limits = {});

}  // namespace mb::imap
