// File: tests/integration/run_service_test.cpp — `mailbridge run`, the service, through the
// real binary against the private Dovecot with 20 mailboxes: mail appended while it runs
// becomes tickets; SIGTERM mid-batch exits 0 within seconds and a restart continues exactly
// once; SIGKILL then a restart loses and doubles nothing; SIGHUP adds and removes a
// mailbox, and keeps the running configuration when the new file is invalid; a second `run`
// on the store is refused naming the pid; a server that never answers and one that
// trickles a byte at a time do not delay the other mailboxes.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <functional>
#include <iterator>
#include <thread>

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/integration/harness.h"
#include "tests/status_matchers.h"

namespace mb::itest {
namespace {

using ::mb::testing::IsOk;
using ::testing::HasSubstr;
using Clock = std::chrono::steady_clock;

constexpr const char* kPasswordVar = "MB_TEST_PASSWORD";

// `sql`'s single integer, read-only (another process's view); -1 on any error.
int64_t query_int(const std::string& db_path, const std::string& sql) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(db_path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    sqlite3_close(db);
    return -1;
  }
  sqlite3_busy_timeout(db, 5000);
  sqlite3_stmt* st = nullptr;
  int64_t n = -1;
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr) == SQLITE_OK &&
      sqlite3_step(st) == SQLITE_ROW) {
    n = sqlite3_column_int64(st, 0);
  }
  sqlite3_finalize(st);
  sqlite3_close(db);
  return n;
}

// A port nothing listens on now (bound, read, released).
uint16_t free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  uint16_t port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0) {
    port = ntohs(a.sin_port);
  }
  ::close(fd);
  return port;
}

// GET `path` from 127.0.0.1:`port`: the whole answer, or "" when nothing answers within 5 s.
std::string http_get(uint16_t port, const std::string& path) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  std::string got;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
    std::string req = "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    if (::send(fd, req.data(), req.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(req.size())) {
      auto deadline = Clock::now() + std::chrono::seconds(5);
      for (;;) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
        pollfd p{fd, POLLIN, 0};
        if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
        char buf[4096];
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n <= 0) break;
        got.append(buf, static_cast<size_t>(n));
      }
    }
  }
  ::close(fd);
  return got;
}

// The value of the series `series` (name and labels as rendered) in a /metrics answer, or -1.
double metric_value(const std::string& page, const std::string& series) {
  size_t at = page.find("\n" + series + " ");
  if (at == std::string::npos) return -1;
  return std::stod(page.substr(at + series.size() + 2));
}

// Polls `done` every 50 ms until it holds or `limit` passes; true when it held.
// A loopback server that misbehaves: kSilent accepts and never answers; kTrickle sends an
// IMAP greeting one byte every 200 ms and never ends the line.
class BadServer {
 public:
  enum class Mode { kSilent, kTrickle };
  explicit BadServer(Mode mode) : mode_(mode) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    EXPECT_EQ(::listen(listen_fd_, 16), 0);
    socklen_t len = sizeof addr;
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { loop(); });
  }
  ~BadServer() {
    stop_ = true;
    thread_.join();
    for (int fd : conns_) ::close(fd);
    ::close(listen_fd_);
  }
  uint16_t port() const { return port_; }
  int accepted() const { return accepted_; }

 private:
  void loop() {
    const std::string greeting = "* OK IMAP4rev1 trickling along forever";
    size_t sent = 0;
    while (!stop_) {
      pollfd p{listen_fd_, POLLIN, 0};
      if (::poll(&p, 1, 200) > 0) {
        int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (fd >= 0) {
          conns_.push_back(fd);
          ++accepted_;
        }
      }
      if (mode_ == Mode::kTrickle) {
        char c = greeting[sent++ % greeting.size()];
        for (int fd : conns_) (void)!::send(fd, &c, 1, MSG_NOSIGNAL);
      }
    }
  }
  Mode mode_;
  int listen_fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> accepted_{0};
  std::vector<int> conns_;  // the loop thread's until it ends
  std::thread thread_;
};

class RunServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto env = load_harness();
    ASSERT_THAT(env, IsOk());
    env_ = *env;
    base_ = unique_user();
    dir_ = std::make_unique<TempDir>();
  }
  void TearDown() override {
    if (service_ && service_->running()) {
      service_->kill(SIGKILL);
      service_->wait(std::chrono::seconds(10));
    }
    if (HasFailure() && dir_) {
      dir_->keep();
      std::fprintf(stderr, "kept %s (mail users %s_*)\n", dir_->path().c_str(), base_.c_str());
    }
  }

  std::string config() const { return dir_->file("mailbridge.toml"); }
  std::string db() const { return dir_->file("mailbridge.db"); }
  std::string user(int i) const { return fmt::format("{}_{}", base_, i); }
  std::string box(int i) const { return fmt::format("box{:02}", i); }

  std::string box_toml(int i, int max_per_poll = 50) const {
    ImapBox b;
    b.name = box(i);
    b.user = user(i);
    b.max_per_poll = max_per_poll;
    std::string t = imap_mailbox_toml(env_, b);
    auto at = t.find("poll_interval = \"1m\"");
    if (at != std::string::npos) t.replace(at, 20, "poll_interval = \"2s\"");
    return t + "\n";
  }
  // A mailbox on a BadServer: plain IMAP on loopback, a response time-out far longer than
  // the good mailboxes take.
  static std::string bad_box_toml(const std::string& name, uint16_t port) {
    return fmt::format(
        "[[mailbox]]\nname = \"{}\"\ntype = \"imap\"\nhost = \"127.0.0.1\"\nport = {}\n"
        "security = \"none\"\nauth = \"password\"\nuser = \"x\"\npassword = \"env:{}\"\n"
        "poll_interval = \"2s\"\ntimeouts = {{ connect = \"15s\", response = \"60s\" }}\n\n",
        name, port, kPasswordVar);
  }
  void write_config(const std::vector<int>& boxes, const std::string& extra = "",
                    int max_per_poll = 50) {
    std::string tables = "[[project]]\nname = \"IT\"\n\n";
    for (int i : boxes) tables += box_toml(i, max_per_poll);
    ASSERT_THAT(write_file(config(), config_toml(db(), tables + extra)), IsOk());
  }
  static std::vector<int> range(int from, int to) {
    std::vector<int> v;
    for (int i = from; i < to; ++i) v.push_back(i);
    return v;
  }
  RunOptions options() const {
    RunOptions o;
    o.env = {{kPasswordVar, env_.password}};
    o.cwd = dir_->path();
    return o;
  }
  void deliver_to(int i, int n, const std::string& tag) {
    for (int k = 0; k < n; ++k) {
      MessageSpec m;
      // No "#N" in the subject: that is the hash-id rule, a note on ticket N (SPEC §2).
      m.subject = fmt::format("{} {} no. {}", tag, box(i), k);
      m.text = "Please help.\n";
      ASSERT_THAT(deliver(env_, user(i), make_message(m)), IsOk());
    }
  }
  // Starts `run` and waits until it holds the store's lock (status says it runs).
  std::unique_ptr<Process> start_run() {
    auto p = Process::start(mailbridge_bin(), {"--config", config(), "run"}, options());
    EXPECT_THAT(p, IsOk());
    if (!p.ok()) return nullptr;
    bool up = wait_for([&] {
      RunResult s = run_mailbridge({"--config", config(), "status", "--json"}, options());
      auto j = parse_json(s.out);
      return (*p)->running() && j.is_array() && !j.empty() &&
             j[0]["service"]["running"] == true;
    }, std::chrono::seconds(30));
    EXPECT_TRUE(up) << "the service did not come up";
    return std::move(*p);
  }
  int64_t tickets() { return query_int(db(), "SELECT count(*) FROM tickets"); }
  int64_t tickets_like(const std::string& pattern) {
    return query_int(db(), "SELECT count(*) FROM tickets WHERE subject LIKE '" + pattern + "'");
  }
  // Each message appended is exactly one ticket and one ledger row.
  void expect_exactly_once(int64_t messages) {
    EXPECT_EQ(tickets(), messages);
    EXPECT_EQ(query_int(db(), "SELECT count(DISTINCT subject) FROM tickets"), messages);
    EXPECT_EQ(query_int(db(), "SELECT count(*) FROM ledger WHERE outcome = 'ticket'"), messages);
    EXPECT_EQ(query_int(db(), "SELECT count(*) FROM ledger"), messages);
  }
  // SIGTERM, then the exit: 0, within `limit`.
  RunResult terminate(Process& p, std::chrono::seconds limit = std::chrono::seconds(10)) {
    auto t0 = Clock::now();
    p.kill(SIGTERM);
    RunResult r = p.wait(std::chrono::seconds(30));
    auto took = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0);
    EXPECT_EQ(r.exit_code, 0) << r.describe();
    EXPECT_LT(took, limit) << r.describe();
    return r;
  }

  HarnessEnv env_;
  std::string base_;
  std::unique_ptr<TempDir> dir_;
  std::unique_ptr<Process> service_;
};

