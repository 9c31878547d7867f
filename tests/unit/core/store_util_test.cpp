// File: tests/unit/core/store_util_test.cpp — what the parts of the Store share
// (core/internal/store_util.h): collect_rows, the JSON string lists, nested transactions.
#include "core/internal/store_util.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <memory>
#include <string>
#include <vector>

#include "tests/status_matchers.h"

namespace mb::internal {
namespace {

using ::mb::testing::IsOk;
using ::testing::ElementsAre;

struct DbClose {
  void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};

class StoreUtilTest : public ::testing::Test {
 protected:
  void SetUp() override {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(":memory:", &db), SQLITE_OK);
    db_.reset(db);
    ASSERT_THAT(exec(db, "CREATE TABLE t (n INTEGER, s TEXT); "
                         "INSERT INTO t VALUES (1, 'one'), (2, 'two'), (3, 'three');"),
                IsOk());
  }
  int64_t count() {
    auto st = Stmt::prepare(db_.get(), "SELECT count(*) FROM t");
    EXPECT_THAT(st.status(), IsOk());
    auto row = st->step();
    EXPECT_TRUE(row.ok() && *row);
    return st->col_int(0);
  }
  std::unique_ptr<sqlite3, DbClose> db_;
};

TEST_F(StoreUtilTest, CollectRowsReadsEveryRowInOrder) {
  auto st = Stmt::prepare(db_.get(), "SELECT n, s FROM t WHERE n >= ? ORDER BY n");
  ASSERT_THAT(st.status(), IsOk());
  st->bind(1, int64_t{2});
  auto rows = collect_rows(*st, [](const Stmt& s) {
    return std::to_string(s.col_int(0)) + "=" + s.col_text(1);
  });
  ASSERT_THAT(rows.status(), IsOk());
  EXPECT_THAT(*rows, ElementsAre("2=two", "3=three"));
}

TEST_F(StoreUtilTest, CollectRowsOfNoRowsIsEmpty) {
  auto st = Stmt::prepare(db_.get(), "SELECT n FROM t WHERE n > 99");
  ASSERT_THAT(st.status(), IsOk());
  auto rows = collect_rows(*st, [](const Stmt& s) { return s.col_int(0); });
  ASSERT_THAT(rows.status(), IsOk());
  EXPECT_TRUE(rows->empty());
}

TEST_F(StoreUtilTest, CollectRowsReportsAStepError) {
  // A bind to a parameter that does not exist fails; step() reports it.
  auto st = Stmt::prepare(db_.get(), "SELECT n FROM t WHERE n = ?");
  ASSERT_THAT(st.status(), IsOk());
  st->bind(5, int64_t{1});
  auto rows = collect_rows(*st, [](const Stmt& s) { return s.col_int(0); });
  EXPECT_FALSE(rows.ok());
}

TEST(StoreJsonTest, StringListsRoundTrip) {
  const std::vector<std::string> names = {"a.pdf", "b \"quoted\".txt", ""};
  EXPECT_EQ(strings_from_json(strings_to_json(names)), names);
  EXPECT_EQ(strings_to_json({}), "[]");
  EXPECT_TRUE(strings_from_json("[]").empty());
}

TEST(StoreJsonTest, InvalidInputNeitherThrowsNorAborts) {
  // Invalid UTF-8 is replaced, not thrown on.
  const std::string json = strings_to_json({std::string("bad\xFF")});
  EXPECT_EQ(json, "[\"bad\xEF\xBF\xBD\"]");
  EXPECT_TRUE(strings_from_json("not json").empty());
  EXPECT_TRUE(strings_from_json("{\"a\": 1}").empty());
  EXPECT_THAT(strings_from_json("[\"x\", 1, null, \"y\"]"), ElementsAre("x", "y"));
}

TEST_F(StoreUtilTest, BeginUnlessNestedOwnsOnlyTheOuterTransaction) {
  auto own = begin_unless_nested(db_.get());
  ASSERT_THAT(own.status(), IsOk());
  ASSERT_TRUE(own->has_value());  // no transaction open: this one is ours
  {
    auto nested = begin_unless_nested(db_.get());
    ASSERT_THAT(nested.status(), IsOk());
    EXPECT_FALSE(nested->has_value());  // joins the outer one
    ASSERT_THAT(exec(db_.get(), "INSERT INTO t VALUES (4, 'four')"), IsOk());
    EXPECT_THAT(commit_if_own(*nested), IsOk());  // commits nothing
  }
  EXPECT_EQ(sqlite3_get_autocommit(db_.get()), 0);  // still inside the outer transaction
  own->reset();  // rolled back: the nested work goes with it
  EXPECT_EQ(count(), 3);

  auto again = begin_unless_nested(db_.get());
  ASSERT_THAT(again.status(), IsOk());
  ASSERT_THAT(exec(db_.get(), "INSERT INTO t VALUES (4, 'four')"), IsOk());
  EXPECT_THAT(commit_if_own(*again), IsOk());
  EXPECT_EQ(count(), 4);
}

}  // namespace
}  // namespace mb::internal
