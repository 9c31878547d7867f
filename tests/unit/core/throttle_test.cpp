// File: tests/unit/core/throttle_test.cpp — sync_mailbox() and a server that asks for a pause
// (Graph 429/503 Retry-After, POP3 [IN-USE]): throttled_until is recorded, later passes do
// not contact the mailbox before it unless told to, and the pause ends with it (injected
// clock, no sleeping).
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "core/ingest.h"
#include "core/monitor.h"
#include "core/utc.h"
#include "tests/status_matchers.h"
#include "tests/unit/core/fake_mailbox.h"

namespace mb {
namespace {
using ::mb::testing::FakeMailbox;
using ::mb::testing::FakeServer;
using ::mb::testing::IsOk;
using ::mb::testing::StatusIs;
using ::testing::HasSubstr;
using namespace std::chrono_literals;

class ThrottleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("mb_throttle_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    mcfg_.name = "support";
    mcfg_.type = ConnectorType::kGraph;
    mcfg_.user = "support@example.com";
    mcfg_.project = "IT";
    server_ = std::make_shared<FakeServer>();
    now_ = *parse_utc("2026-11-23T08:00:00Z");
    auto s = Store::open((dir_ / "mb.db").string());
    ASSERT_THAT(s, IsOk());
    store_ = std::move(*s);
  }
  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(dir_);
  }
  Result<SyncStats> sync(bool named = false) {
    SyncOptions o;
    o.monitor.now = [this] { return now_; };
    o.ignore_throttle = named;
    FakeMailbox mbx(server_);
    return sync_mailbox(mbx, mcfg_, config_, *store_, o);
  }
  MailboxState state() {
    auto st = store_->get_mailbox_state("support");
    EXPECT_THAT(st, IsOk());
    return st.ok() ? *st : MailboxState{};
  }
  static Status throttled(std::chrono::seconds after) {
    return Status(ErrorKind::kThrottled, "GET messages delta throttled by Microsoft Graph",
                  ErrorScope::kMailbox)
        .with_retry_after(after);
  }

  std::filesystem::path dir_;
  MailboxConfig mcfg_;
  Config config_;
  std::shared_ptr<FakeServer> server_;
  std::unique_ptr<Store> store_;
  Clock::time_point now_;
};

TEST_F(ThrottleTest, RetryAfterSetsThrottledUntilAndLaterPassesDoNotContactTheServer) {
  server_->add("Subject: hi\r\nMessage-ID: <a@x>\r\n\r\nbody\r\n");
  server_->fail_next_list = throttled(300s);
  EXPECT_THAT(sync(), StatusIs(ErrorKind::kThrottled, HasSubstr("throttled")));
  EXPECT_EQ(state().throttled_until, "2026-11-23T08:05:00Z");
  EXPECT_EQ(server_->list_calls, 1);

  now_ += 120s;
  auto early = sync();
  ASSERT_THAT(early, StatusIs(ErrorKind::kThrottled,
                              HasSubstr("not to be contacted until 2026-11-23T08:05:00Z")));
  ASSERT_TRUE(early.status().retry_after().has_value());
  EXPECT_EQ(*early.status().retry_after(), 180s);
  EXPECT_EQ(server_->list_calls, 1);  // not contacted
  EXPECT_EQ(state().throttled_until, "2026-11-23T08:05:00Z");

  now_ += 181s;
  auto later = sync();
  ASSERT_THAT(later, IsOk());
  EXPECT_EQ(later->tickets, 1);
  EXPECT_EQ(server_->list_calls, 2);
  EXPECT_EQ(state().throttled_until, "");
}

TEST_F(ThrottleTest, ANamedMailboxIsContactedDuringItsPause) {
  server_->add("Subject: hi\r\nMessage-ID: <a@x>\r\n\r\nbody\r\n");
  server_->fail_next_list = throttled(3600s);
  EXPECT_THAT(sync(), StatusIs(ErrorKind::kThrottled, HasSubstr("throttled")));
  now_ += 60s;
  auto named = sync(/*named=*/true);
  ASSERT_THAT(named, IsOk());
  EXPECT_EQ(named->tickets, 1);
  EXPECT_EQ(state().throttled_until, "");
}

TEST_F(ThrottleTest, AThrottleWithoutRetryAfterRecordsNoPause) {
  server_->fail_next_list = Status(ErrorKind::kThrottled, "busy", ErrorScope::kMailbox);
  EXPECT_THAT(sync(), StatusIs(ErrorKind::kThrottled, HasSubstr("busy")));
  EXPECT_EQ(state().throttled_until, "");
  now_ += 1s;
  EXPECT_THAT(sync(), IsOk());
  EXPECT_EQ(server_->list_calls, 2);
}

}  // namespace
}  // namespace mb
