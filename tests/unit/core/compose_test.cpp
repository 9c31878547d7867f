// File: tests/unit/core/compose_test.cpp — core/compose: headers, RFC 2047, alternatives,
// attachments, CRLF output, header injection refused, and the From/Reply-To policy of
// tracked mail. Output is checked by parsing it back with core/message.
#include "core/compose.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <string>

#include "core/message.h"
#include "tests/status_matchers.h"

namespace mb {
namespace {
using ::mb::testing::IsOk;
using ::mb::testing::StatusIs;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::EndsWith;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

MailSpec basic() {
  MailSpec s;
  s.from = {"Ann Tech via Help Desk", "support@contoso.example"};
  s.to = {{"Bob", "bob@example.com"}};
  s.cc = {{"", "carol@example.com"}};
  s.reply_to = "support@contoso.example";
  s.subject = "Printer on fire";
  s.text = "Hello Bob,\nis it fixed?\n";
  return s;
}

// Every line ends in CRLF: no bare CR or LF anywhere.
bool crlf_only(const std::string& raw) {
  for (size_t i = 0; i < raw.size(); ++i) {
    if (raw[i] == '\n' && (i == 0 || raw[i - 1] != '\r')) return false;
    if (raw[i] == '\r' && (i + 1 >= raw.size() || raw[i + 1] != '\n')) return false;
  }
  return true;
}

// The body as the reader sees it: the wire's CRLF line ends as LF.
std::string unix_lines(std::string text) {
  text.erase(std::remove(text.begin(), text.end(), '\r'), text.end());
  return text;
}

TEST(ComposeTest, HeadersAndBodyParseBack) {
  auto mail = compose_message(basic());
  ASSERT_THAT(mail, IsOk());
  EXPECT_TRUE(crlf_only(mail->raw));
  auto m = parse_message(mail->raw);
  ASSERT_THAT(m, IsOk());
  EXPECT_EQ(m->subject, "Printer on fire");
  EXPECT_EQ(m->from.email, "support@contoso.example");
  EXPECT_EQ(m->from.name, "Ann Tech via Help Desk");
  ASSERT_EQ(m->to.size(), 1u);
  EXPECT_EQ(m->to[0].email, "bob@example.com");
  ASSERT_EQ(m->cc.size(), 1u);
  EXPECT_EQ(m->reply_to, "support@contoso.example");
  EXPECT_EQ(m->message_id, mail->message_id);
  EXPECT_FALSE(m->date.empty());
  EXPECT_EQ(unix_lines(m->text), "Hello Bob,\nis it fixed?\n");
  EXPECT_EQ(mail->envelope.from, "support@contoso.example");
  EXPECT_THAT(mail->envelope.recipients, ElementsAre("bob@example.com", "carol@example.com"));
}

TEST(ComposeTest, MessageIdIsRandomInTheDomainOfFrom) {
  auto a = compose_message(basic());
  auto b = compose_message(basic());
  ASSERT_THAT(a, IsOk());
  ASSERT_THAT(b, IsOk());
  EXPECT_THAT(a->message_id, EndsWith("@contoso.example"));
  EXPECT_NE(a->message_id, b->message_id);
  EXPECT_GE(a->message_id.size(), 26u + 17u);
}

TEST(ComposeTest, NonAsciiHeadersAreEncodedWords) {
  MailSpec s = basic();
  s.subject = "Drucker brennt — schnell! Ünïcödé";
  s.from.name = "Zoë Tech";
  auto mail = compose_message(s);
  ASSERT_THAT(mail, IsOk());
  std::string head = mail->raw.substr(0, mail->raw.find("\r\n\r\n"));
  EXPECT_THAT(head, HasSubstr("=?"));                 // RFC 2047
  for (unsigned char c : head) EXPECT_LT(c, 128u);     // headers stay 7-bit
  auto m = parse_message(mail->raw);
  ASSERT_THAT(m, IsOk());
  EXPECT_EQ(m->subject, s.subject);
  EXPECT_EQ(m->from.name, "Zoë Tech");
}

TEST(ComposeTest, HtmlAlternativeAndBase64Attachments) {
  MailSpec s = basic();
  s.html = "<html><body><p>Hello <b>Bob</b></p></body></html>";
  s.attachments = {{"report.pdf", "", std::string("%PDF-1.4\0\x01\x02", 11)},
                   {"notes.weird", "", "abc"}};
  auto mail = compose_message(s);
  ASSERT_THAT(mail, IsOk());
  EXPECT_TRUE(crlf_only(mail->raw));
  EXPECT_THAT(mail->raw, HasSubstr("multipart/alternative"));
  EXPECT_THAT(mail->raw, HasSubstr("Content-Transfer-Encoding: base64"));
  auto m = parse_message(mail->raw);
  ASSERT_THAT(m, IsOk());
  EXPECT_THAT(m->html, HasSubstr("<b>Bob</b>"));
  EXPECT_THAT(m->text, HasSubstr("Hello Bob"));
  ASSERT_EQ(m->attachments.size(), 2u);
  EXPECT_EQ(m->attachments[0].filename, "report.pdf");
  EXPECT_EQ(m->attachments[0].content_type, "application/pdf");
  EXPECT_EQ(m->attachments[0].data, std::string("%PDF-1.4\0\x01\x02", 11));
  EXPECT_EQ(m->attachments[1].content_type, "application/octet-stream");
}

TEST(ComposeTest, LongLinesAndCrLfBodiesStayWithinLimits) {
  MailSpec s = basic();
  s.text = std::string(3000, 'x') + "\r\nsecond line\rthird\n";
  auto mail = compose_message(s);
  ASSERT_THAT(mail, IsOk());
  EXPECT_TRUE(crlf_only(mail->raw));
  size_t start = 0;
  for (size_t end; (end = mail->raw.find("\r\n", start)) != std::string::npos; start = end + 2) {
    EXPECT_LE(end - start, 998u);  // RFC 5322 §2.1.1
  }
  auto m = parse_message(mail->raw);
  ASSERT_THAT(m, IsOk());
  EXPECT_TRUE(unix_lines(m->text) == std::string(3000, 'x') + "\nsecond line\nthird\n");
}

TEST(ComposeTest, LineBreaksInAnyHeaderValueAreRefused) {
  const std::string evil[] = {"a\r\nBcc: victim@example.com", "a\nX: y", "a\rX: y",
                              std::string("a\0b", 3)};
  for (const auto& v : evil) {
    MailSpec s = basic();
    s.subject = v;
    EXPECT_THAT(compose_message(s), StatusIs(ErrorKind::kInvalidInput, HasSubstr("Subject")));
    s = basic();
    s.from.name = v;
    EXPECT_THAT(compose_message(s), StatusIs(ErrorKind::kInvalidInput, HasSubstr("From")));
    s = basic();
    s.to[0].name = v;
    EXPECT_THAT(compose_message(s), StatusIs(ErrorKind::kInvalidInput, HasSubstr("To")));
    s = basic();
    s.to[0].email = "bob@example.com" + v;
    EXPECT_THAT(compose_message(s), StatusIs(ErrorKind::kInvalidInput, HasSubstr("To")));
    s = basic();
    s.cc[0].email = v + "@example.com";
    EXPECT_THAT(compose_message(s), StatusIs(ErrorKind::kInvalidInput, HasSubstr("Cc")));
    s = basic();
    s.reply_to = "x@example.com" + v;
    EXPECT_THAT(compose_message(s), StatusIs(ErrorKind::kInvalidInput, HasSubstr("Reply-To")));
    s = basic();
    s.headers = {{"X-Mailbridge-Tracking", v}};
    EXPECT_THAT(compose_message(s), StatusIs(ErrorKind::kInvalidInput, HasSubstr("header")));
    s = basic();
    s.attachments = {{v + ".txt", "", "x"}};
    EXPECT_THAT(compose_message(s), StatusIs(ErrorKind::kInvalidInput, HasSubstr("attachment")));
  }
}

TEST(ComposeTest, AddressesMustBePlain) {
  EXPECT_TRUE(is_plain_address("a.b+c@example.com"));
  for (const char* bad : {"", "bob", "@example.com", "bob@", "bob smith@example.com",
                          "<bob@example.com>", "bob@example.com,eve@example.com",
                          "\"bob\"@example.com", "a@b@c"}) {
    EXPECT_FALSE(is_plain_address(bad)) << bad;
    MailSpec s = basic();
    s.to[0].email = bad;
    EXPECT_THAT(compose_message(s), StatusIs(ErrorKind::kInvalidInput, HasSubstr("To"))) << bad;
  }
  MailSpec none = basic();
  none.to.clear();
  none.cc.clear();
  EXPECT_THAT(compose_message(none), StatusIs(ErrorKind::kInvalidInput, HasSubstr("recipient")));
}

TEST(ComposeTest, BccIsEnvelopeOnlyAndRecipientsAreDeduplicated) {
  MailSpec s = basic();
  s.bcc = {"hidden@example.com", "BOB@example.com"};
  auto mail = compose_message(s);
  ASSERT_THAT(mail, IsOk());
  EXPECT_THAT(mail->raw, Not(HasSubstr("hidden@example.com")));
  EXPECT_THAT(mail->envelope.recipients,
              ElementsAre("bob@example.com", "carol@example.com", "hidden@example.com"));
}

TEST(ComposeTest, ContentTypeByExtension) {
  EXPECT_EQ(content_type_for("a.PNG"), "image/png");
  EXPECT_EQ(content_type_for("scan.jpeg"), "image/jpeg");
  EXPECT_EQ(content_type_for("noext"), "application/octet-stream");
}

Config tracking_config() {
  Config c;
  MailboxConfig support;
  support.name = "support";
  support.user = "Support@Contoso.example";
  MailboxConfig sales;
  sales.name = "sales";
  sales.user = "login-name";
  sales.address = "sales@contoso.example";
  c.mailboxes = {support, sales};
  SenderConfig out;
  out.name = "outgoing";
  out.user = "relay-login";
  c.senders = {out};
  c.tracking.mailbox = "support";
  c.tracking.sender = "outgoing";
  return c;
}

TEST(ComposeTest, TrackedFromIsAConfiguredMailboxAddress) {
  Config c = tracking_config();
  // The sender's login is no mailbox address: the tracking mailbox's address is used.
  EXPECT_EQ(*tracked_from(c, c.senders[0]), "support@contoso.example");
  EXPECT_EQ(*tracking_reply_to(c), "support@contoso.example");
  // A sender signed in as a mailbox sends as that mailbox.
  c.senders[0].user = "sales@contoso.example";
  EXPECT_EQ(*tracked_from(c, c.senders[0]), "sales@contoso.example");
  // An explicit [tracking] from that is not a mailbox address is refused.
  c.tracking.from = "ceo@contoso.example";
  EXPECT_THAT(tracked_from(c, c.senders[0]),
              StatusIs(ErrorKind::kConfig, HasSubstr("not the address of any [[mailbox]]")));
  c.tracking.from.clear();
  c.tracking.mailbox.clear();
  c.senders[0].user = "relay";
  EXPECT_THAT(tracked_from(c, c.senders[0]), StatusIs(ErrorKind::kConfig, HasSubstr("mailbox")));
}

TEST(ComposeTest, FooterCarriesTheCookie) {
  EXPECT_THAT(tracking_footer_text("[#MB-X]"), HasSubstr("[#MB-X]"));
  EXPECT_EQ(append_html_footer("<html><BODY><p>x</p></BODY></html>", "[#MB-X]"),
            "<html><BODY><p>x</p>" + tracking_footer_html("[#MB-X]") + "</BODY></html>");
  EXPECT_THAT(append_html_footer("<p>x</p>", "[#MB-X]"), StartsWith("<p>x</p><p"));
}


// [tracking] from/from_name and [outbox] as load_config validates them.
TEST(ComposeConfigTest, TrackingAndOutboxKeysAreValidated) {
  const std::string base =
      "[[mailbox]]\nname = \"support\"\ntype = \"imap\"\nhost = \"h\"\n"
      "user = \"support@contoso.example\"\npassword = \"env:X\"\n";
  auto ok = parse_config(base + "[tracking]\nsecret = \"env:S\"\nmailbox = \"support\"\n"
                         "from = \"Support@Contoso.example\"\n"
                         "[outbox]\nretry_initial = \"30s\"\nretry_max = \"2h\"\n"
                         "max_attempts = 5\nin_doubt = \"park\"\n", "t.toml");
  ASSERT_THAT(ok, IsOk());
  EXPECT_EQ(ok->outbox.in_doubt, InDoubt::kPark);
  EXPECT_EQ(ok->tracking.from, "support@contoso.example");
  EXPECT_EQ(ok->outbox.retry_initial, std::chrono::seconds(30));
  EXPECT_EQ(ok->outbox.retry_max, std::chrono::seconds(7200));
  EXPECT_EQ(ok->outbox.max_attempts, 5u);
  EXPECT_THAT(parse_config(base + "[tracking]\nsecret = \"env:S\"\nfrom = \"ceo@x.example\"\n",
                           "t.toml"),
              StatusIs(ErrorKind::kConfig, HasSubstr("from")));
  EXPECT_THAT(parse_config(base + "[outbox]\nmax_attempts = 0\n", "t.toml"),
              StatusIs(ErrorKind::kConfig, HasSubstr("max_attempts")));
  EXPECT_THAT(parse_config(base + "[outbox]\nretry_initial = \"2h\"\nretry_max = \"1h\"\n",
                           "t.toml"),
              StatusIs(ErrorKind::kConfig, HasSubstr("retry_max")));
  EXPECT_THAT(parse_config(base + "[outbox]\nretry = 3\n", "t.toml"),
              StatusIs(ErrorKind::kConfig, HasSubstr("retry")));
  // in_doubt: "sent" by default, "resend" on request, anything else named.
  auto plain = parse_config(base, "t.toml");
  ASSERT_THAT(plain, IsOk());
  EXPECT_EQ(plain->outbox.in_doubt, InDoubt::kSent);
  auto resend = parse_config(base + "[outbox]\nin_doubt = \"resend\"\n", "t.toml");
  ASSERT_THAT(resend, IsOk());
  EXPECT_EQ(resend->outbox.in_doubt, InDoubt::kResend);
  EXPECT_THAT(parse_config(base + "[outbox]\nin_doubt = \"twice\"\n", "t.toml"),
              StatusIs(ErrorKind::kConfig,
                       AllOf(HasSubstr("in_doubt"), HasSubstr("sent | resend | park"))));
}

}  // namespace
}  // namespace mb
