// File: tests/unit/cli/run_test.cpp — `mailbridge run` around the runner (cli/service.h):
// what a reload adds, changes and removes; the signal loop with a fake service (SIGHUP
// reloads a valid file and keeps the running one on an invalid file, naming key and line;
// SIGTERM stops); the single-instance refusal; and `status` showing the running service.
#include "cli/service.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include "cli/cli.h"
#include "core/instance_lock.h"
#include "core/store.h"
#include "tests/status_matchers.h"

namespace mb::cli {
namespace {
using ::mb::testing::IsOk;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using nlohmann::json;

std::string mailbox_toml(const std::string& name, const std::string& host = "127.0.0.1",
                         bool enabled = true) {
  return "[[mailbox]]\nname = \"" + name + "\"\ntype = \"imap\"\nhost = \"" + host +
         "\"\nsecurity = \"none\"\nuser = \"" + name + "@example.com\"\n"
         "password = \"env:MB_RUN_TEST_PW\"\nenabled = " + (enabled ? "true" : "false") + "\n\n";
}

Config parse(const std::string& text) {
  auto cfg = parse_config("[[project]]\nname = \"IT\"\n\n" + text, "test.toml");
  EXPECT_THAT(cfg, IsOk());
  return cfg.ok() ? *cfg : Config{};
}

// Restores the process's open-file limit when a test has changed it.
class SavedFileLimit {
 public:
  SavedFileLimit() { getrlimit(RLIMIT_NOFILE, &saved_); }
  ~SavedFileLimit() { setrlimit(RLIMIT_NOFILE, &saved_); }
  const rlimit& saved() const { return saved_; }

 private:
  rlimit saved_{};
};

TEST(OpenFileLimit, RaisesTheSoftLimitToTheHardOne) {
  SavedFileLimit saved;
  if (saved.saved().rlim_max != RLIM_INFINITY && saved.saved().rlim_max < 128) {
    GTEST_SKIP() << "hard open-file limit " << saved.saved().rlim_max << " is too low to test";
  }
  rlimit lowered = saved.saved();
  lowered.rlim_cur = 100;
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &lowered), 0) << std::strerror(errno);
  EXPECT_EQ(raise_open_file_limit(1), "");
  rlimit now{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &now), 0);
  EXPECT_EQ(now.rlim_cur, saved.saved().rlim_max);
}

TEST(OpenFileLimit, WarnsNamingLimitNofileWhenEvenTheHardLimitIsTooLow) {
  SavedFileLimit saved;
  if (saved.saved().rlim_max != RLIM_INFINITY && saved.saved().rlim_max < 256) {
    GTEST_SKIP() << "hard open-file limit " << saved.saved().rlim_max << " is too low to test";
  }
  rlimit lowered{};
  lowered.rlim_cur = lowered.rlim_max = 256;  // any process may lower its hard limit
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &lowered), 0) << std::strerror(errno);
  // 30 mailboxes fit in 256 (64 + 6 × 30 = 244); 1,000 do not.
  EXPECT_EQ(raise_open_file_limit(30), "");
  std::string warning = raise_open_file_limit(1000);
  EXPECT_THAT(warning, HasSubstr("open-file limit is 256"));
  EXPECT_THAT(warning, HasSubstr("1000 mailbox(es) may need 6064"));
  EXPECT_THAT(warning, HasSubstr("LimitNOFILE="));
  // Raising the hard limit back needs privilege: without it the rest of this process keeps
  // 256, which its other tests live with (under ctest each test has its own process).
}

TEST(ThreadCacheTunables, AddsTcacheOffUnlessTheOperatorChoseAlready) {
  EXPECT_EQ(thread_cache_tunables(nullptr), "glibc.malloc.tcache_count=0");
  EXPECT_EQ(thread_cache_tunables(""), "glibc.malloc.tcache_count=0");
  EXPECT_EQ(thread_cache_tunables("glibc.malloc.arena_max=2"),
            "glibc.malloc.arena_max=2:glibc.malloc.tcache_count=0");
  EXPECT_EQ(thread_cache_tunables("glibc.malloc.tcache_count=7"), "");
  EXPECT_EQ(thread_cache_tunables("glibc.malloc.arena_max=2:glibc.malloc.tcache_count=0"), "");
}

TEST(CompareMailboxes, AddedChangedRemovedAndMovedTablesAreNotChanges) {
  Config before = parse(mailbox_toml("a") + mailbox_toml("b") + mailbox_toml("c") +
                        mailbox_toml("off", "127.0.0.1", false));
  // a moves down (other line numbers), b changes host, c goes, d comes, off is switched on.
  Config after = parse(mailbox_toml("b", "127.0.0.2") + mailbox_toml("a") + mailbox_toml("d") +
                       mailbox_toml("off"));
  MailboxChanges c = compare_mailboxes(before, after);
  EXPECT_THAT(c.added, ElementsAre("d", "off"));
  EXPECT_THAT(c.changed, ElementsAre("b"));
  EXPECT_THAT(c.removed, ElementsAre("c"));
  EXPECT_EQ(describe(c), "added d, off; changed b; removed c");
  EXPECT_TRUE(compare_mailboxes(before, before).empty());
  EXPECT_EQ(describe(compare_mailboxes(before, before)), "no mailbox added, changed or removed");
}

