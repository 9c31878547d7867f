// File: tests/integration/ews_test.cpp — the EWS client (connectors/ews/ews_client.h) against
// the EWS stand-in (tests/harness/ews.sh) with each sign-in method: Basic, NTLM through
// libcurl (the stand-in checks the NTLMv2 response against the password; its counters show
// the three messages), NTLM with impersonation, and an OAuth bearer token of the Entra
// stand-in with impersonation; delegate access; X-AnchorMailbox and RequestServerVersion as
// the server saw them; ErrorServerBusy waited out and given up on; refused credentials. And
// the mailbox's reading (ews_mailbox.h): SyncFolderItems paged by its SyncState, GetItem's
// MIME byte for byte (a large binary one too), the size limit, a forgotten SyncState.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "connectors/ews/ews_client.h"
#include "connectors/ews/ews_mailbox.h"
#include "tests/integration/ews_harness.h"
#include "tests/status_matchers.h"

namespace mb::itest {
namespace {

using ::mb::testing::IsOk;
using ::mb::testing::StatusIs;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;

class EwsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (ews::env().empty()) GTEST_SKIP() << "the EWS stand-in is not running";
    ASSERT_THAT(ews::admin("POST", "/stats/reset"), IsOk());
    ASSERT_THAT(ews::admin("POST", "/faults/clear"), IsOk());
  }

  static mb::ews::ClientOptions options(mb::ews::SignInMethod method, const std::string& user,
                                        mb::ews::Access access, const std::string& mailbox) {
    mb::ews::ClientOptions o;
    o.endpoint = ews::at("MB_EWS_URL");
    o.tls.ca_file = ews::at("MB_EWS_CA_FILE");
    o.timeouts.connect = std::chrono::seconds(10);
    o.timeouts.response = std::chrono::seconds(20);
    o.method = method;
    o.user = user;
    o.access = access;
    o.mailbox = mailbox;
    return o;
  }
  static SignIn password(std::string pw = ews::at("MB_EWS_PASSWORD")) {
    return SignIn::with_password(std::move(pw));
  }
  // A fresh mailbox of the stand-in's domain with `n` messages in its inbox.
  static std::string mailbox_with(int n) {
    std::string address = unique_user() + "@" + ews::at("MB_EWS_DOMAIN");
    EXPECT_THAT(ews::admin("POST", "/accounts", {{"upn", address}}), IsOk());
    for (int i = 0; i < n; ++i) {
      EXPECT_THAT(ews::admin("POST", "/deliver",
                             {{"mailbox", address},
                              {"mime", "Subject: m" + std::to_string(i) + "\r\n\r\nbody\r\n"}}),
                  IsOk());
    }
    return address;
  }
  // GetFolder inbox: its TotalCount.
  static Result<int> inbox_count(mb::ews::Client& client) {
    std::string body = "<m:GetFolder><m:FolderShape><t:BaseShape>Default</t:BaseShape></m:FolderShape>"
                       "<m:FolderIds>" + client.folder("inbox") + "</m:FolderIds></m:GetFolder>";
    auto r = client.call("GetFolder", body, true);
    if (!r.ok()) return r.status();
    if (r->messages.size() != 1) return Status(ErrorKind::kProtocol, "one message expected");
    MB_RETURN_IF_ERROR(mb::ews::message_status(r->messages[0], "GetFolder"));
    pugi::xml_node folder = mb::ews::child(mb::ews::child(r->messages[0].node, "Folders"), "Folder");
    return std::stoi(mb::ews::child_text(folder, "TotalCount"));
  }
  static nlohmann::json last_request() {
    auto log = ews::admin("GET", "/requests?limit=1");
    EXPECT_THAT(log, IsOk());
    return log.ok() && !log->empty() ? log->back() : nlohmann::json::object();
  }
};

