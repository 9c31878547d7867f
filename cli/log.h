// File: cli/log.h — the CLI's log lines: a timestamp on each, text or JSON (`--log-format`),
// written to stderr and scrubbed of every known secret.
//
// text:  2026-12-07T14:18:07.123Z mailbridge: [warning] mailbox support: pass stopped: …
// json:  {"ts":"2026-12-07T14:18:07.123Z","level":"warning","msg":"mailbox support: …",
//         "mailbox":"support"}
//
// One line per record in both formats (JSON escapes newlines and every control character;
// bytes that are not UTF-8 become U+FFFD). "mailbox" is present when the line was logged
// during a mailbox's pass (core/log_context.h). Levels are spdlog's names: trace, debug,
// info, warning, error, critical. The message and the mailbox are scrubbed by the Redactor
// (auth/secrets.h) before they are formatted, so that a secret is found whatever JSON would
// have escaped in it.
//
//   cli::LoggerScope logging(ctx.err, "info", cli::LogFormat::kJson);
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>

#include <spdlog/common.h>

namespace spdlog {
class logger;
}

namespace mb::cli {

enum class LogFormat { kText, kJson };

// "text" | "json"; nullopt for anything else.
std::optional<LogFormat> parse_log_format(std::string_view text);

// ISO 8601 UTC with milliseconds: "2026-12-07T14:18:07.123Z".
std::string format_log_time(std::chrono::system_clock::time_point t);

// One log line, newline included, with `msg` and `mailbox` scrubbed of known secrets.
// `mailbox` empty: no "mailbox" field.
std::string format_log_line(LogFormat format, std::chrono::system_clock::time_point t,
                            spdlog::level::level_enum level, std::string_view msg,
                            std::string_view mailbox = {});

// Installs the CLI's logger (writing format_log_line()s to `err`, at `level`, one of
// spdlog's level names) for its lifetime and restores the previous default logger after.
class LoggerScope {
 public:
  LoggerScope(std::ostream& err, const std::string& level, LogFormat format);
  ~LoggerScope();
  LoggerScope(const LoggerScope&) = delete;
  LoggerScope& operator=(const LoggerScope&) = delete;

 private:
  std::shared_ptr<spdlog::logger> previous_;
};

}  // namespace mb::cli
