// File: tests/integration/graph_sender_test.cpp — the Graph Sender against the Graph stand-in
// (tokens from the Entra stand-in): sendMail with our MIME, JSON with saveToSentItems =
// false, a 4 MB attachment through an upload session, the sender's test-connection, and a
// sendMail answered 504 or dropped after the stand-in recorded the mail (in doubt, sent once)
// against a 429 and a 503 before it (repeated).
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <openssl/sha.h>

#include <cstdlib>

#include "auth/auth_context.h"
#include "auth/base64.h"
#include "connectors/registry.h"
#include "tests/integration/entra_harness.h"
#include "tests/integration/graph_harness.h"
#include "tests/integration/harness.h"
#include "tests/status_matchers.h"

namespace mb::itest {
namespace {

using ::mb::testing::IsOk;
using ::mb::testing::StatusIs;
using ::testing::AllOf;
using ::testing::AnyOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

std::string sha256_hex_of(const std::string& data) {
  unsigned char md[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), md);
  std::string out;
  for (unsigned char c : md) out += fmt::format("{:02x}", c);
  return out;
}

class GraphSenderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(graph::env().empty());
    ASSERT_THAT(graph::clear_faults(), IsOk());
    user_ = unique_user();
    dir_ = std::make_unique<TempDir>();
    ::setenv(graph::kSecretVar, graph::app_secret().c_str(), 1);
  }

  // The stand-in's app and mailbox, plus a [[sender]] for the same user.
  Result<std::unique_ptr<Sender>> sender(bool save_to_sent_items) {
    std::string toml = config_toml(
        dir_->file("mailbridge.db"),
        graph::mailbox_toml({.user = user_}) +
            fmt::format("\n[[sender]]\nname = \"outgoing\"\ntype = \"graph\"\napp = "
                        "\"graph-app\"\nuser = {}\nendpoint = {}\nsave_to_sent_items = {}\n"
                        "tls = {{ ca_file = {} }}\n",
                        toml_quote(graph::upn(user_)), toml_quote(graph::at("MB_GRAPH_URL")),
                        save_to_sent_items ? "true" : "false",
                        toml_quote(graph::at("MB_GRAPH_CA_FILE"))));
    auto cfg = parse_config(toml, "graph_sender_test", dir_->path());
    if (!cfg.ok()) return cfg.status();
    cfg_ = std::move(*cfg);
    auto auth = AuthContext::create(cfg_);
    if (!auth.ok()) return auth.status();
    auth_ = std::move(*auth);
    return make_sender(cfg_.senders.front(), cfg_, auth_.get());
  }

  Result<nlohmann::json> last_sent() {
    auto sent = graph::admin("GET", "/sent?user=" + graph::url_encode(graph::upn(user_)));
    if (!sent.ok()) return sent.status();
    const nlohmann::json& list = sent->is_array() ? *sent : (*sent)["sent"];
    if (!list.is_array() || list.empty()) {
      return Status(ErrorKind::kNotFound, "nothing sent: " + sent->dump().substr(0, 300));
    }
    return list.back();
  }

  std::string from() const { return graph::upn(user_); }

  // How many messages the stand-in recorded as sent by the user.
  size_t sent_count() {
    auto sent = graph::admin("GET", "/sent?user=" + graph::url_encode(graph::upn(user_)));
    if (!sent.ok()) return 0;
    const nlohmann::json& list = sent->is_array() ? *sent : (*sent)["sent"];
    return list.is_array() ? list.size() : 0;
  }
  std::string small_mail() const {
    return "From: " + from() + "\r\nTo: dave@example.com\r\nSubject: once\r\n"
           "Message-ID: <once-1@mailbridge.test>\r\n\r\nonly once\r\n";
  }

  std::string user_;
  std::unique_ptr<TempDir> dir_;
  Config cfg_;
  std::unique_ptr<AuthContext> auth_;
};

