// File: tests/integration/imap_oauth_test.cpp — IMAP with auth = "oauth2" end to end: the
// real binary, the private Dovecot validating tokens with its oauth2 passdb (introspection),
// and the oidc-provider test server. A delegated grant (device code approved by the test
// through the admin URL) signs in with XOAUTH2 over IMAPS; a token that expires mid-run is
// refreshed for the next sign-in without a failed command; a disabled client leads, over
// three runs, to auth-failed and exactly one alert ticket, and re-enabling it resumes the
// mailbox with a note on that ticket.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "auth/auth_context.h"
#include "auth/base64.h"
#include "auth/token_store.h"
#include "core/config.h"
#include "tests/integration/harness.h"
#include "tests/status_matchers.h"

namespace mb::itest {
namespace {

using ::mb::testing::IsOk;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;

using Env = std::map<std::string, std::string>;

constexpr const char* kApp = "harness";

// Polls `done` every 50 ms for at most `limit`.
template <typename Fn>
bool wait_until(Fn&& done, std::chrono::seconds limit = std::chrono::seconds(20)) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return true;
}

// A TCP proxy on 127.0.0.1 that holds each connection for `delay` before connecting it to
// `target_port` and then copies bytes both ways (TLS passes through untouched). It makes
// "this sign-in happens later than that one" a fact instead of a race.
class DelayingProxy {
 public:
  DelayingProxy(uint16_t target_port, std::chrono::milliseconds delay)
      : target_(target_port), delay_(delay) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(a);
    if (listen_fd_ < 0 || ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), len) != 0 ||
        ::listen(listen_fd_, 8) != 0 ||
        ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
      return;
    }
    port_ = ntohs(a.sin_port);
    acceptor_ = std::thread([this] { accept_loop(); });
  }
  ~DelayingProxy() {
    stop_ = true;
    if (acceptor_.joinable()) acceptor_.join();
    for (auto& t : pumps_) t.join();
    if (listen_fd_ >= 0) ::close(listen_fd_);
  }
  uint16_t port() const { return port_; }
  int connections() const { return connections_; }

 private:
  void accept_loop() {
    while (!stop_) {
      pollfd p{listen_fd_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      int fd = ::accept(listen_fd_, nullptr, nullptr);
      if (fd < 0) continue;
      ++connections_;
      pumps_.emplace_back([this, fd] { pump(fd); });
    }
  }
  void pump(int client) {
    auto until = std::chrono::steady_clock::now() + delay_;
    while (!stop_ && std::chrono::steady_clock::now() < until) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    int server = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(target_);
    bool up = server >= 0 && ::connect(server, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0;
    while (up && !stop_) {
      pollfd p[2] = {{client, POLLIN, 0}, {server, POLLIN, 0}};
      if (::poll(p, 2, 50) <= 0) continue;
      for (int i = 0; i < 2 && up; ++i) {
        if (p[i].revents == 0) continue;
        char buf[16384];
        ssize_t n = ::read(p[i].fd, buf, sizeof(buf));
        up = n > 0 && ::send(p[1 - i].fd, buf, static_cast<size_t>(n), MSG_NOSIGNAL) == n;
      }
    }
    if (server >= 0) ::close(server);
    ::close(client);
  }

  uint16_t target_;
  std::chrono::milliseconds delay_;
  int listen_fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> connections_{0};
  std::thread acceptor_;
  std::vector<std::thread> pumps_;  // only the acceptor thread adds, before the join
};

class ImapOAuthEndToEndTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto env = load_harness();
    ASSERT_THAT(env, IsOk());
    env_ = *env;
    auto dovecot = read_server_env(env_.dir);
    ASSERT_THAT(dovecot, IsOk());
    ASSERT_EQ((*dovecot)["MB_OAUTH2"], "1")
        << "the Dovecot of " << env_.dir << " runs without its oauth2 passdb: run through "
        << "ctest (fixture servers), or start tests/harness/dovecot.sh with the OAuth DIR";
    auto oauth = read_server_env((*dovecot)["MB_OAUTH_DIR"]);
    ASSERT_THAT(oauth, IsOk());
    oauth_ = *oauth;
    user_ = unique_user();
    dir_ = std::make_unique<TempDir>();
    ASSERT_THAT(write_file(dir_->file("token.key"), base64_encode(test_bytes(32, ::getpid()))),
                IsOk());
    ::chmod(dir_->file("token.key").c_str(), 0600);
  }
  void TearDown() override {
    if (HasFailure() && dir_) {
      dir_->keep();
      std::fprintf(stderr, "kept %s (mail user %s)\n", dir_->path().c_str(), user_.c_str());
    }
  }

  std::string config() const { return dir_->file("mailbridge.toml"); }
  std::string db() const { return dir_->file("mailbridge.db"); }
  std::string admin(const std::string& path) const {
    return oauth_.at("MB_OAUTH_ADMIN_URL") + path;
  }

  // The [[app]] of the public client, [auth], and one OAuth mailbox per folder.
  // ports[i] (when given and not 0) is where mailbox i connects instead of Dovecot's IMAPS.
  std::string tables(const std::vector<std::string>& folders,
                     const std::vector<uint16_t>& ports) const {
    std::string t = fmt::format(
        "[auth]\nkey = {}\n\n[[app]]\nname = {}\nclient_id = {}\ntoken_endpoint = {}\n"
        "device_endpoint = {}\nflow = \"delegated\"\n"
        "scopes = [\"mail.access\", \"offline_access\"]\ntls = {{ ca_file = {} }}\n",
        toml_quote("file:" + dir_->file("token.key")), toml_quote(kApp),
        toml_quote(oauth_.at("MB_OAUTH_PUBLIC_CLIENT_ID")),
        toml_quote(oauth_.at("MB_OAUTH_TOKEN_URL")), toml_quote(oauth_.at("MB_OAUTH_DEVICE_URL")),
        toml_quote(oauth_.at("MB_OAUTH_CA_FILE")));
    for (size_t i = 0; i < folders.size(); ++i) {
      t += fmt::format(
          "\n[[mailbox]]\nname = {}\ntype = \"imap\"\nhost = \"localhost\"\nport = {}\n"
          "security = \"tls\"\nauth = \"oauth2\"\napp = {}\nuser = {}\nfolder = {}\n"
          "tls = {{ ca_file = {} }}\n",
          toml_quote(i == 0 ? "support" : fmt::format("support{}", i)),
          i < ports.size() && ports[i] != 0 ? ports[i] : env_.imaps_port,
          toml_quote(kApp), toml_quote(user_), toml_quote(folders[i]), toml_quote(env_.ca_file));
    }
    return t;
  }
  void write_config(const std::vector<std::string>& folders = {"INBOX"},
                    const std::vector<uint16_t>& ports = {}) {
    EXPECT_THAT(write_file(config(), config_toml(db(), tables(folders, ports))), IsOk());
  }

  // The device-code grant for user_, approved through the admin URL, stored where and how
  // mailbridge looks for it (the TokenKey of the mailboxes, encrypted under [auth] key).
  void sign_in_user() {
    auto started = curl_json({"--cacert", oauth_.at("MB_OAUTH_CA_FILE"), "-d",
                              "client_id=" + oauth_.at("MB_OAUTH_PUBLIC_CLIENT_ID"),
                              "--data-urlencode", "scope=mail.access offline_access",
                              oauth_.at("MB_OAUTH_DEVICE_URL")});
    ASSERT_THAT(started, IsOk());
    ASSERT_TRUE(started->contains("device_code")) << started->dump();
    auto approved = curl_json({"-X", "POST", "-d",
                               "user_code=" + (*started)["user_code"].get<std::string>(), "-d",
                               "account=" + user_, admin("/device/approve")});
    ASSERT_THAT(approved, IsOk());
    ASSERT_EQ((*approved)["approved"], true) << approved->dump();
    auto tokens = curl_json(
        {"--cacert", oauth_.at("MB_OAUTH_CA_FILE"), "-d",
         "client_id=" + oauth_.at("MB_OAUTH_PUBLIC_CLIENT_ID"), "-d",
         "grant_type=urn:ietf:params:oauth:grant-type:device_code", "-d",
         "device_code=" + (*started)["device_code"].get<std::string>(),
         oauth_.at("MB_OAUTH_TOKEN_URL")});
    ASSERT_THAT(tokens, IsOk());
    ASSERT_TRUE(tokens->contains("refresh_token")) << "no refresh token granted";
    refresh_token_ = (*tokens)["refresh_token"].get<std::string>();
    auto cfg = load_config(config());
    ASSERT_THAT(cfg, IsOk());
    auto auth = AuthContext::create(*cfg);
    ASSERT_THAT(auth, IsOk());
    auto key = (*auth)->key_for(kApp, Resource::kExchange, "imap", user_);
    ASSERT_THAT(key, IsOk());
    ASSERT_NE((*auth)->store(), nullptr);
    ASSERT_THAT((*auth)->store()->save(*key, refresh_token_), IsOk());
  }

  RunResult mailbridge(const std::vector<std::string>& args) {
    std::vector<std::string> full = {"--config", config()};
    full.insert(full.end(), args.begin(), args.end());
    RunOptions o;
    o.cwd = dir_->path();
    RunResult r = run_mailbridge(full, o);
    EXPECT_THAT(r.out + r.err, AllOf(Not(HasSubstr(refresh_token_)),
                                     Not(HasSubstr(oauth_.at("MB_OAUTH_CLIENT_SECRET")))));
    return r;
  }
  nlohmann::json json_of(const std::vector<std::string>& args) {
    RunResult r = mailbridge(args);
    EXPECT_EQ(r.exit_code, 0) << r.describe();
    return parse_json(r.out);
  }
  nlohmann::json stats() {
    auto s = curl_json({admin("/stats")});
    EXPECT_THAT(s, IsOk());
    return s.ok() ? *s : nlohmann::json::object();
  }
  int64_t refresh_grants() {
    nlohmann::json s = stats();
    return s["token"].value("refresh_token", int64_t{0});
  }
  // Dovecot's log lines for user_ that contain `what`.
  int log_lines(const std::string& what) {
    auto log = read_file(env_.log_file);
    if (!log.ok()) return 0;
    std::istringstream in(*log);
    int n = 0;
    for (std::string line; std::getline(in, line);) {
      if (line.find("user=<" + user_ + ">") != std::string::npos &&
          line.find(what) != std::string::npos) {
        ++n;
      }
    }
    return n;
  }
  void deliver_messages(const std::string& folder, int n, const std::string& tag) {
    for (int i = 0; i < n; ++i) {
      ASSERT_THAT(deliver(env_, user_,
                          make_message({.subject = fmt::format("{} {} message {}", tag, folder, i),
                                        .text = "Please help.\n"}),
                          folder),
                  IsOk());
    }
  }

  HarnessEnv env_;
  Env oauth_;
  std::string user_;
  std::string refresh_token_ = "<none yet>";
  std::unique_ptr<TempDir> dir_;
};

