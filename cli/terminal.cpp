// File: cli/terminal.cpp — printable(), printable_text(), terminal_safe_json() and the
// stream that applies printable_text() to everything the CLI writes.
#include "cli/terminal.h"

#include <fmt/format.h>

#include <cstdint>
#include <mutex>

namespace mb::cli {
namespace {

enum class Mode { kLine, kText };
enum class Utf8 { kOk, kIncomplete, kInvalid };

// Decodes the UTF-8 sequence at the start of `in` (in[0] >= 0x80): overlong forms,
// surrogates and code points over U+10FFFF are invalid.
Utf8 decode(std::string_view in, uint32_t& cp, size_t& len) {
  auto c = static_cast<unsigned char>(in[0]);
  unsigned char lo = 0x80, hi = 0xBF;
  if (c >= 0xC2 && c <= 0xDF) {
    len = 2;
    cp = c & 0x1F;
  } else if (c >= 0xE0 && c <= 0xEF) {
    len = 3;
    cp = c & 0x0F;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    len = 4;
    cp = c & 0x07;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
  } else {
    return Utf8::kInvalid;
  }
  for (size_t k = 1; k < len; ++k) {
    if (k >= in.size()) return Utf8::kIncomplete;
    auto b = static_cast<unsigned char>(in[k]);
    if (b < lo || b > hi) return Utf8::kInvalid;
    lo = 0x80;
    hi = 0xBF;
    cp = (cp << 6) | (b & 0x3F);
  }
  return Utf8::kOk;
}

// C1 controls, and the bidi controls that reorder what a terminal shows (Trojan Source).
bool hidden_control(uint32_t cp) {
  return (cp >= 0x80 && cp <= 0x9F) || cp == 0x061C || cp == 0x200E || cp == 0x200F ||
         (cp >= 0x202A && cp <= 0x202E) || (cp >= 0x2066 && cp <= 0x2069);
}

void append_escape(std::string& out, unsigned char c) {
  switch (c) {
    case 0x1B: out += "\\e"; break;
    case '\n': out += "\\n"; break;
    case '\t': out += "\\t"; break;
    case '\r': out += "\\r"; break;
    default: out += fmt::format("\\x{:02x}", c); break;
  }
}

// Appends the rendering of in[0, n) and returns n: all of `in`, or (unless `final`) less,
// when it ends in an incomplete UTF-8 sequence or, in text mode, a CR that an LF may follow.
size_t render(std::string_view in, Mode mode, bool final, std::string& out) {
  size_t i = 0;
  while (i < in.size()) {
    auto c = static_cast<unsigned char>(in[i]);
    if (c >= 0x20 && c < 0x7F) {
      out += static_cast<char>(c);
      ++i;
      continue;
    }
    if (c < 0x80) {
      bool text = mode == Mode::kText;
      if (text && (c == '\n' || c == '\t')) {
        out += static_cast<char>(c);
        ++i;
        continue;
      }
      if (text && c == '\r' && i + 1 == in.size() && !final) break;
      if (text && c == '\r' && i + 1 < in.size() && in[i + 1] == '\n') {
        out += "\r\n";
        i += 2;
        continue;
      }
      append_escape(out, c);
      ++i;
      continue;
    }
    uint32_t cp = 0;
    size_t len = 1;
    Utf8 r = decode(in.substr(i), cp, len);
    if (r == Utf8::kIncomplete && !final) break;
    if (r != Utf8::kOk) {
      out += fmt::format("\\x{:02x}", c);
      ++i;
      continue;
    }
    if (hidden_control(cp)) out += fmt::format("<U+{:04X}>", cp);
    else out.append(in.substr(i, len));
    i += len;
  }
  return i;
}

}  // namespace

std::string printable(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  render(s, Mode::kLine, true, out);
  return out;
}

std::string printable_text(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  render(s, Mode::kText, true, out);
  return out;
}

std::string terminal_safe_json(std::string_view json) {
  std::string out;
  out.reserve(json.size());
  size_t i = 0;
  while (i < json.size()) {
    auto c = static_cast<unsigned char>(json[i]);
    uint32_t cp = c;
    size_t len = 1;
    if (c >= 0x80 && decode(json.substr(i), cp, len) != Utf8::kOk) {
      out += "\\ufffd";  // nlohmann never writes such a byte (it throws or replaces)
      i += 1;
      continue;
    }
    if (c == 0x7F || hidden_control(cp)) out += fmt::format("\\u{:04x}", cp);
    else out.append(json.substr(i, len));
    i += len;
  }
  return out;
}

class TerminalSafeStream::Buf : public std::streambuf {
 public:
  explicit Buf(std::ostream& dest) : dest_(dest) {}
  void finish() {
    std::lock_guard lock(mu_);
    emit(true);
    dest_.flush();
  }

 protected:
  int_type overflow(int_type ch) override {
    if (traits_type::eq_int_type(ch, traits_type::eof())) return traits_type::not_eof(ch);
    std::lock_guard lock(mu_);
    pending_.push_back(traits_type::to_char_type(ch));
    emit(false);
    return ch;
  }
  std::streamsize xsputn(const char* s, std::streamsize n) override {
    std::lock_guard lock(mu_);
    pending_.append(s, static_cast<size_t>(n));
    emit(false);
    return n;
  }
  int sync() override {
    std::lock_guard lock(mu_);
    dest_.flush();
    return dest_.good() ? 0 : -1;
  }

 private:
  void emit(bool final) {
    std::string out;
    size_t used = render(pending_, Mode::kText, final, out);
    pending_.erase(0, used);
    if (!out.empty()) dest_.write(out.data(), static_cast<std::streamsize>(out.size()));
  }

  std::ostream& dest_;
  std::mutex mu_;  // the sync workers log through the same stream
  std::string pending_;
};

TerminalSafeStream::TerminalSafeStream(std::ostream& dest)
    : std::ostream(nullptr), buf_(std::make_unique<Buf>(dest)) {
  rdbuf(buf_.get());
}

TerminalSafeStream::~TerminalSafeStream() { buf_->finish(); }

}  // namespace mb::cli
