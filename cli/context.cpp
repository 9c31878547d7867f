// File: cli/context.cpp — the exit-code map, error printing, and the loading of the
// configuration and the store that every sub-command goes through (cli/context.h).
#include "cli/context.h"

#include <spdlog/spdlog.h>

#include <sys/stat.h>

#include <cerrno>
#include <filesystem>

#include "auth/secrets.h"

namespace mb::cli {
namespace {

int rank(int code) {
  switch (code) {
    case 3: return 5;
    case 4: return 4;
    case 2: return 3;
    case 0: return 0;
    default: return 2;
  }
}

}  // namespace

int exit_code(const Status& status, Origin origin) {
  switch (status.kind()) {
    case ErrorKind::kOk: return 0;
    case ErrorKind::kAuth: return 3;
    case ErrorKind::kNetwork:
    case ErrorKind::kTls: return 4;
    case ErrorKind::kConfig: return 2;
    case ErrorKind::kInvalidInput: return origin == Origin::kCommandLine ? 2 : 1;
    default: return 1;
  }
}

int worse_exit_code(int a, int b) { return rank(b) > rank(a) ? b : a; }

void print_error(Context& ctx, const std::string& message) {
  ctx.err << "mailbridge: " << Redactor::instance().scrub(message) << "\n";
}

int fail(Context& ctx, const Status& status, Origin origin) {
  print_error(ctx, status.message());
  return exit_code(status, origin);
}

void print_step(Context& ctx, bool ok, const std::string& name, const std::string& detail) {
  ctx.out << fmt::format("  {} {:<12} {}\n", ok ? "✓" : "✗", name,
                         Redactor::instance().scrub(detail));
}

Status config_file_exists(const Context& ctx) {
  struct stat st {};
  if (::stat(ctx.config_path.c_str(), &st) == 0 || errno != ENOENT) return Status::Ok();
  return Status(ErrorKind::kConfig,
                "configuration file " + ctx.config_path + " does not exist (" +
                    describe(ConfigChoice{ctx.config_path, ctx.config_origin}) + ")");
}

Result<Config> load(Context& ctx, bool connects) {
  if (Status exists = config_file_exists(ctx); !exists.ok()) {
    print_error(ctx, exists.message());
    return exists;
  }
  auto cfg = load_config(ctx.config_path);
  if (!cfg.ok()) {
    print_error(ctx, cfg.status().message());
    return cfg;
  }
  for (const auto& w : cfg->warnings) {
    spdlog::log(connects ? spdlog::level::warn : spdlog::level::debug, "{}", w);
  }
  return cfg;
}

Result<std::unique_ptr<Store>> open_store(Context& ctx, const Config& config, StoreUse use) {
  std::error_code ec;
  if (use == StoreUse::kIfExists && !std::filesystem::exists(config.store.path, ec)) {
    return std::unique_ptr<Store>();
  }
  auto store = Store::open(config.store.path);
  if (!store.ok()) print_error(ctx, store.status().message());
  return store;
}

Result<Opened> open_config_and_store(Context& ctx, bool connects) {
  auto cfg = load(ctx, connects);
  if (!cfg.ok()) return cfg.status();
  auto store = open_store(ctx, *cfg);
  if (!store.ok()) return store.status();
  return Opened{std::move(*cfg), std::move(*store)};
}

}  // namespace mb::cli