TEST_F(EwsTest, BasicSignsInToItsOwnMailbox) {
  mb::ews::Client c(options(mb::ews::SignInMethod::kBasic, ews::at("MB_EWS_USER"),
                            mb::ews::Access::kOwn, ews::at("MB_EWS_USER")),
                    password());
  ASSERT_THAT(ews::admin("POST", "/deliver", {{"mailbox", ews::at("MB_EWS_USER")}, {"mime", "Subject: b\r\n\r\nx\r\n"}}),
              IsOk());
  auto n = inbox_count(c);
  ASSERT_THAT(n, IsOk());
  EXPECT_GE(*n, 1);
  nlohmann::json seen = last_request();
  EXPECT_EQ(seen["auth"], "basic");
  EXPECT_EQ(seen["anchor"], ews::at("MB_EWS_USER"));
  EXPECT_EQ(seen["version"], "Exchange2013_SP1");
  EXPECT_EQ(seen["mailbox"], ews::at("MB_EWS_USER"));
}

TEST_F(EwsTest, NtlmSignsInWithTheThreeMessagesAndKeepsTheConnection) {
  mb::ews::Client c(options(mb::ews::SignInMethod::kNtlm, ews::at("MB_EWS_NETBIOS") + "\\helpdesk",
                            mb::ews::Access::kOwn, ews::at("MB_EWS_USER")),
                    password());
  ASSERT_THAT(inbox_count(c), IsOk());
  ASSERT_THAT(inbox_count(c), IsOk());
  auto stats = ews::admin("GET", "/stats");
  ASSERT_THAT(stats, IsOk());
  const auto& n = (*stats)["auth"]["ntlm"];
  EXPECT_EQ(n["negotiate"], 1);
  EXPECT_EQ(n["challenge"], 1);
  EXPECT_EQ(n["authenticate"], 1);
  EXPECT_EQ(n["success"], 1);
  EXPECT_EQ(n["reused"], 1) << "the second call rides the signed-in connection";
  EXPECT_EQ(last_request()["anchor"], ews::at("MB_EWS_USER"));
}

TEST_F(EwsTest, NtlmServiceAccountImpersonatesTheMailbox) {
  std::string mailbox = mailbox_with(3);
  mb::ews::Client c(options(mb::ews::SignInMethod::kNtlm, ews::at("MB_EWS_SERVICE_ACCOUNT"),
                            mb::ews::Access::kImpersonation, mailbox),
                    password());
  auto n = inbox_count(c);
  ASSERT_THAT(n, IsOk());
  EXPECT_EQ(*n, 3);
  nlohmann::json seen = last_request();
  EXPECT_EQ(seen["caller"], ews::at("MB_EWS_SERVICE_ACCOUNT"));
  EXPECT_EQ(seen["mailbox"], mailbox);
  EXPECT_EQ(seen["impersonated"], true);
  EXPECT_EQ(seen["anchor"], mailbox);
}

TEST_F(EwsTest, BearerTokenWithImpersonation) {
  if (ews::at("MB_EWS_BEARER") != "1") GTEST_SKIP() << "the stand-in runs without Entra";
  std::string mailbox = mailbox_with(2);
  SignIn s;
  s.with_token = [](const std::function<Status(const std::string&)>& fn) -> Status {
    auto token = ews::exchange_token();
    if (!token.ok()) return token.status();
    return fn(*token);
  };
  mb::ews::Client c(options(mb::ews::SignInMethod::kBearer, "", mb::ews::Access::kImpersonation, mailbox), s);
  auto n = inbox_count(c);
  ASSERT_THAT(n, IsOk());
  EXPECT_EQ(*n, 2);
  EXPECT_EQ(last_request()["auth"], "bearer");
  // Without impersonation an app-only token is refused, in words that name the fix.
  mb::ews::Client own(options(mb::ews::SignInMethod::kBearer, "", mb::ews::Access::kOwn, mailbox), s);
  EXPECT_THAT(inbox_count(own), StatusIs(ErrorKind::kAuth, HasSubstr("impersonation")));
}

