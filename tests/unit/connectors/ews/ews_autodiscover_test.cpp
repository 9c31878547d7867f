// File: tests/unit/connectors/ews/ews_autodiscover_test.cpp — autodiscover's pieces
// (connectors/ews/ews_autodiscover.h): the candidates in order, the SOAP and POX requests, and
// the documentation's answers (tests/data/ews/doc-examples/autodiscover-*.json, the files the
// EWS stand-in is checked against) read back; redirects and errors; and the search over a
// scripted HTTP client: the order tried, a non-https redirect refused, the hop limit.
#include "connectors/ews/ews_autodiscover.h"

#include <fstream>
#include <sstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <pugixml.hpp>

#include "tests/status_matchers.h"

namespace mb::ews {
namespace {

using ::mb::testing::IsOk;
using ::mb::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using Kind = AutodiscoverAnswer::Kind;

nlohmann::json fixture(const std::string& name) {
  std::ifstream in(std::string(MB_SOURCE_DIR) + "/tests/data/ews/doc-examples/" + name + ".json");
  EXPECT_TRUE(in.good()) << name;
  std::stringstream text;
  text << in.rdbuf();
  return nlohmann::json::parse(text.str());
}

TEST(EwsAutodiscoverPiecesTest, CandidatesInTheDocumentedOrder) {
  auto c = autodiscover_candidates("Helpdesk@Corp.Example");
  ASSERT_EQ(c.size(), 4u);
  EXPECT_EQ(c[0].url, "https://autodiscover.corp.example/autodiscover/autodiscover.svc");
  EXPECT_EQ(c[1].url, "https://corp.example/autodiscover/autodiscover.svc");
  EXPECT_EQ(c[2].url, "https://autodiscover.corp.example/autodiscover/autodiscover.xml");
  EXPECT_EQ(c[3].url, "https://corp.example/autodiscover/autodiscover.xml");
  EXPECT_EQ(c[0].kind, AutodiscoverKind::kSoap);
  EXPECT_EQ(c[3].kind, AutodiscoverKind::kPox);
  EXPECT_TRUE(autodiscover_candidates("no-domain").empty());
  EXPECT_TRUE(autodiscover_candidates("x@").empty());
}

TEST(EwsAutodiscoverPiecesTest, RequestsAreWellFormedAndEscapeTheAddress) {
  std::string soap = soap_autodiscover_request("https://a.example/autodiscover/autodiscover.svc", "o'<b>@x.example");
  pugi::xml_document doc;
  ASSERT_TRUE(doc.load_string(soap.c_str()));
  pugi::xml_node user = doc.document_element();
  for (const char* name : {"Body", "GetUserSettingsRequestMessage", "Request", "Users", "User"}) user = child(user, name);
  EXPECT_EQ(child_text(user, "Mailbox"), "o'<b>@x.example");
  EXPECT_THAT(soap, HasSubstr("<a:Setting>ExternalEwsUrl</a:Setting><a:Setting>InternalEwsUrl</a:Setting>"));
  EXPECT_THAT(soap, HasSubstr("<wsa:To>https://a.example/autodiscover/autodiscover.svc</wsa:To>"));
  std::string pox = pox_autodiscover_request("a&b@x.example");
  ASSERT_TRUE(doc.load_string(pox.c_str()));
  EXPECT_EQ(child_text(child(doc.document_element(), "Request"), "EMailAddress"), "a&b@x.example");
  EXPECT_EQ(child_text(child(doc.document_element(), "Request"), "AcceptableResponseSchema"),
            "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a");
}

TEST(EwsAutodiscoverPiecesTest, TheDocumentedPoxAnswerGivesTheExternalThenInternalUrl) {
  std::string body = fixture("autodiscover-pox")["body_xml"];
  auto a = parse_pox_autodiscover(body, false);
  ASSERT_THAT(a, IsOk());
  EXPECT_EQ(a->kind, Kind::kUrl);
  EXPECT_EQ(a->value, "https://mail.contoso.com/ews/exchange.asmx");
  EXPECT_EQ(a->setting, "EXPR ASUrl");  // the page's example predates EwsUrl
  a = parse_pox_autodiscover(body, true);
  ASSERT_THAT(a, IsOk());
  EXPECT_EQ(a->setting, "EXCH ASUrl");
  std::string with_ews = body;
  with_ews.replace(with_ews.find("<Type>EXPR</Type>"), 17, "<Type>EXPR</Type><EwsUrl>https://ews.contoso.com/EWS/Exchange.asmx</EwsUrl>");
  a = parse_pox_autodiscover(with_ews, false);
  ASSERT_THAT(a, IsOk());
  EXPECT_EQ(a->setting, "EXPR EwsUrl");
  EXPECT_EQ(a->value, "https://ews.contoso.com/EWS/Exchange.asmx");
}

TEST(EwsAutodiscoverPiecesTest, TheDocumentedErrorsAndRedirects) {
  auto e = parse_pox_autodiscover(fixture("autodiscover-pox-error")["body_xml"].get<std::string>(), false);
  ASSERT_THAT(e, IsOk());
  EXPECT_EQ(e->kind, Kind::kError);
  EXPECT_EQ(e->value, "error 600: Invalid Request");
  // The documented GetUserSettings answer asks no EWS URL.
  auto s = parse_soap_autodiscover(fixture("autodiscover-get-user-settings")["body_xml"].get<std::string>(), false);
  ASSERT_THAT(s, IsOk());
  EXPECT_EQ(s->kind, Kind::kError);
  EXPECT_THAT(s->value, HasSubstr("no ExternalEwsUrl or InternalEwsUrl"));
  const std::string pox_redirect =
      "<Autodiscover xmlns=\"http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006\"><Response "
      "xmlns=\"http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a\"><Account>"
      "<AccountType>email</AccountType><Action>redirectAddr</Action><RedirectAddr>new@other.example</RedirectAddr>"
      "</Account></Response></Autodiscover>";
  auto r = parse_pox_autodiscover(pox_redirect, false);
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ(r->kind, Kind::kRedirectAddress);
  EXPECT_EQ(r->value, "new@other.example");
  EXPECT_THAT(parse_pox_autodiscover("<html>", false), StatusIs(ErrorKind::kProtocol, ::testing::_));
  EXPECT_THAT(parse_soap_autodiscover("<a/>", false), StatusIs(ErrorKind::kProtocol, ::testing::_));
}

std::string soap_answer(const std::string& user_response) {
  return "<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\"><s:Body><GetUserSettingsResponseMessage "
         "xmlns=\"http://schemas.microsoft.com/exchange/2010/Autodiscover\"><Response><ErrorCode>NoError</ErrorCode>"
         "<UserResponses><UserResponse>" + user_response + "</UserResponse></UserResponses></Response>"
         "</GetUserSettingsResponseMessage></s:Body></s:Envelope>";
}

TEST(EwsAutodiscoverPiecesTest, SoapSettingsAndRedirects) {
  const std::string both =
      "<ErrorCode>NoError</ErrorCode><UserSettings><UserSetting><Name>InternalEwsUrl</Name><Value>https://in/EWS/Exchange.asmx"
      "</Value></UserSetting><UserSetting><Name>ExternalEwsUrl</Name><Value>https://out/EWS/Exchange.asmx</Value>"
      "</UserSetting></UserSettings>";
  auto a = parse_soap_autodiscover(soap_answer(both), false);
  ASSERT_THAT(a, IsOk());
  EXPECT_EQ(a->value, "https://out/EWS/Exchange.asmx");
  EXPECT_EQ(a->setting, "ExternalEwsUrl");
  a = parse_soap_autodiscover(soap_answer(both), true);
  ASSERT_THAT(a, IsOk());
  EXPECT_EQ(a->setting, "InternalEwsUrl");
  a = parse_soap_autodiscover(soap_answer("<ErrorCode>RedirectUrl</ErrorCode><RedirectTarget>https://r/autodiscover/autodiscover.svc</RedirectTarget>"), false);
  ASSERT_THAT(a, IsOk());
  EXPECT_EQ(a->kind, Kind::kRedirectUrl);
  a = parse_soap_autodiscover(soap_answer("<ErrorCode>InvalidUser</ErrorCode><ErrorMessage>Invalid user</ErrorMessage>"), false);
  ASSERT_THAT(a, IsOk());
  EXPECT_EQ(a->kind, Kind::kError);
  EXPECT_EQ(a->value, "InvalidUser: Invalid user");
}

// Every request answered by `answer(url)`.
struct Scripted final : HttpClient {
  std::function<HttpResponse(const std::string& url)> answer;
  std::vector<std::string>* urls;
  Result<HttpResponse> send(const HttpRequest& r) override {
    urls->push_back(r.url);
    return answer(r.url);
  }
};

TEST(EwsAutodiscoverSearchTest, RedirectsOnlyToHttpsAndWithinTheHopLimit) {
  std::vector<std::string> urls;
  AutodiscoverOptions o;
  o.email = "a@corp.example";
  o.max_hops = 2;
  auto run = [&](std::function<HttpResponse(const std::string&)> answer) {
    urls.clear();
    return autodiscover(o, SignIn::with_password("pw"), [&](const HttpOptions& h, std::optional<NtlmCredentials>) {
      EXPECT_TRUE(h.tls.verify);
      auto s = std::make_unique<Scripted>();
      s->answer = answer;
      s->urls = &urls;
      return std::unique_ptr<HttpClient>(std::move(s));
    });
  };
  Discovery d = run([](const std::string&) { return HttpResponse{302, {{"Location", "http://corp.example/x"}}, ""}; });
  EXPECT_THAT(d.status, StatusIs(ErrorKind::kConfig, HasSubstr("not followed (https:// only)")));
  EXPECT_EQ(urls.size(), 4u) << "each candidate once, the http:// Location never";
  d = run([](const std::string&) { return HttpResponse{302, {{"Location", "https://loop.example/autodiscover/autodiscover.svc"}}, ""}; });
  EXPECT_THAT(d.status, StatusIs(ErrorKind::kConfig, HasSubstr("after 2 redirects")));
  EXPECT_THAT(urls, ElementsAre("https://autodiscover.corp.example/autodiscover/autodiscover.svc",
                                "https://loop.example/autodiscover/autodiscover.svc",
                                "https://loop.example/autodiscover/autodiscover.svc"));
  d = run([](const std::string&) { return HttpResponse{200, {}, soap_answer("<ErrorCode>NoError</ErrorCode><UserSettings>"
      "<UserSetting><Name>ExternalEwsUrl</Name><Value>http://plain/EWS/Exchange.asmx</Value></UserSetting></UserSettings>")}; });
  EXPECT_FALSE(d.status.ok()) << "an http:// EWS URL is not taken";
  EXPECT_THAT(d.steps[0].outcome, HasSubstr("is not an https:// URL"));
}

}  // namespace
}  // namespace mb::ews
