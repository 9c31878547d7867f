// File: cli/cli.h — the mailbridge command line as a library, so that tests can drive it.
//
// run_cli() parses `args` (without the program name), runs one sub-command and returns the
// process exit code: 0 success, 1 runtime failure, 2 usage or configuration error,
// 3 authentication failure, 4 connection or certificate failure.
//
//   std::ostringstream out, err;
//   int rc = mb::run_cli({"--config", "mb.toml", "tickets", "list", "--json"}, out, err);
#pragma once

#include <functional>
#include <ostream>
#include <string>
#include <vector>

#include "core/config.h"
#include "core/status.h"

namespace CLI {
class App;
}

namespace mb {

int run_cli(std::vector<std::string> args, std::ostream& out, std::ostream& err);

namespace cli {

// What every sub-command gets: the global options, the streams, and a slot for the action
// the parsed sub-command wants run once parsing has succeeded. `out` and `err` escape
// every control character but newlines and tabs (cli/terminal.h), so that text from mail
// or a server cannot drive the terminal; `raw_out` and `raw_err` are the streams under
// them, for the CLI's own terminal control (the progress line) and for binary output.
struct Context {
  std::string config_path = "mailbridge.toml";
  std::string log_level = "warn";
  std::ostream& out;
  std::ostream& err;
  std::ostream& raw_out;
  std::ostream& raw_err;
  bool err_is_terminal = false;
  std::function<int()> action;
};

// The exit code for an error of `kind` (kAuth → 3, kNetwork/kTls → 4, kConfig → 2, else 1).
int exit_code_for(ErrorKind kind);
// Of two exit codes, the one that matters more: 3 beats 4 beats 2 beats 1 beats 0.
int worse_exit_code(int a, int b);

// Loads --config; on error prints it to err and returns the error (exit code 2). Warnings
// are logged at warn level for commands that connect (`connects`), else at debug level, so
// that read-only commands stay quiet.
Result<Config> load(Context& ctx, bool connects = false);
// Prints "mailbridge: <message>" on err, scrubbed of every known secret.
void print_error(Context& ctx, const std::string& message);

// One per sub-command file.
void add_check_config(CLI::App& app, Context& ctx);
void add_test_connection(CLI::App& app, Context& ctx);
void add_sync(CLI::App& app, Context& ctx);
void add_tickets(CLI::App& app, Context& ctx);
void add_status(CLI::App& app, Context& ctx);
void add_auth(CLI::App& app, Context& ctx);
void add_doctor(CLI::App& app, Context& ctx);
void add_send_test(CLI::App& app, Context& ctx);

}  // namespace cli
}  // namespace mb
