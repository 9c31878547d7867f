// File: tests/integration/tracking_test.cpp — issue 7's round trip with the real binary, the
// test SMTP server and Dovecot: `send` a tracked email, take it from the SMTP spool, deliver
// replies into the tracking mailbox, `sync --once`, and check the reply notes (in_reply_to)
// and the forward to the technician; a cookie-only reply matches, a forged cookie attaches
// to nothing; pause → queued, resume → sent; and a SIGKILL mid-flush neither loses nor
// (beyond the one message in flight) doubles a message.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <map>
#include <set>
#include <string>
#include <thread>

#include "core/message.h"
#include "tests/integration/harness.h"
#include "tests/integration/smtp_harness.h"
#include "tests/status_matchers.h"

namespace mb::itest {
namespace {
using ::mb::testing::IsOk;
using ::testing::HasSubstr;
namespace sm = ::mb::itest::smtp;

constexpr const char* kTech = "ann@corp.test";

class TrackingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto env = load_harness();
    ASSERT_THAT(env, IsOk());
    env_ = *env;
    ASSERT_THAT(sm::reset(), IsOk());
    user_ = unique_user();
    address_ = user_ + "@mailbridge.test";
    db_ = dir_.file("mb.db");
    write_config(false);
    // The customer's first mail makes ticket 1.
    ASSERT_THAT(deliver(env_, user_, make_message({.from = "Bob <bob@example.com>",
                                                   .to = address_,
                                                   .subject = "Printer on fire",
                                                   .text = "Help!"})),
                IsOk());
    RunResult r = mb({"sync", "--once"});
    ASSERT_EQ(r.exit_code, 0) << r.describe();
  }

  void write_config(bool delete_untracked) {
    std::string tables =
        "[tracking]\nsecret = \"env:MB_TRACK_SECRET\"\nmailbox = \"support\"\n"
        "sender = \"outgoing\"\ndelete_untracked = " +
        std::string(delete_untracked ? "true" : "false") +
        "\n\n[outbox]\nretry_initial = \"1s\"\nretry_max = \"2s\"\n\n"
        "[[user]]\nemail = \"" + kTech + "\"\nname = \"Ann Tech\"\nrole = \"technician\"\n\n" +
        imap_mailbox_toml(env_, {.name = "support", .user = user_}) +
        "address = " + toml_quote(address_) + "\n\n" +
        sm::sender_toml("outgoing", sm::Port::kRelay, "");
    ASSERT_THAT(write_file(dir_.file("mb.toml"), config_toml(db_, tables)), IsOk());
  }

  RunResult mb(std::vector<std::string> args) {
    args.insert(args.begin(), {"--config", dir_.file("mb.toml")});
    return run_mailbridge(args, options());
  }
  RunOptions options() {
    RunOptions o;
    o.env = {{"MB_TEST_PASSWORD", env_.password},
             {"MB_SMTP_PASSWORD", sm::at("MB_SMTP_PASSWORD")},
             {"MB_TRACK_SECRET", "integration-tracking-secret"}};
    return o;
  }

  // Queues a tracked email about ticket 1 for the technician; returns its outbox id.
  std::string send(const std::string& subject) {
    EXPECT_THAT(write_file(dir_.file("body.txt"), "Have you tried turning it off?\n"), IsOk());
    RunResult r = mb({"send", "--ticket", "1", "--to", "Bob <bob@example.com>", "--subject",
                      subject, "--body-file", dir_.file("body.txt"), "--user", kTech});
    EXPECT_EQ(r.exit_code, 0) << r.describe();
    std::string id = r.out;
    while (!id.empty() && id.back() == '\n') id.pop_back();
    return id;
  }

  nlohmann::json ticket(int id) {
    RunResult r = mb({"tickets", "show", std::to_string(id), "--json"});
    EXPECT_EQ(r.exit_code, 0) << r.describe();
    return parse_json(r.out);
  }
  nlohmann::json outbox() {
    RunResult r = mb({"outbox", "list", "--json"});
    EXPECT_EQ(r.exit_code, 0) << r.describe();
    return parse_json(r.out);
  }

