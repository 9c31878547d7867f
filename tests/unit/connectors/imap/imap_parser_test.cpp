// File: tests/unit/connectors/imap/imap_parser_test.cpp — the IMAP response parser, fed
// whole, one byte at a time, and with literals supplied by the caller.
#include "connectors/imap/imap_parser.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/status_matchers.h"

namespace mb::imap {
namespace {
using ::mb::testing::IsOk;
using ::mb::testing::StatusIs;
using ::testing::HasSubstr;

// Feeds `bytes` one byte at a time; every byte but the last must leave the parser wanting
// more (or announcing a literal), and the last must complete the response.
ImapResponse parse_bytewise(std::string_view bytes) {
  ResponseParser p;
  for (size_t i = 0; i < bytes.size(); ++i) {
    std::string_view one = bytes.substr(i, 1);
    ParseStep s = p.feed(one);
    EXPECT_TRUE(one.empty()) << "byte " << i << " not consumed";
    if (i + 1 < bytes.size()) {
      EXPECT_NE(s.kind, ParseStep::kResponse) << "complete too early at byte " << i;
      EXPECT_NE(s.kind, ParseStep::kError) << p.error().to_string();
    } else {
      EXPECT_EQ(s.kind, ParseStep::kResponse) << p.error().to_string();
    }
  }
  return p.take_response();
}

TEST(ImapParserTest, UntaggedExistsBytewise) {
  ImapResponse r = parse_bytewise("* 172 EXISTS\r\n");
  EXPECT_EQ(r.kind, ImapResponse::Kind::kUntagged);
  ASSERT_TRUE(r.number.has_value());
  EXPECT_EQ(*r.number, 172u);
  EXPECT_EQ(r.name, "EXISTS");
  EXPECT_FALSE(r.is_status());
}

TEST(ImapParserTest, TaggedOkWithResponseCode) {
  ImapResponse r = parse_bytewise("a2 OK [READ-WRITE] SELECT completed\r\n");
  EXPECT_EQ(r.kind, ImapResponse::Kind::kTagged);
  EXPECT_EQ(r.tag, "a2");
  EXPECT_EQ(r.condition, Condition::kOk);
  EXPECT_EQ(r.code, "READ-WRITE");
  EXPECT_TRUE(r.code_args.empty());
  EXPECT_EQ(r.text, "SELECT completed");
}

TEST(ImapParserTest, UidValidityCodeHasNumber) {
  ImapResponse r = parse_bytewise("* OK [UIDVALIDITY 3857529045] UIDs valid\r\n");
  EXPECT_EQ(r.condition, Condition::kOk);
  EXPECT_EQ(r.code, "UIDVALIDITY");
  ASSERT_EQ(r.code_args.size(), 1u);
  EXPECT_EQ(r.code_args[0].as_number(), 3857529045u);
}

TEST(ImapParserTest, CapabilityCodeInGreeting) {
  ImapResponse r =
      parse_bytewise("* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=PLAIN LITERAL+] Dovecot ready.\r\n");
  EXPECT_EQ(r.code, "CAPABILITY");
  ASSERT_EQ(r.code_args.size(), 4u);
  EXPECT_EQ(r.code_args[2].text, "AUTH=PLAIN");
  EXPECT_EQ(r.text, "Dovecot ready.");
}

TEST(ImapParserTest, CodesWithoutArguments) {
  for (const char* code : {"AUTHENTICATIONFAILED", "TRYCREATE", "UNAVAILABLE"}) {
    ImapResponse r = parse_bytewise(std::string("a1 NO [") + code + "] nope\r\n");
    EXPECT_EQ(r.condition, Condition::kNo);
    EXPECT_EQ(r.code, code);
    EXPECT_EQ(r.text, "nope");
  }
}

TEST(ImapParserTest, PermanentFlagsCodeKeepsList) {
  ImapResponse r = parse_bytewise("* OK [PERMANENTFLAGS (\\Deleted \\Seen \\*)] Limited\r\n");
  ASSERT_EQ(r.code_args.size(), 1u);
  ASSERT_EQ(r.code_args[0].type, Value::Type::kList);
  ASSERT_EQ(r.code_args[0].list.size(), 3u);
  EXPECT_EQ(r.code_args[0].list[2].text, "\\*");
}

TEST(ImapParserTest, StatusWithoutText) {
  ImapResponse r = parse_bytewise("a9 OK\r\n");
  EXPECT_EQ(r.condition, Condition::kOk);
  EXPECT_EQ(r.text, "");
}

TEST(ImapParserTest, ByeAndPreauth) {
  EXPECT_EQ(parse_bytewise("* BYE shutting down\r\n").condition, Condition::kBye);
  ImapResponse r = parse_bytewise("* PREAUTH [CAPABILITY IMAP4rev2] hi\r\n");
  EXPECT_EQ(r.condition, Condition::kPreauth);
  EXPECT_EQ(r.code, "CAPABILITY");
}

TEST(ImapParserTest, Continuation) {
  ImapResponse r = parse_bytewise("+ \r\n");
  EXPECT_EQ(r.kind, ImapResponse::Kind::kContinuation);
  EXPECT_EQ(r.text, "");
  r = parse_bytewise("+ eyJzdGF0dXMiOiI0MDEifQ==\r\n");
  EXPECT_EQ(r.text, "eyJzdGF0dXMiOiI0MDEifQ==");
  EXPECT_EQ(parse_bytewise("+\r\n").kind, ImapResponse::Kind::kContinuation);
}

TEST(ImapParserTest, SearchNumbers) {
  ImapResponse r = parse_bytewise("* SEARCH 2 84 882\r\n");
  EXPECT_EQ(r.name, "SEARCH");
  ASSERT_EQ(r.args.size(), 3u);
  EXPECT_EQ(r.args[0].type, Value::Type::kNumber);
  EXPECT_EQ(r.args[2].number, 882u);
  EXPECT_TRUE(parse_bytewise("* SEARCH\r\n").args.empty());
}

TEST(ImapParserTest, QuotedStringEscapes) {
  ImapResponse r = parse_bytewise("* LIST (\\Noselect) \"/\" \"a \\\"b\\\" \\\\c\"\r\n");
  ASSERT_EQ(r.args.size(), 3u);
  EXPECT_EQ(r.args[1].type, Value::Type::kString);
  EXPECT_EQ(r.args[1].text, "/");
  EXPECT_EQ(r.args[2].text, "a \"b\" \\c");
}

TEST(ImapParserTest, NilAndNestedLists) {
  ImapResponse r = parse_bytewise("* 1 FETCH (X (NIL (\"a\" nil) ()) Y)\r\n");
  ASSERT_EQ(r.args.size(), 1u);
  const Value& outer = r.args[0];
  ASSERT_EQ(outer.list.size(), 3u);
  const Value& inner = outer.list[1];
  ASSERT_EQ(inner.type, Value::Type::kList);
  ASSERT_EQ(inner.list.size(), 3u);
  EXPECT_EQ(inner.list[0].type, Value::Type::kNil);
  EXPECT_EQ(inner.list[1].list[1].type, Value::Type::kNil);
  EXPECT_TRUE(inner.list[2].list.empty());
  EXPECT_TRUE(outer.list[2].is_atom("Y"));
}

TEST(ImapParserTest, FetchWithLiteralBytewise) {
  std::string body = "Subject: hi\r\n\r\nline with ) and ( and {3}\r\n";
  std::string wire = "* 12 FETCH (UID 4827 BODY[] {" + std::to_string(body.size()) + "}\r\n" +
                     body + " FLAGS (\\Seen))\r\n";
  ImapResponse r = parse_bytewise(wire);
  EXPECT_EQ(r.name, "FETCH");
  EXPECT_EQ(r.number, 12u);
  ASSERT_EQ(r.args.size(), 1u);
  const auto& items = r.args[0].list;
  ASSERT_EQ(items.size(), 6u);
  EXPECT_TRUE(items[0].is_atom("UID"));
  EXPECT_EQ(items[1].number, 4827u);
  EXPECT_TRUE(items[2].is_atom("BODY[]"));
  EXPECT_TRUE(items[3].literal);
  EXPECT_EQ(items[3].text, body);
  EXPECT_EQ(items[5].list[0].text, "\\Seen");
}

TEST(ImapParserTest, LiteralPlusAndEmptyLiteral) {
  auto r = parse_response("* 1 FETCH (BODY[] {0}\r\n UID 5 X {2+}\r\nab)\r\n");
  ASSERT_THAT(r, IsOk());
  const auto& items = r->args[0].list;
  ASSERT_EQ(items.size(), 6u);
  EXPECT_EQ(items[1].text, "");
  EXPECT_TRUE(items[1].literal);
  EXPECT_EQ(items[5].text, "ab");
}

TEST(ImapParserTest, SectionWithSpacesIsOneAtom) {
  auto r = parse_response("* 1 FETCH (BODY[HEADER.FIELDS (FROM TO)]<0> {2}\r\nab)\r\n");
  ASSERT_THAT(r, IsOk());
  const auto& items = r->args[0].list;
  ASSERT_EQ(items.size(), 2u);
  EXPECT_EQ(items[0].text, "BODY[HEADER.FIELDS (FROM TO)]<0>");
}

TEST(ImapParserTest, CallerSuppliesLiteral) {
  ResponseParser p;
  ParseStep s = p.feed_line("* 3 FETCH (UID 9 BODY[] {11}");
  ASSERT_EQ(s.kind, ParseStep::kLiteral);
  EXPECT_EQ(s.literal_size, 11u);
  std::string body = "hello world";
  const char* data = body.data();
  s = p.supply_literal(std::move(body));
  EXPECT_EQ(s.kind, ParseStep::kNeedMore);
  s = p.feed_line(")");
  ASSERT_EQ(s.kind, ParseStep::kResponse);
  ImapResponse r = p.take_response();
  ASSERT_EQ(r.args[0].list.size(), 4u);
  EXPECT_EQ(r.args[0].list[3].text, "hello world");
  // Short strings live inline, so only a heap buffer can be compared.
  if (r.args[0].list[3].text.capacity() > 15) {
    EXPECT_EQ(r.args[0].list[3].text.data(), data);
  }
}

TEST(ImapParserTest, LargeLiteralIsMovedNotCopied) {
  ResponseParser p;
  ASSERT_EQ(p.feed_line("* 1 FETCH (BODY[] {100000}").kind, ParseStep::kLiteral);
  std::string body(100000, 'x');
  const char* data = body.data();
  (void)p.supply_literal(std::move(body));
  ASSERT_EQ(p.feed_line(")").kind, ParseStep::kResponse);
  EXPECT_EQ(p.take_response().args[0].list[1].text.data(), data);
}

TEST(ImapParserTest, SeveralResponsesInOneBuffer) {
  ResponseParser p;
  std::string_view in = "* 2 EXISTS\r\n* 0 RECENT\r\na1 OK done\r\n";
  std::vector<std::string> names;
  while (!in.empty()) {
    ParseStep s = p.feed(in);
    ASSERT_EQ(s.kind, ParseStep::kResponse);
    ImapResponse r = p.take_response();
    names.push_back(r.is_status() ? to_string(r.condition) : r.name);
  }
  EXPECT_THAT(names, ::testing::ElementsAre("EXISTS", "RECENT", "OK"));
}

TEST(ImapParserTest, BareLfAccepted) {
  auto r = parse_response("* 1 EXISTS\n");
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ(r->name, "EXISTS");
}

TEST(ImapParserTest, UnknownUntaggedDataThatDoesNotTokenizeIsKeptAsText) {
  auto r = parse_response("* XWEIRD some \"unbalanced text\r\n");
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ(r->name, "XWEIRD");
  EXPECT_EQ(r->text, "some \"unbalanced text");
}

struct BadCase {
  const char* input;
  const char* reason;
};

class ImapParserErrorTest : public ::testing::TestWithParam<BadCase> {};

TEST_P(ImapParserErrorTest, RejectsWithReason) {
  EXPECT_THAT(parse_response(GetParam().input),
              StatusIs(ErrorKind::kProtocol, HasSubstr(GetParam().reason)));
}

INSTANTIATE_TEST_SUITE_P(
    Malformed, ImapParserErrorTest,
    ::testing::Values(BadCase{"\r\n", "empty line"},
                      BadCase{"* 1 FETCH (UID 1\r\n", "unterminated list"},
                      BadCase{"* 1 FETCH (UID 1))\r\n", "unexpected ')'"},
                      BadCase{"* 1 FETCH (X \"abc)\r\n", "unterminated quoted string"},
                      BadCase{"* 1 FETCH (X \"a\\qb\")\r\n", "invalid escape"},
                      BadCase{"* 1 FETCH (X {5} Y)\r\n", "not at the end of the line"},
                      BadCase{"* 1 FETCH (X {abc}\r\n", "bad literal size"},
                      BadCase{"* 1 FETCH (X {99999999999999999999999}\r\n", "bad literal size"},
                      BadCase{"a1 FETCH 1\r\n", "not OK, NO or BAD"},
                      BadCase{"a1 BYE\r\n", "not OK, NO or BAD"},
                      BadCase{"*\r\n", "missing response name"},
                      BadCase{"* 1 EXISTS\rX\r\n", "CR sent without LF"},
                      BadCase{"* 1 FETCH (BODY[] {5}\r\nab", "incomplete"},
                      BadCase{"* 1 EXISTS", "incomplete"}));

TEST(ImapParserTest, BoundsLineLength) {
  ParserLimits limits;
  limits.max_line = 100;
  std::string longline = "* OK " + std::string(200, 'a') + "\r\n";
  EXPECT_THAT(parse_response(longline, limits),
              StatusIs(ErrorKind::kProtocol, HasSubstr("line longer than 100")));
  // Byte-at-a-time fails as soon as the bound is crossed, before any CRLF.
  ResponseParser p(limits);
  size_t fed = 0;
  ParseStep s;
  for (char c : longline) {
    std::string_view one(&c, 1);
    s = p.feed(one);
    ++fed;
    if (s.kind == ParseStep::kError) break;
  }
  EXPECT_EQ(s.kind, ParseStep::kError);
  EXPECT_EQ(fed, 101u);
}

TEST(ImapParserTest, BoundsLiteralSizeAndDepth) {
  ParserLimits limits;
  limits.max_literal = 10;
  limits.max_depth = 3;
  EXPECT_THAT(parse_response("* 1 FETCH (BODY[] {11}\r\n", limits),
              StatusIs(ErrorKind::kProtocol, HasSubstr("exceeds the limit")));
  EXPECT_THAT(parse_response("* 1 FETCH ((((((1))))))\r\n", limits),
              StatusIs(ErrorKind::kProtocol, HasSubstr("nested too deeply")));
}

TEST(ImapParserTest, ErrorIsStickyUntilReset) {
  ResponseParser p;
  std::string_view bad = "\r\n";
  ASSERT_EQ(p.feed(bad).kind, ParseStep::kError);
  EXPECT_THAT(p.error(), StatusIs(ErrorKind::kProtocol, HasSubstr("empty line")));
  EXPECT_EQ(p.error().scope(), ErrorScope::kConnection);
  std::string_view good = "* 1 EXISTS\r\n";
  EXPECT_EQ(p.feed(good).kind, ParseStep::kError);
  p.reset();
  good = "* 1 EXISTS\r\n";
  EXPECT_EQ(p.feed(good).kind, ParseStep::kResponse);
}

// The untagged responses of an IDLE, one by one (folder_news is what the client applies).
TEST(ImapParserTest, FolderNewsFollowsTheFolderSize) {
  FolderCounts c{3, 0};
  auto news = [&](const char* line) {
    auto r = parse_response(line);
    EXPECT_TRUE(r.ok()) << line;
    return r.ok() ? folder_news(*r, c) : FolderNews::kNone;
  };
  EXPECT_EQ(news("* 3 EXISTS\r\n"), FolderNews::kNone);  // what was known
  EXPECT_EQ(news("* 1 FETCH (FLAGS (\\Seen))\r\n"), FolderNews::kNone);
  EXPECT_EQ(news("* 2 EXPUNGE\r\n"), FolderNews::kNone);
  EXPECT_EQ(c.exists, 2u);
  EXPECT_EQ(news("* 3 EXISTS\r\n"), FolderNews::kNewMail);  // 2 → 3 after the expunge
  EXPECT_EQ(c.exists, 3u);
  EXPECT_EQ(news("* 1 RECENT\r\n"), FolderNews::kNewMail);
  EXPECT_EQ(news("* 1 RECENT\r\n"), FolderNews::kNone);
  EXPECT_EQ(news("* 0 RECENT\r\n"), FolderNews::kNone);
  EXPECT_EQ(news("* OK Still here\r\n"), FolderNews::kNone);
  EXPECT_EQ(news("* BYE Autologout; idle for too long\r\n"), FolderNews::kBye);
  EXPECT_EQ(news("a1 OK [UIDNEXT 9] done\r\n"), FolderNews::kNone);
  EXPECT_EQ(news("+ idling\r\n"), FolderNews::kNone);
  // An expunge with nothing left to take off, and the EXISTS after it.
  c = {};
  EXPECT_EQ(news("* 1 EXPUNGE\r\n"), FolderNews::kNone);
  EXPECT_EQ(c.exists, 0u);
  EXPECT_EQ(news("* 1 EXISTS\r\n"), FolderNews::kNewMail);
}

}  // namespace
}  // namespace mb::imap
