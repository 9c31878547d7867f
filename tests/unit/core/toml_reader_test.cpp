// File: tests/unit/core/toml_reader_test.cpp — the TOML reader of the configuration alone
// (core/internal/toml_reader.h): Checker's messages and their order, Section's typed reads,
// wrong types and unknown keys (with the likely key), NameRegistry's names.
#include "core/internal/toml_reader.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace mb::config_internal {
namespace {

using ::testing::ElementsAre;

toml::table parse(std::string_view text) { return toml::parse(text, std::string_view("t.toml")); }

TEST(CheckerTest, ReportsEveryErrorInTheOrderOfTheFileWithOriginAndLine) {
  Checker c("t.toml", "/etc/mb", ConfigCheck::kFile);
  EXPECT_FALSE(c.has_errors());
  c.error(7, "[store]", "path must not be empty");
  c.error(2, "", "unknown key \"x\"");
  c.error(0, "mailbox \"a\"", "host is missing");
  EXPECT_TRUE(c.has_errors());
  EXPECT_EQ(c.all_errors(),
            "t.toml: mailbox \"a\": host is missing\n"
            "t.toml:2: unknown key \"x\"\n"
            "t.toml:7: [store]: path must not be empty");
}

TEST(CheckerTest, KeepsWarningsApartFromErrors) {
  Checker c("t.toml", ".", ConfigCheck::kFile);
  c.warn(3, "[tracking]", "secret is written literally");
  EXPECT_FALSE(c.has_errors());
  EXPECT_THAT(c.take_warnings(), ElementsAre("t.toml:3: [tracking]: secret is written literally"));
}

TEST(CheckerTest, ResolvesRelativePathsAgainstTheFilesDirectory) {
  Checker c("t.toml", "/etc/mb", ConfigCheck::kDeep);
  EXPECT_TRUE(c.deep());
  EXPECT_EQ(c.resolve_path("data/mb.db"), "/etc/mb/data/mb.db");
  EXPECT_EQ(c.resolve_path("../x"), "/etc/x");
  EXPECT_EQ(c.resolve_path("/var/mb.db"), "/var/mb.db");
  EXPECT_EQ(c.resolve_path(""), "");
  EXPECT_FALSE(Checker("t.toml", ".", ConfigCheck::kFile).deep());
}

TEST(SectionTest, ReadsTypedValues) {
  toml::table t = parse("s = \"x\"\nn = 5\nb = true\nl = [\"a\", \"b\"]\n[sub]\nk = 1\n");
  Checker c("t.toml", ".", ConfigCheck::kFile);
  Section s(t, "[t]", c);
  EXPECT_EQ(s.str("s"), "x");
  EXPECT_EQ(s.integer("n"), 5);
  EXPECT_EQ(s.boolean("b"), true);
  EXPECT_EQ(s.strings("l"), (std::vector<std::string>{"a", "b"}));
  EXPECT_NE(s.table("sub"), nullptr);
  EXPECT_EQ(s.str("absent"), std::nullopt);
  EXPECT_FALSE(s.has("absent"));
  EXPECT_TRUE(s.has("s"));
  EXPECT_EQ(s.line("n"), 2);
  s.finish();
  EXPECT_FALSE(c.has_errors()) << c.all_errors();
}

TEST(SectionTest, NamesTheKeyTheLineAndBothTypesWhenAValueHasTheWrongType) {
  toml::table t = parse("a = 1\nb = \"x\"\nc = 2\nd = [1]\ne = 3\n");
  Checker c("t.toml", ".", ConfigCheck::kFile);
  Section s(t, "[t]", c, "tls.");
  EXPECT_EQ(s.str("a"), std::nullopt);
  EXPECT_EQ(s.integer("b"), std::nullopt);
  EXPECT_EQ(s.boolean("c"), std::nullopt);
  EXPECT_EQ(s.strings("d"), std::nullopt);
  EXPECT_EQ(s.table("e"), nullptr);
  EXPECT_EQ(c.all_errors(),
            "t.toml:1: [t]: tls.a must be a string (got an integer)\n"
            "t.toml:2: [t]: tls.b must be an integer (got a string)\n"
            "t.toml:3: [t]: tls.c must be true or false (got an integer)\n"
            "t.toml:4: [t]: tls.d must be an array of strings (got an integer)\n"
            "t.toml:5: [t]: tls.e must be a table, e.g. { ... } (got an integer)");
}

TEST(SectionTest, FinishNamesTheKeysNobodyReadWithTheLikelyOne) {
  toml::table t = parse("host = \"h\"\nprot = 1\nzzzzzz = 2\n");
  Checker c("t.toml", ".", ConfigCheck::kFile);
  Section s(t, "mailbox \"a\"", c);
  s.str("host");
  s.has("port");
  s.finish();
  EXPECT_EQ(c.all_errors(),
            "t.toml:2: mailbox \"a\": unknown key \"prot\" (did you mean \"port\"?)\n"
            "t.toml:3: mailbox \"a\": unknown key \"zzzzzz\"");
}

TEST(SectionTest, ErrorsAndWarningsCarryTheContextAndPrefix) {
  toml::table t = parse("x = 1\n\ny = 2\n");
  Checker c("t.toml", ".", ConfigCheck::kFile);
  Section s(t, "ctx", c, "p.");
  s.error("y", "is wrong");
  s.error_at("y", "the whole is wrong");
  s.warn("x", "is odd");
  s.set_context("other");
  EXPECT_EQ(s.context(), "other");
  s.error_here("top");
  EXPECT_EQ(c.all_errors(),
            "t.toml:1: other: top\n"
            "t.toml:3: ctx: p.y is wrong\n"
            "t.toml:3: ctx: the whole is wrong");
  EXPECT_THAT(c.take_warnings(), ElementsAre("t.toml:1: ctx: p.x is odd"));
}

TEST(NameRegistryTest, NamesTheSectionAndRefusesMissingEmptyAndRepeatedNames) {
  toml::table root = parse(
      "[[m]]\nname = \"a\"\n[[m]]\nname = \"a\"\n[[m]]\nname = \"\"\n[[m]]\nx = 1\n");
  Checker c("t.toml", ".", ConfigCheck::kFile);
  NameRegistry names("mailbox");
  std::vector<std::string> read;
  std::vector<std::string> contexts;
  for (const toml::node& n : *root["m"].as_array()) {
    Section s(*n.as_table(), "mailbox #", c);
    read.push_back(names.read(s));
    contexts.push_back(s.context());
  }
  EXPECT_THAT(read, ElementsAre("a", "a", "", ""));
  EXPECT_THAT(contexts, ElementsAre("mailbox \"a\"", "mailbox \"a\"", "mailbox #", "mailbox #"));
  EXPECT_EQ(c.all_errors(),
            "t.toml:4: mailbox \"a\": name \"a\" is already used by the mailbox on line 2\n"
            "t.toml:6: mailbox #: name must not be empty\n"
            "t.toml:7: mailbox #: mailbox has no name (add name = \"...\")");
}

TEST(ClosestKeyTest, AllowsOneEditForShortKeysAndTwoForLongOnes) {
  const std::set<std::string> known = {"host", "port", "password", "endpoint"};
  EXPECT_EQ(closest_key("hots", known), "host");      // a transposition
  EXPECT_EQ(closest_key("HOST", known), "host");      // case is ignored
  EXPECT_EQ(closest_key("pasword", known), "password");
  EXPECT_EQ(closest_key("endpint", known), "endpoint");
  EXPECT_EQ(closest_key("pxxt", known), "");          // two edits on a short key
  EXPECT_EQ(closest_key("banana", known), "");
  EXPECT_EQ(edit_distance("abc", "abc"), 0u);
  EXPECT_EQ(edit_distance("ab", "ba"), 1u);
  EXPECT_EQ(edit_distance("", "abc"), 3u);
}

TEST(HelpersTest, QuoteLowerAndNameTypes) {
  EXPECT_EQ(dq("x"), "\"x\"");
  EXPECT_EQ(ascii_lower("MiXeD"), "mixed");
  toml::table t = parse("f = 1.5\nd = 1979-05-27\n");
  EXPECT_STREQ(type_name(*t.get("f")), "a number");
  EXPECT_STREQ(type_name(*t.get("d")), "a date or time");
}

}  // namespace
}  // namespace mb::config_internal
