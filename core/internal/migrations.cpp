// File: core/internal/migrations.cpp — the store's migration scripts, oldest first.
#include "core/internal/migrations.h"

namespace mb::internal {
namespace {

// v1: tickets, notes, attachments, the ingest ledger and per-mailbox state.
// AUTOINCREMENT so that a ticket id is never reused after a delete: ids appear in subjects
// ("[Ticket - 12]") that may come back years later.
constexpr const char* kV1 = R"sql(
CREATE TABLE tickets (
  id             INTEGER PRIMARY KEY AUTOINCREMENT,
  project        TEXT NOT NULL,
  subject        TEXT NOT NULL,
  status         TEXT NOT NULL DEFAULT 'open',
  source         TEXT NOT NULL,
  requester      TEXT NOT NULL,
  requester_name TEXT NOT NULL DEFAULT '',
  mailbox        TEXT NOT NULL DEFAULT '',
  created_at     TEXT NOT NULL
);
CREATE TABLE notes (
  id                  INTEGER PRIMARY KEY AUTOINCREMENT,
  ticket_id           INTEGER NOT NULL REFERENCES tickets(id) ON DELETE CASCADE,
  kind                TEXT NOT NULL CHECK (kind IN ('email-in', 'email-out', 'system')),
  author              TEXT NOT NULL,
  author_name         TEXT NOT NULL DEFAULT '',
  text                TEXT NOT NULL DEFAULT '',
  html                TEXT NOT NULL DEFAULT '',
  message_id          TEXT NOT NULL DEFAULT '',
  in_reply_to         INTEGER REFERENCES notes(id),
  raw                 BLOB,
  dropped_attachments TEXT NOT NULL DEFAULT '[]',
  created_at          TEXT NOT NULL
);
CREATE INDEX notes_by_ticket ON notes(ticket_id);
CREATE INDEX notes_by_message_id ON notes(message_id) WHERE message_id <> '';
CREATE TABLE attachments (
  id           INTEGER PRIMARY KEY AUTOINCREMENT,
  note_id      INTEGER NOT NULL REFERENCES notes(id) ON DELETE CASCADE,
  filename     TEXT NOT NULL,
  content_type TEXT NOT NULL DEFAULT '',
  content_id   TEXT NOT NULL DEFAULT '',
  inline_part  INTEGER NOT NULL DEFAULT 0,
  size         INTEGER NOT NULL,
  sha256       TEXT NOT NULL,
  data         BLOB NOT NULL
);
CREATE INDEX attachments_by_note ON attachments(note_id);
CREATE TABLE ledger (
  mailbox          TEXT NOT NULL,
  key              TEXT NOT NULL,
  sha256           TEXT NOT NULL DEFAULT '',
  outcome          TEXT NOT NULL CHECK (outcome IN ('ticket', 'note', 'skipped')),
  reason           TEXT NOT NULL DEFAULT '',
  ticket_id        INTEGER REFERENCES tickets(id),
  note_id          INTEGER REFERENCES notes(id),
  post_action      TEXT NOT NULL DEFAULT 'leave',
  post_action_done INTEGER NOT NULL DEFAULT 0,
  created_at       TEXT NOT NULL,
  PRIMARY KEY (mailbox, key)
);
CREATE INDEX ledger_by_sha ON ledger(mailbox, sha256);
CREATE TABLE mailbox_state (
  name                      TEXT PRIMARY KEY,
  state                     TEXT NOT NULL DEFAULT 'ok',
  sync_state                TEXT NOT NULL DEFAULT '',
  last_run                  TEXT NOT NULL DEFAULT '',
  imported                  INTEGER NOT NULL DEFAULT 0,
  skipped                   TEXT NOT NULL DEFAULT '{}',
  last_error                TEXT NOT NULL DEFAULT '',
  consecutive_auth_failures INTEGER NOT NULL DEFAULT 0,
  alert_ticket_id           INTEGER NOT NULL DEFAULT 0
);
-- One row rewritten by Store::make_durable(): a commit that always writes a WAL frame, so
-- that its fsync also covers every earlier commit.
CREATE TABLE durability (
  id      INTEGER PRIMARY KEY CHECK (id = 1),
  barrier INTEGER NOT NULL
);
INSERT INTO durability (id, barrier) VALUES (1, 0);
)sql";

// v2: the state of each OAuth token as the last run left it, for `mailbridge auth status`
// (another process). Keyed by TokenKey::to_string(); the token itself is never stored here
// (refresh tokens live encrypted in the [auth] token_dir).
constexpr const char* kV2 = R"sql(
CREATE TABLE token_state (
  key          TEXT PRIMARY KEY,
  app          TEXT NOT NULL,
  user         TEXT NOT NULL DEFAULT '',
  scope        TEXT NOT NULL DEFAULT '',
  expires_at   TEXT NOT NULL DEFAULT '',
  last_refresh TEXT NOT NULL DEFAULT '',
  last_error   TEXT NOT NULL DEFAULT '',
  refreshes    INTEGER NOT NULL DEFAULT 0,
  failures     INTEGER NOT NULL DEFAULT 0,
  updated_at   TEXT NOT NULL
);
)sql";

