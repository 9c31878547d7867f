// File: tests/unit/core/store_test.cpp — core/store: migrations, the atomic ingest commit,
// duplicates, tickets/notes/attachments, routing look-ups and mailbox state.
#include "core/hash.h"
#include "core/store.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <utility>

#include "core/internal/migrations.h"
#include "tests/status_matchers.h"

namespace mb {
namespace {
using ::mb::testing::IsOk;
using ::mb::testing::StatusIs;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

const int kLatestSchema = static_cast<int>(internal::store_migrations().size());

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("mb_store_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    path_ = (dir_ / "mb.db").string();
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::unique_ptr<Store> open_store() {
    auto s = Store::open(path_);
    EXPECT_THAT(s, IsOk());
    return s.ok() ? std::move(*s) : nullptr;
  }

  // Counts rows with a second, independent connection: what another process would see.
  int64_t count(const std::string& table) {
    sqlite3* db = nullptr;
    sqlite3_open_v2(path_.c_str(), &db, SQLITE_OPEN_READONLY, nullptr);
    sqlite3_stmt* st = nullptr;
    std::string sql = "SELECT count(*) FROM " + table;
    sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr);
    int64_t n = -1;
    if (sqlite3_step(st) == SQLITE_ROW) n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return n;
  }

  std::string pragma(Store& /*keeps the file open*/, const std::string& name) {
    sqlite3* db = nullptr;
    sqlite3_open_v2(path_.c_str(), &db, SQLITE_OPEN_READONLY, nullptr);
    sqlite3_stmt* st = nullptr;
    std::string sql = "PRAGMA " + name;
    sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr);
    std::string v;
    if (sqlite3_step(st) == SQLITE_ROW) {
      v = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
  }

  static MessageCommit new_ticket_commit(const std::string& key, const std::string& subject) {
    MessageCommit c;
    c.mailbox = "support";
    c.key = key;
    c.sha256 = sha256_hex("raw of " + key);
    c.post_action = "mark-read";
    c.new_ticket.project = "IT";
    c.new_ticket.subject = subject;
    c.new_ticket.requester = "alice@example.com";
    c.new_ticket.requester_name = "Alice";
    c.new_ticket.mailbox = "support";
    c.note.author = "alice@example.com";
    c.note.text = "printer on fire";
    c.note.html = "<p>printer on <b>fire</b></p>";
    c.note.message_id = "m-" + key + "@example.com";
    c.note.dropped_attachments = {"setup.exe"};
    StoredAttachment a;
    a.filename = "photo.png";
    a.content_type = "image/png";
    a.content_id = "img1";
    a.inline_part = true;
    a.data = std::string("\x89PNG\0\x01", 6);
    c.attachments.push_back(a);
    Note system;
    system.kind = "system";
    system.author = "system";
    system.text = "Email Received. Attachments not stored: setup.exe";
    c.extra_notes.push_back(system);
    return c;
  }

