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
#include <thread>

#include "auth/base64.h"
#include "auth/sasl.h"
#include "auth/secrets.h"
#include "cli/version.h"
#include "core/hash.h"
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

// The first byte (or sequence) a terminal would act on — a C0 control other than a newline,
// DEL, a C1 control or a bidi override — as a description; "" when there is none.
std::string raw_control_in(const std::string& s) {
  for (size_t i = 0; i < s.size(); ++i) {
    auto c = static_cast<unsigned char>(s[i]);
    std::string_view rest = std::string_view(s).substr(i);
    if (rest.starts_with("\r\n")) continue;  // a line end, harmless
    if ((c < 0x20 && c != '\n') || c == 0x7f) {
      return "byte " + std::to_string(c) + " at " + std::to_string(i);
    }
    if (c == 0xC2 && rest.size() > 1 && static_cast<unsigned char>(rest[1]) <= 0x9F) {
      return "C1 control at " + std::to_string(i);
    }
    for (std::string_view bidi : {"\u202a", "\u202b", "\u202c", "\u202d", "\u202e",
                                  "\u2066", "\u2067", "\u2068", "\u2069"}) {
      if (rest.starts_with(bidi)) return "bidi control at " + std::to_string(i);
    }
  }
  return "";
}

// A loopback server that greets each of `connections` clients with `greeting` and hangs up.
class GreetingServer {
 public:
  GreetingServer(std::string greeting, int connections) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    EXPECT_EQ(::listen(fd_, 8), 0);
    socklen_t len = sizeof addr;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this, greeting, connections] {
      for (int i = 0; i < connections; ++i) {
        int c = ::accept(fd_, nullptr, nullptr);
        if (c < 0) return;
        (void)!::write(c, greeting.data(), greeting.size());
        ::shutdown(c, SHUT_WR);
        char buf[256];
        while (::read(c, buf, sizeof buf) > 0) {
        }
        ::close(c);
      }
    });
  }
  ~GreetingServer() {
    ::shutdown(fd_, SHUT_RDWR);
    thread_.join();
    ::close(fd_);
  }
  int port() const { return port_; }

 private:
  int fd_ = -1;
  int port_ = 0;
  std::thread thread_;
};

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
    t1.requester_name = "Alice Example";
    t1.mailbox = "support";
    Note n1;
    n1.author = "alice@example.com";
    n1.author_name = "Alice Example";
    n1.text = "It is burning.";
    n1.html = "<p>It is burning.</p>";
    n1.message_id = "<m1@example.com>";
    n1.dropped_attachments = {"fix.exe"};
    StoredAttachment a;
    a.filename = "photo.jpg";
    a.content_type = "image/jpeg";
    a.data = "JPEGDATA";
    n1.attachments.push_back(a);
    StoredAttachment logo;
    logo.filename = "logo.png";
    logo.content_type = "image/png";
    logo.content_id = "logo@example.com";
    logo.inline_part = true;
    logo.data = "PNG";
    n1.attachments.push_back(logo);
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
  const std::set<std::string> expected = {"id",        "project",        "subject",
                                          "status",    "source",         "requester",
                                          "requester_name", "created_at", "notes"};
  json first;
  for (const auto& t : j) {
    EXPECT_EQ(keys_of(t), expected);
    if (t["id"] == ticket1_) first = t;
  }
  ASSERT_FALSE(first.is_null());
  EXPECT_EQ(first["subject"], "Printer on fire");
  EXPECT_EQ(first["project"], "IT");
  EXPECT_EQ(first["requester"], "alice@example.com");
  EXPECT_EQ(first["requester_name"], "Alice Example");
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
                                               "requester", "requester_name", "created_at",
                                               "notes"}));
  EXPECT_EQ(t["requester_name"], "Alice Example");
  ASSERT_TRUE(t["notes"].is_array());
  ASSERT_EQ(t["notes"].size(), 3u);
  const std::set<std::string> note_keys = {
      "id",         "kind",        "author",      "author_name",         "text",       "html",
      "message_id", "attachments", "dropped_attachments", "in_reply_to", "created_at"};
  for (const auto& n : t["notes"]) EXPECT_EQ(keys_of(n), note_keys);
  const json& first = t["notes"][0];
  EXPECT_EQ(first["kind"], "email-in");
  EXPECT_EQ(first["author_name"], "Alice Example");
  EXPECT_TRUE(t["notes"][1]["author_name"].is_null());  // none stored
  EXPECT_EQ(first["html"], "<p>It is burning.</p>");
  EXPECT_EQ(first["message_id"], "<m1@example.com>");
  EXPECT_EQ(first["dropped_attachments"], json::array({"fix.exe"}));
  EXPECT_TRUE(first["in_reply_to"].is_null());
  ASSERT_EQ(first["attachments"].size(), 2u);
  const json& att = first["attachments"][0];
  EXPECT_EQ(keys_of(att), (std::set<std::string>{"filename", "content_type", "content_id",
                                                 "inline", "size", "sha256"}));
  EXPECT_EQ(att["filename"], "photo.jpg");
  EXPECT_TRUE(att["content_id"].is_null());
  EXPECT_EQ(att["inline"], false);
  EXPECT_EQ(att["size"], 8);
  EXPECT_EQ(att["sha256"], sha256_hex("JPEGDATA"));
  const json& logo = first["attachments"][1];
  EXPECT_EQ(logo["filename"], "logo.png");
  EXPECT_EQ(logo["content_id"], "logo@example.com");
  EXPECT_EQ(logo["inline"], true);
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
  EXPECT_THAT(show.out, HasSubstr("logo.png (image/png, 3 bytes, inline, cid logo@example.com"));
  EXPECT_THAT(show.out, HasSubstr("Requester: Alice Example <alice@example.com>"));
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
    ms.state = MailboxStatus::kAuthFailed;
    ms.last_run = "2026-01-02T03:04:05Z";
    ms.last_success = "2026-01-01T00:00:00Z";
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
  const std::set<std::string> keys = {"name",     "state",   "last_run", "last_success",
                                      "imported", "skipped", "last_error",
                                      "consecutive_auth_failures", "alert_ticket",
                                      "throttled_until", "service"};
  EXPECT_EQ(keys_of(j[0]), keys);
  EXPECT_EQ(keys_of(j[1]), keys);
  EXPECT_EQ(j[0]["name"], "support");
  EXPECT_EQ(j[0]["state"], "auth-failed");
  EXPECT_EQ(j[0]["last_run"], "2026-01-02T03:04:05Z");
  EXPECT_EQ(j[0]["last_success"], "2026-01-01T00:00:00Z");
  EXPECT_TRUE(j[1]["last_success"].is_null());
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
  EXPECT_THAT(human.out, HasSubstr("skipped: auto-reply 2, subject-too-long 1\n"));
}

