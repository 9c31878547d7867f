// File: tests/integration/doctor_test.cpp — `mailbridge doctor` (the real binary) against
// the Entra ID stand-in: an app without IMAP.AccessAsApp is named with its fix and exit 3;
// with the role every token check passes and what remains is the connection (exit 4); an
// AADSTS error is the token step's cause and fix; a Graph sender needs Mail.Send alone and a
// Graph mailbox without Mail.ReadWrite is told to add it (not an access policy); no output
// holds the secret or a token.
#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <sstream>
#include <string>
#include <thread>

#include <fmt/format.h>

#include "tests/integration/entra_harness.h"
#include "tests/integration/graph_harness.h"
#include "tests/integration/harness.h"
#include "tests/status_matchers.h"

namespace mb::itest {
namespace {

using ::mb::testing::IsOk;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;
using json = nlohmann::json;

constexpr const char* kSecretEnv = "MB_DOCTOR_TEST_SECRET";
constexpr const char* kMailbox = "support@contoso.onmicrosoft.com";

// A loopback port with nothing listening: bound, then released.
int closed_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

const json* step(const json& result, const std::string& name) {
  for (const auto& s : result["steps"]) {
    if (s["name"] == name) return &s;
  }
  return nullptr;
}

class DoctorTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_FALSE(entra::env().empty()); }

  // Writes a configuration with one app-only [[app]] for `client_id` and one OAuth IMAP
  // mailbox on a closed port.
  std::string write_config(const std::string& client_id) {
    std::string tables = fmt::format(
        "[[app]]\nname = \"entra\"\nauthority = {}\ntenant = {}\nclient_id = {}\n"
        "client_secret = \"env:{}\"\ntls = {{ ca_file = {} }}\n\n"
        "[[mailbox]]\nname = \"support\"\ntype = \"imap\"\nhost = \"localhost\"\nport = {}\n"
        "security = \"tls\"\nauth = \"oauth2\"\napp = \"entra\"\nuser = \"{}\"\n",
        toml_quote(entra::at("MB_ENTRA_AUTHORITY")), toml_quote(entra::at("MB_ENTRA_TENANT_ID")),
        toml_quote(client_id), kSecretEnv, toml_quote(entra::at("MB_ENTRA_CA_FILE")),
        closed_port(), kMailbox);
    std::string path = tmp_.file("mailbridge.toml");
    EXPECT_THAT(write_file(path, config_toml(tmp_.file("mb.db"), tables)), IsOk());
    return path;
  }

  RunResult doctor(const std::string& config, const std::string& secret, bool as_json) {
    RunOptions opts;
    opts.env = {{kSecretEnv, secret}};
    opts.timeout = std::chrono::seconds(120);
    std::vector<std::string> args = {"--config", config, "doctor", "support"};
    if (as_json) args.push_back("--json");
    RunResult r = run_mailbridge(args, opts);
    EXPECT_THAT(r.out + r.err, Not(HasSubstr(secret))) << r.describe();
    EXPECT_THAT(r.out + r.err, Not(HasSubstr("eyJ0eXAi"))) << "a token was printed";
    return r;
  }

  TempDir tmp_;
};

