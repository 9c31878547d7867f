// File: core/ingest.h — incoming mail → tickets: filters, router, and the exactly-once sync
// of one mailbox.
//
// decide() is pure: given a parsed message and what the store knows, it says whether the
// message is skipped (and why), becomes a new ticket, or a note on an existing one.
// sync_mailbox() is the straight line of ARCHITECTURE.md for one mailbox:
//   list_pending → skip keys already in the ledger → fetch → parse → decide →
//   one store transaction (ticket or note + ledger row) → post-action → mark it done.
// A post-action is only ever requested after its commit; post-actions left undone by an
// interrupted run are finished first on the next run.
// decide() and the rules are in ingest.cpp; sync_mailbox() in internal/sync.cpp.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/config.h"
#include "core/mailbox.h"
#include "core/message.h"
#include "core/monitor.h"
#include "core/status.h"
#include "core/store.h"

namespace mb {

// Skip reasons (the keys of MailboxState::skipped and `status --json`'s "skipped").
inline constexpr const char* kSkipSubjectTooLong = "subject-too-long";
inline constexpr const char* kSkipSenderFilter = "sender-filter";
inline constexpr const char* kSkipSubjectFilter = "subject-filter";
inline constexpr const char* kSkipAutoReply = "auto-reply";
// [filters] accept_from: the sender (From, else Reply-To) is not in the [[user]] directory
// with a role the policy accepts. A filter: after_filtered applies. Also in the [tracking]
// mailbox.
inline constexpr const char* kSkipNotAccepted = "not-accepted";
// The parser could not make sense of the bytes (no header block, unparsable headers) or
// the message passes a parser bound (header block, header fields, MIME parts, nesting:
// core/message.cpp). Left on the server, never fetched again.
inline constexpr const char* kSkipMalformed = "malformed";
// Over [ingest] max_message_bytes: reported by the connector (kTooLarge, from the server's
// size or during the download) or seen by the ingest. Left on the server, never fetched
// again.
inline constexpr const char* kSkipTooLarge = "too-large";
// The connector could not read the message's bytes (kInvalidInput, scope kMessage: broken
// framing, a line over every bound). Left on the server, never fetched again.
inline constexpr const char* kSkipUnreadable = "unreadable";
inline constexpr const char* kSkipDuplicate = "duplicate";
// In the [tracking] mailbox with delete_untracked: neither a reply to tracked mail (rule 1)
// nor a valid cookie (rule 2); deleted after the ledger commit.
inline constexpr const char* kSkipUntracked = "untracked";

struct Decision {
  enum class Kind { kNewTicket, kNote, kSkip };
  Kind kind = Kind::kNewTicket;
  std::string reason;           // for kSkip
  bool filtered = false;        // kSkip by a filter (post-action after_filtered applies)
  int64_t ticket_id = 0;        // for kNote
  std::string matched_by;       // "in-reply-to" | "cookie" | "module-tag" | "hash-id"
  std::string matched_message_id;  // for "in-reply-to": the Message-ID mailbridge sent
};

// Looks things up in the store for decide(); a seam so decide() stays pure. A lookup that
// fails (a busy or broken store) returns its error, which decide() returns in turn: an
// error is never taken for "no such ticket", which would file a reply as a new ticket.
struct RouteContext {
  std::function<Result<bool>(int64_t ticket_id)> ticket_exists;
  // Ticket id of a tracked email with this Message-ID (SPEC §4), if any.
  std::function<Result<std::optional<int64_t>>(const std::string& message_id)>
      ticket_for_message_id;
  // SPEC §2 rule 2, the tracking-cookie hook: the ticket named by a valid (HMAC-checked)
  // tracking cookie in the subject or body. Empty means the rule is skipped.
  std::function<Result<std::optional<int64_t>>(const ParsedMessage& msg)>
      ticket_for_tracking_cookie;
};

// The decision for one message, or the error of a RouteContext lookup (the message must
// then be left for a later pass, never routed).
Result<Decision> decide(const ParsedMessage& msg, const Config& config,
                        const MailboxConfig& mailbox, const RouteContext& ctx);

// The individual rules, exposed for tests.
std::optional<std::string> sender_filter_match(const ParsedMessage& msg, const FilterConfig& f);
std::optional<std::string> subject_filter_match(const ParsedMessage& msg, const FilterConfig& f);
bool is_auto_reply(const ParsedMessage& msg);
// The sender decide() and build_message_commit() use: From's address, else Reply-To.
std::string sender_address(const ParsedMessage& msg);
// [filters] accept_from: everyone accepts all mail; requestors, technicians and
// requestors-and-technicians accept a sender (compared case-insensitively) who is a [[user]]
// with role requestor, technician, or either. An empty sender is accepted only by everyone.
bool sender_accepted(const std::string& sender, const Config& config);
// "[Ticket - 1042]" in subject or body with a module name of `modules`; "#1042" in subject.
std::optional<int64_t> find_module_tag(const std::string& text,
                                       const std::vector<std::string>& modules);
std::optional<int64_t> find_hash_id(const std::string& subject);
// True when the file's last extension is on `extensions` (case-insensitive; trailing dots
// and spaces, which Windows ignores, are ignored too).
bool is_restricted(const std::string& filename, const std::vector<std::string>& extensions);
// Unicode code points in UTF-8 `text` (what max_subject_length counts).
size_t utf8_length(std::string_view text);
// The pre-configured filters of SPEC §2 (used when FilterConfig::use_defaults).
const std::vector<std::string>& default_sender_filters();
const std::vector<std::string>& default_subject_filters();
// The technician (Config::users, role technician) whose address is `email`, if any.
const UserConfig* find_technician(const Config& config, const std::string& email);

// What sync_mailbox() commits for a parsed message and its decision: a new ticket or a note
// (author: the sending technician, else the sender), attachments with restricted ones
// dropped and named in a "system" note starting "Email Received", or a skip with the
// post-action it gets (filtered: after_filtered or after; other skips: leave). mailbox, key
// and sha256 are left for the caller; note.in_reply_to too.
MessageCommit build_message_commit(ParsedMessage msg, const Decision& decision,
                                   const MailboxConfig& mailbox, const Config& config);

struct SyncStats {
  int64_t imported = 0;                    // tickets + notes created this run
  int64_t tickets = 0;
  int64_t notes = 0;
  std::map<std::string, int64_t> skipped;  // by reason
  int64_t errors = 0;                      // messages left on the server after an error
  bool more = false;                       // the batch limit left messages for the next poll
};

struct SyncOptions {
  // Progress callback: (done, total) after each message; may be empty.
  std::function<void(size_t, size_t)> progress;
  // Messages fetched per round trip; post-actions are applied after each batch's commits.
  size_t fetch_batch = 25;
  // The auth-failure monitor's clock and text scrubber (core/monitor.h).
  MonitorHooks monitor;
  // The resolved [tracking] secret: with it, valid tracking cookies route mail (SPEC §2
  // rule 2) and replies in the tracking mailbox are forwarded through the outbox. Empty:
  // cookies are not looked for.
  std::string tracking_secret;
  // Contact the mailbox even while its throttled_until lies ahead (the administrator named
  // it on the command line). Otherwise such a pass returns kThrottled without contacting it.
  bool ignore_throttle = false;
  // The service's stop or reload (core/runner.h): checked before each message is started.
  // Once it says true the message in hand is committed and the post-actions of what was
  // committed are applied (or left recorded for the next run), no new message is started,
  // and the pass returns kCancelled. May be empty.
  std::function<bool()> stop_requested;
};

// One pass over one mailbox. Returns the stats, or the error that stopped the pass
// (kAuth, kNetwork, kTls, …) after recording it in the mailbox state. A kThrottled error
// with a retry_after (Graph 429/503 Retry-After, POP3 [IN-USE]) ends the pass and sets
// MailboxState::throttled_until = now + retry_after; until then a pass is kThrottled at once
// without contacting the mailbox and writing nothing, unless SyncOptions::ignore_throttle. Messages committed
// before the error stay committed. A mailbox the monitor has paused (auth-failed, no probe
// due) is not contacted: kAuth with the monitor's message, and nothing is written. A pass
// that ends with kCancelled (SyncOptions::stop_requested, or a blocking read woken by the
// thread's Cancel, core/cancel.h) writes no mailbox state: no error, nothing for the monitor,
// and the connector's cursor stays where it was (the ledger holds what was committed).
Result<SyncStats> sync_mailbox(Mailbox& mailbox, const MailboxConfig& mcfg, const Config& config,
                               Store& store, const SyncOptions& options = {});

}  // namespace mb
