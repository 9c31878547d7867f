// File: tests/integration/ews_autodiscover_test.cpp — autodiscover (connectors/ews/
// ews_autodiscover.h) against the EWS stand-in, its documented host names mapped to loopback
// with curl's CONNECT_TO while TLS checks those names (the stand-in's certificate carries
// them): SOAP found on autodiscover.<domain>; the domain when that host fails; POX when SOAP
// is missing on both; a SOAP RedirectUrl, an HTTP 302 and a RedirectAddress followed; a
// redirect loop stopped at the hop limit; a redirect to http:// refused; every candidate
// failing with an error that lists each step; a wrong password; NTLM; and the EWS sender
// without an endpoint finding its URL this way and sending.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "connectors/ews/ews_autodiscover.h"
#include "connectors/ews/ews_sender.h"
#include "tests/integration/ews_harness.h"
#include "tests/status_matchers.h"

namespace mb::itest {
namespace {

using ::mb::testing::IsOk;
using ::mb::testing::StatusIs;
using ::testing::AllOf;
using ::testing::HasSubstr;
using AD = mb::ews::AutodiscoverOptions;

class EwsAutodiscoverTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (ews::env().empty()) GTEST_SKIP() << "the EWS stand-in is not running";
    domain_ = ews::at("MB_EWS_DOMAIN");
    address_ = unique_user() + "@" + domain_;
    ASSERT_THAT(ews::admin("POST", "/accounts", {{"upn", address_}}), IsOk());
    ews_url_ = ews::at("MB_EWS_URL");
  }
  // What each host does (autodiscover.mjs); replaces the whole setting.
  void hosts(const nlohmann::json& h, const nlohmann::json& redirects = nlohmann::json::object()) {
    ASSERT_THAT(ews::admin("POST", "/autodiscover", {{"hosts", h}, {"redirect_addresses", redirects}}), IsOk());
  }
  AD options(mb::ews::SignInMethod method = mb::ews::SignInMethod::kBasic) const {
    AD o;
    o.email = address_;
    o.method = method;
    o.user = address_;
    o.tls.ca_file = ews::at("MB_EWS_CA_FILE");
    o.timeouts.connect = std::chrono::seconds(10);
    o.timeouts.response = std::chrono::seconds(20);
    const std::string port = ews::at("MB_EWS_PORT");
    for (std::string host : {"autodiscover." + domain_, domain_, "mail." + domain_}) {
      o.connect_to.push_back(host + ":443:127.0.0.1:" + port);
    }
    return o;
  }
  mb::ews::Discovery run(const AD& o, std::string password = ews::at("MB_EWS_PASSWORD")) {
    return mb::ews::autodiscover(o, SignIn::with_password(std::move(password)));
  }
  std::string soap(const std::string& host) const { return "https://" + host + "/autodiscover/autodiscover.svc"; }
  std::string pox(const std::string& host) const { return "https://" + host + "/autodiscover/autodiscover.xml"; }
  static std::string outcomes(const mb::ews::Discovery& d) {
    std::string s;
    for (const auto& st : d.steps) s += st.kind + " " + st.url + ": " + st.outcome + "\n";
    return s;
  }

  std::string domain_;
  std::string address_;
  std::string ews_url_;
};

TEST_F(EwsAutodiscoverTest, SoapOnTheAutodiscoverHostGivesTheEwsUrlAtOnce) {
  hosts({{"autodiscover." + domain_, {{"soap", "answer"}}}});
  for (auto method : {mb::ews::SignInMethod::kBasic, mb::ews::SignInMethod::kNtlm}) {
    auto d = run(options(method));
    ASSERT_THAT(d.status, IsOk()) << outcomes(d);
    EXPECT_EQ(d.ews_url, ews_url_);
    ASSERT_EQ(d.steps.size(), 1u) << outcomes(d);
    EXPECT_EQ(d.steps[0].url, soap("autodiscover." + domain_));
    EXPECT_EQ(d.steps[0].kind, "SOAP");
    EXPECT_TRUE(d.steps[0].ok);
    EXPECT_EQ(d.steps[0].outcome, "ExternalEwsUrl " + ews_url_);
  }
  auto log = ews::admin("GET", "/requests?limit=1");
  ASSERT_THAT(log, IsOk());
  EXPECT_EQ((*log)[0]["auth"], "ntlm");
  EXPECT_EQ((*log)[0]["host"], "autodiscover." + domain_);
}

