// File: tests/unit/connectors/graph/graph_sender_test.cpp — the Graph Sender: sendMail with
// MIME, sendMail with JSON (saveToSentItems = false), a 4 MB attachment through an upload
// session whose URL gets no Authorization header, 202 = queued only, refusals.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "auth/base64.h"
#include "graph_fake.h"
#include "tests/status_matchers.h"

namespace mb::testing {
namespace {

using json = nlohmann::json;
using ::testing::HasSubstr;
using ::testing::StartsWith;

const std::string kUser = "/users/helpdesk%40contoso.com";

std::string simple_mail() {
  return "From: Help Desk <helpdesk@contoso.com>\r\nTo: Alice <alice@example.com>\r\n"
         "Subject: [Ticket - 7] Printer\r\nMessage-ID: <out-7@mailbridge>\r\n"
         "In-Reply-To: <orig@example.com>\r\nReferences: <orig@example.com>\r\n"
         "X-Mailbridge-Ticket: 7\r\nMIME-Version: 1.0\r\n"
         "Content-Type: text/plain; charset=utf-8\r\n\r\nWe are on it.\r\n";
}

std::string wrap76(const std::string& b64) {
  std::string out;
  for (size_t i = 0; i < b64.size(); i += 76) out += b64.substr(i, 76) + "\r\n";
  return out;
}

std::string mail_with_attachment(const std::string& data) {
  return "From: helpdesk@contoso.com\r\nTo: alice@example.com\r\nSubject: logs\r\n"
         "Message-ID: <out-8@mailbridge>\r\nMIME-Version: 1.0\r\n"
         "Content-Type: multipart/mixed; boundary=\"B\"\r\n\r\n"
         "--B\r\nContent-Type: text/plain\r\n\r\nattached\r\n"
         "--B\r\nContent-Type: application/octet-stream\r\n"
         "Content-Disposition: attachment; filename=\"big.bin\"\r\n"
         "Content-Transfer-Encoding: base64\r\n\r\n" +
         wrap76(base64_encode(data)) + "--B--\r\n";
}

class GraphSenderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    cfg_.name = "outgoing";
    cfg_.type = "graph";
    cfg_.auth = "oauth2";
    cfg_.user = "helpdesk@contoso.com";
    graph_ = std::make_shared<FakeGraph>();
    tokens_ = std::make_shared<FakeTokens>();
    sleeps_ = std::make_shared<Sleeps>();
  }
  std::unique_ptr<Sender> sender() {
    return make_graph_sender(cfg_, kService, fake_sign_in(tokens_), factory(graph_),
                             fake_tuning(sleeps_));
  }
  OutgoingMail outgoing(std::string raw) {
    return {"ob-1", {"helpdesk@contoso.com", {"alice@example.com", "boss@example.com"}},
            std::move(raw), {}};
  }

  SenderConfig cfg_;
  std::shared_ptr<FakeGraph> graph_;
  std::shared_ptr<FakeTokens> tokens_;
  std::shared_ptr<Sleeps> sleeps_;
};

TEST_F(GraphSenderTest, SendsTheMimeBase64AndRecords202AsQueuedOnly) {
  graph_->handler = [](const HttpRequest&) {
    return HttpResponse{202, {{"request-id", "req-202"}}, ""};
  };
  auto sent = sender()->send(outgoing(simple_mail()));
  ASSERT_THAT(sent, IsOk());
  EXPECT_TRUE(sent->queued_only);
  EXPECT_EQ(sent->server_id, "req-202");
  ASSERT_EQ(sent->recipients.size(), 2u);
  EXPECT_TRUE(sent->recipients[0].accepted);
  EXPECT_THAT(sent->recipients[0].reply, HasSubstr("queued"));
  auto reqs = graph_->snapshot();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].method, "POST");
  EXPECT_EQ(reqs[0].url, kApi + kUser + "/sendMail");
  EXPECT_EQ(header_of(reqs[0], "Content-Type"), "text/plain");
  auto mime = base64_decode(reqs[0].body);
  ASSERT_TRUE(mime.has_value());
  // The Bcc recipient only the envelope names is handed over as a Bcc header.
  EXPECT_EQ(*mime, "Bcc: boss@example.com\r\n" + simple_mail());
}

TEST_F(GraphSenderTest, SendsJsonWithSaveToSentItemsFalse) {
  cfg_.save_to_sent_items = false;
  graph_->handler = [](const HttpRequest&) { return HttpResponse{202, {}, ""}; };
  auto sent = sender()->send(outgoing(simple_mail()));
  ASSERT_THAT(sent, IsOk());
  EXPECT_TRUE(sent->queued_only);
  auto reqs = graph_->snapshot();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(header_of(reqs[0], "Content-Type"), "application/json");
  json body = json::parse(reqs[0].body);
  EXPECT_EQ(body["saveToSentItems"], false);
  const json& m = body["message"];
  EXPECT_EQ(m["subject"], "[Ticket - 7] Printer");
  EXPECT_EQ(m["body"]["contentType"], "Text");
  EXPECT_THAT(m["body"]["content"].get<std::string>(), HasSubstr("We are on it."));
  EXPECT_EQ(m["toRecipients"][0]["emailAddress"]["address"], "alice@example.com");
  EXPECT_EQ(m["bccRecipients"][0]["emailAddress"]["address"], "boss@example.com");
  EXPECT_EQ(m["internetMessageId"], "<out-7@mailbridge>");
  EXPECT_EQ(m["internetMessageHeaders"][0]["name"], "X-Mailbridge-Ticket");
  EXPECT_EQ(m["singleValueExtendedProperties"][0]["id"], "String 0x1042");
  EXPECT_EQ(m["singleValueExtendedProperties"][0]["value"], "<orig@example.com>");
}

