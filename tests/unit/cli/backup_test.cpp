// File: tests/unit/cli/backup_test.cpp — `mailbridge backup FILE` through run_cli: the copy,
// its summary line, and exit code 2 for the live store itself or a missing store.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "cli/cli.h"
#include "core/store.h"
#include "tests/status_matchers.h"

namespace mb {
namespace {

using ::testing::HasSubstr;
namespace fs = std::filesystem;

class BackupCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("mb_backup_cli_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    config_ = (dir_ / "mailbridge.toml").string();
    std::ofstream(config_) << "[store]\npath = \"mb.db\"\n";
  }
  void TearDown() override { fs::remove_all(dir_); }
  int run(const std::vector<std::string>& args) {
    std::vector<std::string> all{"--config", config_};
    all.insert(all.end(), args.begin(), args.end());
    std::ostringstream out, err;
    int code = run_cli(all, out, err);
    out_ = out.str();
    err_ = err.str();
    return code;
  }
  fs::path dir_;
  std::string config_;
  std::string out_;
  std::string err_;
};

TEST_F(BackupCliTest, CopiesTheStore) {
  {
    auto store = Store::open((dir_ / "mb.db").string());
    ASSERT_TRUE(store.ok());
    Ticket t;
    t.subject = "hello";
    Note n;
    n.text = "hi";
    ASSERT_TRUE((*store)->create_ticket(t, n).ok());
  }
  const std::string copy = (dir_ / "copy.db").string();
  EXPECT_EQ(run({"backup", copy}), 0) << err_;
  EXPECT_THAT(out_, HasSubstr("backed up " + (dir_ / "mb.db").string() + " to " + copy));
  auto reopened = Store::open(copy);
  ASSERT_TRUE(reopened.ok());
  auto tickets = (*reopened)->list_tickets();
  ASSERT_TRUE(tickets.ok());
  ASSERT_EQ(tickets->size(), 1u);
  EXPECT_EQ((*tickets)[0].subject, "hello");
}

TEST_F(BackupCliTest, RefusesTheLiveStoreAndAMissingStore) {
  EXPECT_EQ(run({"backup", (dir_ / "copy.db").string()}), 2);
  EXPECT_THAT(err_, HasSubstr("no store at " + (dir_ / "mb.db").string()));
  EXPECT_FALSE(fs::exists(dir_ / "mb.db"));  // not created by a backup
  ASSERT_TRUE(Store::open((dir_ / "mb.db").string()).ok());
  EXPECT_EQ(run({"backup", (dir_ / "mb.db").string()}), 2);
  EXPECT_THAT(err_, HasSubstr("is the live store"));
  EXPECT_EQ(run({"backup"}), 2);  // FILE is required
}

}  // namespace
}  // namespace mb