// The skips that leave a message on the server for good are shown by reason too.
TEST_F(CliTest, StatusShowsSkipsByReasonIncludingTooLargeAndUnreadable) {
  {
    auto st = store();
    ASSERT_NE(st, nullptr);
    MailboxState ms;
    ms.name = "support";
    ms.last_run = "2026-01-02T03:04:05Z";
    ms.skipped = {{"too-large", 1}, {"unreadable", 2}};
    ASSERT_THAT(st->put_mailbox_state(ms), IsOk());
  }
  CliRun r = run({"status", "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  json j = json::parse(r.out);
  EXPECT_EQ(j[0]["skipped"], (json{{"too-large", 1}, {"unreadable", 2}}));
  CliRun human = run({"status"});
  ASSERT_EQ(human.code, 0) << human.err;
  EXPECT_THAT(human.out, HasSubstr("skipped: too-large 1, unreadable 2\n"));
}

// A pause the server asked for (Graph Retry-After) shows while it lasts, and not after.
TEST_F(CliTest, StatusShowsThrottledUntil) {
  {
    auto st = store();
    ASSERT_NE(st, nullptr);
    MailboxState ms;
    ms.name = "support";
    ms.state = MailboxStatus::kError;
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

// check-config reports every error of the file, a line each, and what would fail later.
TEST_F(CliTest, CheckConfigReportsEveryErrorAndWhatFailsLater) {
  std::string text = default_config();
  text.replace(text.find("host ="), 6, "hots =");  // in "support"
  text += "max_per_poll = 0\n"                      // in "sales"
          "tls = { ca_file = \"absent-ca.pem\" }\n"
          "\n[[mailbox]]\nname = \"onprem\"\ntype = \"ews\"\nuser = \"u@x\"\n"
          "password = \"env:MB_CLI_TEST_PW\"\n"
          "\n[store]\npath = \"no-such-dir/mailbridge.db\"\n";
  write_config(text);
  CliRun r = run({"check-config"});
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.out, "");
  for (const char* want :
       {"mailbox \"support\": unknown key \"hots\" (did you mean \"host\"?)",
        "mailbox \"support\": host is missing", "mailbox \"sales\": max_per_poll must be",
        "mailbox \"sales\": tls.ca_file: cannot read file",
        "mailbox \"onprem\": endpoint is missing",
        "no-such-dir does not exist"}) {
    EXPECT_THAT(r.err, HasSubstr(want));
  }
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 6) << r.err;  // one error a line
}

TEST_F(CliTest, CheckConfigWarnsAboutAnUnsetVariable) {
  ::unsetenv("MB_CLI_TEST_PW");
  CliRun r = run({"check-config"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("warning: " + config_));
  EXPECT_THAT(r.out, HasSubstr("mailbox \"sales\": password names the environment variable "
                               "MB_CLI_TEST_PW, which is not set here"));
}

// file: secrets are bounded (issue 13 item 14): a device is a configuration error.
TEST_F(CliTest, TestConnectionDeviceSecretExits2NamingTheReference) {
  std::string text = default_config();
  text.replace(text.find("env:MB_CLI_TEST_PW"), 18, "file:/dev/zero");
  write_config(text);
  CliRun r = run({"test-connection", "sales"});
  EXPECT_EQ(r.code, 2) << r.out << r.err;
  EXPECT_THAT(r.out + r.err, HasSubstr("cannot read file /dev/zero: it is a character device, "
                                       "not a regular file"));
  CliRun check = run({"check-config"});
  EXPECT_EQ(check.code, 2);
  EXPECT_THAT(check.err, HasSubstr("mailbox \"sales\": password: cannot read file /dev/zero"));
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

// The version is project(VERSION …) of CMakeLists.txt, through the generated cli/version.h
// (tests/CMakeLists.txt also runs the mailbridge executable with --version against it).
TEST_F(CliTest, VersionPrintsTheProjectVersionAndExits0) {
  CliRun r = run_raw({"--version"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "mailbridge " MAILBRIDGE_VERSION "\n");
  EXPECT_THAT(r.out, ::testing::MatchesRegex("mailbridge [0-9]+\\.[0-9]+\\.[0-9]+\n"));
  EXPECT_EQ(r.err, "");
  // No sub-command is needed, and none runs: nothing is read or created.
  CliRun with_config = run({"--version"});
  EXPECT_EQ(with_config.code, 0);
  EXPECT_EQ(with_config.out, r.out);
  EXPECT_FALSE(std::filesystem::exists(dir_ / "mailbridge.db"));
  EXPECT_THAT(run_raw({"--help"}).out, HasSubstr("--version"));
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

// A loopback IMAP server that refuses every login and echoes what the client sent, as the
// hostile server of issue 13 item 13 did: "NO [AUTHENTICATIONFAILED] … <the PLAIN blob>".
class EchoingImapServer {
 public:
  EchoingImapServer() {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    EXPECT_EQ(::listen(fd_, 4), 0);
    socklen_t len = sizeof addr;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  ~EchoingImapServer() {
    ::shutdown(fd_, SHUT_RDWR);  // ends accept()
    thread_.join();
    ::close(fd_);
  }
  int port() const { return port_; }

 private:
  void serve() {
    for (int c; (c = ::accept(fd_, nullptr, nullptr)) >= 0; ::close(c)) session(c);
  }
  static bool read_line(int c, std::string& line) {
    line.clear();
    for (char ch; ::read(c, &ch, 1) == 1;) {
      if (ch == '\n') return true;
      if (ch != '\r') line.push_back(ch);
    }
    return false;
  }
  static void send(int c, const std::string& text) {
    std::string wire = text + "\r\n";
    EXPECT_EQ(::write(c, wire.data(), wire.size()), static_cast<ssize_t>(wire.size()));
  }
  static void session(int c) {
    send(c, "* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=PLAIN] ready");
    for (std::string line; read_line(c, line);) {
      std::istringstream words(line);
      std::string tag, cmd, mech, blob;
      words >> tag >> cmd >> mech >> blob;
      if (cmd == "AUTHENTICATE") {
        if (blob.empty()) {
          send(c, "+ ");
          if (!read_line(c, blob)) return;
        }
        send(c, tag + " NO [AUTHENTICATIONFAILED] Invalid credentials for " + blob);
      } else if (cmd == "CAPABILITY") {
        send(c, "* CAPABILITY IMAP4rev1 SASL-IR AUTH=PLAIN");
        send(c, tag + " OK done");
      } else if (cmd == "LOGOUT") {
        send(c, "* BYE");
        send(c, tag + " OK done");
        return;
      } else {
        send(c, tag + " OK done");
      }
    }
  }

  int fd_ = -1;
  int port_ = 0;
  std::thread thread_;
};

// The bytes of every base64 run of `text`, decoded from each of the 4 bit offsets a byte can
// start at (written independently of auth/redact).
std::vector<std::string> decoded_runs(const std::string& text) {
  static const std::string abc =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::vector<std::string> out;
  std::string bits;
  auto flush = [&] {
    for (size_t shift = 0; shift < 8 && bits.size() >= 16; shift += 2) {
      std::string bytes;
      for (size_t p = shift; p + 8 <= bits.size(); p += 8) {
        bytes.push_back(static_cast<char>(std::stoi(bits.substr(p, 8), nullptr, 2)));
      }
      out.push_back(bytes);
    }
    bits.clear();
  };
  for (char ch : text) {
    char c = ch == '-' ? '+' : ch == '_' ? '/' : ch;
    size_t v = abc.find(c);
    if (c == '\0' || v == std::string::npos) {
      flush();
      continue;
    }
    for (int b = 5; b >= 0; --b) bits.push_back(((v >> b) & 1) ? '1' : '0');
  }
  flush();
  return out;
}

// Every cut of `enc` (the base64 the server echoed) that still holds `min_bytes` of the
// password's bytes, which sit at bytes [from, from + n) of the blob: no such piece may be
// anywhere in the output.
std::vector<std::string> revealing_cuts(const std::string& enc, size_t from, size_t n,
                                        size_t blob_size) {
  std::vector<std::string> cuts;
  std::string chars = enc.substr(0, enc.find('='));
  auto held = [&](size_t lo, size_t hi) {
    lo = std::max(lo, from), hi = std::min(hi, from + n);
    return hi > lo ? hi - lo : 0;
  };
  for (size_t cut = 1; cut < chars.size(); ++cut) {
    if (held(0, (cut + 1) * 6 / 8) >= 2) cuts.push_back(chars.substr(0, cut + 1));
    if (held((cut * 6 + 7) / 8, blob_size) >= 2) cuts.push_back(enc.substr(cut));
  }
  return cuts;
}

TEST_F(CliTest, EchoedPlainBlobLeavesNoPieceInLogsLastErrorOrAlertTicket) {
  // Ends in "YZ" in a group of its own ("\0sales@example.com\0" + 16 bytes is 35): its
  // base64 "WVo=" is what the old redactor left behind.
  const std::string password = "Tr0ub4dor&3-WXYZ";
  ::setenv("MB_CLI_TEST_PW", password.c_str(), 1);
  EchoingImapServer server;
  std::string text = default_config();
  const std::string closed = "port = " + std::to_string(port_);
  for (size_t p; (p = text.find(closed)) != std::string::npos;) {
    text.replace(p, closed.size(), "port = " + std::to_string(server.port()));
  }
  text = "[monitor]\nauth_failure_threshold = 1\n\n" + text;
  write_config(text);
  CliRun sync = run({"--log-level", "trace", "sync", "--once", "support"});
  EXPECT_EQ(sync.code, 3) << sync.out << sync.err;
  // sales uses the env password: its PLAIN blob is "\0sales@example.com\0" + password.
  CliRun sales = run({"--log-level", "trace", "sync", "--once", "sales"});
  EXPECT_EQ(sales.code, 3) << sales.out << sales.err;
  // What the store keeps, not only what the CLI shows.
  auto db = store();
  ASSERT_NE(db, nullptr);
  auto state = db->get_mailbox_state("sales");
  ASSERT_THAT(state, IsOk());
  std::string last_error = state->last_error;
  EXPECT_THAT(last_error, HasSubstr("Invalid credentials for <redacted>"));
  auto tickets = db->list_tickets();
  ASSERT_THAT(tickets, IsOk());
  ASSERT_EQ(tickets->size(), 2u);  // one alert per mailbox
  std::string alerts;
  for (const auto& t : *tickets) {
    auto full = db->get_ticket(t.id);
    ASSERT_THAT(full, IsOk());
    ASSERT_TRUE(full->has_value());
    alerts += (*full)->subject + "\n";
    for (const auto& n : (*full)->notes) alerts += n.text + "\n" + n.html + "\n";
  }
  CliRun status = run({"status"});
  alerts += status.out;
  EXPECT_THAT(alerts, HasSubstr("Invalid credentials for <redacted>"));
  std::string blob = sasl::plain_message("", "sales@example.com", password);
  std::string enc = base64_encode(blob);
  std::string literal_blob = base64_encode(sasl::plain_message("", "support@example.com",
                                                                kLiteralPassword));
  for (const std::string* out : {&sync.err, &sales.err, &last_error, &alerts}) {
    EXPECT_THAT(*out, Not(HasSubstr(password)));
    EXPECT_THAT(*out, Not(HasSubstr(kLiteralPassword)));
    EXPECT_THAT(*out, Not(HasSubstr(literal_blob.substr(0, 8))));
    for (const auto& cut : revealing_cuts(enc, blob.size() - password.size(), password.size(),
                                          blob.size())) {
      ASSERT_THAT(*out, Not(HasSubstr(cut))) << "a piece of the password is left";
    }
  }
  EXPECT_THAT(sales.err, HasSubstr("Invalid credentials for <redacted>"));  // traced, scrubbed
  // And whatever else a reader decodes from any base64 run: no 4 bytes of the password (2-byte
  // pieces occur by chance in the decoded bytes of ordinary words; the cuts above cover them).
  for (const std::string* out : {&sync.err, &sales.err, &last_error, &alerts}) {
    for (const auto& bytes : decoded_runs(*out)) {
      for (size_t i = 0; i + 4 <= password.size(); ++i) {
        ASSERT_EQ(bytes.find(password.substr(i, 4)), std::string::npos) << password.substr(i, 4);
      }
    }
  }
}

TEST_F(CliTest, SubcommandHelpExits0) {
  CliRun r = run({"tickets", "show", "--help"});
  EXPECT_EQ(r.code, 0);
  EXPECT_THAT(r.out, HasSubstr("--json"));
}

// Issue 13: text from mail (subject, names, body, file names, ids) reaches the terminal with
// every control character escaped; JSON keeps the value, \u-escaped.
TEST_F(CliTest, TicketsEscapeControlCharactersFromMail) {
  const std::string evil = "Invoice \x1b]0;owned\x07\x1b[2J\u009b31m \u202egnp.exe";
  const std::string body = "line one\r\nline \x1b[1mtwo\x07\rspoof\n";
  int64_t id = 0;
  {
    auto st = store();
    ASSERT_NE(st, nullptr);
    Ticket t;
    t.project = "IT";
    t.subject = evil;
    t.requester = "eve@example.com";
    t.requester_name = "Eve \x1b[5m";
    Note n;
    n.author = "eve@example.com";
    n.author_name = "Eve \x07";
    n.text = body;
    n.message_id = "<m\x1b@example.com>";
    StoredAttachment a;
    a.filename = "a\x1b[8m.pdf";
    a.content_type = "application/pdf";
    a.content_id = "c\x07id";
    a.data = "x";
    n.attachments.push_back(a);
    n.dropped_attachments = {"x\x1b.exe"};
    auto created = st->create_ticket(t, n);
    ASSERT_THAT(created, IsOk());
    id = *created;
  }
  const std::string shown = "Invoice \\e]0;owned\\x07\\e[2J<U+009B>31m <U+202E>gnp.exe";
  for (bool as_json : {false, true}) {
    std::vector<std::string> list = {"tickets", "list"};
    std::vector<std::string> show = {"tickets", "show", std::to_string(id)};
    if (as_json) list.push_back("--json"), show.push_back("--json");
    for (const auto& args : {list, show}) {
      CliRun r = run(args);
      ASSERT_EQ(r.code, 0) << r.err;
      EXPECT_EQ(raw_control_in(r.out), "") << args[1] << " json " << as_json;
      EXPECT_EQ(raw_control_in(r.err), "");
      if (!as_json) {
        EXPECT_THAT(r.out, HasSubstr(shown));
      }
    }
  }
  CliRun show = run({"tickets", "show", std::to_string(id)});
  EXPECT_THAT(show.out, HasSubstr("line one\r\nline \\e[1mtwo\\x07\\rspoof\n"));
  EXPECT_THAT(show.out, HasSubstr("Eve \\e[5m <eve@example.com>"));
  EXPECT_THAT(show.out, HasSubstr("a\\e[8m.pdf"));
  CliRun as_json = run({"tickets", "show", std::to_string(id), "--json"});
  json j = json::parse(as_json.out);
  EXPECT_EQ(j["subject"], evil);  // the value itself is unchanged
  EXPECT_EQ(j["notes"][0]["text"], body);
}

TEST_F(CliTest, StatusEscapesServerErrorText) {
  {
    auto st = store();
    ASSERT_NE(st, nullptr);
    MailboxState ms;
    ms.name = "support";
    ms.state = MailboxStatus::kError;
    ms.last_error = "NO [ALERT] \x1b]8;;http://evil.example\x07" "click\x1b]8;;\x07\nnext \u009b"
                    " caf\xe9";  // and a Latin-1 byte: not UTF-8
    ASSERT_THAT(st->put_mailbox_state(ms), IsOk());
  }
  for (auto args : {std::vector<std::string>{"status"}, {"status", "--json"}}) {
    CliRun r = run(args);
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(raw_control_in(r.out), "") << args.size();
  }
  EXPECT_THAT(run({"status"}).out,
              HasSubstr("NO [ALERT] \\e]8;;http://evil.example\\x07click\\e]8;;\\x07\\nnext "
                        "<U+009B> caf\\xe9"));
  json j = json::parse(run({"status", "--json"}).out);
  EXPECT_THAT(j[0]["last_error"].get<std::string>(), HasSubstr("next \u009b caf\ufffd"));
}

TEST_F(CliTest, OutboxListEscapesSubjectsAndServerReplies) {
  {
    auto st = store();
    ASSERT_NE(st, nullptr);
    OutboxRow row;
    row.kind = "plain";
    row.sender = "outgoing";
    row.to = "eve@example.com \x1b[8m";
    row.subject = "Re: \x1b]0;owned\x07 hi";
    row.state = OutboxState::kParked;
    row.last_error = "550 \x1b[2Jno such user\u009b";
    row.recipient_results = R"([{"address":"eve@example.com","reply":"550 \u001b[2J\u009b"}])";
    auto queued =
        st->enqueue_outbox(row, nullptr, [](int64_t, OutboxRow&) { return Status::Ok(); });
    ASSERT_THAT(queued, IsOk());
  }
  for (auto args : {std::vector<std::string>{"outbox", "list"}, {"outbox", "list", "--json"}}) {
    CliRun r = run(args);
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(raw_control_in(r.out), "") << args.size();
  }
  CliRun human = run({"outbox", "list"});
  EXPECT_THAT(human.out, HasSubstr("\"Re: \\e]0;owned\\x07 hi\""));
  EXPECT_THAT(human.out, HasSubstr("550 \\e[2Jno such user<U+009B>"));
}

// A server's own words (here an IMAP greeting refusing the connection) on stderr, in the
// test-connection report and in `status`.
TEST_F(CliTest, ServerTextWithEscapesIsEscapedEverywhereItIsPrinted) {
  GreetingServer server("* BYE \x1b]0;owned\x07\x1b[2Jgo away\u009b\r\n", 4);
  write_config("[[project]]\nname = \"IT\"\n\n[[mailbox]]\nname = \"support\"\ntype = \"imap\"\n"
               "host = \"127.0.0.1\"\nport = " + std::to_string(server.port()) +
               "\nsecurity = \"none\"\nuser = \"support@example.com\"\n"
               "password = \"env:MB_CLI_TEST_PW\"\n"
               "timeouts = { connect = \"5s\", response = \"5s\" }\n");
  ::setenv("MB_CLI_TEST_PW", "env-secret-value", 1);
  const std::string shown = "\\e]0;owned\\x07\\e[2Jgo away<U+009B>";
  CliRun sync = run({"sync", "--once"});
  EXPECT_EQ(raw_control_in(sync.err), "") << sync.err;
  EXPECT_EQ(raw_control_in(sync.out), "");
  EXPECT_THAT(sync.err, HasSubstr(shown));
  CliRun test = run({"test-connection", "support"});
  EXPECT_EQ(raw_control_in(test.out + test.err), "") << test.out;
  EXPECT_THAT(test.out + test.err, HasSubstr(shown));
  CliRun status = run({"status"});
  EXPECT_EQ(raw_control_in(status.out), "");
  EXPECT_THAT(status.out, HasSubstr(shown));
}

TEST(ExitCodeTest, MapsKinds) {
  EXPECT_EQ(cli::exit_code(Status()), 0);
  EXPECT_EQ(cli::exit_code(Status(ErrorKind::kAuth, "refused")), 3);
  EXPECT_EQ(cli::exit_code(Status(ErrorKind::kNetwork, "reset")), 4);
  EXPECT_EQ(cli::exit_code(Status(ErrorKind::kTls, "bad certificate")), 4);
  EXPECT_EQ(cli::exit_code(Status(ErrorKind::kConfig, "no such key")), 2);
  EXPECT_EQ(cli::exit_code(Status(ErrorKind::kProtocol, "garbage")), 1);
  EXPECT_EQ(cli::exit_code(Status(ErrorKind::kInternal, "disk full")), 1);
}

// Malformed mail is a runtime failure; a file or name the user gave is a usage error.
TEST(ExitCodeTest, InvalidInputIsUsageOnlyFromTheCommandLine) {
  const Status bad(ErrorKind::kInvalidInput, "cannot read body.txt");
  EXPECT_EQ(cli::exit_code(bad), 1);
  EXPECT_EQ(cli::exit_code(bad, cli::Origin::kRuntime), 1);
  EXPECT_EQ(cli::exit_code(bad, cli::Origin::kCommandLine), 2);
  EXPECT_EQ(cli::exit_code(Status(ErrorKind::kAuth, "x"), cli::Origin::kCommandLine), 3);
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
