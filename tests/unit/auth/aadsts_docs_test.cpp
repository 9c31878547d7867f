// File: tests/unit/auth/aadsts_docs_test.cpp — the AADSTS table of docs/entra-setup.md and
// mb::aadsts_table() (auth/oauth.h) name the same codes, so an administrator reading the guide
// and one reading an error message see the same advice, and neither can drift from the other.
#include <algorithm>
#include <cctype>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "auth/oauth.h"

namespace mb {
namespace {

using ::testing::IsEmpty;

std::string trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t");
  size_t e = s.find_last_not_of(" \t\r");
  return b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
}

// Cells of a Markdown table row "| a | b | c |" → {"a", "b", "c"}; empty for other lines.
std::vector<std::string> cells_of(const std::string& line) {
  std::string t = trim(line);
  if (t.size() < 2 || t.front() != '|' || t.back() != '|') return {};
  std::vector<std::string> cells;
  std::stringstream in(t.substr(1, t.size() - 2));
  std::string cell;
  while (std::getline(in, cell, '|')) cells.push_back(trim(cell));
  return cells;
}

// A first cell "AADSTS7000215" (optionally in backticks) → 7000215; -1 otherwise.
long code_of(std::string cell) {
  cell.erase(std::remove(cell.begin(), cell.end(), '`'), cell.end());
  const std::string prefix = "AADSTS";
  if (cell.size() <= prefix.size() || cell.compare(0, prefix.size(), prefix) != 0) return -1;
  std::string digits = cell.substr(prefix.size());
  if (digits.size() > 9 ||
      !std::all_of(digits.begin(), digits.end(), [](unsigned char c) { return std::isdigit(c); })) {
    return -1;
  }
  return std::stol(digits);
}

struct DocRow {
  int line_no = 0;
  std::vector<std::string> cells;
};

struct DocTable {
  bool read = false;
  std::multimap<long, DocRow> rows;  // multimap: a code written twice is an error
};

DocTable read_docs_table() {
  DocTable table;
  std::ifstream in(std::string(MB_SOURCE_DIR) + "/docs/entra-setup.md");
  if (!in) return table;
  table.read = true;
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    std::vector<std::string> cells = cells_of(line);
    if (cells.empty()) continue;
    long code = code_of(cells.front());
    if (code >= 0) table.rows.emplace(code, DocRow{n, cells});
  }
  return table;
}

std::set<long> code_table() {
  std::set<long> codes;
  for (const AadstsAdvice& a : aadsts_table()) codes.insert(a.code);
  return codes;
}

TEST(AadstsDocs, GuideExistsAndHasATable) {
  DocTable doc = read_docs_table();
  ASSERT_TRUE(doc.read) << MB_SOURCE_DIR "/docs/entra-setup.md cannot be read";
  EXPECT_FALSE(doc.rows.empty()) << "docs/entra-setup.md has no `| AADSTSnnnn | … |` rows";
}

TEST(AadstsDocs, EveryCodeOfTheCodeIsInTheGuide) {
  DocTable doc = read_docs_table();
  ASSERT_TRUE(doc.read);
  std::vector<long> missing;
  for (long code : code_table()) {
    if (doc.rows.count(code) == 0) missing.push_back(code);
  }
  EXPECT_THAT(missing, IsEmpty())
      << "codes in mb::aadsts_table() without a row in docs/entra-setup.md";
}

TEST(AadstsDocs, EveryCodeOfTheGuideIsInTheCode) {
  DocTable doc = read_docs_table();
  ASSERT_TRUE(doc.read);
  std::set<long> known = code_table();
  std::vector<std::string> extra;
  for (const auto& [code, row] : doc.rows) {
    if (known.count(code) == 0 || find_aadsts(code) == nullptr) {
      extra.push_back("AADSTS" + std::to_string(code) + " (line " +
                      std::to_string(row.line_no) + ")");
    }
  }
  EXPECT_THAT(extra, IsEmpty())
      << "rows in docs/entra-setup.md for codes mb::aadsts_table() does not know";
}

TEST(AadstsDocs, EachCodeHasOneRowWithACauseAndAFix) {
  DocTable doc = read_docs_table();
  ASSERT_TRUE(doc.read);
  std::vector<std::string> bad;
  std::set<long> seen;
  for (const auto& [code, row] : doc.rows) {
    std::string where = "AADSTS" + std::to_string(code) + " (line " +
                        std::to_string(row.line_no) + ")";
    if (!seen.insert(code).second) bad.push_back(where + ": a second row");
    bool filled = row.cells.size() >= 3 &&
                  std::all_of(row.cells.begin() + 1, row.cells.end(),
                              [](const std::string& c) { return c.size() >= 10; });
    if (!filled) bad.push_back(where + ": needs a cause and a fix column");
  }
  EXPECT_THAT(bad, IsEmpty());
}

// The codes issue 4 names must be explained in both places; this is what keeps the two
// checks above from passing on two empty tables.
TEST(AadstsDocs, TheIssueCodesAreCovered) {
  DocTable doc = read_docs_table();
  ASSERT_TRUE(doc.read);
  const long required[] = {7000215, 7000222, 700016, 90002,  65001, 50173,
                           700082,  70043,   53003,  700027, 50012, 500133};
  for (long code : required) {
    EXPECT_NE(find_aadsts(code), nullptr) << "mb::aadsts_table() lacks AADSTS" << code;
    EXPECT_EQ(doc.rows.count(code), 1u) << "docs/entra-setup.md lacks AADSTS" << code;
  }
}

// The function itself: a code it does not know yields nullptr, a known one its own row.
TEST(AadstsDocs, FindAadstsMatchesTheTable) {
  for (const AadstsAdvice& a : aadsts_table()) {
    const AadstsAdvice* found = find_aadsts(a.code);
    ASSERT_NE(found, nullptr);
    EXPECT_EQ(found->code, a.code);
    EXPECT_FALSE(a.cause.empty());
    EXPECT_FALSE(a.fix.empty());
  }
  EXPECT_EQ(find_aadsts(1), nullptr);
}

}  // namespace
}  // namespace mb
