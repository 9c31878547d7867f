// File: tests/unit/core/runner_test.cpp — the runner (core/runner.h): sync_once and the
// service's workers on fake mailboxes and a clock the test advances by hand. No sleeps:
// every wait is on a condition with a deadline.
#include "core/runner.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <map>
#include <mutex>
#include <set>

#include <sqlite3.h>

#include "core/internal/sqlite.h"
#include "core/outbox.h"
#include "core/sender.h"
#include "core/utc.h"
#include "tests/status_matchers.h"
#include "tests/unit/core/fake_mailbox.h"

namespace mb {
namespace {
using ::mb::testing::FakeMailbox;
using ::mb::testing::FakeServer;
using ::mb::testing::HangingMailbox;
using ::mb::testing::IsOk;
using ::mb::testing::PushMailbox;
using ::testing::HasSubstr;
using namespace std::chrono_literals;

constexpr auto kDeadline = 20s;  // for conditions that should hold within milliseconds

std::string mail(int n) {
  return "From: Alice <alice@example.com>\r\nTo: support@example.com\r\nSubject: m" +
         std::to_string(n) + "\r\nMessage-ID: <m" + std::to_string(n) +
         "@example.com>\r\n\r\nbody\r\n";
}

// A clock the test advances; sleep_until blocks until then or until the Cancel fires.
class ManualClock : public RunnerClock {
 public:
  explicit ManualClock(Clock::time_point start) : now_(start) {}
  Clock::time_point now() override {
    std::lock_guard lock(mu_);
    return now_;
  }
  bool sleep_until(Clock::time_point at, const Cancel& cancel) override {
    uint64_t handle = const_cast<Cancel&>(cancel).on_fire([this] {
      std::lock_guard lock(mu_);
      cv_.notify_all();
    });
    std::unique_lock lock(mu_);
    auto it = sleepers_.insert(at);
    cv_.notify_all();
    cv_.wait(lock, [&] { return now_ >= at || cancel.fired(); });
    sleepers_.erase(it);
    cv_.notify_all();
    lock.unlock();
    const_cast<Cancel&>(cancel).remove_callback(handle);
    return cancel.fired();
  }
  void advance(Clock::duration d) {
    std::lock_guard lock(mu_);
    now_ += d;
    cv_.notify_all();
  }
  // Waits until `n` threads sleep, each until a time still ahead: everything due has run.
  bool settle(size_t n) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, kDeadline, [&] {
      if (sleepers_.size() != n) return false;
      return std::all_of(sleepers_.begin(), sleepers_.end(),
                         [&](Clock::time_point at) { return at > now_; });
    });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  Clock::time_point now_;
  std::multiset<Clock::time_point> sleepers_;
};

// A sender that accepts everything and counts what it sent.
class CountingSender : public Sender {
 public:
  explicit CountingSender(std::atomic<int>& sent) : sent_(sent) {}
  Result<SendResult> send(const OutgoingMail& mail) override {
    SendResult ok;
    for (const auto& a : mail.envelope.recipients) {
      ok.recipients.push_back({a, true, false, "250 ok"});
    }
    if (mail.on_handed_over) mail.on_handed_over(ok);
    ++sent_;
    return ok;
  }
  ConnectionReport test_connection() override { return {}; }
  void close() override {}

 private:
  std::atomic<int>& sent_;
};

// Counts how many passes are inside list_pending at once. Each one waits there until a
// third arrives or 200 ms pass: with a limit of two the third never comes, without it the
// gauge sees it at once.
struct Gauge {
  std::mutex mu;
  std::condition_variable cv;
  int in = 0;
  int max = 0;
};
class GaugedMailbox : public FakeMailbox {
 public:
  GaugedMailbox(std::shared_ptr<FakeServer> server, Gauge& gauge)
      : FakeMailbox(std::move(server)), gauge_(gauge) {}
  Result<Pending> list_pending(size_t limit, const std::string& state) override {
    {
      std::unique_lock lock(gauge_.mu);
      gauge_.max = std::max(gauge_.max, ++gauge_.in);
      gauge_.cv.notify_all();
      gauge_.cv.wait_for(lock, 200ms, [&] { return gauge_.in > 2; });
      --gauge_.in;
    }
    return FakeMailbox::list_pending(limit, state);
  }