// v3: when a server has asked us to wait (Graph's Retry-After), so that `status` can say
// "throttled until" and the next run does not knock before then.
constexpr const char* kV3 = R"sql(
ALTER TABLE mailbox_state ADD COLUMN throttled_until TEXT NOT NULL DEFAULT '';
)sql";

// v4: the durable outbox (core/outbox.h). raw holds the composed MIME so that a retry
// sends the very same bytes (same Message-ID); pending_recipients shrinks as recipients are
// accepted or refused for good. source_key makes queueing idempotent (a tracked reply's
// forward). outbox_control holds "pause sending", which must survive restarts.
constexpr const char* kV4 = R"sql(
CREATE TABLE outbox (
  id                 INTEGER PRIMARY KEY AUTOINCREMENT,
  kind               TEXT NOT NULL DEFAULT 'tracked'
                       CHECK (kind IN ('tracked', 'forward', 'plain')),
  sender             TEXT NOT NULL,
  ticket_id          INTEGER REFERENCES tickets(id) ON DELETE SET NULL,
  note_id            INTEGER REFERENCES notes(id) ON DELETE SET NULL,
  user               TEXT NOT NULL DEFAULT '',
  env_from           TEXT NOT NULL,
  recipients         TEXT NOT NULL DEFAULT '[]',
  pending_recipients TEXT NOT NULL DEFAULT '[]',
  to_display         TEXT NOT NULL DEFAULT '',
  subject            TEXT NOT NULL DEFAULT '',
  raw                BLOB NOT NULL,
  message_id         TEXT NOT NULL,
  state              TEXT NOT NULL DEFAULT 'queued'
                       CHECK (state IN ('queued', 'sending', 'sent', 'parked')),
  attempts           INTEGER NOT NULL DEFAULT 0,
  next_attempt_at    TEXT NOT NULL,
  last_error         TEXT NOT NULL DEFAULT '',
  server_id          TEXT NOT NULL DEFAULT '',
  queued_only        INTEGER NOT NULL DEFAULT 0,
  recipient_results  TEXT NOT NULL DEFAULT '[]',
  claimed_by         TEXT NOT NULL DEFAULT '',
  claimed_at         TEXT NOT NULL DEFAULT '',
  source_key         TEXT UNIQUE,
  created_at         TEXT NOT NULL,
  sent_at            TEXT NOT NULL DEFAULT ''
);
CREATE INDEX outbox_due ON outbox(state, next_attempt_at);
CREATE INDEX outbox_by_note ON outbox(note_id);
CREATE TABLE outbox_control (
  id        INTEGER PRIMARY KEY CHECK (id = 1),
  paused    INTEGER NOT NULL DEFAULT 0,
  paused_at TEXT NOT NULL DEFAULT ''
);
INSERT INTO outbox_control (id, paused) VALUES (1, 0);
)sql";

// v5: the moment an outbox send handed the message's end to the server (SMTP: the "." of
// DATA), so that recovery after a crash can tell "the server never had it" (send again)
// from "the server may have it" ([outbox] in_doubt); and whether a row was recorded as
// sent without the server's answer.
constexpr const char* kV5 = R"sql(
ALTER TABLE outbox ADD COLUMN handed_over_at TEXT NOT NULL DEFAULT '';
ALTER TABLE outbox ADD COLUMN unconfirmed INTEGER NOT NULL DEFAULT 0;
)sql";

// v6: when each mailbox last finished a pass without an error (the metric
// mailbridge_last_success_timestamp_seconds; last_run alone forgets it after a failure).
constexpr const char* kV6 = R"sql(
ALTER TABLE mailbox_state ADD COLUMN last_success TEXT NOT NULL DEFAULT '';
)sql";

// v7: what each mailbox's worker of the running service (`mailbridge run`) is doing, for
// `status` in another process: one row per mailbox, rewritten when its activity changes
// (core/service_activity.h). pid names the service that wrote it; whether that service
// still runs is the lock file's to say (core/instance_lock.h), not this table's.
constexpr const char* kV7 = R"sql(
CREATE TABLE service_activity (
  mailbox    TEXT PRIMARY KEY,
  activity   TEXT NOT NULL,
  next_run   TEXT NOT NULL DEFAULT '',
  last_error TEXT NOT NULL DEFAULT '',
  since      TEXT NOT NULL DEFAULT '',
  pid        INTEGER NOT NULL DEFAULT 0
);
)sql";

constexpr const char* const kMigrations[] = {kV1, kV2, kV3, kV4, kV5, kV6, kV7};

}  // namespace

std::span<const char* const> store_migrations() { return kMigrations; }

}  // namespace mb::internal