class FakeService : public ServiceControl {
 public:
  void reload(const Config& config, const std::string& secret) override {
    reloads.push_back(config);
    secrets.push_back(secret);
  }
  void stop() override { ++stops; }
  std::vector<Config> reloads;
  std::vector<std::string> secrets;
  int stops = 0;
};

class RunTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("mb_run_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    config_ = (dir_ / "mailbridge.toml").string();
    ::setenv("MB_RUN_TEST_PW", "pw-run-test", 1);
    previous_logger_ = spdlog::default_logger();
    auto logger = std::make_shared<spdlog::logger>(
        "test", std::make_shared<spdlog::sinks::ostream_sink_mt>(log_));
    logger->set_level(spdlog::level::info);
    spdlog::set_default_logger(logger);
  }
  void TearDown() override {
    spdlog::set_default_logger(previous_logger_);
    std::filesystem::remove_all(dir_);
    ::unsetenv("MB_RUN_TEST_PW");
  }
  void write_config(const std::string& tables) {
    std::ofstream(config_, std::ios::trunc) << "[[project]]\nname = \"IT\"\n\n" << tables;
  }
  Config load_config_file() {
    auto cfg = load_config(config_);
    EXPECT_THAT(cfg, IsOk());
    return cfg.ok() ? *cfg : Config{};
  }
  // The signals queued for this thread, then the loop: they are taken in signal-number
  // order (SIGHUP 1 before SIGTERM 15), each one as it would be from kill(1).
  int serve_with(std::vector<int> signals, FakeService& fake, Config running,
                 const ServeHooks& hooks = {}) {
    block_service_signals();
    for (int sig : signals) pthread_kill(pthread_self(), sig);
    return serve_signals(config_, std::move(running), fake, hooks);
  }

  std::filesystem::path dir_;
  std::string config_;
  std::ostringstream log_;
  std::shared_ptr<spdlog::logger> previous_logger_;
};

TEST_F(RunTest, SigtermStopsAndExitsZero) {
  write_config(mailbox_toml("a"));
  FakeService fake;
  EXPECT_EQ(serve_with({SIGTERM}, fake, load_config_file()), 0);
  EXPECT_EQ(fake.stops, 1);
  EXPECT_THAT(fake.reloads, IsEmpty());
  EXPECT_THAT(log_.str(), HasSubstr("SIGTERM"));
  EXPECT_THAT(log_.str(), HasSubstr("stopped in"));
}

TEST_F(RunTest, SigintStopsToo) {
  write_config(mailbox_toml("a"));
  FakeService fake;
  EXPECT_EQ(serve_with({SIGINT}, fake, load_config_file()), 0);
  EXPECT_EQ(fake.stops, 1);
}

TEST_F(RunTest, SighupAppliesAValidFileAndSaysWhatChanged) {
  write_config(mailbox_toml("a") + mailbox_toml("b"));
  Config running = load_config_file();
  write_config(mailbox_toml("a") + mailbox_toml("c"));
  FakeService fake;
  std::vector<std::string> forgotten;
  ServeHooks hooks;
  hooks.reloaded = [&](const MailboxChanges& c) { forgotten = c.removed; };
  EXPECT_EQ(serve_with({SIGHUP, SIGTERM}, fake, running, hooks), 0);
  ASSERT_EQ(fake.reloads.size(), 1u);
  ASSERT_EQ(fake.reloads[0].mailboxes.size(), 2u);
  EXPECT_EQ(fake.reloads[0].mailboxes[1].name, "c");
  EXPECT_THAT(forgotten, ElementsAre("b"));
  EXPECT_EQ(fake.stops, 1);
  EXPECT_THAT(log_.str(), HasSubstr("configuration reloaded: added c; removed b"));
}

TEST_F(RunTest, SighupChangingTheMetricsAddressSaysItTakesARestart) {
  write_config("[service]\nmetrics = \"127.0.0.1:9464\"\n\n" + mailbox_toml("a"));
  Config running = load_config_file();
  write_config("[service]\nmetrics = \"127.0.0.1:9465\"\n\n" + mailbox_toml("a"));
  FakeService fake;
  EXPECT_EQ(serve_with({SIGHUP, SIGTERM}, fake, running), 0);
  ASSERT_EQ(fake.reloads.size(), 1u);  // the rest of the file applies
  EXPECT_THAT(log_.str(), HasSubstr("[service] metrics changed from '127.0.0.1:9464' to "
                                    "'127.0.0.1:9465': it takes effect at the next restart"));
}

