// File: core/utc.h — the one text form of a point in time: ISO 8601 UTC to the second,
// "2026-11-23T10:00:00Z", as the store's columns, the outbox's schedule, the monitor's
// probes and `auth status` hold it. Text of this form sorts as time does.
//
//   format_utc(t) == "2026-11-23T10:00:00Z";  parse_utc("2026-11-23T10:00:00Z") == t
#pragma once

#include <chrono>
#include <optional>
#include <string>

namespace mb {

// Fractions of a second are dropped.
std::string format_utc(std::chrono::system_clock::time_point t);
// Exactly the form format_utc writes; anything else (trailing text too) is nullopt.
std::optional<std::chrono::system_clock::time_point> parse_utc(const std::string& text);
// format_utc of the system clock's now.
std::string now_iso8601();

// A time-out or wait for messages: whole seconds as "30 s", anything else as "1500 ms".
std::string format_duration(std::chrono::milliseconds d);

}  // namespace mb
