// File: bench/ingest_bench.cpp — mb_ingest_bench: times mailbridge's whole ingest (download,
// parse, commit) of one mailbox into a fresh SQLite store and prints one JSON line.
//
//   mb_ingest_bench --config bench.toml [--mailbox NAME] [--store PATH] [--keep-store]
//   mb_ingest_bench --maildir DIR --store PATH     # the pipeline alone, no network
//
// The mailbox is built through make_mailbox() exactly as the service builds it, with
// after = "leave" (so the server mailbox is the same for every run) and max_per_poll 9999;
// sync_mailbox() is called until it reports nothing more pending. A thin Mailbox decorator
// counts the bytes handed to ingest and the time ingest spends inside the fetch callback
// (parse + decide + commit when ingest works per message as it streams), so that a slow run
// shows whether the wire or the pipeline behind it is the bottleneck.
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "bench/maildir_mailbox.h"
#include "connectors/registry.h"
#include "core/config.h"
#include "core/ingest.h"
#include "core/mailbox.h"
#include "core/status.h"
#include "core/store.h"

namespace mb {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// Forwards every call to the real connector; counts what fetch() delivers.
class CountingMailbox final : public Mailbox {
 public:
  explicit CountingMailbox(std::unique_ptr<Mailbox> inner) : inner_(std::move(inner)) {}

  ConnectionReport test_connection() override { return inner_->test_connection(); }
  Result<Pending> list_pending(size_t limit, const std::string& state) override {
    return inner_->list_pending(limit, state);
  }
  Status fetch(const std::vector<std::string>& keys, const FetchCallback& cb) override {
    return inner_->fetch(keys, [&](const std::string& key, Result<std::string> raw) {
      if (raw.ok()) {
        bytes_ += static_cast<int64_t>(raw->size());
        ++fetched_;
      }
      const auto start = Clock::now();
      Status s = cb(key, std::move(raw));
      in_callback_s_ += seconds_since(start);
      return s;
    });
  }
  Status apply(const std::vector<std::string>& keys, const PostAction& action) override {
    return inner_->apply(keys, action);
  }
  Capabilities capabilities() const override { return inner_->capabilities(); }
  void close() override { inner_->close(); }

  int64_t bytes() const { return bytes_; }
  int64_t fetched() const { return fetched_; }
  double in_callback_seconds() const { return in_callback_s_; }

 private:
  std::unique_ptr<Mailbox> inner_;
  int64_t bytes_ = 0;
  int64_t fetched_ = 0;
  double in_callback_s_ = 0;
};

struct Options {
  std::string config_path;
  std::string mailbox;
  std::string store_path;
  std::string maildir;
  bool keep_store = false;
  std::string log_level = "warn";
  size_t fetch_batch = 0;  // 0: SyncOptions' default, what the service uses
};

struct Totals {
  SyncStats stats;
  int64_t skipped = 0;
  int passes = 0;
};

long peak_rss_kib() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss;  // KiB on Linux
}

// Prints the error as the run's JSON line and returns the exit code.
int fail(const std::string& stage, const Status& status, int exit_code) {
  nlohmann::json out = {{"tool", "mailbridge"}, {"error", stage + ": " + status.to_string()}};
  std::printf("%s\n", out.dump().c_str());
  return exit_code;
}

// The mailbox to benchmark, forced to leave mail on the server and to take it all in a pass.
Result<MailboxConfig> bench_mailbox(const Config& config, const std::string& name) {
  const MailboxConfig* found = name.empty()
                                   ? (config.mailboxes.empty() ? nullptr : &config.mailboxes[0])
                                   : config.find_mailbox(name);
  if (found == nullptr) {
    return Status(ErrorKind::kConfig, "no mailbox '" + name + "' in " + config.path);
  }
  MailboxConfig mcfg = *found;
  mcfg.after = PostAction::leave();
  mcfg.after_filtered = PostAction::leave();
  mcfg.max_per_poll = 9999;
  return mcfg;
}

// A fresh store: the database and its WAL/SHM side files are removed first.
Result<std::unique_ptr<Store>> fresh_store(const std::string& path, bool keep) {
  if (!keep) {
    std::error_code ec;
    for (const char* suffix : {"", "-wal", "-shm", "-journal"}) {
      std::filesystem::remove(path + suffix, ec);
    }
  }
  return Store::open(path);
}