TEST_F(DoctorTest, AppWithoutImapAccessAsAppIsNamedAndExits3) {
  const std::string secret = entra::at("MB_ENTRA_NOIMAP_APP_SECRET");
  std::string config = write_config(entra::at("MB_ENTRA_NOIMAP_APP_ID"));
  RunResult r = doctor(config, secret, true);
  EXPECT_EQ(r.exit_code, 3) << r.describe();
  json doc = parse_json(r.out);
  ASSERT_FALSE(doc.is_discarded()) << r.describe();
  EXPECT_EQ(doc["exit_code"], 3);
  ASSERT_EQ(doc["results"].size(), 1u);
  const json& res = doc["results"][0];
  EXPECT_EQ(res["name"], "support");
  ASSERT_NE(step(res, "token"), nullptr);
  EXPECT_EQ((*step(res, "token"))["ok"], true);
  const json* claims = step(res, "claims");
  ASSERT_NE(claims, nullptr);
  EXPECT_THAT((*claims)["detail"].get<std::string>(),
              AllOf(HasSubstr(entra::at("MB_ENTRA_TENANT_ID")),
                    HasSubstr(entra::at("MB_ENTRA_NOIMAP_APP_ID"))));
  EXPECT_EQ((*step(res, "audience"))["ok"], true);
  const json* perm = step(res, "permission");
  ASSERT_NE(perm, nullptr);
  EXPECT_EQ((*perm)["ok"], false);
  EXPECT_THAT((*perm)["fix"].get<std::string>(),
              AllOf(HasSubstr("IMAP.AccessAsApp"), HasSubstr("Office 365 Exchange Online"),
                    HasSubstr("admin consent"), HasSubstr(entra::at("MB_ENTRA_NOIMAP_APP_ID"))));

  // The same in text form, for a person.
  RunResult text = doctor(config, secret, false);
  EXPECT_EQ(text.exit_code, 3);
  EXPECT_THAT(text.out, AllOf(HasSubstr("✗ permission"),
                              HasSubstr("fix: add the application permission IMAP.AccessAsApp")));
}

TEST_F(DoctorTest, WithTheRoleTheTokenChecksPassAndTheConnectionIsWhatFails) {
  auto app = entra::register_app({{"secret", true}, {"roles", entra::all_roles()}});
  ASSERT_THAT(app.status(), IsOk());
  const std::string secret = (*app)["secret"];
  RunResult r = doctor(write_config((*app)["client_id"]), secret, true);
  EXPECT_EQ(r.exit_code, 4) << r.describe();
  json doc = parse_json(r.out);
  ASSERT_FALSE(doc.is_discarded()) << r.describe();
  const json& res = doc["results"][0];
  for (const char* name : {"app", "token", "claims", "audience", "permission"}) {
    ASSERT_NE(step(res, name), nullptr) << name;
    EXPECT_EQ((*step(res, name))["ok"], true) << name << ": " << r.out;
  }
  EXPECT_THAT((*step(res, "claims"))["detail"].get<std::string>(),
              AllOf(HasSubstr("IMAP.AccessAsApp"), HasSubstr((*app)["sp_object_id"].get<std::string>())));
  // What fails is the connection to the (closed) IMAP port, and nothing else.
  std::vector<std::string> failed;
  for (const auto& s : res["steps"]) {
    if (s["ok"] == false) failed.push_back(s["name"]);
  }
  EXPECT_EQ(failed, std::vector<std::string>{"connect"}) << r.out;
}

