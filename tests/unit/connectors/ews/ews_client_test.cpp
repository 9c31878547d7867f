// File: tests/unit/connectors/ews/ews_client_test.cpp — the EWS client (ews_client.h) over a
// scripted HttpClient: the headers of every call, impersonation and delegate access,
// ErrorServerBusy waited out (BackOffMilliseconds, else backoff) and given up on, 401 and 403
// in words an administrator can act on, bearer tokens refreshed once, no secret in errors.
#include "connectors/ews/ews_client.h"

#include <deque>
#include <fstream>
#include <sstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "auth/token_cache.h"
#include "core/cancel.h"
#include "tests/status_matchers.h"

namespace mb::ews {
namespace {

using ::mb::testing::IsOk;
using ::mb::testing::StatusIs;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;

std::string doc_body(const std::string& name) {
  std::ifstream in(std::string(MB_SOURCE_DIR) + "/tests/data/ews/doc-examples/" + name + ".json");
  std::stringstream text;
  text << in.rdbuf();
  return nlohmann::json::parse(text.str()).at("body_xml").get<std::string>();
}

HttpResponse reply(int status, std::string body, HttpHeaders headers = {}) {
  HttpResponse r;
  r.status = status;
  r.body = std::move(body);
  r.headers = std::move(headers);
  return r;
}

// Answers each request with the next scripted reply and keeps what it was sent.
struct Script {
  std::deque<HttpResponse> replies;
  std::vector<HttpRequest> seen;
  std::optional<NtlmCredentials> ntlm;
};

class ScriptedHttp final : public HttpClient {
 public:
  explicit ScriptedHttp(Script* s) : s_(s) {}
  Result<HttpResponse> send(const HttpRequest& request) override {
    s_->seen.push_back(request);
    if (s_->replies.empty()) return Status(ErrorKind::kNetwork, "no more scripted replies");
    HttpResponse r = s_->replies.front();
    s_->replies.pop_front();
    return r;
  }

 private:
  Script* s_;
};

std::string header(const HttpRequest& r, std::string_view name) {
  for (const auto& [n, v] : r.headers) {
    if (n == name) return v;
  }
  return "";
}

class EwsClientTest : public ::testing::Test {
 protected:
  ClientOptions options(SignInMethod m = SignInMethod::kBasic, Access a = Access::kOwn) {
    ClientOptions o;
    o.endpoint = "https://mail.corp.example/EWS/Exchange.asmx";
    o.mailbox = "helpdesk@corp.example";
    o.user = m == SignInMethod::kNtlm ? "CORP\\svc-ews" : "helpdesk@corp.example";
    o.method = m;
    o.access = a;
    o.sleep = [this](std::chrono::milliseconds d) {
      waits.push_back(d);
      return Status::Ok();
    };
    o.random = [] { return uint64_t{0}; };
    return o;
  }
  std::unique_ptr<Client> client(ClientOptions o, SignIn sign_in = SignIn::with_password("s3cret-pw")) {
    return std::make_unique<Client>(std::move(o), std::move(sign_in),
                                    [this](const HttpOptions&, std::optional<NtlmCredentials> n) {
                                      script.ntlm = std::move(n);
                                      return std::make_unique<ScriptedHttp>(&script);
                                    });
  }
  static std::string get_folder(const Client& c) {
    return "<m:GetFolder><m:FolderShape><t:BaseShape>IdOnly</t:BaseShape></m:FolderShape>"
           "<m:FolderIds>" + c.folder("inbox") + "</m:FolderIds></m:GetFolder>";
  }