TEST_F(GraphSenderTest, SendsOurMimeAndRecordsItAsQueued) {
  auto s = sender(true);
  ASSERT_THAT(s, IsOk());
  std::string raw = "From: " + from() + "\r\nTo: alice@example.com\r\nSubject: [Ticket - 12] "
                    "Printer on fire\r\nMessage-ID: <t12-1@mailbridge.test>\r\nMIME-Version: 1.0"
                    "\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nWe are on it.\r\n";
  auto sent = (*s)->send({"ob-1", {from(), {"alice@example.com", "audit@example.com"}}, raw, {}});
  ASSERT_THAT(sent, IsOk());
  EXPECT_TRUE(sent->queued_only);
  EXPECT_FALSE(sent->server_id.empty());
  auto rec = last_sent();
  ASSERT_THAT(rec, IsOk());
  EXPECT_EQ((*rec)["via"], "mime");
  EXPECT_EQ((*rec)["subject"], "[Ticket - 12] Printer on fire");
  EXPECT_EQ((*rec)["internetMessageId"], "<t12-1@mailbridge.test>");
  EXPECT_THAT((*rec)["to"], ElementsAre("alice@example.com"));
  EXPECT_THAT((*rec)["bcc"], ElementsAre("audit@example.com"));
  (*s)->close();
}

TEST_F(GraphSenderTest, SendsJsonWithoutSentItemsCopyAndA4MbAttachmentThroughAnUploadSession) {
  auto s = sender(false);
  ASSERT_THAT(s, IsOk());
  std::string data(4 * 1024 * 1024, '\0');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>((i * 2654435761u) >> 13);
  std::string b64 = base64_encode(data);
  std::string wrapped;
  for (size_t i = 0; i < b64.size(); i += 76) wrapped += b64.substr(i, 76) + "\r\n";
  std::string raw = "From: " + from() + "\r\nTo: bob@example.com\r\nSubject: logs for #31\r\n"
                    "Message-ID: <t31-1@mailbridge.test>\r\nMIME-Version: 1.0\r\n"
                    "Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n--b1\r\n"
                    "Content-Type: text/plain\r\n\r\nThe logs are attached.\r\n--b1\r\n"
                    "Content-Type: application/octet-stream\r\nContent-Disposition: attachment;"
                    " filename=\"trace.bin\"\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
                    wrapped + "--b1--\r\n";
  auto sent = (*s)->send({"ob-2", {from(), {"bob@example.com"}}, raw, {}});
  ASSERT_THAT(sent, IsOk());
  EXPECT_TRUE(sent->queued_only);
  auto rec = last_sent();
  ASSERT_THAT(rec, IsOk());
  EXPECT_EQ((*rec)["via"], "draft");
  EXPECT_EQ((*rec)["subject"], "logs for #31");
  ASSERT_EQ((*rec)["attachments"].size(), 1u) << rec->dump().substr(0, 500);
  EXPECT_EQ((*rec)["attachments"][0]["name"], "trace.bin");
  EXPECT_EQ((*rec)["attachments"][0]["size"], data.size());
  EXPECT_EQ((*rec)["attachments"][0]["sha256"], sha256_hex_of(data));
  // Small and without a Sent Items copy: one sendMail with JSON.
  std::string small = "From: " + from() + "\r\nTo: carol@example.com\r\nSubject: quick\r\n"
                      "Message-ID: <q-1@mailbridge.test>\r\n\r\nshort\r\n";
  ASSERT_THAT((*s)->send({"ob-3", {from(), {"carol@example.com"}}, small, {}}), IsOk());
  rec = last_sent();
  ASSERT_THAT(rec, IsOk());
  EXPECT_EQ((*rec)["via"], "json");
  EXPECT_EQ((*rec)["saveToSentItems"], false);
  EXPECT_EQ((*rec)["internetMessageId"], "<q-1@mailbridge.test>");
}

// The stand-in records the mail, then answers 504 (or closes the connection without an
// answer): the sender does not repeat sendMail (on a kept-alive connection warmed by a
// first send, where cpprestsdk alone would re-send it), the outbox heard of the hand-over,
// and the error is one the outbox holds in doubt.
TEST_F(GraphSenderTest, ASendMailAnswered504OrDroppedAfterSendingIsInDoubtAndSentOnce) {
  for (bool save : {true, false}) {
    for (const char* fault : {"504", "drop"}) {
      SCOPED_TRACE(std::string(save ? "MIME " : "JSON ") + fault);
      user_ = unique_user();
      auto s = sender(save);
      ASSERT_THAT(s, IsOk());
      ASSERT_THAT((*s)->send({"ob-0", {from(), {"dave@example.com"}}, small_mail(), {}}), IsOk());
      nlohmann::json f = {{"route", "sendMail"}, {"user", graph::upn(user_)}, {"after", true}};
      if (std::string(fault) == "drop") f["kind"] = "drop";
      else f["status"] = 504;
      ASSERT_THAT(graph::add_fault(f), IsOk());
      int handovers = 0;
      OutgoingMail mail{"ob-1", {from(), {"dave@example.com"}}, small_mail(), {}};
      mail.on_handed_over = [&](const SendResult&) { ++handovers; };
      auto sent = (*s)->send(mail);
      EXPECT_THAT(sent, StatusIs(ErrorKind::kNetwork, AnyOf(HasSubstr("may have sent"),
                                                            HasSubstr("may have acted on it"))));
      EXPECT_FALSE(is_server_answer(sent.status()));
      EXPECT_EQ(handovers, 1);
      EXPECT_EQ(sent_count(), 2u) << "sendMail was sent again";
      ASSERT_THAT(graph::clear_faults(), IsOk());
    }
  }
}

