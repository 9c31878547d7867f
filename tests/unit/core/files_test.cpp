// File: tests/unit/core/files_test.cpp — read_regular_file / check_regular_file: devices,
// FIFOs, directories and oversized files are refused at once with the path and the reason;
// load_config goes through them (tls.ca_file: net_test, http_test).
#include "core/files.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "core/config.h"
#include "tests/status_matchers.h"

namespace mb {
namespace {

using ::mb::testing::IsOk;
using ::mb::testing::StatusIs;
using ::testing::AllOf;
using ::testing::HasSubstr;

class FilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("mb_files_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    fifo_ = dir_ / "fifo";
    ASSERT_EQ(::mkfifo(fifo_.c_str(), 0600), 0);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::filesystem::path dir_;
  std::filesystem::path fifo_;
};

TEST_F(FilesTest, ReadsARegularFileUpToTheLimit) {
  auto path = dir_ / "f";
  std::ofstream(path) << "0123456789";
  auto v = read_regular_file(path.string(), 10, "what");
  ASSERT_THAT(v, IsOk());
  EXPECT_EQ(*v, "0123456789");
  EXPECT_THAT(read_regular_file(path.string(), 9, "what"),
              StatusIs(ErrorKind::kConfig,
                       AllOf(HasSubstr("what: cannot read file " + path.string()),
                             HasSubstr("10 bytes, over the limit of 9 bytes"))));
}

TEST_F(FilesTest, RefusesSpecialFilesWithoutReadingThem) {
  EXPECT_THAT(read_regular_file("/dev/zero", kMaxSecretFileBytes, "k"),
              StatusIs(ErrorKind::kConfig, HasSubstr("character device, not a regular file")));
  // A FIFO with no writer: opening it blocking would wait forever.
  EXPECT_THAT(read_regular_file(fifo_.string(), kMaxSecretFileBytes, "k"),
              StatusIs(ErrorKind::kConfig, HasSubstr("a FIFO, not a regular file")));
  EXPECT_THAT(read_regular_file(dir_.string(), kMaxSecretFileBytes, "k"),
              StatusIs(ErrorKind::kConfig, HasSubstr("a directory, not a regular file")));
  EXPECT_THAT(check_regular_file(fifo_.string(), kMaxCaFileBytes, "tls.ca_file"),
              StatusIs(ErrorKind::kConfig, HasSubstr("tls.ca_file: cannot read file " +
                                                     fifo_.string())));
}

TEST_F(FilesTest, AFileThatLiesAboutItsSizeIsStillBounded) {
  // /proc files report size 0 and have more: reading stops one byte past the limit.
  auto v = read_regular_file("/proc/self/maps", 16, "maps");
  EXPECT_THAT(v, StatusIs(ErrorKind::kConfig, HasSubstr("more than the limit of 16 bytes")));
}

TEST_F(FilesTest, ConfigurationFileMustBeRegular) {
  EXPECT_THAT(load_config(fifo_.string()),
              StatusIs(ErrorKind::kConfig, AllOf(HasSubstr("configuration: cannot read file"),
                                                 HasSubstr("a FIFO"))));
  EXPECT_THAT(load_config("/dev/zero"),
              StatusIs(ErrorKind::kConfig, HasSubstr("not a regular file")));
}

}  // namespace
}  // namespace mb