 private:
  Gauge& gauge_;
};

class RunnerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("mb_runner_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    config_.store.path = (dir_ / "mb.db").string();
    auto s = Store::open(config_.store.path);  // migrations before the workers
    ASSERT_THAT(s, IsOk());
    store_ = std::move(*s);
  }
  void TearDown() override {
    runner_.reset();
    store_.reset();
    std::filesystem::remove_all(dir_);
  }

  MailboxConfig& add_mailbox(const std::string& name, std::chrono::seconds poll = 120s) {
    MailboxConfig m;
    m.name = name;
    m.user = name + "@example.com";
    m.poll_interval = poll;
    config_.mailboxes.push_back(m);
    servers_[name] = std::make_shared<FakeServer>();
    return config_.mailboxes.back();
  }

  RunnerSetup setup() {
    RunnerSetup s;
    s.config = config_;
    s.make_mailbox = [this](const MailboxConfig& m) -> Result<std::unique_ptr<Mailbox>> {
      std::lock_guard lock(mu_);
      ++made_[m.name];
      if (hanging_.count(m.name)) {
        return std::unique_ptr<Mailbox>(new HangingMailbox(servers_.at(m.name)));
      }
      if (gauge_) {
        return std::unique_ptr<Mailbox>(new GaugedMailbox(servers_.at(m.name), *gauge_));
      }
      if (push_.count(m.name)) {
        return std::unique_ptr<Mailbox>(new PushMailbox(servers_.at(m.name), push_.at(m.name)));
      }
      return std::unique_ptr<Mailbox>(new FakeMailbox(servers_.at(m.name)));
    };
    return s;
  }

  RunnerOptions options() {
    RunnerOptions o;
    o.clock = &clock_;
    o.jitter = [] { return 0.0; };
    o.stop_grace = 200ms;
    o.on_pass = [this](const PassReport& r) {
      std::lock_guard lock(mu_);
      reports_[r.mailbox].push_back(r);
      cv_.notify_all();
    };
    return o;
  }

  void start() {
    runner_ = std::make_unique<Runner>(setup(), options());
    ASSERT_THAT(runner_->start(), IsOk());
  }

  size_t passes(const std::string& name) {
    std::lock_guard lock(mu_);
    return reports_[name].size();
  }
  bool wait_passes(const std::string& name, size_t n) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, kDeadline, [&] { return reports_[name].size() >= n; });
  }
  PassReport last_report(const std::string& name) {
    std::lock_guard lock(mu_);
    return reports_[name].empty() ? PassReport{} : reports_[name].back();
  }
  // Advances the clock in steps, letting every worker (mailboxes + outbox) settle between.
  void advance(Clock::duration total, Clock::duration step, size_t workers) {
    for (Clock::duration done{}; done < total; done += step) {
      clock_.advance(step);
      ASSERT_TRUE(clock_.settle(workers));
    }
  }

  std::filesystem::path dir_;
  Config config_;
  std::unique_ptr<Store> store_;
  ManualClock clock_{*parse_utc("2026-12-07T10:00:00Z")};
  std::map<std::string, std::shared_ptr<FakeServer>> servers_;
  std::set<std::string> hanging_;
  std::map<std::string, std::shared_ptr<PushMailbox::Channel>> push_;
  Gauge* gauge_ = nullptr;
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, std::vector<PassReport>> reports_;
  std::map<std::string, int> made_;
  std::unique_ptr<Runner> runner_;
};

TEST_F(RunnerTest, SyncOnceImportsEveryEnabledMailboxInConfigurationOrder) {
  add_mailbox("b");
  add_mailbox("a");
  add_mailbox("off").enabled = false;
  servers_["a"]->add(mail(1));
  servers_["b"]->add(mail(2));
  servers_["b"]->add(mail(3));
  Runner runner(setup(), options());
  auto reports = runner.sync_once({});
  ASSERT_THAT(reports, IsOk());
  ASSERT_EQ(reports->size(), 2u);
  EXPECT_EQ((*reports)[0].mailbox, "b");
  EXPECT_EQ((*reports)[0].stats.imported, 2);
  EXPECT_EQ((*reports)[1].mailbox, "a");
  EXPECT_EQ((*reports)[1].stats.imported, 1);
  EXPECT_FALSE((*reports)[0].named);
  auto named = runner.sync_once({"nope"});
  EXPECT_EQ(named.status().kind(), ErrorKind::kConfig);
}

