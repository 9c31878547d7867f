// File: tests/unit/cli/exit_codes_test.cpp — run_cli's exit codes where they tell a script
// what went wrong: messages left on the server for a retry (1), TLS-security refusals of
// scripted hostile servers (4: STARTTLS injection over IMAP, POP3 and SMTP; PREAUTH before
// STARTTLS), configuration errors (2: a store path that is a directory — for the commands
// that test a connection too —, an unreadable [tracking] secret), and the store's files
// created 0600 under umask 022.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <vector>

#include "cli/cli.h"
#include "tests/unit/cli/line_server.h"

namespace mb {
namespace {

using ::mb::testing::LineServer;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr const char* kPassword = "exit-codes-test-pw";

struct CliRun {
  int code = -1;
  std::string out;
  std::string err;
};

// The IMAP tag of a client line ("a3 UID FETCH …" → "a3").
std::string tag(const std::string& line) { return line.substr(0, line.find(' ')); }
bool is(const std::string& line, const std::string& command) {
  return line.find(' ' + command) == tag(line).size();
}

// An IMAP server with one message (UID 1) whose FETCH answer is `fetch_reply` after the tag.
LineServer::Respond imap_with_one_message(
    std::function<std::string(const std::string& tag)> fetch_reply) {
  return [fetch_reply](const std::string& line) -> std::string {
    const std::string t = tag(line);
    if (is(line, "LOGIN")) return t + " OK [CAPABILITY IMAP4rev1 UIDPLUS] in\r\n";
    if (is(line, "SELECT")) {
      return "* 1 EXISTS\r\n* OK [UIDVALIDITY 7] ok\r\n" + t + " OK [READ-WRITE] sel\r\n";
    }
    if (is(line, "UID SEARCH")) return "* SEARCH 1\r\n" + t + " OK done\r\n";
    if (is(line, "UID FETCH")) return fetch_reply(t);
    if (is(line, "LOGOUT")) return "* BYE bye\r\n" + t + " OK bye\r\n";
    return t + " OK done\r\n";
  };
}

std::string fetched(const std::string& t, const std::string& raw) {
  return "* 1 FETCH (UID 1 BODY[] {" + std::to_string(raw.size()) + "}\r\n" + raw + ")\r\n" + t +
         " OK done\r\n";
}

class ExitCodesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("mb_exit_codes_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    config_ = (dir_ / "mailbridge.toml").string();
  }
  void TearDown() override {
    std::filesystem::remove_all(dir_);
    ::unsetenv("MB_EXIT_TEST_UNSET");
  }

  static std::string mailbox(const std::string& type, int port, const std::string& security,
                             const std::string& after = "mark-read") {
    return "[[mailbox]]\nname = \"support\"\ntype = \"" + type +
           "\"\nhost = \"127.0.0.1\"\nport = " + std::to_string(port) + "\nsecurity = \"" +
           security + "\"\nuser = \"support@example.com\"\npassword = \"" + kPassword +
           "\"\nafter = \"" + after + "\"\ntimeouts = { connect = \"5s\", response = \"5s\" }\n\n";
  }
  static std::string sender(int port) {
    return "[[sender]]\nname = \"out\"\ntype = \"smtp\"\nhost = \"127.0.0.1\"\nport = " +
           std::to_string(port) + "\nsecurity = \"starttls\"\nuser = \"support@example.com\"\n"
           "password = \"" + kPassword +
           "\"\ntimeouts = { connect = \"5s\", response = \"5s\" }\n\n";
  }
  void write_config(const std::string& text) { std::ofstream(config_) << text; }

  CliRun run(std::vector<std::string> args) {
    args.insert(args.begin(), {"--config", config_});
    std::ostringstream out, err;
    CliRun r;
    r.code = run_cli(std::move(args), out, err);
    r.out = out.str();
    r.err = err.str();
    return r;
  }

  std::filesystem::path dir_;
  std::string config_;
};

// --- 1: a message left on the server for a retry; 0: only skips ---------------------------

TEST_F(ExitCodesTest, SyncExits1WhenAMessageIsLeftOnTheServerForARetry) {
  LineServer server("* OK [CAPABILITY IMAP4rev1] ready\r\n",
                    imap_with_one_message([](const std::string& t) {
                      return t + " NO [SERVERBUG] cannot read the message right now\r\n";
                    }));
  write_config(mailbox("imap", server.port(), "none"));
  CliRun r = run({"sync", "--once"});
  EXPECT_EQ(r.code, 1) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("1 failed (left on the server)"));
}

TEST_F(ExitCodesTest, SyncExits0WhenMessagesAreOnlySkipped) {
  const std::string raw =
      "From: Alice <alice@example.com>\r\nSubject: Out of Office\r\n\r\naway\r\n";
  LineServer server("* OK [CAPABILITY IMAP4rev1] ready\r\n",
                    imap_with_one_message([raw](const std::string& t) { return fetched(t, raw); }));
  write_config(mailbox("imap", server.port(), "none"));
  CliRun r = run({"sync", "--once"});
  EXPECT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("1 skipped (subject-filter: 1)"));
}

