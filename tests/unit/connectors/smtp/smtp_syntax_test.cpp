// File: tests/unit/connectors/smtp/smtp_syntax_test.cpp — the pure parts of the SMTP
// client: reply lines, EHLO keywords, 8BITMIME/SMTPUTF8/SIZE decisions, the MAIL command,
// streamed dot-stuffing and the server's queue id.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "connectors/smtp/smtp_client.h"
#include "tests/status_matchers.h"

namespace mb::smtp {
namespace {

using ::mb::testing::IsOk;
using ::mb::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(ReplyLineTest, ParsesLastAndContinuationLines) {
  auto a = parse_reply_line("250-mx.example.com Hello");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->code, 250);
  EXPECT_FALSE(a->last);
  EXPECT_EQ(a->text, "mx.example.com Hello");
  auto b = parse_reply_line("550 5.1.1 <x@y>: no such user");
  ASSERT_TRUE(b);
  EXPECT_TRUE(b->last);
  EXPECT_EQ(b->text, "5.1.1 <x@y>: no such user");
  auto c = parse_reply_line("354");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->code, 354);
  EXPECT_TRUE(c->last);
  EXPECT_EQ(c->text, "");
}

TEST(ReplyLineTest, RefusesWhatIsNotAReply) {
  EXPECT_FALSE(parse_reply_line(""));
  EXPECT_FALSE(parse_reply_line("25"));
  EXPECT_FALSE(parse_reply_line("abc hello"));
  EXPECT_FALSE(parse_reply_line("250xhello"));
  EXPECT_FALSE(parse_reply_line("199 too low"));
  EXPECT_FALSE(parse_reply_line("600 too high"));
  EXPECT_FALSE(parse_reply_line("* OK imap"));
}

TEST(ReplyTest, TextKeepsCodeEnhancedCodeAndEveryLine) {
  Reply r{550, {"5.7.1 Relaying denied", "see https://help.example"}};
  EXPECT_EQ(r.text(), "550 5.7.1 Relaying denied; see https://help.example");
  EXPECT_EQ(r.enhanced(), "5.7.1");
  EXPECT_EQ((Reply{250, {"Ok"}}).enhanced(), "");
  EXPECT_EQ((Reply{451, {"4.7.1 later"}}).enhanced(), "4.7.1");
  EXPECT_EQ((Reply{250, {"2.0 not enhanced"}}).enhanced(), "");
  EXPECT_EQ((Reply{221, {}}).text(), "221");
}

TEST(EhloTest, KeywordsUpperCasedWithParameters) {
  Reply r{250, {"mx.example.com greets you", "pipelining", "SIZE 35882577", "8BITMIME",
                "AUTH LOGIN PLAIN XOAUTH2", "AUTH=LOGIN PLAIN", "SMTPUTF8", "STARTTLS"}};
  Extensions e = parse_ehlo(r);
  EXPECT_TRUE(e.esmtp);
  EXPECT_TRUE(e.has("PIPELINING"));
  EXPECT_TRUE(e.has("pipelining"));
  EXPECT_TRUE(e.has("8BITMIME"));
  EXPECT_TRUE(e.has("SMTPUTF8"));
  EXPECT_TRUE(e.has("STARTTLS"));
  EXPECT_FALSE(e.has("DSN"));
  EXPECT_EQ(e.size_limit(), 35882577u);
  // The standard AUTH line wins over the old "AUTH=" form.
  EXPECT_THAT(e.auth_mechanisms(), ElementsAre("LOGIN", "PLAIN", "XOAUTH2"));
  EXPECT_THAT(e.describe(), HasSubstr("SIZE=35882577"));
  EXPECT_THAT(e.describe(), HasSubstr("AUTH=LOGIN,PLAIN,XOAUTH2"));
}

TEST(EhloTest, OldAuthFormAloneIsUnderstood) {
  Extensions e = parse_ehlo(Reply{250, {"old.example", "AUTH=LOGIN"}});
  EXPECT_THAT(e.auth_mechanisms(), ElementsAre("LOGIN"));
}

TEST(EhloTest, SizeWithoutLimitIsZero) {
  EXPECT_EQ(parse_ehlo(Reply{250, {"x", "SIZE"}}).size_limit(), 0u);
  EXPECT_EQ(parse_ehlo(Reply{250, {"x"}}).size_limit(), 0u);
}

Extensions ext(std::vector<std::string> keywords) {
  Reply r{250, {"mx"}};
  r.lines.insert(r.lines.end(), keywords.begin(), keywords.end());
  return parse_ehlo(r);
}

TEST(NeedsTest, SevenBitAsciiNeedsNothing) {
  auto n = analyze({"a@b.test", {"c@d.test"}}, "Subject: hi\r\n\r\nplain text\r\n");
  EXPECT_FALSE(n.eight_bit);
  EXPECT_FALSE(n.smtputf8);
  EXPECT_FALSE(n.utf8_address);
  EXPECT_EQ(mail_command("a@b.test", 30, n, ext({"8BITMIME", "SMTPUTF8"})),
            "MAIL FROM:<a@b.test>");
}

TEST(NeedsTest, EightBitBodyAsksBody8BitMime) {
  auto n = analyze({"a@b.test", {"c@d.test"}}, "Subject: hi\r\n\r\ncaf\xc3\xa9\r\n");
  EXPECT_TRUE(n.eight_bit);
  EXPECT_FALSE(n.smtputf8);  // the headers are ASCII
  EXPECT_EQ(mail_command("a@b.test", 25, n, ext({"8BITMIME", "SIZE 100"})),
            "MAIL FROM:<a@b.test> SIZE=25 BODY=8BITMIME");
  EXPECT_THAT(check_fit(n, 25, ext({"8BITMIME"}), "S"), IsOk());
  EXPECT_THAT(check_fit(n, 25, ext({}), "S"),
              StatusIs(ErrorKind::kRejected, HasSubstr("8BITMIME")));
  // SMTPUTF8 implies 8BITMIME.
  EXPECT_THAT(check_fit(n, 25, ext({"SMTPUTF8"}), "S"), IsOk());
}

