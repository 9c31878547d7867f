// File: cli/main.cpp — the mailbridge executable: hands argv to run_cli (cli/cli.h).
#include <iostream>
#include <string>
#include <vector>

#include "cli/cli.h"

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  return mb::run_cli(std::move(args), std::cout, std::cerr);
}