// Calls sync_mailbox until nothing is pending; a pass that fails stops the run.
Result<Totals> sync_all(Mailbox& mailbox, const MailboxConfig& mcfg, const Config& config,
                        Store& store, const SyncOptions& options) {
  constexpr int kMaxPasses = 1000;  // 9.99 M messages; a loop that never ends is a bug
  Totals totals;
  for (; totals.passes < kMaxPasses;) {
    auto r = sync_mailbox(mailbox, mcfg, config, store, options);
    ++totals.passes;
    if (!r.ok()) return r.status();
    totals.stats.imported += r->imported;
    totals.stats.tickets += r->tickets;
    totals.stats.notes += r->notes;
    totals.stats.errors += r->errors;
    for (const auto& [reason, n] : r->skipped) {
      totals.stats.skipped[reason] += n;
      totals.skipped += n;
    }
    if (!r->more) return totals;
  }
  return Status(ErrorKind::kInternal, "sync_mailbox still reports more after 1000 passes");
}

nlohmann::json report(const Totals& totals, const CountingMailbox& counter, double seconds) {
  const int64_t messages = totals.stats.imported + totals.skipped;
  const double mb = static_cast<double>(counter.bytes()) / 1e6;
  return {{"tool", "mailbridge"},
          {"messages", messages},
          {"tickets", totals.stats.tickets},
          {"notes", totals.stats.notes},
          {"skipped", totals.stats.skipped},
          {"errors", totals.stats.errors},
          {"fetched", counter.fetched()},
          {"bytes", counter.bytes()},
          {"seconds", seconds},
          {"msgs_per_s", seconds > 0 ? static_cast<double>(messages) / seconds : 0.0},
          {"mb_per_s", seconds > 0 ? mb / seconds : 0.0},
          {"in_callback_s", counter.in_callback_seconds()},
          {"passes", totals.passes},
          {"peak_rss_kib", peak_rss_kib()}};
}

// The configuration: the file's, or defaults with one local mailbox for --maildir.
Result<Config> bench_config(const Options& opt) {
  if (!opt.config_path.empty()) return load_config(opt.config_path);
  Config config;
  config.path = "(--maildir)";
  MailboxConfig local;
  local.name = "maildir";
  // No connector type: bench_connector() reads the directory itself.
  config.mailboxes.push_back(local);
  return config;
}

Result<std::unique_ptr<Mailbox>> bench_connector(const Options& opt, const MailboxConfig& mcfg,
                                                 const Config& config) {
  if (!opt.maildir.empty()) return make_maildir_mailbox(opt.maildir);
  return make_mailbox(mcfg, config);
}

int run(const Options& opt) {
  spdlog::set_level(spdlog::level::from_str(opt.log_level));
  auto config = bench_config(opt);
  if (!config.ok()) return fail("config", config.status(), 2);
  auto mcfg = bench_mailbox(*config, opt.mailbox);
  if (!mcfg.ok()) return fail("config", mcfg.status(), 2);
  auto store = fresh_store(opt.store_path.empty() ? config->store.path : opt.store_path,
                           opt.keep_store);
  if (!store.ok()) return fail("store", store.status(), 1);
  auto inner = bench_connector(opt, *mcfg, *config);
  if (!inner.ok()) return fail("mailbox", inner.status(), 2);
  CountingMailbox mailbox(std::move(*inner));

  SyncOptions options;
  if (opt.fetch_batch > 0) options.fetch_batch = opt.fetch_batch;
  const auto start = Clock::now();
  auto totals = sync_all(mailbox, *mcfg, *config, **store, options);
  mailbox.close();
  const double seconds = seconds_since(start);
  if (!totals.ok()) return fail("sync", totals.status(), 1);
  std::printf("%s\n", report(*totals, mailbox, seconds).dump().c_str());
  return totals->stats.errors == 0 ? 0 : 1;
}

}  // namespace
}  // namespace mb

int main(int argc, char** argv) {
  mb::Options opt;
  CLI::App app{"mb_ingest_bench: time mailbridge's ingest of one mailbox (JSON on stdout)"};
  auto* config = app.add_option("--config", opt.config_path, "mailbridge TOML configuration");
  auto* maildir = app.add_option("--maildir", opt.maildir,
                                 "ingest a local Maildir instead (no network; needs --store)");
  config->excludes(maildir);
  maildir->needs(app.add_option("--store", opt.store_path,
                                "SQLite store (default: the config's store.path)"));
  app.callback([&] {
    if (opt.config_path.empty() && opt.maildir.empty()) {
      throw CLI::RequiredError("--config or --maildir");
    }
  });
  app.add_option("--mailbox", opt.mailbox, "[[mailbox]] name (default: the first)");
  app.add_flag("--keep-store", opt.keep_store, "do not delete the store first");
  app.add_option("--log-level", opt.log_level, "spdlog level (default warn)");
  app.add_option("--fetch-batch", opt.fetch_batch, "messages per UID FETCH (default: ingest's)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    return mb::run(opt);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mb_ingest_bench: %s\n", e.what());
    return 1;
  }
}
