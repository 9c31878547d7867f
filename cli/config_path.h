// File: cli/config_path.h — which configuration file a command reads, and why that one
// (SPEC §5; docs/configuration.md, "Which file").
//
// The first that applies:
//   1. `--config FILE`;
//   2. the environment variable MAILBRIDGE_CONFIG, when set and not empty;
//   3. the installed default, <sysconfdir>/mailbridge/mailbridge.toml (/etc/mailbridge/…
//      with the default prefix /usr), when the running binary is the installed one: its
//      directory is the <bindir> it was built for (/usr/bin);
//   4. mailbridge.toml in the current directory (a binary in the build tree, or copied
//      elsewhere).
//
//   auto choice = mb::cli::choose_config_path(std::nullopt, std::getenv("MAILBRIDGE_CONFIG"),
//                                             mb::cli::running_executable(),
//                                             mb::cli::installed_layout());
#pragma once

#include <optional>
#include <string>

namespace mb::cli {

enum class ConfigOrigin {
  kOption,            // --config
  kEnvironment,       // MAILBRIDGE_CONFIG
  kInstalledDefault,  // the installed binary's default
  kDefault,           // mailbridge.toml in the current directory
};

struct ConfigChoice {
  std::string path;
  ConfigOrigin origin = ConfigOrigin::kDefault;
};

// Where the build installs the binary and the configuration (CMAKE_INSTALL_FULL_BINDIR and
// CMAKE_INSTALL_FULL_SYSCONFDIR, compiled in).
struct InstallLayout {
  std::string bindir;
  std::string sysconfdir;
};
InstallLayout installed_layout();

// The path of the running executable (/proc/self/exe); "" when it cannot be read.
std::string running_executable();

// The rule above. `env` is MAILBRIDGE_CONFIG's value (nullptr: unset); `executable` the
// running binary's path. Symbolic links in both directories are resolved before comparing.
ConfigChoice choose_config_path(const std::optional<std::string>& option, const char* env,
                                const std::string& executable, const InstallLayout& layout);

// How the path was chosen, for error messages: "named by --config", …
std::string describe(const ConfigChoice& choice);

}  // namespace mb::cli