// 429 and 503 come before Graph acts on the request: sendMail goes again and the mail is
// sent once.
TEST_F(GraphSenderTest, A429AndA503BeforeSendMailAreRepeated) {
  auto s = sender(true);
  ASSERT_THAT(s, IsOk());
  for (int status : {429, 503}) {
    ASSERT_THAT(graph::add_fault({{"status", status}, {"route", "sendMail"},
                                  {"user", graph::upn(user_)}, {"retry_after", 0}}),
                IsOk());
  }
  int handovers = 0;
  OutgoingMail mail{"ob-1", {from(), {"dave@example.com"}}, small_mail(), {}};
  mail.on_handed_over = [&](const SendResult&) { ++handovers; };
  ASSERT_THAT((*s)->send(mail), IsOk());
  EXPECT_EQ(sent_count(), 1u);
  EXPECT_EQ(handovers, 1);
  auto faults = graph::admin("GET", "/faults");
  ASSERT_THAT(faults, IsOk());
  EXPECT_TRUE((*faults)["faults"].empty()) << faults->dump();
}

TEST_F(GraphSenderTest, TestConnectionGetsATokenAndChecksMailSend) {
  auto s = sender(true);
  ASSERT_THAT(s, IsOk());
  ConnectionReport rep = (*s)->test_connection();
  ASSERT_THAT(rep.status, IsOk());
  ASSERT_EQ(rep.steps.size(), 2u);
  EXPECT_EQ(rep.steps[0].name, "token");
  EXPECT_EQ(rep.steps[1].name, "permission");
  EXPECT_THAT(rep.steps[1].detail, HasSubstr("Mail.Send granted"));
  for (const auto& step : rep.steps) {
    EXPECT_THAT(step.detail, Not(HasSubstr(graph::app_secret())));
  }
}

// `mailbridge send-test` on a Graph sender whose app has Mail.Send only (no User.Read.All):
// every step passes and is marked so, nothing warns about Mail.Send, and the endpoint is
// printed with its own port only.
TEST_F(GraphSenderTest, SendTestWithMailSendOnlyPassesEveryStep) {
  auto app = entra::register_app({{"secret", true}, {"roles", {{"graph", {"Mail.Send"}}}}});
  ASSERT_THAT(app.status(), IsOk());
  std::string tables =
      graph::mailbox_toml({.user = user_, .client_id = (*app)["client_id"]}) +
      fmt::format("\n[[sender]]\nname = \"outgoing\"\ntype = \"graph\"\napp = \"graph-app\"\n"
                  "user = {}\nendpoint = {}\ntls = {{ ca_file = {} }}\n",
                  toml_quote(graph::upn(user_)), toml_quote(graph::at("MB_GRAPH_URL")),
                  toml_quote(graph::at("MB_GRAPH_CA_FILE")));
  std::string config = dir_->file("mailbridge.toml");
  ASSERT_THAT(write_file(config, config_toml(dir_->file("mb.db"), tables)), IsOk());
  RunOptions opts;
  opts.env = {{graph::kSecretVar, (*app)["secret"].get<std::string>()}};
  RunResult r = run_mailbridge(
      {"--config", config, "send-test", "outgoing", "--to", "erin@example.com"}, opts);
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_THAT(r.out, AllOf(HasSubstr("✓ token"), HasSubstr("✓ permission"),
                           HasSubstr("✓ send"), Not(HasSubstr("✗")),
                           Not(HasSubstr("not readable")),
                           HasSubstr("graph " + graph::at("MB_GRAPH_URL") + ",")))
      << r.describe();
  EXPECT_THAT(r.out, Not(HasSubstr(":443"))) << r.describe();
  EXPECT_EQ(sent_count(), 1u);
}

}  // namespace
}  // namespace mb::itest
