// File: tests/unit/core/outbox_test.cpp — core/outbox against a fake Sender and an injected
// clock: queueing tracked mail (note, Message-ID, cookie, From/Reply-To), sending, backoff
// times, parking, partial recipients, pause/resume across a restart, recovery of rows an
// interrupted process left `sending`, retry of parked mail, and secrets kept out of errors.
#include "core/outbox.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <deque>
#include <filesystem>
#include <map>
#include <string>

#include "core/ingest.h"
#include "core/message.h"
#include "core/monitor.h"
#include "core/tracking.h"
#include "core/utc.h"
#include "tests/status_matchers.h"
#include "tests/unit/core/fake_mailbox.h"

namespace mb {
namespace {
using ::mb::testing::IsOk;
using ::mb::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using Time = std::chrono::system_clock::time_point;
using std::chrono::seconds;

const char* kSecret = "tracking-secret-for-tests";

// Thrown by FakeSender to stand for the process dying in the middle of a send: nothing
// after that point runs, as after a SIGKILL; a new Outbox then plays the restarted process.
struct Crash {};

// What FakeSender does around the end of the message, as an SMTP server sees it.
enum class Fate {
  kAnswer,          // the end reaches the server, which answers (the scripted result)
  kCrashBeforeEnd,  // the process dies before the end is written: the server discards it
  kCrashAfterEnd,   // the end is written (the server keeps it), then the process dies
  kLoseAnswer,      // the end is written, then the connection drops before the answer
  kRefuseAtEnd,     // the end is written and the server refuses it (the scripted error)
};

// Answers each send() with the next scripted result (default: every recipient accepted).
// A successful result is handed over first (on_handed_over, `delivered` + 1), as SMTP's
// final "." is; scripted errors are refusals before the end and deliver nothing.
class FakeSender : public Sender {
 public:
  std::deque<Result<SendResult>> script;
  std::deque<Fate> fates;
  std::vector<OutgoingMail> sent;
  std::map<std::string, int> delivered;  // outbox id → copies the "server" kept
  int closed = 0;

  Result<SendResult> send(const OutgoingMail& mail) override {
    sent.push_back(mail);
    Fate fate = Fate::kAnswer;
    if (!fates.empty()) {
      fate = fates.front();
      fates.pop_front();
    }
    SendResult ok;
    for (const auto& a : mail.envelope.recipients) ok.recipients.push_back({a, true, false, "250 ok"});
    ok.server_id = "queued as " + std::to_string(sent.size());
    Result<SendResult> answer = ok;
    if (!script.empty()) {
      answer = std::move(script.front());
      script.pop_front();
    }
    if (fate == Fate::kCrashBeforeEnd) throw Crash{};
    if (fate == Fate::kAnswer && !answer.ok()) return answer;
    // The end is written: from here the server keeps the message, unless it refuses it.
    if (fate != Fate::kRefuseAtEnd) ++delivered[mail.id];
    if (mail.on_handed_over) mail.on_handed_over(answer.ok() ? *answer : ok);
    if (fate == Fate::kRefuseAtEnd) return answer;
    if (fate == Fate::kCrashAfterEnd) throw Crash{};
    if (fate == Fate::kLoseAnswer) {
      return Status(ErrorKind::kNetwork, "SMTP server relay: connection closed after the "
                    "message was sent; the server may or may not have kept it",
                    ErrorScope::kConnection);
    }
    return answer;
  }
  ConnectionReport test_connection() override { return {}; }
  void close() override { ++closed; }
};

class OutboxTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("mb_outbox_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    path_ = (dir_ / "mb.db").string();
    reopen();
    MailboxConfig support;
    support.name = "support";
    support.user = "support@contoso.example";
    config_.mailboxes = {support};
    SenderConfig out;
    out.name = "outgoing";
    out.user = "relay";
    config_.senders = {out};
    config_.tracking.mailbox = "support";
    config_.tracking.sender = "outgoing";
    config_.users = {{"ann@contoso.example", "Ann Tech", "technician"}};
    config_.outbox.retry_initial = seconds(60);
    config_.outbox.retry_max = seconds(3600);
    config_.outbox.max_attempts = 4;
    Ticket t;
    t.project = "IT";
    t.subject = "Printer on fire";
    t.requester = "bob@example.com";
    Note first;
    first.author = "bob@example.com";
    first.text = "help";
    auto id = store_->create_ticket(t, first);
    ASSERT_THAT(id, IsOk());
    ticket_ = *id;
  }
  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(dir_);
  }
  void reopen() {
    store_.reset();
    auto s = Store::open(path_);
    ASSERT_THAT(s, IsOk());
    store_ = std::move(*s);
  }

  OutboxOptions options(const std::string& owner = "test:1") {
    OutboxOptions o;
    o.now = [this] { return now_; };
    o.jitter = [this] { return jitter_; };
    o.owner = owner;
    o.owner_alive = [this](const std::string& owner) { return owner == alive_owner_; };
    return o;
  }
  Outbox outbox(const std::string& owner = "test:1") {
    return Outbox(*store_, config_, kSecret, options(owner));
  }
  SenderFactory factory() {
    return [this](const std::string& name) -> Result<std::unique_ptr<Sender>> {
      if (name != "outgoing") return Status(ErrorKind::kConfig, "no sender " + name);
      return std::unique_ptr<Sender>(new ForwardingSender(sender_));
    };
  }
  TrackedMail mail(std::vector<Address> to = {{"Bob", "bob@example.com"}}) {
    TrackedMail m;
    m.ticket_id = ticket_;
    m.user = "ann@contoso.example";
    m.to = std::move(to);
    m.subject = "Your printer";
    m.text = "Is it fixed?";
    return m;
  }
  OutboxRow row(int64_t id) {
    auto r = store_->get_outbox(id);
    EXPECT_THAT(r, IsOk());
    return r.ok() && *r ? **r : OutboxRow{};
  }

