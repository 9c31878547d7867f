// File: core/backoff.h — when to try again: the server's Retry-After, exponential backoff
// with jitter, and the budget a retry loop may spend. One formula for the OAuth client
// (auth/oauth.cpp), Microsoft Graph (connectors/graph/graph_client.cpp) and the outbox
// (core/outbox.cpp); each keeps its own numbers through the parameters.
//
//   const Backoff<milliseconds> b{.initial = 1s, .cap = 30s, .jitter = Jitter::kEqual};
//   auto wait = parse_retry_after(r.header("Retry-After")).value_or(b.delay(attempt, u));
//   if (!RetryBudget{.max_attempts = 5}.allows(attempt + 1, waited, wait)) give up;
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

namespace mb {

// A Retry-After value (RFC 9110 §10.2.3) in delta-seconds: 1 to 9 digits. Absent, empty, an
// HTTP-date or anything else is nullopt: the caller's own backoff applies.
std::optional<std::chrono::seconds> parse_retry_after(const std::optional<std::string>& value);

// How a delay d is spread (AWS architecture blog, "Exponential Backoff And Jitter").
enum class Jitter {
  kFull,   // ⌊d·u⌋: anywhere in [0, d], so that clients failing together do not retry together
  kEqual,  // d − ⌊d/2⌋ + ⌊⌊d/2⌋·u⌋: never less than half (the server gets its rest), spread
           // over the other half
};

// initial·2^attempt, at most cap (0 for negative values). Never overflows.
int64_t backoff_ceiling(int64_t initial, int64_t cap, int64_t attempt);
// `ceiling` spread by `u` (clamped to [0, 1]) as `jitter` says.
int64_t apply_jitter(int64_t ceiling, Jitter jitter, double u);
// A uniform double in [0, 1) from 64 random bits (the top 53).
double unit_interval(uint64_t random_bits);

// Exponential backoff in the caller's unit: the delay before retry `attempt` (0: after the
// first failure) is initial·2^attempt, at most cap, then jittered by u in [0, 1).
template <typename Duration>
struct Backoff {
  Duration initial;
  Duration cap;
  Jitter jitter = Jitter::kFull;

  Duration ceiling(int64_t attempt) const {
    return Duration(backoff_ceiling(initial.count(), cap.count(), attempt));
  }
  Duration delay(int64_t attempt, double u) const {
    return Duration(apply_jitter(ceiling(attempt).count(), jitter, u));
  }
};

// What a retry loop may spend before it gives up and reports the last failure.
struct RetryBudget {
  static constexpr std::chrono::milliseconds kUnlimited = std::chrono::milliseconds::max();
  int64_t max_attempts = 1;                       // in all, the first one included
  std::chrono::milliseconds max_wait = kUnlimited;        // any single wait longer: give up
  std::chrono::milliseconds max_total_wait = kUnlimited;  // all the waits together

  // Whether, after `attempts` failed attempts that waited `waited` in all, waiting `next`
  // for one more attempt is within the budget.
  bool allows(int64_t attempts, std::chrono::milliseconds waited,
              std::chrono::milliseconds next) const;
};

}  // namespace mb