  std::filesystem::path dir_;
  std::string path_;
};

TEST_F(StoreTest, FreshFileIsMigratedAndReopenKeepsData) {
  {
    auto store = open_store();
    ASSERT_NE(store, nullptr);
    EXPECT_EQ(store->schema_version(), kLatestSchema);
    EXPECT_EQ(pragma(*store, "journal_mode"), "wal");
    auto r = store->commit_message(new_ticket_commit("1:1", "hello"), "raw bytes");
    ASSERT_THAT(r, IsOk());
  }
  auto again = open_store();
  ASSERT_NE(again, nullptr);
  EXPECT_EQ(again->schema_version(), kLatestSchema);
  auto tickets = again->list_tickets();
  ASSERT_THAT(tickets, IsOk());
  ASSERT_EQ(tickets->size(), 1u);
  EXPECT_EQ((*tickets)[0].subject, "hello");
  EXPECT_EQ((*tickets)[0].note_count, 2);
}

TEST_F(StoreTest, FindTicketGivesTheTicketWithoutItsNotes) {
  auto store = open_store();
  ASSERT_NE(store, nullptr);
  auto r = store->commit_message(new_ticket_commit("1:1", "hello"), "raw bytes");
  ASSERT_THAT(r, IsOk());
  auto found = store->find_ticket(r->ticket_id);
  ASSERT_THAT(found, IsOk());
  ASSERT_TRUE(found->has_value());
  EXPECT_EQ((*found)->subject, "hello");
  EXPECT_TRUE((*found)->notes.empty());
  auto full = store->get_ticket(r->ticket_id);
  ASSERT_THAT(full, IsOk());
  ASSERT_FALSE((*full)->notes.empty());
  EXPECT_EQ((*found)->note_count, static_cast<int64_t>((*full)->notes.size()));
  auto absent = store->find_ticket(r->ticket_id + 100);
  ASSERT_THAT(absent, IsOk());
  EXPECT_FALSE(absent->has_value());
}

TEST_F(StoreTest, MakeDurableWritesOneBarrierCommitEachCall) {
  auto store = open_store();
  ASSERT_NE(store, nullptr);
  ASSERT_THAT(store->commit_message(new_ticket_commit("1:1", "hello"), "raw"), IsOk());
  ASSERT_THAT(store->make_durable(), IsOk());
  ASSERT_THAT(store->make_durable(), IsOk());
  // The barrier is a real write each time (an empty commit would not sync the WAL).
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open_v2(path_.c_str(), &db, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db, "SELECT barrier FROM durability WHERE id = 1", -1, &st,
                               nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
  EXPECT_EQ(sqlite3_column_int64(st, 0), 2);
  sqlite3_finalize(st);
  sqlite3_close(db);
}

TEST_F(StoreTest, TokenStateRoundTripsAndReplacesByKey) {
  auto store = open_store();
  ASSERT_NE(store, nullptr);
  auto empty = store->token_states();
  ASSERT_THAT(empty, IsOk());
  EXPECT_TRUE(empty->empty());
  TokenStateRecord a;
  a.key = "ann@example.com|desk|mail.access offline_access";
  a.app = "desk";
  a.user = "ann@example.com";
  a.scope = "mail.access offline_access";
  a.expires_at = "2026-11-23T10:00:00Z";
  a.last_refresh = "2026-11-23T09:00:00Z";
  a.refreshes = 3;
  a.failures = 1;
  TokenStateRecord b;
  b.key = "|contoso|https://outlook.office365.com/.default";
  b.app = "contoso";
  b.scope = "https://outlook.office365.com/.default";
  b.last_error = "invalid_client";
  b.failures = 2;
  ASSERT_THAT(store->save_token_state(b), IsOk());
  ASSERT_THAT(store->save_token_state(a), IsOk());
  auto all = store->token_states();
  ASSERT_THAT(all, IsOk());
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].key, b.key);  // sorted by app
  EXPECT_EQ((*all)[0].last_error, "invalid_client");
  EXPECT_EQ((*all)[0].user, "");
  const TokenStateRecord& got = (*all)[1];
  EXPECT_EQ(got.app, "desk");
  EXPECT_EQ(got.user, "ann@example.com");
  EXPECT_EQ(got.scope, a.scope);
  EXPECT_EQ(got.expires_at, a.expires_at);
  EXPECT_EQ(got.last_refresh, a.last_refresh);
  EXPECT_EQ(got.refreshes, 3);
  EXPECT_EQ(got.failures, 1);
  EXPECT_FALSE(got.updated_at.empty());

  a.refreshes = 4;
  a.last_error = "network: timed out";
  ASSERT_THAT(store->save_token_state(a), IsOk());
  auto one = store->get_token_state(a.key);
  ASSERT_THAT(one, IsOk());
  ASSERT_TRUE(one->has_value());
  EXPECT_EQ((*one)->refreshes, 4);
  EXPECT_EQ((*one)->last_error, "network: timed out");
  auto none = store->get_token_state("nobody|x|y");
  ASSERT_THAT(none, IsOk());
  EXPECT_FALSE(none->has_value());
  auto again = store->token_states();
  ASSERT_THAT(again, IsOk());
  EXPECT_EQ(again->size(), 2u);
}

