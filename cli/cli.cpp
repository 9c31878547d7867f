// File: cli/cli.cpp — run_cli: global options (--config, --log-level, --version), logging
// to stderr and sub-command dispatch.
#include "cli/cli.h"

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <iostream>
#include <mutex>

#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>

#include "auth/secrets.h"
#include "cli/outbox.h"
#include "cli/terminal.h"
#include "cli/version.h"

namespace mb {
namespace cli {
namespace {

// Writes log lines to the error stream after scrubbing every known secret from them: a last
// line of defence for server text that ends up in a log.
class ScrubbingSink : public spdlog::sinks::base_sink<std::mutex> {
 public:
  explicit ScrubbingSink(std::ostream& os) : os_(os) {}

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    spdlog::memory_buf_t buf;
    formatter_->format(msg, buf);
    os_ << Redactor::instance().scrub(std::string_view(buf.data(), buf.size())) << std::flush;
  }
  void flush_() override { os_.flush(); }

 private:
  std::ostream& os_;
};

// Installs the CLI's logger for the duration of one run_cli and restores the previous one.
class LoggerScope {
 public:
  LoggerScope(std::ostream& err, const std::string& level) : previous_(spdlog::default_logger()) {
    auto sink = std::make_shared<ScrubbingSink>(err);
    auto logger = std::make_shared<spdlog::logger>("mailbridge", sink);
    logger->set_pattern("mailbridge: [%l] %v");
    logger->set_level(spdlog::level::from_str(level));
    spdlog::set_default_logger(logger);
  }
  ~LoggerScope() { spdlog::set_default_logger(previous_); }
  LoggerScope(const LoggerScope&) = delete;
  LoggerScope& operator=(const LoggerScope&) = delete;

 private:
  std::shared_ptr<spdlog::logger> previous_;
};

}  // namespace

}  // namespace cli

namespace {

int parse_and_run(CLI::App& app, std::vector<std::string> args, cli::Context& ctx) {
  std::reverse(args.begin(), args.end());
  try {
    app.parse(std::move(args));
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e, ctx.out, ctx.err);
    ctx.err << "mailbridge: " << e.what() << "\n"
            << "Run with --help for more information.\n";
    return 2;
  }
  if (!ctx.action) return 2;  // a sub-command group (e.g. "tickets") without its action
  cli::LoggerScope logging(ctx.err, ctx.log_level);
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
  app.add_option("--config", ctx.config_path, "configuration file")->capture_default_str();
  app.add_option("--log-level", ctx.log_level, "log level (logs go to stderr)")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "off"}))
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
  try {
    return parse_and_run(app, std::move(args), ctx);
  } catch (const std::exception& e) {
    cli::print_error(ctx, std::string("internal error: ") + e.what());
    return 1;
  }
}

}  // namespace mb
