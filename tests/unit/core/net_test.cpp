// File: tests/unit/core/net_test.cpp — core/net against an in-process TLS server on
// 127.0.0.1: verification outcomes, pins, versions, the insecure warning, refusals and
// timeouts, STARTTLS and a large transfer.
#include "core/net.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <arpa/inet.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <condition_variable>
#include <future>
#include <mutex>
#include <thread>
#include <vector>

#include "core/cancel.h"
#include "core/internal/resolver.h"
#include "core/internal/tls.h"
#include "core/line.h"
#include "tests/status_matchers.h"
#include "tests/unit/core/tls_server.h"

namespace mb {
namespace {

using ::mb::testing::IsOk;
using ::mb::testing::StatusIs;
using ::mb::testing::TestPki;
using ::mb::testing::TestServer;
using ::testing::AllOf;
using ::testing::AnyOf;
using ::testing::HasSubstr;
using ::testing::Not;

Timeouts short_timeouts() {
  Timeouts t;
  t.connect = std::chrono::seconds(5);
  t.response = std::chrono::seconds(5);
  return t;
}

TlsOptions trusting(const std::string& ca_file) {
  TlsOptions o;
  o.ca_file = ca_file;
  return o;
}

class NetTest : public ::testing::Test {
 protected:
  TestServer::Options serving(const mb::testing::KeyCert& kc) {
    TestServer::Options o;
    o.cert = kc.cert.get();
    o.key = kc.key.get();
    return o;
  }
  Result<std::unique_ptr<Stream>> connect(const std::string& host, uint16_t port,
                                          const TlsOptions& tls) {
    return connect_stream(host, port, Security::kTls, tls, short_timeouts());
  }