  // The messages the SMTP server took after `since`, parsed.
  std::vector<std::pair<sm::Received, ParsedMessage>> received(int64_t since = 0) {
    std::vector<std::pair<sm::Received, ParsedMessage>> out;
    auto msgs = sm::messages(since);
    EXPECT_THAT(msgs, IsOk());
    if (!msgs.ok()) return out;
    for (const auto& m : *msgs) {
      auto raw = sm::raw_message(m.seq);
      EXPECT_THAT(raw, IsOk());
      auto parsed = parse_message(raw.ok() ? *raw : "");
      EXPECT_THAT(parsed, IsOk());
      if (parsed.ok()) out.emplace_back(m, *parsed);
    }
    return out;
  }

  HarnessEnv env_;
  TempDir dir_;
  std::string user_, address_, db_;
};

TEST_F(TrackingTest, ReplyRoundTripAttachesAndForwards) {
  send("Your printer");
  RunResult flush = mb({"outbox", "flush"});
  ASSERT_EQ(flush.exit_code, 0) << flush.describe();
  auto sent = received();
  ASSERT_EQ(sent.size(), 1u);
  const ParsedMessage& out = sent[0].second;
  EXPECT_EQ(sent[0].first.rcpt_to, std::vector<std::string>{"bob@example.com"});
  EXPECT_EQ(out.reply_to, address_);
  EXPECT_EQ(out.from.email, address_);
  EXPECT_THAT(out.subject, HasSubstr("[#MB-"));
  auto t = ticket(1);
  ASSERT_EQ(t["notes"].size(), 2u);
  const auto email_out = t["notes"][1];
  EXPECT_EQ(email_out["kind"], "email-out");
  EXPECT_EQ(email_out["message_id"], out.message_id);
  auto list = outbox();
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0]["state"], "sent");
  EXPECT_EQ(list[0]["message_id"], out.message_id);

  // A reply by its headers.
  ASSERT_THAT(deliver(env_, user_, make_message({
                  .from = "Bob <bob@example.com>", .to = address_,
                  .subject = "Re: " + out.subject, .text = "Still burning.",
                  .extra_headers = {{"In-Reply-To", "<" + out.message_id + ">"}}})),
              IsOk());
  const int64_t before = sent[0].first.seq;
  RunResult sync = mb({"sync", "--once"});
  ASSERT_EQ(sync.exit_code, 0) << sync.describe();
  t = ticket(1);
  ASSERT_EQ(t["notes"].size(), 3u);
  EXPECT_EQ(t["notes"][2]["kind"], "email-in");
  EXPECT_EQ(t["notes"][2]["in_reply_to"], email_out["id"]);
  auto forwards = received(before);
  ASSERT_EQ(forwards.size(), 1u) << sync.describe();
  EXPECT_EQ(forwards[0].first.rcpt_to, std::vector<std::string>{kTech});
  EXPECT_THAT(forwards[0].second.text, HasSubstr("Still burning."));
  EXPECT_EQ(forwards[0].second.in_reply_to, out.message_id);

  // A reply with only the cookie (a client that drops In-Reply-To).
  ASSERT_THAT(deliver(env_, user_, make_message({.from = "Bob <bob@example.com>",
                                                 .to = address_, .subject = out.subject,
                                                 .text = "Now it is out."})),
              IsOk());
  sync = mb({"sync", "--once"});
  ASSERT_EQ(sync.exit_code, 0) << sync.describe();
  t = ticket(1);
  ASSERT_EQ(t["notes"].size(), 4u);
  EXPECT_EQ(t["notes"][3]["in_reply_to"], email_out["id"]);
  EXPECT_EQ(received(before).size(), 2u);  // forwarded too

  // A forged cookie (one character changed) attaches to nothing: a new ticket.
  std::string forged = out.subject;
  size_t pos = forged.find("[#MB-") + 8;
  forged[pos] = forged[pos] == 'A' ? 'B' : 'A';
  ASSERT_THAT(deliver(env_, user_, make_message({.from = "Eve <eve@example.com>",
                                                 .to = address_, .subject = forged,
                                                 .text = "let me in"})),
              IsOk());
  sync = mb({"sync", "--once"});
  ASSERT_EQ(sync.exit_code, 0) << sync.describe();
  EXPECT_EQ(ticket(1)["notes"].size(), 4u);
  EXPECT_EQ(*count_tickets_readonly(db_), 2);
  EXPECT_EQ(received(before).size(), 2u);  // and nothing is forwarded
}

