// File: tests/unit/core/instance_lock_test.cpp — core/instance_lock: one holder at a time
// across processes, the holder named, the lock freed when the holder dies (SIGKILL too).
#include "core/instance_lock.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <thread>

#include "tests/status_matchers.h"

namespace mb {
namespace {
using ::mb::testing::IsOk;
using ::mb::testing::StatusIs;
using ::testing::HasSubstr;

class InstanceLockTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("mb_lock_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    path_ = instance_lock_path((dir_ / "mb.db").string());
  }
  void TearDown() override {
    if (child_ > 0) {
      ::kill(child_, SIGKILL);
      ::waitpid(child_, nullptr, 0);
    }
    std::filesystem::remove_all(dir_);
  }

  // A child process that takes the lock, tells us through a pipe, then waits to be killed.
  void start_holder() {
    int fds[2];
    ASSERT_EQ(::pipe(fds), 0);
    child_ = ::fork();
    ASSERT_GE(child_, 0);
    if (child_ == 0) {
      ::close(fds[0]);
      auto lock = InstanceLock::acquire(path_);
      char c = lock.ok() ? 'y' : 'n';
      if (::write(fds[1], &c, 1) != 1) ::_exit(3);
      for (;;) ::pause();
    }
    ::close(fds[1]);
    char c = 0;
    ASSERT_EQ(::read(fds[0], &c, 1), 1);
    ::close(fds[0]);
    ASSERT_EQ(c, 'y');
  }

  std::filesystem::path dir_;
  std::string path_;
  pid_t child_ = -1;
};

TEST_F(InstanceLockTest, PathIsBesideTheStore) {
  EXPECT_EQ(instance_lock_path("/var/lib/mailbridge/mb.db"), "/var/lib/mailbridge/mb.db.run.lock");
}

TEST_F(InstanceLockTest, TakesTheLockWritesPidAndMode0600) {
  auto lock = InstanceLock::acquire(path_);
  ASSERT_THAT(lock, IsOk());
  struct stat st {};
  ASSERT_EQ(::stat(path_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto holder = probe_instance_lock(path_);
  ASSERT_THAT(holder, IsOk());
  EXPECT_TRUE(holder->running);
  EXPECT_EQ(holder->pid, ::getpid());
  EXPECT_EQ(holder->started_at, (*lock)->started_at());
  EXPECT_FALSE(holder->started_at.empty());
}

TEST_F(InstanceLockTest, NoFileIsNotRunning) {
  auto holder = probe_instance_lock(path_);
  ASSERT_THAT(holder, IsOk());
  EXPECT_FALSE(holder->running);
}

TEST_F(InstanceLockTest, ReleasedOnDestructionAndTakenAgain) {
  { ASSERT_THAT(InstanceLock::acquire(path_), IsOk()); }
  auto holder = probe_instance_lock(path_);
  ASSERT_THAT(holder, IsOk());
  EXPECT_FALSE(holder->running);
  EXPECT_THAT(InstanceLock::acquire(path_), IsOk());
}

TEST_F(InstanceLockTest, SecondProcessIsRefusedWithThePidOfTheHolder) {
  start_holder();
  auto second = InstanceLock::acquire(path_);
  EXPECT_THAT(second, StatusIs(ErrorKind::kInternal, HasSubstr("pid " + std::to_string(child_))));
  EXPECT_THAT(second, StatusIs(ErrorKind::kInternal, HasSubstr(path_)));
  auto holder = probe_instance_lock(path_);
  ASSERT_THAT(holder, IsOk());
  EXPECT_TRUE(holder->running);
  EXPECT_EQ(holder->pid, child_);
}

TEST_F(InstanceLockTest, FreedWhenTheHolderIsKilled) {
  start_holder();
  ASSERT_FALSE(InstanceLock::acquire(path_).ok());
  ::kill(child_, SIGKILL);
  ASSERT_EQ(::waitpid(child_, nullptr, 0), child_);
  child_ = -1;
  // The pid is still in the file, but nobody holds the lock: not running.
  auto holder = probe_instance_lock(path_);
  ASSERT_THAT(holder, IsOk());
  EXPECT_FALSE(holder->running);
  auto lock = InstanceLock::acquire(path_);
  ASSERT_THAT(lock, IsOk());
  auto now = probe_instance_lock(path_);
  ASSERT_THAT(now, IsOk());
  EXPECT_EQ(now->pid, ::getpid());
}

TEST_F(InstanceLockTest, MissingDirectoryIsAConfigErrorNamingTheFile) {
  std::string bad = (dir_ / "no" / "such" / "mb.db.run.lock").string();
  auto lock = InstanceLock::acquire(bad);
  EXPECT_THAT(lock, StatusIs(ErrorKind::kConfig, HasSubstr(bad)));
}

}  // namespace
}  // namespace mb
