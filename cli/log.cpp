// File: cli/log.cpp — the CLI's log lines: timestamps, text or JSON, scrubbed.
#include "cli/log.h"

#include <time.h>

#include <fmt/format.h>
#include <mutex>
#include <nlohmann/json.hpp>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>

#include "auth/secrets.h"
#include "cli/terminal.h"
#include "core/log_context.h"

namespace mb::cli {
namespace {

// Writes each record as format_log_line() to the error stream: a last line of defence for
// server text that ends up in a log.
class LineSink : public spdlog::sinks::base_sink<std::mutex> {
 public:
  LineSink(std::ostream& os, LogFormat format) : os_(os), format_(format) {}

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    std::string_view text(msg.payload.data(), msg.payload.size());
    os_ << format_log_line(format_, msg.time, msg.level, text, log_context::mailbox())
        << std::flush;
  }
  void flush_() override { os_.flush(); }

 private:
  std::ostream& os_;
  LogFormat format_;
};

}  // namespace

std::optional<LogFormat> parse_log_format(std::string_view text) {
  if (text == "text") return LogFormat::kText;
  if (text == "json") return LogFormat::kJson;
  return std::nullopt;
}

std::string format_log_time(std::chrono::system_clock::time_point t) {
  using namespace std::chrono;
  auto ms = duration_cast<milliseconds>(t.time_since_epoch()).count();
  auto secs = static_cast<time_t>(ms / 1000);
  auto frac = ms % 1000;
  if (frac < 0) {  // before 1970: floor, not truncate
    frac += 1000;
    --secs;
  }
  struct tm tm {};
  ::gmtime_r(&secs, &tm);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, frac);
}

std::string format_log_line(LogFormat format, std::chrono::system_clock::time_point t,
                            spdlog::level::level_enum level, std::string_view msg,
                            std::string_view mailbox) {
  const Redactor& redactor = Redactor::instance();
  std::string clean = redactor.scrub(msg);
  auto level_name = spdlog::level::to_string_view(level);
  std::string_view level_text(level_name.data(), level_name.size());
  if (format == LogFormat::kText) {
    return fmt::format("{} mailbridge: [{}] {}\n", format_log_time(t), level_text, clean);
  }
  nlohmann::ordered_json j;
  j["ts"] = format_log_time(t);
  j["level"] = level_text;
  j["msg"] = std::move(clean);
  if (!mailbox.empty()) j["mailbox"] = redactor.scrub(mailbox);
  return safe_dump(j) + "\n";
}

LoggerScope::LoggerScope(std::ostream& err, const std::string& level, LogFormat format)
    : previous_(spdlog::default_logger()) {
  auto sink = std::make_shared<LineSink>(err, format);
  auto logger = std::make_shared<spdlog::logger>("mailbridge", sink);
  logger->set_level(spdlog::level::from_str(level));
  spdlog::set_default_logger(logger);
}

LoggerScope::~LoggerScope() { spdlog::set_default_logger(previous_); }

}  // namespace mb::cli
