// File: tests/unit/core/store_backup_test.cpp — Store::backup_to and Store::backup_file
// (core/store_backup.cpp): a consistent copy while another connection commits, the copy's
// mode and atomic replacement, and the targets it refuses.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>

#include "core/hash.h"
#include "core/store.h"
#include "tests/status_matchers.h"

namespace mb {
namespace {

using ::mb::testing::IsOk;
using ::mb::testing::StatusIs;
using ::testing::HasSubstr;
namespace fs = std::filesystem;

MessageCommit commit_for(int n) {
  MessageCommit c;
  c.mailbox = "support";
  c.key = "1:" + std::to_string(n);
  c.sha256 = sha256_hex("raw " + std::to_string(n));
  c.post_action = "mark-read";
  c.new_ticket.project = "IT";
  c.new_ticket.subject = "ticket " + std::to_string(n);
  c.new_ticket.requester = "alice@example.com";
  c.note.author = "alice@example.com";
  c.note.text = std::string(2000, 'x');  // a few messages per page: the store spans many pages
  return c;
}

// One value of a query on a database file opened read-only.
std::string query(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr);
  sqlite3_stmt* st = nullptr;
  std::string v = "<error>";
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr) == SQLITE_OK &&
      sqlite3_step(st) == SQLITE_ROW) {
    v = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
  }
  sqlite3_finalize(st);
  sqlite3_close(db);
  return v;
}

class StoreBackupTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("mb_store_backup_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    path_ = (dir_ / "mb.db").string();
    auto s = Store::open(path_);
    ASSERT_THAT(s, IsOk());
    store_ = std::move(*s);
  }
  void TearDown() override {
    store_.reset();
    fs::remove_all(dir_);
  }
  void seed(int from, int to) {
    for (int n = from; n < to; ++n) {
      ASSERT_THAT(store_->commit_message(commit_for(n), "raw"), IsOk());
    }
  }
  std::string copy_path() const { return (dir_ / "copy.db").string(); }

  fs::path dir_;
  std::string path_;
  std::unique_ptr<Store> store_;
};

