// File: tests/unit/connectors/imap/imap_syntax_test.cpp — quoting, modified UTF-7, UID
// sets, SASL PLAIN and message keys.
#include "connectors/imap/imap_syntax.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace mb::imap {
namespace {
using ::testing::ElementsAre;
using ::testing::Optional;

TEST(ImapSyntaxTest, QuoteEscapesQuotesAndBackslashes) {
  EXPECT_EQ(quote("plain"), "\"plain\"");
  EXPECT_EQ(quote(""), "\"\"");
  EXPECT_EQ(quote("a\"b\\c"), "\"a\\\"b\\\\c\"");
}

TEST(ImapSyntaxTest, LiteralNeededForLineBreaksNulAndEightBit) {
  EXPECT_FALSE(needs_literal("p@ss w\"rd\\ {5}"));
  EXPECT_TRUE(needs_literal("a\rb"));
  EXPECT_TRUE(needs_literal("a\nb"));
  EXPECT_TRUE(needs_literal(std::string("a\0b", 3)));
  EXPECT_TRUE(needs_literal("pässwort"));
}

TEST(ImapSyntaxTest, ModifiedUtf7FolderNames) {
  EXPECT_EQ(encode_mutf7("INBOX"), "INBOX");
  EXPECT_EQ(encode_mutf7("Entwürfe"), "Entw&APw-rfe");
  EXPECT_EQ(encode_mutf7("Tom & Jerry"), "Tom &- Jerry");
  // RFC 3501 §5.1.3's example: "~peter/mail/台北/日本語".
  EXPECT_EQ(encode_mutf7("~peter/mail/\xe5\x8f\xb0\xe5\x8c\x97/\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e"),
            "~peter/mail/&U,BTFw-/&ZeVnLIqe-");
  EXPECT_EQ(encode_mutf7("\xf0\x9f\x93\xa7"), "&2D3c5w-");  // U+1F4E7, a surrogate pair
}

TEST(ImapSyntaxTest, UidSetsCompressRuns) {
  EXPECT_EQ(format_uid_set({}), "");
  EXPECT_EQ(format_uid_set({5}), "5");
  EXPECT_EQ(format_uid_set({7, 1, 2, 3, 3, 9, 10}), "1:3,7,9:10");
}

TEST(ImapSyntaxTest, UidSetsParse) {
  EXPECT_THAT(parse_uid_set("1:3,7", 0), Optional(ElementsAre(1u, 2u, 3u, 7u)));
  EXPECT_THAT(parse_uid_set("5:*", 6), Optional(ElementsAre(5u, 6u)));
  EXPECT_THAT(parse_uid_set("4:2", 0), Optional(ElementsAre(2u, 3u, 4u)));
  EXPECT_EQ(parse_uid_set("1:x", 0), std::nullopt);
  EXPECT_EQ(parse_uid_set("1:4294967295", 0, 1000), std::nullopt);
}

TEST(ImapSyntaxTest, MessageKeys) {
  EXPECT_EQ(format_key(3857529045u, 4827), "3857529045:4827");
  auto k = parse_key("3857529045:4827");
  ASSERT_TRUE(k.has_value());
  EXPECT_EQ(k->uidvalidity, 3857529045u);
  EXPECT_EQ(k->uid, 4827u);
  EXPECT_EQ(parse_key("12"), std::nullopt);
  EXPECT_EQ(parse_key("12:"), std::nullopt);
  EXPECT_EQ(parse_key("12:0"), std::nullopt);
  EXPECT_TRUE(parse_key("12:0", true).has_value());
  EXPECT_EQ(parse_key("12:x"), std::nullopt);
  EXPECT_EQ(parse_key("12:99999999999"), std::nullopt);
}

}  // namespace
}  // namespace mb::imap
