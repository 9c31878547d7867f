// File: tests/unit/connectors/ews/ews_sender_test.cpp — the EWS Sender's request and its
// reading of answers (connectors/ews/ews_sender.h) over a scripted HTTP client: the
// CreateItem element (SendAndSaveCopy with the Sent Items folder id, SendOnly, the MIME in
// base64 with a Bcc line put in front, for every length modulo 3), Bcc recipients found in
// To/Cc, impersonation and delegate ids, the hand-over called once when the request is
// written, a lost answer in doubt, a refusal a server answer, ErrorServerBusy repeated.
#include "connectors/ews/ews_sender.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "auth/base64.h"
#include "tests/status_matchers.h"

namespace mb::ews {
namespace {

using ::mb::testing::IsOk;
using ::mb::testing::StatusIs;
using ::testing::HasSubstr;
using ::testing::Not;

// The MimeContent of a CreateItem element, decoded.
std::string mime_of(const std::string& xml) {
  const std::string open = "<t:MimeContent CharacterSet=\"UTF-8\">";
  size_t b = xml.find(open);
  size_t e = xml.find("</t:MimeContent>");
  if (b == std::string::npos || e == std::string::npos) return "<none>";
  b += open.size();
  return base64_decode(std::string_view(xml).substr(b, e - b)).value_or("<not base64>");
}

TEST(EwsCreateItemTest, TheMimeWithABccLineIsOneBase64ForEveryLength) {
  for (size_t bcc_len = 0; bcc_len < 7; ++bcc_len) {
    for (size_t raw_len = 0; raw_len < 8; ++raw_len) {
      std::string bcc(bcc_len, 'b');
      std::string raw(raw_len, 'r');
      std::string out = "prefix";
      append_create_item(out, raw, bcc, "<t:DistinguishedFolderId Id=\"sentitems\"/>");
      EXPECT_EQ(mime_of(out), bcc + raw) << bcc_len << " " << raw_len;
      EXPECT_EQ(out.rfind("prefix", 0), 0u);
    }
  }
}

TEST(EwsCreateItemTest, SendAndSaveCopyNamesTheFolderAndSendOnlyNone) {
  std::string save;
  append_create_item(save, "x", "", "<t:DistinguishedFolderId Id=\"sentitems\"/>");
  EXPECT_THAT(save, HasSubstr("<m:CreateItem MessageDisposition=\"SendAndSaveCopy\"><m:SavedItemFolderId>"
                              "<t:DistinguishedFolderId Id=\"sentitems\"/></m:SavedItemFolderId><m:Items>"
                              "<t:Message><t:MimeContent CharacterSet=\"UTF-8\">eA==</t:MimeContent>"));
  std::string only;
  append_create_item(only, "x", "", "");
  EXPECT_THAT(only, HasSubstr("<m:CreateItem MessageDisposition=\"SendOnly\"><m:Items>"));
  EXPECT_THAT(only, Not(HasSubstr("SavedItemFolderId")));
}

TEST(EwsCreateItemTest, BlindRecipientsAreThoseNoToOrCcNames) {
  std::string raw = "From: a@corp.example\r\nTo: \"Bob\" <Bob@Example.com>,\r\n carol@example.com\r\n"
                    "Cc: dave@example.com\r\nSubject: to xbob@example.com\r\n\r\nTo: eve@example.com\r\n";
  EXPECT_THAT(blind_recipients(raw, {"bob@example.com", "CAROL@example.com", "dave@example.com",
                                     "eve@example.com", "bob@example.co"}),
              ::testing::ElementsAre("eve@example.com", "bob@example.co"));
}

// HTTP answers scripted per call; `written` is called as the engine would.
struct Script final : HttpClient {
  std::vector<std::function<Result<HttpResponse>(const HttpRequest&)>> steps;
  std::vector<HttpRequest> seen;
  Result<HttpResponse> send(const HttpRequest& r) override {
    seen.push_back(r);
    if (seen.size() > steps.size()) return Status(ErrorKind::kInternal, "unscripted request");
    return steps[seen.size() - 1](r);
  }
};

std::string answer(const std::string& message) {
  return "<?xml version=\"1.0\"?><s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\"><s:Body>"
         "<m:CreateItemResponse xmlns:m=\"http://schemas.microsoft.com/exchange/services/2006/messages\">"
         "<m:ResponseMessages>" + message + "</m:ResponseMessages></m:CreateItemResponse></s:Body></s:Envelope>";
}
const std::string kOk = answer("<m:CreateItemResponseMessage ResponseClass=\"Success\"><m:ResponseCode>NoError"
                               "</m:ResponseCode><m:Items/></m:CreateItemResponseMessage>");

class EwsSenderTest : public ::testing::Test {
 protected:
  std::unique_ptr<Sender> sender(Access access = Access::kOwn, bool save = true) {
    SenderOptions o;
    o.client.endpoint = "https://mail.corp.example/EWS/Exchange.asmx";
    o.client.mailbox = "helpdesk@corp.example";
    o.client.user = "CORP\\svc";
    o.client.access = access;
    o.client.sleep = [this](std::chrono::milliseconds d) {
      slept += d;
      return Status::Ok();
    };
    o.save_to_sent_items = save;
    return make_ews_sender(o, SignIn::with_password("pw"),
                           [this](const HttpOptions&, std::optional<NtlmCredentials>) {
                             return std::unique_ptr<HttpClient>(new Forward(script));
                           });
  }
  // Hands requests to the test's script (the client owns its HttpClient).
  struct Forward final : HttpClient {
    explicit Forward(Script& s) : s(s) {}
    Result<HttpResponse> send(const HttpRequest& r) override { return s.send(r); }
    Script& s;
  };
  static std::function<Result<HttpResponse>(const HttpRequest&)> reply(int status, std::string body) {
    return [status, body](const HttpRequest& r) -> Result<HttpResponse> {
      if (r.on_written) r.on_written();
      return HttpResponse{status, {}, body};
    };
  }
  OutgoingMail mail() {
    OutgoingMail m{"7", {"helpdesk@corp.example", {"bob@example.com"}},
                   "From: helpdesk@corp.example\r\nTo: bob@example.com\r\nSubject: hi\r\n\r\nhello\r\n", {}};
    m.on_handed_over = [this](const SendResult& so_far) {
      ++handovers;
      EXPECT_EQ(so_far.recipients.size(), 1u);
    };
    return m;
  }

