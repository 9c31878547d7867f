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
using ::testing::AllOf;
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
    cfg_.type = ConnectorType::kGraph;
    cfg_.auth = AuthMethod::kOAuth2;
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

// The request that sends (sendMail with MIME or JSON, a draft's /send) answered 504 or 500,
// or with its answer lost: Graph may have sent the mail, so the request is not repeated,
// the outbox heard of the hand-over once, and the error is not a server's refusal (the
// outbox holds it in doubt). The draft is kept: Graph may have sent it.
TEST_F(GraphSenderTest, A504OrALostAnswerToTheRequestThatSendsIsInDoubtAndNotRepeated) {
  std::string big(3 * 1024 * 1024 + 1, 'x');
  struct Case {
    const char* name;
    bool save;
    std::string raw;
    std::string sending;  // the URL suffix of the request that sends
  };
  const std::vector<Case> cases = {{"MIME", true, simple_mail(), "/sendMail"},
                                   {"JSON", false, simple_mail(), "/sendMail"},
                                   {"draft", true, mail_with_attachment(big), "/send"}};
  for (const Case& c : cases) {
    for (int status : {504, 500, 502, kLostAnswer}) {
      SCOPED_TRACE(std::string(c.name) + " " + std::to_string(status));
      graph_ = std::make_shared<FakeGraph>();
      cfg_.save_to_sent_items = c.save;
      const std::string sending = c.sending;
      graph_->handler = [sending, status](const HttpRequest& r) {
        if (r.method == "POST" && r.url.size() >= sending.size() &&
            r.url.compare(r.url.size() - sending.size(), sending.size(), sending) == 0) {
          return status == kLostAnswer
                     ? HttpResponse{kLostAnswer, {}, ""}
                     : graph_error(status, "UnknownError", "gateway", {{"Retry-After", "1"}});
        }
        if (r.method == "POST" && r.url == kApi + kUser + "/messages") {
          return json_response(201, {{"id", "draft-9"}});
        }
        if (r.url.find("/createUploadSession") != std::string::npos) {
          return json_response(201, {{"uploadUrl", kService + "/upload/s1?authtoken=x"}});
        }
        if (r.method == "PUT") return HttpResponse{201, {}, ""};
        return HttpResponse{202, {}, ""};
      };
      int handovers = 0;
      OutgoingMail mail = outgoing(c.raw);
      mail.on_handed_over = [&](const SendResult& so_far) {
        ++handovers;
        EXPECT_EQ(so_far.recipients.size(), 2u);
      };
      auto sent = sender()->send(mail);
      ASSERT_THAT(sent, StatusIs(ErrorKind::kNetwork, HasSubstr(status == kLostAnswer
                                                                    ? "may have acted on it"
                                                                    : "may have sent")));
      EXPECT_FALSE(is_server_answer(sent.status()));
      EXPECT_EQ(graph_->count("POST", c.sending), 1u) << "the request that sends was repeated";
      EXPECT_EQ(handovers, 1);
      EXPECT_EQ(graph_->count("DELETE", "/messages/"), 0u) << "a draft Graph may have sent";
    }
  }
}

// 429 and 503 say Graph refused the request before acting on it: it goes again, and the
// outbox hears of the hand-over once.
TEST_F(GraphSenderTest, A429AndA503BeforeTheSendAreRepeated) {
  auto answers = std::make_shared<std::vector<HttpResponse>>(std::vector<HttpResponse>{
      graph_error(429, "TooManyRequests", "slow down", {{"Retry-After", "2"}}),
      graph_error(503, "serviceNotAvailable", "busy", {{"Retry-After", "3"}}),
      HttpResponse{202, {{"request-id", "req-3"}}, ""}});
  auto next = std::make_shared<size_t>(0);
  graph_->handler = [answers, next](const HttpRequest&) { return (*answers)[(*next)++]; };
  int handovers = 0;
  OutgoingMail mail = outgoing(simple_mail());
  mail.on_handed_over = [&](const SendResult&) { ++handovers; };
  auto sent = sender()->send(mail);
  ASSERT_THAT(sent, IsOk());
  EXPECT_EQ(sent->server_id, "req-3");
  EXPECT_EQ(graph_->count("POST", "/sendMail"), 3u);
  EXPECT_EQ(handovers, 1);
  EXPECT_EQ(sleeps_->waits,
            (std::vector<std::chrono::milliseconds>{std::chrono::seconds(2),
                                                    std::chrono::seconds(3)}));
}