// Puts the server's settings back, and re-enables the client, whatever the test did.
class ServerRestore {
 public:
  explicit ServerRestore(std::string admin_url, std::string client_id)
      : admin_(std::move(admin_url)), client_(std::move(client_id)) {
    auto s = curl_json({admin_ + "/settings"});
    if (s.ok()) settings_ = *s;
  }
  ~ServerRestore() {
    std::vector<std::string> args = {"-X", "POST"};
    for (const auto& [k, v] : settings_.items()) {
      args.push_back("-d");
      args.push_back(k + "=" + v.dump());
    }
    args.push_back(admin_ + "/settings");
    if (!settings_.empty()) curl_json(args).status().ignore();
    curl_json({"-X", "POST", "-d", "client_id=" + client_, admin_ + "/clients/enable"})
        .status()
        .ignore();
  }
  bool ok() const { return !settings_.empty(); }

 private:
  std::string admin_, client_;
  nlohmann::json settings_;
};

TEST_F(ImapOAuthEndToEndTest, DelegatedGrantSyncsAnInboxOverImapsWithXOAuth2) {
  write_config();
  sign_in_user();
  if (HasFatalFailure()) return;
  deliver_messages("INBOX", 3, "OAuth mail");

  RunResult tc = mailbridge({"test-connection", "support"});
  EXPECT_EQ(tc.exit_code, 0) << tc.describe();
  EXPECT_THAT(tc.out, AllOf(HasSubstr("✓ token"), HasSubstr(oauth_.at("MB_OAUTH_TOKEN_URL")),
                            HasSubstr("expires"), HasSubstr("AUTHENTICATE XOAUTH2")));

  RunResult r = mailbridge({"sync", "--once"});
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_THAT(r.out, HasSubstr("support: 3 imported (3 tickets"));
  nlohmann::json tickets = json_of({"tickets", "list", "--json"});
  ASSERT_TRUE(tickets.is_array()) << tickets.dump();
  EXPECT_EQ(tickets.size(), 3u);
  auto inbox = list_folder(env_, user_, "INBOX");
  ASSERT_THAT(inbox, IsOk());
  for (const auto& m : *inbox) EXPECT_TRUE(m.seen) << m.subject;

  // Dovecot logs each login once the connection ends, a moment after the client exits.
  ASSERT_TRUE(wait_until([&] { return log_lines("method=XOAUTH2") >= 2; }))
      << log_lines("method=XOAUTH2");
  EXPECT_EQ(count_logins(env_, user_, /*tls=*/true), 2);
  EXPECT_EQ(count_logins(env_, user_, /*tls=*/false), 0);
  EXPECT_EQ(log_lines("auth failed"), 0);
}

