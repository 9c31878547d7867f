// File: tests/unit/cli/terminal_test.cpp — printable(), printable_text(),
// terminal_safe_json() and TerminalSafeStream: every control character a terminal acts on
// is escaped, everything else passes unchanged.
#include "cli/terminal.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

namespace mb::cli {
namespace {

TEST(TerminalTest, PrintableEscapesEveryControlOnOneLine) {
  EXPECT_EQ(printable("\x1b]0;owned\x07\x1b[31mred"), "\\e]0;owned\\x07\\e[31mred");
  EXPECT_EQ(printable("a\nb\tc\rd"), "a\\nb\\tc\\rd");
  EXPECT_EQ(printable(std::string("nul\0del\x7f", 8)), "nul\\x00del\\x7f");
  EXPECT_EQ(printable("\x01\x1f"), "\\x01\\x1f");
}

TEST(TerminalTest, C1AndBidiControlsAreShownAsCodePoints) {
  EXPECT_EQ(printable("\u009b2J"), "<U+009B>2J");  // CSI as one code point
  EXPECT_EQ(printable("\u0085"), "<U+0085>");
  EXPECT_EQ(printable("abc\u202edcba\u202c"), "abc<U+202E>dcba<U+202C>");
  EXPECT_EQ(printable("\u2066x\u2069\u200f\u061c"), "<U+2066>x<U+2069><U+200F><U+061C>");
}

TEST(TerminalTest, TextAndInvalidBytes) {
  const std::string text = "Caf\u00e9 \u2014 \u20ac5 \u2713 \u65e5\u672c \U0001F600 [Ticket - 1]";
  EXPECT_EQ(printable(text), text);
  EXPECT_EQ(printable("\xff\xc3(\xe2\x82"), "\\xff\\xc3(\\xe2\\x82");
  EXPECT_EQ(printable("\xc0\xaf\xed\xa0\x80"), "\\xc0\\xaf\\xed\\xa0\\x80");  // overlong, surrogate
}

TEST(TerminalTest, PrintableTextKeepsLinesAndTabs) {
  EXPECT_EQ(printable_text("one\r\ntwo\n\tthree\x1b[2J\x07"), "one\r\ntwo\n\tthree\\e[2J\\x07");
  EXPECT_EQ(printable_text("over\rwrite"), "over\\rwrite");
  EXPECT_EQ(printable_text("end\r"), "end\\r");
}

TEST(TerminalTest, JsonKeepsItsValueAndLosesTheControls) {
  const std::string subject = "a\x1b[31m\x07\x7f\u009b\u202eb \u00e9";
  nlohmann::json j = {{"subject", subject}};
  std::string safe = terminal_safe_json(j.dump(2));
  for (unsigned char c : safe) {
    EXPECT_TRUE(c >= 0x20 || c == '\n') << int(c);
    EXPECT_NE(c, 0x7f);
  }
  EXPECT_THAT(safe, ::testing::Not(::testing::HasSubstr("\u009b")));
  EXPECT_THAT(safe, ::testing::Not(::testing::HasSubstr("\u202e")));
  EXPECT_THAT(safe, ::testing::HasSubstr("\\u001b"));
  EXPECT_THAT(safe, ::testing::HasSubstr("\\u009b"));
  EXPECT_EQ(nlohmann::json::parse(safe)["subject"], subject);
}

TEST(TerminalTest, StreamEscapesWhatIsWrittenEvenInPieces) {
  std::ostringstream dest;
  {
    TerminalSafeStream out(dest);
    out << "x\x1b" << "[1m" << std::flush;
    const std::string euro = "\u20ac\u009b";
    for (char c : euro) out.put(c);  // a sequence written byte by byte
    out << "\r" << "\n" << 42 << "\tend\r";
  }
  EXPECT_EQ(dest.str(), "x\\e[1m\u20ac<U+009B>\r\n42\tend\\r");
}

}  // namespace
}  // namespace mb::cli