TEST_F(EwsAutodiscoverTest, TheDomainIsTriedWhenTheAutodiscoverHostFails) {
  hosts({{"autodiscover." + domain_, {{"soap", "error"}}}, {domain_, {{"soap", "answer"}}}});
  auto d = run(options());
  ASSERT_THAT(d.status, IsOk()) << outcomes(d);
  EXPECT_EQ(d.ews_url, ews_url_);
  ASSERT_EQ(d.steps.size(), 2u);
  EXPECT_EQ(d.steps[0].outcome, "HTTP 500");
  EXPECT_FALSE(d.steps[0].ok);
  EXPECT_EQ(d.steps[1].url, soap(domain_));
  EXPECT_TRUE(d.steps[1].ok);
}

TEST_F(EwsAutodiscoverTest, PoxIsTheFallbackWhenNeitherHostHasSoap) {
  hosts({{"autodiscover." + domain_, {{"soap", "missing"}, {"pox", "answer"}}}});
  auto d = run(options());
  ASSERT_THAT(d.status, IsOk()) << outcomes(d);
  EXPECT_EQ(d.ews_url, ews_url_);
  ASSERT_EQ(d.steps.size(), 3u) << outcomes(d);
  EXPECT_EQ(d.steps[0].outcome, "HTTP 404");
  EXPECT_EQ(d.steps[1].url, soap(domain_));
  EXPECT_EQ(d.steps[2].url, pox("autodiscover." + domain_));
  EXPECT_EQ(d.steps[2].kind, "POX");
  EXPECT_EQ(d.steps[2].outcome, "EXPR EwsUrl " + ews_url_);
}

TEST_F(EwsAutodiscoverTest, RedirectsAreFollowed) {
  const std::string mail = "mail." + domain_;
  // SOAP RedirectUrl to another autodiscover server.
  hosts({{"autodiscover." + domain_, {{"soap", {{"mode", "redirect-url"}, {"url", soap(mail)}}}}},
         {mail, {{"soap", "answer"}}}});
  auto d = run(options());
  ASSERT_THAT(d.status, IsOk()) << outcomes(d);
  ASSERT_EQ(d.steps.size(), 2u);
  EXPECT_EQ(d.steps[0].outcome, "redirected to " + soap(mail));
  EXPECT_EQ(d.steps[1].url, soap(mail));
  // An HTTP 302 to a POX URL.
  hosts({{"autodiscover." + domain_, {{"soap", {{"mode", "http-redirect"}, {"url", pox(mail)}}}}},
         {mail, {{"pox", "answer"}}}});
  d = run(options());
  ASSERT_THAT(d.status, IsOk()) << outcomes(d);
  ASSERT_EQ(d.steps.size(), 2u);
  EXPECT_EQ(d.steps[0].outcome, "HTTP 302: redirected to " + pox(mail));
  // A SOAP RedirectAddress: the other address's candidates, from the start.
  const std::string old = unique_user() + "@" + domain_;
  hosts({{"autodiscover." + domain_, {{"soap", "answer"}}}}, {{old, address_}});
  AD o = options();
  o.email = old;
  d = run(o);
  ASSERT_THAT(d.status, IsOk()) << outcomes(d);
  ASSERT_EQ(d.steps.size(), 2u);
  EXPECT_EQ(d.steps[0].outcome, "redirected to the address " + address_);
  EXPECT_EQ(d.steps[1].url, soap("autodiscover." + domain_));
  EXPECT_TRUE(d.steps[1].ok);
}