TEST_F(TrackingTest, UntrackedMailIsDeletedWhenConfigured) {
  write_config(true);
  ASSERT_THAT(deliver(env_, user_, make_message({.from = "Spam <spam@example.com>",
                                                 .to = address_, .subject = "[Ticket - 1] hi",
                                                 .text = "not a reply"})),
              IsOk());
  RunResult sync = mb({"sync", "--once"});
  ASSERT_EQ(sync.exit_code, 0) << sync.describe();
  EXPECT_THAT(sync.out, HasSubstr("untracked: 1"));
  EXPECT_EQ(ticket(1)["notes"].size(), 1u);
  auto left = list_folder(env_, user_, "INBOX");
  ASSERT_THAT(left, IsOk());
  int found = 0;
  for (const auto& m : *left) {
    if (m.subject != "[Ticket - 1] hi") continue;
    ++found;
    EXPECT_TRUE(m.deleted) << m.file;  // flagged \Deleted (or already expunged)
  }
  EXPECT_LE(found, 1);
}

TEST_F(TrackingTest, PauseKeepsQueueingAndResumeSends) {
  ASSERT_EQ(mb({"outbox", "pause"}).exit_code, 0);
  send("While paused");
  RunResult flush = mb({"outbox", "flush"});
  EXPECT_EQ(flush.exit_code, 0) << flush.describe();
  EXPECT_THAT(flush.out, HasSubstr("paused"));
  RunResult sync = mb({"sync", "--once"});  // sync's outbox pass respects the pause too
  EXPECT_EQ(sync.exit_code, 0) << sync.describe();
  EXPECT_TRUE(received().empty());
  EXPECT_EQ(outbox()[0]["state"], "queued");
  ASSERT_EQ(mb({"outbox", "resume"}).exit_code, 0);
  flush = mb({"outbox", "flush"});
  EXPECT_EQ(flush.exit_code, 0) << flush.describe();
  EXPECT_EQ(received().size(), 1u);
  EXPECT_EQ(outbox()[0]["state"], "sent");
}

TEST_F(TrackingTest, SigkillMidFlushNeitherLosesNorDoublesMail) {
  constexpr int kMessages = 120;
  ASSERT_EQ(mb({"outbox", "pause"}).exit_code, 0);
  for (int i = 0; i < kMessages; ++i) send("Bulk " + std::to_string(i));
  ASSERT_EQ(mb({"outbox", "resume"}).exit_code, 0);
  auto flusher = Process::start(mailbridge_bin(),
                                {"--config", dir_.file("mb.toml"), "outbox", "flush"},
                                options());
  ASSERT_THAT(flusher, IsOk());
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < deadline) {
    auto msgs = sm::messages();
    if (msgs.ok() && msgs->size() >= 5) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  (*flusher)->kill(SIGKILL);
  RunResult killed = (*flusher)->wait(std::chrono::seconds(10));
  ASSERT_EQ(killed.signal, SIGKILL) << "the flush finished before the kill; "
                                    << killed.describe();
  RunResult again = mb({"outbox", "flush"});
  ASSERT_EQ(again.exit_code, 0) << again.describe();

  std::map<std::string, int> seen;
  for (const auto& [rec, msg] : received()) ++seen[msg.message_id];
  auto list = outbox();
  ASSERT_EQ(list.size(), static_cast<size_t>(kMessages));
  int doubled = 0;
  for (const auto& row : list) {
    EXPECT_EQ(row["state"], "sent") << row.dump();
    int n = seen[row["message_id"].get<std::string>()];
    EXPECT_GE(n, 1) << "lost: " << row.dump();
    if (n > 1) ++doubled;
  }
  // Sends are sequential: only the one message between the server's 250 and the commit of
  // "sent" can go twice (docs/reliability.md), and it keeps its Message-ID.
  EXPECT_LE(doubled, 1);
  EXPECT_EQ(seen.size(), static_cast<size_t>(kMessages));
}

}  // namespace
}  // namespace mb::itest
