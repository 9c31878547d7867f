// File: tests/unit/cli/cli_test.cpp — run_cli against a temporary configuration and a SQLite
// store seeded through the Store API: JSON shapes, exit codes, and that no secret is printed.
#include "cli/cli.h"

#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "auth/secrets.h"
#include "core/store.h"
#include "tests/status_matchers.h"

namespace mb {
namespace {

using ::mb::testing::IsOk;
using ::testing::HasSubstr;
using ::testing::Not;
using nlohmann::json;

constexpr const char* kLiteralPassword = "hunter2-literal-pw";

std::set<std::string> keys_of(const json& j) {
  std::set<std::string> keys;
  for (const auto& [k, v] : j.items()) keys.insert(k);
  return keys;
}

// A loopback port with nothing listening: bound, then released.
int closed_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

struct CliRun {
  int code = -1;
  std::string out;
  std::string err;
};

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("mb_cli_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    config_ = (dir_ / "mailbridge.toml").string();
    port_ = closed_port();
    write_config(default_config());
  }
  void TearDown() override {
    std::filesystem::remove_all(dir_);
    ::unsetenv("MB_CLI_TEST_PW");
  }

  std::string default_config() const {
    return "[[project]]\nname = \"IT\"\n\n"
           "[[mailbox]]\nname = \"support\"\ntype = \"imap\"\nhost = \"127.0.0.1\"\n"
           "port = " + std::to_string(port_) + "\nsecurity = \"none\"\n"
           "user = \"support@example.com\"\npassword = \"" + kLiteralPassword + "\"\n"
           "timeouts = { connect = \"5s\", response = \"5s\" }\n\n"
           "[[mailbox]]\nname = \"sales\"\ntype = \"imap\"\nhost = \"127.0.0.1\"\n"
           "port = " + std::to_string(port_) + "\nsecurity = \"none\"\n"
           "user = \"sales@example.com\"\npassword = \"env:MB_CLI_TEST_PW\"\n";
  }
  void write_config(const std::string& text) { std::ofstream(config_) << text; }

  CliRun run(std::vector<std::string> args) {
    args.insert(args.begin(), {"--config", config_});
    return run_raw(std::move(args));
  }
  CliRun run_raw(std::vector<std::string> args) {
    std::ostringstream out, err;
    CliRun r;
    r.code = run_cli(std::move(args), out, err);
    r.out = out.str();
    r.err = err.str();
    return r;
  }

  std::unique_ptr<Store> store() {
    auto s = Store::open((dir_ / "mailbridge.db").string());
    EXPECT_THAT(s, IsOk());
    return s.ok() ? std::move(*s) : nullptr;
  }

  // Two tickets: #1 with an attachment, a dropped attachment and a reply; #2 with one note.
  void seed() {
    auto st = store();
    ASSERT_NE(st, nullptr);
    Ticket t1;
    t1.project = "IT";
    t1.subject = "Printer on fire";
    t1.requester = "alice@example.com";
    t1.mailbox = "support";
    Note n1;
    n1.author = "alice@example.com";
    n1.text = "It is burning.";
    n1.html = "<p>It is burning.</p>";
    n1.message_id = "<m1@example.com>";
    n1.dropped_attachments = {"fix.exe"};
    StoredAttachment a;
    a.filename = "photo.jpg";
    a.content_type = "image/jpeg";
    a.data = "JPEGDATA";
    n1.attachments.push_back(a);
    auto id1 = st->create_ticket(t1, n1);
    ASSERT_THAT(id1, IsOk());
    ticket1_ = *id1;
    Note out;
    out.kind = "email-out";
    out.author = "tech@example.com";
    out.text = "On my way.";
    auto out_id = st->add_note(ticket1_, out);
    ASSERT_THAT(out_id, IsOk());
    out_note_ = *out_id;
    Note reply;
    reply.author = "alice@example.com";
    reply.text = "Thanks.";
    reply.in_reply_to = out_note_;
    ASSERT_THAT(st->add_note(ticket1_, reply), IsOk());
    Ticket t2;
    t2.project = "IT";
    t2.subject = "VPN down";
    t2.requester = "bob@example.com";
    Note n2;
    n2.author = "bob@example.com";
    n2.text = "No VPN.";
    ASSERT_THAT(st->create_ticket(t2, n2), IsOk());
  }