// Opening a second connection in the same process must not drop the first one's locks
// (closing any descriptor of the file drops every POSIX lock of the process): else another
// process closing the database deletes the -wal file under it, and its later commits are
// lost. Another process here: a child that opens and closes the store.
TEST_F(StoreTest, AnotherConnectionInTheProcessKeepsTheFirstOnesCommitsVisible) {
  auto first = open_store();
  ASSERT_NE(first, nullptr);
  ASSERT_THAT(first->commit_message(new_ticket_commit("1:1", "one"), "raw"), IsOk());
  auto second = open_store();  // the service's workers open theirs while others are open
  ASSERT_NE(second, nullptr);
  auto in_child = [&](const std::function<int()>& body) {
    pid_t pid = ::fork();
    if (pid == 0) ::_exit(body());
    int status = 0;
    ::waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  };
  // Another process opens the store and closes it: the last connection, if it thinks so.
  ASSERT_EQ(in_child([&] {
    sqlite3* db = nullptr;
    sqlite3_open(path_.c_str(), &db);
    sqlite3_exec(db, "SELECT count(*) FROM tickets", nullptr, nullptr, nullptr);
    return sqlite3_close(db) == SQLITE_OK ? 0 : 1;
  }), 0);
  ASSERT_THAT(first->commit_message(new_ticket_commit("1:2", "two"), "raw"), IsOk());
  // Another process sees both tickets.
  EXPECT_EQ(in_child([&] {
    sqlite3* db = nullptr;
    sqlite3_open_v2(path_.c_str(), &db, SQLITE_OPEN_READONLY, nullptr);
    sqlite3_stmt* st = nullptr;
    sqlite3_prepare_v2(db, "SELECT count(*) FROM tickets", -1, &st, nullptr);
    int n = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : -1;
    sqlite3_finalize(st);
    sqlite3_close(db);
    return n;
  }), 2);
}

TEST_F(StoreTest, VersionOneFileGainsTheTokenStateTable) {
  {
    auto store = open_store();
    ASSERT_NE(store, nullptr);
    ASSERT_THAT(store->commit_message(new_ticket_commit("1:1", "kept"), "raw"), IsOk());
  }
  // Make the file what a v1 build left behind.
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "ALTER TABLE mailbox_state DROP COLUMN throttled_until; "
                         "ALTER TABLE mailbox_state DROP COLUMN last_success; "
                         "DROP TABLE token_state; DROP TABLE outbox; DROP TABLE outbox_control; "
                         "DROP TABLE service_activity; "
                         "PRAGMA user_version = 1", nullptr, nullptr,
                         nullptr), SQLITE_OK);
  sqlite3_close(db);
  auto store = open_store();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->schema_version(), kLatestSchema);
  TokenStateRecord r;
  r.key = "k";
  r.app = "a";
  EXPECT_THAT(store->save_token_state(r), IsOk());
  auto tickets = store->list_tickets();
  ASSERT_THAT(tickets, IsOk());
  ASSERT_EQ(tickets->size(), 1u);
  EXPECT_EQ((*tickets)[0].subject, "kept");
}

TEST_F(StoreTest, RefusesAFileFromANewerSchema) {
  {
    auto store = open_store();
    ASSERT_NE(store, nullptr);
  }
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "PRAGMA user_version = 99", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
  EXPECT_THAT(Store::open(path_), StatusIs(ErrorKind::kInternal, HasSubstr("newer")));
}

TEST_F(StoreTest, OpenInAMissingDirectoryIsAConfigurationErrorNamingThePath) {
  const std::string nowhere = (dir_ / "missing-dir" / "x.db").string();
  EXPECT_THAT(Store::open(nowhere),
              StatusIs(ErrorKind::kConfig, HasSubstr("cannot open store " + nowhere)));
}

