// File: tests/unit/connectors/ews/mime_stream_test.cpp — GetItem's MimeContent decoded as the
// answer arrives (connectors/ews/mime_stream.h): the documented answer fed whole and one byte
// at a time, what is left for the envelope, the size limit, broken and cut-off base64.
#include "connectors/ews/mime_stream.h"

#include <fstream>
#include <sstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "auth/base64.h"
#include "connectors/ews/ews_soap.h"
#include "tests/status_matchers.h"

namespace mb::ews {
namespace {

using ::mb::testing::IsOk;
using ::mb::testing::StatusIs;
using ::testing::HasSubstr;
using ::testing::Not;

std::string doc_body(const std::string& name) {
  std::ifstream in(std::string(MB_SOURCE_DIR) + "/tests/data/ews/doc-examples/" + name + ".json");
  std::stringstream text;
  text << in.rdbuf();
  return nlohmann::json::parse(text.str()).at("body_xml").get<std::string>();
}

// The documented GetItem answer with `mime` as its MimeContent.
std::string answer_with(const std::string& mime, const std::string& wrap = "") {
  std::string body = doc_body("get-item-mime");
  const std::string doc_b64 = "UmVjZ6IGZyb2b2suY29y5hMzgwZTA1YtDQo=";
  std::string b64 = base64_encode(mime);
  if (!wrap.empty()) {
    std::string folded;
    for (size_t i = 0; i < b64.size(); i += 76) folded += b64.substr(i, 76) + wrap;
    b64 = folded;
  }
  body.replace(body.find(doc_b64), doc_b64.size(), b64);
  return body;
}

TEST(MimeStreamTest, TheDocumentedAnswerDecodesAndItsEnvelopeStillParses) {
  // The documentation shortened its MIME: these bytes are what its base64 says, padding and
  // all; what matters is that they come out, and the rest parses.
  MimeStream mime(1 << 20);
  ASSERT_THAT(mime.feed(doc_body("get-item-mime")), IsOk());
  ASSERT_THAT(mime.finish(), IsOk());
  EXPECT_TRUE(mime.found());
  EXPECT_EQ(mime.take_message(), *base64_decode("UmVjZ6IGZyb2b2suY29y5hMzgwZTA1YtDQo="));
  auto r = parse_response(200, mime.envelope());
  ASSERT_THAT(r, IsOk());
  ASSERT_EQ(r->messages.size(), 1u);
  EXPECT_EQ(r->messages[0].code, "NoError");
  pugi::xml_node message = child(child(r->messages[0].node, "Items"), "Message");
  EXPECT_EQ(std::string(child(message, "MimeContent").attribute("CharacterSet").value()), "UTF-8");
  EXPECT_EQ(std::string(child(message, "ItemId").attribute("Id").value()),
            "AAMkADEzYjJkLTYxMwB8GqYicWAAA=");
  EXPECT_THAT(mime.envelope(), Not(HasSubstr("UmVjZ6")));
}

TEST(MimeStreamTest, OneByteAtATimeGivesTheSameBytes) {
  std::string message;
  for (int i = 0; i < 3000; ++i) message += static_cast<char>(i * 7 % 256);  // binary, 3000 bytes
  for (size_t cut : {0, 1, 2}) {
    std::string m = message.substr(0, message.size() - cut);  // each padding
    std::string answer = answer_with(m, "\r\n");
    MimeStream mime(1 << 20);
    for (char c : answer) ASSERT_THAT(mime.feed(std::string_view(&c, 1)), IsOk());
    ASSERT_THAT(mime.finish(), IsOk());
    EXPECT_EQ(mime.take_message(), m) << cut;
    EXPECT_THAT(parse_response(200, mime.envelope()), IsOk());
  }
}

TEST(MimeStreamTest, PastTheLimitIsTooLargeForThatMessageOnly) {
  MimeStream mime(100);
  Status s = mime.feed(answer_with(std::string(101, 'x')));
  EXPECT_THAT(s, StatusIs(ErrorKind::kTooLarge, HasSubstr("100 bytes")));
  EXPECT_EQ(s.scope(), ErrorScope::kMessage);
  MimeStream exact(100);
  EXPECT_THAT(exact.feed(answer_with(std::string(100, 'x'))), IsOk());
}

TEST(MimeStreamTest, BrokenOrCutOffBase64IsAProtocolError) {
  std::string body = answer_with("hello world");
  std::string bad = body;
  bad.replace(bad.find(base64_encode("hello world")), 2, "!!");
  MimeStream a(1 << 20);
  EXPECT_THAT(a.feed(bad), StatusIs(ErrorKind::kProtocol, HasSubstr("not base64")));
  MimeStream b(1 << 20);
  ASSERT_THAT(b.feed(body.substr(0, body.find("</t:MimeContent>") - 3)), IsOk());
  EXPECT_THAT(b.finish(), StatusIs(ErrorKind::kProtocol, HasSubstr("cut off")));
  std::string mid = body;
  mid.erase(mid.find("</t:MimeContent>") - 1, 1);  // 4k+3 characters
  MimeStream c(1 << 20);
  EXPECT_THAT(c.feed(mid), StatusIs(ErrorKind::kProtocol, HasSubstr("mid-group")));
}

TEST(MimeStreamTest, NoMimeContentAndAnEmptyOne) {
  MimeStream none(1 << 20);
  ASSERT_THAT(none.feed(doc_body("find-item")), IsOk());
  EXPECT_FALSE(none.found());
  EXPECT_EQ(none.envelope(), doc_body("find-item"));
  MimeStream empty(1 << 20);
  ASSERT_THAT(empty.feed("<x><t:MimeContent CharacterSet=\"UTF-8\"/><t:Subject>a</t:Subject></x>"), IsOk());
  EXPECT_FALSE(empty.found());
  EXPECT_EQ(empty.take_message(), "");
}

TEST(MimeStreamTest, TheRestOfTheAnswerIsBounded) {
  MimeStream mime(1 << 20);
  std::string big(MimeStream::kMaxEnvelopeBytes + 1, 'a');
  EXPECT_THAT(mime.feed(big), StatusIs(ErrorKind::kProtocol, HasSubstr("1 MiB")));
}

}  // namespace
}  // namespace mb::ews