  std::filesystem::path dir_;
  std::string config_;
  int port_ = 0;
  int64_t ticket1_ = 0;
  int64_t out_note_ = 0;
};

TEST_F(CliTest, TicketsListJsonShape) {
  seed();
  CliRun r = run({"tickets", "list", "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  json j = json::parse(r.out);
  ASSERT_TRUE(j.is_array());
  ASSERT_EQ(j.size(), 2u);
  const std::set<std::string> expected = {"id",     "project",   "subject",    "status",
                                          "source", "requester", "created_at", "notes"};
  json first;
  for (const auto& t : j) {
    EXPECT_EQ(keys_of(t), expected);
    if (t["id"] == ticket1_) first = t;
  }
  ASSERT_FALSE(first.is_null());
  EXPECT_EQ(first["subject"], "Printer on fire");
  EXPECT_EQ(first["project"], "IT");
  EXPECT_EQ(first["requester"], "alice@example.com");
  EXPECT_EQ(first["status"], "open");
  EXPECT_EQ(first["source"], "email");
  EXPECT_EQ(first["notes"], 3);
  EXPECT_FALSE(first["created_at"].get<std::string>().empty());
}

TEST_F(CliTest, TicketsShowJsonShape) {
  seed();
  CliRun r = run({"tickets", "show", std::to_string(ticket1_), "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  json t = json::parse(r.out);
  EXPECT_EQ(keys_of(t), (std::set<std::string>{"id", "project", "subject", "status", "source",
                                               "requester", "created_at", "notes"}));
  ASSERT_TRUE(t["notes"].is_array());
  ASSERT_EQ(t["notes"].size(), 3u);
  const std::set<std::string> note_keys = {"id",          "kind",        "author",
                                           "text",        "html",        "message_id",
                                           "attachments", "dropped_attachments",
                                           "in_reply_to", "created_at"};
  for (const auto& n : t["notes"]) EXPECT_EQ(keys_of(n), note_keys);
  const json& first = t["notes"][0];
  EXPECT_EQ(first["kind"], "email-in");
  EXPECT_EQ(first["html"], "<p>It is burning.</p>");
  EXPECT_EQ(first["message_id"], "<m1@example.com>");
  EXPECT_EQ(first["dropped_attachments"], json::array({"fix.exe"}));
  EXPECT_TRUE(first["in_reply_to"].is_null());
  ASSERT_EQ(first["attachments"].size(), 1u);
  const json& att = first["attachments"][0];
  EXPECT_EQ(keys_of(att), (std::set<std::string>{"filename", "content_type", "size", "sha256"}));
  EXPECT_EQ(att["filename"], "photo.jpg");
  EXPECT_EQ(att["size"], 8);
  EXPECT_EQ(att["sha256"], sha256_hex("JPEGDATA"));
  EXPECT_EQ(t["notes"][1]["kind"], "email-out");
  EXPECT_EQ(t["notes"][2]["in_reply_to"], out_note_);
}

TEST_F(CliTest, TicketsHumanOutput) {
  seed();
  CliRun list = run({"tickets", "list"});
  ASSERT_EQ(list.code, 0) << list.err;
  EXPECT_THAT(list.out, HasSubstr("Printer on fire"));
  EXPECT_THAT(list.out, HasSubstr("VPN down"));
  CliRun show = run({"tickets", "show", std::to_string(ticket1_)});
  ASSERT_EQ(show.code, 0) << show.err;
  EXPECT_THAT(show.out, HasSubstr("It is burning."));
  EXPECT_THAT(show.out, HasSubstr("photo.jpg"));
  EXPECT_THAT(show.out, HasSubstr("fix.exe"));
  EXPECT_THAT(show.out, HasSubstr("reply to note " + std::to_string(out_note_)));
}

TEST_F(CliTest, TicketsShowUnknownIdExits1) {
  seed();
  CliRun r = run({"tickets", "show", "4242"});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, HasSubstr("no ticket 4242"));
  EXPECT_EQ(r.out, "");
}

TEST_F(CliTest, StatusJsonShape) {
  {
    auto st = store();
    ASSERT_NE(st, nullptr);
    MailboxState ms;
    ms.name = "support";
    ms.state = "auth-failed";
    ms.last_run = "2026-01-02T03:04:05Z";
    ms.imported = 12;
    ms.skipped = {{"subject-too-long", 1}, {"auto-reply", 2}};
    ms.last_error = "LOGIN failed";
    ms.consecutive_auth_failures = 3;
    ASSERT_THAT(st->put_mailbox_state(ms), IsOk());
  }
  CliRun r = run({"status", "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  json j = json::parse(r.out);
  ASSERT_EQ(j.size(), 2u);
  const std::set<std::string> keys = {"name",     "state",   "last_run",
                                      "imported", "skipped", "last_error",
                                      "consecutive_auth_failures", "alert_ticket",
                                      "throttled_until"};
  EXPECT_EQ(keys_of(j[0]), keys);
  EXPECT_EQ(keys_of(j[1]), keys);
  EXPECT_EQ(j[0]["name"], "support");
  EXPECT_EQ(j[0]["state"], "auth-failed");
  EXPECT_EQ(j[0]["last_run"], "2026-01-02T03:04:05Z");
  EXPECT_EQ(j[0]["imported"], 12);
  EXPECT_EQ(j[0]["skipped"], (json{{"subject-too-long", 1}, {"auto-reply", 2}}));
  EXPECT_EQ(j[0]["last_error"], "LOGIN failed");
  EXPECT_EQ(j[0]["consecutive_auth_failures"], 3);
  EXPECT_EQ(j[1]["name"], "sales");  // never run: defaults
  EXPECT_EQ(j[1]["state"], "ok");
  EXPECT_TRUE(j[1]["last_run"].is_null());
  EXPECT_EQ(j[1]["skipped"], json::object());

  CliRun human = run({"status"});
  ASSERT_EQ(human.code, 0) << human.err;
  EXPECT_THAT(human.out, HasSubstr("auth-failed"));
  EXPECT_THAT(human.out, HasSubstr("LOGIN failed"));
}

// A pause the server asked for (Graph Retry-After) shows while it lasts, and not after.
TEST_F(CliTest, StatusShowsThrottledUntil) {
  {
    auto st = store();
    ASSERT_NE(st, nullptr);
    MailboxState ms;
    ms.name = "support";
    ms.state = "error";
    ms.last_error = "throttled by Microsoft Graph";
    ms.throttled_until = "2099-01-01T00:00:00Z";
    ASSERT_THAT(st->put_mailbox_state(ms), IsOk());
    ms.name = "sales";
    ms.throttled_until = "2001-01-01T00:00:00Z";
    ASSERT_THAT(st->put_mailbox_state(ms), IsOk());
  }
  CliRun r = run({"status", "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  json j = json::parse(r.out);
  ASSERT_EQ(j.size(), 2u);
  EXPECT_EQ(j[0]["throttled_until"], "2099-01-01T00:00:00Z");
  EXPECT_TRUE(j[1]["throttled_until"].is_null());
  CliRun human = run({"status"});
  ASSERT_EQ(human.code, 0) << human.err;
  EXPECT_THAT(human.out, HasSubstr("throttled until 2099-01-01T00:00:00Z"));
  EXPECT_THAT(human.out, Not(HasSubstr("throttled until 2001")));
}

TEST_F(CliTest, CheckConfigOkWithWarningsThatHideTheValue) {
  CliRun r = run({"check-config"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("OK: 2 mailboxes, 0 senders, 0 apps, 1 project, 0 users"));
  EXPECT_THAT(r.out, HasSubstr("warning: "));
  EXPECT_THAT(r.out, HasSubstr("mailbox \"support\": password"));
  EXPECT_THAT(r.out + r.err, Not(HasSubstr(kLiteralPassword)));
}

TEST_F(CliTest, CheckConfigErrorExits2WithLineAndKey) {
  std::string text = default_config() + "max_per_poll = 0\n";
  write_config(text);
  int line = static_cast<int>(std::count(text.begin(), text.end(), '\n'));
  CliRun r = run({"check-config"});
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr(config_ + ":" + std::to_string(line) +
                               ": mailbox \"sales\": max_per_poll must be 1–9999 (got 0)"));
  EXPECT_EQ(r.out, "");
}

TEST_F(CliTest, MissingConfigExits2) {
  CliRun r = run_raw({"--config", (dir_ / "absent.toml").string(), "tickets", "list"});
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("absent.toml"));
}

TEST_F(CliTest, UsageErrorsExit2) {
  EXPECT_EQ(run({"frobnicate"}).code, 2);
  EXPECT_EQ(run({}).code, 2);
  EXPECT_EQ(run({"tickets"}).code, 2);
  EXPECT_EQ(run({"tickets", "show"}).code, 2);
  EXPECT_EQ(run({"tickets", "show", "abc"}).code, 2);
  CliRun bad_level = run({"--log-level", "loud", "status"});
  EXPECT_EQ(bad_level.code, 2);
  EXPECT_THAT(bad_level.err, HasSubstr("--log-level"));
}

TEST_F(CliTest, HelpExits0) {
  CliRun r = run_raw({"--help"});
  EXPECT_EQ(r.code, 0);
  EXPECT_THAT(r.out, HasSubstr("check-config"));
  EXPECT_THAT(r.out, HasSubstr("tickets"));
}

TEST_F(CliTest, GlobalOptionsAfterTheSubcommand) {
  seed();
  CliRun r = run_raw({"tickets", "list", "--json", "--config", config_, "--log-level", "error"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(json::parse(r.out).size(), 2u);
}

TEST_F(CliTest, TestConnectionUnknownMailboxExits2) {
  CliRun r = run({"test-connection", "nope"});
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("no mailbox \"nope\""));
}

TEST_F(CliTest, TestConnectionMissingSecretExits2WithoutValue) {
  ::unsetenv("MB_CLI_TEST_PW");
  CliRun r = run({"test-connection", "sales"});
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.out, HasSubstr("✗ configure"));
  EXPECT_THAT(r.out, HasSubstr("MB_CLI_TEST_PW is not set"));
}

TEST_F(CliTest, TestConnectionRefusedExits4AndPrintsNoSecret) {
  CliRun r = run({"test-connection", "support"});
  EXPECT_EQ(r.code, 4) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("✗"));
  EXPECT_THAT(r.out + r.err, Not(HasSubstr(kLiteralPassword)));
}

TEST_F(CliTest, SyncReportsTheWorstFailureAndRecordsIt) {
  ::setenv("MB_CLI_TEST_PW", "env-secret-value", 1);
  CliRun r = run({"sync", "--once"});
  EXPECT_EQ(r.code, 4) << r.out << r.err;
  EXPECT_THAT(r.err, HasSubstr("support: sync failed (network)"));
  EXPECT_THAT(r.err, HasSubstr("sales: sync failed (network)"));
  EXPECT_THAT(r.out + r.err, Not(HasSubstr(kLiteralPassword)));
  EXPECT_THAT(r.out + r.err, Not(HasSubstr("env-secret-value")));
  CliRun status = run({"status", "--json"});
  ASSERT_EQ(status.code, 0) << status.err;
  json j = json::parse(status.out);
  EXPECT_FALSE(j[0]["last_error"].is_null());
}

TEST_F(CliTest, SyncNetworkBeatsConfig) {
  ::unsetenv("MB_CLI_TEST_PW");  // sales cannot be set up (2), support cannot connect (4)
  CliRun r = run({"sync"});
  EXPECT_EQ(r.code, 4) << r.err;
  EXPECT_THAT(r.err, HasSubstr("sales: sync failed (config)"));
  CliRun status = run({"status", "--json"});
  json j = json::parse(status.out);
  EXPECT_EQ(j[1]["state"], "error");
  EXPECT_THAT(j[1]["last_error"].get<std::string>(), HasSubstr("MB_CLI_TEST_PW"));
}

TEST_F(CliTest, SyncOnlyNamedMailboxes) {
  ::unsetenv("MB_CLI_TEST_PW");
  CliRun r = run({"sync", "sales"});
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, Not(HasSubstr("support:")));
  EXPECT_EQ(run({"sync", "nope"}).code, 2);
}

// A mailbox the server asked to leave alone (throttled_until ahead) is not contacted by a
// plain sync, and is when named — both say so.
TEST_F(CliTest, SyncSkipsAThrottledMailboxUnlessNamed) {
  ::setenv("MB_CLI_TEST_PW", "env-secret-value", 1);
  {
    auto st = store();
    ASSERT_NE(st, nullptr);
    MailboxState ms;
    ms.name = "support";
    ms.throttled_until = "2099-01-01T00:00:00Z";
    ASSERT_THAT(st->put_mailbox_state(ms), IsOk());
  }
  CliRun all = run({"sync", "--once"});
  EXPECT_THAT(all.out, HasSubstr("support: throttled until 2099-01-01T00:00:00Z"));
  EXPECT_THAT(all.out, HasSubstr("not contacted"));
  EXPECT_THAT(all.err, Not(HasSubstr("support: sync failed")));
  EXPECT_THAT(all.err, HasSubstr("sales: sync failed (network)"));
  CliRun named = run({"sync", "support"});
  EXPECT_THAT(named.out, HasSubstr("synced anyway because it was named"));
  EXPECT_THAT(named.err, HasSubstr("support: sync failed (network)"));
  EXPECT_EQ(named.code, 4);
}

TEST_F(CliTest, ServerTextIsScrubbedOfResolvedSecrets) {
  ::setenv("MB_CLI_TEST_PW", "resolved-secret-4711", 1);
  ASSERT_THAT(resolve_secret({"env:MB_CLI_TEST_PW"}, "mailbox sales: password"), IsOk());
  {
    auto st = store();
    ASSERT_NE(st, nullptr);
    MailboxState ms;
    ms.name = "sales";
    ms.last_error = "server echoed: LOGIN sales resolved-secret-4711";
    ASSERT_THAT(st->put_mailbox_state(ms), IsOk());
  }
  for (auto args : {std::vector<std::string>{"status"}, {"status", "--json"}}) {
    CliRun r = run(args);
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_THAT(r.out, HasSubstr("server echoed: LOGIN sales <redacted>"));
    EXPECT_THAT(r.out, Not(HasSubstr("resolved-secret-4711")));
  }
}

TEST_F(CliTest, SubcommandHelpExits0) {
  CliRun r = run({"tickets", "show", "--help"});
  EXPECT_EQ(r.code, 0);
  EXPECT_THAT(r.out, HasSubstr("--json"));
}

TEST(ExitCodeTest, MapsKinds) {
  EXPECT_EQ(cli::exit_code_for(ErrorKind::kOk), 0);
  EXPECT_EQ(cli::exit_code_for(ErrorKind::kAuth), 3);
  EXPECT_EQ(cli::exit_code_for(ErrorKind::kNetwork), 4);
  EXPECT_EQ(cli::exit_code_for(ErrorKind::kTls), 4);
  EXPECT_EQ(cli::exit_code_for(ErrorKind::kConfig), 2);
  EXPECT_EQ(cli::exit_code_for(ErrorKind::kProtocol), 1);
  EXPECT_EQ(cli::exit_code_for(ErrorKind::kInternal), 1);
}

TEST(ExitCodeTest, WorstWins) {
  EXPECT_EQ(cli::worse_exit_code(4, 3), 3);
  EXPECT_EQ(cli::worse_exit_code(3, 4), 3);
  EXPECT_EQ(cli::worse_exit_code(1, 4), 4);
  EXPECT_EQ(cli::worse_exit_code(4, 1), 4);
  EXPECT_EQ(cli::worse_exit_code(0, 1), 1);
  EXPECT_EQ(cli::worse_exit_code(2, 1), 2);
  EXPECT_EQ(cli::worse_exit_code(0, 0), 0);
}

}  // namespace
}  // namespace mb