  // Lets the test keep the FakeSender while the outbox owns (and destroys) its Sender.
  class ForwardingSender : public Sender {
   public:
    explicit ForwardingSender(FakeSender& s) : s_(s) {}
    Result<SendResult> send(const OutgoingMail& m) override { return s_.send(m); }
    ConnectionReport test_connection() override { return {}; }
    void close() override { s_.close(); }

   private:
    FakeSender& s_;
  };

  std::filesystem::path dir_;
  std::string path_;
  std::unique_ptr<Store> store_;
  Config config_;
  int64_t ticket_ = 0;
  FakeSender sender_;
  Time now_ = Time(seconds(1800000000));
  double jitter_ = 0.0;
  std::string alive_owner_ = "test:1";
};

TEST_F(OutboxTest, QueueingWritesTheEmailOutNoteAndASignedMessage) {
  auto ob = outbox();
  auto queued = ob.queue_tracked(mail());
  ASSERT_THAT(queued, IsOk());
  EXPECT_EQ(to_string(queued->state), "queued");
  EXPECT_EQ(queued->attempts, 0);
  EXPECT_EQ(queued->user, "ann@contoso.example");
  EXPECT_THAT(queued->recipients, ElementsAre("bob@example.com"));
  EXPECT_EQ(queued->env_from, "support@contoso.example");

  auto ticket = store_->get_ticket(ticket_);
  ASSERT_THAT(ticket, IsOk());
  ASSERT_EQ((*ticket)->notes.size(), 2u);
  const Note& note = (*ticket)->notes[1];
  EXPECT_EQ(note.kind, "email-out");
  EXPECT_EQ(note.author, "ann@contoso.example");
  EXPECT_EQ(note.message_id, queued->message_id);
  EXPECT_EQ(queued->note_id, note.id);
  auto found = store_->find_sent_message(queued->message_id);  // routing rule 1
  ASSERT_THAT(found, IsOk());
  ASSERT_TRUE(found->has_value());
  EXPECT_EQ((*found)->note_id, note.id);

  auto m = parse_message(queued->raw);
  ASSERT_THAT(m, IsOk());
  EXPECT_EQ(m->message_id, queued->message_id);
  EXPECT_EQ(m->reply_to, "support@contoso.example");
  EXPECT_EQ(m->from.email, "support@contoso.example");
  EXPECT_EQ(m->from.name, "Ann Tech via Help Desk");
  TrackingSigner signer(kSecret);
  TrackingCookie want{"IT", note.id, ticket_};
  EXPECT_EQ(signer.find_in(m->subject), want);
  EXPECT_EQ(signer.find_in(m->text), want);  // the footer the reply quotes
  EXPECT_EQ(signer.verify(m->header("X-Mailbridge-Tracking")), want);
  EXPECT_THAT(m->subject, HasSubstr("Your printer [#MB-"));
}

TEST_F(OutboxTest, QueueingRefusesBadInputAndWritesNothing) {
  auto ob = outbox();
  TrackedMail evil = mail();
  evil.subject = "hi\r\nBcc: everyone@example.com";
  EXPECT_THAT(ob.queue_tracked(evil), StatusIs(ErrorKind::kInvalidInput, HasSubstr("Subject")));
  TrackedMail unknown_ticket = mail();
  unknown_ticket.ticket_id = 999;
  EXPECT_THAT(ob.queue_tracked(unknown_ticket), StatusIs(ErrorKind::kNotFound, HasSubstr("999")));
  TrackedMail stranger = mail();
  stranger.user = "eve@example.com";
  EXPECT_THAT(ob.queue_tracked(stranger), StatusIs(ErrorKind::kInvalidInput, HasSubstr("[[user]]")));
  TrackedMail bad_sender = mail();
  bad_sender.sender = "nope";
  EXPECT_THAT(ob.queue_tracked(bad_sender), StatusIs(ErrorKind::kConfig, HasSubstr("nope")));
  Outbox no_secret(*store_, config_, "", options());
  EXPECT_THAT(no_secret.queue_tracked(mail()), StatusIs(ErrorKind::kConfig, HasSubstr("secret")));
  config_.tracking.from = "ceo@contoso.example";
  EXPECT_THAT(ob.queue_tracked(mail()), StatusIs(ErrorKind::kConfig, HasSubstr("[[mailbox]]")));

  auto rows = store_->list_outbox();
  ASSERT_THAT(rows, IsOk());
  EXPECT_THAT(*rows, IsEmpty());
  EXPECT_EQ((*store_->get_ticket(ticket_))->notes.size(), 1u);  // no stray email-out note
}

