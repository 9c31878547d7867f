// File: core/store.h — the SQLite store: tickets, notes, attachments, the ingest ledger and
// per-mailbox state.
//
// One file, WAL mode, versioned migrations (PRAGMA user_version), foreign keys on. The
// ledger is what makes ingest exactly once: a message's ticket or note and its ledger row
// are written in one transaction (commit_message), so after any crash either both exist or
// neither does. A Store object is used by one thread at a time; several processes may open
// the same file (busy timeout 10 s).
//
// The implementation is split by concern behind this one class: core/store.cpp (opening,
// migrations), store_ledger.cpp, store_commit.cpp, store_tickets.cpp,
// store_mailbox_state.cpp, store_tokens.cpp, store_outbox.cpp, store_backup.cpp and
// store_service.cpp; what they share is in core/internal/store_util.h.
//
//   auto store = mb::Store::open("mailbridge.db");
//   auto done = store->find_ledger("support", "1700000000:42");
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

struct sqlite3;

namespace mb {

struct StoredAttachment {
  int64_t id = 0;
  std::string filename;
  std::string content_type;
  std::string content_id;
  bool inline_part = false;
  int64_t size = 0;
  std::string sha256;  // lower-case hex
  std::string data;    // filled only by get_attachment_data
};

struct Note {
  int64_t id = 0;
  int64_t ticket_id = 0;
  std::string kind = "email-in";  // email-in | email-out | system
  std::string author;             // email address (technician or requestor) or "system"
  std::string author_name;
  std::string text;
  std::string html;
  std::string message_id;
  std::optional<int64_t> in_reply_to;  // the email-out note a reply answers
  std::string raw;                // the raw message (filled only by get_note_raw)
  std::vector<StoredAttachment> attachments;
  std::vector<std::string> dropped_attachments;
  std::string created_at;         // ISO 8601 UTC
};

struct Ticket {
  int64_t id = 0;
  std::string project;
  std::string subject;
  std::string status = "open";
  std::string source = "email";   // email | System - Email Monitor
  std::string requester;          // email address
  std::string requester_name;
  std::string mailbox;            // the mailbox it came from, if any
  std::string created_at;
  int64_t note_count = 0;
  std::vector<Note> notes;        // filled by get_ticket
};

// One row per message a mailbox has seen: what became of it.
struct LedgerEntry {
  std::string mailbox;
  std::string key;
  std::string sha256;             // of the raw bytes
  std::string outcome;            // "ticket" | "note" | "skipped"
  std::string reason;             // skip reason, e.g. "subject-too-long"
  int64_t ticket_id = 0;
  int64_t note_id = 0;
  bool post_action_done = false;
  std::string post_action;        // the action decided at commit ("mark-read", "leave", …)
};

// What a mailbox's last pass left it as (SPEC §7 `status`). Stored, and shown, as its
// to_string(): "ok" | "auth-failed" | "error" | "paused".
enum class MailboxStatus {
  kOk,          // the last pass worked (or none ran yet)
  kAuthFailed,  // too many sign-in failures in a row: not polled, alert ticket open
  kError,       // the last pass failed otherwise
  kPaused,      // a disabled mailbox, as `status` shows it (mailbridge never stores it)
};

// One row of the durable outbox moves queued → sending → sent, or → parked (an operator's
// `outbox retry` queues it again). Stored, and shown, as its to_string().
enum class OutboxState {
  kQueued,   // "queued": waiting for next_attempt_at
  kSending,  // "sending": claimed by one process (claimed_by)
  kSent,     // "sent"
  kParked,   // "parked": given up on; needs an operator
};

// The text of each value, as stored and shown, and back; parse gives nullopt for any other
// text (the store turns that into a kInternal error naming the value and the row).
std::string to_string(MailboxStatus status);
std::optional<MailboxStatus> parse_mailbox_status(std::string_view text);
std::string to_string(OutboxState state);
std::optional<OutboxState> parse_outbox_state(std::string_view text);

struct MailboxState {
  std::string name;
  MailboxStatus state = MailboxStatus::kOk;
  std::string sync_state;         // connector's opaque Pending::next_state
  std::string last_run;           // ISO 8601 UTC, empty if never
  int64_t imported = 0;           // in the last run
  std::map<std::string, int64_t> skipped;  // by reason, in the last run
  std::string last_error;
  int64_t consecutive_auth_failures = 0;
  int64_t alert_ticket_id = 0;
  // ISO 8601 UTC until which the server asked not to be contacted (Graph 429/503
  // Retry-After, POP3 [IN-USE]); empty when not throttled. Shown by `status`.
  std::string throttled_until;
  // ISO 8601 UTC of the end of the last pass that finished without an error (store v6);
  // empty if never. Exported as mailbridge_last_success_timestamp_seconds.
  std::string last_success;
};

// The last known state of one OAuth token (one TokenKey of auth/token_store.h), as the sync
// runs left it, for `mailbridge auth status` in another process. Never a token or secret.
// (A plain struct, so that the store does not depend on auth/.)
struct TokenStateRecord {
  std::string key;                // TokenKey::to_string(): "user|app|scope"
  std::string app;
  std::string user;               // empty for app-only tokens
  std::string scope;
  std::string expires_at;         // ISO 8601 UTC of the access token's expiry; empty: unknown
  std::string last_refresh;       // last successful token request; empty: never
  std::string last_error;         // of the last request; empty after a success
  int64_t refreshes = 0;          // successful token requests, over all runs
  int64_t failures = 0;           // failed token requests, over all runs
  std::string updated_at;         // set by save_token_state
};

// One message of the durable outbox (store v4, v5; core/outbox.h drives it). Times are ISO 8601
// UTC. raw is filled only by the calls that say so (claim_outbox, get_outbox).
struct OutboxRow {
  int64_t id = 0;
  std::string kind = "tracked";   // tracked | forward | plain
  std::string sender;             // the [[sender]] it goes out through
  int64_t ticket_id = 0;          // 0: none
  // tracked: its email-out note; forward: the email-in reply note it forwards. 0: none.
  int64_t note_id = 0;
  std::string user;               // the technician it was sent for (replies go to them)
  std::string env_from;           // envelope sender
  std::vector<std::string> recipients;  // every envelope recipient
  std::vector<std::string> pending;     // not yet accepted nor refused for good
  std::string to;                 // the To/Cc addresses, for display
  std::string subject;
  std::string raw;
  std::string message_id;         // without angle brackets
  OutboxState state = OutboxState::kQueued;
  int64_t attempts = 0;
  std::string next_attempt_at;
  std::string last_error;         // never a secret
  std::string server_id;
  bool queued_only = false;       // accepted but not yet delivered (Graph 202)
  std::string recipient_results = "[]";  // JSON: [{address, accepted, permanent, reply}]
  std::string claimed_by;         // "pid@host" of the process sending it (state sending)
  std::string claimed_at;
  std::string source_key;         // unique when set: what queued it (idempotent forwards)
  std::string created_at;
  std::string sent_at;
  // Store v5. When this attempt handed the message's end to the server (SMTP: the "." of
  // DATA written): from then on the server may have it whatever becomes of us. Cleared by
  // each claim. A `sending` row with it set is "in doubt" after a crash ([outbox] in_doubt).
  std::string handed_over_at;
  // Recorded as sent without the server's answer (in_doubt = "sent"): the message's end
  // reached the server, whose "250" was never read.
  bool unconfirmed = false;
};

// What one mailbox's worker of the running service is doing (store v6), as `status` shows
// it. Times are ISO 8601 UTC; activity is MailboxActivity's word (core/runner.h).
struct ServiceActivityRecord {
  std::string mailbox;
  std::string activity;           // starting | polling | idle | waiting | backoff | …
  std::string next_run;           // "" when none is due
  std::string last_error;         // of the last pass; never a secret
  std::string since;              // when this activity began
  int64_t pid = 0;                // the service that wrote it
};

// What ingest wants written for one message, all in one transaction.
struct MessageCommit {
  std::string mailbox;
  std::string key;
  std::string sha256;
  std::string post_action;
  // Exactly one of: a new ticket (ticket_id == 0 and !skip), a note on ticket_id, or a skip.
  bool skip = false;
  std::string skip_reason;
  int64_t ticket_id = 0;          // > 0: add the note to this ticket
  Ticket new_ticket;              // used when ticket_id == 0 and !skip
  Note note;                      // the note (the first note of a new ticket)
  std::vector<StoredAttachment> attachments;  // with data
  // Written after `note` on the same ticket, same transaction (e.g. the "Email Received"
  // system note naming dropped attachments).
  std::vector<Note> extra_notes;
  // Queued in the outbox in the same transaction (the forward of a tracked reply); a row
  // whose note_id is 0 gets the id of `note`.
  std::vector<OutboxRow> outbox;
};

// An email-out note (tracked mail, SPEC §4) found by its Message-ID.
struct SentMessage {
  int64_t ticket_id = 0;
  int64_t note_id = 0;
};

struct CommitResult {
  int64_t ticket_id = 0;
  int64_t note_id = 0;
  bool duplicate = false;         // the ledger already had this key or this sha256
};

// Store::backup_to (core/store_backup.cpp).
struct BackupOptions {
  // Pages copied per step of sqlite3_backup_step: the source is read-locked only during one
  // step. In WAL mode readers never block writers, but a long read holds back checkpoints.
  int pages_per_step = 256;
  // Test hook, called after each step with the pages left and the total.
  std::function<void(int remaining, int total)> on_step;
};

struct BackupResult {
  int64_t pages = 0;
  int64_t bytes = 0;
};

class Store {
 public:
  // Opens (creating, mode 0600, with its -wal and -shm files alike) the database at `path`.
  // A path that is a directory, or in a directory that does not exist, is kConfig.
  static Result<std::unique_ptr<Store>> open(const std::string& path);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  int schema_version() const;
  // The database file's absolute path ("" for an in-memory store).
  std::string path() const;

