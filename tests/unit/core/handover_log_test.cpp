// File: tests/unit/core/handover_log_test.cpp — core/handover_log: the file beside the store,
// what a later process reads back (only a hand-over counts, not a send that had only
// started), a file-safe name per owner, and a log that cannot be written failing softly.
#include "core/handover_log.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "tests/status_matchers.h"

namespace mb {
namespace {
using ::mb::testing::StatusIs;
using ::testing::HasSubstr;

// What last_handed_over() reads, with a read error shown as a failure.
std::optional<int64_t> last(const std::string& path) {
  auto r = HandoverLog::last_handed_over(path);
  EXPECT_TRUE(r.ok()) << r.status().to_string();
  return r.ok() ? *r : std::nullopt;
}

class HandoverLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("mb_handover_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    store_ = (dir_ / "mb.db").string();
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::filesystem::path dir_;
  std::string store_;
};

TEST_F(HandoverLogTest, PathIsBesideTheStoreAndFileSafe) {
  EXPECT_EQ(HandoverLog::path_for(store_, "host-1.example:4242"),
            store_ + "-handover-host-1.example_4242");
  EXPECT_EQ(HandoverLog::path_for(store_, "../../etc/x y"), store_ + "-handover-.._.._etc_x_y");
  EXPECT_EQ(HandoverLog::path_for("", "h:1"), "");
  EXPECT_EQ(HandoverLog::path_for(":memory:", "h:1"), "");
}

TEST_F(HandoverLogTest, OnlyTheLastHandOverIsReadBack) {
  const std::string path = HandoverLog::path_for(store_, "h:1");
  EXPECT_EQ(last(path), std::nullopt);  // no file yet
  HandoverLog log(path);
  log.starting(7);
  EXPECT_EQ(last(path), std::nullopt);  // begun, end not written
  log.handed_over(7);
  EXPECT_EQ(last(path), 7);
  log.starting(8);  // the next message: 7's entry no longer speaks for anything
  EXPECT_EQ(last(path), std::nullopt);
  log.handed_over(4294967297);  // ids past 32 bits survive
  EXPECT_EQ(last(path), 4294967297);
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(st.st_size, 8);
  log.remove();
  EXPECT_FALSE(std::filesystem::exists(path));
  EXPECT_EQ(last(path), std::nullopt);
}

TEST_F(HandoverLogTest, AnUnwritableLogFailsSoftly) {
  HandoverLog log((dir_ / "no-such-dir" / "log").string());
  log.starting(1);
  log.handed_over(1);  // reported once, nothing thrown, nothing written
  EXPECT_EQ(last((dir_ / "no-such-dir" / "log").string()), std::nullopt);
  HandoverLog none("");  // an in-memory store: no log at all
  none.handed_over(1);
  none.remove();
}

TEST_F(HandoverLogTest, ALogThatCannotBeReadIsAnErrorNotNothing) {
  const std::string path = HandoverLog::path_for(store_, "h:3");
  std::filesystem::create_directories(path);  // there, but no log can be read from it
  EXPECT_THAT(HandoverLog::last_handed_over(path),
              StatusIs(ErrorKind::kInternal, HasSubstr("cannot read the outbox's hand-over log")));
}

TEST_F(HandoverLogTest, ATruncatedFileSpeaksForNothing) {
  const std::string path = HandoverLog::path_for(store_, "h:2");
  ASSERT_TRUE(std::filesystem::exists(dir_));
  FILE* f = std::fopen(path.c_str(), "wb");
  ASSERT_NE(f, nullptr);
  std::fputs("abc", f);
  std::fclose(f);
  EXPECT_EQ(last(path), std::nullopt);
  HandoverLog::remove_file(path);
  EXPECT_FALSE(std::filesystem::exists(path));
}

}  // namespace
}  // namespace mb
