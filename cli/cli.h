// File: cli/cli.h — the mailbridge command line as a library, so that tests can drive it.
//
// run_cli() parses `args` (without the program name), runs one sub-command and returns the
// process exit code (cli/context.h, exit_code: 0 success, 1 runtime failure, 2 usage or
// configuration error, 3 authentication failure, 4 connection or certificate failure).
// `--version` prints "mailbridge <version>", the VERSION of CMake's project().
//
//   std::ostringstream out, err;
//   int rc = mb::run_cli({"--config", "mb.toml", "tickets", "list", "--json"}, out, err);
#pragma once

#include <ostream>
#include <string>
#include <vector>

#include "cli/context.h"

namespace CLI {
class App;
}

namespace mb {

int run_cli(std::vector<std::string> args, std::ostream& out, std::ostream& err);

namespace cli {

// One per sub-command file.
void add_check_config(CLI::App& app, Context& ctx);
void add_test_connection(CLI::App& app, Context& ctx);
void add_sync(CLI::App& app, Context& ctx);
void add_tickets(CLI::App& app, Context& ctx);
void add_status(CLI::App& app, Context& ctx);
void add_auth(CLI::App& app, Context& ctx);
void add_doctor(CLI::App& app, Context& ctx);
void add_send_test(CLI::App& app, Context& ctx);
void add_backup(CLI::App& app, Context& ctx);
void add_run(CLI::App& app, Context& ctx);

}  // namespace cli
}  // namespace mb
