// File: core/internal/toml_reader.h — reading one TOML document with every problem kept:
// Checker collects the errors and warnings (with file and line), Section reads one table and
// names the keys nobody asked for, NameRegistry keeps the names of an [[array]] unique.
// Nothing here knows mailbridge's keys; core/config*.cpp do.
//
//   Checker c("mailbridge.toml", "/etc/mailbridge", ConfigCheck::kFile);
//   Section s(table, "[store]", c);
//   if (auto v = s.str("path")) ...;
//   s.finish();  // "unknown key "pth" (did you mean "path"?)"
#pragma once

#include <toml++/toml.h>

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "core/ascii.h"
#include "core/config.h"

namespace mb::config_internal {

// "\"text\"", for messages.
std::string dq(const std::string& s);
int line_of(const toml::node& n);
// "a string", "an integer", ...: what a node is, for messages.
const char* type_name(const toml::node& n);
// Edit distance with adjacent transpositions ("hots" is 1 from "host").
size_t edit_distance(std::string_view a, std::string_view b);
// The key of `known` that `typo` most likely means, or "" when none is close.
std::string closest_key(const std::string& typo, const std::set<std::string>& known);

// Collects errors and warnings; all errors are reported, in the order of the file, so that
// one run of check-config shows everything to fix.
class Checker {
 public:
  Checker(std::string origin, std::string base_dir, ConfigCheck check)
      : origin_(std::move(origin)), base_dir_(std::move(base_dir)), check_(check) {}

  // check-config: also what the file names (paths, environment), not only the file.
  bool deep() const { return check_ == ConfigCheck::kDeep; }

  void error(int line, const std::string& context, const std::string& msg) {
    errors_.push_back({line, format(line, context, msg)});
  }
  void warn(int line, const std::string& context, const std::string& msg) {
    warnings_.push_back(format(line, context, msg));
  }
  bool has_errors() const { return !errors_.empty(); }
  // Every error, one per line, in the order of the file.
  std::string all_errors() const;
  std::vector<std::string> take_warnings() { return std::move(warnings_); }

  // A path from the file, made relative to the file's directory rather than the cwd.
  std::string resolve_path(const std::string& p) const;

 private:
  struct Problem {
    int line = 0;
    std::string message;
  };
  std::string format(int line, const std::string& context, const std::string& msg) const;

  std::string origin_;
  std::string base_dir_;
  ConfigCheck check_;
  std::vector<Problem> errors_;
  std::vector<std::string> warnings_;
};

// One TOML table being read. Every key read is remembered, so that finish() can name the
// keys nobody asked for: a typo must not be silently ignored.
class Section {
 public:
  Section(const toml::table& t, std::string context, Checker& c, std::string prefix = "")
      : t_(t), ctx_(std::move(context)), prefix_(std::move(prefix)), c_(c) {}

  const std::string& context() const { return ctx_; }
  void set_context(std::string context) { ctx_ = std::move(context); }
  Checker& checker() { return c_; }
  int line() const { return line_of(t_); }
  int line(std::string_view key) const;
  bool has(std::string_view key);
  void error(std::string_view key, const std::string& msg);
  void error_here(const std::string& msg) { c_.error(line(), ctx_, msg); }
  // An error about the section as a whole, placed on the line of `key` (or the table's).
  void error_at(std::string_view key, const std::string& msg) { c_.error(line(key), ctx_, msg); }
  void warn(std::string_view key, const std::string& msg);

  std::optional<std::string> str(std::string_view key);
  std::optional<int64_t> integer(std::string_view key);
  std::optional<bool> boolean(std::string_view key);
  std::optional<std::vector<std::string>> strings(std::string_view key);
  const toml::table* table(std::string_view key);
  // The node of `key` as is (for values that may be an integer or a string).
  const toml::node* node(std::string_view key) { return get(key); }
  std::string full_key(std::string_view key) const { return prefix_ + std::string(key); }

  // Reports every key that no reader asked for, with the known key it most likely means.
  void finish();

 private:
  const toml::node* get(std::string_view key);
  void wrong_type(std::string_view key, const toml::node& n, const char* want);

  const toml::table& t_;
  std::string ctx_;
  std::string prefix_;
  Checker& c_;
  std::set<std::string> known_;
};

// Names must be present and unique within their kind, as everything refers to them.
class NameRegistry {
 public:
  explicit NameRegistry(const char* kind) : kind_(kind) {}
  // Reads name = "..." of `s` and names the section after it ("mailbox \"support\"").
  std::string read(Section& s);

 private:
  const char* kind_;
  std::map<std::string, int> lines_;
};

}  // namespace mb::config_internal