  Script script;
  int handovers = 0;
  std::chrono::milliseconds slept{0};
};

TEST_F(EwsSenderTest, SendsOneCreateItemThatMayNotBeRepeated) {
  script.steps = {reply(200, kOk)};
  auto s = sender();
  OutgoingMail m = mail();
  auto r = s->send(m);
  ASSERT_THAT(r, IsOk());
  EXPECT_TRUE(r->queued_only);
  ASSERT_EQ(r->recipients.size(), 1u);
  EXPECT_TRUE(r->recipients[0].accepted);
  EXPECT_EQ(handovers, 1);
  ASSERT_EQ(script.seen.size(), 1u);
  const HttpRequest& req = script.seen[0];
  EXPECT_EQ(req.repeatable, std::optional<bool>(false));
  EXPECT_THAT(req.body, HasSubstr("<t:RequestServerVersion Version=\"Exchange2013_SP1\"/>"));
  EXPECT_THAT(req.body, HasSubstr("MessageDisposition=\"SendAndSaveCopy\""));
  EXPECT_THAT(req.body, HasSubstr("<t:DistinguishedFolderId Id=\"sentitems\"/>"));
  EXPECT_EQ(mime_of(req.body), m.raw);
  EXPECT_THAT(req.body, HasSubstr("</soap:Envelope>"));
}

TEST_F(EwsSenderTest, DelegateAndImpersonationChooseTheMailbox) {
  script.steps = {reply(200, kOk), reply(200, kOk)};
  ASSERT_THAT(sender(Access::kDelegate)->send(mail()), IsOk());
  ASSERT_THAT(sender(Access::kImpersonation)->send(mail()), IsOk());
  EXPECT_THAT(script.seen[0].body, HasSubstr("<t:DistinguishedFolderId Id=\"sentitems\"><t:Mailbox>"
                                             "<t:EmailAddress>helpdesk@corp.example</t:EmailAddress>"));
  EXPECT_THAT(script.seen[0].body, Not(HasSubstr("ExchangeImpersonation")));
  EXPECT_THAT(script.seen[1].body, HasSubstr("<t:PrimarySmtpAddress>helpdesk@corp.example</t:PrimarySmtpAddress>"));
}

TEST_F(EwsSenderTest, ALostAnswerAfterTheRequestWasWrittenIsInDoubt) {
  script.steps = {[](const HttpRequest& r) -> Result<HttpResponse> {
    r.on_written();
    return Status(ErrorKind::kNetwork, "connection reset while reading the answer", ErrorScope::kConnection);
  }};
  auto r = sender()->send(mail());
  EXPECT_THAT(r, StatusIs(ErrorKind::kNetwork, HasSubstr("may have sent the message")));
  EXPECT_FALSE(is_server_answer(r.status()));
  EXPECT_EQ(handovers, 1);
}

TEST_F(EwsSenderTest, AnAnswerThatIsNotEwsAfterWritingIsInDoubtToo) {
  script.steps = {reply(502, "<html>Bad Gateway</html>")};
  auto r = sender()->send(mail());
  EXPECT_FALSE(r.ok());
  EXPECT_FALSE(is_server_answer(r.status()));
  EXPECT_THAT(r.status().message(), HasSubstr("may have sent the message"));
}

TEST_F(EwsSenderTest, ARefusalIsAServerAnswerAndACrashBeforeWritingIsNotHandedOver) {
  script.steps = {reply(200, answer("<m:CreateItemResponseMessage ResponseClass=\"Error\"><m:MessageText>no right"
                                    "</m:MessageText><m:ResponseCode>ErrorSendAsDenied</m:ResponseCode>"
                                    "</m:CreateItemResponseMessage>")),
                  [](const HttpRequest&) -> Result<HttpResponse> {
                    return Status(ErrorKind::kNetwork, "connection refused", ErrorScope::kConnection);
                  },
                  reply(401, "")};
  auto refused = sender()->send(mail());
  EXPECT_THAT(refused, StatusIs(ErrorKind::kRejected, HasSubstr("ErrorSendAsDenied")));
  EXPECT_TRUE(is_permanent_send_failure(refused.status()));
  auto unreachable = sender()->send(mail());
  EXPECT_THAT(unreachable, StatusIs(ErrorKind::kNetwork, Not(HasSubstr("may have sent"))));
  auto auth = sender()->send(mail());
  EXPECT_THAT(auth, StatusIs(ErrorKind::kAuth, HasSubstr("401")));
  EXPECT_TRUE(is_server_answer(auth.status()));
}

TEST_F(EwsSenderTest, ErrorServerBusyIsRepeatedAndHandsOverOnce) {
  const std::string busy =
      "<?xml version=\"1.0\"?><s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\"><s:Body><s:Fault>"
      "<faultcode>a:ErrorServerBusy</faultcode><faultstring>busy</faultstring><detail>"
      "<e:ResponseCode xmlns:e=\"http://schemas.microsoft.com/exchange/services/2006/errors\">ErrorServerBusy"
      "</e:ResponseCode><t:MessageXml xmlns:t=\"http://schemas.microsoft.com/exchange/services/2006/types\">"
      "<t:Value Name=\"BackOffMilliseconds\">250</t:Value></t:MessageXml></detail></s:Fault></s:Body></s:Envelope>";
  script.steps = {reply(500, busy), reply(500, busy), reply(200, kOk)};
  ASSERT_THAT(sender()->send(mail()), IsOk());
  EXPECT_EQ(script.seen.size(), 3u);
  EXPECT_EQ(slept, std::chrono::milliseconds(500));
  EXPECT_EQ(handovers, 1);
  EXPECT_EQ(script.seen[0].body, script.seen[2].body);
}

TEST_F(EwsSenderTest, NoRecipientsIsInvalidInput) {
  OutgoingMail m = mail();
  m.envelope.recipients.clear();
  EXPECT_THAT(sender()->send(m), StatusIs(ErrorKind::kInvalidInput, ::testing::_));
  EXPECT_TRUE(script.seen.empty());
}

}  // namespace
}  // namespace mb::ews
