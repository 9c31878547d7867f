// File: core/rfc2047.cpp — RFC 2047 decoding of header text, charset conversion with
// iconv, the masking of encoded-words for GMime's address parser, and plain MIME
// parameters as written.
#include "core/rfc2047.h"

#include <glib.h>
#include <iconv.h>

#include <algorithm>

#include "core/ascii.h"
#include "core/internal/utf8.h"

namespace mb {
namespace {


bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

bool all_space(std::string_view s) { return std::all_of(s.begin(), s.end(), is_space); }

// RFC 5322 §2.2.3: unfolding removes the line breaks (the whitespace after them stays).
std::string unfold(std::string_view raw) {
  std::string out;
  out.reserve(raw.size());
  for (char c : raw) {
    if (c != '\r' && c != '\n') out.push_back(c);
  }
  return out;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  c = ascii_lower_char(c);
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

// One word's base64 with its own padding: up to two '=' at the end, nothing after them.
// Missing padding is accepted; a stray character or a lone sixth bit group is not.
std::optional<std::string> decode_b(std::string_view text) {
  size_t pad = 0;
  while (!text.empty() && text.back() == '=' && pad < 2) {
    text.remove_suffix(1);
    ++pad;
  }
  if (text.size() % 4 == 1) return std::nullopt;
  std::string out;
  out.reserve(text.size() * 3 / 4);
  uint32_t acc = 0;
  int bits = 0;
  for (char c : text) {
    int v = ascii_base64_value(c);
    if (v < 0) return std::nullopt;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xFF));
    }
  }
  return out;
}

// RFC 2047 §4.2: "_" is a space, "=XX" a byte; an "=" without two hex digits is malformed.
std::optional<std::string> decode_q(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '_') {
      out.push_back(' ');
    } else if (c == '=') {
      if (i + 2 >= text.size()) return std::nullopt;
      int hi = hex_value(text[i + 1]);
      int lo = hex_value(text[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else {
      out.push_back(c);
    }
  }
  return out;
}

// A piece of header text: literal text, or one well-formed encoded-word.
struct Piece {
  bool word = false;
  std::string_view text;  // as written (the whole "=?…?=" for a word)
  std::string charset;    // lower case, language suffix removed
  std::string bytes;      // a word's decoded bytes
};

Piece literal_piece(std::string_view text) {
  Piece p;
  p.text = text;
  return p;
}

bool charset_char(char c) {
  return c > ' ' && c < 0x7f && c != '?' && c != '(' && c != ')' && c != '"';
}

// The encoded-word starting at s[pos] ("=?charset?B|Q?text?="), or nullopt when what is
// there is not one.
std::optional<Piece> word_at(std::string_view s, size_t pos) {
  size_t q1 = pos + 2;
  size_t q2 = q1;
  while (q2 < s.size() && charset_char(s[q2])) ++q2;
  if (q2 == q1 || q2 + 2 >= s.size() || s[q2] != '?' || s[q2 + 2] != '?') return std::nullopt;
  char encoding = ascii_lower_char(s[q2 + 1]);
  if (encoding != 'b' && encoding != 'q') return std::nullopt;
  size_t text_begin = q2 + 3;
  size_t q4 = text_begin;
  while (q4 < s.size() && s[q4] != '?' && s[q4] > ' ' && s[q4] < 0x7f) ++q4;
  if (q4 + 1 >= s.size() || s[q4] != '?' || s[q4 + 1] != '=') return std::nullopt;
  std::string_view text = s.substr(text_begin, q4 - text_begin);
  auto bytes = encoding == 'b' ? decode_b(text) : decode_q(text);
  if (!bytes) return std::nullopt;
  Piece p;
  p.word = true;
  p.text = s.substr(pos, q4 + 2 - pos);
  std::string_view charset = s.substr(q1, q2 - q1);
  p.charset = ascii_lower(charset.substr(0, charset.find('*')));  // RFC 2231 §5: "UTF-8*en"
  p.bytes = std::move(*bytes);
  return p;
}

// Splits `s` into literal text and encoded-words. Words are found anywhere ("Re:=?…?="
// too, as mail clients write them); whitespace-only text between two words is dropped.
std::vector<Piece> split(std::string_view s) {
  std::vector<Piece> pieces;
  size_t literal = 0;
  size_t pos = s.find("=?");
  while (pos != std::string_view::npos) {
    auto word = word_at(s, pos);
    if (!word) {
      pos = s.find("=?", pos + 1);
      continue;
    }
    std::string_view between = s.substr(literal, pos - literal);
    bool drop = !pieces.empty() && pieces.back().word && all_space(between);
    if (!between.empty() && !drop) pieces.push_back(literal_piece(between));
    literal = pos + word->text.size();
    pieces.push_back(std::move(*word));
    pos = s.find("=?", literal);
  }
  if (literal < s.size()) pieces.push_back(literal_piece(s.substr(literal)));
  return pieces;
}

// The UTF-8 text of pieces[begin, end): literal text as undeclared, each run of adjacent
// words of one charset converted from the bytes of all of them.
std::string join(const std::vector<Piece>& pieces, size_t begin, size_t end) {
  std::string out;
  size_t i = begin;
  while (i < end) {
    if (!pieces[i].word) {
      out += charset_to_utf8(pieces[i].text, "");
      ++i;
      continue;
    }
    std::string bytes = pieces[i].bytes;
    size_t j = i + 1;
    while (j < end && pieces[j].word && pieces[j].charset == pieces[i].charset) {
      bytes += pieces[j].bytes;
      ++j;
    }
    out += charset_to_utf8(bytes, pieces[i].charset);
    i = j;
  }
  return out;
}

// MIME names that iconv (glibc) does not know under that name, with what it knows.
std::string iconv_name(const std::string& charset) {
  static const std::pair<std::string_view, std::string_view> kAliases[] = {
      {"ks_c_5601-1987", "CP949"}, {"x-sjis", "SHIFT_JIS"}, {"x-gbk", "GBK"},
      {"gb2312", "GBK"},           {"iso-8859-8-i", "ISO-8859-8"}, {"x-mac-roman", "MACINTOSH"},
      {"iso-8859-1", "WINDOWS-1252"}, {"latin1", "WINDOWS-1252"}, {"l1", "WINDOWS-1252"},
  };
  for (const auto& [from, to] : kAliases) {
    if (charset == from) return std::string(to);
  }
  return charset;
}

// Converts with iconv, replacing each undecodable input byte; `cd` converts to UTF-8.
}  // namespace

