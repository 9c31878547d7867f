// File: core/monitor.cpp — the auth-failure alert: pausing a mailbox that keeps failing to
// sign in, the alert ticket, and resuming after a successful sign-in.
#include "core/monitor.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "core/utc.h"

namespace mb {
namespace {

constexpr MailboxStatus kAuthFailed = MailboxStatus::kAuthFailed;
constexpr const char* kAlertSource = "System - Email Monitor";

std::string failures(int64_t n) {
  return fmt::format("{} authentication failure{}", n, n == 1 ? "" : "s");
}

// Where the mailbox signs in, for texts an administrator reads.
std::string host_of(const MailboxConfig& m) {
  if (!m.host.empty()) return m.host;
  if (!m.endpoint.empty()) return m.endpoint;
  return to_string(m.type) + " default endpoint";
}

// Replaces {mailbox} {user} {host} {error} {failures}; other text is kept as written.
std::string expand(const std::string& text, const MailboxConfig& m, const std::string& error,
                   int64_t failures) {
  const std::pair<const char*, std::string> values[] = {
      {"{mailbox}", m.name}, {"{user}", m.user}, {"{host}", host_of(m)},
      {"{error}", error},    {"{failures}", std::to_string(failures)}};
  std::string out;
  for (size_t i = 0; i < text.size();) {
    bool replaced = false;
    for (const auto& [name, value] : values) {
      if (text.compare(i, std::char_traits<char>::length(name), name) == 0) {
        out += value;
        i += std::char_traits<char>::length(name);
        replaced = true;
        break;
      }
    }
    if (!replaced) out += text[i++];
  }
  return out;
}

Note system_note(std::string text) {
  Note n;
  n.kind = "system";
  n.author = "system";
  n.author_name = kAlertSource;
  n.text = std::move(text);
  return n;
}

// Opens the one alert ticket of this failure episode; the caller's transaction makes it
// one with the state change.
Status raise_alert(Store& store, const MailboxConfig& m, const Config& config,
                   MailboxState& state, const Status& error, const MonitorHooks& hooks) {
  const AlertTemplate& t = config.monitor.alert;
  const int64_t n = state.consecutive_auth_failures;
  Ticket ticket;
  ticket.project = t.project.empty() ? m.project : t.project;
  ticket.subject = hooks.clean(expand(t.subject, m, error.message(), n));
  ticket.source = kAlertSource;
  ticket.requester = hooks.clean(expand(t.requester, m, error.message(), n));
  ticket.mailbox = m.name;
  auto id = store.create_ticket(ticket, system_note(hooks.clean(expand(t.body, m,
                                                                       error.message(), n))));
  if (!id.ok()) return id.status().prefixed("alert ticket");
  state.alert_ticket_id = *id;
  state.state = kAuthFailed;
  spdlog::warn("mailbox {}: {} in a row; polling paused, alert ticket #{} opened", m.name,
               failures(n), *id);
  return Status::Ok();
}

// Ends the failure episode: the alert ticket learns that sign-in works again.
Status resume(Store& store, const MailboxConfig& m, MailboxState& state, const char* how,
              const MonitorHooks& hooks) {
  if (state.alert_ticket_id > 0) {
    std::string text = fmt::format("Sign-in succeeded again at {} ({}); polling resumed.",
                                   format_utc(hooks.clock()), how);
    auto note = store.add_note(state.alert_ticket_id, system_note(hooks.clean(text)));
    // A ticket removed by hand must not keep the mailbox paused forever.
    if (!note.ok() && note.status().kind() != ErrorKind::kNotFound) {
      return note.status().prefixed("alert ticket note");
    }
  }
  spdlog::warn("mailbox {}: signed in again; polling resumed (alert ticket #{})", m.name,
               state.alert_ticket_id);
  state.state = MailboxStatus::kOk;
  state.alert_ticket_id = 0;
  return Status::Ok();
}

}  // namespace

PassPlan before_pass(const MailboxState& state, const MonitorConfig& config,
                     Clock::time_point now) {
  PassPlan plan;
  if (state.state != kAuthFailed) return plan;
  // No readable last attempt: probing once is the safe way to find out.
  auto last = parse_utc(state.last_run);
  plan.next_probe = last ? *last + config.auth_retry_interval : now;
  if (now >= plan.next_probe) {
    plan.kind = PassPlan::Kind::kProbe;
    return plan;
  }
  plan.kind = PassPlan::Kind::kPaused;
  std::string alert = state.alert_ticket_id > 0
                          ? fmt::format(" (alert ticket #{})", state.alert_ticket_id)
                          : "";
  plan.message = fmt::format(
      "paused after {}{}; fix the sign-in and run `mailbridge test-connection {}` (next "
      "sign-in attempt after {})",
      failures(state.consecutive_auth_failures), alert, state.name,
      format_utc(plan.next_probe));
  return plan;
}

Status after_pass(Store& store, const MailboxConfig& mailbox, const Config& config,
                  MailboxState& state, const PassOutcome& outcome, const MonitorHooks& hooks) {
  const bool auth_error = !outcome.status.ok() && outcome.status.kind() == ErrorKind::kAuth;
  if (outcome.signed_in) {
    state.consecutive_auth_failures = 0;
    if (state.state == kAuthFailed) {
      MB_RETURN_IF_ERROR(resume(store, mailbox, state, "sign-in probe of a sync pass", hooks));
    }
  }
  if (auth_error) ++state.consecutive_auth_failures;
  // Still failing within the episode: its one alert ticket exists already.
  if (state.state == kAuthFailed) return Status::Ok();
  if (auth_error &&
      state.consecutive_auth_failures >= int64_t{config.monitor.auth_failure_threshold}) {
    return raise_alert(store, mailbox, config, state, outcome.status, hooks);
  }
  state.state = outcome.status.ok() ? MailboxStatus::kOk : MailboxStatus::kError;
  return Status::Ok();
}

Result<SignInRecord> record_sign_in(Store& store, const MailboxConfig& mailbox,
                                    const MonitorHooks& hooks) {
  auto current = store.get_mailbox_state(mailbox.name);
  if (!current.ok()) return current.status();
  SignInRecord record;
  if (current->consecutive_auth_failures == 0 && current->state != kAuthFailed) return record;
  auto written = store.update_mailbox_state(mailbox.name, [&](MailboxState& state) {
    state.consecutive_auth_failures = 0;
    if (state.state != kAuthFailed) return Status::Ok();
    record = {true, state.alert_ticket_id};
    return resume(store, mailbox, state, "mailbridge test-connection", hooks);
  });
  if (!written.ok()) return written.status();
  return record;
}

}  // namespace mb