  // Ledger
  Result<std::optional<LedgerEntry>> find_ledger(const std::string& mailbox,
                                                 const std::string& key);
  // A message with the same raw bytes already recorded for this mailbox under another key
  // (UIDVALIDITY reset, delta resync).
  Result<std::optional<LedgerEntry>> find_ledger_by_sha(const std::string& mailbox,
                                                        const std::string& sha256);
  // Commits ticket/note/attachments/raw + ledger row atomically. If the ledger already holds
  // (mailbox,key) nothing is written and duplicate is set.
  Result<CommitResult> commit_message(const MessageCommit& commit, const std::string& raw);
  // Makes every commit so far durable against power loss (one WAL fsync). Commits are
  // crash-safe without it; call it before an action that is only safe once they are on disk
  // (deleting or moving the committed messages on the server).
  Status make_durable();
  Status mark_post_action_done(const std::string& mailbox, const std::string& key);
  // Ledger rows of `mailbox` whose post-action has not been applied yet, oldest first.
  Result<std::vector<LedgerEntry>> pending_post_actions(const std::string& mailbox);
  // Every ledger row of `mailbox`, ordered by key (for tests and diagnostics).
  // How many messages of `mailbox` the ledger has deliberately left on the server
  // (post-action "leave"): a listing must look past them to reach new mail.
  Result<int64_t> count_left_on_server(const std::string& mailbox);
  Result<std::vector<LedgerEntry>> list_ledger(const std::string& mailbox);

