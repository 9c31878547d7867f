// File: tests/unit/core/rfc2047_test.cpp — decode_header_text and friends: B and Q words
// with every padding, multi-byte sequences split across words, mixed charsets, ISO-2022-JP,
// folding, RFC 2231 language suffixes, malformed words, masking for the address parser, and
// MIME parameters as written.
#include "core/rfc2047.h"

#include <glib.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <random>
#include <string>

namespace mb {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

std::string b64(std::string_view in) {
  static const char* kAlphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8) | uint8_t(in[i + 2]);
    for (int s = 18; s >= 0; s -= 6) out += kAlphabet[(v >> s) & 63];
  }
  if (i + 1 == in.size()) {
    uint32_t v = uint8_t(in[i]) << 16;
    out += std::string{kAlphabet[(v >> 18) & 63], kAlphabet[(v >> 12) & 63], '=', '='};
  } else if (i + 2 == in.size()) {
    uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8);
    out += std::string{kAlphabet[(v >> 18) & 63], kAlphabet[(v >> 12) & 63],
                       kAlphabet[(v >> 6) & 63], '='};
  }
  return out;
}

std::string qp(std::string_view in) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : in) {
    if (c == ' ') {
      out += '_';
    } else if (c >= 0x80 || c == '=' || c == '?' || c == '_' || c < 0x20) {
      out += '=';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

std::string bword(std::string_view text, std::string_view charset = "UTF-8") {
  return "=?" + std::string(charset) + "?B?" + b64(text) + "?=";
}
std::string qword(std::string_view text, std::string_view charset = "UTF-8") {
  return "=?" + std::string(charset) + "?Q?" + qp(text) + "?=";
}

// The example of issue 13: GMime 3.2.13 stops after "Café — ".
TEST(Rfc2047Test, IssueExampleKeepsTextAfterAPaddedWord) {
  EXPECT_EQ(decode_header_text("=?UTF-8?B?Q2Fmw6kg4oCUIA==?= =?UTF-8?B?4oKsNSDinJM=?="),
            "Café — €5 ✓");
  EXPECT_EQ(decode_header_text("=?UTF-8?B?SGVsbG8g?= =?UTF-8?B?V29ybGQ=?="), "Hello World");
}

// Every split of the text into two B words: paddings 0, 1 and 2 on either side, and every
// split of a multi-byte sequence.
TEST(Rfc2047Test, EveryPaddingAndEverySplitPointOfBWords) {
  const std::string text = "Café — €5 ✓ 日本";
  for (size_t cut = 0; cut <= text.size(); ++cut) {
    std::string header = bword(text.substr(0, cut)) + " " + bword(text.substr(cut));
    EXPECT_EQ(decode_header_text(header), text) << header;
  }
}

TEST(Rfc2047Test, EverySplitPointOfQWordsAndOfMixedBAndQ) {
  const std::string text = "Grüße €5 ✓";
  for (size_t cut = 0; cut <= text.size(); ++cut) {
    std::string a = text.substr(0, cut);
    std::string b = text.substr(cut);
    EXPECT_EQ(decode_header_text(qword(a) + " " + qword(b)), text) << cut;
    EXPECT_EQ(decode_header_text(bword(a) + "\r\n " + qword(b, "utf-8")), text) << cut;
    EXPECT_EQ(decode_header_text(qword(a, "utf-8") + "\t" + bword(b)), text) << cut;
  }
}

TEST(Rfc2047Test, ThreeWordsWithEachPadding) {
  // 5, 4 and 3 bytes: paddings 1, 2 and 0.
  EXPECT_EQ(decode_header_text("=?UTF-8?B?SGVsbG8=?= =?UTF-8?B?IFdvcg==?= =?UTF-8?B?bGQh?="),
            "Hello World!");
  // Padding left off by the sender is accepted.
  EXPECT_EQ(decode_header_text("=?UTF-8?B?SGVsbG8?= =?UTF-8?B?IFdvcg?="), "Hello Wor");
}

TEST(Rfc2047Test, WhitespaceBetweenWordsIsDroppedNotBetweenWordAndText) {
  EXPECT_EQ(decode_header_text("=?UTF-8?Q?a?=  \t =?UTF-8?Q?b?="), "ab");
  EXPECT_EQ(decode_header_text("=?UTF-8?Q?a?= b =?UTF-8?Q?c?="), "a b c");
  EXPECT_EQ(decode_header_text("Re: =?UTF-8?Q?caf=C3=A9?= ok"), "Re: café ok");
  EXPECT_EQ(decode_header_text("=?UTF-8?Q?a_b?= =?UTF-8?Q?_c?="), "a b c");
}

TEST(Rfc2047Test, WordsGluedToTextOrToEachOther) {
  EXPECT_EQ(decode_header_text("Re:=?UTF-8?Q?caf=C3=A9?="), "Re:café");
  EXPECT_EQ(decode_header_text("=?UTF-8?Q?a?==?UTF-8?Q?b?="), "ab");
}

TEST(Rfc2047Test, MixedCharsetsEachConvertedFromItsOwn) {
  EXPECT_EQ(decode_header_text(
                "=?ISO-8859-1?Q?Gr=FC=DFe?= =?KOI8-R?B?8NLJ18XU?= =?UTF-8?B?4oKs?= end"),
            "GrüßeПривет€ end");
  EXPECT_EQ(decode_header_text("=?windows-1252?Q?=80?= =?ISO-8859-15?Q?=A4?="), "€€");
  EXPECT_EQ(decode_header_text("=?iso-8859-1?q?=93x=94?="), "“x”");  // read as Windows-1252
  EXPECT_EQ(decode_header_text("=?ISO-8859-2?Q?=B1?= =?windows-1251?B?z+Dw?="), "ąПар");
}

TEST(Rfc2047Test, Iso2022JpWholeAndSplitInsideAnEscapeSequence) {
  EXPECT_EQ(decode_header_text("=?ISO-2022-JP?B?GyRCRnxLXDhsJE43b0w+GyhC?="), "日本語の件名");
  // The first word switches to JIS X 0208 and the second goes on in it.
  EXPECT_EQ(decode_header_text("=?ISO-2022-JP?B?GyRCRnxL?=\r\n =?iso-2022-jp?B?XDhsJE43b0w+GyhC?="),
            "日本語の件名");
}

TEST(Rfc2047Test, LongSubjectFoldedOverManyLines) {
  std::string text;
  for (int i = 0; i < 12; ++i) {
    text += "Überweisung für Rechnung " + std::to_string(i) + " — ✓ ";
  }
  for (size_t chunk : {7u, 15u, 29u, 30u, 31u, 45u}) {
    std::string header;
    for (size_t at = 0; at < text.size(); at += chunk) {
      if (!header.empty()) header += (at / chunk) % 2 ? "\r\n " : "\n\t";
      header += bword(text.substr(at, chunk));
    }
    EXPECT_EQ(decode_header_text(" " + header + "\r\n"), " " + text) << chunk;
  }
}

TEST(Rfc2047Test, Rfc2231LanguageSuffixIsIgnoredAndStillJoins) {
  EXPECT_EQ(decode_header_text("=?UTF-8*en?Q?Hello?= =?utf-8*de?B?IFdlbHQ=?="), "Hello Welt");
  // One sequence split across two words whose language differs: still one charset.
  EXPECT_EQ(decode_header_text("=?UTF-8*en?B?4oI=?= =?UTF-8*fr?B?rA==?="), "€");
}

TEST(Rfc2047Test, MalformedWordsStayLiteral) {
  for (std::string w : {"=?UTF-8?B?###?=", "=?UTF-8?X?abc?=", "=?UTF-8?Q?=ZZ?=",
                        "=?UTF-8?Q?abc=4?=", "=?UTF-8?B?QQ==QQ==?=", "=?UTF-8?B?Q?=",
                        "=?UTF-8?B?SGVsbG8", "=??B?SGVsbG8=?=", "=?UTF-8?B?SGVs bG8=?="}) {
    EXPECT_EQ(decode_header_text(w), w);
    EXPECT_EQ(decode_header_text(w + " =?UTF-8?Q?ok?="), w + " ok") << w;
  }
}

TEST(Rfc2047Test, EmptyWordAndPlainText) {
  EXPECT_EQ(decode_header_text("=?UTF-8?B?" "?="), "");
  EXPECT_EQ(decode_header_text("plain = text ?= with =? marks"), "plain = text ?= with =? marks");
  EXPECT_EQ(decode_header_text(""), "");
}

TEST(Rfc2047Test, UnknownCharsetIsTakenAsUndeclared) {
  EXPECT_EQ(decode_header_text("=?x-unknown?Q?caf=C3=A9?="), "café");
  EXPECT_EQ(decode_header_text("=?x-unknown?Q?caf=E9?="), "café");
  EXPECT_EQ(decode_header_text("=?us-ascii?Q?caf=E9?="), "café");
}

TEST(Rfc2047Test, OutputIsValidUtf8WithoutNul) {
  std::string out = decode_header_text("=?UTF-8?Q?a=00b=FF?=");
  EXPECT_EQ(out, "a\xEF\xBF\xBD" "b\xEF\xBF\xBD");
  EXPECT_EQ(out.find('\0'), std::string::npos);
  // Undeclared 8-bit text outside words: UTF-8 when valid, else Windows-1252.
  EXPECT_EQ(decode_header_text("Gr\xFC\xDF" "e =?UTF-8?Q?=E2=82=AC?="), "Grüße €");
  EXPECT_EQ(decode_header_text("Grüße"), "Grüße");
  // Control characters are data here (the CLI escapes them for the terminal).
  EXPECT_EQ(decode_header_text("=?UTF-8?Q?=1B[31m=07?="), "\x1B[31m\x07");
}

TEST(Rfc2047Test, CharsetToUtf8) {
  EXPECT_EQ(charset_to_utf8("\xE9", "ISO-8859-1"), "é");
  EXPECT_EQ(charset_to_utf8("\x80", "latin1"), "€");
  EXPECT_EQ(charset_to_utf8("\xB0\xA1", "ks_c_5601-1987"), "가");
  EXPECT_EQ(charset_to_utf8("caf\xE9", "no-such-charset"), "café");
  EXPECT_EQ(charset_to_utf8("\xFF", "utf-8"), "\xEF\xBF\xBD");
}

TEST(Rfc2047Test, MaskReplacesEachRunOfWordsWithAnAtom) {
  std::string raw = "\"=?UTF-8?B?Q2Fmw6kg4oCUIA==?= =?UTF-8?B?4oKsNSDinJM=?=\" <a@b.c>,\r\n"
                    " =?UTF-8?Q?B=C3=B6b?= <b@c.d>";
  MaskedHeader m = mask_encoded_words(raw);
  EXPECT_THAT(m.text, Not(HasSubstr("=?")));
  EXPECT_THAT(m.text, HasSubstr("<a@b.c>"));
  ASSERT_EQ(m.runs.size(), 2u);
  EXPECT_EQ(m.runs[0].decoded, "Café — €5 ✓");
  EXPECT_EQ(m.runs[1].decoded, "Böb");
  EXPECT_EQ(m.unmask("x " + m.runs[0].placeholder + " y"), "x Café — €5 ✓ y");
  EXPECT_EQ(m.unmask(m.runs[1].placeholder, false), "=?UTF-8?Q?B=C3=B6b?=");
}

TEST(Rfc2047Test, MaskPlaceholderIsNotInTheHeader) {
  MaskedHeader m = mask_encoded_words("MBEW0z =?UTF-8?Q?x?= mbewq0z");
  ASSERT_EQ(m.runs.size(), 1u);
  EXPECT_EQ(m.unmask(m.text), "MBEW0z x mbewq0z");
  EXPECT_TRUE(mask_encoded_words("no words").runs.empty());
}

TEST(Rfc2047Test, RawParameter) {
  std::string cd = "attachment; size=3;\r\n filename=\"a \\\"b\\\".txt\"; x=y";
  EXPECT_EQ(raw_parameter(cd, "filename"), "a \"b\".txt");
  EXPECT_EQ(raw_parameter(cd, "SIZE"), "3");
  EXPECT_EQ(raw_parameter(cd, "name"), std::nullopt);
  EXPECT_EQ(raw_parameter("text/plain; name==?UTF-8?B?eA==?= ; charset=x", "name"),
            "=?UTF-8?B?eA==?=");
  EXPECT_EQ(raw_parameter("attachment; filename*=UTF-8''a%20b", "filename"), std::nullopt);
  EXPECT_TRUE(has_rfc2231_parameter("attachment; filename*=UTF-8''a%20b", "filename"));
  EXPECT_TRUE(has_rfc2231_parameter("attachment; FILENAME*0*=UTF-8''a; filename*1=b", "filename"));
  EXPECT_FALSE(has_rfc2231_parameter("attachment; filename=\"x*\"", "filename"));
  EXPECT_EQ(raw_parameter("attachment; a=\"x;filename=y\"; filename=z", "filename"), "z");
}

// A bounded random mix of the pieces encoded-words are made of: never a crash, always
// valid UTF-8 without NUL, and masking is undone exactly by the original words.
TEST(Rfc2047Test, RandomPiecesNeverBreakTheContract) {
  const std::vector<std::string> kPieces = {
      "=?", "?=", "?", "UTF-8", "ISO-2022-JP", "iso-8859-1", "*en", "B", "Q", "q", "SGVsbG8=",
      "4oI=", "rA==", "=E2=82", "=AC", "_", " ", "\r\n ", "\t", "\x1b$B", "\xC3", "\xA9",
      "\xFF", std::string(1, '\0'), "\"", ";", "filename=", "="};
  std::mt19937 rng(2047);
  for (int i = 0; i < 20000; ++i) {
    std::string raw;
    int n = static_cast<int>(rng() % 24);
    for (int k = 0; k < n; ++k) raw += kPieces[rng() % kPieces.size()];
    std::string out = decode_header_text(raw);
    ASSERT_TRUE(g_utf8_validate(out.data(), static_cast<gssize>(out.size()), nullptr)) << raw;
    MaskedHeader m = mask_encoded_words(raw);
    ASSERT_EQ(m.unmask(m.text, false), raw);
    (void)raw_parameter(raw, "filename");
  }
}

}  // namespace
}  // namespace mb