TEST_F(OutboxTest, FlushSendsTheQueuedBytesOnce) {
  auto ob = outbox();
  auto queued = ob.queue_tracked(mail({{"", "bob@example.com"}, {"", "carol@example.com"}}));
  ASSERT_THAT(queued, IsOk());
  auto stats = ob.flush(factory());
  ASSERT_THAT(stats, IsOk());
  EXPECT_EQ(stats->sent, 1);
  ASSERT_EQ(sender_.sent.size(), 1u);
  EXPECT_EQ(sender_.sent[0].raw, queued->raw);
  EXPECT_EQ(sender_.sent[0].envelope.from, "support@contoso.example");
  EXPECT_THAT(sender_.sent[0].envelope.recipients,
              ElementsAre("bob@example.com", "carol@example.com"));
  EXPECT_GE(sender_.closed, 1);
  OutboxRow r = row(queued->id);
  EXPECT_EQ(to_string(r.state), "sent");
  EXPECT_EQ(r.attempts, 1);
  EXPECT_EQ(r.sent_at, format_utc(now_));
  EXPECT_EQ(r.server_id, "queued as 1");
  EXPECT_EQ(r.last_error, "");
  // A second flush has nothing to do.
  ASSERT_THAT(ob.flush(factory()), IsOk());
  EXPECT_EQ(sender_.sent.size(), 1u);
}

TEST_F(OutboxTest, BackoffDoublesUpToTheCapWithEqualJitter) {
  auto ob = outbox();
  EXPECT_EQ(ob.backoff(1, 0.0), seconds(30));
  EXPECT_EQ(ob.backoff(1, 0.999), seconds(59));
  EXPECT_EQ(ob.backoff(2, 0.0), seconds(60));
  EXPECT_EQ(ob.backoff(3, 0.5), seconds(180));  // 240: 120 + 0.5·120
  EXPECT_EQ(ob.backoff(7, 0.0), seconds(1800)); // 3840 capped at 3600
  EXPECT_EQ(ob.backoff(40, 0.0), seconds(1800));
}

TEST_F(OutboxTest, TransientFailuresRetryOnScheduleThenPark) {
  auto ob = outbox();
  auto queued = ob.queue_tracked(mail());
  ASSERT_THAT(queued, IsOk());
  const Time start = now_;
  std::vector<std::string> due;
  for (int i = 0; i < 4; ++i) {
    sender_.script.push_back(Status(ErrorKind::kNetwork, "connection refused"));
    auto stats = ob.flush(factory());
    ASSERT_THAT(stats, IsOk());
    OutboxRow r = row(queued->id);
    EXPECT_EQ(r.attempts, i + 1);
    due.push_back(r.next_attempt_at);
    if (i < 3) {
      EXPECT_EQ(to_string(r.state), "queued");
      EXPECT_THAT(r.last_error, HasSubstr("connection refused"));
      // Not due before its time: a flush a second early sends nothing.
      now_ = *parse_utc(r.next_attempt_at) - seconds(1);
      ASSERT_THAT(ob.flush(factory()), IsOk());
      EXPECT_EQ(sender_.sent.size(), static_cast<size_t>(i + 1));
      now_ += seconds(1);
    } else {
      EXPECT_EQ(to_string(r.state), "parked");
      EXPECT_THAT(r.last_error, HasSubstr("gave up after 4 attempts"));
      EXPECT_EQ(stats->parked, 1);
    }
  }
  // jitter 0: 30 s, then 60 s, then 120 s after each failure.
  EXPECT_EQ(due[0], format_utc(start + seconds(30)));
  EXPECT_EQ(due[1], format_utc(start + seconds(30 + 60)));
  EXPECT_EQ(due[2], format_utc(start + seconds(30 + 60 + 120)));
  now_ += seconds(100000);
  ASSERT_THAT(ob.flush(factory()), IsOk());
  EXPECT_EQ(sender_.sent.size(), 4u);  // parked stays parked
}

TEST_F(OutboxTest, RetryAfterOfAThrottledServerIsHonoured) {
  auto ob = outbox();
  auto queued = ob.queue_tracked(mail());
  ASSERT_THAT(queued, IsOk());
  sender_.script.push_back(
      Status(ErrorKind::kThrottled, "421 try later").with_retry_after(seconds(600)));
  ASSERT_THAT(ob.flush(factory()), IsOk());
  EXPECT_EQ(row(queued->id).next_attempt_at, format_utc(now_ + seconds(600)));
}

TEST_F(OutboxTest, PermanentFailureParksAtOnceAndRetryRequeues) {
  auto ob = outbox();
  auto queued = ob.queue_tracked(mail());
  ASSERT_THAT(queued, IsOk());
  sender_.script.push_back(Status(ErrorKind::kRejected, "554 5.7.1 relay denied"));
  auto stats = ob.flush(factory());
  ASSERT_THAT(stats, IsOk());
  EXPECT_EQ(stats->parked, 1);
  OutboxRow r = row(queued->id);
  EXPECT_EQ(to_string(r.state), "parked");
  EXPECT_EQ(r.attempts, 1);
  EXPECT_THAT(r.last_error, HasSubstr("554 5.7.1 relay denied"));

  EXPECT_THAT(ob.retry(queued->id), IsOk());
  EXPECT_EQ(to_string(row(queued->id).state), "queued");
  EXPECT_EQ(row(queued->id).attempts, 0);
  ASSERT_THAT(ob.flush(factory()), IsOk());
  EXPECT_EQ(to_string(row(queued->id).state), "sent");
  EXPECT_THAT(ob.retry(queued->id), StatusIs(ErrorKind::kRejected, HasSubstr("sent")));
  EXPECT_THAT(ob.retry(4242), StatusIs(ErrorKind::kNotFound, HasSubstr("4242")));
}