TEST_F(ImapOAuthEndToEndTest, TokenExpiringMidRunIsRefreshedWithoutAFailedCommand) {
  ServerRestore restore(admin(""), oauth_.at("MB_OAUTH_PUBLIC_CLIENT_ID"));
  ASSERT_TRUE(restore.ok());
  // Two mailboxes of one grant, synced in parallel: "support" signs in at once with a token
  // that lives 2 s; "support1" reaches Dovecot through a proxy that holds its connection
  // 5 s, so its sign-in comes after that token has expired, within the same run.
  DelayingProxy proxy(env_.imaps_port, std::chrono::milliseconds(5000));
  ASSERT_NE(proxy.port(), 0) << "cannot listen on 127.0.0.1";
  const std::vector<std::string> folders = {"INBOX", "F1"};
  write_config(folders, {env_.imaps_port, proxy.port()});
  sign_in_user();
  if (HasFatalFailure()) return;
  auto set_ttl = curl_json({"-X", "POST", "-d", "access_token_ttl=2", admin("/settings")});
  ASSERT_THAT(set_ttl, IsOk());
  ASSERT_EQ((*set_ttl)["access_token_ttl"], 2) << set_ttl->dump();
  constexpr int kPerFolder = 10;
  for (const auto& f : folders) deliver_messages(f, kPerFolder, "expiring");

  const int64_t refreshes_before = refresh_grants();
  RunResult r = mailbridge({"sync", "--once"});
  ASSERT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_THAT(r.out, AllOf(HasSubstr("support: 10 imported"), HasSubstr("support1: 10 imported")));
  // One token for the first sign-in, another because it had expired for the second (more
  // if Dovecot refused one that expired on its way, which the cache replaces on the spot).
  EXPECT_GE(refresh_grants() - refreshes_before, 2);
  EXPECT_EQ(proxy.connections(), 1);

  // Every message exactly once, and no authentication failure anywhere.
  nlohmann::json tickets = json_of({"tickets", "list", "--json"});
  ASSERT_TRUE(tickets.is_array()) << tickets.dump();
  EXPECT_EQ(tickets.size(), folders.size() * kPerFolder);
  std::set<std::string> subjects;
  for (const auto& t : tickets) subjects.insert(t["subject"].get<std::string>());
  EXPECT_EQ(subjects.size(), tickets.size());
  nlohmann::json status = json_of({"status", "--json"});
  ASSERT_TRUE(status.is_array() && status.size() == folders.size()) << status.dump();
  for (const auto& m : status) {
    EXPECT_EQ(m["state"], "ok") << m.dump();
    EXPECT_EQ(m["consecutive_auth_failures"], 0) << m.dump();
  }
  ASSERT_TRUE(wait_until([&] { return log_lines("method=XOAUTH2") >= 2; }))
      << log_lines("method=XOAUTH2");
  EXPECT_EQ(count_logins(env_, user_, /*tls=*/true), 2);
  EXPECT_EQ(log_lines("auth failed"), 0);
}