TEST_F(EwsAutodiscoverTest, ARedirectLoopStopsAtTheHopLimitAndHttpIsNotFollowed) {
  hosts({{"autodiscover." + domain_, {{"soap", {{"mode", "redirect-url"}, {"url", soap("autodiscover." + domain_)}}}}}});
  AD o = options();
  o.max_hops = 3;
  auto d = run(o);
  EXPECT_THAT(d.status, StatusIs(ErrorKind::kConfig, HasSubstr("after 3 redirects")));
  EXPECT_EQ(d.steps.size(), 4u) << outcomes(d);
  hosts({{"autodiscover." + domain_, {{"soap", {{"mode", "http-redirect"}, {"url", "http://" + domain_ + "/x"}}}}}});
  d = run(options());
  ASSERT_FALSE(d.status.ok());
  EXPECT_THAT(d.steps[0].outcome, HasSubstr("not followed (https:// only)"));
}

TEST_F(EwsAutodiscoverTest, WhenEveryCandidateFailsTheErrorListsEachStep) {
  hosts(nlohmann::json::object());  // every host: 404
  auto d = run(options());
  EXPECT_THAT(d.status, StatusIs(ErrorKind::kConfig,
                                 AllOf(HasSubstr("autodiscover found no EWS URL for " + address_),
                                       HasSubstr("1. SOAP " + soap("autodiscover." + domain_) + ": HTTP 404"),
                                       HasSubstr("2. SOAP " + soap(domain_) + ": HTTP 404"),
                                       HasSubstr("3. POX " + pox("autodiscover." + domain_) + ": HTTP 404"),
                                       HasSubstr("4. POX " + pox(domain_) + ": HTTP 404"),
                                       HasSubstr("SCP lookup"))));
  EXPECT_EQ(d.steps.size(), 4u);
  EXPECT_TRUE(d.ews_url.empty());
  // Names nobody maps: nothing reachable.
  AD o = options();
  o.connect_to.clear();
  o.email = "someone@mailbridge-no-such-domain.invalid";
  o.timeouts.connect = std::chrono::seconds(3);
  d = run(o);
  EXPECT_THAT(d.status, StatusIs(ErrorKind::kNetwork, ::testing::_));
  EXPECT_EQ(d.steps.size(), 4u);
}

TEST_F(EwsAutodiscoverTest, AWrongPasswordIsAnAuthenticationFailure) {
  hosts({{"autodiscover." + domain_, {{"soap", "answer"}, {"pox", "answer"}}}});
  auto d = run(options(), "wrong");
  EXPECT_THAT(d.status, StatusIs(ErrorKind::kAuth, ::testing::_));
  ASSERT_GE(d.steps.size(), 1u);
  EXPECT_THAT(d.steps[0].outcome, HasSubstr("HTTP 401"));
}

TEST_F(EwsAutodiscoverTest, TheSenderWithoutAnEndpointDiscoversItAndSends) {
  hosts({{domain_, {{"soap", "answer"}}}});
  AD a = options();
  mb::ews::SenderOptions o;
  o.client.mailbox = address_;
  o.client.user = address_;
  o.client.tls = a.tls;
  o.client.timeouts = a.timeouts;
  o.autodiscover_connect_to = a.connect_to;
  auto s = mb::ews::make_ews_sender(o, SignIn::with_password(ews::at("MB_EWS_PASSWORD")));
  ConnectionReport rep = s->test_connection();
  ASSERT_THAT(rep.status, IsOk());
  ASSERT_EQ(rep.steps.size(), 4u);
  EXPECT_EQ(rep.steps[0].name, "autodiscover");
  EXPECT_FALSE(rep.steps[0].ok);
  EXPECT_TRUE(rep.steps[1].ok);
  EXPECT_THAT(rep.steps[1].detail, HasSubstr("SOAP " + soap(domain_) + ": ExternalEwsUrl"));
  EXPECT_THAT(rep.steps[2].detail, HasSubstr(ews_url_));
  std::string raw = "From: " + address_ + "\r\nTo: alice@example.com\r\nSubject: found\r\n\r\nhi\r\n";
  ASSERT_THAT(s->send({"1", {address_, {"alice@example.com"}}, raw, {}}), IsOk());
  auto sent = ews::admin("GET", "/sent?mailbox=" + address_);
  ASSERT_THAT(sent, IsOk());
  EXPECT_EQ(sent->size(), 1u);
}

}  // namespace
}  // namespace mb::itest