  TestPki pki_;
};

TEST_F(NetTest, TrustedCaConnectsAndSummarySaysVerified) {
  TestServer server(serving(pki_.localhost));
  auto s = connect("localhost", server.port(), trusting(pki_.ca_file));
  ASSERT_THAT(s, IsOk());
  EXPECT_TRUE((*s)->is_tls());
  EXPECT_THAT((*s)->tls_summary(),
              AllOf(HasSubstr("TLSv1.3"), HasSubstr("CN=localhost"),
                    HasSubstr("issued by CN=mailbridge test CA"), HasSubstr(", verified"),
                    Not(HasSubstr("NOT verified"))));
  LineChannel ch(std::move(*s));
  auto greeting = ch.read_line();
  ASSERT_THAT(greeting, IsOk());
  EXPECT_EQ(*greeting, "* OK ready");
  ASSERT_THAT(ch.write_line("a1 NOOP"), IsOk());
  auto echoed = ch.read_line();
  ASSERT_THAT(echoed, IsOk());
  EXPECT_EQ(*echoed, "a1 NOOP");
}

TEST_F(NetTest, IpLiteralIsVerifiedAgainstIpSubjectAltName) {
  TestServer server(serving(pki_.ip));
  auto s = connect("127.0.0.1", server.port(), trusting(pki_.ca_file));
  ASSERT_THAT(s, IsOk());
  EXPECT_THAT((*s)->tls_summary(), HasSubstr(", verified"));
}

TEST_F(NetTest, SystemStoreDoesNotTrustPrivateCa) {
  TestServer server(serving(pki_.localhost));
  auto s = connect("localhost", server.port(), TlsOptions{});
  EXPECT_THAT(s, StatusIs(ErrorKind::kTls,
                          AllOf(HasSubstr("TLS certificate of localhost:" +
                                          std::to_string(server.port()) + " is not trusted"),
                                HasSubstr("unable to get local issuer certificate"),
                                HasSubstr("set tls.ca_file"))));
}

TEST_F(NetTest, OtherCaFileDoesNotTrustServer) {
  TestServer server(serving(pki_.localhost));
  auto s = connect("localhost", server.port(), trusting(pki_.other_ca_file));
  EXPECT_THAT(s, StatusIs(ErrorKind::kTls, HasSubstr("is not trusted")));
}

TEST_F(NetTest, MissingCaFileIsAConfigError) {
  TestServer server(serving(pki_.localhost));
  auto s = connect("localhost", server.port(), trusting(pki_.dir + "/absent.pem"));
  EXPECT_THAT(s, StatusIs(ErrorKind::kConfig, HasSubstr("cannot load tls.ca_file")));
}

// OpenSSL reads tls.ca_file itself: a FIFO would hang it, /dev/zero fill memory.
TEST_F(NetTest, CaFileThatIsNotARegularFileIsAConfigError) {
  TestServer server(serving(pki_.localhost));
  std::string fifo = pki_.dir + "/ca.fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  auto s = connect("localhost", server.port(), trusting(fifo));
  ::unlink(fifo.c_str());
  EXPECT_THAT(s, StatusIs(ErrorKind::kConfig, AllOf(HasSubstr("tls.ca_file"),
                                                    HasSubstr("a FIFO, not a regular file"))));
  EXPECT_THAT(connect("localhost", server.port(), trusting("/dev/zero")),
              StatusIs(ErrorKind::kConfig, HasSubstr("not a regular file")));
}

TEST_F(NetTest, HostnameMismatchNamesWhatTheCertificateIsFor) {
  TestServer server(serving(pki_.localhost));
  auto s = connect("127.0.0.1", server.port(), trusting(pki_.ca_file));
  EXPECT_THAT(s, StatusIs(ErrorKind::kTls, HasSubstr("certificate does not match host "
                                                     "127.0.0.1 (it is for: localhost)")));
}

TEST_F(NetTest, PinMatchesInBase64AndHex) {
  TestServer server(serving(pki_.localhost));
  std::string b64 = internal::spki_pin(pki_.localhost.cert.get());
  auto digest = internal::parse_pin(b64);
  ASSERT_THAT(digest, IsOk());
  std::string hex;
  const char* digits = "0123456789abcdef";
  for (unsigned char c : *digest) hex += {digits[c >> 4], digits[c & 15]};

  TlsOptions by_b64 = trusting(pki_.ca_file);
  by_b64.pins = {internal::spki_pin(pki_.ip.cert.get()), b64};
  auto s1 = connect("localhost", server.port(), by_b64);
  ASSERT_THAT(s1, IsOk());
  EXPECT_THAT((*s1)->tls_summary(), HasSubstr("pinned"));

  TlsOptions by_hex = trusting(pki_.ca_file);
  by_hex.pins = {hex};
  EXPECT_THAT(connect("localhost", server.port(), by_hex), IsOk());
}

TEST_F(NetTest, PinMismatchFailsEvenWhenTheChainIsTrusted) {
  TestServer server(serving(pki_.localhost));
  TlsOptions o = trusting(pki_.ca_file);
  o.pins = {internal::spki_pin(pki_.ip.cert.get())};
  auto s = connect("localhost", server.port(), o);
  EXPECT_THAT(s, StatusIs(ErrorKind::kTls,
                          AllOf(HasSubstr("public key pin mismatch"),
                                HasSubstr(internal::spki_pin(pki_.localhost.cert.get())))));
}

TEST_F(NetTest, MalformedPinIsAConfigError) {
  TestServer server(serving(pki_.localhost));
  TlsOptions o = trusting(pki_.ca_file);
  o.pins = {"sha256/not-base64"};
  EXPECT_THAT(connect("localhost", server.port(), o),
              StatusIs(ErrorKind::kConfig, HasSubstr("invalid tls pin")));
  EXPECT_THAT(internal::parse_pin(std::string(63, 'a')),
              StatusIs(ErrorKind::kConfig, HasSubstr("64 hex")));
}

TEST_F(NetTest, MinVersion13AgainstServerCappedAt12) {
  auto options = serving(pki_.localhost);
  options.max_version = TLS1_2_VERSION;
  TestServer server(options);
  TlsOptions o = trusting(pki_.ca_file);
  o.min_version = TlsVersion::k1_3;
  EXPECT_THAT(connect("localhost", server.port(), o),
              StatusIs(ErrorKind::kTls, HasSubstr("does not support TLS 1.3 (min_version = 1.3)")));

  auto s = connect("localhost", server.port(), trusting(pki_.ca_file));  // default 1.2
  ASSERT_THAT(s, IsOk());
  EXPECT_THAT((*s)->tls_summary(), HasSubstr("TLSv1.2"));
}

std::vector<std::string> g_warnings;
void record_warning(const std::string& message) { g_warnings.push_back(message); }

TEST_F(NetTest, VerifyOffConnectsAndWarnsAtEveryConnection) {
  TestServer server(serving(pki_.localhost));  // a certificate nobody here trusts
  g_warnings.clear();
  set_insecure_tls_warning_sink(&record_warning);
  TlsOptions off;
  off.verify = false;
  auto s1 = connect("127.0.0.1", server.port(), off);
  auto s2 = connect("127.0.0.1", server.port(), off);
  auto s3 = connect("localhost", server.port(), trusting(pki_.ca_file));
  set_insecure_tls_warning_sink(nullptr);
  ASSERT_THAT(s1, IsOk());
  ASSERT_THAT(s2, IsOk());
  ASSERT_THAT(s3, IsOk());
  EXPECT_THAT((*s1)->tls_summary(), HasSubstr("NOT verified"));
  ASSERT_EQ(g_warnings.size(), 2u);
  EXPECT_THAT(g_warnings[0], AllOf(HasSubstr("verification is OFF"),
                                   HasSubstr("127.0.0.1:" + std::to_string(server.port()))));
}

TestServer::Options silent() {
  TestServer::Options o;
  o.mode = TestServer::Mode::kSilent;
  return o;
}

// A port that is bound but not listening refuses connections, and stays ours meanwhile.
TEST(NetPlainTest, RefusedPortIsANetworkError) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len), 0);
  uint16_t port = ntohs(a.sin_port);
  auto s = connect_tcp("127.0.0.1", port, short_timeouts());
  ::close(fd);
  EXPECT_THAT(s, StatusIs(ErrorKind::kNetwork,
                          HasSubstr("connection refused by 127.0.0.1:" + std::to_string(port))));
  EXPECT_EQ(s.status().scope(), ErrorScope::kConnection);
}

