// File: tests/unit/core/metrics_server_test.cpp — MetricsServer (core/metrics_server.h)
// scraped over a real loopback socket: /metrics, /healthz, 404, 405, 431, clients that send
// nothing, and a prompt stop().
#include "core/metrics_server.h"

#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>

#include "core/ingest.h"
#include "core/metrics.h"
#include "core/store.h"
#include "tests/status_matchers.h"
#include "tests/unit/core/fake_mailbox.h"

namespace mb {
namespace {

using ::mb::testing::IsOk;
using ::mb::testing::StatusIs;
using ::testing::HasSubstr;
using ::testing::StartsWith;
using Clock = std::chrono::steady_clock;

int connect_to(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  return fd;
}

// Everything the server sends until it closes, waiting at most `limit`.
std::string read_all(int fd, std::chrono::milliseconds limit = std::chrono::seconds(10)) {
  std::string got;
  const auto deadline = Clock::now() + limit;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) {
      ADD_FAILURE() << "no end of answer in time; got: " << got;
      break;
    }
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
    char buf[4096];
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) break;
    got.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return got;
}

// One request, the whole answer.
std::string http(uint16_t port, const std::string& request) {
  int fd = connect_to(port);
  EXPECT_EQ(::send(fd, request.data(), request.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(request.size()));
  return read_all(fd);
}

std::string get(uint16_t port, const std::string& path) {
  return http(port, "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: test\r\n\r\n");
}

std::string body_of(const std::string& answer) {
  size_t at = answer.find("\r\n\r\n");
  return at == std::string::npos ? "" : answer.substr(at + 4);
}

class MetricsServerTest : public ::testing::Test {
 protected:
  void start(MetricsServer::Options options = {}) {
    auto s = MetricsServer::start(
        "127.0.0.1:0", [this] { return metrics::render(store_.get()); },
        [this] { return healthy_.load(); }, options);
    ASSERT_THAT(s, IsOk());
    server_ = std::move(*s);
    ASSERT_NE(server_->port(), 0);
  }
  void TearDown() override {
    if (server_) server_->stop();
    store_.reset();
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  std::unique_ptr<MetricsServer> server_;
  std::unique_ptr<Store> store_;
  std::filesystem::path dir_;
  std::atomic<bool> healthy_{true};
};

TEST_F(MetricsServerTest, ServesMetricsThatAnIngestIncremented) {
  dir_ = std::filesystem::temp_directory_path() /
         ("mb_metrics_server_test_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir_);
  std::filesystem::create_directories(dir_);
  auto opened = Store::open((dir_ / "mb.db").string());
  ASSERT_THAT(opened, IsOk());
  store_ = std::move(*opened);
  start();
  std::string before = get(server_->port(), "/metrics");
  EXPECT_THAT(before, StartsWith("HTTP/1.1 200 OK\r\n"));
  EXPECT_THAT(before, HasSubstr("\r\nContent-Type: text/plain; version=0.0.4"));
  EXPECT_THAT(body_of(before), HasSubstr("# TYPE mailbridge_messages_imported_total counter"));
  EXPECT_THAT(before, ::testing::Not(HasSubstr("mailbox=\"scraped\"")));

  // An ingest on another store connection (as the service's mailbox threads do).
  auto ingest_store = Store::open((dir_ / "mb.db").string());
  ASSERT_THAT(ingest_store, IsOk());
  auto fake = std::make_shared<testing::FakeServer>();
  fake->add("From: a@example.com\r\nSubject: hello\r\nMessage-ID: <s1@example.com>\r\n\r\nhi\r\n");
  testing::FakeMailbox mbx(fake);
  MailboxConfig mcfg;
  mcfg.name = "scraped";
  mcfg.project = "IT";
  mcfg.max_per_poll = 10;
  ASSERT_THAT(sync_mailbox(mbx, mcfg, Config{}, **ingest_store, SyncOptions{}), IsOk());

  std::string after = get(server_->port(), "/metrics?x=1");
  EXPECT_THAT(after, StartsWith("HTTP/1.1 200 OK\r\n"));
  std::string body = body_of(after);
  EXPECT_THAT(body, HasSubstr("\nmailbridge_messages_imported_total{mailbox=\"scraped\"} 1\n"));
  EXPECT_THAT(body, HasSubstr("\nmailbridge_last_success_timestamp_seconds{mailbox=\"scraped\"} "));
  EXPECT_THAT(body, HasSubstr("\nmailbridge_outbox_depth{state=\"queued\"} 0\n"));
  EXPECT_THAT(after, HasSubstr("Content-Length: " + std::to_string(body.size()) + "\r\n"));
}

TEST_F(MetricsServerTest, HealthzNotFoundAndMethods) {
  start();
  std::string ok = get(server_->port(), "/healthz");
  EXPECT_THAT(ok, StartsWith("HTTP/1.1 200 OK\r\n"));
  EXPECT_EQ(body_of(ok), "ok\n");
  healthy_ = false;
  std::string sick = get(server_->port(), "/healthz");
  EXPECT_THAT(sick, StartsWith("HTTP/1.1 503 "));
  healthy_ = true;
  EXPECT_THAT(get(server_->port(), "/"), StartsWith("HTTP/1.1 404 "));
  EXPECT_THAT(get(server_->port(), "/metricsx"), StartsWith("HTTP/1.1 404 "));
  std::string post = http(server_->port(), "POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
  EXPECT_THAT(post, StartsWith("HTTP/1.1 405 "));
  EXPECT_THAT(post, HasSubstr("\r\nAllow: GET\r\n"));
  EXPECT_THAT(http(server_->port(), "HEAD /healthz HTTP/1.1\r\n\r\n"), StartsWith("HTTP/1.1 405 "));
  EXPECT_THAT(http(server_->port(), "hello\r\n\r\n"), StartsWith("HTTP/1.1 400 "));
}

TEST_F(MetricsServerTest, AnOversizedRequestIsRefused) {
  MetricsServer::Options options;
  options.max_request_bytes = 1024;
  start(options);
  std::string huge = "GET /metrics HTTP/1.1\r\nX-Pad: " + std::string(4000, 'a') + "\r\n\r\n";
  EXPECT_THAT(http(server_->port(), huge), StartsWith("HTTP/1.1 431 "));
  // Never ending headers, sent slower than the limit is reached: refused at the limit.
  int fd = connect_to(server_->port());
  std::string part = "GET /metrics HTTP/1.1\r\n" + std::string(2000, 'b');
  ASSERT_GT(::send(fd, part.data(), part.size(), MSG_NOSIGNAL), 0);
  EXPECT_THAT(read_all(fd), StartsWith("HTTP/1.1 431 "));
}

TEST_F(MetricsServerTest, ASilentClientBlocksNeitherOthersNorStop) {
  MetricsServer::Options options;
  options.read_timeout = std::chrono::seconds(60);  // far longer than anything below waits
  start(options);
  int silent = connect_to(server_->port());
  int trickle = connect_to(server_->port());
  ASSERT_EQ(::send(trickle, "GET /he", 7, MSG_NOSIGNAL), 7);
  auto t0 = Clock::now();
  EXPECT_EQ(body_of(get(server_->port(), "/healthz")), "ok\n");
  EXPECT_LT(Clock::now() - t0, std::chrono::seconds(5));
  // stop() closes both without waiting for their deadline.
  t0 = Clock::now();
  server_->stop();
  EXPECT_LT(Clock::now() - t0, std::chrono::seconds(5));
  EXPECT_EQ(read_all(silent, std::chrono::seconds(5)), "");
  EXPECT_EQ(read_all(trickle, std::chrono::seconds(5)), "");
  server_->stop();  // idempotent
}

TEST_F(MetricsServerTest, AClientTooSlowGets408AtItsDeadline) {
  MetricsServer::Options options;
  options.read_timeout = std::chrono::milliseconds(200);
  start(options);
  int fd = connect_to(server_->port());
  EXPECT_THAT(read_all(fd), StartsWith("HTTP/1.1 408 "));
  EXPECT_EQ(body_of(get(server_->port(), "/healthz")), "ok\n");  // still serving
}

TEST(MetricsServerStartTest, RefusesAnAddressThatIsNotLoopbackAndABusyPort) {
  auto render = [] { return std::string(); };
  EXPECT_THAT(MetricsServer::start("0.0.0.0:0", render),
              StatusIs(ErrorKind::kInvalidInput, HasSubstr("not a loopback address")));
  auto first = MetricsServer::start("127.0.0.1:0", render);
  ASSERT_THAT(first, IsOk());
  std::string busy = "127.0.0.1:" + std::to_string((*first)->port());
  EXPECT_THAT(MetricsServer::start(busy, render),
              StatusIs(ErrorKind::kNetwork, HasSubstr("cannot listen on " + busy)));
  (*first)->stop();
}

TEST(MetricsServerStartTest, ServesOnIpv6Loopback) {
  auto s = MetricsServer::start("[::1]:0", [] { return std::string("x 1\n"); });
  if (!s.ok()) GTEST_SKIP() << "no IPv6 loopback here: " << s.status().to_string();
  int fd = ::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in6 a{};
  a.sin6_family = AF_INET6;
  a.sin6_port = htons((*s)->port());
  a.sin6_addr = in6addr_loopback;
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  std::string req = "GET /metrics HTTP/1.0\r\n\r\n";
  ASSERT_EQ(::send(fd, req.data(), req.size(), MSG_NOSIGNAL), static_cast<ssize_t>(req.size()));
  EXPECT_EQ(body_of(read_all(fd)), "x 1\n");
}

}  // namespace
}  // namespace mb