TEST_F(RunnerTest, SyncOnceRunsAtMostItsParallelLimitAtOnce) {
  for (int i = 0; i < 6; ++i) add_mailbox("m" + std::to_string(i));
  Gauge gauge;
  gauge_ = &gauge;
  RunnerOptions o = options();
  o.sync_once_parallel = 2;
  Runner runner(setup(), o);
  auto reports = runner.sync_once({});
  ASSERT_THAT(reports, IsOk());
  EXPECT_EQ(reports->size(), 6u);
  EXPECT_EQ(gauge.max, 2);
}

TEST_F(RunnerTest, SyncOnceHonoursThrottleUnlessNamed) {
  add_mailbox("a");
  servers_["a"]->add(mail(1));
  ASSERT_THAT(store_->update_mailbox_state("a", [&](MailboxState& st) {
    st.throttled_until = format_utc(clock_.now() + 10min);
    return Status::Ok();
  }), IsOk());
  Runner runner(setup(), options());
  auto all = runner.sync_once({});
  ASSERT_THAT(all, IsOk());
  EXPECT_THAT((*all)[0].throttled, HasSubstr("not contacted"));
  EXPECT_EQ(made_["a"], 0);
  auto named = runner.sync_once({"a"});
  ASSERT_THAT(named, IsOk());
  EXPECT_THAT((*named)[0].throttled, HasSubstr("synced anyway"));
  EXPECT_EQ((*named)[0].stats.imported, 1);
}

TEST_F(RunnerTest, PollIntervalsAreHonoured) {
  add_mailbox("fast", 60s);
  add_mailbox("slow", 150s);
  start();
  ASSERT_TRUE(wait_passes("fast", 1));
  ASSERT_TRUE(wait_passes("slow", 1));
  ASSERT_TRUE(clock_.settle(3));
  EXPECT_EQ(passes("fast"), 1u);
  advance(59s, 59s, 3);
  EXPECT_EQ(passes("fast"), 1u);
  advance(300s - 59s, 1s, 3);
  EXPECT_EQ(passes("fast"), 6u);  // 0, 60, 120, 180, 240, 300
  EXPECT_EQ(passes("slow"), 3u);  // 0, 150, 300
  auto snap = runner_->snapshot();
  ASSERT_EQ(snap.size(), 2u);
  EXPECT_EQ(snap[0].mailbox, "fast");
  EXPECT_EQ(snap[0].kind, MailboxActivity::Kind::kWaiting);
  EXPECT_EQ(snap[0].next_run, clock_.now() + 60s);
}

TEST_F(RunnerTest, MoreMailIsFetchedAtOnce) {
  add_mailbox("a").max_per_poll = 2;
  for (int i = 0; i < 5; ++i) servers_["a"]->add(mail(i));
  start();
  ASSERT_TRUE(wait_passes("a", 3));
  ASSERT_TRUE(clock_.settle(2));
  EXPECT_EQ(passes("a"), 3u);  // 2 + 2 + 1 without the clock moving
  EXPECT_EQ(last_report("a").stats.imported, 1);
  EXPECT_FALSE(last_report("a").stats.more);
}

TEST_F(RunnerTest, NetworkErrorsBackOffAndASuccessResetsIt) {
  add_mailbox("a", 120s);
  servers_["a"]->network_failures = 3;
  start();
  ASSERT_TRUE(wait_passes("a", 1));
  ASSERT_TRUE(clock_.settle(2));
  EXPECT_EQ(last_report("a").status.kind(), ErrorKind::kNetwork);
  EXPECT_EQ(runner_->snapshot()[0].kind, MailboxActivity::Kind::kBackoff);
  EXPECT_THAT(runner_->snapshot()[0].last_error, HasSubstr("connection refused"));
  advance(7s, 7s, 2);  // first retry after 7.5 s (15 s, equal jitter at 0)
  EXPECT_EQ(passes("a"), 1u);
  advance(1s, 1s, 2);
  EXPECT_EQ(passes("a"), 2u);
  advance(14s, 14s, 2);  // then 15 s
  EXPECT_EQ(passes("a"), 2u);
  advance(1s, 1s, 2);
  EXPECT_EQ(passes("a"), 3u);
  advance(30s, 1s, 2);  // then 30 s; this one succeeds
  EXPECT_EQ(passes("a"), 4u);
  EXPECT_THAT(last_report("a").status, IsOk());
  EXPECT_EQ(runner_->snapshot()[0].last_error, "");
  advance(119s, 119s, 2);  // back on the poll interval
  EXPECT_EQ(passes("a"), 4u);
  advance(1s, 1s, 2);
  EXPECT_EQ(passes("a"), 5u);
}

