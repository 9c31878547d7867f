// File: tests/unit/cli/log_test.cpp — the CLI's log lines (cli/log.h): timestamps, JSON
// escaping, scrubbing, and `--log-format` through run_cli.
#include "cli/log.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include <spdlog/spdlog.h>

#include "auth/secrets.h"
#include "cli/cli.h"
#include "core/log_context.h"

namespace mb::cli {
namespace {

using ::testing::HasSubstr;
using ::testing::MatchesRegex;
using ::testing::Not;
using nlohmann::json;

// 2026-12-07T14:18:07.123Z
std::chrono::system_clock::time_point sample_time() {
  using namespace std::chrono;
  return system_clock::time_point(seconds(1796653087) + milliseconds(123));
}

TEST(LogTimeTest, IsUtcIso8601WithMilliseconds) {
  EXPECT_EQ(format_log_time(sample_time()), "2026-12-07T14:18:07.123Z");
  using namespace std::chrono;
  EXPECT_EQ(format_log_time(system_clock::time_point(milliseconds(5))),
            "1970-01-01T00:00:00.005Z");
  EXPECT_EQ(format_log_time(system_clock::time_point(microseconds(999999))),
            "1970-01-01T00:00:00.999Z");  // truncated, never rounded up into the next second
  EXPECT_THAT(format_log_time(system_clock::now()),
              MatchesRegex("[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z"));
}

TEST(LogLineTest, TextHasTimestampLevelAndMessage) {
  EXPECT_EQ(format_log_line(LogFormat::kText, sample_time(), spdlog::level::warn, "disk full",
                            "support"),
            "2026-12-07T14:18:07.123Z mailbridge: [warning] disk full\n");
}

TEST(LogLineTest, JsonIsOneObjectOnOneLine) {
  std::string line = format_log_line(LogFormat::kJson, sample_time(), spdlog::level::info,
                                     "a \"quoted\" word\\ \n second line \t \x01 \x1b[31m \x7f",
                                     "sup\"port");
  ASSERT_EQ(line.back(), '\n');
  EXPECT_EQ(line.find('\n'), line.size() - 1);  // the newline of the message is escaped
  for (char c : line.substr(0, line.size() - 1)) {
    EXPECT_FALSE(static_cast<unsigned char>(c) < 0x20 || c == 0x7f) << static_cast<int>(c);
  }
  json j = json::parse(line);
  EXPECT_EQ(j["ts"], "2026-12-07T14:18:07.123Z");
  EXPECT_EQ(j["level"], "info");
  EXPECT_EQ(j["msg"], "a \"quoted\" word\\ \n second line \t \x01 \x1b[31m \x7f");
  EXPECT_EQ(j["mailbox"], "sup\"port");
  EXPECT_THAT(line, HasSubstr(R"(\"quoted\")"));
  EXPECT_THAT(line, HasSubstr(R"(\u001b[31m)"));
  EXPECT_THAT(line, MatchesRegex("\\{\"ts\":.*"));  // ts first, for a human reading it
}

TEST(LogLineTest, JsonWithoutMailboxHasNoMailboxField) {
  json j = json::parse(format_log_line(LogFormat::kJson, sample_time(), spdlog::level::err, "x"));
  EXPECT_FALSE(j.contains("mailbox"));
  EXPECT_EQ(j["level"], "error");
}

TEST(LogLineTest, JsonReplacesBytesThatAreNotUtf8) {
  json j = json::parse(
      format_log_line(LogFormat::kJson, sample_time(), spdlog::level::info, "caf\xe9 \xff"));
  EXPECT_EQ(j["msg"], "caf\xef\xbf\xbd \xef\xbf\xbd");
}

TEST(LogLineTest, SecretsAreScrubbedBeforeJsonEscapesThem) {
  // A secret with a quote and a backslash: JSON would write it as pa\"ss\\… — scrubbing
  // the escaped text would miss it.
  const std::string secret = "pa\"ss\\w0rd-for-log-test";
  Redactor::instance().add(secret);
  for (LogFormat f : {LogFormat::kText, LogFormat::kJson}) {
    std::string line = format_log_line(f, sample_time(), spdlog::level::warn,
                                       "server said: " + secret + " rejected", "support");
    EXPECT_THAT(line, Not(HasSubstr("w0rd-for-log-test"))) << line;
    EXPECT_THAT(line, HasSubstr("<redacted>")) << line;
  }
}

TEST(LogFormatTest, Parses) {
  EXPECT_EQ(parse_log_format("text"), LogFormat::kText);
  EXPECT_EQ(parse_log_format("json"), LogFormat::kJson);
  EXPECT_EQ(parse_log_format("JSON"), std::nullopt);
  EXPECT_EQ(parse_log_format(""), std::nullopt);
}

TEST(LoggerScopeTest, WritesTheMailboxOfTheThreadAndRestoresTheLogger) {
  auto before = spdlog::default_logger();
  std::ostringstream err;
  {
    LoggerScope scope(err, "info", LogFormat::kJson);
    spdlog::debug("below the level");
    spdlog::info("no mailbox");
    log_context::MailboxScope mailbox("sales");
    spdlog::warn("mailbox sales: trouble");
  }
  EXPECT_EQ(spdlog::default_logger(), before);
  std::istringstream lines(err.str());
  std::string first, second, third;
  ASSERT_TRUE(std::getline(lines, first));
  ASSERT_TRUE(std::getline(lines, second));
  EXPECT_FALSE(std::getline(lines, third));
  EXPECT_FALSE(json::parse(first).contains("mailbox"));
  EXPECT_EQ(json::parse(first)["msg"], "no mailbox");
  EXPECT_EQ(json::parse(second)["mailbox"], "sales");
  EXPECT_EQ(json::parse(second)["level"], "warning");
  EXPECT_EQ(log_context::mailbox(), "");
}

// run_cli with `--log-format json`: every line on stderr is a JSON object. A sync against a
// closed port logs at info and debug while it fails, with the mailbox known.
class LogCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("mb_log_cli_test_" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    config_ = (dir_ / "mb.toml").string();
    std::ofstream(config_) << "[store]\npath = \"mb.db\"\n\n[[mailbox]]\nname = \"support\"\n"
                              "type = \"imap\"\nhost = \"127.0.0.1\"\nport = 1\n"
                              "security = \"none\"\nuser = \"u\"\npassword = \"env:MB_LOG_PW\"\n";
    ::setenv("MB_LOG_PW", "log-test-password", 1);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  int run(std::vector<std::string> args, std::string& err) {
    std::ostringstream out, e;
    args.insert(args.begin(), {"--config", config_});
    int code = run_cli(std::move(args), out, e);
    err = e.str();
    return code;
  }

  std::filesystem::path dir_;
  std::string config_;
};

TEST_F(LogCliTest, JsonLinesParse) {
  std::string err;
  int code = run({"--log-format", "json", "--log-level", "debug", "sync", "--once"}, err);
  EXPECT_EQ(code, 4) << err;
  std::istringstream lines(err);
  std::string line;
  int objects = 0;
  bool with_mailbox = false;
  while (std::getline(lines, line)) {
    if (line.rfind("mailbridge: ", 0) == 0) continue;  // the command's own error report
    SCOPED_TRACE(line);
    json j = json::parse(line, nullptr, /*allow_exceptions=*/false);
    ASSERT_TRUE(j.is_object());
    EXPECT_THAT(j["ts"].get<std::string>(),
                MatchesRegex("[0-9-]{10}T[0-9:]{8}\\.[0-9]{3}Z"));
    EXPECT_TRUE(j["level"].is_string());
    EXPECT_TRUE(j["msg"].is_string());
    if (j.contains("mailbox")) with_mailbox = j["mailbox"] == "support";
    ++objects;
  }
  EXPECT_GT(objects, 0) << err;
  EXPECT_TRUE(with_mailbox) << err;
}

TEST_F(LogCliTest, TextLinesStartWithATimestamp) {
  std::string err;
  EXPECT_EQ(run({"--log-level", "debug", "sync", "--once"}, err), 4) << err;
  EXPECT_THAT(err, ::testing::ContainsRegex(
                       "(^|\n)[0-9-]{10}T[0-9:]{8}\\.[0-9]{3}Z mailbridge: \\[(info|debug)\\] "
                       "mailbox support"));
}

TEST_F(LogCliTest, BadLogFormatIsAUsageError) {
  std::string err;
  EXPECT_EQ(run({"--log-format", "xml", "status"}, err), 2);
  EXPECT_THAT(err, HasSubstr("--log-format"));
}

}  // namespace
}  // namespace mb::cli