TEST_F(StoreTest, CommitWritesTicketNoteAttachmentsRawAndLedger) {
  auto store = open_store();
  ASSERT_NE(store, nullptr);
  auto r = store->commit_message(new_ticket_commit("1:7", "printer"), "RAW MESSAGE");
  ASSERT_THAT(r, IsOk());
  EXPECT_FALSE(r->duplicate);
  auto t = store->get_ticket(r->ticket_id);
  ASSERT_THAT(t, IsOk());
  ASSERT_TRUE(t->has_value());
  const Ticket& ticket = **t;
  EXPECT_EQ(ticket.subject, "printer");
  EXPECT_EQ(ticket.requester, "alice@example.com");
  EXPECT_EQ(ticket.status, "open");
  ASSERT_EQ(ticket.notes.size(), 2u);
  const Note& n = ticket.notes[0];
  EXPECT_EQ(n.id, r->note_id);
  EXPECT_EQ(n.kind, "email-in");
  EXPECT_EQ(n.html, "<p>printer on <b>fire</b></p>");
  EXPECT_THAT(n.dropped_attachments, ElementsAre("setup.exe"));
  ASSERT_EQ(n.attachments.size(), 1u);
  EXPECT_EQ(n.attachments[0].content_id, "img1");
  EXPECT_TRUE(n.attachments[0].inline_part);
  EXPECT_EQ(n.attachments[0].size, 6);
  EXPECT_EQ(n.attachments[0].sha256, sha256_hex(std::string("\x89PNG\0\x01", 6)));
  EXPECT_EQ(ticket.notes[1].kind, "system");
  auto data = store->get_attachment_data(n.attachments[0].id);
  ASSERT_THAT(data, IsOk());
  EXPECT_EQ(*data, std::string("\x89PNG\0\x01", 6));
  auto raw = store->get_note_raw(n.id);
  ASSERT_THAT(raw, IsOk());
  EXPECT_EQ(*raw, "RAW MESSAGE");

  auto e = store->find_ledger("support", "1:7");
  ASSERT_THAT(e, IsOk());
  ASSERT_TRUE(e->has_value());
  EXPECT_EQ((*e)->outcome, "ticket");
  EXPECT_EQ((*e)->ticket_id, r->ticket_id);
  EXPECT_EQ((*e)->note_id, r->note_id);
  EXPECT_EQ((*e)->post_action, "mark-read");
  EXPECT_FALSE((*e)->post_action_done);
}

TEST_F(StoreTest, SameKeyIsADuplicateAndWritesNothing) {
  auto store = open_store();
  ASSERT_NE(store, nullptr);
  auto first = store->commit_message(new_ticket_commit("1:1", "a"), "raw");
  ASSERT_THAT(first, IsOk());
  auto again = store->commit_message(new_ticket_commit("1:1", "a second time"), "raw");
  ASSERT_THAT(again, IsOk());
  EXPECT_TRUE(again->duplicate);
  EXPECT_EQ(again->ticket_id, first->ticket_id);
  EXPECT_EQ(count("tickets"), 1);
  EXPECT_EQ(count("notes"), 2);
  EXPECT_EQ(count("ledger"), 1);
  // The same key in another mailbox is another message.
  MessageCommit other = new_ticket_commit("1:1", "other mailbox");
  other.mailbox = "sales";
  auto third = store->commit_message(other, "raw");
  ASSERT_THAT(third, IsOk());
  EXPECT_FALSE(third->duplicate);
  EXPECT_EQ(count("tickets"), 2);
}

TEST_F(StoreTest, SameBytesUnderAnotherKeyIsRecordedAsDuplicateOfTheOriginal) {
  auto store = open_store();
  ASSERT_NE(store, nullptr);
  auto first = store->commit_message(new_ticket_commit("1:1", "a"), "raw");
  ASSERT_THAT(first, IsOk());
  MessageCommit c = new_ticket_commit("2:1", "a");  // UIDVALIDITY changed
  c.sha256 = sha256_hex("raw of 1:1");
  c.post_action = "delete";
  auto dup = store->commit_message(c, "raw");
  ASSERT_THAT(dup, IsOk());
  EXPECT_TRUE(dup->duplicate);
  EXPECT_EQ(dup->ticket_id, first->ticket_id);
  EXPECT_EQ(count("tickets"), 1);
  auto e = store->find_ledger("support", "2:1");
  ASSERT_THAT(e, IsOk());
  ASSERT_TRUE(e->has_value());
  EXPECT_EQ((*e)->outcome, "skipped");
  EXPECT_EQ((*e)->reason, "duplicate");
  EXPECT_EQ((*e)->ticket_id, first->ticket_id);
  EXPECT_EQ((*e)->post_action, "mark-read");  // the original's
  auto by_sha = store->find_ledger_by_sha("support", c.sha256);
  ASSERT_THAT(by_sha, IsOk());
  ASSERT_TRUE(by_sha->has_value());
  EXPECT_EQ((*by_sha)->key, "1:1");
}

