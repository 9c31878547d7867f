// File: tests/integration/ews_send_test.cpp — the EWS Sender (connectors/ews/ews_sender.h)
// against the EWS stand-in: the round trip through the outbox (queue a tracked mail →
// CreateItem SendAndSaveCopy → the item in the mailbox's Sent Items with our MIME byte for
// byte, its Message-ID and tracking cookie kept); Bcc recipients; the copy in the right
// mailbox for a delegate and for impersonation; SendOnly; a connection dropped after Exchange
// acted (in doubt: handed over, never sent again); ErrorServerBusy before acting (sent once);
// a wrong password (an authentication failure, nothing sent); test-connection.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <set>

#include "connectors/ews/ews_sender.h"
#include "core/ascii.h"
#include "core/outbox.h"
#include "core/store.h"
#include "core/tracking.h"
#include "tests/integration/ews_harness.h"
#include "tests/status_matchers.h"

namespace mb::itest {
namespace {

using ::mb::testing::IsOk;
using ::mb::testing::StatusIs;
using ::testing::HasSubstr;
using std::chrono::seconds;

class EwsSendTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (ews::env().empty()) GTEST_SKIP() << "the EWS stand-in is not running";
    ASSERT_THAT(ews::admin("POST", "/faults/clear"), IsOk());
    address_ = unique_user() + "@" + ews::at("MB_EWS_DOMAIN");
    ASSERT_THAT(ews::admin("POST", "/accounts", {{"upn", address_}}), IsOk());
    dir_ = std::make_unique<TempDir>();
    auto s = Store::open(dir_->file("mb.db"));
    ASSERT_THAT(s, IsOk());
    store_ = std::move(*s);
    MailboxConfig support;
    support.name = "support";
    support.type = ConnectorType::kEws;
    support.user = address_;
    config_.mailboxes = {support};
    SenderConfig out;
    out.name = "outgoing";
    out.type = ConnectorType::kEws;
    out.user = address_;
    config_.senders = {out};
    config_.tracking.mailbox = "support";
    config_.tracking.sender = "outgoing";
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

  mb::ews::SenderOptions options(const std::string& user, mb::ews::Access access = mb::ews::Access::kOwn) const {
    mb::ews::SenderOptions o;
    o.client.endpoint = ews::at("MB_EWS_URL");
    o.client.tls.ca_file = ews::at("MB_EWS_CA_FILE");
    o.client.timeouts.connect = seconds(10);
    o.client.timeouts.response = seconds(20);
    o.client.mailbox = address_;
    o.client.user = user;
    o.client.access = access;
    o.client.sleep = [](std::chrono::milliseconds) { return Status::Ok(); };
    return o;
  }
  SenderFactory factory(std::string password = ews::at("MB_EWS_PASSWORD")) {
    return [this, password](const std::string&) -> Result<std::unique_ptr<Sender>> {
      return mb::ews::make_ews_sender(options(address_), SignIn::with_password(password));
    };
  }
  Outbox outbox() {
    OutboxOptions o;
    o.now = [this] { return now_; };
    o.jitter = [] { return 0.0; };
    o.owner = "test:1";
    o.owner_alive = [](const std::string& owner) { return owner == "test:1"; };
    return Outbox(*store_, config_, "tracking-secret-for-tests", o);
  }
  Result<OutboxRow> queue(Outbox& ob) {
    TrackedMail m;
    m.ticket_id = ticket_;
    m.to = {{"Bob", "bob@example.com"}};
    m.subject = "Your printer";
    m.text = "Is it fixed? ✓";
    return ob.queue_tracked(m);
  }
  OutboxRow row(int64_t id) {
    auto r = store_->get_outbox(id);
    EXPECT_THAT(r, IsOk());
    return r.ok() && *r ? **r : OutboxRow{};
  }
  // What the stand-in recorded as sent by `mailbox`.
  nlohmann::json sent(const std::string& mailbox) {
    auto s = ews::admin("GET", "/sent?mailbox=" + mailbox);
    EXPECT_THAT(s, IsOk());
    return s.ok() ? *s : nlohmann::json::array();
  }
  nlohmann::json sent_items(const std::string& mailbox) {
    auto f = ews::admin("GET", "/folder?mailbox=" + mailbox + "&folder=sentitems");
    EXPECT_THAT(f, IsOk());
    return f.ok() ? (*f)["items"] : nlohmann::json::array();
  }
  std::string mail_from(const std::string& from, const std::string& subject) const {
    return "From: " + from + "\r\nTo: alice@example.com\r\nSubject: " + subject +
           "\r\nMessage-ID: <" + subject + "@mailbridge.test>\r\n\r\nhello\r\n";
  }

