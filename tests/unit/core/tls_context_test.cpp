// File: tests/unit/core/tls_context_test.cpp — core/internal/tls's shared client contexts:
// sessions under one policy share one SSL_CTX (the CA store is loaded once), different
// policies (CA file, min version, verification, a rewritten CA file) get their own, and what
// is per connection (the host name checked, the pins) stays per connection on a shared one.
#include "core/internal/tls.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/net.h"
#include "tests/status_matchers.h"
#include "tests/unit/core/tls_server.h"

namespace mb::internal {
namespace {

using ::mb::testing::IsOk;
using ::mb::testing::StatusIs;
using ::mb::testing::TestPki;
using ::mb::testing::TestServer;
using ::testing::HasSubstr;

TlsOptions trusting(const std::string& ca_file) {
  TlsOptions o;
  o.ca_file = ca_file;
  return o;
}

class TlsContextTest : public ::testing::Test {
 protected:
  TlsContextTest() {
    if (::socketpair(AF_UNIX, SOCK_STREAM, 0, fds_) != 0) throw std::runtime_error("socketpair");
  }
  ~TlsContextTest() override {
    ::close(fds_[0]);
    ::close(fds_[1]);
  }
  // A session that is never driven: enough to see which context it was built on.
  std::unique_ptr<TlsSession> session(const std::string& host, const TlsOptions& o) {
    auto s = TlsSession::create(fds_[0], host, host + ":993", o);
    if (!s.ok()) throw std::runtime_error(s.status().message());
    return std::move(*s);
  }
  Result<std::unique_ptr<Stream>> connect(uint16_t port, const TlsOptions& tls) {
    Timeouts t;
    t.connect = std::chrono::seconds(5);
    t.response = std::chrono::seconds(5);
    return connect_stream("localhost", port, Security::kTls, tls, t);
  }
  TestServer::Options serving(const mb::testing::KeyCert& kc) {
    TestServer::Options o;
    o.cert = kc.cert.get();
    o.key = kc.key.get();
    return o;
  }

