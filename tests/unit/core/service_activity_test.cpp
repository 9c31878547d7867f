// File: tests/unit/core/service_activity_test.cpp — store v6's service_activity table and
// core/service_activity's writer: rows replaced per mailbox, writes only on a change of
// activity, batched, removed mailboxes deleted, a new service starts from an empty table.
#include "core/service_activity.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "core/store.h"
#include "tests/status_matchers.h"

namespace mb {
namespace {
using ::mb::testing::IsOk;
using ::testing::ElementsAre;
using ::testing::Field;
using ::testing::IsEmpty;
using ::testing::SizeIs;

class ServiceActivityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("mb_activity_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    path_ = (dir_ / "mb.db").string();
    auto s = Store::open(path_);
    ASSERT_THAT(s, IsOk());
    store_ = std::move(*s);
  }
  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(dir_);
  }
  static ServiceActivityRecord rec(const std::string& mailbox, const std::string& activity,
                                   const std::string& next_run = "",
                                   const std::string& error = "") {
    return {mailbox, activity, next_run, error, "2026-12-07T10:00:00Z", 0};
  }
  std::vector<ServiceActivityRecord> rows() {
    auto r = store_->service_activities();
    EXPECT_THAT(r, IsOk());
    return r.ok() ? *r : std::vector<ServiceActivityRecord>{};
  }
  // A writer that only writes when stopped: each test decides when a batch is written.
  std::unique_ptr<ServiceActivityWriter> writer() {
    auto w = ServiceActivityWriter::start(path_, 4242, {std::chrono::hours(1)});
    EXPECT_THAT(w, IsOk());
    return w.ok() ? std::move(*w) : nullptr;
  }

  std::filesystem::path dir_;
  std::string path_;
  std::unique_ptr<Store> store_;
};

TEST_F(ServiceActivityTest, StoreReplacesRowsPerMailboxAndDeletes) {
  ASSERT_THAT(store_->put_service_activities({rec("a", "polling"), rec("b", "waiting", "2026-12-07T10:02:00Z")}),
              IsOk());
  ASSERT_THAT(store_->put_service_activities({rec("a", "backoff", "2026-12-07T10:05:00Z", "connection refused")}),
              IsOk());
  auto all = rows();
  ASSERT_THAT(all, SizeIs(2));
  EXPECT_EQ(all[0].mailbox, "a");
  EXPECT_EQ(all[0].activity, "backoff");
  EXPECT_EQ(all[0].next_run, "2026-12-07T10:05:00Z");
  EXPECT_EQ(all[0].last_error, "connection refused");
  EXPECT_EQ(all[1].activity, "waiting");
  ASSERT_THAT(store_->delete_service_activity("a"), IsOk());
  EXPECT_THAT(rows(), ElementsAre(Field(&ServiceActivityRecord::mailbox, "b")));
  ASSERT_THAT(store_->delete_service_activity(""), IsOk());
  EXPECT_THAT(rows(), IsEmpty());
}

TEST_F(ServiceActivityTest, WriterStartsFromAnEmptyTableAndWritesOnStop) {
  ASSERT_THAT(store_->put_service_activities({rec("old", "idle")}), IsOk());
  auto w = writer();
  ASSERT_TRUE(w);
  EXPECT_THAT(rows(), IsEmpty());  // what an earlier service left is gone
  w->record(rec("a", "polling"));
  w->stop();
  auto all = rows();
  ASSERT_THAT(all, SizeIs(1));
  EXPECT_EQ(all[0].activity, "polling");
  EXPECT_EQ(all[0].pid, 4242);
  EXPECT_EQ(w->writes(), 1u);
}

TEST_F(ServiceActivityTest, OnlyAChangeOfActivityOrErrorIsWrittenAndTheLatestWins) {
  auto w = writer();
  ASSERT_TRUE(w);
  w->record(rec("a", "waiting", "2026-12-07T10:02:00Z"));
  w->record(rec("a", "waiting", "2026-12-07T10:04:00Z"));  // same activity: dropped
  w->record(rec("b", "polling"));
  w->record(rec("b", "idle"));                             // latest of b wins
  w->stop();
  auto all = rows();
  ASSERT_THAT(all, SizeIs(2));
  EXPECT_EQ(all[0].next_run, "2026-12-07T10:02:00Z");
  EXPECT_EQ(all[1].activity, "idle");
  EXPECT_EQ(w->writes(), 1u);  // one transaction for both mailboxes
}

TEST_F(ServiceActivityTest, ThousandMailboxesAreOneWrite) {
  auto w = writer();
  ASSERT_TRUE(w);
  for (int round = 0; round < 3; ++round) {
    for (int i = 0; i < 1000; ++i) {
      w->record(rec("m" + std::to_string(i), round % 2 ? "polling" : "waiting"));
    }
  }
  w->stop();
  EXPECT_THAT(rows(), SizeIs(1000));
  EXPECT_EQ(w->writes(), 1u);
}

TEST_F(ServiceActivityTest, ForgottenMailboxIsDeleted) {
  ASSERT_THAT(store_->put_service_activities({rec("x", "idle")}), IsOk());
  auto w = writer();
  ASSERT_TRUE(w);
  w->record(rec("a", "idle"));
  w->record(rec("b", "idle"));
  w->forget("b");
  w->stop();
  EXPECT_THAT(rows(), ElementsAre(Field(&ServiceActivityRecord::mailbox, "a")));
}

TEST_F(ServiceActivityTest, WriterWritesOnItsIntervalWithoutStopping) {
  auto started = ServiceActivityWriter::start(path_, 1, {std::chrono::milliseconds(20)});
  ASSERT_THAT(started, IsOk());
  auto& w = *started;
  w->record(rec("a", "polling"));
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (rows().empty() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_THAT(rows(), SizeIs(1));
  w->stop();
}

}  // namespace
}  // namespace mb