// An app with Mail.Send and nothing else: its Graph sender passes every check (Microsoft
// requires Mail.Send for sendMail, nothing more), while a Graph mailbox of the same app fails
// its permission step with Mail.ReadWrite named, and the stand-in's 403 at sign-in is put
// down to that missing permission — not to an application access policy.
TEST_F(DoctorTest, GraphSenderNeedsMailSendOnlyAndAMailboxMissingMailReadWriteIsToldSo) {
  ASSERT_FALSE(graph::env().empty());
  auto app = entra::register_app({{"secret", true}, {"roles", {{"graph", {"Mail.Send"}}}}});
  ASSERT_THAT(app.status(), IsOk());
  const std::string secret = (*app)["secret"];
  const std::string user = graph::upn(unique_user());
  std::string tables =
      graph::mailbox_toml({.user = user, .client_id = (*app)["client_id"]}) +
      fmt::format("\n[[sender]]\nname = \"outgoing\"\ntype = \"graph\"\napp = \"graph-app\"\n"
                  "user = {}\nendpoint = {}\ntls = {{ ca_file = {} }}\n",
                  toml_quote(user), toml_quote(graph::at("MB_GRAPH_URL")),
                  toml_quote(graph::at("MB_GRAPH_CA_FILE")));
  std::string config = tmp_.file("mailbridge.toml");
  ASSERT_THAT(write_file(config, config_toml(tmp_.file("mb.db"), tables)), IsOk());
  RunOptions opts;
  opts.env = {{graph::kSecretVar, secret}};
  RunResult r = run_mailbridge({"--config", config, "doctor", "--json"}, opts);
  EXPECT_THAT(r.out + r.err, Not(HasSubstr(secret)));
  EXPECT_EQ(r.exit_code, 3) << r.describe();
  json doc = parse_json(r.out);
  ASSERT_FALSE(doc.is_discarded()) << r.describe();
  const json* sender = nullptr;
  const json* mailbox = nullptr;
  for (const auto& res : doc["results"]) (res["kind"] == "sender" ? sender : mailbox) = &res;
  ASSERT_NE(sender, nullptr);
  ASSERT_NE(mailbox, nullptr);
  EXPECT_EQ((*sender)["ok"], true) << sender->dump(2);
  EXPECT_THAT((*step(*sender, "permission"))["detail"].get<std::string>(), HasSubstr("Mail.Send"));
  ASSERT_NE(step(*sender, "send permission"), nullptr) << sender->dump(2);
  EXPECT_EQ(step(*sender, "sign-in"), nullptr) << "a sender's connection test is run, not skipped";
  EXPECT_THAT(sender->dump(), Not(HasSubstr("Mail.ReadWrite")));

  const json* perm = step(*mailbox, "permission");
  ASSERT_NE(perm, nullptr);
  EXPECT_EQ((*perm)["ok"], false);
  EXPECT_THAT((*perm)["fix"].get<std::string>(), HasSubstr("Mail.ReadWrite"));
  std::vector<std::string> fixes;
  for (const auto& s : (*mailbox)["steps"]) {
    if (s["ok"] == false && s["name"] != "permission" && s["fix"].is_string()) {
      fixes.push_back(s["fix"]);
    }
  }
  ASSERT_FALSE(fixes.empty()) << mailbox->dump(2);
  for (const auto& fix : fixes) {
    EXPECT_THAT(fix, AllOf(HasSubstr("permission named above"), Not(HasSubstr("access policy"))));
  }
}

TEST_F(DoctorTest, WrongSecretIsTheTokenStepWithItsAadstsCause) {
  const std::string wrong = "Wr0ng8Q~" + entra::at("MB_ENTRA_APP_SECRET").substr(8);
  RunResult r = doctor(write_config(entra::at("MB_ENTRA_APP_ID")), wrong, true);
  EXPECT_EQ(r.exit_code, 3) << r.describe();
  json doc = parse_json(r.out);
  ASSERT_FALSE(doc.is_discarded()) << r.describe();
  const json* token = step(doc["results"][0], "token");
  ASSERT_NE(token, nullptr);
  EXPECT_EQ((*token)["ok"], false);
  EXPECT_THAT((*token)["detail"].get<std::string>(), HasSubstr("7000215"));
  EXPECT_THAT(r.out, Not(HasSubstr(entra::at("MB_ENTRA_APP_SECRET"))));
  EXPECT_EQ(step(doc["results"][0], "permission"), nullptr);  // nothing to check without a token
}

