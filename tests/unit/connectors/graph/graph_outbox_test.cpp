// File: tests/unit/connectors/graph/graph_outbox_test.cpp — the outbox (core/outbox) over
// the Graph Sender and a scripted Graph: a sendMail answered 504, or whose answer is lost, is
// in doubt and settled by [outbox] in_doubt (sent: never sent again; resend: sent once more;
// park: parked for an operator); a 429 and a 503 are repeated and the mail is sent.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "core/outbox.h"
#include "core/store.h"
#include "graph_fake.h"
#include "tests/status_matchers.h"

namespace mb::testing {
namespace {

using ::testing::HasSubstr;
using std::chrono::seconds;

class GraphOutboxTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("mb_graph_outbox_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    auto s = Store::open((dir_ / "mb.db").string());
    ASSERT_THAT(s, IsOk());
    store_ = std::move(*s);
    MailboxConfig support;
    support.name = "support";
    support.user = "helpdesk@contoso.com";
    config_.mailboxes = {support};
    SenderConfig out;
    out.name = "outgoing";
    out.type = ConnectorType::kGraph;
    out.auth = AuthMethod::kOAuth2;
    out.user = "helpdesk@contoso.com";
    config_.senders = {out};
    config_.tracking.mailbox = "support";
    config_.tracking.sender = "outgoing";
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
    graph_ = std::make_shared<FakeGraph>();
    tokens_ = std::make_shared<FakeTokens>();
    sleeps_ = std::make_shared<Sleeps>();
  }
  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(dir_);
  }

  Outbox outbox() {
    OutboxOptions o;
    o.now = [this] { return now_; };
    o.jitter = [] { return 0.0; };
    o.owner = "test:1";
    o.owner_alive = [](const std::string& owner) { return owner == "test:1"; };
    return Outbox(*store_, config_, "tracking-secret-for-tests", o);
  }
  SenderFactory factory() {
    return [this](const std::string&) -> Result<std::unique_ptr<Sender>> {
      return make_graph_sender(config_.senders.front(), kService, fake_sign_in(tokens_),
                               mb::testing::factory(graph_), fake_tuning(sleeps_));
    };
  }
  Result<OutboxRow> queue(Outbox& ob) {
    TrackedMail m;
    m.ticket_id = ticket_;
    m.to = {{"Bob", "bob@example.com"}};
    m.subject = "Your printer";
    m.text = "Is it fixed?";
    return ob.queue_tracked(m);
  }
  OutboxRow row(int64_t id) {
    auto r = store_->get_outbox(id);
    EXPECT_THAT(r, IsOk());
    return r.ok() && *r ? **r : OutboxRow{};
  }
  // sendMail answers `first` once, then 202.
  void answer_first_send(HttpResponse first) {
    auto used = std::make_shared<bool>(false);
    graph_->handler = [first, used](const HttpRequest&) {
      if (!*used) {
        *used = true;
        return first;
      }
      return HttpResponse{202, {{"request-id", "req-ok"}}, ""};
    };
  }

  std::filesystem::path dir_;
  std::unique_ptr<Store> store_;
  Config config_;
  int64_t ticket_ = 0;
  std::shared_ptr<FakeGraph> graph_;
  std::shared_ptr<FakeTokens> tokens_;
  std::shared_ptr<Sleeps> sleeps_;
  std::chrono::system_clock::time_point now_{seconds(1800000000)};
};

TEST_F(GraphOutboxTest, A504OrALostAnswerToSendMailIsInDoubt) {
  for (int status : {504, kLostAnswer}) {
    for (InDoubt policy : {InDoubt::kSent, InDoubt::kResend, InDoubt::kPark}) {
      SCOPED_TRACE(std::to_string(status) + " in_doubt " +
                   (policy == InDoubt::kSent     ? "sent"
                    : policy == InDoubt::kResend ? "resend"
                                                 : "park"));
      graph_ = std::make_shared<FakeGraph>();
      config_.outbox.in_doubt = policy;
      auto ob = outbox();
      auto queued = queue(ob);
      ASSERT_THAT(queued, IsOk());
      answer_first_send(status == kLostAnswer
                            ? HttpResponse{kLostAnswer, {}, ""}
                            : graph_error(504, "UnknownError", "gateway timeout",
                                          {{"Retry-After", "1"}}));
      auto stats = ob.flush(factory());
      ASSERT_THAT(stats, IsOk());
      EXPECT_THAT(stats->errors, ::testing::ElementsAre(HasSubstr("in doubt")));
      EXPECT_EQ(graph_->count("POST", "/sendMail"), 1u) << "the client repeated sendMail";
      OutboxRow r = row(queued->id);
      EXPECT_FALSE(r.handed_over_at.empty());
      now_ += seconds(7200);  // past any backoff
      ASSERT_THAT(ob.flush(factory()), IsOk());
      r = row(queued->id);
      switch (policy) {
        case InDoubt::kSent:
          EXPECT_EQ(to_string(r.state), "sent");
          EXPECT_TRUE(r.unconfirmed);
          EXPECT_EQ(graph_->count("POST", "/sendMail"), 1u);
          break;
        case InDoubt::kResend:
          EXPECT_EQ(to_string(r.state), "sent");
          EXPECT_FALSE(r.unconfirmed);
          EXPECT_EQ(graph_->count("POST", "/sendMail"), 2u);
          break;
        case InDoubt::kPark:
          EXPECT_EQ(to_string(r.state), "parked");
          EXPECT_THAT(r.last_error, HasSubstr("in doubt"));
          EXPECT_EQ(graph_->count("POST", "/sendMail"), 1u);
          break;
      }
    }
  }
}

TEST_F(GraphOutboxTest, A429AndA503AreRepeatedAndTheMailIsSent) {
  for (int status : {429, 503}) {
    SCOPED_TRACE(status);
    graph_ = std::make_shared<FakeGraph>();
    auto ob = outbox();
    auto queued = queue(ob);
    ASSERT_THAT(queued, IsOk());
    answer_first_send(graph_error(status, "TooManyRequests", "slow down",
                                  {{"Retry-After", "5"}}));
    auto stats = ob.flush(factory());
    ASSERT_THAT(stats, IsOk());
    EXPECT_EQ(stats->sent, 1);
    EXPECT_EQ(stats->unconfirmed, 0);
    EXPECT_EQ(graph_->count("POST", "/sendMail"), 2u);
    OutboxRow r = row(queued->id);
    EXPECT_EQ(to_string(r.state), "sent");
    EXPECT_FALSE(r.unconfirmed);
    EXPECT_TRUE(r.queued_only);
  }
}

}  // namespace
}  // namespace mb::testing