  // Routing (SPEC §2 rule 1): the ticket of the email-out note whose Message-ID (without
  // angle brackets) is `message_id`, if mailbridge sent one.
  Result<std::optional<int64_t>> ticket_for_sent_message_id(const std::string& message_id);
  Result<std::optional<SentMessage>> find_sent_message(const std::string& message_id);

  // Tickets and notes
  Result<bool> ticket_exists(int64_t id);
  Result<std::optional<Ticket>> get_ticket(int64_t id);  // with notes and attachments
  // The ticket without its notes: cheap however many notes it has (note_count is set).
  Result<std::optional<Ticket>> find_ticket(int64_t id);
  Result<std::vector<Ticket>> list_tickets();             // without notes
  Result<std::string> get_note_raw(int64_t note_id);
  Result<std::string> get_attachment_data(int64_t attachment_id);
  // Creates a ticket with a first note outside any ingest (alerts); returns the ticket id.
  Result<int64_t> create_ticket(const Ticket& ticket, const Note& first_note);
  Result<int64_t> add_note(int64_t ticket_id, const Note& note);

  // Mailbox state. A stored state that is not one of MailboxStatus's texts is kInternal
  // (naming it and the mailbox), never taken for "ok".
  Result<MailboxState> get_mailbox_state(const std::string& name);  // defaults if absent
  Result<std::vector<MailboxState>> list_mailbox_states();
  Status put_mailbox_state(const MailboxState& state);
  // Reads the mailbox's state, lets `change` modify it and writes it back, all in one write
  // transaction (BEGIN IMMEDIATE), so that two processes never lose each other's changes.
  // Tickets and notes that `change` creates through this Store (create_ticket, add_note)
  // join that transaction: when `change` or the write fails, none of it is kept. Returns
  // the state as written.
  using StateChange = std::function<Status(MailboxState& state)>;
  Result<MailboxState> update_mailbox_state(const std::string& name, const StateChange& change);