TEST_F(OutboxTest, PartialRecipientsAreRetriedAloneAndRecorded) {
  auto ob = outbox();
  auto queued = ob.queue_tracked(
      mail({{"", "ok@example.com"}, {"", "later@example.com"}, {"", "gone@example.com"}}));
  ASSERT_THAT(queued, IsOk());
  SendResult partial;
  partial.recipients = {{"ok@example.com", true, false, "250 ok"},
                        {"later@example.com", false, false, "452 4.2.2 mailbox full"},
                        {"gone@example.com", false, true, "550 5.1.1 no such user"}};
  sender_.script.push_back(partial);
  ASSERT_THAT(ob.flush(factory()), IsOk());
  OutboxRow r = row(queued->id);
  EXPECT_EQ(to_string(r.state), "queued");
  EXPECT_THAT(r.pending, ElementsAre("later@example.com"));
  EXPECT_THAT(r.last_error, HasSubstr("550 5.1.1"));
  EXPECT_THAT(r.recipient_results, HasSubstr("452 4.2.2 mailbox full"));

  now_ = *parse_utc(r.next_attempt_at);
  ASSERT_THAT(ob.flush(factory()), IsOk());
  ASSERT_EQ(sender_.sent.size(), 2u);
  EXPECT_THAT(sender_.sent[1].envelope.recipients, ElementsAre("later@example.com"));
  r = row(queued->id);
  EXPECT_EQ(to_string(r.state), "sent");
  EXPECT_THAT(r.last_error, HasSubstr("gone@example.com: 550 5.1.1 no such user"));
  EXPECT_THAT(r.recipient_results, Not(HasSubstr("mailbox full")));  // later word wins
}

TEST_F(OutboxTest, PauseSurvivesARestartAndQueueingContinues) {
  {
    auto ob = outbox();
    ASSERT_THAT(ob.queue_tracked(mail()), IsOk());
    EXPECT_THAT(ob.pause(), IsOk());
  }
  reopen();
  auto ob = outbox();
  EXPECT_TRUE(*ob.paused());
  ASSERT_THAT(ob.queue_tracked(mail()), IsOk());  // queueing goes on while paused
  auto stats = ob.flush(factory());
  ASSERT_THAT(stats, IsOk());
  EXPECT_TRUE(stats->paused);
  EXPECT_THAT(sender_.sent, IsEmpty());
  EXPECT_THAT(ob.resume(), IsOk());
  stats = ob.flush(factory());
  ASSERT_THAT(stats, IsOk());
  EXPECT_EQ(stats->sent, 2);
  EXPECT_EQ(sender_.sent.size(), 2u);
}

TEST_F(OutboxTest, APauseFlagThatCannotBeReadFailsTheFlush) {
  config_.outbox.batch = 1;  // the flag is read again between rounds
  auto ob = outbox();
  auto first = ob.queue_tracked(mail());
  auto second = ob.queue_tracked(mail());
  ASSERT_THAT(first, IsOk());
  ASSERT_THAT(second, IsOk());
  int reads = 0;
  store_->set_fault_hook_for_testing([&reads](std::string_view step) {
    if (step == "lookup:outbox-paused" && ++reads == 2) {
      return Status(ErrorKind::kInternal, "database is locked (injected)");
    }
    return Status();
  });
  EXPECT_THAT(ob.flush(factory()),
              StatusIs(ErrorKind::kInternal, HasSubstr("pause flag: database is locked")));
  // Before the first round too.
  reads = 1;
  EXPECT_THAT(ob.flush(factory()),
              StatusIs(ErrorKind::kInternal, HasSubstr("pause flag: database is locked")));
  store_->set_fault_hook_for_testing(nullptr);
  EXPECT_EQ(sender_.sent.size(), 1u);  // the round before the failed read went out
  EXPECT_EQ(to_string(row(second->id).state), "queued");
  auto stats = ob.flush(factory());
  ASSERT_THAT(stats, IsOk());
  EXPECT_EQ(stats->sent, 1);
  EXPECT_EQ(sender_.sent.size(), 2u);
}

TEST_F(OutboxTest, RowsOfADeadClaimerAreSentAgainOnceAndLiveOnesAreLeftAlone) {
  auto ob = outbox();
  auto a = ob.queue_tracked(mail());
  auto b = ob.queue_tracked(mail());
  ASSERT_THAT(a, IsOk());
  ASSERT_THAT(b, IsOk());
  // A process "host:77" claimed both and died before recording anything.
  auto claimed = store_->claim_outbox(format_utc(now_), "host:77", 1);
  ASSERT_THAT(claimed, IsOk());
  ASSERT_EQ(claimed->size(), 1u);
  // Another, "host:78", still runs and holds the other one.
  ASSERT_THAT(store_->claim_outbox(format_utc(now_), "host:78", 1), IsOk());
  alive_owner_ = "host:78";

  auto stats = ob.flush(factory());
  ASSERT_THAT(stats, IsOk());
  EXPECT_EQ(stats->recovered, 1);
  ASSERT_EQ(sender_.sent.size(), 1u);
  const int64_t dead = (*claimed)[0].id;
  const int64_t live = dead == a->id ? b->id : a->id;
  EXPECT_EQ(sender_.sent[0].id, std::to_string(dead));
  EXPECT_EQ(to_string(row(dead).state), "sent");
  EXPECT_EQ(row(dead).attempts, 2);  // the interrupted attempt counts
  EXPECT_EQ(to_string(row(live).state), "sending");

  // Past the lease even a claimer that seems alive (a recycled pid) loses its row.
  now_ += seconds(901);
  ASSERT_THAT(ob.flush(factory()), IsOk());
  EXPECT_EQ(to_string(row(live).state), "sent");
  EXPECT_EQ(sender_.sent.size(), 2u);
}

