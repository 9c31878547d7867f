// File: tests/unit/core/http_curl_test.cpp — the libcurl engine (core/http_curl.h) held to
// every engine test of http_test.cpp, plus what only it does: NTLM's first message.
#define MB_HTTP_TEST_CURL 1
#include "tests/unit/core/http_test.cpp"  // NOLINT(bugprone-suspicious-include)

namespace mb {
namespace {

TEST_F(HttpTest, CurlIpv6LiteralIsUsable) {
  // Unlike cpprestsdk 2.10, libcurl connects to a bracketed literal: nothing listens on this
  // port, so the answer is a refusal, not a configuration error.
  EXPECT_THAT(MB_HTTP_ENGINE(trusting())->send(get_request("https://[::1]:1/token")),
              StatusIs(ErrorKind::kNetwork, HasSubstr("[::1]:1")));
}

TEST_F(HttpTest, CurlNtlmSendsTheNegotiateMessageWithAnEmptyBodyFirst) {
  ASSERT_TRUE(curl_supports_ntlm());
  HttpServer server(serving(pki_.localhost));  // answers 200 to anything: no challenge
  NtlmCredentials ntlm;
  ntlm.user = "CORP\\helpdesk";
  ntlm.password = "not-in-any-log";
  auto http = make_curl_http_client(trusting(), ntlm);
  auto r = http->send(request("POST", url("localhost", server.port(), "/EWS/Exchange.asmx"),
                              {{"Content-Type", "text/xml; charset=utf-8"}}, "<soap/>"));
  ASSERT_THAT(r, IsOk());
  auto seen = server.seen();
  ASSERT_GE(seen.size(), 1u);
  // NTLMSSP\0, type 1, base64: the negotiate message; the body waits for the authenticate one.
  EXPECT_THAT(seen[0].headers["authorization"], HasSubstr("NTLM TlRMTVNTUAABAAAA"));
  EXPECT_EQ(seen[0].headers["content-length"], "0");
  EXPECT_EQ(seen[0].body, "");
  // A server that accepts without a challenge gets the request again, now with its body.
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[1].body, "<soap/>");
  EXPECT_EQ(seen[1].headers.count("authorization"), 0u);
}

}  // namespace
}  // namespace mb