  // Token state (auth status). save_token_state() replaces the row of record.key and sets
  // updated_at to now; token_states() lists every row sorted by app, user and scope.
  Status save_token_state(const TokenStateRecord& record);
  Result<std::optional<TokenStateRecord>> get_token_state(const std::string& key);
  Result<std::vector<TokenStateRecord>> token_states();

  // Service activity (store v6), written by `mailbridge run`, read by `status`.
  // put_service_activities() replaces the rows of the mailboxes given, in one transaction;
  // delete_service_activity("") deletes every row.
  Status put_service_activities(const std::vector<ServiceActivityRecord>& records);
  Status delete_service_activity(const std::string& mailbox);
  Result<std::vector<ServiceActivityRecord>> service_activities();  // by mailbox

  // Outbox (store v4). enqueue_outbox writes `note` (when given: the email-out note of a
  // tracked email, on row.ticket_id) and then the row, in one transaction; `finish` runs in
  // between with the note's id (0 without a note) to complete the row (cookie, raw MIME).
  using OutboxFinish = std::function<Status(int64_t note_id, OutboxRow& row)>;
  Result<OutboxRow> enqueue_outbox(OutboxRow row, const Note* note, const OutboxFinish& finish);
  // Every row, newest first, without raw. Every call that reads rows fails with kInternal
  // (naming the value and the row) on a state that is not one of OutboxState's texts.
  Result<std::vector<OutboxRow>> list_outbox();
  Result<std::optional<OutboxRow>> get_outbox(int64_t id);  // with raw
  // Claims up to `limit` queued rows due at `now` (oldest due first) for `owner`: state
  // sending, attempts + 1, claimed_by/claimed_at set — one write transaction, so that two
  // processes never claim the same row. Returned with raw.
  Result<std::vector<OutboxRow>> claim_outbox(const std::string& now, const std::string& owner,
                                              size_t limit);
  // Writes the mutable fields of `row` (state, pending, attempts, next_attempt_at,
  // last_error, server_id, queued_only, recipient_results, claim, sent_at, handed_over_at,
  // unconfirmed) if the row is
  // still in `expected_state` and, when `expected_owner` is not empty, claimed by it.
  // false: it was not (someone else moved it).
  Result<bool> update_outbox(const OutboxRow& row, OutboxState expected_state,
                             const std::string& expected_owner = "");
  // Records, while `owner` still holds the `sending` claim, that this attempt handed the
  // message's end to the server at `at`, with the recipients' answers known then. One
  // UPDATE by primary key, run between the write of SMTP's "." (and the hand-over log's
  // pwrite, core/handover_log.h) and the read of the answer (docs/reliability.md).
  Result<bool> mark_outbox_handed_over(int64_t id, const std::string& owner,
                                       const std::string& at,
                                       const std::string& recipient_results);
  // Rows in state sending (left by a process that may have died mid-send).
  Result<std::vector<OutboxRow>> sending_outbox();
  // The tracked row whose email-out note is `note_id`.
  Result<std::optional<OutboxRow>> outbox_for_note(int64_t note_id);
  Result<bool> outbox_paused();
  // The earliest next_attempt_at of a queued row (one look at the outbox_due index), or
  // nullopt when nothing is queued: the service's outbox worker asks it every second.
  Result<std::optional<std::string>> next_outbox_due();
  Status set_outbox_paused(bool paused);
  // How many rows are in each state (every state listed, 0 included) and the created_at of
  // the oldest row not sent yet (queued or sending; empty when none): for the metrics.
  struct OutboxSummary {
    std::map<std::string, int64_t> by_state;
    std::string oldest_unsent;
  };
  Result<OutboxSummary> outbox_summary();
  // The email-out note `note_id` with its ticket and the ticket's project, if both exist.
  struct EmailOut {
    int64_t ticket_id = 0;
    int64_t note_id = 0;
    std::string project;
  };
  Result<std::optional<EmailOut>> find_email_out(int64_t note_id);

