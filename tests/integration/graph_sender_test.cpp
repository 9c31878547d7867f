// File: tests/integration/graph_sender_test.cpp — the Graph Sender against the Graph stand-in
// (tokens from the Entra stand-in): sendMail with our MIME, JSON with saveToSentItems =
// false, a 4 MB attachment through an upload session, and the sender's test-connection.
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

TEST_F(GraphSenderTest, TestConnectionGetsATokenAndReachesTheMailbox) {
  auto s = sender(true);
  ASSERT_THAT(s, IsOk());
  ConnectionReport rep = (*s)->test_connection();
  ASSERT_THAT(rep.status, IsOk());
  ASSERT_EQ(rep.steps.size(), 2u);
  EXPECT_EQ(rep.steps[0].name, "token");
  EXPECT_EQ(rep.steps[1].name, "mailbox");
  for (const auto& step : rep.steps) {
    EXPECT_THAT(step.detail, Not(HasSubstr(graph::app_secret())));
  }
}

}  // namespace
}  // namespace mb::itest