std::string charset_to_utf8(std::string_view bytes, std::string_view charset) {
  std::string name = ascii_lower(charset.substr(0, charset.find('*')));
  bool utf8_family = name.empty() || name == "utf-8" || name == "utf8" || name == "us-ascii" ||
                     name == "ascii";
  if (utf8_family) {
    if (g_utf8_validate(bytes.data(), static_cast<gssize>(bytes.size()), nullptr)) {
      return std::string(bytes);
    }
    if (name == "utf-8" || name == "utf8") return internal::sanitized_utf8(bytes);
    name = "windows-1252";  // undeclared or mislabelled 8-bit text: what it nearly always is
  }
  iconv_t cd = iconv_open("UTF-8", iconv_name(name).c_str());
  if (cd == reinterpret_cast<iconv_t>(-1)) return charset_to_utf8(bytes, "");
  std::string out = internal::iconv_to_utf8(cd, bytes);
  iconv_close(cd);
  return internal::sanitized_utf8(out);
}

std::string decode_header_text(std::string_view raw) {
  std::string text = unfold(raw);
  std::vector<Piece> pieces = split(text);
  return join(pieces, 0, pieces.size());
}

MaskedHeader mask_encoded_words(std::string_view raw) {
  MaskedHeader m;
  std::vector<Piece> pieces = split(raw);
  std::string prefix = "mbew";
  while (ascii_lower(raw).find(prefix) != std::string::npos) prefix += 'q';
  size_t i = 0;
  while (i < pieces.size()) {
    if (!pieces[i].word) {
      m.text += pieces[i++].text;
      continue;
    }
    size_t j = i + 1;
    while (j < pieces.size() && pieces[j].word) ++j;
    MaskedHeader::Run run;
    run.placeholder = prefix + std::to_string(m.runs.size()) + "z";
    const char* first = pieces[i].text.data();
    const char* last = pieces[j - 1].text.data() + pieces[j - 1].text.size();
    run.original.assign(first, last);
    run.decoded = join(pieces, i, j);
    m.text += run.placeholder;
    m.runs.push_back(std::move(run));
    i = j;
  }
  return m;
}

std::string MaskedHeader::unmask(std::string_view s, bool decoded) const {
  std::string out(s);
  for (const Run& run : runs) {
    const std::string& with = decoded ? run.decoded : run.original;
    for (size_t at = out.find(run.placeholder); at != std::string::npos;
         at = out.find(run.placeholder, at + with.size())) {
      out.replace(at, run.placeholder.size(), with);
    }
  }
  return out;
}

namespace {

struct Parameter {
  std::string name;  // lower case, as written otherwise ("filename*0*")
  std::string value;
};

// Content-Type / Content-Disposition parameters after the first ';', quotes removed.
std::vector<Parameter> parameters(std::string_view value) {
  std::string s = unfold(value);
  std::vector<Parameter> out;
  size_t pos = s.find(';');
  while (pos != std::string::npos && pos < s.size()) {
    size_t eq = s.find_first_of("=;", pos + 1);
    if (eq == std::string::npos) break;
    if (s[eq] == ';') {
      pos = eq;
      continue;
    }
    Parameter p;
    p.name = ascii_lower(ascii_trim(std::string_view(s).substr(pos + 1, eq - pos - 1)));
    size_t v = eq + 1;
    while (v < s.size() && is_space(s[v])) ++v;
    if (v < s.size() && s[v] == '"') {
      for (++v; v < s.size() && s[v] != '"'; ++v) {
        if (s[v] == '\\' && v + 1 < s.size()) ++v;
        p.value.push_back(s[v]);
      }
      pos = s.find(';', v);
    } else {
      pos = s.find(';', v);
      p.value = std::string(ascii_trim(std::string_view(s).substr(v, pos == std::string::npos
                                                                   ? std::string::npos
                                                                   : pos - v)));
    }
    out.push_back(std::move(p));
  }
  return out;
}

}  // namespace

std::optional<std::string> raw_parameter(std::string_view header_value, std::string_view name) {
  std::string want = ascii_lower(name);
  for (auto& p : parameters(header_value)) {
    if (p.name == want) return std::move(p.value);
  }
  return std::nullopt;
}

bool has_rfc2231_parameter(std::string_view header_value, std::string_view name) {
  std::string want = ascii_lower(name) + "*";
  auto params = parameters(header_value);
  return std::any_of(params.begin(), params.end(),
                     [&](const Parameter& p) { return p.name.starts_with(want); });
}

}  // namespace mb
