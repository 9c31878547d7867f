// File: core/utc.cpp — ISO 8601 UTC text (core/utc.h).
#include "core/utc.h"

#include <ctime>

namespace mb {

using SysClock = std::chrono::system_clock;

std::string format_utc(SysClock::time_point t) {
  std::time_t tt = SysClock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::optional<SysClock::time_point> parse_utc(const std::string& text) {
  std::tm tm{};
  const char* end = strptime(text.c_str(), "%Y-%m-%dT%H:%M:%SZ", &tm);
  if (end == nullptr || *end != '\0') return std::nullopt;
  return SysClock::from_time_t(timegm(&tm));
}

std::string now_iso8601() { return format_utc(SysClock::now()); }

std::string format_duration(std::chrono::milliseconds d) {
  if (d.count() > 0 && d.count() % 1000 == 0) return std::to_string(d.count() / 1000) + " s";
  return std::to_string(d.count()) + " ms";
}

}  // namespace mb
