// File: cli/terminal.h — text from mail and from servers made safe to print on a terminal.
//
// A subject, a display name or a server's error text can carry ESC/BEL sequences (colour,
// cursor moves, window titles, hyperlinks) or bidi overrides that make a terminal show
// something else than what is there. Every human-readable byte the CLI writes goes through
// TerminalSafeStream (run_cli wraps `out` and `err` in one), and single-line fields are
// rendered with printable() so that a newline cannot break a table row either.
//
// Rendering: ESC → \e, other C0 controls and DEL → \xNN (BEL → \x07, CR → \r, LF → \n,
// TAB → \t in printable(); LF, TAB and CR before LF are kept by printable_text()), C1
// controls U+0080–U+009F and bidi controls (U+061C, U+200E, U+200F, U+202A–U+202E,
// U+2066–U+2069) → <U+202E>, a byte that is not UTF-8 → \xNN. Everything else is unchanged.
//
//   ctx.out << printable(ticket.subject) << "\n";
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <ostream>
#include <streambuf>
#include <string>
#include <string_view>

namespace mb::cli {

// `s` on one line with every control character escaped (newlines and tabs too).
std::string printable(std::string_view s);
// `s` with every control character escaped except newlines, tabs and CR before LF.
std::string printable_text(std::string_view s);
// JSON text (as nlohmann's dump() writes it, control characters already \u-escaped) with
// DEL, C1 and bidi controls \u-escaped too: the same value, safe on a terminal.
std::string terminal_safe_json(std::string_view json);

// What the CLI prints for --json: terminal_safe_json() of `j` dumped with every byte that
// is not UTF-8 (server text can carry any) replaced by U+FFFD instead of a thrown error.
template <typename Json>
std::string safe_dump(const Json& j, int indent = -1) {
  return terminal_safe_json(j.dump(indent, ' ', false, Json::error_handler_t::replace));
}

// An ostream that writes printable_text() of everything written to it to `dest`, as it is
// written (a UTF-8 sequence or CR split across writes is held until it is complete).
class TerminalSafeStream : public std::ostream {
 public:
  explicit TerminalSafeStream(std::ostream& dest);
  ~TerminalSafeStream() override;
  TerminalSafeStream(const TerminalSafeStream&) = delete;
  TerminalSafeStream& operator=(const TerminalSafeStream&) = delete;

 private:
  class Buf;
  std::unique_ptr<Buf> buf_;
};

}  // namespace mb::cli