TEST_F(EwsTest, DelegateWithFullAccessAndWithout) {
  mb::ews::Client ok(options(mb::ews::SignInMethod::kBasic, ews::at("MB_EWS_DELEGATE"),
                             mb::ews::Access::kDelegate, ews::at("MB_EWS_USER")),
                     password());
  EXPECT_THAT(inbox_count(ok), IsOk());
  std::string other = mailbox_with(0);
  mb::ews::Client no(options(mb::ews::SignInMethod::kBasic, ews::at("MB_EWS_DELEGATE"),
                             mb::ews::Access::kDelegate, other),
                     password());
  EXPECT_THAT(inbox_count(no), StatusIs(ErrorKind::kAuth, HasSubstr("FullAccess")));
  mb::ews::Client denied(options(mb::ews::SignInMethod::kNtlm, ews::at("MB_EWS_USER"),
                                 mb::ews::Access::kImpersonation, other),
                         password());
  EXPECT_THAT(inbox_count(denied), StatusIs(ErrorKind::kAuth, HasSubstr("ErrorImpersonateUserDenied")));
}

TEST_F(EwsTest, WrongPasswordsAreAuthFailuresWithoutTheSecret) {
  for (auto method : {mb::ews::SignInMethod::kBasic, mb::ews::SignInMethod::kNtlm}) {
    mb::ews::Client c(options(method, ews::at("MB_EWS_USER"), mb::ews::Access::kOwn, ews::at("MB_EWS_USER")),
                      password("not-the-password-42"));
    EXPECT_THAT(inbox_count(c), StatusIs(ErrorKind::kAuth, AllOf(HasSubstr("HTTP 401"),
                                                                 Not(HasSubstr("not-the-password-42")))));
  }
}

TEST_F(EwsTest, ServerBusyIsWaitedOutThenReportedAsThrottled) {
  ASSERT_THAT(ews::admin("POST", "/faults", {{"code", "ErrorServerBusy"}, {"back_off_ms", 300}, {"count", 2}}),
              IsOk());
  mb::ews::ClientOptions o = options(mb::ews::SignInMethod::kBasic, ews::at("MB_EWS_USER"),
                                     mb::ews::Access::kOwn, ews::at("MB_EWS_USER"));
  auto started = std::chrono::steady_clock::now();
  mb::ews::Client c(o, password());
  ASSERT_THAT(inbox_count(c), IsOk());
  EXPECT_GE(std::chrono::steady_clock::now() - started, std::chrono::milliseconds(600));
  auto stats = ews::admin("GET", "/stats");
  ASSERT_THAT(stats, IsOk());
  EXPECT_EQ((*stats)["faults_served"], 2);

  ASSERT_THAT(ews::admin("POST", "/faults", {{"code", "ErrorServerBusy"}, {"back_off_ms", 200}, {"count", 10}}),
              IsOk());
  o.max_attempts = 3;
  mb::ews::Client limited(o, password());
  auto r = inbox_count(limited);
  EXPECT_THAT(r, StatusIs(ErrorKind::kThrottled, HasSubstr("ErrorServerBusy")));
  EXPECT_EQ(r.status().retry_after(), std::chrono::seconds(1));
  ASSERT_THAT(ews::admin("POST", "/faults/clear"), IsOk());
}

std::string raw_message(int i, size_t body_bytes = 20) {
  std::string body;
  for (size_t k = 0; k < body_bytes; ++k) body += static_cast<char>(k % 94 + 33);
  return "From: a@example.com\r\nTo: x@corp.example\r\nSubject: message " + std::to_string(i) +
         "\r\nMessage-ID: <" + std::to_string(i) + "." + unique_user() + "@test>\r\n\r\n" + body + "\r\n";
}

