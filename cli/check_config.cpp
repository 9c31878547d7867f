// File: cli/check_config.cpp — `mailbridge check-config`: validates the file and what it
// names (paths, environment), reports every error, and summarises it.
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <sstream>

#include "cli/cli.h"

namespace mb::cli {
namespace {

std::string count(size_t n, const char* one, const char* many) {
  return fmt::format("{} {}", n, n == 1 ? one : many);
}

int run_check_config(Context& ctx) {
  if (Status exists = config_file_exists(ctx); !exists.ok()) return fail(ctx, exists);
  // Deep: also the paths and environment the file names, which would fail only later.
  auto cfg = load_config(ctx.config_path, ConfigCheck::kDeep);
  if (!cfg.ok()) {
    // Every error, one per line.
    std::istringstream errors(cfg.status().message());
    for (std::string line; std::getline(errors, line);) print_error(ctx, line);
    return exit_code(cfg.status());
  }
  size_t enabled = 0;
  for (const auto& m : cfg->mailboxes) enabled += m.enabled ? 1 : 0;
  std::string disabled =
      enabled < cfg->mailboxes.size()
          ? fmt::format(" ({} disabled)", cfg->mailboxes.size() - enabled) : "";
  ctx.out << fmt::format("OK: {}{}, {}, {}, {}, {}; store {}\n",
                         count(cfg->mailboxes.size(), "mailbox", "mailboxes"), disabled,
                         count(cfg->senders.size(), "sender", "senders"),
                         count(cfg->apps.size(), "app", "apps"),
                         count(cfg->projects.size(), "project", "projects"),
                         count(cfg->users.size(), "user", "users"), cfg->store.path);
  for (const auto& w : cfg->warnings) ctx.out << "warning: " << w << "\n";
  return 0;
}

}  // namespace

void add_check_config(CLI::App& app, Context& ctx) {
  auto* cmd = app.add_subcommand("check-config", "validate the configuration file");
  cmd->callback([&ctx] { ctx.action = [&ctx] { return run_check_config(ctx); }; });
}

}  // namespace mb::cli