// A store whose writer queue gives no turn within the wait (another writer holds it) fails
// the pass with kBusy, which is retried on the backoff (7.5 s here), not after the poll
// interval (10 minutes) as a lasting store error would be.
TEST_F(RunnerTest, ABusyStoreIsRetriedOnTheBackoff) {
  add_mailbox("a", 600s);
  servers_["a"]->add(mail(1));
  sqlite3* raw = nullptr;
  ASSERT_EQ(sqlite3_open(config_.store.path.c_str(), &raw), SQLITE_OK);
  std::unique_ptr<sqlite3, int (*)(sqlite3*)> db(raw, sqlite3_close_v2);
  internal::set_writer_gate_wait_for_testing(100ms);
  struct Restore {
    ~Restore() { internal::set_writer_gate_wait_for_testing(0ms); }
  } restore;
  auto holder = internal::Transaction::begin_immediate(db.get());
  ASSERT_THAT(holder, IsOk());
  start();
  ASSERT_TRUE(wait_passes("a", 1));
  EXPECT_EQ(last_report("a").status.kind(), ErrorKind::kBusy);
  EXPECT_THAT(last_report("a").status.message(), HasSubstr("past the 100 ms a turn may take"));
  ASSERT_THAT(holder->commit(), IsOk());
  ASSERT_TRUE(clock_.settle(2));
  EXPECT_EQ(runner_->snapshot()[0].kind, MailboxActivity::Kind::kBackoff);
  EXPECT_EQ(runner_->snapshot()[0].next_run, clock_.now() + 7500ms);
  advance(7s, 7s, 2);
  EXPECT_EQ(passes("a"), 1u);
  advance(1s, 1s, 2);
  ASSERT_EQ(passes("a"), 2u);
  EXPECT_THAT(last_report("a").status, IsOk());
  EXPECT_EQ(last_report("a").stats.imported, 1);
}

TEST_F(RunnerTest, ThrottledUntilIsRespected) {
  add_mailbox("a");
  ASSERT_THAT(store_->update_mailbox_state("a", [&](MailboxState& st) {
    st.throttled_until = format_utc(clock_.now() + 10min);
    return Status::Ok();
  }), IsOk());
  start();
  ASSERT_TRUE(clock_.settle(2));
  EXPECT_EQ(runner_->snapshot()[0].kind, MailboxActivity::Kind::kThrottled);
  advance(599s, 599s, 2);
  EXPECT_EQ(passes("a"), 0u);
  advance(1s, 1s, 2);
  EXPECT_EQ(passes("a"), 1u);
}

TEST_F(RunnerTest, AuthFailedMailboxWaitsForItsProbe) {
  add_mailbox("a");
  config_.monitor.auth_retry_interval = 1h;
  ASSERT_THAT(store_->update_mailbox_state("a", [&](MailboxState& st) {
    st.state = MailboxStatus::kAuthFailed;
    st.consecutive_auth_failures = 3;
    st.last_run = format_utc(clock_.now() - 10min);
    return Status::Ok();
  }), IsOk());
  start();
  ASSERT_TRUE(clock_.settle(2));
  EXPECT_EQ(runner_->snapshot()[0].kind, MailboxActivity::Kind::kPaused);
  EXPECT_EQ(runner_->snapshot()[0].next_run, clock_.now() + 50min);
  advance(49min, 1min, 2);
  EXPECT_EQ(passes("a"), 0u);
  EXPECT_EQ(made_["a"], 0);
  advance(1min, 1min, 2);
  EXPECT_EQ(passes("a"), 1u);  // the probe: it signs in and polling resumes
  auto st = store_->get_mailbox_state("a");
  ASSERT_THAT(st, IsOk());
  EXPECT_EQ(st->state, MailboxStatus::kOk);
}

