// File: tests/unit/core/monitor_test.cpp — core/monitor: counting authentication failures
// across runs, the one alert ticket per failure episode, pausing with a sign-in probe per
// interval (injected clock), resuming with a note, and atomicity against crashes and a
// concurrent pass.
#include "core/monitor.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "core/ingest.h"
#include "core/utc.h"
#include "tests/status_matchers.h"
#include "tests/unit/core/fake_mailbox.h"

namespace mb {
namespace {
using ::mb::testing::FakeMailbox;
using ::mb::testing::FakeServer;
using ::mb::testing::IsOk;
using ::mb::testing::StatusIs;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;
using namespace std::chrono_literals;

std::string mail(const std::string& subject) {
  return "From: Alice <alice@example.com>\r\nTo: support@example.com\r\nSubject: " + subject +
         "\r\nMessage-ID: <" + subject + "@example.com>\r\n\r\nbody\r\n";
}

Status auth_error() {
  return Status(ErrorKind::kAuth, "LOGIN failed: [AUTHENTICATIONFAILED] Authentication failed.",
                ErrorScope::kConnection);
}

class MonitorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("mb_monitor_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    mcfg_.name = "support";
    mcfg_.type = ConnectorType::kImap;
    mcfg_.host = "imap.example.com";
    mcfg_.user = "support@example.com";
    mcfg_.project = "IT";
    server_ = std::make_shared<FakeServer>();
    now_ = *parse_utc("2026-11-23T08:00:00Z");
    store_ = open_store();
  }
  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(dir_);
  }

  std::unique_ptr<Store> open_store() {
    auto s = Store::open((dir_ / "mb.db").string());
    EXPECT_THAT(s, IsOk());
    return s.ok() ? std::move(*s) : nullptr;
  }
  SyncOptions options() {
    SyncOptions o;
    o.monitor.now = [this] { return now_; };
    return o;
  }
  Result<SyncStats> sync() {
    FakeMailbox mbx(server_);
    return sync_mailbox(mbx, mcfg_, config_, *store_, options());
  }
  Result<SyncStats> failing_sync(Status s = auth_error()) {
    server_->fail_next_list = std::move(s);
    return sync();
  }
  MailboxState state() {
    auto st = store_->get_mailbox_state("support");
    EXPECT_THAT(st, IsOk());
    return st.ok() ? *st : MailboxState{};
  }
  std::vector<Ticket> tickets() {
    std::vector<Ticket> out;
    auto list = store_->list_tickets();
    EXPECT_THAT(list, IsOk());
    if (!list.ok()) return out;
    for (const auto& t : *list) {
      auto full = store_->get_ticket(t.id);
      EXPECT_THAT(full, IsOk());
      if (full.ok() && *full) out.push_back(**full);
    }
    return out;
  }
  std::vector<Ticket> alerts() {
    std::vector<Ticket> out;
    for (auto& t : tickets()) {
      if (t.source == "System - Email Monitor") out.push_back(std::move(t));
    }
    return out;
  }
  // Three failed passes, an hour apart: the mailbox is auth-failed with one alert ticket.
  void fail_three_times() {
    for (int i = 0; i < 3; ++i) {
      EXPECT_THAT(failing_sync(), StatusIs(ErrorKind::kAuth, HasSubstr("LOGIN failed")));
      now_ += 1h;
    }
    ASSERT_EQ(to_string(state().state), "auth-failed");
  }

  std::filesystem::path dir_;
  Config config_;
  MailboxConfig mcfg_;
  std::shared_ptr<FakeServer> server_;
  std::unique_ptr<Store> store_;
  Clock::time_point now_;
};

TEST_F(MonitorTest, TwoFailuresAreCountedButRaiseNoAlert) {
  for (int i = 0; i < 2; ++i) {
    EXPECT_THAT(failing_sync(), StatusIs(ErrorKind::kAuth, HasSubstr("LOGIN failed")));
  }
  MailboxState st = state();
  EXPECT_EQ(st.consecutive_auth_failures, 2);
  EXPECT_EQ(to_string(st.state), "error");
  EXPECT_EQ(st.alert_ticket_id, 0);
  EXPECT_TRUE(tickets().empty());
  EXPECT_EQ(server_->list_calls, 2);
}

