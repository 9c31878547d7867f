// File: core/outbox.cpp — queueing tracked mail, flushing the outbox through Senders,
// backoff, parking, pause/resume and the recovery of interrupted sends.
#include "core/outbox.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <ctime>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <spdlog/spdlog.h>

#include "core/ascii.h"
#include "core/backoff.h"
#include "core/failpoint.h"
#include "core/metrics.h"
#include "core/tracking.h"
#include "core/utc.h"

namespace mb {
namespace {

using SysClock = std::chrono::system_clock;

std::string host_name() {
  char buf[256] = {};
  if (gethostname(buf, sizeof buf - 1) != 0) return "localhost";
  return buf;
}

std::string default_owner() { return host_name() + ":" + std::to_string(::getpid()); }

bool local_process_alive(const std::string& owner) {
  size_t colon = owner.rfind(':');
  if (colon == std::string::npos || owner.substr(0, colon) != host_name()) return true;
  char* end = nullptr;
  long pid = std::strtol(owner.c_str() + colon + 1, &end, 10);
  if (pid <= 0 || end == nullptr || *end != '\0') return false;
  if (::kill(static_cast<pid_t>(pid), 0) == 0) return true;
  return errno == EPERM;  // alive, owned by another user
}

const UserConfig* find_user(const Config& config, const std::string& email) {
  std::string e = ascii_lower(email);
  for (const auto& u : config.users) {
    if (ascii_lower(u.email) == e) return &u;
  }
  return nullptr;
}

std::string join_addresses(const std::vector<Address>& to, const std::vector<Address>& cc) {
  std::string out;
  for (const auto* list : {&to, &cc}) {
    for (const auto& a : *list) out += (out.empty() ? "" : ", ") + a.email;
  }
  return out;
}

std::string from_name_for(const Config& config, const UserConfig* user) {
  if (user == nullptr) return "";
  std::string name = user->name.empty() ? user->email : user->name;
  std::string tpl = config.tracking.from_name;
  size_t pos = tpl.find("{user}");
  if (pos != std::string::npos) tpl.replace(pos, 6, name);
  return tpl;
}

// The note's recipients' results, merged: the latest word about each address wins.
std::string merge_results(const std::string& previous, const std::vector<RecipientResult>& now) {
  auto all = nlohmann::json::parse(previous, nullptr, false);
  if (!all.is_array()) all = nlohmann::json::array();
  for (const auto& r : now) {
    nlohmann::json item = {{"address", r.address}, {"accepted", r.accepted},
                           {"permanent", r.permanent}, {"reply", r.reply}};
    auto it = std::find_if(all.begin(), all.end(), [&](const nlohmann::json& j) {
      return j.is_object() && j.value("address", "") == r.address;
    });
    if (it != all.end()) *it = item;
    else all.push_back(item);
  }
  return all.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// The recipients' answers stored in recipient_results (merge_results' JSON).
std::vector<RecipientResult> stored_results(const std::string& json) {
  std::vector<RecipientResult> out;
  auto all = nlohmann::json::parse(json, nullptr, false);
  for (const auto& j : all.is_array() ? all : nlohmann::json::array()) {
    if (!j.is_object()) continue;
    out.push_back({j.value("address", ""), j.value("accepted", false),
                   j.value("permanent", false), j.value("reply", "")});
  }
  return out;
}

// The options with every empty hook and the owner filled in.
OutboxOptions with_defaults(OutboxOptions o) {
  if (o.owner.empty()) o.owner = default_owner();
  if (!o.owner_alive) o.owner_alive = local_process_alive;
  if (!o.jitter) {
    auto gen = std::make_shared<std::mt19937_64>(std::random_device{}());
    o.jitter = [gen] { return std::uniform_real_distribution<double>(0, 1)(*gen); };
  }
  return o;
}

}  // namespace

Outbox::Outbox(Store& store, const Config& config, std::string tracking_secret,
               OutboxOptions options)
    : store_(store), config_(config), secret_(std::move(tracking_secret)),
      options_(with_defaults(std::move(options))),
      log_(HandoverLog::path_for(store.path(), options_.owner)) {}

SysClock::time_point Outbox::now() const { return options_.now ? options_.now() : SysClock::now(); }

std::string Outbox::scrub(std::string_view text) const {
  return options_.scrub ? options_.scrub(text) : std::string(text);
}

std::chrono::seconds Outbox::backoff(int64_t attempts, double jitter) const {
  using std::chrono::seconds;
  const seconds initial = std::max(seconds(1), config_.outbox.retry_initial);
  // Equal jitter: never less than half the delay (the server gets its rest), and spread
  // over the other half so that messages failed together do not all return together.
  const Backoff<seconds> b{initial, std::max(initial, config_.outbox.retry_max), Jitter::kEqual};
  return b.delay(std::max<int64_t>(attempts - 1, 0), jitter);
}

// --- queueing ------------------------------------------------------------------------------

Result<OutboxRow> Outbox::queue_tracked(const TrackedMail& mail) {
  const std::string sender_name = mail.sender.empty() ? config_.tracking.sender : mail.sender;
  const SenderConfig* sender = config_.find_sender(sender_name);
  if (sender == nullptr) {
    return Status(ErrorKind::kConfig, sender_name.empty()
                                          ? "no sender: set [tracking] sender or give --sender"
                                          : "no [[sender]] named \"" + sender_name + "\"");
  }
  if (secret_.empty()) {
    return Status(ErrorKind::kConfig, "[tracking] secret is not set: tracked mail is signed "
                                      "with it");
  }
  // Only the project is needed: find_ticket does not load the ticket's notes, which made
  // queueing slow down as a ticket's email history grew.
  auto ticket = store_.find_ticket(mail.ticket_id);
  if (!ticket.ok()) return ticket.status();
  if (!*ticket) {
    return Status(ErrorKind::kNotFound, "no ticket " + std::to_string(mail.ticket_id));
  }
  auto from = tracked_from(config_, *sender);
  if (!from.ok()) return from.status();
  auto reply_to = tracking_reply_to(config_);
  if (!reply_to.ok()) return reply_to.status();
  const UserConfig* user = nullptr;
  if (!mail.user.empty()) {
    user = find_user(config_, mail.user);
    if (user == nullptr) {
      return Status(ErrorKind::kInvalidInput, "user " + mail.user + " is not a [[user]]");
    }
  }
  MailSpec spec;
  spec.from = {from_name_for(config_, user), *from};
  spec.to = mail.to;
  spec.cc = mail.cc;
  spec.reply_to = *reply_to;
  spec.message_id = new_message_id(*from);
  spec.attachments = mail.attachments;

  Note note;
  note.kind = "email-out";
  note.author = user != nullptr ? ascii_lower(user->email) : *from;
  note.author_name = user != nullptr ? user->name : "";
  note.text = mail.text;
  note.html = mail.html;
  note.message_id = spec.message_id;
  for (const auto& a : mail.attachments) {
    StoredAttachment s;
    s.filename = a.filename;
    s.content_type = a.content_type.empty() ? content_type_for(a.filename) : a.content_type;
    s.size = static_cast<int64_t>(a.data.size());
    s.data = a.data;
    note.attachments.push_back(std::move(s));
  }

  OutboxRow row;
  row.kind = "tracked";
  row.sender = sender_name;
  row.ticket_id = mail.ticket_id;
  row.user = user != nullptr ? ascii_lower(user->email) : "";
  row.next_attempt_at = format_utc(now());
  const std::string project = (*ticket)->project;
  TrackingSigner signer(secret_);
  auto finish = [&](int64_t note_id, OutboxRow& r) -> Status {
    const std::string cookie = signer.bracketed({project, note_id, mail.ticket_id});
    spec.subject = mail.subject + " " + cookie;
    spec.text = mail.text + tracking_footer_text(cookie);
    if (!mail.html.empty()) spec.html = append_html_footer(mail.html, cookie);
    spec.headers = {{"X-Mailbridge-Tracking", signer.make({project, note_id, mail.ticket_id})}};
    auto composed = compose_message(spec);
    if (!composed.ok()) return composed.status();
    r.raw = std::move(composed->raw);
    r.message_id = composed->message_id;
    r.env_from = composed->envelope.from;
    r.recipients = composed->envelope.recipients;
    r.pending = r.recipients;
    r.to = join_addresses(mail.to, mail.cc);
    r.subject = spec.subject;
    return Status::Ok();
  };
  return store_.enqueue_outbox(std::move(row), &note, finish);
}

// --- flushing ------------------------------------------------------------------------------

namespace {

// The metrics of an attempt's outcome, once the store has it (core/metrics.h).
void count_outcome(const OutboxRow& row) {
  if (row.state == OutboxState::kSent) metrics::outbox_sent(row.sender).inc();
  else if (row.state == OutboxState::kParked) metrics::outbox_parked(row.sender).inc();
  else if (row.state == OutboxState::kQueued) metrics::outbox_retries(row.sender).inc();
}

}  // namespace

void Outbox::schedule_retry(OutboxRow& row, const Status& why, FlushStats& stats) {
  row.last_error = scrub(why.to_string());
  row.claimed_by.clear();
  row.claimed_at.clear();
  if (is_permanent_send_failure(why) ||
      row.attempts >= static_cast<int64_t>(config_.outbox.max_attempts)) {
    row.state = OutboxState::kParked;
    if (!is_permanent_send_failure(why)) {
      row.last_error = "gave up after " + std::to_string(row.attempts) + " attempts: " +
                       row.last_error;
    }
    ++stats.parked;
    return;
  }
  auto delay = backoff(row.attempts, options_.jitter());
  if (auto after = why.retry_after(); after && *after > delay) delay = *after;
  row.state = OutboxState::kQueued;
  row.next_attempt_at = format_utc(now() + delay);
  ++stats.retrying;
}

void Outbox::record_result(OutboxRow& row, const Result<SendResult>& result,
                           FlushStats& stats) {
  if (!result.ok()) {
    stats.errors.push_back("#" + std::to_string(row.id) + ": " + scrub(result.status().to_string()));
    schedule_retry(row, result.status(), stats);
    return;
  }
  row.server_id = result->server_id;
  row.queued_only = result->queued_only;
  row.recipient_results = merge_results(row.recipient_results, result->recipients);
  std::vector<std::string> still;
  std::string refused;
  for (const auto& address : row.pending) {
    auto it = std::find_if(result->recipients.begin(), result->recipients.end(),
                           [&](const RecipientResult& r) { return ascii_lower(r.address) == address; });
    // A recipient the sender said nothing of went with the message.
    if (it == result->recipients.end() || it->accepted) continue;
    if (it->permanent) {
      refused += (refused.empty() ? "" : "; ") + address + ": " + it->reply;
    } else {
      still.push_back(address);
    }
  }
  row.pending = std::move(still);
  // Recipients refused for good by earlier attempts stay named until the end.
  refused.clear();
  for (const auto& r : stored_results(row.recipient_results)) {
    if (r.accepted || !r.permanent) continue;
    refused += (refused.empty() ? "" : "; ") + r.address + ": " + r.reply;
  }
  if (row.pending.empty()) {
    row.state = OutboxState::kSent;
    row.sent_at = format_utc(now());
    row.last_error = refused.empty() ? "" : scrub("refused for good: " + refused);
    row.claimed_by.clear();
    row.claimed_at.clear();
    ++stats.sent;
    return;
  }
  std::string why = std::to_string(row.pending.size()) + " recipient(s) refused for now";
  if (!refused.empty()) why += "; refused for good: " + refused;
  Status transient(ErrorKind::kThrottled, why);
  stats.errors.push_back("#" + std::to_string(row.id) + ": " + scrub(why));
  schedule_retry(row, transient, stats);
}

// The message's end reached the server but its answer never came back to us: the server
// may have kept it. [outbox] in_doubt decides (docs/reliability.md, "The outbox").
void Outbox::resolve_in_doubt(OutboxRow& row, const std::string& why, FlushStats& stats) {
  const std::string id = std::to_string(row.id);
  switch (config_.outbox.in_doubt) {
    case InDoubt::kSent: {
      // The recipients' answers known when the end was written (recorded with
      // handed_over_at) stand as the final ones: those accepted got the message.
      SendResult known;
      for (auto& r : stored_results(row.recipient_results)) {
        if (std::find(row.pending.begin(), row.pending.end(), ascii_lower(r.address)) !=
            row.pending.end()) {
          known.recipients.push_back(std::move(r));
        }
      }
      record_result(row, known, stats);
      if (row.state == OutboxState::kSent) {
        row.unconfirmed = true;
        row.sent_at = row.handed_over_at.empty() ? row.sent_at : row.handed_over_at;
        row.last_error = scrub("unconfirmed: " + why + "; the server had the whole message, so "
                               "it counts as sent (in_doubt = \"sent\")" +
                               (row.last_error.empty() ? "" : "; " + row.last_error));
        ++stats.unconfirmed;
      }
      break;
    }
    case InDoubt::kResend:
      schedule_retry(row,
                     Status(ErrorKind::kNetwork, why + "; in doubt, so it goes again with the "
                                                 "same Message-ID (in_doubt = \"resend\")"),
                     stats);
      break;
    case InDoubt::kPark:
      row.state = OutboxState::kParked;
      row.last_error = scrub("in doubt: " + why + ". The server had the whole message but its "
                             "answer was never read; check whether it arrived, and if not, "
                             "`mailbridge outbox retry " + id + "` sends it again");
      row.claimed_by.clear();
      row.claimed_at.clear();
      ++stats.parked;
      break;
  }
  stats.errors.push_back("#" + id + ": in doubt: " + scrub(why));
  spdlog::warn("outbox #{}: {}", id, row.last_error);
}

Status Outbox::send_one(OutboxRow& row, Sender* sender, const Status& setup, FlushStats& stats) {
  const std::string owner = row.claimed_by;
  if (sender == nullptr) {
    record_result(row, Result<SendResult>(setup), stats);
  } else {
    OutgoingMail mail{std::to_string(row.id), {row.env_from, row.pending}, row.raw, {}};
    bool handed_over = false;
    log_.starting(row.id);
    // Written before the server's answer is read: a crash from here on leaves a row that
    // says "the server may have it", never one that would be sent again blindly. The log
    // first (one pwrite), then the store (one commit).
    mail.on_handed_over = [&](const SendResult& so_far) {
      log_.handed_over(row.id);
      failpoint("outbox.handover-logged");
      handed_over = true;
      row.handed_over_at = format_utc(now());
      row.recipient_results = merge_results(row.recipient_results, so_far.recipients);
      auto marked = store_.mark_outbox_handed_over(row.id, owner, row.handed_over_at,
                                                   row.recipient_results);
      if (!marked.ok()) {
        spdlog::warn("outbox #{}: could not record that the message reached the server: {}",
                     row.id, marked.status().to_string());
      }
      failpoint("outbox.handed-over");
    };
    auto result = sender->send(mail);
    failpoint("outbox.before-record");
    if (!result.ok() && handed_over && !is_server_answer(result.status())) {
      resolve_in_doubt(row, result.status().to_string(), stats);
    } else {
      record_result(row, result, stats);
    }
  }
  auto written = store_.update_outbox(row, OutboxState::kSending, owner);
  if (!written.ok()) return written.status();
  if (!*written) spdlog::warn("outbox #{}: taken over by another process meanwhile", row.id);
  if (*written) count_outcome(row);
  failpoint("outbox.recorded");
  return Status::Ok();
}

Result<FlushStats> Outbox::flush(const SenderFactory& senders) {
  FlushStats stats;
  auto is_paused = store_.outbox_paused();
  if (!is_paused.ok()) return is_paused.status().prefixed("reading the outbox's pause flag");
  if (*is_paused) {
    stats.paused = true;
    return stats;
  }
  auto recovered = recover();
  if (!recovered.ok()) return recovered.status();
  stats.recovered = *recovered;
  std::map<std::string, std::pair<std::unique_ptr<Sender>, Status>> open;
  Status failure;
  for (;;) {
    auto batch = store_.claim_outbox(format_utc(now()), options_.owner,
                                     std::max<uint32_t>(1, config_.outbox.batch));
    if (!batch.ok()) {
      failure = batch.status();
      break;
    }
    if (batch->empty()) break;
    for (auto& row : *batch) {
      auto it = open.find(row.sender);
      if (it == open.end()) {
        auto made = senders(row.sender);
        it = open.emplace(row.sender, made.ok() ? std::make_pair(std::move(*made), Status())
                                                : std::make_pair(nullptr, made.status()))
                 .first;
      }
      failure = send_one(row, it->second.first.get(), it->second.second, stats);
      if (!failure.ok()) break;
    }
    if (!failure.ok()) break;
    // Paused meanwhile: the rest waits for resume. A flag that cannot be read is an error,
    // never "not paused" nor a quiet end.
    auto again = store_.outbox_paused();
    if (!again.ok()) {
      failure = again.status().prefixed("reading the outbox's pause flag");
      break;
    }
    if (*again) break;
  }
  for (auto& [name, s] : open) {
    if (s.first) s.first->close();
  }
  if (!failure.ok()) return failure;
  log_.remove();  // every outcome is in the store
  return stats;
}

bool Outbox::claimer_gone(const OutboxRow& row) const {
  if (row.claimed_by == options_.owner) return false;  // ours, in flight
  auto claimed = parse_utc(row.claimed_at);
  if (!claimed || now() - *claimed > options_.lease) return true;
  return !options_.owner_alive(row.claimed_by);
}

Result<int64_t> Outbox::recover() {
  auto rows = store_.sending_outbox();
  if (!rows.ok()) return rows.status();
  int64_t n = 0;
  const std::string store_path = store_.path();
  // The dead owners' hand-over logs (path → the id each last handed over), read once each
  // and deleted at the end.
  std::map<std::string, std::optional<int64_t>> logs;
  for (auto& row : *rows) {
    if (!claimer_gone(row)) continue;
    const std::string owner = row.claimed_by;
    const std::string log = HandoverLog::path_for(store_path, owner);
    auto last = logs.find(log);
    if (last == logs.end()) {
      auto read = HandoverLog::last_handed_over(log);
      if (!read.ok()) return read.status();
      last = logs.emplace(log, *read).first;
    }
    // The store's record, or the log's when the process died before the store's commit.
    const bool in_log = last->second == row.id;
    if (!row.handed_over_at.empty() || in_log) {
      // The end of the message was written, and then the process died: the server may
      // well have it.
      FlushStats ignored;
      std::string when = row.handed_over_at.empty() ? "" : " at " + row.handed_over_at;
      resolve_in_doubt(row, "interrupted after the message reached the server" + when + " (" +
                                owner + " stopped)", ignored);
      if (row.state == OutboxState::kQueued) row.next_attempt_at = format_utc(now());
    } else {
      // SMTP: its end never reached the server, which discards an unfinished transaction,
      // so sending it again cannot make a second copy. Graph's one request has no such
      // moment on record: it may have gone (docs/reliability.md).
      const SenderConfig* via = config_.find_sender(row.sender);
      const bool marks = via == nullptr || !connector_spec(via->type).http;
      row.state = OutboxState::kQueued;
      row.next_attempt_at = format_utc(now());
      row.last_error = marks ? "interrupted before the message reached the server (" + owner +
                                   " stopped); sent again"
                             : "interrupted while sending (" + owner + " stopped); the " +
                                   to_string(via->type) + " sender cannot tell whether it left, so it "
                                   "goes again with the same Message-ID";
      row.claimed_by.clear();
      row.claimed_at.clear();
      spdlog::warn("outbox #{}: {}", row.id, row.last_error);
    }
    auto written = store_.update_outbox(row, OutboxState::kSending, owner);
    if (!written.ok()) return written.status();
    if (*written) ++n;
    if (*written) count_outcome(row);
  }
  // Every row they spoke of is written back: nothing in them is needed any more.
  for (const auto& [log, last] : logs) HandoverLog::remove_file(log);
  return n;
}

// --- control -------------------------------------------------------------------------------

Status Outbox::pause() { return store_.set_outbox_paused(true); }
Status Outbox::resume() { return store_.set_outbox_paused(false); }
Result<bool> Outbox::paused() { return store_.outbox_paused(); }

Status Outbox::retry(int64_t id) {
  auto row = store_.get_outbox(id);
  if (!row.ok()) return row.status();
  if (!*row) return Status(ErrorKind::kNotFound, "no outbox message " + std::to_string(id));
  OutboxRow r = std::move(**row);
  // A message recorded as sent without the server's answer may be sent again by hand, once
  // an operator found it did not arrive.
  if (r.state != OutboxState::kParked && r.state != OutboxState::kQueued &&
      !(r.state == OutboxState::kSent && r.unconfirmed)) {
    return Status(ErrorKind::kRejected, "outbox message " + std::to_string(id) + " is " +
                                            to_string(r.state) + ", not parked");
  }
  const OutboxState was = r.state;
  if (r.state == OutboxState::kSent) {
    r.pending = r.recipients;
    r.unconfirmed = false;
    r.sent_at.clear();
  }
  r.state = OutboxState::kQueued;
  r.attempts = 0;
  r.next_attempt_at = format_utc(now());
  if (r.pending.empty()) r.pending = r.recipients;
  auto written = store_.update_outbox(r, was);
  if (!written.ok()) return written.status();
  if (!*written) {
    return Status(ErrorKind::kRejected, "outbox message " + std::to_string(id) +
                                            " changed meanwhile; try again");
  }
  return Status::Ok();
}

// --- forwards of tracked replies -------------------------------------------------------------

Result<OutboxRow> build_forward(const Config& config, const OutboxRow& original,
                                const Note& reply, const std::string& subject,
                                const std::vector<StoredAttachment>& attachments,
                                const std::string& source_key) {
  const SenderConfig* sender = config.find_sender(config.tracking.sender);
  if (sender == nullptr) return Status(ErrorKind::kConfig, "[tracking] sender is not set");
  auto from = tracked_from(config, *sender);
  if (!from.ok()) return from.status();
  MailSpec spec;
  spec.from = {"Help Desk", *from};
  spec.to = {{"", original.user}};
  std::string clean_subject;
  for (char c : subject) clean_subject.push_back(c == '\r' || c == '\n' ? ' ' : c);
  spec.subject = "Fwd: " + clean_subject;
  std::string who = reply.author_name.empty() ? reply.author
                                              : reply.author_name + " <" + reply.author + ">";
  spec.text = who + " replied on ticket #" + std::to_string(original.ticket_id) + ":\n\n" +
              reply.text;
  spec.html = reply.html;
  if (!spec.html.empty() && spec.text.size() == 0) spec.text = " ";
  spec.in_reply_to = original.message_id;
  for (const auto& a : attachments) {
    spec.attachments.push_back({a.filename, a.content_type, a.data});
  }
  auto composed = compose_message(spec);
  if (!composed.ok()) return composed.status();
  OutboxRow row;
  row.kind = "forward";
  row.sender = config.tracking.sender;
  row.ticket_id = original.ticket_id;
  row.user = original.user;
  row.env_from = composed->envelope.from;
  row.recipients = composed->envelope.recipients;
  row.pending = row.recipients;
  row.to = original.user;
  row.subject = spec.subject;
  row.raw = std::move(composed->raw);
  row.message_id = composed->message_id;
  row.source_key = source_key;
  return row;
}

}  // namespace mb