// A crash at every instant of a send, then a restart (another process: the crashed one no
// longer runs). Before the end of the message reached the server, it is sent again; after
// it, the server kept it and (in_doubt = "sent", the default) it is not sent again. Either
// way the "server" holds exactly one copy of each message.
TEST_F(OutboxTest, ACrashAtAnyInstantOfASendLeavesExactlyOneCopy) {
  for (Fate fate : {Fate::kCrashBeforeEnd, Fate::kCrashAfterEnd}) {
    SCOPED_TRACE(fate == Fate::kCrashBeforeEnd ? "crash before the end" : "crash after the end");
    sender_ = FakeSender();
    alive_owner_ = "test:1";
    auto crashed = outbox("test:1");
    auto queued = crashed.queue_tracked(mail());
    ASSERT_THAT(queued, IsOk());
    const std::string id = std::to_string(queued->id);
    sender_.fates.push_back(fate);
    EXPECT_THROW((void)crashed.flush(factory()), Crash);
    OutboxRow left = row(queued->id);
    EXPECT_EQ(to_string(left.state), "sending");
    EXPECT_EQ(left.handed_over_at.empty(), fate == Fate::kCrashBeforeEnd);

    alive_owner_ = "test:2";  // test:1 is dead
    auto restarted = outbox("test:2");
    auto stats = restarted.flush(factory());
    ASSERT_THAT(stats, IsOk());
    EXPECT_EQ(stats->recovered, 1);
    EXPECT_EQ(sender_.delivered[id], 1) << "exactly one copy reached the server";
    OutboxRow r = row(queued->id);
    EXPECT_EQ(to_string(r.state), "sent");
    if (fate == Fate::kCrashBeforeEnd) {
      EXPECT_EQ(sender_.sent.size(), 2u);
      EXPECT_FALSE(r.unconfirmed);
      EXPECT_EQ(r.attempts, 2);
    } else {
      EXPECT_EQ(sender_.sent.size(), 1u);
      EXPECT_TRUE(r.unconfirmed);
      EXPECT_EQ(r.sent_at, left.handed_over_at);
      EXPECT_THAT(r.last_error, HasSubstr("unconfirmed"));
      EXPECT_THAT(r.last_error, HasSubstr("test:1 stopped"));
    }
    // Nothing further goes out.
    ASSERT_THAT(restarted.flush(factory()), IsOk());
    EXPECT_EQ(sender_.delivered[id], 1);
  }
}

// The log beside the store speaks for a crash between the write of the end and the store's
// record of it (here: the store's UPDATE never runs): still in doubt, still one copy. And
// the log is gone once the restarted process has written every row back.
TEST_F(OutboxTest, ACrashBeforeTheStoreRecordsTheHandOverIsCaughtByTheLog) {
  alive_owner_ = "test:1";
  auto crashed = outbox("test:1");
  auto queued = crashed.queue_tracked(mail());
  ASSERT_THAT(queued, IsOk());
  const std::string id = std::to_string(queued->id);
  store_->set_fault_hook_for_testing([](std::string_view step) -> Status {
    if (step == "outbox-handed-over") throw Crash{};
    return Status::Ok();
  });
  EXPECT_THROW((void)crashed.flush(factory()), Crash);
  store_->set_fault_hook_for_testing(nullptr);
  EXPECT_EQ(row(queued->id).handed_over_at, "");  // the store never heard of it
  const std::string log = HandoverLog::path_for(path_, "test:1");
  EXPECT_EQ(HandoverLog::last_handed_over(log).value(), queued->id);

  alive_owner_ = "test:2";
  auto restarted = outbox("test:2");
  ASSERT_THAT(restarted.flush(factory()), IsOk());
  EXPECT_EQ(sender_.delivered[id], 1);
  OutboxRow r = row(queued->id);
  EXPECT_EQ(to_string(r.state), "sent");
  EXPECT_TRUE(r.unconfirmed);
  EXPECT_FALSE(std::filesystem::exists(log));
}

// A log that is there but cannot be read stops the recovery with its error: the message it
// may speak for is neither sent again nor settled until the log can be read.
TEST_F(OutboxTest, AHandOverLogThatCannotBeReadStopsTheFlushLoudly) {
  alive_owner_ = "test:1";
  auto crashed = outbox("test:1");
  auto queued = crashed.queue_tracked(mail());
  ASSERT_THAT(queued, IsOk());
  store_->set_fault_hook_for_testing([](std::string_view step) -> Status {
    if (step == "outbox-handed-over") throw Crash{};
    return Status::Ok();
  });
  EXPECT_THROW((void)crashed.flush(factory()), Crash);
  store_->set_fault_hook_for_testing(nullptr);
  const std::string log = HandoverLog::path_for(path_, "test:1");
  std::filesystem::rename(log, log + ".aside");
  std::filesystem::create_directories(log);  // unreadable as a log

  alive_owner_ = "test:2";
  auto restarted = outbox("test:2");
  EXPECT_THAT(restarted.flush(factory()),
              StatusIs(ErrorKind::kInternal, HasSubstr("cannot read the outbox's hand-over log")));
  EXPECT_EQ(sender_.delivered[std::to_string(queued->id)], 1);  // not sent again
  EXPECT_EQ(to_string(row(queued->id).state), "sending");
  std::filesystem::remove(log);
  std::filesystem::rename(log + ".aside", log);
  ASSERT_THAT(restarted.flush(factory()), IsOk());
  EXPECT_EQ(sender_.delivered[std::to_string(queued->id)], 1);
  EXPECT_TRUE(row(queued->id).unconfirmed);
}