// The store holds every message and the outbox: it and its side files are private even
// under umask 022, and a path that cannot be a database file is a configuration error.
TEST_F(StoreTest, TheStoreAndItsSideFilesAreCreated0600) {
  const mode_t old = ::umask(022);
  auto store = Store::open(path_);
  ::umask(old);
  ASSERT_THAT(store, IsOk());
  ASSERT_THAT((*store)->commit_message(new_ticket_commit("1:1", "x"), "raw"), IsOk());
  // While the connection is open SQLite keeps its write-ahead log and its index.
  for (const char* suffix : {"", "-wal", "-shm"}) {
    SCOPED_TRACE(suffix);
    struct stat st {};
    ASSERT_EQ(::stat((path_ + suffix).c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
  }
}

TEST_F(StoreTest, APathThatIsADirectoryIsAConfigurationError) {
  EXPECT_THAT(Store::open(dir_.string()),
              StatusIs(ErrorKind::kConfig, HasSubstr(dir_.string() + " is a directory")));
}

TEST_F(StoreTest, AFailureAtAnyStepOfACommitLeavesNothing) {
  for (const char* step : {"ticket", "note", "attachment", "extra-note", "ledger", "commit"}) {
    SCOPED_TRACE(step);
    auto store = open_store();
    ASSERT_NE(store, nullptr);
    std::string failing = step;
    store->set_fault_hook_for_testing([failing](std::string_view s) {
      return s == failing ? Status(ErrorKind::kInternal, "disk I/O error (injected)") : Status();
    });
    auto r = store->commit_message(new_ticket_commit("1:1", "x"), "raw");
    EXPECT_THAT(r, StatusIs(ErrorKind::kInternal, HasSubstr("injected")));
    EXPECT_EQ(count("tickets"), 0);
    EXPECT_EQ(count("notes"), 0);
    EXPECT_EQ(count("attachments"), 0);
    EXPECT_EQ(count("ledger"), 0);
    store->set_fault_hook_for_testing(nullptr);
    auto ok = store->commit_message(new_ticket_commit("1:1", "x"), "raw");
    ASSERT_THAT(ok, IsOk());
    EXPECT_EQ(ok->ticket_id, 1);  // a rolled-back ticket does not use up its id
    store.reset();
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
}

TEST_F(StoreTest, NoteOnAMissingTicketFailsAndLeavesNothing) {
  auto store = open_store();
  ASSERT_NE(store, nullptr);
  MessageCommit c = new_ticket_commit("1:1", "x");
  c.ticket_id = 42;
  EXPECT_THAT(store->commit_message(c, "raw"),
              StatusIs(ErrorKind::kInternal, HasSubstr("FOREIGN KEY")));
  EXPECT_EQ(count("notes"), 0);
  EXPECT_EQ(count("ledger"), 0);
}

TEST_F(StoreTest, NoteOnATicketAndSkipsAreLedgered) {
  auto store = open_store();
  ASSERT_NE(store, nullptr);
  auto t = store->commit_message(new_ticket_commit("1:1", "x"), "raw");
  ASSERT_THAT(t, IsOk());
  MessageCommit note = new_ticket_commit("1:2", "ignored");
  note.ticket_id = t->ticket_id;
  auto n = store->commit_message(note, "raw 2");
  ASSERT_THAT(n, IsOk());
  EXPECT_EQ(n->ticket_id, t->ticket_id);
  MessageCommit skip;
  skip.mailbox = "support";
  skip.key = "1:3";
  skip.skip = true;
  skip.skip_reason = "subject-too-long";
  skip.post_action = "leave";
  ASSERT_THAT(store->commit_message(skip, "raw 3"), IsOk());
  auto ledger = store->list_ledger("support");
  ASSERT_THAT(ledger, IsOk());
  ASSERT_EQ(ledger->size(), 3u);
  EXPECT_EQ((*ledger)[1].outcome, "note");
  EXPECT_EQ((*ledger)[2].outcome, "skipped");
  EXPECT_EQ((*ledger)[2].reason, "subject-too-long");
  EXPECT_EQ((*ledger)[2].ticket_id, 0);
  EXPECT_EQ(count("tickets"), 1);

  auto pending = store->pending_post_actions("support");
  ASSERT_THAT(pending, IsOk());
  EXPECT_EQ(pending->size(), 3u);
  ASSERT_THAT(store->mark_post_action_done("support", "1:2"), IsOk());
  pending = store->pending_post_actions("support");
  ASSERT_THAT(pending, IsOk());
  ASSERT_EQ(pending->size(), 2u);
  EXPECT_EQ((*pending)[0].key, "1:1");
  EXPECT_EQ((*pending)[1].key, "1:3");
}

TEST_F(StoreTest, SentMessageIdFindsItsTicketOnlyForEmailOut) {
  auto store = open_store();
  ASSERT_NE(store, nullptr);
  Ticket t;
  t.project = "IT";
  t.subject = "alert";
  t.source = "System - Email Monitor";
  t.requester = "system";
  Note first;
  first.kind = "system";
  first.author = "system";
  first.message_id = "in@example.com";
  auto id = store->create_ticket(t, first);
  ASSERT_THAT(id, IsOk());
  Note out;
  out.kind = "email-out";
  out.author = "tech@example.com";
  out.message_id = "sent-1@mailbridge";
  auto note_id = store->add_note(*id, out);
  ASSERT_THAT(note_id, IsOk());

  auto found = store->ticket_for_sent_message_id("sent-1@mailbridge");
  ASSERT_THAT(found, IsOk());
  EXPECT_EQ(*found, std::optional<int64_t>(*id));
  auto sent = store->find_sent_message("sent-1@mailbridge");
  ASSERT_THAT(sent, IsOk());
  ASSERT_TRUE(sent->has_value());
  EXPECT_EQ((*sent)->note_id, *note_id);
  auto not_out = store->ticket_for_sent_message_id("in@example.com");
  ASSERT_THAT(not_out, IsOk());
  EXPECT_FALSE(not_out->has_value());
  EXPECT_THAT(store->add_note(999, out), StatusIs(ErrorKind::kNotFound, HasSubstr("999")));
}

TEST_F(StoreTest, MailboxStateRoundTripsAndDefaultsWhenAbsent) {
  auto store = open_store();
  ASSERT_NE(store, nullptr);
  auto absent = store->get_mailbox_state("support");
  ASSERT_THAT(absent, IsOk());
  EXPECT_EQ(absent->name, "support");
  EXPECT_EQ(to_string(absent->state), "ok");
  EXPECT_TRUE(absent->last_run.empty());

  MailboxState m;
  m.name = "support";
  m.state = MailboxStatus::kError;
  m.sync_state = "1700000000:42";
  m.last_run = "2026-01-01T00:00:00Z";
  m.imported = 7;
  m.skipped = {{"subject-too-long", 1}, {"auto-reply", 2}};
  m.last_error = "network: connection reset";
  m.consecutive_auth_failures = 2;
  m.throttled_until = "2026-01-01T00:05:00Z";
  ASSERT_THAT(store->put_mailbox_state(m), IsOk());
  m.imported = 8;  // replaces, not appends
  ASSERT_THAT(store->put_mailbox_state(m), IsOk());
  auto got = store->get_mailbox_state("support");
  ASSERT_THAT(got, IsOk());
  EXPECT_EQ(to_string(got->state), "error");
  EXPECT_EQ(got->sync_state, "1700000000:42");
  EXPECT_EQ(got->imported, 8);
  EXPECT_EQ(got->skipped, m.skipped);
  EXPECT_EQ(got->consecutive_auth_failures, 2);
  EXPECT_EQ(got->throttled_until, "2026-01-01T00:05:00Z");
  auto all = store->list_mailbox_states();
  ASSERT_THAT(all, IsOk());
  EXPECT_EQ(all->size(), 1u);
}

// The texts are the stored values and what `status` and `outbox list` show (SPEC §7).
TEST(StoreStatesTest, MailboxStatusAndOutboxStateRoundTripThroughTheirTexts) {
  const std::pair<MailboxStatus, const char*> statuses[] = {
      {MailboxStatus::kOk, "ok"},
      {MailboxStatus::kAuthFailed, "auth-failed"},
      {MailboxStatus::kError, "error"},
      {MailboxStatus::kPaused, "paused"}};
  for (const auto& [value, text] : statuses) {
    EXPECT_EQ(to_string(value), text);
    EXPECT_EQ(parse_mailbox_status(text), value) << text;
  }
  const std::pair<OutboxState, const char*> states[] = {{OutboxState::kQueued, "queued"},
                                                        {OutboxState::kSending, "sending"},
                                                        {OutboxState::kSent, "sent"},
                                                        {OutboxState::kParked, "parked"}};
  for (const auto& [value, text] : states) {
    EXPECT_EQ(to_string(value), text);
    EXPECT_EQ(parse_outbox_state(text), value) << text;
  }
  for (const char* other : {"", "OK", "Auth-Failed", "ok ", "unknown", "queued\n", "SENT"}) {
    EXPECT_EQ(parse_mailbox_status(other), std::nullopt) << other;
    EXPECT_EQ(parse_outbox_state(other), std::nullopt) << other;
  }
}

// A state that no version of mailbridge writes is a loud error naming it and its row, never
// taken for "ok" (a mailbox that would then be polled) or any outbox state.
TEST_F(StoreTest, AnUnknownStoredStateIsAnInternalErrorNamingItAndTheRow) {
  auto store = open_store();
  ASSERT_NE(store, nullptr);
  MailboxState m;
  m.name = "support";
  ASSERT_THAT(store->put_mailbox_state(m), IsOk());
  OutboxRow row;
  row.sender = "smtp";
  row.recipients = {"a@example.com"};
  auto queued = store->enqueue_outbox(row, nullptr, {});
  ASSERT_THAT(queued, IsOk());
  EXPECT_EQ(queued->state, OutboxState::kQueued);

  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
  // The outbox table's CHECK would refuse it: a file edited by hand, or by a newer version.
  ASSERT_EQ(sqlite3_exec(db, "UPDATE mailbox_state SET state = 'snoozed'; "
                         "PRAGMA ignore_check_constraints = ON; "
                         "UPDATE outbox SET state = 'lost'",
                         nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);

  const auto names_mailbox = AllOf(HasSubstr("\"snoozed\""), HasSubstr("\"support\""));
  EXPECT_THAT(store->get_mailbox_state("support"),
              StatusIs(ErrorKind::kInternal, names_mailbox));
  EXPECT_THAT(store->list_mailbox_states(), StatusIs(ErrorKind::kInternal, names_mailbox));
  EXPECT_THAT(store->update_mailbox_state("support", [](MailboxState&) { return Status::Ok(); }),
              StatusIs(ErrorKind::kInternal, names_mailbox));

  const std::string id = "outbox message " + std::to_string(queued->id);
  const auto names_row = AllOf(HasSubstr("\"lost\""), HasSubstr(id));
  EXPECT_THAT(store->list_outbox(), StatusIs(ErrorKind::kInternal, names_row));
  EXPECT_THAT(store->get_outbox(queued->id), StatusIs(ErrorKind::kInternal, names_row));
}

TEST_F(StoreTest, TwoConnectionsSeeEachOthersCommits) {
  auto a = open_store();
  auto b = open_store();
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  ASSERT_THAT(a->commit_message(new_ticket_commit("1:1", "x"), "raw"), IsOk());
  auto dup = b->commit_message(new_ticket_commit("1:1", "x"), "raw");
  ASSERT_THAT(dup, IsOk());
  EXPECT_TRUE(dup->duplicate);
}

TEST(Sha256Test, MatchesKnownVector) {
  EXPECT_EQ(sha256_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

}  // namespace
}  // namespace mb