// --- 4: TLS-security refusals -------------------------------------------------------------

TEST_F(ExitCodesTest, ImapStartTlsReplyWithInjectedPlaintextExits4) {
  LineServer server("* OK [CAPABILITY IMAP4rev1 STARTTLS] ready\r\n",
                    [](const std::string& line) -> std::string {
                      if (is(line, "STARTTLS")) {
                        return tag(line) + " OK begin TLS\r\n* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\n";
                      }
                      return tag(line) + " OK done\r\n";
                    });
  write_config(mailbox("imap", server.port(), "starttls"));
  CliRun r = run({"sync", "--once"});
  EXPECT_EQ(r.code, 4) << r.out << r.err;
  EXPECT_THAT(r.err, HasSubstr("support: sync failed (tls)"));
  EXPECT_THAT(r.err, HasSubstr("injection"));
  EXPECT_THAT(server.lines(), Not(::testing::Contains(HasSubstr(kPassword))));
}

TEST_F(ExitCodesTest, ImapPreauthBeforeStartTlsExits4) {
  LineServer server("* PREAUTH [CAPABILITY IMAP4rev1 STARTTLS] already in\r\n",
                    [](const std::string& line) { return tag(line) + " OK done\r\n"; });
  write_config(mailbox("imap", server.port(), "starttls"));
  CliRun r = run({"sync", "--once"});
  EXPECT_EQ(r.code, 4) << r.out << r.err;
  EXPECT_THAT(r.err, HasSubstr("PREAUTH before STARTTLS"));
  CliRun t = run({"test-connection", "support"});
  EXPECT_EQ(t.code, 4) << t.out << t.err;
  EXPECT_THAT(t.out, HasSubstr("starttls"));
  EXPECT_TRUE(server.lines().empty());  // not one command in plaintext
}

TEST_F(ExitCodesTest, Pop3StlsReplyWithInjectedPlaintextExits4) {
  LineServer server("+OK ready\r\n", [](const std::string& line) -> std::string {
    if (line == "CAPA") return "+OK\r\nSTLS\r\nUIDL\r\nUSER\r\n.\r\n";
    if (line == "STLS") return "+OK begin TLS\r\n+OK injected\r\n";
    return "+OK\r\n";
  });
  write_config(mailbox("pop3", server.port(), "starttls", "leave"));
  CliRun r = run({"sync", "--once"});
  EXPECT_EQ(r.code, 4) << r.out << r.err;
  EXPECT_THAT(r.err, HasSubstr("injection"));
  EXPECT_THAT(server.lines(), Not(::testing::Contains(HasSubstr(kPassword))));
}

TEST_F(ExitCodesTest, SmtpStartTlsReplyWithInjectedPlaintextExits4) {
  LineServer server("220 mx.test ESMTP\r\n", [](const std::string& line) -> std::string {
    if (line.rfind("EHLO", 0) == 0) return "250-mx.test\r\n250 STARTTLS\r\n";
    if (line == "STARTTLS") return "220 go ahead\r\n250 injected\r\n";
    return "250 ok\r\n";
  });
  write_config(mailbox("imap", 1, "tls") + sender(server.port()));
  CliRun r = run({"send-test", "out", "--to", "bob@example.com"});
  EXPECT_EQ(r.code, 4) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("starttls"));
  EXPECT_THAT(r.out, HasSubstr("injection"));
  EXPECT_THAT(server.lines(), Not(::testing::Contains(HasSubstr("AUTH"))));
}

// --- 2: configuration ---------------------------------------------------------------------

TEST_F(ExitCodesTest, AStorePathThatIsADirectoryExits2NamingIt) {
  const std::string store_dir = (dir_ / "store-dir").string();
  std::filesystem::create_directories(store_dir);
  write_config("[store]\npath = \"" + store_dir + "\"\n\n" + mailbox("imap", 1, "tls"));
  for (auto args : {std::vector<std::string>{"sync"}, {"tickets", "list"}, {"status"},
                    {"outbox", "list"}, {"outbox", "flush"}}) {
    SCOPED_TRACE(args[0] + (args.size() > 1 ? " " + args[1] : ""));
    CliRun r = run(args);
    EXPECT_EQ(r.code, 2) << r.out << r.err;
    EXPECT_THAT(r.err, HasSubstr(store_dir + " is a directory"));
  }
}