TEST(NeedsTest, NonAsciiAddressNeedsSmtpUtf8) {
  auto n = analyze({"a@b.test", {"j\xc3\xbcrgen@d.test"}}, "Subject: hi\r\n\r\nx\r\n");
  EXPECT_TRUE(n.utf8_address);
  EXPECT_TRUE(n.smtputf8);
  EXPECT_EQ(mail_command("a@b.test", 9, n, ext({"SMTPUTF8", "8BITMIME"})),
            "MAIL FROM:<a@b.test> SMTPUTF8");
  EXPECT_THAT(check_fit(n, 9, ext({"8BITMIME"}), "SMTP server mx"),
              StatusIs(ErrorKind::kRejected, HasSubstr("does not offer SMTPUTF8")));
  EXPECT_THAT(check_fit(n, 9, ext({"SMTPUTF8"}), "S"), IsOk());
}

TEST(NeedsTest, RawUtf8HeaderAsksSmtpUtf8WhenOffered) {
  auto n = analyze({"a@b.test", {"c@d.test"}}, "Subject: caf\xc3\xa9\r\n\r\nx\r\n");
  EXPECT_TRUE(n.smtputf8);
  EXPECT_FALSE(n.utf8_address);
  EXPECT_EQ(mail_command("a@b.test", 9, n, ext({"SMTPUTF8", "8BITMIME"})),
            "MAIL FROM:<a@b.test> BODY=8BITMIME SMTPUTF8");
  // Not indispensable: a server without SMTPUTF8 but with 8BITMIME still takes it.
  EXPECT_THAT(check_fit(n, 9, ext({"8BITMIME"}), "S"), IsOk());
}

TEST(NeedsTest, SizeAboveTheServersLimitIsRefusedBeforeSending) {
  MessageNeeds n;
  EXPECT_THAT(check_fit(n, 1000, ext({"SIZE 1000"}), "S"), IsOk());
  EXPECT_THAT(check_fit(n, 1001, ext({"SIZE 1000"}), "SMTP server mx"),
              StatusIs(ErrorKind::kRejected,
                       HasSubstr("at most 1000 bytes (SIZE); this one has 1001")));
  EXPECT_THAT(check_fit(n, 1u << 30, ext({"SIZE"}), "S"), IsOk());  // no limit given
}

TEST(AddressTest, RefusesWhatSmtpCannotCarry) {
  EXPECT_THAT(check_address("a@b.test", false), IsOk());
  EXPECT_THAT(check_address("", true), IsOk());
  EXPECT_THAT(check_address("", false), StatusIs(ErrorKind::kInvalidInput, HasSubstr("empty")));
  EXPECT_THAT(check_address("a@b.test>\r\nRCPT TO:<evil@x", false),
              StatusIs(ErrorKind::kInvalidInput, HasSubstr("CR, LF")));
  EXPECT_THAT(check_address("a b@c", false),
              StatusIs(ErrorKind::kInvalidInput, HasSubstr("space")));
  EXPECT_THAT(check_address("nobody", false), StatusIs(ErrorKind::kInvalidInput, HasSubstr("'@'")));
}

std::string stuff(const std::string& in, size_t chunk) {
  DotStuffer d;
  std::string out;
  for (size_t i = 0; i < in.size(); i += chunk) d.feed(std::string_view(in).substr(i, chunk), out);
  d.finish(out);
  return out;
}

class DotStuffTest : public ::testing::TestWithParam<size_t> {};

TEST_P(DotStuffTest, LeadingDotsDoubledWhateverTheChunking) {
  const std::string in = ".\r\n..\r\nmid.dle\r\n.start\r\n";
  EXPECT_EQ(stuff(in, GetParam()), "..\r\n...\r\nmid.dle\r\n..start\r\n.\r\n");
}

TEST_P(DotStuffTest, DotOnFirstLineAndNoFinalCrlf) {
  EXPECT_EQ(stuff(".hidden\r\nlast line", GetParam()), "..hidden\r\nlast line\r\n.\r\n");
}

TEST_P(DotStuffTest, BareLineEndsBecomeCrlf) {
  EXPECT_EQ(stuff("a\nb\r.c\r\n", GetParam()), "a\r\nb\r\n..c\r\n.\r\n");
}

INSTANTIATE_TEST_SUITE_P(Chunks, DotStuffTest, ::testing::Values(1, 2, 3, 7, 4096));

TEST(DotStuffTest, EmptyMessageIsJustTheDot) { EXPECT_EQ(stuff("", 10), ".\r\n"); }

TEST(QueuedIdTest, FindsTheIdWhereServersPutIt) {
  EXPECT_EQ(queued_id(Reply{250, {"2.0.0 Ok: queued as 4Bq1x23ZfKz9"}}), "4Bq1x23ZfKz9");
  EXPECT_EQ(queued_id(Reply{250, {"OK id=1rABCd-000123-4x; queued as 1rABCd-000123-4x"}}),
            "1rABCd-000123-4x");
  EXPECT_EQ(queued_id(Reply{250, {"2.6.0 <abc@x> [InternalId=1] Queued mail for delivery"}}), "");
}

}  // namespace
}  // namespace mb::smtp
