// File: core/internal/sync.cpp — sync_mailbox(): the exactly-once ingest of one mailbox.
//
// The order of writes is what makes it exactly once: a message's ticket or note and its
// ledger row are one transaction; a post-action is requested only after that commit and is
// marked done only after the server accepted it; the connector's next_state is stored only
// once every listed key is in the ledger. A crash between any two steps leaves either work
// that the next run skips (the ledger has the key) or work it finishes (post_action_done = 0).
#include <spdlog/spdlog.h>

#include <algorithm>
#include <optional>
#include <unordered_set>

#include "core/hash.h"
#include "core/ingest.h"
#include "core/log_context.h"
#include "core/metrics.h"
#include "core/monitor.h"
#include "core/outbox.h"
#include "core/tracking.h"
#include "core/utc.h"

namespace mb {
namespace {

struct Run {
  Mailbox& mailbox;
  const MailboxConfig& mcfg;
  const Config& config;
  Store& store;
  const SyncOptions& options;
  SyncStats stats;
  std::string last_message_error;
  bool left_for_retry = false;  // a listed key is not in the ledger after this run
  size_t done = 0;
  size_t total = 0;
  bool signed_in = false;                  // list_pending got past the sign-in
  std::optional<std::string> next_cursor;  // the connector state to store, when it advances
};

// Errors that end the pass: the connection, the mailbox or the store is unusable.
bool stops_pass(const Status& s) {
  if (s.scope() == ErrorScope::kConnection || s.scope() == ErrorScope::kMailbox) return true;
  if (s.scope() == ErrorScope::kMessage) return false;
  switch (s.kind()) {
    case ErrorKind::kRejected:
    case ErrorKind::kNotFound:
    case ErrorKind::kInvalidInput:
    case ErrorKind::kTooLarge:
      return false;
    default:
      return true;
  }
}

// The ledger's post-action text back into a PostAction; unknown text is left alone.
PostAction action_from_string(const std::string& s) {
  if (s == "mark-read") return PostAction::mark_read();
  if (s == "delete") return PostAction::remove();
  if (s.rfind("move:", 0) == 0 && s.size() > 5) return PostAction::move(s.substr(5));
  return PostAction::leave();
}

void note_message_error(Run& r, const std::string& key, const Status& s) {
  ++r.stats.errors;
  r.last_message_error = s.to_string();
  spdlog::warn("mailbox {}: message {} left on the server: {}", r.mcfg.name, key, s.to_string());
}

// Applies and marks done the post-actions of `keys` whose ledger rows are not done yet,
// grouping keys by action so that each action is one server round trip.
Status apply_post_actions(Run& r, const std::vector<std::string>& keys) {
  std::vector<std::pair<std::string, std::vector<std::string>>> groups;
  for (const auto& key : keys) {
    auto entry = r.store.find_ledger(r.mcfg.name, key);
    if (!entry.ok()) return entry.status();
    if (!*entry || (*entry)->post_action_done) continue;
    const std::string& action = (*entry)->post_action;
    auto it = std::find_if(groups.begin(), groups.end(),
                           [&](const auto& g) { return g.first == action; });
    if (it == groups.end()) it = groups.insert(groups.end(), {action, {}});
    it->second.push_back(key);
  }
  bool durable = false;
  for (const auto& [text, group] : groups) {
    PostAction action = action_from_string(text);
    if (action.kind != PostAction::Kind::kLeave) {
      // The server only changes once the commits it follows would survive a power cut.
      if (!durable) MB_RETURN_IF_ERROR(r.store.make_durable());
      durable = true;
      Status s = r.mailbox.apply(group, action);
      if (!s.ok() && stops_pass(s)) return s.prefixed("post-action " + text);
      if (!s.ok()) {
        note_message_error(r, group.front(), s.prefixed("post-action " + text));
        continue;  // stays not done; the next run tries again
      }
    }
    for (const auto& key : group) {
      MB_RETURN_IF_ERROR(r.store.mark_post_action_done(r.mcfg.name, key));
    }
  }
  return Status::Ok();
}

// The email-out note a genuine cookie names, if that note, its ticket and the ticket's
// project still match: a cookie for a ticket that no longer exists matches nothing. A store
// error is returned, never taken for "no match".
Result<std::optional<Store::EmailOut>> cookie_target(Store& store, const std::string& secret,
                                                     const ParsedMessage& msg) {
  using Target = std::optional<Store::EmailOut>;
  if (secret.empty()) return Target();
  auto cookie = TrackingSigner(secret).find({msg.subject, msg.text, msg.html});
  if (!cookie) return Target();
  auto out = store.find_email_out(cookie->email);
  if (!out.ok()) {
    return out.status().prefixed("looking up the email-out note " +
                                 std::to_string(cookie->email) + " of a tracking cookie");
  }
  if (!*out) return Target();
  if ((*out)->ticket_id != cookie->ticket ||
      (*out)->project.substr(0, kMaxCookieProject) != cookie->project) {
    return Target();
  }
  return *out;
}

// The forward of a tracked reply to the technician the original was sent for (SPEC §4),
// committed with the reply's note. Nothing when the original names nobody, the reply comes
// from that technician, or the forward cannot be built (then logged: the reply is kept).
// A store error looking up the original is returned: the reply waits for the next pass
// rather than lose its forward.
Status add_forward(Run& r, int64_t email_out_note, const std::string& subject,
                   const std::string& key, MessageCommit& c) {
  if (r.options.tracking_secret.empty() || r.mcfg.name != r.config.tracking.mailbox) {
    return Status::Ok();
  }
  auto original = r.store.outbox_for_note(email_out_note);
  if (!original.ok()) {
    return original.status().prefixed("looking up the tracked mail of note " +
                                      std::to_string(email_out_note) + " to forward a reply");
  }
  if (!*original || (*original)->user.empty()) return Status::Ok();
  if ((*original)->user == c.note.author) return Status::Ok();
  auto fwd = build_forward(r.config, **original, c.note, subject, c.attachments,
                           "forward:" + r.mcfg.name + ":" + key);
  if (!fwd.ok()) {
    spdlog::warn("mailbox {}: reply {} not forwarded: {}", r.mcfg.name, key,
                 fwd.status().to_string());
    return Status::Ok();
  }
  c.outbox.push_back(std::move(*fwd));
  return Status::Ok();
}

// decide()'s view of the store. Every lookup returns its error, so that a busy or failing
// store stops the message (left on the server for the next pass) instead of routing it.
RouteContext route_context(Store& store, const std::string& tracking_secret) {
  RouteContext ctx;
  if (!tracking_secret.empty()) {
    ctx.ticket_for_tracking_cookie =
        [&store, tracking_secret](const ParsedMessage& msg) -> Result<std::optional<int64_t>> {
      auto target = cookie_target(store, tracking_secret, msg);
      if (!target.ok()) return target.status();
      if (!*target) return std::optional<int64_t>();
      return std::optional<int64_t>((*target)->ticket_id);
    };
  }
  ctx.ticket_exists = [&store](int64_t id) { return store.ticket_exists(id); };
  ctx.ticket_for_message_id = [&store](const std::string& id) {
    return store.ticket_for_sent_message_id(id);
  };
  return ctx;
}

// A message recorded as skipped for good and left on the server (counted as left there,
// so it never crowds out new mail).
void skip_and_leave(MessageCommit& c, const char* reason) {
  c.skip = true;
  c.skip_reason = reason;
  c.post_action = PostAction::leave().to_string();
}

// What a parse failure makes of a message. The same bytes parse the same way every time,
// so a failure the bytes cause is a skip for good: kInvalidInput (the parser could not make
// sense of them) is "malformed", kTooLarge (over a bound of the parser) is "too-large".
// Anything else (running out of memory) is transient: the message is retried next pass.
Status parse_failure(Run& r, const std::string& key, const Status& why, MessageCommit& c) {
  if (why.kind() == ErrorKind::kInvalidInput || why.kind() == ErrorKind::kTooLarge) {
    spdlog::warn("mailbox {}: message {} cannot be parsed and is left on the server: {}",
                 r.mcfg.name, key, why.to_string());
    skip_and_leave(c, why.kind() == ErrorKind::kTooLarge ? kSkipTooLarge : kSkipMalformed);
    return Status::Ok();
  }
  return Status(why).with_scope(ErrorScope::kMessage);
}

// Parses and decides; fills `c`. Errors of scope kMessage leave the message for a retry;
// others (the store) stop the pass.
Status prepare_commit(Run& r, const std::string& key, const std::string& raw,
                      MessageCommit& c) {
  auto parsed = parse_message(raw);
  if (!parsed.ok()) return parse_failure(r, key, parsed.status(), c);
  const std::string& secret = r.options.tracking_secret;
  auto d = decide(*parsed, r.config, r.mcfg, route_context(r.store, secret));
  if (!d.ok()) return d.status();
  std::optional<int64_t> reply_to_note;
  if (d->kind == Decision::Kind::kNote && !d->matched_message_id.empty()) {
    auto sent = r.store.find_sent_message(d->matched_message_id);
    if (!sent.ok()) return sent.status();
    if (*sent) reply_to_note = (*sent)->note_id;
  } else if (d->kind == Decision::Kind::kNote && d->matched_by == "cookie") {
    auto target = cookie_target(r.store, secret, *parsed);
    if (!target.ok()) return target.status();
    if (*target) reply_to_note = (*target)->note_id;
  }
  const std::string subject = parsed->subject;
  c = build_message_commit(std::move(*parsed), *d, r.mcfg, r.config);
  c.note.in_reply_to = reply_to_note;
  if (reply_to_note) MB_RETURN_IF_ERROR(add_forward(r, *reply_to_note, subject, key, c));
  return Status::Ok();
}

// Builds the commit of one fetched message: a skip (too large, duplicate bytes, malformed,
// filtered) or a ticket/note.
Status build_commit(Run& r, const std::string& key, const std::string& raw,
                    MessageCommit& c) {
  if (raw.size() > r.config.ingest.max_message_bytes) {
    skip_and_leave(c, kSkipTooLarge);
    return Status::Ok();
  }
  std::string sha = sha256_hex(raw);
  auto same = r.store.find_ledger_by_sha(r.mcfg.name, sha);
  if (!same.ok()) return same.status();
  if (*same) {
    // The same bytes under a new key (UIDVALIDITY reset, resync): what became of the
    // original becomes of this one, and no second ticket is made.
    c.skip = true;
    c.skip_reason = kSkipDuplicate;
    c.ticket_id = (*same)->ticket_id;
    c.note.id = (*same)->note_id;
    c.post_action = (*same)->post_action;
  } else {
    MB_RETURN_IF_ERROR(prepare_commit(r, key, raw, c));
  }
  c.sha256 = std::move(sha);
  return Status::Ok();
}

void count(Run& r, const MessageCommit& c, const CommitResult& res) {
  if (res.duplicate || c.skip) {
    const std::string reason = res.duplicate ? kSkipDuplicate : c.skip_reason;
    ++r.stats.skipped[reason];
    metrics::messages_skipped(r.mcfg.name, reason).inc();
    return;
  }
  ++(c.ticket_id == 0 ? r.stats.tickets : r.stats.notes);
  ++r.stats.imported;
  metrics::messages_imported(r.mcfg.name).inc();
}

// The skip reason of a message the connector could not hand over (core/mailbox.h's
// FetchCallback contract; an error without a scope is taken as the message's), or nullptr
// when the error is transient.
const char* fetch_skip_reason(const Status& s) {
  if (s.scope() != ErrorScope::kMessage && s.scope() != ErrorScope::kNone) return nullptr;
  if (s.kind() == ErrorKind::kTooLarge) return kSkipTooLarge;
  if (s.kind() == ErrorKind::kInvalidInput) return kSkipUnreadable;
  return nullptr;
}

Status commit_and_count(Run& r, MessageCommit& c, const std::string& key, const std::string& raw,
                        std::vector<std::string>& committed) {
  c.mailbox = r.mcfg.name;
  c.key = key;
  auto res = r.store.commit_message(c, raw);
  if (!res.ok()) return res.status();
  count(r, c, *res);
  committed.push_back(key);
  return Status::Ok();
}

// A message the connector could not hand over. Too large or unreadable: recorded once in the
// ledger as skipped and left on the server, so it is neither downloaded again every poll
// nor holding the cursor back. Anything else is left for a retry next pass.
Status fetch_failed(Run& r, const std::string& key, const Status& why,
                    std::vector<std::string>& committed) {
  if (why.scope() != ErrorScope::kMessage && stops_pass(why)) return why;
  const char* reason = fetch_skip_reason(why);
  if (reason == nullptr) {
    note_message_error(r, key, why);
    r.left_for_retry = true;
    return Status::Ok();
  }
  spdlog::warn("mailbox {}: message {} skipped ({}) and left on the server: {}", r.mcfg.name,
               key, reason, why.to_string());
  MessageCommit c;
  skip_and_leave(c, reason);
  return commit_and_count(r, c, key, std::string(), committed);
}

// One fetched message, end to end up to its commit. Returns only errors that stop the pass.
Status ingest_one(Run& r, const std::string& key, Result<std::string> raw,
                  std::vector<std::string>& committed) {
  if (!raw.ok()) return fetch_failed(r, key, raw.status(), committed);
  MessageCommit c;
  Status s = build_commit(r, key, *raw, c);
  if (!s.ok()) {
    if (s.scope() != ErrorScope::kMessage) return s;
    note_message_error(r, key, s);
    r.left_for_retry = true;
    return Status::Ok();
  }
  return commit_and_count(r, c, key, *raw, committed);
}

bool stop_requested(const Run& r) {
  return r.options.stop_requested && r.options.stop_requested();
}

Status stopped() {
  return Status(ErrorKind::kCancelled,
                "stopped by the service (shutdown or reload) between messages",
                ErrorScope::kMailbox);
}

Status process_batch(Run& r, const std::vector<std::string>& batch) {
  std::vector<std::string> committed;
  bool stopping = false;
  Status fs = r.mailbox.fetch(batch, [&](const std::string& key, Result<std::string> raw) {
    // No new message once a stop is asked for; the ones handed over before are committed.
    // The rest of the batch is let through unread (not broken off), so that the connection
    // is in step for the post-actions below.
    if (stopping || stop_requested(r)) {
      stopping = true;
      return Status::Ok();
    }
    Status s = ingest_one(r, key, std::move(raw), committed);
    ++r.done;
    if (r.options.progress) r.options.progress(r.done, r.total);
    return s;
  });
  // The server catches up with what was committed before the pass ends, as after any batch.
  if (stopping && fs.ok()) {
    Status applied = apply_post_actions(r, committed);
    return applied.ok() ? stopped() : applied;
  }
  if (!fs.ok()) return fs;
  return apply_post_actions(r, committed);
}

// The listed keys the ledger does not have yet, each once. A connector that lists a key
// twice (a server bug) would otherwise fetch the message twice in one pass; the second copy
// is dropped with a warning naming the key (the ledger would record only one anyway).
Result<std::vector<std::string>> fresh_keys(Run& r, const std::vector<std::string>& keys) {
  std::vector<std::string> fresh;
  std::unordered_set<std::string> seen;
  for (const auto& key : keys) {
    if (!seen.insert(key).second) {
      spdlog::warn("mailbox {}: the server listed message {} more than once; it is taken once",
                   r.mcfg.name, key);
      continue;
    }
    auto known = r.store.find_ledger(r.mcfg.name, key);
    if (!known.ok()) return known.status();
    if (!*known) fresh.push_back(key);
  }
  return fresh;
}

Status run_pass(Run& r, const std::string& cursor) {
  // Messages the ledger left on the server on purpose (subject too long, malformed,
  // unreadable, too large) are listed again on every poll; look past them so they can never
  // crowd out new mail.
  auto left = r.store.count_left_on_server(r.mcfg.name);
  if (!left.ok()) return left.status();
  const size_t limit = r.mcfg.max_per_poll;
  auto pending = r.mailbox.list_pending(limit + static_cast<size_t>(*left), cursor);
  if (!pending.ok()) return pending.status();
  r.signed_in = true;
  // Post-actions an interrupted run committed but did not apply come first: the server must
  // catch up with the ledger before anything new is taken.
  auto undone = r.store.pending_post_actions(r.mcfg.name);
  if (!undone.ok()) return undone.status();
  std::vector<std::string> undone_keys;
  for (const auto& e : *undone) undone_keys.push_back(e.key);
  MB_RETURN_IF_ERROR(apply_post_actions(r, undone_keys));

  auto fresh = fresh_keys(r, pending->keys);
  if (!fresh.ok()) return fresh.status();
  const bool truncated = fresh->size() > limit;
  if (truncated) fresh->resize(limit);
  r.total = fresh->size();
  const size_t step = std::max<size_t>(1, r.options.fetch_batch);
  for (size_t i = 0; i < fresh->size(); i += step) {
    auto first = fresh->begin() + static_cast<std::ptrdiff_t>(i);
    std::vector<std::string> batch(first, first + static_cast<std::ptrdiff_t>(
                                                      std::min(step, fresh->size() - i)));
    if (stop_requested(r)) return stopped();
    MB_RETURN_IF_ERROR(process_batch(r, batch));
  }
  // Advancing the connector's state past a key that is not in the ledger would lose it.
  // A listing cut short by the batch limit must not move the cursor past what was not taken.
  if (!r.left_for_retry && !truncated) r.next_cursor = pending->next_state;
  r.stats.more = pending->more || truncated;
  return Status::Ok();
}

// Time left until the mailbox's throttled_until, if that lies ahead.
std::optional<std::chrono::seconds> throttle_left(const MailboxState& st, Clock::time_point now) {
  if (st.throttled_until.empty()) return std::nullopt;
  auto until = parse_utc(st.throttled_until);
  if (!until || *until <= now) return std::nullopt;
  return std::chrono::ceil<std::chrono::seconds>(*until - now);
}

}  // namespace

Result<SyncStats> sync_mailbox(Mailbox& mailbox, const MailboxConfig& mcfg, const Config& config,
                               Store& store, const SyncOptions& options) {
  log_context::MailboxScope log_scope(mcfg.name);
  auto loaded = store.get_mailbox_state(mcfg.name);
  if (!loaded.ok()) return loaded.status();
  // A mailbox that keeps failing to sign in is not contacted (SPEC §3: no lock-out by
  // retry storms), whoever asks for the pass.
  PassPlan plan = before_pass(*loaded, config.monitor, options.monitor.clock());
  if (plan.kind == PassPlan::Kind::kPaused) {
    return Status(ErrorKind::kAuth, plan.message, ErrorScope::kMailbox);
  }
  auto wait = throttle_left(*loaded, options.monitor.clock());
  if (wait && !options.ignore_throttle) {
    return Status(ErrorKind::kThrottled,
                  "the server asked not to be contacted until " + loaded->throttled_until +
                      "; not contacted (name the mailbox to sync it now)",
                  ErrorScope::kMailbox)
        .with_retry_after(*wait);
  }
  Run r{mailbox, mcfg, config, store, options, {}, {}, false, 0, 0, false, std::nullopt};
  Status s = run_pass(r, loaded->sync_state);
  // The caller reports the returned error; at info level the log still tells the story.
  if (!s.ok()) spdlog::info("mailbox {}: pass stopped: {}", mcfg.name, s.to_string());
  // Woken by the service: not the server's failure. Nothing is recorded (no error, nothing
  // for the monitor, no error metric, the cursor unmoved); the next start takes the work up
  // again.
  if (s.kind() == ErrorKind::kCancelled) return s;
  if (!s.ok()) metrics::errors(mcfg.name, to_string(s.kind())).inc();

  // Re-read and written in one transaction with the monitor's decision, so that a
  // concurrent pass's count or alert ticket is never overwritten.
  const std::string finished = format_utc(options.monitor.clock());
  auto written = store.update_mailbox_state(mcfg.name, [&](MailboxState& state) {
    state.last_run = finished;
    if (s.ok()) state.last_success = finished;
    state.imported = r.stats.imported;
    state.skipped = r.stats.skipped;
    // Server text: stored scrubbed (the Redactor's scrub in the CLI), as the alert is.
    state.last_error = options.monitor.clean(s.ok() ? r.last_message_error : s.to_string());
    if (r.next_cursor) state.sync_state = *r.next_cursor;
    // The server's own word on when to come back; any other outcome ends the wait.
    state.throttled_until.clear();
    if (s.kind() == ErrorKind::kThrottled && s.retry_after()) {
      state.throttled_until = format_utc(options.monitor.clock() + *s.retry_after());
    }
    return after_pass(store, mcfg, config, state, PassOutcome{r.signed_in, s}, options.monitor);
  });
  if (!s.ok()) return s;
  if (!written.ok()) return written.status();
  return r.stats;
}

}  // namespace mb
