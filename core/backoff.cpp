// File: core/backoff.cpp — Retry-After, backoff with jitter, retry budgets (core/backoff.h).
#include "core/backoff.h"

#include <algorithm>
#include <cmath>

namespace mb {

std::optional<std::chrono::seconds> parse_retry_after(const std::optional<std::string>& value) {
  if (!value || value->empty() || value->size() > 9) return std::nullopt;
  if (!std::all_of(value->begin(), value->end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return std::nullopt;
  }
  return std::chrono::seconds(std::stol(*value));
}

int64_t backoff_ceiling(int64_t initial, int64_t cap, int64_t attempt) {
  int64_t d = std::max<int64_t>(initial, 0);
  cap = std::max<int64_t>(cap, 0);
  for (int64_t i = 0; i < attempt && d < cap; ++i) {
    d = d > cap / 2 ? cap : d * 2;
  }
  return std::min(d, cap);
}

int64_t apply_jitter(int64_t ceiling, Jitter jitter, double u) {
  u = std::clamp(u, 0.0, 1.0);
  if (ceiling <= 0) return 0;
  if (jitter == Jitter::kFull) {
    return static_cast<int64_t>(std::floor(static_cast<double>(ceiling) * u));
  }
  const int64_t half = ceiling / 2;
  return ceiling - half + static_cast<int64_t>(static_cast<double>(half) * u);
}

double unit_interval(uint64_t random_bits) {
  return static_cast<double>(random_bits >> 11) * 0x1.0p-53;
}

bool RetryBudget::allows(int64_t attempts, std::chrono::milliseconds waited,
                         std::chrono::milliseconds next) const {
  if (attempts >= max_attempts) return false;
  if (next > max_wait) return false;
  if (max_total_wait != kUnlimited && (next > max_total_wait || waited > max_total_wait - next)) {
    return false;
  }
  return true;
}

}  // namespace mb
