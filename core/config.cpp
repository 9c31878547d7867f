// File: core/config.cpp — reads the TOML configuration into the structs of core/config.h:
// the document's tables in the order their references need, parse_config() and
// load_config(). The readers are by concern: core/internal/toml_reader.cpp (Checker,
// Section), core/config_values.cpp, core/config_connections.cpp, core/config_apps.cpp,
// core/config_sections.cpp and core/config_checks.cpp.
#include "core/config.h"

#include <toml++/toml.h>

#include <filesystem>
#include <map>
#include <set>

#include <fmt/format.h>

#include "core/files.h"
#include "core/internal/config_readers.h"

namespace mb {

using namespace config_internal;  // NOLINT: this file only assembles its readers

namespace {

namespace fs = std::filesystem;

using TableReader = void (*)(Section&, Config&);
using ArrayReader = void (*)(const toml::table&, size_t, NameRegistry&, Config&, Checker&);

// A top-level [table]; absent tables still run their reader so that defaults get resolved.
void read_table(const toml::table& root, const char* key, TableReader reader, Config& cfg,
                Checker& c) {
  static const toml::table kEmpty;
  const toml::node* n = root.get(key);
  if (n && !n->is_table()) {
    c.error(line_of(*n), "", fmt::format("{} must be a table: write [{}]", key, key));
    return;
  }
  Section s(n ? *n->as_table() : kEmpty, fmt::format("[{}]", key), c);
  reader(s, cfg);
  s.finish();
}

// Each element of an [[array]] of tables.
template <typename Fn>
void read_array(const toml::table& root, const char* key, Checker& c, Fn&& each) {
  const toml::node* n = root.get(key);
  if (!n) return;
  const toml::array* a = n->as_array();
  if (!a || !a->is_array_of_tables()) {
    c.error(line_of(*n), "", fmt::format("{} must be an array of tables: write [[{}]]", key, key));
    return;
  }
  for (size_t i = 0; i < a->size(); ++i) each(*(*a)[i].as_table(), i);
}

// The top-level keys nobody reads, with the table each most likely means.
void check_top_keys(const toml::table& root, Checker& c) {
  static const std::set<std::string> kKnown = {"store",   "tracking", "ingest", "filters",
                                               "monitor", "auth",     "app",     "mailbox",
                                               "sender",  "project",  "user",
                                               "outbox",  "service"};
  for (const auto& [k, v] : root) {
    std::string key(k.str());
    if (kKnown.count(key)) continue;
    std::string likely = closest_key(key, kKnown);
    std::string hint = likely.empty() ? "" : fmt::format(" (did you mean [{}]?)", likely);
    c.error(line_of(v), "", fmt::format("unknown key \"{}\"{}", key, hint));
  }
}

void read_document(const toml::table& root, Config& cfg, Checker& c) {
  check_top_keys(root, c);
  read_table(root, "store", read_store, cfg, c);
  read_table(root, "ingest", read_ingest, cfg, c);
  read_table(root, "filters", read_filters, cfg, c);
  // Referenced kinds first, so that references can be checked as they are read.
  NameRegistry apps("app"), projects("project"), mailboxes("mailbox"), senders("sender");
  std::map<std::string, int> users;
  read_array(root, "app", c, [&](auto& t, size_t i) { read_app(t, i, apps, cfg, c); });
  read_table(root, "auth", read_auth_section, cfg, c);
  read_array(root, "project", c, [&](auto& t, size_t i) { read_project(t, i, projects, cfg, c); });
  read_array(root, "user", c, [&](auto& t, size_t i) { read_user(t, i, users, cfg, c); });
  read_array(root, "mailbox", c, [&](auto& t, size_t i) { read_mailbox(t, i, mailboxes, cfg, c); });
  read_array(root, "sender", c, [&](auto& t, size_t i) { read_sender(t, i, senders, cfg, c); });
  read_table(root, "monitor", read_monitor, cfg, c);
  read_table(root, "tracking", read_tracking, cfg, c);
  read_table(root, "outbox", read_outbox, cfg, c);
  read_table(root, "service", read_service, cfg, c);
}

}  // namespace

std::string to_string(MailboxAccess access) {
  switch (access) {
    case MailboxAccess::kOwn: return "own";
    case MailboxAccess::kImpersonation: return "impersonation";
    case MailboxAccess::kDelegate: return "delegate";
  }
  return "own";
}

bool same_settings(const MailboxConfig& a, const MailboxConfig& b) {
  MailboxConfig moved = b;
  moved.line_no = a.line_no;
  return a == moved;
}

const MailboxConfig* Config::find_mailbox(const std::string& name) const {
  for (const auto& m : mailboxes) {
    if (m.name == name) return &m;
  }
  return nullptr;
}

const AppConfig* Config::find_app(const std::string& name) const {
  for (const auto& a : apps) {
    if (a.name == name) return &a;
  }
  return nullptr;
}

const ProjectConfig* Config::find_project(const std::string& name) const {
  for (const auto& p : projects) {
    if (p.name == name) return &p;
  }
  return nullptr;
}

const SenderConfig* Config::find_sender(const std::string& name) const {
  for (const auto& s : senders) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

Result<Config> parse_config(const std::string& text, const std::string& origin,
                            const std::string& base_dir, ConfigCheck check) {
  Checker checker(origin, base_dir, check);
  Config cfg;
  cfg.path = origin;
  try {
    toml::table root = toml::parse(text, std::string_view(origin));
    read_document(root, cfg, checker);
  } catch (const toml::parse_error& e) {
    return Status(ErrorKind::kConfig, fmt::format("{}:{}: {}", origin, e.source().begin.line,
                                                  e.description()));
  } catch (const std::exception& e) {
    return Status(ErrorKind::kConfig, fmt::format("{}: {}", origin, e.what()));
  }
  if (checker.has_errors()) return Status(ErrorKind::kConfig, checker.all_errors());
  cfg.warnings = checker.take_warnings();
  return cfg;
}

Result<Config> load_config(const std::string& path, ConfigCheck check) {
  auto text = read_regular_file(path, kMaxConfigFileBytes, "configuration");
  if (!text.ok()) return text.status();
  std::error_code ec;
  fs::path dir = fs::absolute(fs::path(path), ec).parent_path();
  if (ec) dir = fs::path(path).parent_path();
  auto cfg = parse_config(*text, path, dir.lexically_normal().string(), check);
  if (cfg.ok()) cfg->path = path;
  return cfg;
}

}  // namespace mb
