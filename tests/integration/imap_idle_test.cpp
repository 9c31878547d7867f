// File: tests/integration/imap_idle_test.cpp — push on the private Dovecot: a mailbox waiting
// in IDLE hears of a message another client APPENDs within seconds, and lists it on the same
// connection afterwards.
#include <future>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "connectors/registry.h"
#include "core/cancel.h"
#include "core/config.h"
#include "core/line.h"
#include "core/net.h"
#include "tests/integration/harness.h"
#include "tests/status_matchers.h"

namespace mb::itest {
namespace {
using ::mb::testing::IsOk;
using ::mb::testing::StatusIs;
using Clock = std::chrono::steady_clock;
using std::chrono::seconds;

constexpr const char* kPasswordVar = "MB_TEST_PASSWORD";

std::string quoted(const std::string& s) {
  std::string q = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') q += '\\';
    q += c;
  }
  return q + "\"";
}

// Reads lines up to the tagged answer to `tag`; OK or the line that was not.
Status tagged_ok(LineChannel& ch, const std::string& tag) {
  for (;;) {
    auto line = ch.read_line();
    if (!line.ok()) return line.status();
    if (line->rfind(tag + " ", 0) != 0) continue;
    if (line->rfind(tag + " OK", 0) == 0) return Status::Ok();
    return Status(ErrorKind::kRejected, *line);
  }
}

// APPENDs `raw` to the user's INBOX on a connection of its own, as another client would.
Status append_over_imap(const HarnessEnv& env, const std::string& user, const std::string& raw) {
  TlsOptions tls;
  tls.ca_file = env.ca_file;
  Timeouts t;
  t.connect = seconds(10);
  t.response = seconds(10);
  auto stream = connect_stream("localhost", env.imaps_port, Security::kTls, tls, t);
  if (!stream.ok()) return stream.status();
  LineChannel ch(std::move(*stream));
  MB_RETURN_IF_ERROR(ch.read_line().status());  // the greeting
  MB_RETURN_IF_ERROR(ch.write_line("b1 LOGIN " + quoted(user) + " " + quoted(env.password)));
  MB_RETURN_IF_ERROR(tagged_ok(ch, "b1"));
  MB_RETURN_IF_ERROR(ch.write_line("b2 APPEND INBOX {" + std::to_string(raw.size()) + "}"));
  auto go = ch.read_line();
  if (!go.ok()) return go.status();
  if (go->rfind("+", 0) != 0) return Status(ErrorKind::kRejected, "APPEND refused: " + *go);
  MB_RETURN_IF_ERROR(ch.write_raw(raw));
  MB_RETURN_IF_ERROR(ch.write_line(""));
  MB_RETURN_IF_ERROR(tagged_ok(ch, "b2"));
  ch.write_line("b3 LOGOUT").ignore();
  return Status::Ok();
}

class ImapIdleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto env = load_harness();
    ASSERT_THAT(env, IsOk());
    env_ = *env;
    user_ = unique_user();
    ImapBox b;
    b.name = "support";
    b.user = user_;
    ::setenv(kPasswordVar, env_.password.c_str(), 1);
    auto cfg = parse_config(config_toml(dir_.file("mailbridge.db"), imap_mailbox_toml(env_, b)),
                            "idle-test", dir_.path());
    ASSERT_THAT(cfg, IsOk());
    cfg_ = std::move(*cfg);
    auto mbx = make_mailbox(cfg_.mailboxes.at(0), cfg_);
    ASSERT_THAT(mbx, IsOk());
    mbx_ = std::move(*mbx);
  }

  HarnessEnv env_;
  std::string user_;
  TempDir dir_;
  Config cfg_;
  std::unique_ptr<Mailbox> mbx_;
};

TEST_F(ImapIdleTest, AppendedMessageEndsTheWaitWithinSecondsAndIsListed) {
  ASSERT_TRUE(mbx_->capabilities().push);
  auto first = mbx_->list_pending(50, "");
  ASSERT_THAT(first, IsOk());
  EXPECT_TRUE(first->keys.empty());
  auto waiting = std::async(std::launch::async,
                            [&] { return mbx_->wait_for_change(Clock::now() + seconds(60)); });
  ASSERT_THAT(append_over_imap(env_, user_,
                               make_message({.subject = "Pushed", .text = "New mail.\n"})),
              IsOk());
  ASSERT_EQ(waiting.wait_for(seconds(5)), std::future_status::ready)
      << "no kChanged within 5 s of the APPEND";
  auto r = waiting.get();
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ(*r, ChangeWait::kChanged);
  auto next = mbx_->list_pending(50, first->next_state);
  ASSERT_THAT(next, IsOk());
  EXPECT_EQ(next->keys.size(), 1u);
  mbx_->close();
}

TEST_F(ImapIdleTest, QuietFolderTimesOutAndCancelEndsTheWaitAtOnce) {
  ASSERT_THAT(mbx_->list_pending(50, ""), IsOk());
  auto start = Clock::now();
  auto r = mbx_->wait_for_change(start + std::chrono::milliseconds(500));
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ(*r, ChangeWait::kTimedOut);
  EXPECT_GE(Clock::now() - start, std::chrono::milliseconds(500));
  Cancel cancel;
  auto waiting = std::async(std::launch::async, [&] {
    CancelScope scope(&cancel);
    return mbx_->wait_for_change(Clock::now() + seconds(120));
  });
  // Whether the IDLE has begun or not, the Cancel ends the wait.
  EXPECT_EQ(waiting.wait_for(std::chrono::milliseconds(300)), std::future_status::timeout);
  cancel.fire();
  ASSERT_EQ(waiting.wait_for(seconds(3)), std::future_status::ready);
  EXPECT_THAT(waiting.get().status(), StatusIs(ErrorKind::kCancelled, ::testing::_));
  // The next call opens a new connection and lists as before.
  EXPECT_THAT(mbx_->list_pending(50, ""), IsOk());
  mbx_->close();
}

}  // namespace
}  // namespace mb::itest