class EwsMailboxTest : public EwsTest {
 protected:
  std::unique_ptr<Mailbox> mailbox(const std::string& address, uint64_t max_bytes = 25u << 20) {
    mb::ews::MailboxOptions o;
    o.client = options(mb::ews::SignInMethod::kNtlm, ews::at("MB_EWS_SERVICE_ACCOUNT"),
                       mb::ews::Access::kImpersonation, address);
    o.max_message_bytes = max_bytes;
    return mb::ews::make_ews_mailbox(o, password());
  }
  static std::vector<std::string> deliver(const std::string& address, const std::vector<std::string>& raws) {
    nlohmann::json messages = nlohmann::json::array();
    for (const auto& r : raws) messages.push_back({{"mime_base64", base64(r)}});
    auto answer = ews::admin("POST", "/deliver", {{"mailbox", address}, {"messages", messages}});
    EXPECT_THAT(answer, IsOk());
    std::vector<std::string> ids;
    if (answer.ok()) {
      for (const auto& item : (*answer)["items"]) ids.push_back(item["id"]);
    }
    return ids;
  }
  static std::string base64(const std::string& s) {
    static const char* k = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    for (size_t i = 0; i < s.size(); i += 3) {
      uint32_t n = static_cast<uint8_t>(s[i]) << 16;
      if (i + 1 < s.size()) n |= static_cast<uint8_t>(s[i + 1]) << 8;
      if (i + 2 < s.size()) n |= static_cast<uint8_t>(s[i + 2]);
      out += k[n >> 18 & 63];
      out += k[n >> 12 & 63];
      out += i + 1 < s.size() ? k[n >> 6 & 63] : '=';
      out += i + 2 < s.size() ? k[n & 63] : '=';
    }
    return out;
  }
};

TEST_F(EwsMailboxTest, TestConnectionSignsInOpensAndCounts) {
  std::string address = mailbox_with(2);
  auto report = mailbox(address)->test_connection();
  EXPECT_THAT(report.status, IsOk());
  ASSERT_EQ(report.steps.size(), 5u);
  EXPECT_EQ(report.steps[0].name, "endpoint");
  EXPECT_EQ(report.steps[1].name, "sign-in");
  EXPECT_THAT(report.steps[1].detail, HasSubstr("Exchange 15.2"));
  EXPECT_EQ(report.steps[2].name, "access");
  EXPECT_EQ(report.steps[3].name, "open-folder");
  EXPECT_EQ(report.steps[4].detail, "2 messages, 2 unread");
  EXPECT_EQ(report.message_count, 2u);
  mb::ews::MailboxOptions bad;
  bad.client = options(mb::ews::SignInMethod::kNtlm, ews::at("MB_EWS_SERVICE_ACCOUNT"),
                       mb::ews::Access::kImpersonation, address);
  auto refused = mb::ews::make_ews_mailbox(bad, password("wrong"))->test_connection();
  EXPECT_THAT(refused.status, StatusIs(ErrorKind::kAuth, HasSubstr("HTTP 401")));
  ASSERT_EQ(refused.steps.size(), 2u);
  EXPECT_TRUE(refused.steps[0].ok);
  EXPECT_EQ(refused.steps[1].name, "sign-in");
  EXPECT_FALSE(refused.steps[1].ok);
}

TEST_F(EwsMailboxTest, SyncStatePagesThroughTheFolderAndFetchGivesTheMimeByteForByte) {
  std::string address = mailbox_with(0);
  std::vector<std::string> raws;
  for (int i = 0; i < 5; ++i) raws.push_back(raw_message(i));
  std::vector<std::string> ids = deliver(address, raws);
  auto mbx = mailbox(address);
  std::vector<std::string> keys;
  std::string state;
  for (int page = 0; page < 3; ++page) {
    auto p = mbx->list_pending(2, state);
    ASSERT_THAT(p, IsOk());
    EXPECT_EQ(p->more, page < 2) << page;
    keys.insert(keys.end(), p->keys.begin(), p->keys.end());
    state = p->next_state;
  }
  EXPECT_EQ(keys, ids) << "every message once, oldest first";
  auto again = mbx->list_pending(10, state);
  ASSERT_THAT(again, IsOk());
  EXPECT_TRUE(again->keys.empty());
  std::vector<std::string> got;
  ASSERT_THAT(mbx->fetch(keys, [&](const std::string&, Result<std::string> raw) {
    EXPECT_THAT(raw, IsOk());
    got.push_back(raw.ok() ? *raw : "");
    return Status::Ok();
  }), IsOk());
  EXPECT_EQ(got, raws);
  // A message delivered later is the only one the stored state lists.
  std::vector<std::string> later = deliver(address, {raw_message(9)});
  auto next = mbx->list_pending(10, state);
  ASSERT_THAT(next, IsOk());
  EXPECT_EQ(next->keys, later);
}