TEST_F(GraphSenderTest, ALargeAttachmentGoesThroughAnUploadSessionWithoutAuthorization) {
  std::string data(4 * 1024 * 1024 + 123, '\0');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>((i * 7919) & 0xFF);
  std::string uploaded;
  graph_->handler = [&uploaded, total = data.size()](const HttpRequest& r) {
    if (r.method == "POST" && r.url == kApi + kUser + "/messages") {
      return json_response(201, {{"id", "draft-1"}});
    }
    if (r.url.find("/createUploadSession") != std::string::npos) {
      return json_response(201, {{"uploadUrl", "https://outlook.test/upload/abc?token=pre"},
                                 {"nextExpectedRanges", {"0-"}}});
    }
    if (r.method == "PUT") {
      uploaded += r.body;
      if (uploaded.size() == total) return json_response(201, json::object());
      return json_response(200, {{"nextExpectedRanges", {std::to_string(uploaded.size())}}});
    }
    if (r.url == kApi + kUser + "/messages/draft-1/send") return HttpResponse{202, {}, ""};
    return graph_error(400, "ErrorInvalidRequest", r.method + " " + r.url);
  };
  auto sent = sender()->send(outgoing(mail_with_attachment(data)));
  ASSERT_THAT(sent, IsOk());
  EXPECT_TRUE(sent->queued_only);
  EXPECT_EQ(uploaded, data);
  size_t puts = 0;
  size_t expected_start = 0;
  for (const auto& r : graph_->snapshot()) {
    if (r.method != "PUT") {
      EXPECT_EQ(header_of(r, "Authorization"), "Bearer " + kToken1) << r.url;
      continue;
    }
    ++puts;
    EXPECT_FALSE(has_header(r, "Authorization"));
    EXPECT_EQ(r.url, "https://outlook.test/upload/abc?token=pre");
    EXPECT_THAT(header_of(r, "Content-Range"),
                StartsWith("bytes " + std::to_string(expected_start) + "-"));
    EXPECT_THAT(header_of(r, "Content-Range"), HasSubstr("/" + std::to_string(data.size())));
    EXPECT_LE(r.body.size(), 4u * 1024 * 1024);
    expected_start += r.body.size();
  }
  EXPECT_GE(puts, 2u);
  json session;
  for (const auto& r : graph_->snapshot()) {
    if (r.url.find("/createUploadSession") != std::string::npos) session = json::parse(r.body);
  }
  EXPECT_EQ(session["AttachmentItem"]["attachmentType"], "file");
  EXPECT_EQ(session["AttachmentItem"]["name"], "big.bin");
  EXPECT_EQ(session["AttachmentItem"]["size"], data.size());
  EXPECT_EQ(graph_->count("POST", "/messages/draft-1/send"), 1u);
}

TEST_F(GraphSenderTest, AFailedUploadDeletesTheDraft) {
  std::string data(3 * 1024 * 1024 + 1, 'x');
  graph_->handler = [](const HttpRequest& r) {
    if (r.method == "POST" && r.url == kApi + kUser + "/messages") {
      return json_response(201, {{"id", "draft-2"}});
    }
    if (r.url.find("/createUploadSession") != std::string::npos) {
      return graph_error(400, "ErrorAttachmentSizeLimitExceeded", "too big");
    }
    return HttpResponse{204, {}, ""};
  };
  auto sent = sender()->send(outgoing(mail_with_attachment(data)));
  EXPECT_THAT(sent, StatusIs(ErrorKind::kRejected, HasSubstr("ErrorAttachmentSizeLimitExceeded")));
  EXPECT_EQ(graph_->count("DELETE", "/messages/draft-2"), 1u);
}

TEST_F(GraphSenderTest, A400IsPermanentAndA503StormIsRetryable) {
  graph_->handler = [](const HttpRequest&) {
    return graph_error(400, "ErrorInvalidRecipients", "At least one recipient is not valid.");
  };
  auto refused = sender()->send(outgoing(simple_mail()));
  ASSERT_THAT(refused, StatusIs(ErrorKind::kRejected, HasSubstr("ErrorInvalidRecipients")));
  EXPECT_TRUE(is_permanent_send_failure(refused.status()));
  graph_->handler = [](const HttpRequest&) {
    return graph_error(503, "ServiceUnavailable", "busy", {{"Retry-After", "100"}});
  };
  auto busy = sender()->send(outgoing(simple_mail()));
  ASSERT_THAT(busy, StatusIs(ErrorKind::kThrottled, HasSubstr("retry after 100 s")));
  EXPECT_FALSE(is_permanent_send_failure(busy.status()));
}

TEST_F(GraphSenderTest, AccessDeniedNamesMailSend) {
  graph_->handler = [](const HttpRequest&) {
    return graph_error(403, "ErrorAccessDenied",
                       "Access is denied. Check credentials and try again.");
  };
  EXPECT_THAT(sender()->send(outgoing(simple_mail())),
              StatusIs(ErrorKind::kAuth, HasSubstr("Mail.Send")));
}

TEST_F(GraphSenderTest, TestConnectionChecksTokenAndMailbox) {
  graph_->handler = [](const HttpRequest&) {
    return json_response(200, {{"id", "u1"}, {"mail", "helpdesk@contoso.com"},
                               {"displayName", "Help Desk"}});
  };
  auto rep = sender()->test_connection();
  ASSERT_THAT(rep.status, IsOk());
  ASSERT_EQ(rep.steps.size(), 2u);
  EXPECT_EQ(rep.steps[1].name, "mailbox");
  EXPECT_THAT(rep.steps[1].detail, HasSubstr("Help Desk <helpdesk@contoso.com>"));
}

}  // namespace
}  // namespace mb::testing
