// File: tests/integration/graph_test.cpp — Microsoft Graph against the Graph stand-in
// (tests/harness/graph.sh, tokens from the Entra stand-in): the ingest suite over Graph, then
// what only Graph checks: exactly-once across a SIGKILL, a storm of 429s, a delta token
// reset mid-way, a 401 answered by a fresh token, permissions and the application access
// policy, the concurrency limit, test-connection, and requests per message.
#include <signal.h>

#include <chrono>
#include <set>
#include <thread>

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/integration/entra_harness.h"
#include "tests/integration/graph_harness.h"
#include "tests/integration/harness.h"
#include "tests/integration/ingest_suite.h"
#include "tests/status_matchers.h"

namespace mb::itest {
namespace {

using ::mb::testing::IsOk;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::UnorderedElementsAreArray;

class GraphServer : public MailServer {
 public:
  Status deliver(const std::string& user, const std::string& raw) override {
    return graph::deliver(user, raw);
  }
  Result<std::vector<ServerMessage>> list(const std::string& user,
                                          const std::string& folder) override {
    return graph::list(user, folder);
  }
  std::string mailbox_toml(const std::string& name, const std::string& user,
                           const std::string& after, int max_per_poll) override {
    return graph::mailbox_toml(
        {.name = name, .user = user, .after = after, .max_per_poll = max_per_poll});
  }
  std::vector<std::pair<std::string, std::string>> secrets_env() const override {
    return {{graph::kSecretVar, graph::app_secret()}};
  }
};

INSTANTIATE_TEST_SUITE_P(
    Graph, IngestSuite,
    ::testing::Values(MailServerParam{"graph", [] { return std::make_unique<GraphServer>(); }}),
    param_name);

// Fixture for the Graph-only tests: a fresh mailbox and store per test, no faults left over.
class GraphTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(graph::env().empty());
    ASSERT_THAT(graph::clear_faults(), IsOk());
    ASSERT_THAT(graph::admin("POST", "/settings", {{"latency_ms", 0}, {"mailbox_concurrency", 4}}),
                IsOk());
    user_ = unique_user();
    dir_ = std::make_unique<TempDir>();
  }
  void TearDown() override {
    EXPECT_THAT(graph::clear_faults(), IsOk());
    EXPECT_THAT(graph::admin("POST", "/settings", {{"latency_ms", 0}}), IsOk());
    if (HasFailure() && dir_) {
      dir_->keep();
      std::fprintf(stderr, "kept %s (Graph user %s)\n", dir_->path().c_str(),
                   graph::upn(user_).c_str());
    }
  }

  graph::GraphBox box(const std::string& after = "mark-read", int max_per_poll = 50) {
    return {.user = user_, .after = after, .max_per_poll = max_per_poll};
  }
  void configure(const graph::GraphBox& b) {
    ASSERT_THAT(write_file(config(), config_toml(db(), graph::mailbox_toml(b))), IsOk());
  }
  std::string config() const { return dir_->file("mailbridge.toml"); }
  std::string db() const { return dir_->file("mailbridge.db"); }
  RunOptions options() const {
    RunOptions o;
    o.env = {{graph::kSecretVar, graph::app_secret()}};
    o.cwd = dir_->path();
    o.timeout = std::chrono::seconds(300);
    return o;
  }
  RunResult mailbridge(const std::vector<std::string>& args) {
    std::vector<std::string> full = {"--config", config()};
    full.insert(full.end(), args.begin(), args.end());
    return run_mailbridge(full, options());
  }
  nlohmann::json json_of(const std::vector<std::string>& args) {
    RunResult r = mailbridge(args);
    EXPECT_EQ(r.exit_code, 0) << r.describe();
    return parse_json(r.out);
  }
  std::vector<std::string> ticket_subjects() {
    std::vector<std::string> out;
    auto j = json_of({"tickets", "list", "--json"});
    EXPECT_TRUE(j.is_array()) << j.dump();
    if (j.is_array()) {
      for (const auto& t : j) out.push_back(t.value("subject", ""));
    }
    return out;
  }
  nlohmann::json status() {
    auto j = json_of({"status", "--json"});
    EXPECT_TRUE(j.is_array() && j.size() == 1) << j.dump();
    return j.is_array() && !j.empty() ? j[0] : nlohmann::json::object();
  }
  // Delivers n messages "<prefix> NNN"; returns their subjects.
  std::vector<std::string> deliver_n(int n, const std::string& prefix) {
    std::vector<std::string> raws, subjects;
    for (int i = 0; i < n; ++i) {
      subjects.push_back(fmt::format("{} {:03}", prefix, i));
      raws.push_back(make_message({.subject = subjects.back(), .text = subjects.back() + "\n"}));
    }
    EXPECT_THAT(graph::deliver_many(user_, raws), IsOk());
    return subjects;
  }
  std::vector<std::string> subjects_in(const std::string& folder) {
    auto l = graph::list(user_, folder);
    EXPECT_THAT(l, IsOk());
    std::vector<std::string> out;
    if (l.ok()) {
      for (const auto& m : *l) out.push_back(m.subject);
    }
    return out;
  }
  int64_t counter(const nlohmann::json& stats, const std::string& group, const std::string& key) {
    if (!stats.contains(group) || !stats[group].contains(key)) return 0;
    return stats[group][key].get<int64_t>();
  }