// SyncFolderItems answers at most 512 changes; list_pending pages on up to its limit, so one
// pass takes max_per_poll messages, and `more` means more than the limit was waiting.
TEST_F(EwsMailboxTest, ListPendingPagesPastSyncFolderItemsLimitUpToItsOwn) {
  std::string address = mailbox_with(0);
  std::vector<std::string> raws;
  for (int i = 0; i < 600; ++i) raws.push_back("Subject: p" + std::to_string(i) + "\r\n\r\nx\r\n");
  std::vector<std::string> ids = deliver(address, raws);
  ASSERT_EQ(ids.size(), 600u);
  auto mbx = mailbox(address);
  auto part = mbx->list_pending(550, "");
  ASSERT_THAT(part, IsOk());
  EXPECT_TRUE(part->more);
  auto rest = mbx->list_pending(550, part->next_state);
  ASSERT_THAT(rest, IsOk());
  EXPECT_FALSE(rest->more);
  std::vector<std::string> keys = part->keys;
  EXPECT_EQ(keys.size(), 550u);
  keys.insert(keys.end(), rest->keys.begin(), rest->keys.end());
  EXPECT_EQ(keys, ids) << "every message once, oldest first";
  auto all = mbx->list_pending(1000, "");
  ASSERT_THAT(all, IsOk());
  EXPECT_FALSE(all->more);
  EXPECT_EQ(all->keys, ids);
  auto stats = ews::admin("GET", "/stats");
  ASSERT_THAT(stats, IsOk());
  EXPECT_EQ((*stats)["by_operation"]["SyncFolderItems"], 5) << "512 + 38, 50, then 512 + 88";
}

TEST_F(EwsMailboxTest, ALargeBinaryMessageStreamsAndTheLimitHolds) {
  std::string address = mailbox_with(0);
  std::string big = raw_message(1, 3u << 20);
  big[100] = '\0';  // bytes, not text
  std::string small = raw_message(2);
  std::vector<std::string> ids = deliver(address, {big, small});
  auto mbx = mailbox(address, 1u << 20);
  std::vector<Result<std::string>> got;
  ASSERT_THAT(mbx->fetch(ids, [&](const std::string&, Result<std::string> raw) {
    got.push_back(std::move(raw));
    return Status::Ok();
  }), IsOk());
  ASSERT_EQ(got.size(), 2u);
  EXPECT_THAT(got[0], StatusIs(ErrorKind::kTooLarge, HasSubstr("limit")));
  ASSERT_THAT(got[1], IsOk());
  EXPECT_EQ(*got[1], small);
  auto whole = mailbox(address);
  ASSERT_THAT(whole->fetch({ids[0]}, [&](const std::string&, Result<std::string> raw) {
    EXPECT_THAT(raw, IsOk());
    EXPECT_TRUE(raw.ok() && *raw == big) << "3 MiB of MIME, byte for byte";
    return Status::Ok();
  }), IsOk());
}

TEST_F(EwsMailboxTest, AnUnknownSyncStateStartsOverAndAGoneItemIsNotFound) {
  std::string address = mailbox_with(2);
  auto mbx = mailbox(address);
  auto p = mbx->list_pending(10, "AEbJ94eMOAAA=");
  ASSERT_THAT(p, IsOk());
  EXPECT_EQ(p->keys.size(), 2u);
  ASSERT_THAT(ews::admin("POST", "/remove", {{"id", p->keys[0]}}), IsOk());
  ASSERT_THAT(mbx->fetch({p->keys[0]}, [&](const std::string&, Result<std::string> raw) {
    EXPECT_THAT(raw, StatusIs(ErrorKind::kNotFound, HasSubstr("ErrorItemNotFound")));
    return Status::Ok();
  }), IsOk());
}

}  // namespace
}  // namespace mb::itest