TEST_F(RunnerTest, AHangingMailboxDelaysNoneOfTheOthersAndStopEndsIt) {
  for (int i = 0; i < 20; ++i) {
    add_mailbox("m" + std::to_string(i));
    servers_["m" + std::to_string(i)]->add(mail(i));
  }
  hanging_.insert("m0");
  start();
  for (int i = 1; i < 20; ++i) ASSERT_TRUE(wait_passes("m" + std::to_string(i), 1));
  ASSERT_TRUE(clock_.settle(20));  // 19 mailboxes and the outbox; m0 hangs in fetch
  EXPECT_EQ(passes("m0"), 0u);
  EXPECT_EQ(runner_->snapshot()[0].kind, MailboxActivity::Kind::kPolling);
  const auto began = std::chrono::steady_clock::now();
  runner_->stop();
  EXPECT_LT(std::chrono::steady_clock::now() - began, 200ms + 1s);
  ASSERT_EQ(passes("m0"), 1u);
  EXPECT_EQ(last_report("m0").status.kind(), ErrorKind::kCancelled);
  // A cancelled pass is not the server's failure: nothing is recorded.
  auto st = store_->get_mailbox_state("m0");
  ASSERT_THAT(st, IsOk());
  EXPECT_EQ(st->last_error, "");
  EXPECT_EQ(st->last_run, "");
  for (const auto& a : runner_->snapshot()) EXPECT_EQ(a.kind, MailboxActivity::Kind::kStopped);
}

TEST_F(RunnerTest, PushNewsRunsAPassAtOnceAndKeepsTheConnection) {
  add_mailbox("a", 600s);
  push_["a"] = std::make_shared<PushMailbox::Channel>();
  start();
  ASSERT_TRUE(wait_passes("a", 1));
  auto channel = push_["a"];
  {
    std::unique_lock lock(channel->mu);
    ASSERT_TRUE(channel->cv.wait_for(lock, kDeadline, [&] { return channel->waiting == 1; }));
  }
  EXPECT_EQ(runner_->snapshot()[0].kind, MailboxActivity::Kind::kIdle);
  servers_["a"]->add(mail(1));  // the worker is blocked in wait_for_change
  channel->notify();
  ASSERT_TRUE(wait_passes("a", 2));
  EXPECT_EQ(last_report("a").stats.imported, 1);
  EXPECT_EQ(made_["a"], 1);  // one connection, kept between passes
  runner_->stop();
  EXPECT_EQ(channel->closes, 1);
}

TEST_F(RunnerTest, ReloadAddsRemovesAndChangesMailboxes) {
  add_mailbox("keep", 60s);
  add_mailbox("drop", 60s);
  add_mailbox("change", 60s);
  start();
  for (auto n : {"keep", "drop", "change"}) ASSERT_TRUE(wait_passes(n, 1));
  ASSERT_TRUE(clock_.settle(4));
  config_.mailboxes.erase(config_.mailboxes.begin() + 1);  // drop
  config_.mailboxes[1].poll_interval = 30s;                 // change
  config_.mailboxes[0].line_no = 99;                        // moved, not changed
  MailboxConfig fresh;
  fresh.name = "fresh";
  fresh.user = "fresh@example.com";
  config_.mailboxes.push_back(fresh);
  servers_["fresh"] = std::make_shared<FakeServer>();
  runner_->reload(setup());
  ASSERT_TRUE(wait_passes("change", 2));  // restarted: its first pass at once
  ASSERT_TRUE(wait_passes("fresh", 1));
  ASSERT_TRUE(clock_.settle(4));
  EXPECT_EQ(passes("keep"), 1u);  // undisturbed
  EXPECT_EQ(passes("drop"), 1u);
  auto snap = runner_->snapshot();
  ASSERT_EQ(snap.size(), 3u);
  EXPECT_EQ(snap[0].mailbox, "keep");
  EXPECT_EQ(snap[1].mailbox, "change");
  EXPECT_EQ(snap[2].mailbox, "fresh");
  advance(30s, 30s, 4);
  EXPECT_EQ(passes("change"), 3u);  // on its new interval
  EXPECT_EQ(passes("keep"), 1u);
  advance(30s, 30s, 4);
  EXPECT_EQ(passes("keep"), 2u);
  EXPECT_EQ(passes("drop"), 1u);
}

