// File: tests/unit/core/ascii_test.cpp — ASCII case mapping (core/ascii.h).
#include "core/ascii.h"

#include <gtest/gtest.h>

#include <string>

namespace mb {
namespace {

TEST(AsciiTest, LowerAndUpperChangeOnlyLetters) {
  EXPECT_EQ(ascii_lower("Content-Type: TEXT/Plain; 8BIT"), "content-type: text/plain; 8bit");
  EXPECT_EQ(ascii_upper("auth=xoauth2 size 1024"), "AUTH=XOAUTH2 SIZE 1024");
  EXPECT_EQ(ascii_lower(""), "");
  EXPECT_EQ(ascii_upper(""), "");
  // The bytes around the alphabet in ASCII stay as they are.
  EXPECT_EQ(ascii_lower("@[`{"), "@[`{");
  EXPECT_EQ(ascii_upper("@[`{"), "@[`{");
}

TEST(AsciiTest, LowerCharMapsOneByte) {
  EXPECT_EQ(ascii_lower_char('Q'), 'q');
  EXPECT_EQ(ascii_lower_char('q'), 'q');
  EXPECT_EQ(ascii_lower_char('7'), '7');
  EXPECT_EQ(ascii_lower_char('\xC9'), '\xC9');
}

TEST(AsciiTest, LeavesNonAsciiBytesAlone) {
  const std::string utf8 = "J\xC3\x96RG@EXAMPLE.com";  // "JÖRG": Ö stays as its two bytes
  EXPECT_EQ(ascii_lower(utf8), "j\xC3\x96rg@example.com");
  EXPECT_EQ(ascii_upper("\xC3\xB6\xFF"), "\xC3\xB6\xFF");
  EXPECT_EQ(ascii_lower(std::string("A\0B", 3)), std::string("a\0b", 3));
}

TEST(AsciiTest, IequalsIgnoresOnlyAsciiCase) {
  EXPECT_TRUE(ascii_iequals("Retry-After", "retry-AFTER"));
  EXPECT_TRUE(ascii_iequals("", ""));
  EXPECT_FALSE(ascii_iequals("GET", "GETS"));
  EXPECT_FALSE(ascii_iequals("get", "got"));
  EXPECT_FALSE(ascii_iequals("\xC3\xB6", "\xC3\x96"));  // ö and Ö differ: not ASCII
  EXPECT_FALSE(ascii_iequals("@", "`"));                // 0x40 and 0x60 are not letters
}

}  // namespace
}  // namespace mb