// Only the last message a process handed over is in its log: the next one, begun and
// interrupted before its end, is sent again; and a flush that ends normally leaves no log.
TEST_F(OutboxTest, TheLogSpeaksOnlyForTheLastHandOver) {
  alive_owner_ = "test:1";
  auto crashed = outbox("test:1");
  auto first = crashed.queue_tracked(mail());
  auto second = crashed.queue_tracked(mail());
  ASSERT_THAT(first, IsOk());
  ASSERT_THAT(second, IsOk());
  sender_.fates = {Fate::kAnswer, Fate::kCrashBeforeEnd};
  EXPECT_THROW((void)crashed.flush(factory()), Crash);
  EXPECT_EQ(to_string(row(first->id).state), "sent");
  EXPECT_EQ(to_string(row(second->id).state), "sending");

  alive_owner_ = "test:2";
  auto restarted = outbox("test:2");
  ASSERT_THAT(restarted.flush(factory()), IsOk());
  EXPECT_EQ(sender_.delivered[std::to_string(first->id)], 1);
  EXPECT_EQ(sender_.delivered[std::to_string(second->id)], 1);
  EXPECT_FALSE(row(second->id).unconfirmed);
  for (const char* owner : {"test:1", "test:2"}) {
    EXPECT_FALSE(std::filesystem::exists(HandoverLog::path_for(path_, owner))) << owner;
  }
}

// The other two answers to "in doubt": send again (at-least-once: two copies with one
// Message-ID) or park for an operator, whose `outbox retry` sends it again.
TEST_F(OutboxTest, InDoubtResendAndParkAreTheOperatorsChoice) {
  for (InDoubt policy : {InDoubt::kResend, InDoubt::kPark}) {
    SCOPED_TRACE(policy == InDoubt::kResend ? "resend" : "park");
    sender_ = FakeSender();
    config_.outbox.in_doubt = policy;
    alive_owner_ = "test:1";
    auto crashed = outbox("test:1");
    auto queued = crashed.queue_tracked(mail());
    ASSERT_THAT(queued, IsOk());
    const std::string id = std::to_string(queued->id);
    sender_.fates.push_back(Fate::kCrashAfterEnd);
    EXPECT_THROW((void)crashed.flush(factory()), Crash);
    alive_owner_ = "test:2";
    auto restarted = outbox("test:2");
    ASSERT_THAT(restarted.flush(factory()), IsOk());
    OutboxRow r = row(queued->id);
    if (policy == InDoubt::kResend) {
      EXPECT_EQ(to_string(r.state), "sent");
      EXPECT_EQ(sender_.delivered[id], 2);
      EXPECT_EQ(sender_.sent[0].raw, sender_.sent[1].raw);  // the same Message-ID
    } else {
      EXPECT_EQ(to_string(r.state), "parked");
      EXPECT_EQ(sender_.delivered[id], 1);
      EXPECT_THAT(r.last_error, HasSubstr("in doubt"));
      EXPECT_THAT(r.last_error, HasSubstr("mailbridge outbox retry " + id));
      ASSERT_THAT(restarted.retry(queued->id), IsOk());
      ASSERT_THAT(restarted.flush(factory()), IsOk());
      EXPECT_EQ(to_string(row(queued->id).state), "sent");
      EXPECT_EQ(sender_.delivered[id], 2);
    }
  }
}

// No crash: the connection drops after the end of the message, before the server's answer.
// That is in doubt too; a refusal after the end (a 4xx or 5xx) is an answer and is not.
TEST_F(OutboxTest, ALostAnswerAfterTheEndIsInDoubtARefusalIsNot) {
  auto ob = outbox();
  auto lost = ob.queue_tracked(mail());
  ASSERT_THAT(lost, IsOk());
  sender_.fates.push_back(Fate::kLoseAnswer);
  auto stats = ob.flush(factory());
  ASSERT_THAT(stats, IsOk());
  EXPECT_EQ(stats->sent, 1);
  EXPECT_EQ(stats->unconfirmed, 1);
  EXPECT_THAT(stats->errors, ElementsAre(HasSubstr("in doubt")));
  OutboxRow r = row(lost->id);
  EXPECT_EQ(to_string(r.state), "sent");
  EXPECT_TRUE(r.unconfirmed);
  EXPECT_THAT(r.last_error, HasSubstr("connection closed after the message was sent"));
  // An operator who learns it never arrived sends it again; a confirmed one cannot be.
  ASSERT_THAT(ob.retry(lost->id), IsOk());
  r = row(lost->id);
  EXPECT_EQ(to_string(r.state), "queued");
  EXPECT_FALSE(r.unconfirmed);
  ASSERT_THAT(ob.flush(factory()), IsOk());
  EXPECT_FALSE(row(lost->id).unconfirmed);
  EXPECT_THAT(ob.retry(lost->id), StatusIs(ErrorKind::kRejected, HasSubstr("sent")));

  auto refused = ob.queue_tracked(mail());
  ASSERT_THAT(refused, IsOk());
  sender_.fates.push_back(Fate::kRefuseAtEnd);
  sender_.script.push_back(Status(ErrorKind::kThrottled, "451 4.3.0 queue full"));
  ASSERT_THAT(ob.flush(factory()), IsOk());
  r = row(refused->id);
  EXPECT_EQ(to_string(r.state), "queued");
  EXPECT_FALSE(r.unconfirmed);
  EXPECT_FALSE(r.handed_over_at.empty());
  EXPECT_THAT(r.last_error, HasSubstr("451 4.3.0 queue full"));
}

