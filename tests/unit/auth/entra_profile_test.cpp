// File: tests/unit/auth/entra_profile_test.cpp — the Entra ID profile (clouds, v2.0
// endpoints, default scopes) and decoding an access token's claims.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "auth/base64.h"
#include "auth/oauth.h"
#include "tests/status_matchers.h"

namespace mb {
namespace {

using ::mb::testing::IsOk;
using ::mb::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

AppConfig app(const std::string& authority, const std::string& flow = "app-only") {
  AppConfig a;
  a.name = "contoso";
  a.authority = authority;
  a.tenant = "11112222-3333-4444-5555-666677778888";
  a.client_id = "cid";
  a.flow = flow;
  return a;
}

TEST(EntraProfile, CloudForEachAuthorityHost) {
  struct Case {
    const char* authority;
    const char* cloud;
  };
  for (const Case& c : {Case{"https://login.microsoftonline.com", "global"},
                        Case{"https://LOGIN.microsoftonline.com/", "global"},
                        Case{"https://login.microsoftonline.com/contoso.onmicrosoft.com", "global"},
                        Case{"https://login.windows.net", "global"},
                        Case{"https://login.microsoftonline.us", "usgov"},
                        Case{"https://login.microsoftonline.us:443/tenant", "usgov"},
                        Case{"https://login.chinacloudapi.cn", "china"},
                        Case{"https://login.partner.microsoftonline.cn", "china"}}) {
    const CloudProfile* p = cloud_for_authority(c.authority);
    ASSERT_NE(p, nullptr) << c.authority;
    EXPECT_EQ(p->name, c.cloud) << c.authority;
  }
  EXPECT_EQ(cloud_for_authority("https://localhost:8443"), nullptr);
  EXPECT_EQ(cloud_for_authority("https://login.microsoftonline.com.evil.test"), nullptr);
  EXPECT_EQ(cloud_for_authority(""), nullptr);
}

TEST(EntraProfile, ResourcesPerCloud) {
  const CloudProfile* g = cloud_for_authority("https://login.microsoftonline.com");
  EXPECT_EQ(g->graph, "https://graph.microsoft.com");
  EXPECT_EQ(g->exchange, "https://outlook.office365.com");
  const CloudProfile* us = cloud_for_authority("https://login.microsoftonline.us");
  EXPECT_EQ(us->graph, "https://graph.microsoft.us");
  EXPECT_EQ(us->exchange, "https://outlook.office365.us");
  const CloudProfile* cn = cloud_for_authority("https://login.chinacloudapi.cn");
  EXPECT_EQ(cn->graph, "https://microsoftgraph.chinacloudapi.cn");
  EXPECT_EQ(cn->exchange, "https://partner.outlook.cn");
}

TEST(EntraProfile, V2EndpointsFromAuthorityAndTenant) {
  auto e = resolve_endpoints(app("https://login.microsoftonline.us/"));
  ASSERT_THAT(e.status(), IsOk());
  EXPECT_EQ(e->token,
            "https://login.microsoftonline.us/11112222-3333-4444-5555-666677778888/oauth2/v2.0/token");
  EXPECT_EQ(e->device_authorization,
            "https://login.microsoftonline.us/11112222-3333-4444-5555-666677778888/oauth2/v2.0/devicecode");
  // An Entra stand-in on loopback is just another authority.
  e = resolve_endpoints(app("https://localhost:8443"));
  ASSERT_THAT(e.status(), IsOk());
  EXPECT_EQ(e->token, "https://localhost:8443/11112222-3333-4444-5555-666677778888/oauth2/v2.0/token");
}

TEST(EntraProfile, TokenEndpointOverridesForAnyServer) {
  AppConfig a = app("https://login.microsoftonline.com");
  a.tenant.clear();
  a.token_endpoint = "https://idp.example.test/oauth/token";
  auto e = resolve_endpoints(a);
  ASSERT_THAT(e.status(), IsOk());
  EXPECT_EQ(e->token, "https://idp.example.test/oauth/token");
  EXPECT_EQ(e->device_authorization, "");
  a.device_endpoint = "https://idp.example.test/device/auth";
  EXPECT_EQ(resolve_endpoints(a)->device_authorization, "https://idp.example.test/device/auth");
}

TEST(EntraProfile, EndpointsNeedATenantAndAnHttpsAuthority) {
  AppConfig a = app("https://login.microsoftonline.com");
  a.tenant.clear();
  a.line_no = 12;
  EXPECT_THAT(resolve_endpoints(a).status(),
              StatusIs(ErrorKind::kConfig, HasSubstr("app \"contoso\" (line 12): set tenant")));
  EXPECT_THAT(resolve_endpoints(app("http://login.microsoftonline.com")).status(),
              StatusIs(ErrorKind::kConfig, HasSubstr("https://")));
  AppConfig b = app("https://login.microsoftonline.com");
  b.token_endpoint = "ftp://x/token";
  EXPECT_THAT(resolve_endpoints(b).status(), StatusIs(ErrorKind::kConfig, HasSubstr("token_endpoint")));
}

TEST(EntraProfile, AppOnlyScopeIsTheResourcesDefault) {
  EXPECT_EQ(default_scope(app("https://login.microsoftonline.com"), Resource::kExchange),
            "https://outlook.office365.com/.default");
  EXPECT_EQ(default_scope(app("https://login.microsoftonline.com"), Resource::kGraph, "graph"),
            "https://graph.microsoft.com/.default");
  EXPECT_EQ(default_scope(app("https://login.microsoftonline.us"), Resource::kExchange, "imap"),
            "https://outlook.office365.us/.default");
  EXPECT_EQ(default_scope(app("https://login.chinacloudapi.cn"), Resource::kGraph),
            "https://microsoftgraph.chinacloudapi.cn/.default");
}

TEST(EntraProfile, DelegatedScopesPerProtocolWithOfflineAccess) {
  AppConfig a = app("https://login.microsoftonline.com", "delegated");
  EXPECT_EQ(default_scope(a, Resource::kExchange, "imap"),
            "https://outlook.office365.com/IMAP.AccessAsUser.All offline_access");
  EXPECT_EQ(default_scope(a, Resource::kExchange, "pop3"),
            "https://outlook.office365.com/POP.AccessAsUser.All offline_access");
  EXPECT_EQ(default_scope(a, Resource::kExchange, "smtp"),
            "https://outlook.office365.com/SMTP.Send offline_access");
  EXPECT_EQ(default_scope(a, Resource::kExchange, "ews"),
            "https://outlook.office365.com/EWS.AccessAsUser.All offline_access");
  EXPECT_EQ(default_scope(a, Resource::kGraph, "graph"),
            "https://graph.microsoft.com/Mail.ReadWrite https://graph.microsoft.com/Mail.Send "
            "offline_access");
  EXPECT_EQ(default_scope(a, Resource::kExchange),
            "https://outlook.office365.com/.default offline_access");
  AppConfig us = app("https://login.microsoftonline.us", "delegated");
  EXPECT_EQ(default_scope(us, Resource::kExchange, "imap"),
            "https://outlook.office365.us/IMAP.AccessAsUser.All offline_access");
}

TEST(EntraProfile, ConfiguredScopesWin) {
  AppConfig a = app("https://localhost:9", "delegated");
  a.scopes = {"mail.access", "offline_access"};
  EXPECT_EQ(default_scope(a, Resource::kExchange, "imap"), "mail.access offline_access");
  EXPECT_EQ(default_scope(a, Resource::kGraph, "graph"), "mail.access offline_access");
}

TEST(EntraProfile, EmptyFlowFollowsTheCredential) {
  AppConfig a = app("https://login.microsoftonline.com", "");
  EXPECT_THAT(default_scope(a, Resource::kExchange, "imap"), HasSubstr("IMAP.AccessAsUser.All"));
  a.client_secret = SecretRef{"env:X"};
  EXPECT_EQ(default_scope(a, Resource::kExchange, "imap"), "https://outlook.office365.com/.default");
  a.client_secret = {};
  a.certificate = SecretRef{"file:/x.pem"};
  EXPECT_EQ(default_scope(a, Resource::kExchange, "imap"), "https://outlook.office365.com/.default");
}

// ---- decode_token_claims ------------------------------------------------------------------

std::string b64url(const std::string& s) {
  std::string out = base64_encode(s);
  while (!out.empty() && out.back() == '=') out.pop_back();
  for (char& c : out) c = c == '+' ? '-' : c == '/' ? '_' : c;
  return out;
}

std::string jwt(const nlohmann::json& claims) {
  return b64url(R"({"typ":"JWT","alg":"RS256","kid":"k1"})") + "." + b64url(claims.dump()) + ".c2ln";
}

TEST(TokenClaims, AppOnlyExchangeToken) {
  auto c = decode_token_claims(jwt({{"aud", "https://outlook.office365.com"},
                                    {"iss", "https://sts.windows.net/tid-1/"},
                                    {"tid", "tid-1"},
                                    {"appid", "app-1"},
                                    {"roles", {"IMAP.AccessAsApp", "Mail.ReadWrite"}},
                                    {"exp", 1800000000}}));
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->aud, "https://outlook.office365.com");
  EXPECT_EQ(c->iss, "https://sts.windows.net/tid-1/");
  EXPECT_EQ(c->tid, "tid-1");
  EXPECT_EQ(c->appid, "app-1");
  EXPECT_THAT(c->roles, ElementsAre("IMAP.AccessAsApp", "Mail.ReadWrite"));
  EXPECT_TRUE(c->scp.empty());
  ASSERT_TRUE(c->exp.has_value());
  EXPECT_EQ(c->exp->time_since_epoch(), std::chrono::seconds(1800000000));
}

TEST(TokenClaims, DelegatedV2TokenWithAzpAndAudienceList) {
  auto c = decode_token_claims(jwt({{"aud", {"https://graph.microsoft.com", "other"}},
                                    {"azp", "app-2"},
                                    {"preferred_username", "u@contoso.com"},
                                    {"scp", "Mail.ReadWrite  Mail.Send"}}));
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->aud, "https://graph.microsoft.com");
  EXPECT_EQ(c->appid, "app-2");
  EXPECT_EQ(c->upn, "u@contoso.com");
  EXPECT_THAT(c->scp, ElementsAre("Mail.ReadWrite", "Mail.Send"));
  EXPECT_FALSE(c->exp.has_value());
}

TEST(TokenClaims, OpaqueOrBrokenTokensAreNotDecoded) {
  EXPECT_FALSE(decode_token_claims("opaque-token-0123").has_value());
  EXPECT_FALSE(decode_token_claims("a.b").has_value());
  EXPECT_FALSE(decode_token_claims("a.b.c.d").has_value());
  EXPECT_FALSE(decode_token_claims(b64url("{}") + ".!!!." + "x").has_value());
  EXPECT_FALSE(decode_token_claims(b64url("{}") + "." + b64url("[1,2]") + ".x").has_value());
}

}  // namespace
}  // namespace mb