  // Backup. Writes a consistent copy of the whole store to `path` with SQLite's online backup
  // API while this and other connections and processes go on reading and writing: into a
  // temporary file beside `path` (mode 0600), in steps (BackupOptions), then fsync'ed and
  // renamed over `path`, and the directory fsync'ed. The copy is a single file (rollback
  // journal; Store::open turns it back to WAL). Another process's commit between two steps
  // restarts the copy; after a few restarts the rest is copied in one step, so that a busy
  // store cannot starve it. kInvalidInput when `path` is the live store or one of its -wal,
  // -shm or -journal files, a directory, or beside a -wal or -shm file (that journal would be
  // applied to the copy when opened).
  Result<BackupResult> backup_to(const std::string& path, const BackupOptions& options = {});
  // The same for the store file at `store_path`, opened as it is: neither created nor migrated,
  // so that a copy taken before an upgrade is of the old schema. kConfig when it does not exist.
  static Result<BackupResult> backup_file(const std::string& store_path, const std::string& path,
                                          const BackupOptions& options = {});

  // Test hook: called at each step inside commit_message ("ticket", "note", "attachment",
  // "extra-note", "ledger", "commit") and update_mailbox_state ("mailbox-state", after
  // `change`, before the write); a non-OK Status aborts the transaction there, as a crash
  // or a full disk would. Also called before the lookups that routing and the outbox rely
  // on ("lookup:ticket", "lookup:sent-message", "lookup:email-out",
  // "lookup:outbox-for-note", "lookup:outbox-paused"): a non-OK Status is then that
  // lookup's error, as a busy or failing store's would be. Empty by default.
  using FaultHook = std::function<Status(std::string_view step)>;
  void set_fault_hook_for_testing(FaultHook hook) { fault_hook_ = std::move(hook); }

 private:
  explicit Store(sqlite3* db);
  Status migrate();
  Status fault(std::string_view step) const;
  Result<int64_t> insert_ticket(const Ticket& t);
  Result<int64_t> insert_note(int64_t ticket_id, const Note& n, const std::string* raw);
  Status insert_attachment(int64_t note_id, const StoredAttachment& a);
  Status insert_ledger(const LedgerEntry& e);
  Result<std::vector<LedgerEntry>> query_ledger(const char* sql, const std::string& mailbox,
                                                const std::string* arg);
  Result<CommitResult> commit_content(const MessageCommit& c, const std::string& raw);
  Result<std::vector<Note>> load_notes(int64_t ticket_id);
  Result<int64_t> insert_outbox(const OutboxRow& row);
  Result<std::vector<OutboxRow>> query_outbox(const std::string& where, bool with_raw,
                                              const std::vector<std::string>& args);
  sqlite3* db_;
  FaultHook fault_hook_;
};

}  // namespace mb
