// File: cli/config_path.cpp — the choice of the configuration file (cli/config_path.h).
#include "cli/config_path.h"

#include <filesystem>
#include <system_error>

#include "cli/install_dirs.h"

namespace mb::cli {
namespace {

constexpr const char* kLocalDefault = "mailbridge.toml";

// `path` with symbolic links resolved as far as it exists; `path` itself on error.
std::filesystem::path resolved(const std::filesystem::path& path) {
  std::error_code ec;
  auto r = std::filesystem::weakly_canonical(path, ec);
  return ec ? path.lexically_normal() : r;
}

bool is_installed(const std::string& executable, const InstallLayout& layout) {
  if (executable.empty() || layout.bindir.empty()) return false;
  return resolved(std::filesystem::path(executable).parent_path()) == resolved(layout.bindir);
}

}  // namespace

InstallLayout installed_layout() {
  return {MAILBRIDGE_INSTALL_BINDIR, MAILBRIDGE_INSTALL_SYSCONFDIR};
}

std::string running_executable() {
  std::error_code ec;
  auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::string() : exe.string();
}

ConfigChoice choose_config_path(const std::optional<std::string>& option, const char* env,
                                const std::string& executable, const InstallLayout& layout) {
  if (option) return {*option, ConfigOrigin::kOption};
  if (env != nullptr && *env != '\0') return {env, ConfigOrigin::kEnvironment};
  if (is_installed(executable, layout)) {
    return {(std::filesystem::path(layout.sysconfdir) / "mailbridge" / "mailbridge.toml")
                .string(),
            ConfigOrigin::kInstalledDefault};
  }
  return {kLocalDefault, ConfigOrigin::kDefault};
}

std::string describe(const ConfigChoice& choice) {
  switch (choice.origin) {
    case ConfigOrigin::kOption:
      return "named by --config";
    case ConfigOrigin::kEnvironment:
      return "named by the environment variable MAILBRIDGE_CONFIG";
    case ConfigOrigin::kInstalledDefault:
      return "the default of the installed mailbridge; choose another file with --config "
             "FILE or MAILBRIDGE_CONFIG";
    case ConfigOrigin::kDefault:
      break;
  }
  return "the default, in the current directory; choose another file with --config FILE or "
         "MAILBRIDGE_CONFIG";
}

}  // namespace mb::cli