TEST(NetPlainTest, SilentServerTimesOutOnRead) {
  TestServer server(silent());
  Timeouts t;
  t.response = std::chrono::seconds(1);
  auto s = connect_tcp("127.0.0.1", server.port(), t);
  ASSERT_THAT(s, IsOk());
  char buf[64];
  EXPECT_THAT((*s)->read_some(buf, sizeof buf),
              StatusIs(ErrorKind::kNetwork, HasSubstr("timed out after 1 s")));
}

// The service's stop (core/cancel.h) wakes a read on a silent server at once, not after the
// 60 s time-out, as kCancelled; a later read on that thread's stream stays cancelled.
TEST(NetPlainTest, CancelOfTheThreadWakesABlockedRead) {
  TestServer server(silent());
  Timeouts t;
  t.response = std::chrono::seconds(60);
  auto s = connect_tcp("127.0.0.1", server.port(), t);
  ASSERT_THAT(s, IsOk());
  Cancel stop;
  auto pending = std::async(std::launch::async, [&] {
    CancelScope scope(&stop);
    char buf[64];
    return (*s)->read_some(buf, sizeof buf);
  });
  stop.fire();
  ASSERT_EQ(pending.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  EXPECT_THAT(pending.get(), StatusIs(ErrorKind::kCancelled, HasSubstr("stopped by the service")));
}

TEST(NetPlainTest, CancelOfTheThreadWakesATlsHandshakeAndRefusesNewConnections) {
  TestServer server(silent());
  Timeouts t;
  t.connect = std::chrono::seconds(60);
  Cancel stop;
  auto pending = std::async(std::launch::async, [&] {
    CancelScope scope(&stop);
    return connect_stream("127.0.0.1", server.port(), Security::kTls, TlsOptions{}, t);
  });
  stop.fire();
  ASSERT_EQ(pending.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  EXPECT_THAT(pending.get(), StatusIs(ErrorKind::kCancelled, HasSubstr("stopped by the service")));
  CancelScope scope(&stop);  // already fired: nothing is even connected
  EXPECT_THAT(connect_tcp("127.0.0.1", server.port(), t),
              StatusIs(ErrorKind::kCancelled, HasSubstr("stopped by the service")));
}

TEST(NetPlainTest, SilentServerTimesOutInTlsHandshake) {
  TestServer server(silent());
  Timeouts t;
  t.connect = std::chrono::seconds(1);
  auto s = connect_stream("127.0.0.1", server.port(), Security::kTls, TlsOptions{}, t);
  EXPECT_THAT(s, StatusIs(ErrorKind::kNetwork,
                          HasSubstr("timed out after 1 s in the TLS handshake")));
}

TEST(NetPlainTest, ServerClosingIsConnectionClosed) {
  auto server = std::make_unique<TestServer>(silent());
  auto s = connect_tcp("127.0.0.1", server->port(), short_timeouts());
  ASSERT_THAT(s, IsOk());
  server.reset();  // closes the accepted connection (or the backlog) on the server side
  char buf[64];
  EXPECT_THAT((*s)->read_some(buf, sizeof buf),
              StatusIs(ErrorKind::kNetwork, AnyOf(HasSubstr("connection closed by server"),
                                                  HasSubstr("connection reset by"))));
}

TEST(NetPlainTest, ResolveLoopbackNames) {
  auto r = resolve_host("localhost", 993);
  ASSERT_THAT(r, IsOk());
  EXPECT_THAT(*r, HasSubstr("127.0.0.1"));
  auto ip = resolve_host("127.0.0.1", 993);
  ASSERT_THAT(ip, IsOk());
  EXPECT_EQ(*ip, "127.0.0.1");
}

// A resolver that hangs until released, then answers with 127.0.0.1: a DNS server that
// does not answer, without waiting on a real one.
class HungResolver {
 public:
  HungResolver() {
    // Helpers of earlier lookups finish just after their callers return: start from none.
    EXPECT_TRUE(internal::wait_for_no_pending_lookups(std::chrono::seconds(30)));
    internal::set_resolver([this](const char*, const char* service, const addrinfo* hints,
                                  addrinfo** out) {
      std::unique_lock lock(mu_);
      ++entered_;
      cv_.notify_all();
      cv_.wait(lock, [&] { return released_; });
      return ::getaddrinfo("127.0.0.1", service, hints, out);
    });
  }
  ~HungResolver() {
    release();
    EXPECT_TRUE(internal::wait_for_no_pending_lookups(std::chrono::seconds(30)));
    internal::set_resolver(nullptr);
  }
  void release() {
    std::lock_guard lock(mu_);
    released_ = true;
    cv_.notify_all();
  }
  // Waits until n lookups are inside the resolver.
  void wait_entered(int n) {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return entered_ >= n; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int entered_ = 0;
  bool released_ = false;
};

// Issue 13 item 9: a name lookup that never answers ends at the connect time-out with a
// network error naming the lookup and the time-out, instead of blocking the mailbox.
TEST(NetResolveTest, HungLookupEndsAtTheConnectTimeout) {
  HungResolver hung;
  Timeouts t;
  t.connect = std::chrono::seconds(1);
  auto s = connect_tcp("mail.example.test", 993, t);
  EXPECT_THAT(s.status(), StatusIs(ErrorKind::kNetwork,
                                   AllOf(HasSubstr("cannot resolve host mail.example.test"),
                                         HasSubstr("did not answer within 1 s"),
                                         HasSubstr("connect time-out"))));
  EXPECT_EQ(s.status().scope(), ErrorScope::kConnection);
  EXPECT_EQ(internal::pending_lookups(), 1u);  // the helper waits for the resolver, bounded
}

// A lookup that answers in time is used; the fake's answer reaches the caller.
TEST(NetResolveTest, AnsweredLookupIsUsed) {
  HungResolver fake;
  fake.release();
  auto r = resolve_host("mail.example.test", 993, std::chrono::seconds(30));
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ(*r, "127.0.0.1");
}

// Hung lookups hold at most kMaxPendingLookups threads; the next lookup fails at once,
// saying why, and lookups work again once the resolver answers.
TEST(NetResolveTest, HungLookupsAreCapped) {
  auto hung = std::make_unique<HungResolver>();
  constexpr int kCap = static_cast<int>(internal::kMaxPendingLookups);
  std::vector<std::thread> callers;
  std::vector<Status> results(kCap);
  for (int i = 0; i < kCap; ++i) {
    callers.emplace_back([&results, i] {
      results[static_cast<size_t>(i)] =
          resolve_host("hung" + std::to_string(i) + ".example.test", 993,
                       std::chrono::seconds(300)).status();
    });
  }
  hung->wait_entered(kCap);
  EXPECT_EQ(internal::pending_lookups(), internal::kMaxPendingLookups);
  // Over the cap a lookup waits for a free helper until its time-out, then says why.
  auto over = resolve_host("one-more.example.test", 993, std::chrono::seconds(1));
  EXPECT_THAT(over.status(),
              StatusIs(ErrorKind::kNetwork,
                       AllOf(HasSubstr("cannot resolve host one-more.example.test"),
                             HasSubstr(std::to_string(kCap) + " earlier name lookups"),
                             HasSubstr("within 1 s"))));
  // One that may wait longer gets the first helper freed (a burst is queued, not refused).
  Status queued;
  std::thread waiting([&queued] {
    queued = resolve_host("queued.example.test", 993, std::chrono::seconds(300)).status();
  });
  hung->release();
  waiting.join();
  EXPECT_THAT(queued, IsOk());
  for (auto& c : callers) c.join();
  for (const auto& r : results) EXPECT_THAT(r, IsOk());
  hung.reset();
  EXPECT_EQ(internal::pending_lookups(), 0u);
  auto again = resolve_host("127.0.0.1", 993);
  ASSERT_THAT(again, IsOk());
  EXPECT_EQ(*again, "127.0.0.1");
}

TEST_F(NetTest, ImplicitTlsAgainstAPlaintextPortSaysSo) {
  auto options = serving(pki_.localhost);
  options.mode = TestServer::Mode::kStartTls;  // greets in plaintext at once
  TestServer server(options);
  EXPECT_THAT(connect("localhost", server.port(), trusting(pki_.ca_file)),
              StatusIs(ErrorKind::kTls, HasSubstr("did not answer with TLS")));
}

TEST_F(NetTest, ServerClosingTlsIsConnectionClosed) {
  auto server = std::make_unique<TestServer>(serving(pki_.localhost));
  auto s = connect("localhost", server->port(), trusting(pki_.ca_file));
  ASSERT_THAT(s, IsOk());
  LineChannel ch(std::move(*s));
  ASSERT_THAT(ch.read_line(), IsOk());
  server.reset();  // sends close_notify and closes
  EXPECT_THAT(ch.read_line(),
              StatusIs(ErrorKind::kNetwork, HasSubstr("connection closed by server")));
}

TEST_F(NetTest, StartTlsUpgradesInPlace) {
  auto options = serving(pki_.localhost);
  options.mode = TestServer::Mode::kStartTls;
  TestServer server(options);
  auto s = connect_tcp("localhost", server.port(), short_timeouts());
  ASSERT_THAT(s, IsOk());
  LineChannel ch(std::move(*s));
  EXPECT_EQ(ch.read_line().value(), "* OK plain");
  ASSERT_THAT(ch.write_line("a1 STARTTLS"), IsOk());
  EXPECT_EQ(ch.read_line().value(), "a1 OK begin TLS");
  ASSERT_THAT(ch.start_tls("localhost", trusting(pki_.ca_file)), IsOk());
  EXPECT_TRUE(ch.stream().is_tls());
  auto greeting = ch.read_line();
  ASSERT_THAT(greeting, IsOk());
  EXPECT_EQ(*greeting, "* OK ready");
}

TEST_F(NetTest, LargeLiteralArrivesIntact) {
  auto options = serving(pki_.localhost);
  std::string payload(3 * 1024 * 1024 + 17, '\0');
  uint32_t x = 12345;
  for (auto& c : payload) c = static_cast<char>((x = x * 1103515245u + 12345u) >> 24);
  options.payload = payload;
  TestServer server(options);
  auto s = connect("localhost", server.port(), trusting(pki_.ca_file));
  ASSERT_THAT(s, IsOk());
  LineChannel ch(std::move(*s));
  ASSERT_THAT(ch.read_line(), IsOk());
  std::string got = "prefix";
  ASSERT_THAT(ch.read_exact(payload.size(), got), IsOk());
  EXPECT_EQ(got.size(), payload.size() + 6);
  EXPECT_TRUE(got.compare(6, std::string::npos, payload) == 0);
}

// The header of test-connection and send-test: no port twice (a Graph endpoint is a URL
// with its own port; a host may carry one), IPv6 literals in brackets.
TEST(ServerAddressTest, ShowsEachPortOnceAndBracketsIpv6) {
  EXPECT_EQ(server_address("imap.example.com", 993), "imap.example.com:993");
  EXPECT_EQ(server_address("::1", 993), "[::1]:993");
  EXPECT_EQ(server_address("fe80::1", 0), "[fe80::1]");
  EXPECT_EQ(server_address("[::1]", 993), "[::1]:993");
  EXPECT_EQ(server_address("[::1]:1993", 993), "[::1]:1993");
  EXPECT_EQ(server_address("localhost:40845", 443), "localhost:40845");
  EXPECT_EQ(server_address("", 443, "https://localhost:40845"), "https://localhost:40845");
  EXPECT_EQ(server_address("https://localhost:40845", 443), "https://localhost:40845");
  EXPECT_EQ(server_address("", 443), "default endpoint");
}

}  // namespace
}  // namespace mb