// Graph's refusals after the request was written are answers, not doubts: 400, 403, 404.
TEST_F(GraphSenderTest, ARefusalOfTheRequestThatSendsIsAnAnswer) {
  for (int status : {400, 403, 404, 413}) {
    SCOPED_TRACE(status);
    graph_->handler = [status](const HttpRequest&) {
      return graph_error(status, "ErrorX", "refused");
    };
    OutgoingMail mail = outgoing(simple_mail());
    int handovers = 0;
    mail.on_handed_over = [&](const SendResult&) { ++handovers; };
    auto sent = sender()->send(mail);
    ASSERT_FALSE(sent.ok());
    EXPECT_TRUE(is_server_answer(sent.status())) << sent.status().to_string();
    EXPECT_EQ(handovers, 1);
  }
}

TEST_F(GraphSenderTest, AccessDeniedNamesMailSend) {
  graph_->handler = [](const HttpRequest&) {
    return graph_error(403, "ErrorAccessDenied",
                       "Access is denied. Check credentials and try again.");
  };
  EXPECT_THAT(sender()->send(outgoing(simple_mail())),
              StatusIs(ErrorKind::kAuth, HasSubstr("Mail.Send")));
}

std::string b64url(const std::string& text) {
  std::string out = base64_encode(text);
  for (char& c : out) c = c == '+' ? '-' : c == '/' ? '_' : c;
  while (!out.empty() && out.back() == '=') out.pop_back();
  return out;
}

// A SignIn whose token is a JWT with `claims` (no signature: only Graph checks it).
SignIn jwt_sign_in(const json& claims) {
  SignIn s;
  const std::string token =
      b64url(R"({"typ":"JWT","alg":"RS256"})") + "." + b64url(claims.dump()) + ".c2ln";
  s.with_token = [token](const std::function<Status(const std::string&)>& fn) {
    return fn(token);
  };
  s.describe = [] { return std::string("app test (app-only)"); };
  return s;
}

// Sending needs Mail.Send alone, which reads nothing: the test checks the token's roles and
// makes no Graph request (GET /users/… would need User.Read.All and fail with Mail.Send).
// A token without Mail.Send is a failure, shown as one.
TEST_F(GraphSenderTest, TestConnectionChecksTheTokensMailSendWithoutReadingTheUser) {
  graph_->handler = [](const HttpRequest&) {
    return graph_error(403, "Authorization_RequestDenied",
                       "Insufficient privileges to complete the operation.");
  };
  auto with = [&](const json& claims) {
    return make_graph_sender(cfg_, kService, jwt_sign_in(claims), factory(graph_),
                             fake_tuning(sleeps_))
        ->test_connection();
  };
  auto rep = with({{"aud", "https://graph.microsoft.com"}, {"appid", "app-1"},
                   {"roles", {"Mail.Send"}}});
  ASSERT_THAT(rep.status, IsOk());
  ASSERT_EQ(rep.steps.size(), 2u);
  EXPECT_EQ(rep.steps[0].name, "token");
  EXPECT_EQ(rep.steps[1].name, "permission");
  EXPECT_TRUE(rep.steps[1].ok);
  EXPECT_THAT(rep.steps[1].detail, HasSubstr("Mail.Send granted"));
  EXPECT_TRUE(graph_->snapshot().empty()) << "test-connection called Graph";

  auto lacking = with({{"aud", "https://graph.microsoft.com"}, {"appid", "app-1"},
                       {"roles", {"Mail.ReadWrite"}}});
  EXPECT_THAT(lacking.status,
              StatusIs(ErrorKind::kAuth, AllOf(HasSubstr("lacks Mail.Send"),
                                               HasSubstr("roles Mail.ReadWrite"),
                                               HasSubstr("application permission Mail.Send"))));
  ASSERT_EQ(lacking.steps.size(), 2u);
  EXPECT_FALSE(lacking.steps[1].ok);
  auto delegated = with({{"aud", "https://graph.microsoft.com"}, {"scp", "Mail.Send User.Read"}});
  EXPECT_THAT(delegated.status, IsOk());
  EXPECT_THAT(delegated.steps[1].detail, HasSubstr("scp Mail.Send User.Read"));
  // An opaque token is not judged: no step claims what was not checked.
  auto opaque = sender()->test_connection();
  ASSERT_THAT(opaque.status, IsOk());
  ASSERT_EQ(opaque.steps.size(), 1u);
  EXPECT_THAT(opaque.steps[0].detail, HasSubstr("not checked"));
  EXPECT_TRUE(graph_->snapshot().empty());
}

}  // namespace
}  // namespace mb::testing