  std::string address_;
  std::unique_ptr<TempDir> dir_;
  std::unique_ptr<Store> store_;
  Config config_;
  int64_t ticket_ = 0;
  std::chrono::system_clock::time_point now_{seconds(1800000000)};
};

TEST_F(EwsSendTest, TheOutboxSendsThroughCreateItemAndTheCopyInSentItemsIsOurMime) {
  auto ob = outbox();
  auto queued = queue(ob);
  ASSERT_THAT(queued, IsOk());
  auto stats = ob.flush(factory());
  ASSERT_THAT(stats, IsOk());
  EXPECT_EQ(stats->sent, 1) << ::testing::PrintToString(stats->errors);
  OutboxRow r = row(queued->id);
  EXPECT_EQ(to_string(r.state), "sent");
  EXPECT_FALSE(r.handed_over_at.empty());
  nlohmann::json out = sent(address_);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0]["disposition"], "SendAndSaveCopy");
  EXPECT_EQ(out[0]["recipients"], nlohmann::json::array({"bob@example.com"}));
  EXPECT_EQ(out[0]["mime"], queued->raw) << "the MIME reached Exchange byte for byte";
  const std::string mime = out[0]["mime"];
  EXPECT_THAT(ascii_lower(mime), HasSubstr("\r\nmessage-id: <"));
  EXPECT_THAT(mime, HasSubstr("[#MB-")) << "the tracking cookie";
  auto cookie = TrackingSigner("tracking-secret-for-tests").find_in(mime);
  ASSERT_TRUE(cookie.has_value()) << "the tracking cookie verifies";
  EXPECT_EQ(cookie->ticket, ticket_);
  nlohmann::json items = sent_items(address_);
  ASSERT_EQ(items.size(), 1u);
  EXPECT_EQ(items[0]["id"], out[0]["saved_item_id"]);
  auto last = ews::admin("GET", "/requests?limit=1");
  ASSERT_THAT(last, IsOk());
  EXPECT_EQ((*last)[0]["operation"], "CreateItem");
  EXPECT_EQ((*last)[0]["anchor"], address_);
}

TEST_F(EwsSendTest, BccRecipientsGoAsAHeaderExchangeRemovesFromWhatItDelivers) {
  auto s = mb::ews::make_ews_sender(options(address_), SignIn::with_password(ews::at("MB_EWS_PASSWORD")));
  std::string raw = mail_from(address_, "bcc-1");
  auto r = s->send({"1", {address_, {"alice@example.com", "audit@example.com"}}, raw, {}});
  ASSERT_THAT(r, IsOk());
  EXPECT_TRUE(r->queued_only);
  ASSERT_EQ(r->recipients.size(), 2u);
  nlohmann::json out = sent(address_);
  ASSERT_EQ(out.size(), 1u);
  std::set<std::string> recipients(out[0]["recipients"].begin(), out[0]["recipients"].end());
  EXPECT_EQ(recipients, (std::set<std::string>{"alice@example.com", "audit@example.com"}));
  EXPECT_EQ(out[0]["mime"], raw);
  EXPECT_EQ(out[0]["raw"], "Bcc: audit@example.com\r\n" + raw);
}

TEST_F(EwsSendTest, ADelegateAndAnImpersonatorKeepTheCopyInTheSendingMailbox) {
  // delegate@ has FullAccess to helpdesk@; svc-ews@ has the ApplicationImpersonation role.
  address_ = ews::at("MB_EWS_USER");
  size_t before = sent_items(address_).size();
  auto d = mb::ews::make_ews_sender(options(ews::at("MB_EWS_DELEGATE"), mb::ews::Access::kDelegate),
                                    SignIn::with_password(ews::at("MB_EWS_PASSWORD")));
  ASSERT_THAT(d->send({"1", {address_, {"alice@example.com"}}, mail_from(address_, "delegated"), {}}), IsOk());
  auto i = mb::ews::make_ews_sender(options(ews::at("MB_EWS_SERVICE_ACCOUNT"), mb::ews::Access::kImpersonation),
                                    SignIn::with_password(ews::at("MB_EWS_PASSWORD")));
  ASSERT_THAT(i->send({"2", {address_, {"alice@example.com"}}, mail_from(address_, "impersonated"), {}}), IsOk());
  EXPECT_EQ(sent_items(address_).size(), before + 2);
  EXPECT_TRUE(sent_items(ews::at("MB_EWS_DELEGATE")).empty());
  EXPECT_TRUE(sent_items(ews::at("MB_EWS_SERVICE_ACCOUNT")).empty());
}

TEST_F(EwsSendTest, SendOnlyKeepsNoCopyAndAForeignFromIsRefused) {
  auto o = options(address_);
  o.save_to_sent_items = false;
  auto s = mb::ews::make_ews_sender(o, SignIn::with_password(ews::at("MB_EWS_PASSWORD")));
  ASSERT_THAT(s->send({"1", {address_, {"alice@example.com"}}, mail_from(address_, "sendonly"), {}}), IsOk());
  EXPECT_EQ(sent(address_).size(), 1u);
  EXPECT_EQ(sent(address_)[0]["disposition"], "SendOnly");
  EXPECT_TRUE(sent_items(address_).empty());
  auto refused = s->send({"2", {address_, {"alice@example.com"}}, mail_from("ceo@elsewhere.example", "spoof"), {}});
  EXPECT_THAT(refused, StatusIs(ErrorKind::kRejected, HasSubstr("ErrorSendAsDenied")));
  EXPECT_TRUE(is_server_answer(refused.status()));
  EXPECT_TRUE(is_permanent_send_failure(refused.status()));
}