TEST_F(MonitorTest, ThirdFailureOpensExactlyOneAlertFromTheDefaultTemplate) {
  fail_three_times();
  auto all = alerts();
  ASSERT_EQ(all.size(), 1u);
  ASSERT_EQ(tickets().size(), 1u);
  const Ticket& t = all[0];
  EXPECT_EQ(t.subject, "Mailbox support cannot sign in");
  EXPECT_EQ(t.project, "IT");
  EXPECT_EQ(t.requester, "system");
  EXPECT_EQ(t.mailbox, "support");
  EXPECT_EQ(t.status, "open");
  ASSERT_EQ(t.notes.size(), 1u);
  EXPECT_EQ(t.notes[0].kind, "system");
  EXPECT_THAT(t.notes[0].text,
              AllOf(HasSubstr("support"), HasSubstr("support@example.com"),
                    HasSubstr("imap.example.com"), HasSubstr("[AUTHENTICATIONFAILED]"),
                    HasSubstr("3 consecutive authentication failures"),
                    HasSubstr("mailbridge test-connection support")));
  MailboxState st = state();
  EXPECT_EQ(to_string(st.state), "auth-failed");
  EXPECT_EQ(st.consecutive_auth_failures, 3);
  EXPECT_EQ(st.alert_ticket_id, t.id);
}

TEST_F(MonitorTest, PausedMailboxIsNotContactedAndNothingIsWritten) {
  fail_three_times();
  const MailboxState before = state();
  const int lists = server_->list_calls;
  now_ = *parse_utc(before.last_run) + 30min;
  auto r = sync();
  EXPECT_THAT(r, StatusIs(ErrorKind::kAuth,
                          AllOf(HasSubstr("paused after 3 authentication failures (alert "
                                          "ticket #" + std::to_string(before.alert_ticket_id) +
                                          ")"),
                                HasSubstr("run `mailbridge test-connection support`"))));
  EXPECT_EQ(server_->list_calls, lists);
  EXPECT_EQ(tickets().size(), 1u);
  MailboxState after = state();
  EXPECT_EQ(after.last_run, before.last_run);
  EXPECT_EQ(after.consecutive_auth_failures, 3);
  EXPECT_EQ(to_string(after.state), "auth-failed");
}

TEST_F(MonitorTest, NetworkAndTlsErrorsNeverCount) {
  for (int i = 0; i < 5; ++i) {
    EXPECT_THAT(failing_sync(Status(ErrorKind::kNetwork, "connection refused")),
                StatusIs(ErrorKind::kNetwork, HasSubstr("refused")));
  }
  EXPECT_THAT(failing_sync(Status(ErrorKind::kTls, "certificate verify failed")),
              StatusIs(ErrorKind::kTls, HasSubstr("certificate")));
  EXPECT_EQ(state().consecutive_auth_failures, 0);
  // Interleaved with authentication failures they neither count nor reset.
  EXPECT_THAT(failing_sync(), StatusIs(ErrorKind::kAuth, HasSubstr("LOGIN")));
  EXPECT_THAT(failing_sync(Status(ErrorKind::kNetwork, "timed out")),
              StatusIs(ErrorKind::kNetwork, HasSubstr("timed out")));
  EXPECT_THAT(failing_sync(), StatusIs(ErrorKind::kAuth, HasSubstr("LOGIN")));
  EXPECT_EQ(state().consecutive_auth_failures, 2);
  EXPECT_EQ(to_string(state().state), "error");
  EXPECT_TRUE(tickets().empty());
}

TEST_F(MonitorTest, ProbesOncePerIntervalAndResumesWithANote) {
  config_.monitor.auth_retry_interval = 1h;
  fail_three_times();
  const int64_t alert = state().alert_ticket_id;
  const Clock::time_point last = *parse_utc(state().last_run);
  server_->add(mail("waiting-while-paused"));

  now_ = last + 59min;
  EXPECT_THAT(sync(), StatusIs(ErrorKind::kAuth, HasSubstr("paused")));
  EXPECT_EQ(server_->list_calls, 3);

  // The probe is a normal pass; failing again counts but opens nothing new.
  now_ = last + 61min;
  EXPECT_THAT(failing_sync(), StatusIs(ErrorKind::kAuth, HasSubstr("LOGIN failed")));
  EXPECT_EQ(server_->list_calls, 4);
  EXPECT_EQ(state().consecutive_auth_failures, 4);
  EXPECT_EQ(to_string(state().state), "auth-failed");
  EXPECT_EQ(alerts().size(), 1u);

  // The interval counts from that probe, not from the alert.
  now_ = last + 61min + 59min;
  EXPECT_THAT(sync(), StatusIs(ErrorKind::kAuth, HasSubstr("paused after 4")));
  EXPECT_EQ(server_->list_calls, 4);

  // A network error during a probe leaves the mailbox paused.
  now_ = last + 61min + 61min;
  EXPECT_THAT(failing_sync(Status(ErrorKind::kNetwork, "connection reset")),
              StatusIs(ErrorKind::kNetwork, HasSubstr("reset")));
  EXPECT_EQ(to_string(state().state), "auth-failed");
  EXPECT_EQ(state().consecutive_auth_failures, 4);

  now_ += 2h;
  auto ok = sync();
  ASSERT_THAT(ok, IsOk());
  EXPECT_EQ(ok->tickets, 1);  // the mail that waited is imported by the probe's pass
  MailboxState st = state();
  EXPECT_EQ(to_string(st.state), "ok");
  EXPECT_EQ(st.consecutive_auth_failures, 0);
  EXPECT_EQ(st.alert_ticket_id, 0);
  auto t = store_->get_ticket(alert);
  ASSERT_THAT(t, IsOk());
  ASSERT_TRUE(t->has_value());
  ASSERT_EQ((*t)->notes.size(), 2u);
  EXPECT_EQ((*t)->notes[1].kind, "system");
  EXPECT_THAT((*t)->notes[1].text, AllOf(HasSubstr("Sign-in succeeded again at " +
                                                   format_utc(now_)),
                                         HasSubstr("polling resumed")));
  // Resumed: the next pass polls without waiting for a probe.
  now_ += 1min;
  EXPECT_THAT(sync(), IsOk());
  EXPECT_EQ(alerts().size(), 1u);
}

