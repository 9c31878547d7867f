// File: core/internal/toml_reader.cpp — Checker, Section and NameRegistry
// (core/internal/toml_reader.h).
#include "core/internal/toml_reader.h"

#include <algorithm>
#include <cctype>
#include <filesystem>

#include <fmt/format.h>

#include "core/ascii.h"

namespace mb::config_internal {

std::string dq(const std::string& s) { return "\"" + s + "\""; }

int line_of(const toml::node& n) { return static_cast<int>(n.source().begin.line); }

const char* type_name(const toml::node& n) {
  switch (n.type()) {
    case toml::node_type::string: return "a string";
    case toml::node_type::integer: return "an integer";
    case toml::node_type::floating_point: return "a number";
    case toml::node_type::boolean: return "a boolean";
    case toml::node_type::array: return "an array";
    case toml::node_type::table: return "a table";
    default: return "a date or time";
  }
}

size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::vector<size_t>> d(a.size() + 1, std::vector<size_t>(b.size() + 1));
  for (size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[a.size()][b.size()];
}

std::string closest_key(const std::string& typo, const std::set<std::string>& known) {
  size_t limit = typo.size() >= 6 ? 2 : 1;
  std::string best;
  size_t best_distance = limit + 1;
  for (const auto& k : known) {
    size_t d = edit_distance(ascii_lower(typo), k);
    if (d < best_distance) best = k, best_distance = d;
  }
  return best;
}

std::string Checker::all_errors() const {
  std::vector<Problem> sorted = errors_;
  std::stable_sort(sorted.begin(), sorted.end(),
                   [](const Problem& a, const Problem& b) { return a.line < b.line; });
  std::string out;
  for (const auto& p : sorted) out += (out.empty() ? "" : "\n") + p.message;
  return out;
}

std::string Checker::resolve_path(const std::string& p) const {
  namespace fs = std::filesystem;
  if (p.empty() || fs::path(p).is_absolute()) return p;
  return (fs::path(base_dir_) / p).lexically_normal().string();
}

std::string Checker::format(int line, const std::string& context, const std::string& msg) const {
  std::string where = line > 0 ? fmt::format("{}:{}: ", origin_, line) : origin_ + ": ";
  return context.empty() ? where + msg : where + context + ": " + msg;
}

int Section::line(std::string_view key) const {
  const toml::node* n = t_.get(key);
  return n ? line_of(*n) : line_of(t_);
}

bool Section::has(std::string_view key) {
  known_.insert(std::string(key));
  return t_.contains(key);
}

void Section::error(std::string_view key, const std::string& msg) {
  c_.error(line(key), ctx_, prefix_ + std::string(key) + " " + msg);
}

void Section::warn(std::string_view key, const std::string& msg) {
  c_.warn(line(key), ctx_, prefix_ + std::string(key) + " " + msg);
}

std::optional<std::string> Section::str(std::string_view key) {
  const toml::node* n = get(key);
  if (!n) return std::nullopt;
  if (auto v = n->value<std::string>(); v && n->is_string()) return *v;
  wrong_type(key, *n, "a string");
  return std::nullopt;
}

std::optional<int64_t> Section::integer(std::string_view key) {
  const toml::node* n = get(key);
  if (!n) return std::nullopt;
  if (n->is_integer()) return n->as_integer()->get();
  wrong_type(key, *n, "an integer");
  return std::nullopt;
}

std::optional<bool> Section::boolean(std::string_view key) {
  const toml::node* n = get(key);
  if (!n) return std::nullopt;
  if (n->is_boolean()) return n->as_boolean()->get();
  wrong_type(key, *n, "true or false");
  return std::nullopt;
}

const toml::table* Section::table(std::string_view key) {
  const toml::node* n = get(key);
  if (!n) return nullptr;
  if (n->is_table()) return n->as_table();
  wrong_type(key, *n, "a table, e.g. { ... }");
  return nullptr;
}

std::optional<std::vector<std::string>> Section::strings(std::string_view key) {
  const toml::node* n = get(key);
  if (!n) return std::nullopt;
  const toml::array* a = n->as_array();
  if (!a) {
    wrong_type(key, *n, "an array of strings");
    return std::nullopt;
  }
  std::vector<std::string> out;
  for (const toml::node& e : *a) {
    if (!e.is_string()) {
      wrong_type(key, e, "an array of strings");
      return std::nullopt;
    }
    out.push_back(e.as_string()->get());
  }
  return out;
}

void Section::finish() {
  for (const auto& [k, v] : t_) {
    std::string key(k.str());
    if (known_.count(key)) continue;
    std::string likely = closest_key(key, known_);
    std::string hint =
        likely.empty() ? "" : fmt::format(" (did you mean \"{}{}\"?)", prefix_, likely);
    c_.error(line_of(v), ctx_, fmt::format("unknown key \"{}{}\"{}", prefix_, key, hint));
  }
}

const toml::node* Section::get(std::string_view key) {
  known_.insert(std::string(key));
  return t_.get(key);
}

void Section::wrong_type(std::string_view key, const toml::node& n, const char* want) {
  c_.error(line_of(n), ctx_,
           fmt::format("{}{} must be {} (got {})", prefix_, key, want, type_name(n)));
}

std::string NameRegistry::read(Section& s) {
  auto v = s.str("name");
  if (!v && !s.has("name")) {
    s.error_here(fmt::format("{} has no name (add name = \"...\")", kind_));
    return {};
  }
  if (!v) return {};
  if (v->empty()) {
    s.error("name", "must not be empty");
    return {};
  }
  s.set_context(std::string(kind_) + " " + dq(*v));
  if (auto it = lines_.find(*v); it != lines_.end()) {
    s.error("name", fmt::format("{} is already used by the {} on line {}", dq(*v), kind_,
                                it->second));
    return *v;
  }
  lines_[*v] = s.line("name");
  return *v;
}

}  // namespace mb::config_internal