// Recipients refused for now at RCPT stay pending when an in-doubt message counts as sent:
// only they get it again, the accepted ones never twice.
TEST_F(OutboxTest, InDoubtKeepsTheRecipientsRefusedBeforeTheEnd) {
  alive_owner_ = "test:1";
  auto crashed = outbox("test:1");
  auto queued = crashed.queue_tracked(mail({{"", "ok@example.com"}, {"", "later@example.com"}}));
  ASSERT_THAT(queued, IsOk());
  SendResult partial;
  partial.recipients = {{"ok@example.com", true, false, "250 ok"},
                        {"later@example.com", false, false, "452 4.2.2 mailbox full"}};
  sender_.script.push_back(partial);
  sender_.fates.push_back(Fate::kCrashAfterEnd);
  EXPECT_THROW((void)crashed.flush(factory()), Crash);
  alive_owner_ = "test:2";
  auto restarted = outbox("test:2");
  ASSERT_THAT(restarted.recover(), IsOk());
  OutboxRow r = row(queued->id);
  EXPECT_EQ(to_string(r.state), "queued");
  EXPECT_THAT(r.pending, ElementsAre("later@example.com"));
  ASSERT_THAT(restarted.flush(factory()), IsOk());
  ASSERT_EQ(sender_.sent.size(), 2u);
  EXPECT_THAT(sender_.sent[1].envelope.recipients, ElementsAre("later@example.com"));
  EXPECT_EQ(to_string(row(queued->id).state), "sent");
}

TEST_F(OutboxTest, SenderSetupFailuresAndSecretsInErrors) {
  auto ob = Outbox(*store_, config_, kSecret, [&] {
    auto o = options();
    o.scrub = [](std::string_view t) {
      std::string s(t);
      for (size_t p; (p = s.find("hunter2")) != std::string::npos;) s.replace(p, 7, "<redacted>");
      return s;
    };
    return o;
  }());
  auto queued = ob.queue_tracked(mail());
  ASSERT_THAT(queued, IsOk());
  sender_.script.push_back(Status(ErrorKind::kAuth, "535 bad password hunter2"));
  auto stats = ob.flush(factory());
  ASSERT_THAT(stats, IsOk());
  OutboxRow r = row(queued->id);
  EXPECT_THAT(r.last_error, Not(HasSubstr("hunter2")));
  EXPECT_THAT(r.last_error, HasSubstr("<redacted>"));
  ASSERT_EQ(stats->errors.size(), 1u);
  EXPECT_THAT(stats->errors[0], Not(HasSubstr("hunter2")));

  config_.tracking.sender = "outgoing";
  TrackedMail other = mail();
  SenderConfig ghost;
  ghost.name = "ghost";
  config_.senders.push_back(ghost);
  other.sender = "ghost";
  auto ghostly = ob.queue_tracked(other);
  ASSERT_THAT(ghostly, IsOk());
  ASSERT_THAT(ob.flush(factory()), IsOk());
  EXPECT_EQ(to_string(row(ghostly->id).state), "parked");  // kConfig: no retry cures it
  EXPECT_THAT(row(ghostly->id).last_error, HasSubstr("no sender ghost"));
}


// --- replies through sync_mailbox: routing, in_reply_to, the forward in the same commit ----

class ReplyTest : public OutboxTest {
 protected:
  void SetUp() override {
    OutboxTest::SetUp();
    config_.mailboxes[0].after = PostAction::mark_read();
    auto ob = outbox();
    auto q = ob.queue_tracked(mail());
    ASSERT_THAT(q, IsOk());
    original_ = *q;
    parsed_ = *parse_message(original_.raw);
  }
  Result<SyncStats> sync() {
    testing::FakeMailbox mbx(server_);
    SyncOptions o;
    o.tracking_secret = kSecret;
    return sync_mailbox(mbx, config_.mailboxes[0], config_, *store_, o);
  }
  std::vector<OutboxRow> forwards() {
    std::vector<OutboxRow> out;
    auto all = store_->list_outbox();
    EXPECT_THAT(all, IsOk());
    if (!all.ok()) return out;
    for (const auto& r : *all) {
      if (r.kind == "forward") out.push_back(r);
    }
    return out;
  }
  std::shared_ptr<testing::FakeServer> server_ = std::make_shared<testing::FakeServer>();
  OutboxRow original_;
  ParsedMessage parsed_;
};