TEST_F(MonitorTest, TestConnectionSignInResumesOnceAndANewEpisodeGetsANewAlert) {
  fail_three_times();
  const int64_t first = state().alert_ticket_id;
  auto rec = record_sign_in(*store_, mcfg_, {});
  ASSERT_THAT(rec, IsOk());
  EXPECT_TRUE(rec->resumed);
  EXPECT_EQ(rec->alert_ticket_id, first);
  EXPECT_EQ(to_string(state().state), "ok");
  EXPECT_EQ(state().consecutive_auth_failures, 0);
  // Nothing left to resume: no second note.
  auto again = record_sign_in(*store_, mcfg_, {});
  ASSERT_THAT(again, IsOk());
  EXPECT_FALSE(again->resumed);
  auto t = store_->get_ticket(first);
  ASSERT_THAT(t, IsOk());
  ASSERT_TRUE(t->has_value());
  ASSERT_EQ((*t)->notes.size(), 2u);
  EXPECT_THAT((*t)->notes[1].text, HasSubstr("mailbridge test-connection"));

  EXPECT_THAT(sync(), IsOk());  // polled right away
  fail_three_times();
  auto all = alerts();
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(state().alert_ticket_id, all[1].id);
  EXPECT_NE(all[1].id, first);
}

TEST_F(MonitorTest, SignInResetsTheCountOfAMailboxThatHasNotFailedEnough) {
  EXPECT_THAT(failing_sync(), StatusIs(ErrorKind::kAuth, HasSubstr("LOGIN")));
  EXPECT_THAT(failing_sync(), StatusIs(ErrorKind::kAuth, HasSubstr("LOGIN")));
  auto rec = record_sign_in(*store_, mcfg_, {});
  ASSERT_THAT(rec, IsOk());
  EXPECT_FALSE(rec->resumed);
  EXPECT_EQ(state().consecutive_auth_failures, 0);
  EXPECT_THAT(failing_sync(), StatusIs(ErrorKind::kAuth, HasSubstr("LOGIN")));
  EXPECT_THAT(failing_sync(), StatusIs(ErrorKind::kAuth, HasSubstr("LOGIN")));
  EXPECT_TRUE(tickets().empty());
}

TEST_F(MonitorTest, CrashBetweenCountingAndTheAlertCannotMakeTwo) {
  EXPECT_THAT(failing_sync(), StatusIs(ErrorKind::kAuth, HasSubstr("LOGIN")));
  EXPECT_THAT(failing_sync(), StatusIs(ErrorKind::kAuth, HasSubstr("LOGIN")));
  // The alert ticket is inserted, then the process dies before the state is written.
  store_->set_fault_hook_for_testing([](std::string_view step) {
    return step == "mailbox-state" ? Status(ErrorKind::kInternal, "killed") : Status::Ok();
  });
  EXPECT_THAT(failing_sync(), StatusIs(ErrorKind::kAuth, HasSubstr("LOGIN")));
  store_ = open_store();  // restart
  EXPECT_TRUE(tickets().empty());
  EXPECT_EQ(state().consecutive_auth_failures, 2);
  EXPECT_EQ(to_string(state().state), "error");

  EXPECT_THAT(failing_sync(), StatusIs(ErrorKind::kAuth, HasSubstr("LOGIN")));
  store_ = open_store();
  EXPECT_THAT(failing_sync(), StatusIs(ErrorKind::kAuth, HasSubstr("paused")));
  EXPECT_EQ(alerts().size(), 1u);
  EXPECT_EQ(state().consecutive_auth_failures, 3);
}