  std::string user_;
  std::unique_ptr<TempDir> dir_;
};

// SPEC §2 "exactly once": kill -9 in the middle of a 300-message pass, run again: every
// message one ticket, each moved once.
TEST_F(GraphTest, SigkillMidSyncThenResumeLosesAndDuplicatesNothing) {
  constexpr int kMessages = 300;
  configure(box("move:Processed", kMessages));
  auto expected = deliver_n(kMessages, "bulk message");

  auto proc = Process::start(mailbridge_bin(), {"--config", config(), "sync", "--once"},
                             options());
  ASSERT_THAT(proc, IsOk());
  int64_t seen_count = -1;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while ((*proc)->running() && std::chrono::steady_clock::now() < deadline) {
    auto n = count_tickets_readonly(db());
    if (n.ok() && *n > 0 && *n < kMessages) {
      seen_count = *n;
      (*proc)->kill(SIGKILL);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  RunResult first = (*proc)->wait(std::chrono::seconds(30));
  ASSERT_GT(seen_count, 0) << "the first pass ended before it could be killed mid-way: "
                           << first.describe();
  EXPECT_EQ(first.signal, SIGKILL) << first.describe();

  RunResult second = mailbridge({"sync", "--once"});
  ASSERT_EQ(second.exit_code, 0) << second.describe();
  EXPECT_THAT(ticket_subjects(), UnorderedElementsAreArray(expected)) << "killed at " << seen_count;
  EXPECT_THAT(subjects_in("INBOX"), IsEmpty());
  EXPECT_THAT(subjects_in("Processed"), UnorderedElementsAreArray(expected));
}

// Many 429s with Retry-After on every kind of request while syncing: all of them waited out
// and retried; no message lost, none twice.
TEST_F(GraphTest, ThrottlingStormLosesAndDuplicatesNothing) {
  configure(box("mark-read"));
  auto expected = deliver_n(20, "storm");
  for (const char* route : {"delta", "$value", "PATCH"}) {
    ASSERT_THAT(graph::add_fault({{"status", 429}, {"count", 3}, {"route", route},
                                  {"retry_after", 1}}),
                IsOk());
  }
  ASSERT_THAT(graph::add_fault({{"status", 503}, {"count", 2}, {"route", "$value"}}), IsOk());
  ASSERT_THAT(graph::add_fault({{"status", 504}, {"count", 1}, {"route", "$value"}}), IsOk());
  ASSERT_THAT(graph::add_fault({{"kind", "mailbox_concurrency"}, {"count", 2},
                                {"retry_after", 1}}),
              IsOk());
  ASSERT_THAT(graph::reset_stats(), IsOk());

  RunResult r = mailbridge({"sync", "--once"});
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_THAT(ticket_subjects(), UnorderedElementsAreArray(expected));
  auto inbox = graph::list(user_, "INBOX");
  ASSERT_THAT(inbox, IsOk());
  for (const auto& m : *inbox) EXPECT_TRUE(m.seen) << m.subject;
  auto stats = graph::stats();
  ASSERT_THAT(stats, IsOk());
  EXPECT_EQ((*stats)["faults_served"], 14) << stats->dump();

  // A second run finds nothing new.
  RunResult again = mailbridge({"sync", "--once"});
  ASSERT_EQ(again.exit_code, 0) << again.describe();
  EXPECT_EQ(ticket_subjects().size(), expected.size());
}

// Throttled longer than a run waits: it gives up, keeps nothing half-done, and `status`
// says until when; once Graph lets it, the mail arrives exactly once.
TEST_F(GraphTest, PersistentThrottlingShowsThrottledUntil) {
  configure(box("mark-read"));
  auto expected = deliver_n(3, "later");
  ASSERT_THAT(graph::add_fault({{"status", 429}, {"count", 1000}, {"retry_after", 600}}), IsOk());
  RunResult r = mailbridge({"sync", "--once"});
  EXPECT_NE(r.exit_code, 0) << r.describe();
  auto st = status();
  EXPECT_TRUE(st["throttled_until"].is_string()) << st.dump();
  EXPECT_THAT(ticket_subjects(), IsEmpty());

  ASSERT_THAT(graph::clear_faults(), IsOk());
  // The stored throttle holds the next run back; a forced test-connection still works.
  RunResult tc = mailbridge({"test-connection", "support"});
  EXPECT_EQ(tc.exit_code, 0) << tc.describe();
}

// The delta token is reset (410 syncStateNotFound) in the middle of a round and between
// rounds: the resync lists everything again, and nothing becomes a second ticket.
TEST_F(GraphTest, DeltaResetMidwayCreatesNoDuplicateTicket) {
  configure(box("leave", 4));
  auto first = deliver_n(10, "reset");
  RunResult r = mailbridge({"sync", "--once"});
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  ASSERT_THAT(graph::admin("POST", "/delta/invalidate",
                           {{"user", graph::upn(user_)}, {"code", "syncStateNotFound"}}),
              IsOk());
  ASSERT_THAT(graph::reset_stats(), IsOk());
  for (int i = 0; i < 5; ++i) {
    r = mailbridge({"sync", "--once"});
    ASSERT_EQ(r.exit_code, 0) << r.describe();
  }
  auto stats = graph::stats();
  ASSERT_THAT(stats, IsOk());
  EXPECT_GE(counter(*stats, "by_status", "410"), 1) << "the reset never reached the client";
  EXPECT_THAT(ticket_subjects(), UnorderedElementsAreArray(first));

  ASSERT_THAT(graph::admin("POST", "/delta/invalidate",
                           {{"user", graph::upn(user_)}, {"code", "resyncRequired"}}),
              IsOk());
  auto more = deliver_n(2, "after reset");
  for (int i = 0; i < 5; ++i) {
    r = mailbridge({"sync", "--once"});
    ASSERT_EQ(r.exit_code, 0) << r.describe();
  }
  first.insert(first.end(), more.begin(), more.end());
  EXPECT_THAT(ticket_subjects(), UnorderedElementsAreArray(first));
}

// Issue 13 item 11: the delta listing carries each message's size (PidTagMessageSize); one
// over max_message_bytes is skipped too-large without a single $value request, stays in the
// Inbox unread, and is not asked for again, even when a delta reset lists it again.
TEST_F(GraphTest, OversizedMessageSkippedBySizeWithoutDownload) {
  ASSERT_THAT(write_file(config(), config_toml(db(), graph::mailbox_toml(box("mark-read")) +
                                                         "\n[ingest]\nmax_message_bytes = 4096\n")),
              IsOk());
  std::string big_text;
  for (int i = 0; i < 300; ++i) big_text += "line " + std::to_string(i) + " of a big message\n";
  ASSERT_THAT(graph::deliver(user_, make_message({.subject = "Graph big", .text = big_text})),
              IsOk());
  ASSERT_THAT(graph::deliver(user_, make_message({.subject = "Graph small", .text = "Fits.\n"})),
              IsOk());
  // $value requests for this test's user, from the stand-in's request log.
  const std::string who = graph::upn(user_);
  auto value_requests = [&] {
    auto log = graph::admin("GET", "/requests");
    EXPECT_THAT(log, IsOk());
    int n = 0;
    if (!log.ok()) return -1;
    for (const auto& e : (*log)["requests"]) {
      const std::string url = e.value("url", "");
      const std::string user = e["user"].is_string() ? e["user"].get<std::string>() : "";
      const bool mine = user == who || user == graph::url_encode(who) ||
                        url.find(graph::url_encode(who)) != std::string::npos ||
                        url.find(who) != std::string::npos;
      if (mine && url.find("/$value") != std::string::npos) ++n;
    }
    return n;
  };
  ASSERT_EQ(value_requests(), 0);

  RunResult first = mailbridge({"sync", "--once"});
  ASSERT_EQ(first.exit_code, 0) << first.describe();
  EXPECT_THAT(ticket_subjects(), UnorderedElementsAreArray({"Graph small"}));
  auto st = status();
  ASSERT_TRUE(st.contains("skipped")) << st.dump(2);
  EXPECT_EQ(st["skipped"].value("too-large", 0), 1) << st.dump(2);
  EXPECT_EQ(value_requests(), 1) << "the big message was downloaded:\n" << first.describe();
  auto inbox = graph::list(user_, "INBOX");
  ASSERT_THAT(inbox, IsOk());
  bool left_unread = false;
  for (const auto& m : *inbox) {
    if (m.subject == "Graph big") left_unread = !m.seen;
  }
  EXPECT_TRUE(left_unread) << "the big message is not in the Inbox, unread";

  // A full listing again (delta reset): the ledger knows the big message; no download.
  ASSERT_THAT(graph::admin("POST", "/delta/invalidate",
                           {{"user", who}, {"code", "syncStateNotFound"}}),
              IsOk());
  RunResult second = mailbridge({"sync", "--once"});
  ASSERT_EQ(second.exit_code, 0) << second.describe();
  EXPECT_EQ(value_requests(), 1) << "a pass downloaded the big message:\n" << second.describe();
  EXPECT_THAT(ticket_subjects(), UnorderedElementsAreArray({"Graph small"}));
  EXPECT_THAT(subjects_in("INBOX"), ::testing::Contains("Graph big"));
}

// 401 on a request: the token is dropped, a new one fetched, the request retried once.
TEST_F(GraphTest, UnauthorizedOnceFetchesNewTokenAndRetries) {
  configure(box("mark-read"));
  auto expected = deliver_n(2, "token");
  auto before = entra::admin("GET", "/stats");
  ASSERT_THAT(before, IsOk());
  ASSERT_THAT(graph::add_fault({{"status", 401}, {"count", 1}, {"route", "$value"}}), IsOk());
  RunResult r = mailbridge({"sync", "--once"});
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_THAT(ticket_subjects(), UnorderedElementsAreArray(expected));
  auto after = entra::admin("GET", "/stats");
  ASSERT_THAT(after, IsOk());
  EXPECT_GE((*after)["tokens_issued"].get<int64_t>() - (*before)["tokens_issued"].get<int64_t>(),
            2)
      << "no new token after the 401";
  EXPECT_EQ(status()["consecutive_auth_failures"], 0);
}

// An app without Mail.ReadWrite: ErrorAccessDenied is an authentication failure whose
// message names the permission; no ticket, nothing changed.
TEST_F(GraphTest, AccessDeniedIsAuthFailureNamingMailReadWrite) {
  auto app = entra::register_app({{"display_name", "mailbridge (Graph Mail.Send only)"},
                                  {"secret", true},
                                  {"roles", {{"graph", {"Mail.Send"}}, {"exchange", nlohmann::json::array()}}}});
  ASSERT_THAT(app, IsOk());
  auto b = box("mark-read");
  b.client_id = (*app)["client_id"];
  configure(b);
  deliver_n(1, "denied");
  RunOptions o = options();
  o.env = {{graph::kSecretVar, (*app)["secret"].get<std::string>()}};
  RunResult r = run_mailbridge({"--config", config(), "sync", "--once"}, o);
  EXPECT_EQ(r.exit_code, 3) << r.describe();
  EXPECT_THAT(r.err, HasSubstr("Mail.ReadWrite")) << r.describe();
  RunResult st = run_mailbridge({"--config", config(), "status", "--json"}, o);
  auto j = parse_json(st.out);
  ASSERT_TRUE(j.is_array() && j.size() == 1) << st.describe();
  EXPECT_EQ(j[0]["consecutive_auth_failures"], 1) << j.dump();
  EXPECT_THAT(j[0]["last_error"].dump(), HasSubstr("Mail.ReadWrite"));
  auto inbox = graph::list(user_, "INBOX");
  ASSERT_THAT(inbox, IsOk());
  ASSERT_EQ(inbox->size(), 1u);
  EXPECT_FALSE((*inbox)[0].seen);
}

// The tenant's application access policy denies this mailbox: an authentication failure
// that names the policy.
TEST_F(GraphTest, ApplicationAccessPolicyDenialNamesThePolicy) {
  configure(box("mark-read"));
  deliver_n(1, "policy");
  ASSERT_THAT(graph::admin("POST", "/policy", {{"user", graph::upn(user_)}, {"denied", true}}),
              IsOk());
  RunResult r = mailbridge({"sync", "--once"});
  EXPECT_EQ(r.exit_code, 3) << r.describe();
  EXPECT_THAT(r.err, HasSubstr("polic")) << r.describe();
  EXPECT_EQ(status()["consecutive_auth_failures"], 1);
  EXPECT_THAT(ticket_subjects(), IsEmpty());
  ASSERT_THAT(graph::admin("POST", "/policy", {{"user", graph::upn(user_)}, {"denied", false}}),
              IsOk());
}

// At most 4 requests in flight per mailbox, even when each takes a while.
TEST_F(GraphTest, NeverMoreThanFourRequestsInFlight) {
  configure(box("mark-read"));
  auto expected = deliver_n(24, "parallel");
  ASSERT_THAT(graph::admin("POST", "/settings", {{"latency_ms", 40}}), IsOk());
  ASSERT_THAT(graph::reset_stats(), IsOk());
  RunResult r = mailbridge({"sync", "--once"});
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_THAT(ticket_subjects(), UnorderedElementsAreArray(expected));
  auto stats = graph::stats();
  ASSERT_THAT(stats, IsOk());
  const std::string key = graph::upn(user_);
  std::string lower;
  for (char c : key) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  EXPECT_LE(counter(*stats, "max_in_flight", lower), 4) << stats->dump();
  EXPECT_GE(counter(*stats, "max_in_flight", lower), 1) << stats->dump();
  EXPECT_EQ((*stats)["mailbox_concurrency_rejections"], 0) << stats->dump();
}

// Requests per message stay within the target: one $value and one PATCH each, plus at most
// one more (the delta pages and folder lookups shared by all).
TEST_F(GraphTest, RequestsPerMessageWithinTarget) {
  constexpr int kMessages = 60;
  configure(box("mark-read", kMessages));
  deliver_n(kMessages, "count");
  ASSERT_THAT(graph::reset_stats(), IsOk());
  RunResult r = mailbridge({"sync", "--once"});
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  auto stats = graph::stats();
  ASSERT_THAT(stats, IsOk());
  int64_t value = 0, patch = 0;
  for (const auto& [route, n] : (*stats)["by_route"].items()) {
    if (route.find("/$value") != std::string::npos) value += n.get<int64_t>();
    if (route.rfind("PATCH ", 0) == 0) patch += n.get<int64_t>();
  }
  EXPECT_EQ(value, kMessages) << stats->dump();
  EXPECT_EQ(patch, kMessages) << stats->dump();
  EXPECT_LE((*stats)["requests"].get<int64_t>() - value - patch, kMessages) << stats->dump();
}

TEST_F(GraphTest, TestConnectionReportsTokenFolderAndCount) {
  configure(box("mark-read"));
  deliver_n(2, "count me");
  RunResult r = mailbridge({"test-connection", "support"});
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_THAT(r.out, AllOf(HasSubstr("token"), HasSubstr("2")));
  EXPECT_THAT(r.out + r.err, Not(HasSubstr(graph::app_secret())));
  EXPECT_THAT(ticket_subjects(), IsEmpty());
  auto inbox = graph::list(user_, "INBOX");
  ASSERT_THAT(inbox, IsOk());
  for (const auto& m : *inbox) EXPECT_FALSE(m.seen) << m.subject;
}

}  // namespace
}  // namespace mb::itest
