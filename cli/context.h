// File: cli/context.h — what every sub-command shares: the Context it runs in, the one map
// from a Status to the process exit code, and the one way to load the configuration and to
// open the store. Each of these helpers prints its own error, so that a sub-command only
// returns the exit code:
//
//   int run_list(Context& ctx) {
//     auto opened = open_config_and_store(ctx);
//     if (!opened.ok()) return exit_code(opened.status());  // already printed
//     auto tickets = opened->store->list_tickets();
//     if (!tickets.ok()) return fail(ctx, tickets.status());  // prints it, returns 1
//     ...
//   }
#pragma once

#include <functional>
#include <memory>
#include <ostream>
#include <string>

#include "cli/config_path.h"
#include "core/config.h"
#include "core/status.h"
#include "core/store.h"

namespace mb::cli {

// What every sub-command gets: the global options, the streams, and a slot for the action
// the parsed sub-command wants run once parsing has succeeded. `out` and `err` escape
// every control character but newlines and tabs (cli/terminal.h), so that text from mail
// or a server cannot drive the terminal; `raw_out` and `raw_err` are the streams under
// them, for the CLI's own terminal control (the progress line) and for binary output.
struct Context {
  // The configuration file and how it was chosen (cli/config_path.h): run_cli sets both once
  // the command line is parsed.
  std::string config_path = "mailbridge.toml";
  ConfigOrigin config_origin = ConfigOrigin::kDefault;
  std::string log_level = "warn";
  std::string log_format = "text";  // text | json (cli/log.h)
  std::ostream& out;
  std::ostream& err;
  std::ostream& raw_out;
  std::ostream& raw_err;
  bool err_is_terminal = false;
  std::function<int()> action;
};

// Where the input behind an ErrorKind::kInvalidInput error came from.
enum class Origin {
  kRuntime,      // mail, a server's answer, the store: a runtime failure (1)
  kCommandLine,  // what the user typed or named (`send --body-file`, `--user`): usage (2)
};

// exit_code — the process exit code of a command that ends with `status`. The one map from
// error kinds to exit codes; README.md and docs/configuration.md ("Exit codes of the CLI")
// give the same table:
//
//   0  success (an OK status)
//   1  runtime failure: every kind not named below
//   2  usage or configuration error: kConfig; kInvalidInput with Origin::kCommandLine
//   3  authentication failure: kAuth
//   4  connection or certificate failure: kNetwork, kTls
int exit_code(const Status& status, Origin origin = Origin::kRuntime);

// worse_exit_code — of two exit codes, the one that matters more: 3 beats 4 beats 2 beats
// 1 beats 0 (`sync` and `doctor` report the worst of their mailboxes).
int worse_exit_code(int a, int b);

// print_error — prints "mailbridge: <message>" on ctx.err, scrubbed of every known secret.
void print_error(Context& ctx, const std::string& message);

// fail — prints `status` with print_error and returns its exit_code.
int fail(Context& ctx, const Status& status, Origin origin = Origin::kRuntime);

// print_step — one step of `test-connection` or `send-test` on ctx.out ("  ✓ name  detail"),
// the detail scrubbed of every known secret.
void print_step(Context& ctx, bool ok, const std::string& name, const std::string& detail);

// config_file_exists — OK when the configuration file exists; else kConfig naming the path
// and how it was chosen (`--config`, MAILBRIDGE_CONFIG, a default). Printed by load().
Status config_file_exists(const Context& ctx);

// load — loads the configuration file (ctx.config_path). On error prints it and returns it (kConfig: exit code 2).
// Warnings are logged at warn level for commands that connect (`connects`), else at debug
// level, so that read-only commands stay quiet.
Result<Config> load(Context& ctx, bool connects = false);

// Whether a command may create the store.
enum class StoreUse {
  kCreate,    // open it, creating the file (and running migrations) when absent
  kIfExists,  // commands that only test (test-connection, doctor, send-test) must not
              // create it: nullptr when the file does not exist
};

// open_store — opens the configured store. On error prints it and returns it; exit_code()
// of it is the command's exit code (2 for a path that is a directory). A store that exists
// but cannot be opened is an error for every use, kIfExists included.
Result<std::unique_ptr<Store>> open_store(Context& ctx, const Config& config,
                                          StoreUse use = StoreUse::kCreate);

struct Opened {
  Config config;
  std::unique_ptr<Store> store;
};

// open_config_and_store — load() then open_store(kCreate), for the commands that need
// nothing else first. On error the message is printed; return exit_code(status).
Result<Opened> open_config_and_store(Context& ctx, bool connects = false);

}  // namespace mb::cli