  TestPki pki_;
  int fds_[2] = {-1, -1};
};

TEST_F(TlsContextTest, SessionsUnderOnePolicyShareOneContext) {
  size_t before = tls_contexts_created();
  auto a = session("imap.example", trusting(pki_.ca_file));
  auto b = session("pop.example", trusting(pki_.ca_file));
  auto c = session("127.0.0.1", trusting(pki_.ca_file));
  EXPECT_EQ(a->context(), b->context());
  EXPECT_EQ(a->context(), c->context());
  EXPECT_EQ(tls_contexts_created(), before + 1);
}

TEST_F(TlsContextTest, DifferentPoliciesGetTheirOwnContexts) {
  size_t before = tls_contexts_created();
  TlsOptions tls13 = trusting(pki_.ca_file);
  tls13.min_version = TlsVersion::k1_3;
  TlsOptions off;
  off.verify = false;
  auto base = session("localhost", trusting(pki_.ca_file));
  auto other_ca = session("localhost", trusting(pki_.other_ca_file));
  auto min13 = session("localhost", tls13);
  auto unverified = session("localhost", off);
  auto system = session("localhost", TlsOptions{});
  std::vector<const SSL_CTX*> all = {base->context(), other_ca->context(), min13->context(),
                                     unverified->context(), system->context()};
  for (size_t i = 0; i < all.size(); ++i) {
    for (size_t j = i + 1; j < all.size(); ++j) EXPECT_NE(all[i], all[j]) << i << " " << j;
  }
  EXPECT_EQ(tls_contexts_created(), before + all.size());
  EXPECT_EQ(SSL_CTX_get_min_proto_version(const_cast<SSL_CTX*>(min13->context())),
            TLS1_3_VERSION);
  EXPECT_EQ(SSL_CTX_get_min_proto_version(const_cast<SSL_CTX*>(base->context())),
            TLS1_2_VERSION);
  EXPECT_EQ(SSL_CTX_get_verify_mode(base->context()), SSL_VERIFY_PEER);
  EXPECT_EQ(SSL_CTX_get_verify_mode(unverified->context()), SSL_VERIFY_NONE);
}

TEST_F(TlsContextTest, ContextIsFreedWithItsLastSessionAndBuiltAgainAfter) {
  size_t before = tls_contexts_created();
  { auto a = session("localhost", trusting(pki_.ca_file)); }
  auto b = session("localhost", trusting(pki_.ca_file));
  EXPECT_EQ(tls_contexts_created(), before + 2);
}

// Pins are not part of the context: sessions with different pins share one, and each still
// refuses a server whose key is not among its own pins.
TEST_F(TlsContextTest, PinsStayPerConnectionOnASharedContext) {
  TestServer server(serving(pki_.localhost));
  TlsOptions right = trusting(pki_.ca_file);
  right.pins = {spki_pin(pki_.localhost.cert.get())};
  TlsOptions wrong = trusting(pki_.ca_file);
  wrong.pins = {spki_pin(pki_.ip.cert.get())};
  auto holder = session("localhost", trusting(pki_.ca_file));  // keeps the context alive
  size_t before = tls_contexts_created();
  EXPECT_EQ(session("localhost", right)->context(), holder->context());
  auto ok = connect(server.port(), right);
  ASSERT_THAT(ok, IsOk());
  EXPECT_THAT((*ok)->tls_summary(), HasSubstr("public key pinned"));
  EXPECT_THAT(connect(server.port(), wrong),
              StatusIs(ErrorKind::kTls, HasSubstr("public key pin mismatch")));
  EXPECT_THAT(connect(server.port(), trusting(pki_.ca_file)), IsOk());
  EXPECT_EQ(tls_contexts_created(), before);
}

// The host name is checked per connection: a shared context that verified "localhost" for
// one connection does not let another connection accept the same certificate for 127.0.0.1.
TEST_F(TlsContextTest, HostNameStaysPerConnectionOnASharedContext) {
  TestServer server(serving(pki_.localhost));
  auto holder = session("localhost", trusting(pki_.ca_file));
  size_t before = tls_contexts_created();
  EXPECT_THAT(connect(server.port(), trusting(pki_.ca_file)), IsOk());
  Timeouts t;
  t.connect = t.response = std::chrono::seconds(5);
  EXPECT_THAT(connect_stream("127.0.0.1", server.port(), Security::kTls, trusting(pki_.ca_file), t),
              StatusIs(ErrorKind::kTls, HasSubstr("does not match host 127.0.0.1")));
  EXPECT_EQ(tls_contexts_created(), before);
}

// A CA file rewritten in place is read again: a context never keeps trusting a CA that the
// file no longer holds.
TEST_F(TlsContextTest, RewrittenCaFileGetsANewContext) {
  TestServer server(serving(pki_.localhost));
  auto holder = session("localhost", trusting(pki_.ca_file));
  ASSERT_THAT(connect(server.port(), trusting(pki_.ca_file)), IsOk());
  pki_.write_pem("ca.pem", pki_.other_ca.cert.get());
  struct timespec later[2] = {{0, UTIME_OMIT}, {0, 0}};
  struct stat st {};
  ASSERT_EQ(::stat(pki_.ca_file.c_str(), &st), 0);
  later[1].tv_sec = st.st_mtim.tv_sec + 1;  // a distinct time even on a coarse clock
  ASSERT_EQ(::utimensat(AT_FDCWD, pki_.ca_file.c_str(), later, 0), 0);
  size_t before = tls_contexts_created();
  EXPECT_THAT(connect(server.port(), trusting(pki_.ca_file)),
              StatusIs(ErrorKind::kTls, HasSubstr("is not trusted")));
  EXPECT_EQ(tls_contexts_created(), before + 1);
}

TEST_F(TlsContextTest, UnloadableCaFileIsNotCached) {
  std::string bad = pki_.dir + "/bad.pem";
  FILE* f = std::fopen(bad.c_str(), "w");
  ASSERT_NE(f, nullptr);
  std::fputs("not a certificate\n", f);
  std::fclose(f);
  size_t before = tls_contexts_created();
  for (int i = 0; i < 2; ++i) {
    EXPECT_THAT(shared_tls_context(trusting(bad)),
                StatusIs(ErrorKind::kConfig, HasSubstr("cannot load tls.ca_file")));
  }
  EXPECT_EQ(tls_contexts_created(), before);
  std::remove(bad.c_str());
}

}  // namespace
}  // namespace mb::internal