// A Mailbox whose sign-in fails only after another process's whole pass has run (and
// failed) in between: the second writer must see the first one's count and alert.
class RacingMailbox : public FakeMailbox {
 public:
  RacingMailbox(std::shared_ptr<FakeServer> server, std::function<void()> other)
      : FakeMailbox(std::move(server)), other_(std::move(other)) {}
  Result<Pending> list_pending(size_t limit, const std::string& state) override {
    other_();
    return FakeMailbox::list_pending(limit, state);
  }

 private:
  std::function<void()> other_;
};

TEST_F(MonitorTest, TwoConcurrentFailingPassesOpenOneAlert) {
  EXPECT_THAT(failing_sync(), StatusIs(ErrorKind::kAuth, HasSubstr("LOGIN")));
  EXPECT_THAT(failing_sync(), StatusIs(ErrorKind::kAuth, HasSubstr("LOGIN")));
  auto other_store = open_store();  // the other process's connection
  auto other_server = std::make_shared<FakeServer>();
  RacingMailbox racing(server_, [&] {
    FakeMailbox other(other_server);
    other_server->fail_next_list = auth_error();
    EXPECT_THAT(sync_mailbox(other, mcfg_, config_, *other_store, options()),
                StatusIs(ErrorKind::kAuth, HasSubstr("LOGIN")));
  });
  server_->fail_next_list = auth_error();
  EXPECT_THAT(sync_mailbox(racing, mcfg_, config_, *store_, options()),
              StatusIs(ErrorKind::kAuth, HasSubstr("LOGIN")));
  EXPECT_EQ(alerts().size(), 1u);
  MailboxState st = state();
  EXPECT_EQ(st.consecutive_auth_failures, 4);
  EXPECT_EQ(to_string(st.state), "auth-failed");
  EXPECT_EQ(st.alert_ticket_id, alerts().at(0).id);
}

TEST_F(MonitorTest, ConfiguredTemplateThresholdAndScrubbing) {
  config_.monitor.auth_failure_threshold = 1;
  config_.monitor.alert.project = "Ops";
  config_.monitor.alert.subject = "{mailbox} ({user}) down after {failures}";
  config_.monitor.alert.body = "host={host} error={error}";
  config_.monitor.alert.requester = "ops@example.com";
  SyncOptions o = options();
  o.monitor.scrub = [](std::string_view text) {
    std::string s(text);
    for (size_t p; (p = s.find("s3cret-pw")) != std::string::npos;) s.replace(p, 9, "<redacted>");
    return s;
  };
  server_->fail_next_list = Status(ErrorKind::kAuth, "server echoed s3cret-pw back");
  FakeMailbox mbx(server_);
  EXPECT_THAT(sync_mailbox(mbx, mcfg_, config_, *store_, o),
              StatusIs(ErrorKind::kAuth, HasSubstr("echoed")));
  auto all = alerts();
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].project, "Ops");
  EXPECT_EQ(all[0].subject, "support (support@example.com) down after 1");
  EXPECT_EQ(all[0].requester, "ops@example.com");
  ASSERT_EQ(all[0].notes.size(), 1u);
  EXPECT_EQ(all[0].notes[0].text,
            "host=imap.example.com error=server echoed <redacted> back");
  EXPECT_THAT(all[0].notes[0].text, Not(HasSubstr("s3cret-pw")));
}

TEST(BeforePassTest, PollsUnlessAuthFailedAndProbesWhenTheLastAttemptIsUnknown) {
  MonitorConfig cfg;
  const Clock::time_point now = *parse_utc("2026-11-23T08:00:00Z");
  MailboxState st;
  st.name = "support";
  st.state = MailboxStatus::kError;
  st.last_run = "2026-11-23T07:59:00Z";
  EXPECT_EQ(before_pass(st, cfg, now).kind, PassPlan::Kind::kPoll);
  st.state = MailboxStatus::kAuthFailed;
  PassPlan paused = before_pass(st, cfg, now);
  EXPECT_EQ(paused.kind, PassPlan::Kind::kPaused);
  EXPECT_EQ(format_utc(paused.next_probe), "2026-11-23T08:59:00Z");
  st.last_run = "garbage";
  EXPECT_EQ(before_pass(st, cfg, now).kind, PassPlan::Kind::kProbe);
}

TEST(UtcTest, RoundTripsAndRejectsOtherFormats) {
  auto t = parse_utc("2026-02-28T23:59:58Z");
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(format_utc(*t + 2s), "2026-03-01T00:00:00Z");
  EXPECT_FALSE(parse_utc("2026-02-28 23:59:58").has_value());
  EXPECT_FALSE(parse_utc("2026-02-28T23:59:58Zjunk").has_value());
  EXPECT_FALSE(parse_utc("").has_value());
}

}  // namespace
}  // namespace mb