// The stand-in sends the message, then drops the connection without an answer: the outbox
// heard of the hand-over, holds the mail in doubt, and ([outbox] in_doubt = "sent") never
// sends it again.
TEST_F(EwsSendTest, AConnectionDroppedAfterCreateItemIsInDoubtAndNotSentAgain) {
  ASSERT_THAT(ews::admin("POST", "/faults", {{"operation", "CreateItem"}, {"kind", "drop"}}), IsOk());
  auto ob = outbox();
  auto queued = queue(ob);
  ASSERT_THAT(queued, IsOk());
  auto stats = ob.flush(factory());
  ASSERT_THAT(stats, IsOk());
  EXPECT_THAT(stats->errors, ::testing::ElementsAre(HasSubstr("in doubt")));
  EXPECT_EQ(sent(address_).size(), 1u) << "Exchange acted once";
  OutboxRow r = row(queued->id);
  EXPECT_FALSE(r.handed_over_at.empty());
  now_ += seconds(7200);
  ASSERT_THAT(ob.flush(factory()), IsOk());
  r = row(queued->id);
  EXPECT_EQ(to_string(r.state), "sent");
  EXPECT_TRUE(r.unconfirmed);
  EXPECT_EQ(sent(address_).size(), 1u) << "sent again";
}

TEST_F(EwsSendTest, ADroppedAnswerIsNotAServerAnswerAndHandsOverOnce) {
  ASSERT_THAT(ews::admin("POST", "/faults", {{"operation", "CreateItem"}, {"kind", "drop"}}), IsOk());
  auto s = mb::ews::make_ews_sender(options(address_), SignIn::with_password(ews::at("MB_EWS_PASSWORD")));
  int handovers = 0;
  OutgoingMail mail{"1", {address_, {"alice@example.com"}}, mail_from(address_, "dropped"), {}};
  mail.on_handed_over = [&](const SendResult& so_far) {
    ++handovers;
    EXPECT_EQ(so_far.recipients.size(), 1u);
  };
  auto r = s->send(mail);
  EXPECT_THAT(r, StatusIs(ErrorKind::kNetwork, HasSubstr("may have sent the message")));
  EXPECT_FALSE(is_server_answer(r.status()));
  EXPECT_EQ(handovers, 1);
  EXPECT_EQ(sent(address_).size(), 1u);
}

TEST_F(EwsSendTest, ErrorServerBusyBeforeActingIsWaitedOutAndSentOnce) {
  ASSERT_THAT(ews::admin("POST", "/faults", {{"operation", "CreateItem"}, {"count", 2}, {"back_off_ms", 5}}), IsOk());
  auto ob = outbox();
  auto queued = queue(ob);
  ASSERT_THAT(queued, IsOk());
  auto stats = ob.flush(factory());
  ASSERT_THAT(stats, IsOk());
  EXPECT_EQ(stats->sent, 1);
  EXPECT_EQ(stats->unconfirmed, 0);
  EXPECT_EQ(sent(address_).size(), 1u);
}

TEST_F(EwsSendTest, AWrongPasswordIsAnAuthenticationFailureAndNothingIsSent) {
  auto ob = outbox();
  auto queued = queue(ob);
  ASSERT_THAT(queued, IsOk());
  auto stats = ob.flush(factory("wrong"));
  ASSERT_THAT(stats, IsOk());
  EXPECT_EQ(stats->sent, 0);
  EXPECT_EQ(stats->retrying, 1);
  EXPECT_THAT(stats->errors, ::testing::ElementsAre(HasSubstr("401")));
  EXPECT_EQ(to_string(row(queued->id).state), "queued");
  EXPECT_TRUE(sent(address_).empty());
}

TEST_F(EwsSendTest, TestConnectionSignsInAndFindsSentItems) {
  auto s = mb::ews::make_ews_sender(options(address_), SignIn::with_password(ews::at("MB_EWS_PASSWORD")));
  ConnectionReport rep = s->test_connection();
  ASSERT_THAT(rep.status, IsOk());
  ASSERT_EQ(rep.steps.size(), 2u);
  EXPECT_EQ(rep.steps[0].name, "sign-in");
  EXPECT_EQ(rep.steps[1].name, "sent-items");
  EXPECT_TRUE(sent(address_).empty()) << "test-connection sends nothing";
}

}  // namespace
}  // namespace mb::itest
