// File: tests/unit/cli/config_path_test.cpp — which configuration file a command reads
// (cli/config_path.h): --config over MAILBRIDGE_CONFIG over the installed or local default, and
// the error that names the path and how it was chosen.
#include "cli/config_path.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "cli/cli.h"

namespace mb::cli {
namespace {

using ::testing::HasSubstr;
namespace fs = std::filesystem;

class ConfigPathTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("mb_config_path_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "usr" / "bin");
    layout_ = {(dir_ / "usr" / "bin").string(), (dir_ / "etc").string()};
  }
  void TearDown() override {
    ::unsetenv("MAILBRIDGE_CONFIG");
    fs::remove_all(dir_);
  }
  fs::path dir_;
  InstallLayout layout_;
};

TEST_F(ConfigPathTest, OptionWinsOverEnvironmentAndDefaults) {
  const std::string installed = layout_.bindir + "/mailbridge";
  auto c = choose_config_path(std::string("/srv/mb.toml"), "/env/mb.toml", installed, layout_);
  EXPECT_EQ(c.path, "/srv/mb.toml");
  EXPECT_EQ(c.origin, ConfigOrigin::kOption);
}

TEST_F(ConfigPathTest, EnvironmentWinsOverDefaultsWhenNotEmpty) {
  const std::string installed = layout_.bindir + "/mailbridge";
  auto c = choose_config_path(std::nullopt, "/env/mb.toml", installed, layout_);
  EXPECT_EQ(c.path, "/env/mb.toml");
  EXPECT_EQ(c.origin, ConfigOrigin::kEnvironment);
  auto empty = choose_config_path(std::nullopt, "", installed, layout_);
  EXPECT_EQ(empty.origin, ConfigOrigin::kInstalledDefault);
}

TEST_F(ConfigPathTest, InstalledBinaryDefaultsToSysconfdir) {
  auto c = choose_config_path(std::nullopt, nullptr, layout_.bindir + "/mailbridge", layout_);
  EXPECT_EQ(c.path, (dir_ / "etc" / "mailbridge" / "mailbridge.toml").string());
  EXPECT_EQ(c.origin, ConfigOrigin::kInstalledDefault);
}

TEST_F(ConfigPathTest, InstalledThroughASymlinkedDirectory) {
  // /bin -> usr/bin on a merged-/usr system: the same directory under another name.
  fs::create_directory_symlink(dir_ / "usr" / "bin", dir_ / "bin");
  auto c = choose_config_path(std::nullopt, nullptr, (dir_ / "bin" / "mailbridge").string(),
                              layout_);
  EXPECT_EQ(c.origin, ConfigOrigin::kInstalledDefault);
}

TEST_F(ConfigPathTest, AnyOtherBinaryDefaultsToTheCurrentDirectory) {
  for (const std::string& exe : {(dir_ / "build" / "cli" / "mailbridge").string(),
                                (dir_ / "usr" / "bin" / "sub" / "mailbridge").string(),
                                std::string()}) {
    auto c = choose_config_path(std::nullopt, nullptr, exe, layout_);
    EXPECT_EQ(c.path, "mailbridge.toml") << exe;
    EXPECT_EQ(c.origin, ConfigOrigin::kDefault) << exe;
  }
}

TEST_F(ConfigPathTest, ThisTestIsNotTheInstalledBinary) {
  EXPECT_FALSE(running_executable().empty());
  auto c = choose_config_path(std::nullopt, nullptr, running_executable(), installed_layout());
  EXPECT_EQ(c.origin, ConfigOrigin::kDefault);
}

TEST_F(ConfigPathTest, DescriptionsSayHowThePathWasChosen) {
  EXPECT_THAT(describe({"x", ConfigOrigin::kOption}), HasSubstr("--config"));
  EXPECT_THAT(describe({"x", ConfigOrigin::kEnvironment}), HasSubstr("MAILBRIDGE_CONFIG"));
  EXPECT_THAT(describe({"x", ConfigOrigin::kInstalledDefault}), HasSubstr("installed"));
  EXPECT_THAT(describe({"x", ConfigOrigin::kDefault}), HasSubstr("current directory"));
}

struct CliRun {
  int code;
  std::string out;
  std::string err;
};

CliRun run_command(std::vector<std::string> args) {
  std::ostringstream out, err;
  int code = run_cli(std::move(args), out, err);
  return {code, out.str(), err.str()};
}

TEST_F(ConfigPathTest, RunCliReadsMailbridgeConfigAndLetsConfigOverrideIt) {
  const auto env_file = dir_ / "from-env.toml";
  std::ofstream(env_file) << "[store]\npath = \"env.db\"\n";
  const auto opt_file = dir_ / "from-option.toml";
  std::ofstream(opt_file) << "[store]\npath = \"option.db\"\n";
  ::setenv("MAILBRIDGE_CONFIG", env_file.c_str(), 1);
  CliRun from_env = run_command({"check-config"});
  EXPECT_EQ(from_env.code, 0) << from_env.err;
  EXPECT_THAT(from_env.out, HasSubstr((dir_ / "env.db").string()));
  CliRun from_option = run_command({"--config", opt_file.string(), "check-config"});
  EXPECT_EQ(from_option.code, 0) << from_option.err;
  EXPECT_THAT(from_option.out, HasSubstr((dir_ / "option.db").string()));
}

TEST_F(ConfigPathTest, MissingFileNamesThePathAndHowItWasChosen) {
  const std::string absent = (dir_ / "absent.toml").string();
  ::setenv("MAILBRIDGE_CONFIG", absent.c_str(), 1);
  for (const char* command : {"check-config", "status"}) {
    CliRun r = run_command({command});
    EXPECT_EQ(r.code, 2) << command;
    EXPECT_THAT(r.err, HasSubstr("configuration file " + absent + " does not exist (named by "
                                 "the environment variable MAILBRIDGE_CONFIG)")) << command;
  }
  ::unsetenv("MAILBRIDGE_CONFIG");
  CliRun by_option = run_command({"--config", absent, "status"});
  EXPECT_THAT(by_option.err, HasSubstr(absent + " does not exist (named by --config)"));
  const auto cwd = fs::current_path();
  fs::current_path(dir_);
  CliRun by_default = run_command({"status"});
  fs::current_path(cwd);
  EXPECT_EQ(by_default.code, 2);
  EXPECT_THAT(by_default.err, HasSubstr("configuration file mailbridge.toml does not exist (the "
                                        "default, in the current directory"));
}

}  // namespace
}  // namespace mb::cli
