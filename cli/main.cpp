// File: cli/main.cpp — the mailbridge executable: hands argv to run_cli (cli/cli.h).
#include <iostream>
#include <string>
#include <vector>

#include "cli/cli.h"
#include "cli/service.h"

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  mb::cli::allow_restart();  // `run` may start itself again (cli/service.h)
  return mb::run_cli(std::move(args), std::cout, std::cerr);
}
