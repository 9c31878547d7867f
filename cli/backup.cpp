// File: cli/backup.cpp — `mailbridge backup FILE`: a consistent copy of the live store
// (Store::backup_file, core/store_backup.cpp), safe while `run` or `sync` writes to it.
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "cli/cli.h"

namespace mb::cli {
namespace {

int run_backup(Context& ctx, const std::string& file) {
  auto cfg = load(ctx);
  if (!cfg.ok()) return exit_code(cfg.status());
  auto done = Store::backup_file(cfg->store.path, file);
  if (!done.ok()) {
    const Origin origin = done.status().kind() == ErrorKind::kInvalidInput
                              ? Origin::kCommandLine : Origin::kRuntime;
    return fail(ctx, done.status(), origin);
  }
  ctx.out << fmt::format("backed up {} to {} ({} pages, {} bytes)\n", cfg->store.path, file,
                         done->pages, done->bytes);
  return 0;
}

}  // namespace

void add_backup(CLI::App& app, Context& ctx) {
  auto* cmd = app.add_subcommand(
      "backup", "write a consistent copy of the store to FILE (safe while the service runs)");
  auto file = std::make_shared<std::string>();
  cmd->add_option("FILE", *file, "the copy to write (replaced atomically)")->required();
  cmd->callback([&ctx, file] { ctx.action = [&ctx, file] { return run_backup(ctx, *file); }; });
}

}  // namespace mb::cli