  Script script;
  std::vector<std::chrono::milliseconds> waits;
};

TEST_F(EwsClientTest, EveryCallCarriesTheAnchorVersionAndBasicCredentials) {
  script.replies.push_back(reply(200, doc_body("find-item")));
  auto c = client(options());
  auto r = c->call("FindItem", get_folder(*c), true);
  ASSERT_THAT(r, IsOk());
  ASSERT_EQ(script.seen.size(), 1u);
  const HttpRequest& req = script.seen[0];
  EXPECT_EQ(req.method, "POST");
  EXPECT_EQ(req.url, "https://mail.corp.example/EWS/Exchange.asmx");
  EXPECT_EQ(header(req, "X-AnchorMailbox"), "helpdesk@corp.example");
  EXPECT_EQ(header(req, "Content-Type"), "text/xml; charset=utf-8");
  // base64("helpdesk@corp.example:s3cret-pw")
  EXPECT_EQ(header(req, "Authorization"), "Basic aGVscGRlc2tAY29ycC5leGFtcGxlOnMzY3JldC1wdw==");
  EXPECT_EQ(req.repeatable, std::optional<bool>(true));
  EXPECT_THAT(req.body, HasSubstr("<t:RequestServerVersion Version=\"Exchange2013_SP1\"/>"));
  EXPECT_THAT(req.body, Not(HasSubstr("ExchangeImpersonation")));
  EXPECT_THAT(req.body, Not(HasSubstr("<t:Mailbox>")));
  EXPECT_FALSE(script.ntlm);
}

TEST_F(EwsClientTest, NtlmGoesToTheEngineAndImpersonationIntoTheHeader) {
  script.replies.push_back(reply(200, doc_body("find-item")));
  auto c = client(options(SignInMethod::kNtlm, Access::kImpersonation));
  ASSERT_THAT(c->call("FindItem", get_folder(*c), true), IsOk());
  ASSERT_TRUE(script.ntlm);
  EXPECT_EQ(script.ntlm->user, "CORP\\svc-ews");
  EXPECT_EQ(script.ntlm->password, "s3cret-pw");
  const HttpRequest& req = script.seen[0];
  EXPECT_EQ(header(req, "Authorization"), "");  // libcurl signs in
  EXPECT_THAT(req.body, HasSubstr("<t:ExchangeImpersonation><t:ConnectingSID><t:PrimarySmtpAddress>"
                                  "helpdesk@corp.example</t:PrimarySmtpAddress>"));
  EXPECT_EQ(header(req, "X-AnchorMailbox"), "helpdesk@corp.example");
}

TEST_F(EwsClientTest, DelegateAccessNamesTheMailboxInFolderIds) {
  script.replies.push_back(reply(200, doc_body("find-item")));
  auto c = client(options(SignInMethod::kBasic, Access::kDelegate));
  ASSERT_THAT(c->call("FindItem", get_folder(*c), true), IsOk());
  EXPECT_THAT(script.seen[0].body,
              HasSubstr("<t:Mailbox><t:EmailAddress>helpdesk@corp.example</t:EmailAddress>"));
  EXPECT_THAT(script.seen[0].body, Not(HasSubstr("ExchangeImpersonation")));
}

TEST_F(EwsClientTest, ServerBusyWaitsItsBackOffThenBacksOffAndSucceeds) {
  std::string busy_2500 = doc_body("server-busy");
  busy_2500.replace(busy_2500.find("297749"), 6, "2500");
  std::string busy_plain = busy_2500;
  busy_plain.erase(busy_plain.find("<t:MessageXml"),
                   busy_plain.find("</t:MessageXml>") + 15 - busy_plain.find("<t:MessageXml"));
  script.replies = {reply(500, busy_2500), reply(500, busy_plain), reply(503, ""),
                    reply(200, doc_body("find-item"))};
  auto c = client(options());
  ASSERT_THAT(c->call("FindItem", get_folder(*c), false), IsOk());
  EXPECT_EQ(script.seen.size(), 4u);  // a busy server did nothing: even this call is re-sent
  ASSERT_EQ(waits.size(), 3u);
  EXPECT_EQ(waits[0], std::chrono::milliseconds(2500));
  // Backoff with equal jitter at u = 0: half of 1 s doubled per attempt.
  EXPECT_EQ(waits[1], std::chrono::milliseconds(1000));
  EXPECT_EQ(waits[2], std::chrono::milliseconds(2000));
}

TEST_F(EwsClientTest, ServerBusyPastTheBudgetIsThrottledWithRetryAfter) {
  for (int i = 0; i < 10; ++i) script.replies.push_back(reply(500, doc_body("server-busy")));
  ClientOptions o = options();
  o.max_retry_wait = std::chrono::seconds(400);
  auto c = client(o);
  auto r = c->call("FindItem", get_folder(*c), true);
  EXPECT_THAT(r, StatusIs(ErrorKind::kThrottled, HasSubstr("ErrorServerBusy")));
  EXPECT_EQ(r.status().retry_after(), std::chrono::seconds(298));
  EXPECT_EQ(script.seen.size(), 2u);  // 297.7 s waited once; a second wait is over 400 s in all
}

TEST_F(EwsClientTest, ACancelledWaitEndsTheCall) {
  std::string busy = doc_body("server-busy");
  busy.replace(busy.find("297749"), 6, "2500");
  script.replies = {reply(500, busy), reply(200, doc_body("find-item"))};
  ClientOptions o = options();
  o.sleep = [](std::chrono::milliseconds) { return Cancel::cancelled("waiting"); };
  auto c = client(o);
  EXPECT_THAT(c->call("FindItem", get_folder(*c), true), StatusIs(ErrorKind::kCancelled, HasSubstr("waiting")));
  EXPECT_EQ(script.seen.size(), 1u);
}

TEST_F(EwsClientTest, UnauthorizedNamesWhatTheServerOffersAndNoSecret) {
  script.replies.push_back(reply(401, "", {{"WWW-Authenticate", "Negotiate"},
                                           {"WWW-Authenticate", "NTLM"},
                                           {"x-ms-diagnostics", "2000000;reason=\"x\""}}));
  auto c = client(options());
  auto r = c->call("GetFolder", get_folder(*c), true);
  EXPECT_THAT(r, StatusIs(ErrorKind::kAuth,
                          AllOf(HasSubstr("helpdesk@corp.example"), HasSubstr("Negotiate, NTLM"),
                                HasSubstr("Basic is not enabled"), HasSubstr("x-ms-diagnostics"),
                                Not(HasSubstr("s3cret")), Not(HasSubstr("aGVscGRlc2t")))));
}

TEST_F(EwsClientTest, ForbiddenByExchangeOnlineNamesTheAllowList) {
  script.replies.push_back(reply(403, ""));
  ClientOptions o = options(SignInMethod::kBearer, Access::kImpersonation);
  o.endpoint = "https://outlook.office365.com/EWS/Exchange.asmx";
  SignIn s;
  s.with_token = [](const auto& fn) { return fn("tok"); };
  auto c = client(o, s);
  EXPECT_THAT(c->call("GetFolder", get_folder(*c), true),
              StatusIs(ErrorKind::kAuth, AllOf(HasSubstr("EWSAllowedAppIDs"), HasSubstr("graph"))));
}

TEST_F(EwsClientTest, ARefusedTokenIsRefreshedOnce) {
  script.replies = {reply(401, "", {{"WWW-Authenticate", "Bearer"}}), reply(200, doc_body("find-item"))};
  SignIn s;
  std::vector<std::string> tokens{"old", "new"};
  int calls = 0;
  s.with_token = [&](const auto& fn) {
    Status st = fn(tokens[calls++]);
    if (is_token_rejected(st)) st = fn(tokens[calls++]);
    return st;
  };
  auto c = client(options(SignInMethod::kBearer, Access::kImpersonation), s);
  ASSERT_THAT(c->call("GetFolder", get_folder(*c), true), IsOk());
  ASSERT_EQ(script.seen.size(), 2u);
  EXPECT_EQ(header(script.seen[0], "Authorization"), "Bearer old");
  EXPECT_EQ(header(script.seen[1], "Authorization"), "Bearer new");
}

TEST_F(EwsClientTest, MalformedAnswersAndOddStatusesAreProtocolErrors) {
  script.replies = {reply(200, "<html>login page</html>"), reply(302, "")};
  auto c = client(options());
  EXPECT_THAT(c->call("GetFolder", get_folder(*c), true),
              StatusIs(ErrorKind::kProtocol, HasSubstr("not a SOAP envelope")));
  EXPECT_THAT(c->call("GetFolder", get_folder(*c), true),
              StatusIs(ErrorKind::kProtocol, HasSubstr("unexpected HTTP 302")));
}

TEST_F(EwsClientTest, OtherFaultsAreTheirCodesStatus) {
  std::string denied = doc_body("server-busy");
  for (auto [from, to] : {std::pair<std::string, std::string>{"ErrorServerBusy", "ErrorImpersonateUserDenied"}}) {
    for (size_t at; (at = denied.find(from)) != std::string::npos;) denied.replace(at, from.size(), to);
  }
  script.replies.push_back(reply(500, denied));
  auto c = client(options(SignInMethod::kNtlm, Access::kImpersonation));
  EXPECT_THAT(c->call("GetFolder", get_folder(*c), true),
              StatusIs(ErrorKind::kAuth, HasSubstr("ApplicationImpersonation")));
  EXPECT_TRUE(waits.empty());
}

}  // namespace
}  // namespace mb::ews