// A minimal IMAP server that answers like Exchange Online for an app whose service principal
// or mailbox permission is missing: it offers XOAUTH2 and refuses every AUTHENTICATE with
// Exchange's bare "NO AUTHENTICATE failed." — the dead end doctor exists to explain.
class RefusingImapServer {
 public:
  RefusingImapServer() {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    EXPECT_EQ(::listen(fd_, 8), 0);
    socklen_t len = sizeof addr;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  ~RefusingImapServer() {
    ::shutdown(fd_, SHUT_RDWR);  // wakes accept()
    thread_.join();
    ::close(fd_);
  }
  int port() const { return port_; }
  int authenticates() const { return authenticates_.load(); }

 private:
  void serve() {
    for (;;) {
      int c = ::accept(fd_, nullptr, nullptr);
      if (c < 0) return;
      timeval tv{10, 0};  // a stuck client cannot hang the test
      ::setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
      converse(c);
      ::close(c);
    }
  }
  static bool read_line(int c, std::string& line) {
    line.clear();
    char ch;
    while (::recv(c, &ch, 1, 0) == 1) {
      if (ch == '\n') return true;
      if (ch != '\r') line += ch;
    }
    return false;
  }
  static void say(int c, const std::string& text) {
    (void)::send(c, text.data(), text.size(), MSG_NOSIGNAL);
  }
  void converse(int c) {
    say(c, "* OK [CAPABILITY IMAP4rev1 AUTH=XOAUTH2 SASL-IR] Exchange stand-in ready.\r\n");
    std::string line;
    while (read_line(c, line)) {
      std::istringstream in(line);
      std::string tag, command, mechanism, initial;
      in >> tag >> command >> mechanism >> initial;
      for (char& ch : command) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
      if (command == "CAPABILITY") {
        say(c, "* CAPABILITY IMAP4rev1 AUTH=XOAUTH2 SASL-IR\r\n" + tag + " OK CAPABILITY completed.\r\n");
      } else if (command == "AUTHENTICATE") {
        ++authenticates_;
        std::string response;
        if (initial.empty()) {
          say(c, "+ \r\n");
          read_line(c, response);
        }
        say(c, tag + " NO AUTHENTICATE failed.\r\n");
      } else if (command == "LOGOUT") {
        say(c, "* BYE Microsoft Exchange Server IMAP4 server signing off.\r\n" + tag +
                   " OK LOGOUT completed.\r\n");
        return;
      } else {
        say(c, tag + " BAD Command Error. 10\r\n");
      }
    }
  }

  int fd_ = -1;
  int port_ = 0;
  std::atomic<int> authenticates_{0};
  std::thread thread_;
};

TEST_F(DoctorTest, ServerRefusingAGoodTokenNamesServicePrincipalAndMailboxPermission) {
  RefusingImapServer server;
  auto app = entra::register_app({{"secret", true}, {"roles", entra::all_roles()}});
  ASSERT_THAT(app.status(), IsOk());
  const std::string client_id = (*app)["client_id"];
  const std::string sp = (*app)["sp_object_id"];
  std::string tables = fmt::format(
      "[[app]]\nname = \"entra\"\nauthority = {}\ntenant = {}\nclient_id = {}\n"
      "client_secret = \"env:{}\"\ntls = {{ ca_file = {} }}\n\n"
      "[[mailbox]]\nname = \"support\"\ntype = \"imap\"\nhost = \"127.0.0.1\"\nport = {}\n"
      "security = \"none\"\nauth = \"oauth2\"\napp = \"entra\"\nuser = \"{}\"\n",
      toml_quote(entra::at("MB_ENTRA_AUTHORITY")), toml_quote(entra::at("MB_ENTRA_TENANT_ID")),
      toml_quote(client_id), kSecretEnv, toml_quote(entra::at("MB_ENTRA_CA_FILE")),
      server.port(), kMailbox);
  std::string config = tmp_.file("mailbridge.toml");
  ASSERT_THAT(write_file(config, config_toml(tmp_.file("mb.db"), tables)), IsOk());
  RunResult r = doctor(config, (*app)["secret"], true);
  EXPECT_EQ(r.exit_code, 3) << r.describe();
  EXPECT_GE(server.authenticates(), 1);
  json doc = parse_json(r.out);
  ASSERT_FALSE(doc.is_discarded()) << r.describe();
  const json& res = doc["results"][0];
  ASSERT_NE(step(res, "permission"), nullptr) << r.out;
  EXPECT_EQ((*step(res, "permission"))["ok"], true) << r.out;
  std::string fix;
  for (const auto& s : res["steps"]) {
    if (s["ok"] == false && s["fix"].is_string()) fix = s["fix"];
  }
  EXPECT_THAT(fix, AllOf(HasSubstr(fmt::format("New-ServicePrincipal -AppId {} -ObjectId {}",
                                               client_id, sp)),
                         HasSubstr(fmt::format("Add-MailboxPermission -Identity {} -User {} "
                                               "-AccessRights FullAccess",
                                               kMailbox, sp))))
      << r.out;
}

}  // namespace
}  // namespace mb::itest
