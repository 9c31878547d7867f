// File: core/metrics.h — the process's metrics: thread-safe counters and gauges with labels,
// rendered in the Prometheus text exposition format (version 0.0.4).
//
// Every metric mailbridge exports has one accessor below, so that names, help texts and
// label names live in one place (docs/operations.md lists them). An accessor returns the
// series for its label values, created at zero on first use; the reference stays valid for
// the life of the process, so a hot path may keep it. Values the store holds (outbox depth,
// last success per mailbox) are not kept here: render(Store*) (core/metrics_store.cpp)
// reads them at scrape time.
//
//   metrics::messages_imported("support").inc();
//   metrics::idle_connections().add(1);   // an IDLE connection opened; add(-1) when it ends
//   std::string page = metrics::render(store.get());  // the body of GET /metrics
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace mb {
class Store;
}

namespace mb::metrics {

// The Content-Type of render()'s text.
inline constexpr std::string_view kContentType = "text/plain; version=0.0.4; charset=utf-8";

// Label names and values, in the order the metric declares its label names.
using Labels = std::vector<std::pair<std::string, std::string>>;

// A value that only goes up (Prometheus "counter"). Lock-free.
class Counter {
 public:
  void inc(double by = 1);
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

// A value that goes up and down (Prometheus "gauge"). Lock-free.
class Gauge {
 public:
  void set(double v) { value_.store(v, std::memory_order_relaxed); }
  void add(double by);
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

enum class Type { kCounter, kGauge };

// One metric family as rendered: what a collector produces at scrape time.
struct Sample {
  Labels labels;
  double value = 0;
};
struct Family {
  std::string name;  // with the mailbridge_ prefix
  std::string help;
  Type type = Type::kGauge;
  std::vector<Sample> samples;
};

// Every registered family with every series, followed by `extra` (scrape-time families),
// in the text exposition format 0.0.4: "# HELP", "# TYPE", then one line per series.
// Families are sorted by name, series by labels. Label values escape \ " and newline, help
// texts \ and newline. A family with no series is rendered with its HELP and TYPE only.
std::string render_families(const std::vector<Family>& extra = {});

// render_families() plus the families read from `store` at this moment (outbox depth and
// oldest queued age, last success per mailbox, mailbridge_store_up). `store` null: without
// them. The Store is used on the calling thread only (a Store is one thread's at a time:
// give the metrics server its own). Defined in core/metrics_store.cpp (mb_store).
std::string render(Store* store);

// The text a label value is written as inside its quotes: \ → \\, " → \", newline → \n.
std::string escape_label_value(std::string_view v);
// A sample value: integers without a fraction, +Inf, -Inf, NaN as Prometheus spells them.
std::string format_value(double v);

// --- what mailbridge counts (docs/operations.md, "Metrics") ---

// mailbridge_messages_imported_total{mailbox}: messages that became a ticket or a note.
Counter& messages_imported(const std::string& mailbox);
// mailbridge_messages_skipped_total{mailbox,reason}: messages recorded in the ledger without
// a ticket or note, by skip reason (core/ingest.h's kSkip*: duplicate, filtered, …).
Counter& messages_skipped(const std::string& mailbox, const std::string& reason);
// mailbridge_errors_total{mailbox,kind}: passes that stopped with an error, by error kind
// (core/status.h's to_string(ErrorKind): auth, network, tls, protocol, throttled, …).
Counter& errors(const std::string& mailbox, const std::string& kind);
// mailbridge_token_refreshes_total{app,result}: token endpoint requests, result "ok" or
// "error".
Counter& token_refreshes(const std::string& app, const std::string& result);
// mailbridge_outbox_sent_total{sender}, mailbridge_outbox_parked_total{sender},
// mailbridge_outbox_retries_total{sender}: outbox send attempts by outcome.
Counter& outbox_sent(const std::string& sender);
Counter& outbox_parked(const std::string& sender);
Counter& outbox_retries(const std::string& sender);
// mailbridge_imap_idle_connections: IMAP connections now waiting in IDLE. The IMAP
// connector adds 1 when IDLE is accepted and -1 when it ends, however it ends.
Gauge& idle_connections();

}  // namespace mb::metrics
