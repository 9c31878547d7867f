// File: core/failpoint.cpp — MB_FAILPOINTS parsing and the per-point countdown.
#include "core/failpoint.h"

#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <map>
#include <mutex>
#include <string>

#include <spdlog/spdlog.h>

namespace mb {
namespace {

struct Points {
  std::mutex mu;
  std::map<std::string, long, std::less<>> remaining;  // name → hits left before the kill
};

// Parsed once; nullptr when MB_FAILPOINTS is unset or empty.
Points* points() {
  static Points* parsed = []() -> Points* {
    const char* env = std::getenv("MB_FAILPOINTS");
    if (env == nullptr || *env == '\0') return nullptr;
    auto* p = new Points;  // lives as long as the process
    std::string_view spec(env);
    while (!spec.empty()) {
      size_t comma = spec.find(',');
      std::string_view item = spec.substr(0, comma);
      spec = comma == std::string_view::npos ? std::string_view() : spec.substr(comma + 1);
      if (item.empty()) continue;
      size_t eq = item.find('=');
      long n = 1;
      if (eq != std::string_view::npos) {
        n = std::strtol(std::string(item.substr(eq + 1)).c_str(), nullptr, 10);
        item = item.substr(0, eq);
      }
      if (n >= 1) p->remaining[std::string(item)] = n;
    }
    return p;
  }();
  return parsed;
}

}  // namespace

void failpoint(std::string_view name) {
  Points* p = points();
  if (p == nullptr) return;
  std::lock_guard lock(p->mu);
  auto it = p->remaining.find(name);
  if (it == p->remaining.end() || --it->second > 0) return;
  spdlog::default_logger()->flush();
  ::kill(::getpid(), SIGKILL);
}

}  // namespace mb
