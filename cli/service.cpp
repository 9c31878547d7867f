// File: cli/service.cpp — `mailbridge run`'s signal loop and configuration reload.
#include "cli/service.h"

#include <pthread.h>
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <sstream>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "cli/outbox.h"

namespace mb::cli {
namespace {

std::string join(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

const char* signal_name(int sig) {
  switch (sig) {
    case SIGTERM: return "SIGTERM";
    case SIGINT: return "SIGINT";
    case SIGHUP: return "SIGHUP";
    default: return "signal";
  }
}

size_t enabled_mailboxes(const Config& cfg) {
  size_t n = 0;
  for (const auto& m : cfg.mailboxes) n += m.enabled ? 1 : 0;
  return n;
}

void reload(const std::string& path, Config& running, ServiceControl& control,
            const ServeHooks& hooks) {
  spdlog::info("SIGHUP: re-reading {}", path);
  auto next = reread_config(path, running);
  if (!next.ok()) {
    std::istringstream errors(next.status().message());
    for (std::string line; std::getline(errors, line);) spdlog::error("{}", line);
    spdlog::error("configuration not reloaded: the running one stays in use");
    return;
  }
  MailboxChanges changes = compare_mailboxes(running, next->first);
  if (next->first.service.metrics != running.service.metrics) {
    spdlog::warn("[service] metrics changed from '{}' to '{}': it takes effect at the next "
                 "restart (the endpoint keeps its address until then)",
                 running.service.metrics, next->first.service.metrics);
  }
  std::string limit = raise_open_file_limit(enabled_mailboxes(next->first));
  if (!limit.empty()) spdlog::warn("{}", limit);
  control.reload(next->first, next->second);
  running = std::move(next->first);
  spdlog::info("configuration reloaded: {}", describe(changes));
  if (hooks.reloaded) hooks.reloaded(changes);
}

}  // namespace

std::string raise_open_file_limit(size_t mailboxes) {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) {
    return fmt::format("cannot read the open-file limit: {}", std::strerror(errno));
  }
  if (limit.rlim_cur != limit.rlim_max) {
    rlimit raised = limit;
    raised.rlim_cur = limit.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &raised) == 0) limit = raised;
  }
  const rlim_t needed = kDescriptorReserve + kDescriptorsPerMailbox * mailboxes;
  if (limit.rlim_cur == RLIM_INFINITY || limit.rlim_cur >= needed) return "";
  return fmt::format("the open-file limit is {} but {} mailbox(es) may need {} descriptors; "
                     "raise it (LimitNOFILE= in the systemd unit, ulimit -n)",
                     static_cast<unsigned long long>(limit.rlim_cur), mailboxes,
                     static_cast<unsigned long long>(needed));
}

std::string thread_cache_tunables(const char* current) {
  constexpr const char* kOff = "glibc.malloc.tcache_count=0";
  if (current == nullptr || *current == '\0') return kOff;
  if (std::strstr(current, "glibc.malloc.tcache_count=") != nullptr) return "";
  return std::string(current) + ":" + kOff;
}

namespace {
std::atomic<bool> restart_allowed{false};
}  // namespace

void allow_restart() { restart_allowed = true; }

void restart_without_thread_cache() {
  if (!restart_allowed) return;
  const std::string tunables = thread_cache_tunables(std::getenv("GLIBC_TUNABLES"));
  if (tunables.empty()) return;
  std::ifstream in("/proc/self/cmdline", std::ios::binary);
  const std::string cmdline((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::string> args;
  for (size_t at = 0; at < cmdline.size();) {
    const size_t end = cmdline.find('\0', at);
    args.push_back(cmdline.substr(at, end == std::string::npos ? std::string::npos : end - at));
    if (end == std::string::npos) break;
    at = end + 1;
  }
  if (args.empty() || ::setenv("GLIBC_TUNABLES", tunables.c_str(), 1) != 0) return;
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  ::execv("/proc/self/exe", argv.data());
  spdlog::debug("could not restart without glibc's thread cache: {}", std::strerror(errno));
}

sigset_t service_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  return set;
}

void block_service_signals() {
  sigset_t set = service_signals();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

MailboxChanges compare_mailboxes(const Config& before, const Config& after) {
  std::map<std::string, const MailboxConfig*> old_boxes, new_boxes;
  for (const auto& m : before.mailboxes) {
    if (m.enabled) old_boxes[m.name] = &m;
  }
  for (const auto& m : after.mailboxes) {
    if (m.enabled) new_boxes[m.name] = &m;
  }
  MailboxChanges changes;
  for (const auto& m : after.mailboxes) {
    if (!m.enabled) continue;
    auto it = old_boxes.find(m.name);
    if (it == old_boxes.end()) changes.added.push_back(m.name);
    else if (!same_settings(*it->second, m)) changes.changed.push_back(m.name);
  }
  for (const auto& m : before.mailboxes) {
    if (m.enabled && !new_boxes.count(m.name)) changes.removed.push_back(m.name);
  }
  return changes;
}

std::string describe(const MailboxChanges& c) {
  if (c.empty()) return "no mailbox added, changed or removed";
  std::vector<std::string> parts;
  if (!c.added.empty()) parts.push_back("added " + join(c.added));
  if (!c.changed.empty()) parts.push_back("changed " + join(c.changed));
  if (!c.removed.empty()) parts.push_back("removed " + join(c.removed));
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : "; ") + p;
  return out;
}

Result<std::pair<Config, std::string>> reread_config(const std::string& path,
                                                     const Config& running) {
  auto cfg = load_config(path, ConfigCheck::kDeep);
  if (!cfg.ok()) return cfg.status();
  if (cfg->store.path != running.store.path) {
    return Status(ErrorKind::kConfig,
                  fmt::format("{}: [store] path changed from {} to {}; the store cannot change "
                              "without a restart", path, running.store.path, cfg->store.path));
  }
  auto secret = tracking_secret(*cfg);
  if (!secret.ok()) return secret.status();
  for (const auto& w : cfg->warnings) spdlog::warn("{}", w);
  return std::make_pair(std::move(*cfg), std::move(*secret));
}

int serve_signals(const std::string& config_path, Config running, ServiceControl& control,
                  const ServeHooks& hooks) {
  sigset_t set = service_signals();
  for (;;) {
    siginfo_t info{};
    int sig = sigwaitinfo(&set, &info);
    if (sig < 0) {
      if (errno == EINTR) continue;
      spdlog::error("waiting for signals failed: {}; stopping", std::strerror(errno));
      sig = SIGTERM;
    }
    if (sig == SIGHUP) {
      reload(config_path, running, control, hooks);
      continue;
    }
    spdlog::info("{} (from pid {}): stopping; each mailbox finishes the message in hand",
                 signal_name(sig), info.si_pid);
    auto started = std::chrono::steady_clock::now();
    control.stop();
    auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - started);
    spdlog::info("stopped in {} ms", took.count());
    return 0;
  }
}

}  // namespace mb::cli