TEST_F(RunServiceTest, ImportsMailAppendedWhileItRunsAndStopsOnSigterm) {
  write_config(range(0, 20));
  service_ = start_run();
  ASSERT_TRUE(service_);
  // It started itself again with glibc's per-thread cache off (cli/service.h), same pid.
  std::ifstream environ_file("/proc/" + std::to_string(service_->pid()) + "/environ",
                             std::ios::binary);
  std::string environ_text((std::istreambuf_iterator<char>(environ_file)),
                           std::istreambuf_iterator<char>());
  EXPECT_NE(environ_text.find(std::string("GLIBC_TUNABLES=glibc.malloc.tcache_count=0") + '\0'),
            std::string::npos);
  for (int i = 0; i < 20; ++i) deliver_to(i, 2, "live");
  ASSERT_TRUE(wait_for([&] { return tickets() == 40; }, std::chrono::seconds(60)))
      << tickets() << " tickets";
  RunResult r = terminate(*service_);
  EXPECT_THAT(r.err, HasSubstr("SIGTERM"));
  expect_exactly_once(40);
  // Stopped: status says so.
  RunResult s = run_mailbridge({"--config", config(), "status", "--json"}, options());
  auto j = parse_json(s.out);
  ASSERT_TRUE(j.is_array()) << s.describe();
  EXPECT_EQ(j[0]["service"]["running"], false);
}

TEST_F(RunServiceTest, SigtermMidBatchThenRestartContinuesExactlyOnce) {
  write_config(range(0, 20), "", 10);  // small batches: many passes
  for (int i = 0; i < 20; ++i) deliver_to(i, 25, "batch");
  service_ = start_run();
  ASSERT_TRUE(service_);
  ASSERT_TRUE(wait_for([&] { return tickets() > 0; }, std::chrono::seconds(60)));
  terminate(*service_);
  int64_t after_stop = tickets();
  EXPECT_LT(after_stop, 500) << "it was meant to stop mid-batch";
  service_ = start_run();
  ASSERT_TRUE(service_);
  ASSERT_TRUE(wait_for([&] { return tickets() >= 500; }, std::chrono::seconds(120)))
      << tickets() << " tickets";
  terminate(*service_);
  expect_exactly_once(500);
}

TEST_F(RunServiceTest, SigkillThenRestartLosesAndDoublesNothing) {
  write_config(range(0, 20), "", 10);
  for (int i = 0; i < 20; ++i) deliver_to(i, 25, "kill");
  service_ = start_run();
  ASSERT_TRUE(service_);
  ASSERT_TRUE(wait_for([&] { return tickets() > 0; }, std::chrono::seconds(60)));
  service_->kill(SIGKILL);
  RunResult killed = service_->wait(std::chrono::seconds(10));
  EXPECT_EQ(killed.signal, SIGKILL);
  service_ = start_run();  // the kernel released the lock: no stale-lock refusal
  ASSERT_TRUE(service_);
  ASSERT_TRUE(wait_for([&] { return tickets() >= 500; }, std::chrono::seconds(120)))
      << tickets() << " tickets";
  terminate(*service_);
  expect_exactly_once(500);
}

TEST_F(RunServiceTest, SighupAddsAndRemovesMailboxes) {
  write_config({0, 1});
  service_ = start_run();
  ASSERT_TRUE(service_);
  deliver_to(0, 1, "first");
  deliver_to(1, 1, "first");
  ASSERT_TRUE(wait_for([&] { return tickets() == 2; }, std::chrono::seconds(60)));
  write_config({0, 2});  // box01 removed, box02 added
  service_->kill(SIGHUP);
  deliver_to(2, 1, "added");
  ASSERT_TRUE(wait_for([&] { return tickets_like("added box02%") == 1; },
                       std::chrono::seconds(60)));
  // box01 is not served any more: its new mail stays while box00 (still served) imports.
  deliver_to(1, 1, "removed");
  deliver_to(0, 1, "later");
  ASSERT_TRUE(wait_for([&] { return tickets_like("later box00%") == 1; },
                       std::chrono::seconds(60)));
  EXPECT_EQ(tickets_like("removed box01%"), 0);
  RunResult r = terminate(*service_);
  EXPECT_THAT(r.err, HasSubstr("configuration reloaded: added box02; removed box01"));
}

