// File: cli/status.cpp — `mailbridge status [--json]`: last-run statistics and state of every
// configured mailbox, and, while `mailbridge run` serves the store, what its worker for each
// mailbox is doing (store v6's service_activity; the lock file says whether it runs).
#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <map>
#include <string>

#include "auth/secrets.h"
#include "cli/cli.h"
#include "cli/json_output.h"
#include "cli/terminal.h"
#include "core/instance_lock.h"
#include "core/store.h"
#include "core/utc.h"

namespace mb::cli {
namespace {

// The open alert ticket of an auth-failed mailbox, else 0.
int64_t alert_ticket(const MailboxState& st) {
  return st.state == MailboxStatus::kAuthFailed ? st.alert_ticket_id : 0;
}

// True while the server's requested pause (Graph Retry-After, POP3 [IN-USE]) lasts.
bool throttled(const MailboxState& st) {
  auto until = parse_utc(st.throttled_until);
  return until && *until > std::chrono::system_clock::now();
}

// The running service, if any, and what it last recorded for each mailbox. Rows of a
// service that is not running any more (killed) are not shown.
struct ServiceView {
  InstanceHolder holder;
  std::map<std::string, ServiceActivityRecord> activity;
  const ServiceActivityRecord* find(const std::string& name) const {
    auto it = activity.find(name);
    return it == activity.end() ? nullptr : &it->second;
  }
};

Result<ServiceView> service_view(const Config& config, Store& store) {
  ServiceView view;
  auto holder = probe_instance_lock(instance_lock_path(config.store.path));
  if (!holder.ok()) return holder.status();
  view.holder = *holder;
  if (!view.holder.running) return view;
  auto rows = store.service_activities();
  if (!rows.ok()) return rows.status();
  for (auto& r : *rows) view.activity[r.mailbox] = std::move(r);
  return view;
}

// status --json's "service" of one mailbox: null fields when no service runs or it has not
// recorded this mailbox (disabled, or still starting).
json service_json(const ServiceView& view, const std::string& name) {
  const ServiceActivityRecord* a = view.holder.running ? view.find(name) : nullptr;
  auto field = [&](const std::string ServiceActivityRecord::*member) {
    return a ? null_if_empty(a->*member) : json(nullptr);
  };
  return {{"running", view.holder.running},
          {"pid", view.holder.running && view.holder.pid > 0 ? json(view.holder.pid)
                                                            : json(nullptr)},
          {"started_at", view.holder.running ? null_if_empty(view.holder.started_at)
                                             : json(nullptr)},
          {"activity", field(&ServiceActivityRecord::activity)},
          {"next_run", field(&ServiceActivityRecord::next_run)},
          {"since", field(&ServiceActivityRecord::since)},
          {"last_error", a ? null_if_empty(Redactor::instance().scrub(a->last_error))
                           : json(nullptr)}};
}

json state_json(const MailboxState& st) {
  json skipped = json::object();
  for (const auto& [reason, n] : st.skipped) skipped[reason] = n;
  return {{"name", st.name},
          {"state", to_string(st.state)},
          {"last_run", null_if_empty(st.last_run)},
          {"last_success", null_if_empty(st.last_success)},
          {"imported", st.imported},
          {"skipped", skipped},
          {"last_error", null_if_empty(Redactor::instance().scrub(st.last_error))},
          {"consecutive_auth_failures", st.consecutive_auth_failures},
          {"alert_ticket", alert_ticket(st) > 0 ? json(alert_ticket(st)) : json(nullptr)},
          {"throttled_until", throttled(st) ? json(st.throttled_until) : json(nullptr)}};
}

// "too-large 1, unreadable 2": the last run's skips by reason (SPEC §2 skip reasons).
std::string by_reason(const std::map<std::string, int64_t>& skipped) {
  std::string out;
  for (const auto& [reason, n] : skipped) {
    if (n == 0) continue;
    out += fmt::format("{}{} {}", out.empty() ? "" : ", ", reason, n);
  }
  return out;
}

// "  service: waiting since T, next run T; last error: E" under a mailbox's row.
std::string service_line(const ServiceActivityRecord& a) {
  std::string line = "  service: " + a.activity;
  if (!a.since.empty()) line += " since " + a.since;
  if (!a.next_run.empty()) line += ", next run " + a.next_run;
  if (!a.last_error.empty()) line += "; last error: " + Redactor::instance().scrub(a.last_error);
  return printable(line) + "\n";
}

void print_table(Context& ctx, const std::vector<MailboxState>& states, const ServiceView& view) {
  ctx.out << fmt::format("{:<16} {:<12} {:<22} {:>8} {:>8}  {}\n", "MAILBOX", "STATE",
                         "LAST RUN", "IMPORTED", "SKIPPED", "LAST ERROR");
  for (const auto& st : states) {
    int64_t skipped = 0;
    for (const auto& [reason, n] : st.skipped) skipped += n;
    std::string error = Redactor::instance().scrub(st.last_error);
    if (alert_ticket(st) > 0) {
      error = fmt::format("alert ticket #{} after {} authentication failures; {}",
                          alert_ticket(st), st.consecutive_auth_failures, error);
    }
    if (throttled(st)) error = fmt::format("throttled until {}; {}", st.throttled_until, error);
    ctx.out << fmt::format("{:<16} {:<12} {:<22} {:>8} {:>8}  {}\n", st.name,
                           to_string(st.state), st.last_run.empty() ? "never" : st.last_run,
                           st.imported, skipped, printable(error));
    if (skipped > 0) ctx.out << "  skipped: " << printable(by_reason(st.skipped)) << "\n";
    if (const auto* a = view.holder.running ? view.find(st.name) : nullptr) {
      ctx.out << service_line(*a);
    }
  }
  if (view.holder.running) {
    ctx.out << fmt::format("service: running (pid {}, started {})\n", view.holder.pid,
                           view.holder.started_at.empty() ? "?" : view.holder.started_at);
  } else {
    ctx.out << "service: not running (mailbridge run)\n";
  }
}

int run_status(Context& ctx, bool as_json) {
  auto opened = open_config_and_store(ctx);
  if (!opened.ok()) return exit_code(opened.status());
  std::vector<MailboxState> states;
  for (const auto& m : opened->config.mailboxes) {
    auto st = opened->store->get_mailbox_state(m.name);
    if (!st.ok()) return fail(ctx, st.status());
    st->name = m.name;
    // A mailbox switched off in the file is not polled, whatever its last state was.
    if (!m.enabled) st->state = MailboxStatus::kPaused;
    states.push_back(std::move(*st));
  }
  auto view = service_view(opened->config, *opened->store);
  if (!view.ok()) return fail(ctx, view.status());
  if (as_json) {
    json arr = json::array();
    for (const auto& st : states) {
      json j = state_json(st);
      j["service"] = service_json(*view, st.name);
      arr.push_back(std::move(j));
    }
    ctx.out << safe_dump(arr, 2) << "\n";
  } else {
    print_table(ctx, states, *view);
  }
  return 0;
}

}  // namespace

void add_status(CLI::App& app, Context& ctx) {
  auto* cmd = app.add_subcommand("status", "per-mailbox last-run statistics and state");
  auto json = std::make_shared<bool>(false);
  cmd->add_flag("--json", *json, "print JSON");
  cmd->callback([&ctx, json] { ctx.action = [&ctx, json] { return run_status(ctx, *json); }; });
}

}  // namespace mb::cli