TEST_F(RunnerTest, OutboxWorkerSendsADueRowAndRespectsPause) {
  add_mailbox("support");
  SenderConfig out;
  out.name = "outgoing";
  out.user = "relay";
  config_.senders = {out};
  config_.tracking.mailbox = "support";
  config_.tracking.sender = "outgoing";
  config_.users = {{"ann@contoso.example", "Ann Tech", "technician"}};
  Ticket t;
  t.project = "IT";
  t.subject = "Printer on fire";
  t.requester = "bob@example.com";
  Note first;
  first.author = "bob@example.com";
  first.text = "help";
  auto ticket = store_->create_ticket(t, first);
  ASSERT_THAT(ticket, IsOk());
  const std::string secret = "0123456789abcdef0123456789abcdef";
  OutboxOptions oo;
  oo.now = [this] { return clock_.now(); };
  Outbox queue(*store_, config_, secret, oo);
  TrackedMail m;
  m.ticket_id = *ticket;
  m.user = "ann@contoso.example";
  m.to = {{"Bob", "bob@example.com"}};
  m.subject = "Your printer";
  m.text = "Is it fixed?";
  auto row = queue.queue_tracked(m);
  ASSERT_THAT(row, IsOk());
  row->next_attempt_at = format_utc(clock_.now() + 5s);  // due in five seconds
  ASSERT_THAT(store_->update_outbox(*row, OutboxState::kQueued), IsOk());

  std::atomic<int> sent{0};
  RunnerSetup s = setup();
  s.tracking_secret = secret;
  s.make_senders = [&sent](Store&) -> SenderFactory {
    return [&sent](const std::string&) -> Result<std::unique_ptr<Sender>> {
      return std::unique_ptr<Sender>(new CountingSender(sent));
    };
  };
  runner_ = std::make_unique<Runner>(std::move(s), options());
  ASSERT_THAT(runner_->start(), IsOk());
  ASSERT_TRUE(clock_.settle(2));
  advance(4s, 1s, 2);
  EXPECT_EQ(sent.load(), 0);  // not due yet
  ASSERT_THAT(store_->set_outbox_paused(true), IsOk());
  advance(3s, 1s, 2);
  EXPECT_EQ(sent.load(), 0);  // due, but paused
  ASSERT_THAT(store_->set_outbox_paused(false), IsOk());
  advance(1s, 1s, 2);  // noticed within a second
  EXPECT_EQ(sent.load(), 1);
  auto after = store_->get_outbox(row->id);
  ASSERT_THAT(after, IsOk());
  ASSERT_TRUE(after->has_value());
  EXPECT_EQ((*after)->state, OutboxState::kSent);
}

TEST_F(RunnerTest, StopBetweenMessagesCommitsWhatIsInHand) {
  add_mailbox("a");
  for (int i = 0; i < 4; ++i) servers_["a"]->add(mail(i));
  FakeMailbox mbx(servers_["a"]);
  SyncOptions opts;
  int started = 0;
  opts.fetch_batch = 3;
  opts.stop_requested = [&] { return ++started > 3; };  // before the batch, m1, m2; not m3
  auto r = sync_mailbox(mbx, config_.mailboxes[0], config_, *store_, opts);
  EXPECT_EQ(r.status().kind(), ErrorKind::kCancelled);
  // Two messages committed and marked read; the others untouched for the next run.
  EXPECT_EQ(servers_["a"]->describe(), "7:1 INBOX seen\n7:2 INBOX seen\n7:3 INBOX\n7:4 INBOX\n");
  auto pending = store_->pending_post_actions("a");
  ASSERT_THAT(pending, IsOk());
  EXPECT_TRUE(pending->empty());
  auto st = store_->get_mailbox_state("a");
  ASSERT_THAT(st, IsOk());
  EXPECT_EQ(st->last_run, "");  // nothing recorded for a stopped pass
  auto again = sync_mailbox(mbx, config_.mailboxes[0], config_, *store_);
  ASSERT_THAT(again, IsOk());
  EXPECT_EQ(again->imported, 2);
}

}  // namespace
}  // namespace mb