TEST_F(RunServiceTest, SighupWithAnInvalidConfigKeepsTheRunningOne) {
  write_config({0});
  service_ = start_run();
  ASSERT_TRUE(service_);
  ASSERT_THAT(write_file(config(), config_toml(db(), "[[mailbox]]\nname = \"x\"\n"
                                                     "type = \"carrier-pigeon\"\n")),
              IsOk());
  service_->kill(SIGHUP);
  deliver_to(0, 1, "still");
  ASSERT_TRUE(wait_for([&] { return tickets_like("still box00%") == 1; },
                       std::chrono::seconds(60)));
  RunResult r = terminate(*service_);
  EXPECT_THAT(r.err, HasSubstr("configuration not reloaded: the running one stays in use"));
  EXPECT_THAT(r.err, HasSubstr("mailbridge.toml:7: mailbox \"x\": type must be"));
}

TEST_F(RunServiceTest, SecondRunOnTheSameStoreIsRefused) {
  write_config({0});
  service_ = start_run();
  ASSERT_TRUE(service_);
  RunResult second = run_mailbridge({"--config", config(), "run"}, options());
  EXPECT_EQ(second.exit_code, 1) << second.describe();
  EXPECT_THAT(second.err, HasSubstr("pid " + std::to_string(service_->pid())));
  EXPECT_THAT(second.err, HasSubstr(db() + ".run.lock"));
  EXPECT_TRUE(service_->running());
  terminate(*service_);
}


// [service] metrics: /healthz answers, every mailbox shows as an open IDLE connection once
// it waits on Dovecot, and a message appended then is a ticket within seconds (push) and
// counted in mailbridge_messages_imported_total.
TEST_F(RunServiceTest, ServesMetricsWithIdleConnectionsAndImportsPushedMail) {
  const uint16_t port = free_port();
  ASSERT_NE(port, 0);
  write_config(range(0, 3), fmt::format("[service]\nmetrics = \"127.0.0.1:{}\"\n", port));
  // A poll every 10 minutes: a ticket within seconds can only come from IDLE.
  auto text = read_file(config());
  ASSERT_THAT(text, IsOk());
  std::string toml = *text;
  for (size_t at; (at = toml.find("poll_interval = \"2s\"")) != std::string::npos;) {
    toml.replace(at, 20, "poll_interval = \"10m\"");
  }
  ASSERT_THAT(write_file(config(), toml), IsOk());
  service_ = start_run();
  ASSERT_TRUE(service_);
  // The lock (what start_run waits for) is taken before the server listens: wait for it.
  std::string health;
  EXPECT_TRUE(wait_for([&] { return (health = http_get(port, "/healthz")).find("200 OK") !=
                                    std::string::npos; }, std::chrono::seconds(10)))
      << health;
  std::string page;
  ASSERT_TRUE(wait_for([&] {
    page = http_get(port, "/metrics");
    return metric_value(page, "mailbridge_imap_idle_connections") == 3;
  }, std::chrono::seconds(30))) << page;
  deliver_to(1, 1, "pushed");
  ASSERT_TRUE(wait_for([&] { return tickets() == 1; }, std::chrono::seconds(20)));
  ASSERT_TRUE(wait_for([&] {
    page = http_get(port, "/metrics");
    return metric_value(page, "mailbridge_messages_imported_total{mailbox=\"box01\"}") == 1;
  }, std::chrono::seconds(10))) << page;
  terminate(*service_);
  EXPECT_EQ(http_get(port, "/healthz"), "");  // stopped with the service
}

TEST_F(RunServiceTest, HungAndTricklingServersDoNotDelayTheOthers) {
  auto measure = [&](const std::string& extra, const std::string& tag) {
    write_config(range(0, 19), extra);
    service_ = start_run();
    EXPECT_TRUE(service_);
    if (!service_) return std::chrono::milliseconds::max();
    int64_t before = tickets();
    auto t0 = Clock::now();
    for (int i = 0; i < 19; ++i) deliver_to(i, 1, tag);
    bool done = wait_for([&] { return tickets() == before + 19; }, std::chrono::seconds(55));
    auto took = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0);
    EXPECT_TRUE(done) << tickets() - before << " of 19 with " << tag;
    terminate(*service_);
    return took;
  };
  auto alone = measure("", "alone");
  BadServer silent(BadServer::Mode::kSilent);
  BadServer trickle(BadServer::Mode::kTrickle);
  auto beside = measure(bad_box_toml("silent", silent.port()) +
                        bad_box_toml("trickle", trickle.port()), "beside");
  EXPECT_GT(silent.accepted(), 0);
  EXPECT_GT(trickle.accepted(), 0);
  // Within the same time as without them (with slack for a loaded machine), and far less
  // than the 60 s the bad servers hold a read.
  EXPECT_LT(beside, alone * 2 + std::chrono::seconds(5))
      << "alone " << alone.count() << " ms, beside " << beside.count() << " ms";
  expect_exactly_once(38);
}

}  // namespace
}  // namespace mb::itest