// test-connection, doctor and send-test must not create the store, but one that exists and
// cannot be opened stops them as it stops every other command: exit 2 naming it, before a
// server or the token endpoint is contacted (password and OAuth mailboxes alike).
TEST_F(ExitCodesTest, AStoreThatExistsButCannotBeOpenedStopsTheTestCommandsWith2) {
  const std::string store_dir = (dir_ / "store-dir").string();
  std::filesystem::create_directories(store_dir);
  auto ok = [](const std::string& line) { return tag(line) + " OK done\r\n"; };
  LineServer imap("* OK [CAPABILITY IMAP4rev1 AUTH=XOAUTH2] ready\r\n", ok);
  LineServer smtp("220 mx.test ESMTP\r\n", [](const std::string&) { return "250 ok\r\n"; });
  LineServer token("", [](const std::string&) { return ""; });
  const std::string oauth = "security = \"none\"\nauth = \"oauth2\"\napp = \"contoso\"\n"
                            "user = \"support@example.com\"\n"
                            "timeouts = { connect = \"5s\", response = \"5s\" }\n\n";
  write_config("[store]\npath = \"" + store_dir + "\"\n\n" +
               mailbox("imap", imap.port(), "none") +
               "[[app]]\nname = \"contoso\"\nclient_id = \"app-id\"\n"
               "client_secret = \"app-secret\"\ntoken_endpoint = \"https://127.0.0.1:" +
               std::to_string(token.port()) + "/token\"\n\n"
               "[[mailbox]]\nname = \"robot\"\ntype = \"imap\"\nhost = \"127.0.0.1\"\nport = " +
               std::to_string(imap.port()) + "\n" + oauth +
               "[[sender]]\nname = \"out\"\ntype = \"smtp\"\nhost = \"127.0.0.1\"\nport = " +
               std::to_string(smtp.port()) + "\n" + oauth);
  for (auto args : {std::vector<std::string>{"test-connection"}, {"test-connection", "support"},
                    {"test-connection", "robot"}, {"doctor"}, {"doctor", "out"},
                    {"send-test", "out", "--to", "bob@example.com"}}) {
    SCOPED_TRACE(args[0] + (args.size() > 1 ? " " + args[1] : ""));
    CliRun r = run(args);
    EXPECT_EQ(r.code, 2) << r.out << r.err;
    EXPECT_THAT(r.err, HasSubstr("mailbridge: store " + store_dir + " is a directory"));
    EXPECT_EQ(r.out, "");
  }
  EXPECT_EQ(imap.accepted(), 0);
  EXPECT_EQ(smtp.accepted(), 0);
  EXPECT_EQ(token.accepted(), 0);
}

// Every command that signs or checks cookies with the secret refuses to run without it,
// naming the reference, and contacts nothing (the mailbox's port is closed: it would be 4).
TEST_F(ExitCodesTest, AnUnreadableTrackingSecretExits2NamingTheReference) {
  ::unsetenv("MB_EXIT_TEST_UNSET");
  std::ofstream(dir_ / "body.txt") << "hello\n";
  const std::string missing = (dir_ / "no-such-secret").string();
  LineServer smtp("220 mx.test ESMTP\r\n", [](const std::string&) { return "250 ok\r\n"; });
  for (const std::string& ref :
       std::vector<std::string>{"env:MB_EXIT_TEST_UNSET", "file:" + missing}) {
    SCOPED_TRACE(ref);
    write_config(mailbox("imap", 1, "none") + sender(smtp.port()) + "[tracking]\nsecret = \"" +
                 ref + "\"\nmailbox = \"support\"\nsender = \"out\"\n");
    for (auto args : {std::vector<std::string>{"sync", "--once"}, {"outbox", "flush"},
                      {"send", "--ticket", "1", "--to", "bob@example.com", "--subject", "s",
                       "--body-file", (dir_ / "body.txt").string()}}) {
      SCOPED_TRACE(args[0]);
      CliRun r = run(args);
      EXPECT_EQ(r.code, 2) << r.out << r.err;
      EXPECT_THAT(r.err, HasSubstr("[tracking] secret (" + ref + ")"));
      EXPECT_THAT(r.err, Not(HasSubstr("sync failed")));
    }
  }
  EXPECT_EQ(smtp.accepted(), 0);
}

// --- the store's files are private ---------------------------------------------------------

TEST_F(ExitCodesTest, TheStoreSyncCreatesIs0600UnderUmask022) {
  const std::string raw = "From: Alice <alice@example.com>\r\nSubject: printer\r\n\r\nfire\r\n";
  LineServer server("* OK [CAPABILITY IMAP4rev1] ready\r\n",
                    imap_with_one_message([raw](const std::string& t) { return fetched(t, raw); }));
  write_config(mailbox("imap", server.port(), "none"));
  const mode_t old = ::umask(022);
  CliRun r = run({"sync", "--once"});
  ::umask(old);
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  ASSERT_THAT(r.out, HasSubstr("1 imported"));
  // The -wal and -shm files take the database file's mode (tests/unit/core/store_test.cpp
  // checks them while a connection holds them open).
  struct stat st {};
  ASSERT_EQ(::stat((dir_ / "mailbridge.db").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

}  // namespace
}  // namespace mb