TEST_F(RunTest, SighupWithAnInvalidFileKeepsTheRunningOneAndNamesKeyAndLine) {
  write_config(mailbox_toml("a"));
  Config running = load_config_file();
  write_config(mailbox_toml("a") + "[[mailbox]]\nname = \"b\"\ntype = \"carrier-pigeon\"\n");
  FakeService fake;
  EXPECT_EQ(serve_with({SIGHUP, SIGTERM}, fake, running), 0);
  EXPECT_THAT(fake.reloads, IsEmpty());
  EXPECT_EQ(fake.stops, 1);
  // As check-config says it: file, line, key.
  EXPECT_THAT(log_.str(), HasSubstr("mailbridge.toml:15: mailbox \"b\": type must be"));
  EXPECT_THAT(log_.str(), HasSubstr("configuration not reloaded: the running one stays in use"));
}

TEST_F(RunTest, SighupRefusesAnotherStore) {
  write_config(mailbox_toml("a"));
  Config running = load_config_file();
  write_config("[store]\npath = \"other.db\"\n\n" + mailbox_toml("a"));
  FakeService fake;
  EXPECT_EQ(serve_with({SIGHUP, SIGTERM}, fake, running), 0);
  EXPECT_THAT(fake.reloads, IsEmpty());
  EXPECT_THAT(log_.str(), HasSubstr("cannot change without a restart"));
}

struct CliRun {
  int code = -1;
  std::string out, err;
};

CliRun cli(std::vector<std::string> args) {
  std::ostringstream out, err;
  CliRun r;
  r.code = run_cli(std::move(args), out, err);
  r.out = out.str();
  r.err = err.str();
  return r;
}

TEST_F(RunTest, SecondRunOnTheSameStoreIsRefusedNamingThePid) {
  write_config(mailbox_toml("a"));
  std::string db = (dir_ / "mailbridge.db").string();
  auto held = InstanceLock::acquire(instance_lock_path(db));  // as a running service would
  ASSERT_THAT(held, IsOk());
  CliRun r = cli({"--config", config_, "run"});
  EXPECT_EQ(r.code, 1) << r.err;
  EXPECT_THAT(r.err, HasSubstr("another `mailbridge run` already serves this store"));
  EXPECT_THAT(r.err, HasSubstr(instance_lock_path(db)));
  EXPECT_THAT(r.err, HasSubstr("pid " + std::to_string(::getpid())));
}

TEST_F(RunTest, StatusShowsWhatTheRunningServiceDoes) {
  write_config(mailbox_toml("a") + mailbox_toml("b"));
  std::string db = (dir_ / "mailbridge.db").string();
  {
    auto store = Store::open(db);
    ASSERT_THAT(store, IsOk());
    ASSERT_THAT((*store)->put_service_activities(
                    {{"a", "backoff", "2026-12-07T10:05:00Z", "connection refused",
                      "2026-12-07T10:00:00Z", ::getpid()}}),
                IsOk());
  }
  // No service holds the lock: the rows a killed service left are not shown.
  CliRun stale = cli({"--config", config_, "status", "--json"});
  ASSERT_EQ(stale.code, 0) << stale.err;
  json s = json::parse(stale.out);
  ASSERT_EQ(s.size(), 2u);
  EXPECT_EQ(s[0]["service"]["running"], false);
  EXPECT_TRUE(s[0]["service"]["activity"].is_null());
  EXPECT_THAT(cli({"--config", config_, "status"}).out, HasSubstr("service: not running"));

  auto held = InstanceLock::acquire(instance_lock_path(db));
  ASSERT_THAT(held, IsOk());
  CliRun r = cli({"--config", config_, "status", "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  json j = json::parse(r.out);
  ASSERT_EQ(j.size(), 2u);
  EXPECT_EQ(j[0]["name"], "a");
  EXPECT_EQ(j[0]["state"], "ok");  // every earlier field is still there
  const json& svc = j[0]["service"];
  EXPECT_EQ(svc["running"], true);
  EXPECT_EQ(svc["pid"], ::getpid());
  EXPECT_EQ(svc["started_at"], (*held)->started_at());
  EXPECT_EQ(svc["activity"], "backoff");
  EXPECT_EQ(svc["next_run"], "2026-12-07T10:05:00Z");
  EXPECT_EQ(svc["since"], "2026-12-07T10:00:00Z");
  EXPECT_EQ(svc["last_error"], "connection refused");
  EXPECT_EQ(j[1]["service"]["running"], true);
  EXPECT_TRUE(j[1]["service"]["activity"].is_null());  // not recorded yet

  CliRun human = cli({"--config", config_, "status"});
  ASSERT_EQ(human.code, 0) << human.err;
  EXPECT_THAT(human.out, HasSubstr("  service: backoff since 2026-12-07T10:00:00Z, next run "
                                   "2026-12-07T10:05:00Z; last error: connection refused\n"));
  EXPECT_THAT(human.out, HasSubstr("service: running (pid " + std::to_string(::getpid())));
}

}  // namespace
}  // namespace mb::cli
