// File: cli/cli.cpp — run_cli: global options (--config, chosen by cli/config_path.h;
// --log-level, --log-format, --version), logging to stderr (cli/log.h) and sub-command
// dispatch.
#include "cli/cli.h"

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdlib>
#include <iostream>

#include "cli/log.h"
#include "cli/outbox.h"
#include "cli/terminal.h"
#include "cli/version.h"

namespace mb {

namespace {

// The --config option's help: the rule of cli/config_path.h with this build's paths.
std::string config_help() {
  auto installed = cli::choose_config_path(std::nullopt, nullptr, cli::installed_layout().bindir +
                                               "/mailbridge", cli::installed_layout());
  return "configuration file (default: $MAILBRIDGE_CONFIG, else " + installed.path +
         " for the installed binary, else mailbridge.toml)";
}

int parse_and_run(CLI::App& app, std::vector<std::string> args, cli::Context& ctx,
                  const CLI::Option& config_option, const std::string& config_value) {
  std::reverse(args.begin(), args.end());
  try {
    app.parse(std::move(args));
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e, ctx.out, ctx.err);
    ctx.err << "mailbridge: " << e.what() << "\n"
            << "Run with --help for more information.\n";
    return 2;
  }
  auto config = cli::choose_config_path(
      config_option.count() > 0 ? std::optional<std::string>(config_value) : std::nullopt,
      std::getenv("MAILBRIDGE_CONFIG"), cli::running_executable(), cli::installed_layout());
  ctx.config_path = config.path;
  ctx.config_origin = config.origin;
  if (!ctx.action) return 2;  // a sub-command group (e.g. "tickets") without its action
  cli::LoggerScope logging(ctx.err, ctx.log_level,
                          cli::parse_log_format(ctx.log_format).value_or(cli::LogFormat::kText));
  return ctx.action();
}

}  // namespace

int run_cli(std::vector<std::string> args, std::ostream& out, std::ostream& err) {
  cli::TerminalSafeStream safe_out(out);
  cli::TerminalSafeStream safe_err(err);
  cli::Context ctx{.out = safe_out, .err = safe_err, .raw_out = out, .raw_err = err,
                   .err_is_terminal = false, .action = {}};
  ctx.err_is_terminal = &err == &std::cerr && ::isatty(STDERR_FILENO);
  CLI::App app("mailbridge — turns email into help-desk tickets", "mailbridge");
  app.set_version_flag("--version", "mailbridge " MAILBRIDGE_VERSION);
  app.fallthrough();
  app.require_subcommand(1);
  app.option_defaults()->always_capture_default();
  std::string config_value;
  const CLI::Option* config_option = app.add_option("--config", config_value, config_help());
  app.add_option("--log-level", ctx.log_level, "log level (logs go to stderr)")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "off"}))
      ->capture_default_str();
  app.add_option("--log-format", ctx.log_format,
                 "log lines as text or as JSON objects, one a line (logs go to stderr)")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();
  cli::add_check_config(app, ctx);
  cli::add_test_connection(app, ctx);
  cli::add_sync(app, ctx);
  cli::add_run(app, ctx);
  cli::add_tickets(app, ctx);
  cli::add_status(app, ctx);
  cli::add_auth(app, ctx);
  cli::add_doctor(app, ctx);
  cli::add_send_test(app, ctx);
  cli::add_send(app, ctx);
  cli::add_outbox(app, ctx);
  cli::add_backup(app, ctx);
  try {
    return parse_and_run(app, std::move(args), ctx, *config_option, config_value);
  } catch (const std::exception& e) {
    cli::print_error(ctx, std::string("internal error: ") + e.what());
    return 1;
  }
}

}  // namespace mb