TEST_F(ReplyTest, ReplyByHeaderOrCookieBecomesANoteAndOneForward) {
  server_->add("From: Bob <bob@example.com>\r\nSubject: Re: whatever\r\nIn-Reply-To: <" +
               original_.message_id + ">\r\n\r\nStill burning\r\n");
  server_->add("From: Bob <bob@example.com>\r\nSubject: " + parsed_.subject +
               "\r\n\r\nCookie only\r\n");
  ASSERT_THAT(sync(), IsOk());
  auto t = *store_->get_ticket(ticket_);
  ASSERT_EQ(t->notes.size(), 4u);
  EXPECT_EQ(t->notes[2].in_reply_to, original_.note_id);
  EXPECT_EQ(t->notes[3].in_reply_to, original_.note_id);
  auto f = forwards();
  ASSERT_EQ(f.size(), 2u);
  for (const auto& row : f) {
    EXPECT_THAT(row.recipients, ElementsAre("ann@contoso.example"));
    EXPECT_EQ(to_string(row.state), "queued");
  }
  auto fwd = parse_message(row(f.back().id).raw);  // newest first: the first reply
  ASSERT_THAT(fwd, IsOk());
  EXPECT_THAT(fwd->text, HasSubstr("Still burning"));
  EXPECT_EQ(fwd->in_reply_to, original_.message_id);
  // A second pass (or a crash and rerun) changes nothing: the ledger holds both.
  ASSERT_THAT(sync(), IsOk());
  EXPECT_EQ(forwards().size(), 2u);
}

TEST_F(ReplyTest, ACrashBeforeTheCommitLosesNeitherNoteNorForward) {
  server_->add("From: Bob <bob@example.com>\r\nIn-Reply-To: <" + original_.message_id +
               ">\r\nSubject: Re\r\n\r\nx\r\n");
  store_->set_fault_hook_for_testing([](std::string_view step) {
    return step == "ledger" ? Status(ErrorKind::kInternal, "crash") : Status::Ok();
  });
  EXPECT_THAT(sync(), StatusIs(ErrorKind::kInternal, HasSubstr("crash")));
  EXPECT_TRUE(forwards().empty());  // rolled back with the note
  EXPECT_EQ((*store_->get_ticket(ticket_))->notes.size(), 2u);
  store_->set_fault_hook_for_testing(nullptr);
  ASSERT_THAT(sync(), IsOk());
  EXPECT_EQ(forwards().size(), 1u);
  EXPECT_EQ((*store_->get_ticket(ticket_))->notes.size(), 3u);
}

TEST_F(ReplyTest, AFailingLookupLeavesTheReplyForTheNextPassWithItsForward) {
  // A reply by cookie only: routing reads the email-out note the cookie names, then the
  // tracked mail to forward it. A busy store at either is an error that stops the message.
  server_->add("From: Bob <bob@example.com>\r\nSubject: " + parsed_.subject +
               "\r\n\r\nCookie only\r\n");
  const std::string key = server_->messages[0].key;
  for (const std::string step : {"lookup:email-out", "lookup:outbox-for-note"}) {
    SCOPED_TRACE(step);
    store_->set_fault_hook_for_testing([step](std::string_view s) {
      return s == step ? Status(ErrorKind::kInternal, "database is locked (injected)")
                       : Status();
    });
    EXPECT_THAT(sync(), StatusIs(ErrorKind::kInternal, HasSubstr("database is locked")));
    store_->set_fault_hook_for_testing(nullptr);
    EXPECT_EQ(store_->list_tickets()->size(), 1u);  // not a new ticket
    EXPECT_EQ((*store_->get_ticket(ticket_))->notes.size(), 2u);
    EXPECT_TRUE(forwards().empty());
    EXPECT_FALSE(store_->find_ledger("support", key)->has_value());
    EXPECT_FALSE(server_->messages[0].seen);
  }
  ASSERT_THAT(sync(), IsOk());
  auto t = *store_->get_ticket(ticket_);
  ASSERT_EQ(t->notes.size(), 3u);
  EXPECT_EQ(t->notes[2].in_reply_to, original_.note_id);
  EXPECT_EQ(forwards().size(), 1u);
  EXPECT_EQ(store_->list_tickets()->size(), 1u);
}

TEST_F(ReplyTest, ForgedCookiesAndDeletedTicketsMatchNothing) {
  std::string forged = parsed_.subject;
  size_t pos = forged.find("[#MB-") + 9;
  forged[pos] = forged[pos] == 'A' ? 'B' : 'A';
  server_->add("From: Eve <eve@example.com>\r\nSubject: " + forged + "\r\n\r\nhi\r\n");
  // A genuine cookie for a ticket that does not exist (signed with our secret).
  TrackingSigner signer(kSecret);
  server_->add("From: Eve <eve@example.com>\r\nSubject: " + signer.bracketed({"IT", 99, 98}) +
               "\r\n\r\nhi\r\n");
  ASSERT_THAT(sync(), IsOk());
  EXPECT_EQ((*store_->get_ticket(ticket_))->notes.size(), 2u);
  EXPECT_EQ(store_->list_tickets()->size(), 3u);  // two new tickets
  EXPECT_TRUE(forwards().empty());
}

TEST_F(ReplyTest, UntrackedMailIsSkippedAndDeletedWhenConfigured) {
  config_.tracking.delete_untracked = true;
  server_->add("From: Spam <spam@example.com>\r\nSubject: [Ticket - 1] buy\r\n\r\nx\r\n");
  server_->add("From: Bob <bob@example.com>\r\nSubject: " + parsed_.subject +
               "\r\n\r\nreply\r\n");
  auto stats = sync();
  ASSERT_THAT(stats, IsOk());
  EXPECT_EQ(stats->skipped[kSkipUntracked], 1);
  EXPECT_EQ(stats->notes, 1);
  EXPECT_TRUE(server_->messages[0].deleted);
  EXPECT_FALSE(server_->messages[1].deleted);
  EXPECT_EQ((*store_->get_ticket(ticket_))->notes.size(), 3u);
}

}  // namespace
}  // namespace mb
