// File: core/metrics.cpp — the process-wide registry of counters and gauges and the text
// exposition format.
#include "core/metrics.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <memory>
#include <mutex>

#include <fmt/format.h>

namespace mb::metrics {
namespace {

struct Series {
  Labels labels;
  Counter counter;
  Gauge gauge;
};

struct Entry {
  std::string help;
  Type type = Type::kCounter;
  std::map<Labels, std::unique_ptr<Series>> series;  // sorted by labels
};

class Registry {
 public:
  static Registry& instance() {
    static Registry* r = new Registry();  // never destroyed: metrics may be set at exit
    return *r;
  }

  Series& series(std::string_view name, std::string_view help, Type type, Labels labels) {
    std::lock_guard lk(mu_);
    Entry& e = entries_[std::string(name)];
    if (e.help.empty()) {
      e.help = help;
      e.type = type;
    }
    auto& slot = e.series[labels];
    if (!slot) {
      slot = std::make_unique<Series>();
      slot->labels = std::move(labels);
    }
    return *slot;
  }

  std::vector<Family> snapshot() const {
    std::lock_guard lk(mu_);
    std::vector<Family> out;
    for (const auto& [name, e] : entries_) {
      Family f{name, e.help, e.type, {}};
      for (const auto& [labels, s] : e.series) {
        f.samples.push_back({labels, e.type == Type::kCounter ? s->counter.value()
                                                               : s->gauge.value()});
      }
      out.push_back(std::move(f));
    }
    return out;
  }

 private:
  Registry();
  mutable std::mutex mu_;
  std::map<std::string, Entry> entries_;
};

constexpr const char* kImported = "mailbridge_messages_imported_total";
constexpr const char* kImportedHelp = "Messages that became a ticket or a note.";
constexpr const char* kSkipped = "mailbridge_messages_skipped_total";
constexpr const char* kSkippedHelp =
    "Messages recorded without a ticket or note, by skip reason.";
constexpr const char* kErrors = "mailbridge_errors_total";
constexpr const char* kErrorsHelp = "Mailbox passes that stopped with an error, by error kind.";
constexpr const char* kTokens = "mailbridge_token_refreshes_total";
constexpr const char* kTokensHelp = "Requests to an OAuth token endpoint, by result (ok, error).";
constexpr const char* kSent = "mailbridge_outbox_sent_total";
constexpr const char* kSentHelp = "Outbox messages sent (every recipient accepted or refused "
                                  "for good).";
constexpr const char* kParked = "mailbridge_outbox_parked_total";
constexpr const char* kParkedHelp = "Outbox messages parked: given up on until `outbox retry`.";
constexpr const char* kRetries = "mailbridge_outbox_retries_total";
constexpr const char* kRetriesHelp = "Outbox send attempts that failed and were queued again.";
constexpr const char* kIdle = "mailbridge_imap_idle_connections";
constexpr const char* kIdleHelp = "IMAP connections now waiting in IDLE.";

Registry::Registry() {
  // Rendered from the start, so that a scraper sees every family before anything happens.
  for (auto [name, help] : {std::pair{kImported, kImportedHelp}, {kSkipped, kSkippedHelp},
                            {kErrors, kErrorsHelp}, {kTokens, kTokensHelp},
                            {kSent, kSentHelp}, {kParked, kParkedHelp},
                            {kRetries, kRetriesHelp}}) {
    entries_[name] = Entry{help, Type::kCounter, {}};
  }
  entries_[kIdle] = Entry{kIdleHelp, Type::kGauge, {}};
  entries_[kIdle].series[{}] = std::make_unique<Series>();
}

Counter& counter(const char* name, const char* help, Labels labels) {
  return Registry::instance().series(name, help, Type::kCounter, std::move(labels)).counter;
}

std::string escape_help(std::string_view v) {
  std::string out;
  for (char c : v) {
    if (c == '\\') out += "\\\\";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

void render_family(const Family& f, std::string& out) {
  out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", f.name, escape_help(f.help), f.name,
                     f.type == Type::kCounter ? "counter" : "gauge");
  for (const auto& s : f.samples) {
    out += f.name;
    if (!s.labels.empty()) {
      out += '{';
      for (size_t i = 0; i < s.labels.size(); ++i) {
        if (i > 0) out += ',';
        out += s.labels[i].first + "=\"" + escape_label_value(s.labels[i].second) + '"';
      }
      out += '}';
    }
    out += ' ' + format_value(s.value) + '\n';
  }
}

}  // namespace

void Counter::inc(double by) {
  if (by > 0) value_.fetch_add(by, std::memory_order_relaxed);
}

void Gauge::add(double by) { value_.fetch_add(by, std::memory_order_relaxed); }

std::string escape_label_value(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

std::string format_value(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (v == std::floor(v) && std::fabs(v) < 1e15) return fmt::format("{}", static_cast<int64_t>(v));
  return fmt::format("{}", v);
}

std::string render_families(const std::vector<Family>& extra) {
  std::vector<Family> all = Registry::instance().snapshot();
  all.insert(all.end(), extra.begin(), extra.end());
  std::stable_sort(all.begin(), all.end(),
                   [](const Family& a, const Family& b) { return a.name < b.name; });
  std::string out;
  for (const auto& f : all) render_family(f, out);
  return out;
}

Counter& messages_imported(const std::string& mailbox) {
  return counter(kImported, kImportedHelp, {{"mailbox", mailbox}});
}

Counter& messages_skipped(const std::string& mailbox, const std::string& reason) {
  return counter(kSkipped, kSkippedHelp, {{"mailbox", mailbox}, {"reason", reason}});
}

Counter& errors(const std::string& mailbox, const std::string& kind) {
  return counter(kErrors, kErrorsHelp, {{"mailbox", mailbox}, {"kind", kind}});
}

Counter& token_refreshes(const std::string& app, const std::string& result) {
  return counter(kTokens, kTokensHelp, {{"app", app}, {"result", result}});
}

Counter& outbox_sent(const std::string& sender) {
  return counter(kSent, kSentHelp, {{"sender", sender}});
}

Counter& outbox_parked(const std::string& sender) {
  return counter(kParked, kParkedHelp, {{"sender", sender}});
}

Counter& outbox_retries(const std::string& sender) {
  return counter(kRetries, kRetriesHelp, {{"sender", sender}});
}

Gauge& idle_connections() {
  static Gauge& g = Registry::instance().series(kIdle, kIdleHelp, Type::kGauge, {}).gauge;
  return g;
}

}  // namespace mb::metrics