TEST_F(ImapOAuthEndToEndTest, DisabledClientGoesAuthFailedWithOneAlertAndResumesWhenEnabled) {
  ServerRestore restore(admin(""), oauth_.at("MB_OAUTH_PUBLIC_CLIENT_ID"));
  ASSERT_TRUE(restore.ok());
  write_config();
  sign_in_user();
  if (HasFatalFailure()) return;
  deliver_messages("INBOX", 1, "Waiting");
  auto disabled = curl_json({"-X", "POST", "-d",
                             "client_id=" + oauth_.at("MB_OAUTH_PUBLIC_CLIENT_ID"),
                             admin("/clients/disable")});
  ASSERT_THAT(disabled, IsOk());
  ASSERT_EQ((*disabled)["enabled"], false);

  for (int i = 1; i <= 3; ++i) {
    SCOPED_TRACE(i);
    RunResult r = mailbridge({"sync", "--once"});
    EXPECT_EQ(r.exit_code, 3) << r.describe();
    EXPECT_THAT(r.err, HasSubstr("invalid_client"));
    if (i == 3) {
      EXPECT_THAT(r.err, HasSubstr("alert ticket #")) << r.describe();
    }
  }
  nlohmann::json status = json_of({"status", "--json"});
  ASSERT_TRUE(status.is_array() && status.size() == 1) << status.dump();
  EXPECT_EQ(status[0]["state"], "auth-failed");
  EXPECT_EQ(status[0]["consecutive_auth_failures"], 3);
  nlohmann::json tickets = json_of({"tickets", "list", "--json"});
  ASSERT_TRUE(tickets.is_array() && tickets.size() == 1) << tickets.dump();
  EXPECT_EQ(tickets[0]["source"], "System - Email Monitor");
  const int64_t alert = tickets[0]["id"].get<int64_t>();
  const int64_t alert_notes = tickets[0]["notes"].get<int64_t>();
  EXPECT_EQ(status[0]["alert_ticket"], alert);
  EXPECT_EQ(log_lines("Login:"), 0);  // Dovecot never saw a sign-in

  // A fourth run is paused: neither the token endpoint nor Dovecot is contacted.
  const nlohmann::json before = stats();
  RunResult paused = mailbridge({"sync", "--once"});
  EXPECT_EQ(paused.exit_code, 3) << paused.describe();
  EXPECT_THAT(paused.err, HasSubstr("paused"));
  EXPECT_EQ(stats()["requests"], before["requests"]);

  // Fixed at the server: test-connection signs in, resumes the mailbox and notes it on the
  // alert ticket; the next sync imports the waiting mail.
  ASSERT_THAT(curl_json({"-X", "POST", "-d",
                         "client_id=" + oauth_.at("MB_OAUTH_PUBLIC_CLIENT_ID"),
                         admin("/clients/enable")}),
              IsOk());
  RunResult tc = mailbridge({"test-connection", "support"});
  EXPECT_EQ(tc.exit_code, 0) << tc.describe();
  EXPECT_THAT(tc.out, AllOf(HasSubstr("✓ token"), HasSubstr("resumed"),
                            HasSubstr(fmt::format("alert ticket #{}", alert))));
  RunResult r = mailbridge({"sync", "--once"});
  EXPECT_EQ(r.exit_code, 0) << r.describe();
  EXPECT_THAT(r.out, HasSubstr("support: 1 imported"));
  status = json_of({"status", "--json"});
  ASSERT_TRUE(status.is_array() && status.size() == 1) << status.dump();
  EXPECT_EQ(status[0]["state"], "ok");
  EXPECT_EQ(status[0]["consecutive_auth_failures"], 0);
  tickets = json_of({"tickets", "list", "--json"});
  ASSERT_TRUE(tickets.is_array() && tickets.size() == 2) << tickets.dump();
  int alerts = 0;
  for (const auto& t : tickets) {
    if (t["source"] != "System - Email Monitor") continue;
    ++alerts;
    EXPECT_EQ(t["id"], alert);
    EXPECT_EQ(t["notes"].get<int64_t>(), alert_notes + 1) << t.dump();  // the resume note
  }
  EXPECT_EQ(alerts, 1);
}

}  // namespace
}  // namespace mb::itest