TEST_F(StoreBackupTest, CopyIsCompleteSingleFileAndPrivate) {
  seed(0, 50);
  auto r = store_->backup_to(copy_path());
  ASSERT_THAT(r, IsOk());
  EXPECT_GT(r->pages, 10);
  EXPECT_EQ(r->bytes, static_cast<int64_t>(fs::file_size(copy_path())));
  EXPECT_EQ(query(copy_path(), "PRAGMA integrity_check"), "ok");
  EXPECT_EQ(query(copy_path(), "SELECT count(*) FROM tickets"), "50");
  EXPECT_EQ(query(copy_path(), "PRAGMA journal_mode"), "delete");
  EXPECT_EQ(query(copy_path(), "PRAGMA user_version"), std::to_string(store_->schema_version()));
  struct stat st {};
  ASSERT_EQ(::stat(copy_path().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  // Nothing left beside it: no temporary file, no journal.
  int files = 0;
  for (const auto& e : fs::directory_iterator(dir_)) files += e.path().filename() != "mb.db" &&
                                                          e.path().filename() != "mb.db-wal" &&
                                                          e.path().filename() != "mb.db-shm";
  EXPECT_EQ(files, 1);
  // The copy opens as a store.
  auto reopened = Store::open(copy_path());
  ASSERT_THAT(reopened, IsOk());
  auto tickets = (*reopened)->list_tickets();
  ASSERT_THAT(tickets, IsOk());
  EXPECT_EQ(tickets->size(), 50u);
}

TEST_F(StoreBackupTest, ReplacesAnExistingFileAtomically) {
  std::ofstream(copy_path()) << "an older backup";
  seed(0, 3);
  ASSERT_THAT(store_->backup_to(copy_path()), IsOk());
  EXPECT_EQ(query(copy_path(), "SELECT count(*) FROM tickets"), "3");
}

TEST_F(StoreBackupTest, ConsistentWhileAnotherConnectionCommits) {
  seed(0, 200);
  std::mutex mu;
  std::condition_variable cv;
  int committed = 200;
  std::atomic<bool> stop{false};
  Status writer_status = Status::Ok();
  std::thread writer([&] {
    auto other = Store::open(path_);  // its own connection, as another process would have
    if (!other.ok()) {
      writer_status = other.status();
      stop = true;
      cv.notify_all();
      return;
    }
    for (int n = 200; !stop; ++n) {
      auto c = (*other)->commit_message(commit_for(n), "raw");
      std::lock_guard<std::mutex> lock(mu);
      if (!c.ok()) {
        writer_status = c.status();
        stop = true;
      } else {
        committed = n + 1;
      }
      cv.notify_all();
    }
  });
  // The first steps wait until the writer has committed a few messages more, so that commits
  // land between steps whatever the scheduling.
  int waits = 0;
  bool restarted = false;
  int last_remaining = -1;
  BackupOptions options;
  options.pages_per_step = 4;
  options.on_step = [&](int remaining, int) {
    if (last_remaining >= 0 && remaining >= last_remaining) restarted = true;
    last_remaining = remaining;
    if (waits >= 5) return;
    ++waits;
    std::unique_lock<std::mutex> lock(mu);
    const int target = committed + 3;
    EXPECT_TRUE(cv.wait_for(lock, std::chrono::seconds(20),
                            [&] { return committed >= target || stop; }));
  };
  int before = 0;
  {
    std::lock_guard<std::mutex> lock(mu);
    before = committed;
  }
  auto r = store_->backup_to(copy_path(), options);
  int after = 0;
  {
    std::lock_guard<std::mutex> lock(mu);
    after = committed;
  }
  stop = true;
  writer.join();
  ASSERT_THAT(writer_status, IsOk());
  ASSERT_THAT(r, IsOk());
  EXPECT_TRUE(restarted) << "no commit landed between two steps";
  EXPECT_EQ(query(copy_path(), "PRAGMA integrity_check"), "ok");
  // A snapshot: every commit whole (ticket, note and ledger row together), none half.
  const int tickets = std::stoi(query(copy_path(), "SELECT count(*) FROM tickets"));
  EXPECT_EQ(query(copy_path(), "SELECT count(*) FROM notes"), std::to_string(tickets));
  EXPECT_EQ(query(copy_path(), "SELECT count(*) FROM ledger"), std::to_string(tickets));
  EXPECT_GE(tickets, before + 3);
  EXPECT_LE(tickets, after + 1);  // the writer may commit one more before seeing `stop`
}

TEST_F(StoreBackupTest, RefusesTheLiveStoreItsJournalsAndDirectories) {
  seed(0, 1);
  for (const std::string& target : {path_, path_ + "-wal", path_ + "-shm", path_ + "-journal",
                                    (dir_ / "." / "mb.db").string()}) {
    EXPECT_THAT(store_->backup_to(target),
                StatusIs(ErrorKind::kInvalidInput, HasSubstr("is the live store")))
        << target;
  }
  fs::create_directory_symlink(dir_, dir_ / "link");
  EXPECT_THAT(store_->backup_to((dir_ / "link" / "mb.db").string()),
              StatusIs(ErrorKind::kInvalidInput, HasSubstr("is the live store")));
  EXPECT_THAT(store_->backup_to(dir_.string()),
              StatusIs(ErrorKind::kInvalidInput, HasSubstr("is a directory")));
  std::ofstream((dir_ / "other.db-wal").string()) << "x";
  EXPECT_THAT(store_->backup_to((dir_ / "other.db").string()),
              StatusIs(ErrorKind::kInvalidInput, HasSubstr("other.db-wal exists")));
  EXPECT_EQ(query(path_, "PRAGMA integrity_check"), "ok");
  EXPECT_EQ(query(path_, "SELECT count(*) FROM tickets"), "1");
}

TEST_F(StoreBackupTest, BackupFileCopiesWithoutCreatingOrMigrating) {
  seed(0, 2);
  store_.reset();
  // An older schema version, as before an upgrade: the copy keeps it.
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
  sqlite3_exec(db, "PRAGMA user_version = 1", nullptr, nullptr, nullptr);
  sqlite3_close(db);
  ASSERT_THAT(Store::backup_file(path_, copy_path()), IsOk());
  EXPECT_EQ(query(copy_path(), "PRAGMA user_version"), "1");
  EXPECT_EQ(query(path_, "PRAGMA user_version"), "1");
  const std::string absent = (dir_ / "absent.db").string();
  EXPECT_THAT(Store::backup_file(absent, copy_path()),
              StatusIs(ErrorKind::kConfig, HasSubstr("no store at " + absent)));
  EXPECT_FALSE(fs::exists(absent));
}

}  // namespace
}  // namespace mb
