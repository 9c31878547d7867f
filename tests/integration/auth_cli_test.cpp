// File: tests/integration/auth_cli_test.cpp — `mailbridge auth login` and `auth status`, the
// real binary against the oidc-provider harness (tests/harness/oauth.sh): the device code
// is read from the running binary's stdout, approved (or denied) the way a user would, and
// the grant must then be on disk (0600), visible in `auth status --json`, and no token or
// secret may appear in any output.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "auth/base64.h"
#include "auth/token_store.h"
#include "tests/integration/harness.h"
#include "tests/status_matchers.h"

extern char** environ;

namespace mb::itest {
namespace {

using ::mb::testing::IsOk;
using ::testing::HasSubstr;
using ::testing::Not;

// `mailbridge ARGS` running with its stdout on a pipe we read while it waits for approval.
class PipedChild {
 public:
  explicit PipedChild(const std::vector<std::string>& args, const std::string& err_path) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) return;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[1], STDOUT_FILENO);
    posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, err_path.c_str(),
                                     O_WRONLY | O_CREAT | O_TRUNC, 0600);
    std::vector<std::string> argv_s = {mailbridge_bin()};
    argv_s.insert(argv_s.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& a : argv_s) argv.push_back(a.data());
    argv.push_back(nullptr);
    if (posix_spawn(&pid_, argv[0], &fa, nullptr, argv.data(), environ) != 0) pid_ = -1;
    posix_spawn_file_actions_destroy(&fa);
    ::close(fds[1]);
    fd_ = fds[0];
  }
  ~PipedChild() {
    if (pid_ > 0 && !reaped_) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    if (fd_ >= 0) ::close(fd_);
  }

  // Reads stdout until it holds `needle` (true) or until EOF or the deadline (false).
  bool read_until(const std::string& needle, std::chrono::seconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (out_.find(needle) == std::string::npos) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0 || !read_some(static_cast<int>(left.count()))) return false;
    }
    return true;
  }

  // Reads to EOF and reaps the child; its exit code, or -1 (killed after the timeout).
  int finish(std::chrono::seconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) {
        ::kill(pid_, SIGKILL);
        break;
      }
      if (!read_some(static_cast<int>(left.count()))) break;
    }
    int status = 0;
    ::waitpid(pid_, &status, 0);
    reaped_ = true;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

  bool started() const { return pid_ > 0; }
  const std::string& out() const { return out_; }

 private:
  bool read_some(int timeout_ms) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, timeout_ms) <= 0) return false;
    char buf[4096];
    ssize_t n = ::read(fd_, buf, sizeof buf);
    if (n <= 0) return false;
    out_.append(buf, static_cast<size_t>(n));
    return true;
  }

  pid_t pid_ = -1;
  int fd_ = -1;
  bool reaped_ = false;
  std::string out_;
};

class AuthCliIntegrationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (auto env = read_server_env(oauth_harness_dir()); env.ok()) env_ = *env;
    ASSERT_FALSE(env_["MB_OAUTH_TOKEN_URL"].empty())
        << "no OAuth harness in " << oauth_harness_dir() << " (tests/harness/oauth.sh start)";
    scope_ = env_["MB_OAUTH_MAIL_SCOPE"] + " offline_access";
    ASSERT_THAT(write_file(tmp_.file("token.key"), base64_encode(std::string(32, 'z')) + "\n"),
                IsOk());
    config_ = tmp_.file("mailbridge.toml");
    std::string text =
        "[store]\npath = \"mailbridge.db\"\n\n"
        "[auth]\ntoken_dir = \"tokens\"\nkey = \"file:token.key\"\n\n"
        "[[app]]\nname = \"desk\"\n"
        "token_endpoint = " + toml_quote(env_["MB_OAUTH_TOKEN_URL"]) + "\n"
        "device_endpoint = " + toml_quote(env_["MB_OAUTH_DEVICE_URL"]) + "\n"
        "client_id = " + toml_quote(env_["MB_OAUTH_PUBLIC_CLIENT_ID"]) + "\n"
        "scopes = [" + toml_quote(env_["MB_OAUTH_MAIL_SCOPE"]) + ", \"offline_access\"]\n"
        "tls = { ca_file = " + toml_quote(env_["MB_OAUTH_CA_FILE"]) + " }\n"
        "timeouts = { connect = \"10s\", response = \"10s\" }\n";
    ASSERT_THAT(write_file(config_, text), IsOk());
  }

  // Runs `auth login desk` until it shows the code, then hands the code to `decide`.
  int login(const std::string& user, const std::function<void(const std::string&)>& decide,
            std::string& out, std::string& err) {
    PipedChild child({"--config", config_, "auth", "login", "desk", "--user", user},
                     tmp_.file("login.err"));
    EXPECT_TRUE(child.started());
    const std::string marker = "enter the code ";
    bool shown = child.read_until(marker, std::chrono::seconds(30)) &&
                 child.read_until("\n", std::chrono::seconds(5));
    std::string code;
    if (shown) {
      size_t at = child.out().find(marker) + marker.size();
      code = child.out().substr(at, child.out().find('\n', at) - at);
      decide(code);
    }
    int rc = child.finish(std::chrono::seconds(60));
    out = child.out();
    auto err_text = read_file(tmp_.file("login.err"));
    err = err_text.ok() ? *err_text : "";
    EXPECT_TRUE(shown) << "stdout: " << out << "\nstderr: " << err;
    EXPECT_FALSE(code.empty());
    return rc;
  }

  void admin_post(const std::string& path, const std::string& form) {
    RunOptions opts;
    opts.timeout = std::chrono::seconds(20);
    auto p = Process::start("/usr/bin/curl", {"-sS", "--fail", "--max-time", "10", "-X", "POST",
                                             env_["MB_OAUTH_ADMIN_URL"] + path, "-d", form},
                            opts);
    ASSERT_THAT(p, IsOk());
    RunResult r = (*p)->wait(opts.timeout);
    EXPECT_EQ(r.exit_code, 0) << r.describe();
  }

  std::map<std::string, std::string> env_;
  TempDir tmp_;
  std::string config_;
  std::string scope_;
};

TEST_F(AuthCliIntegrationTest, DeviceLoginStoresTheGrantAndStatusShowsIt) {
  const std::string account = "agent-" + std::to_string(::getpid()) + "@mailbridge.test";
  std::string out, err;
  int rc = login(account, [&](const std::string& code) {
    RunOptions opts;
    opts.timeout = std::chrono::seconds(30);
    auto p = Process::start("/bin/bash",
                            {std::string(MB_SOURCE_DIR) + "/tests/harness/oauth.sh", "approve",
                             oauth_harness_dir(), code, account},
                            opts);
    ASSERT_THAT(p, IsOk());
    RunResult r = (*p)->wait(opts.timeout);
    EXPECT_EQ(r.exit_code, 0) << r.describe();
  }, out, err);
  ASSERT_EQ(rc, 0) << "stdout: " << out << "\nstderr: " << err;
  EXPECT_THAT(out, HasSubstr("To sign in, open " + env_["MB_OAUTH_ISSUER"]));
  EXPECT_THAT(out, HasSubstr("Signed in as " + account + "; the grant is stored in " +
                             tmp_.file("tokens")));

  // The grant: one 0600 file under the key a mailbox with that user will use.
  auto tokens = TokenStore::open(tmp_.file("tokens"), SecretRef{"file:" + tmp_.file("token.key")});
  ASSERT_THAT(tokens, IsOk());
  TokenKey key{"desk", scope_, account};
  struct stat sb{};
  ASSERT_EQ(::stat((*tokens)->path_for(key).c_str(), &sb), 0);
  EXPECT_EQ(sb.st_mode & 0777, 0600);
  auto refresh = (*tokens)->load(key);
  ASSERT_THAT(refresh, IsOk());
  ASSERT_TRUE(refresh->has_value());

  RunResult status = run_mailbridge({"--config", config_, "auth", "status", "--json"}, {});
  ASSERT_EQ(status.exit_code, 0) << status.describe();
  nlohmann::json j = parse_json(status.out);
  ASSERT_TRUE(j.is_array()) << status.out;
  ASSERT_EQ(j.size(), 1u);
  EXPECT_EQ(j[0]["flow"], "delegated");
  EXPECT_EQ(j[0]["token_endpoint"], env_["MB_OAUTH_TOKEN_URL"]);
  ASSERT_EQ(j[0]["tokens"].size(), 1u);
  const auto& t = j[0]["tokens"][0];
  EXPECT_EQ(t["user"], account);
  EXPECT_EQ(t["grant"], "stored");
  EXPECT_EQ(t["refreshes"], 1);
  EXPECT_TRUE(t["expires_at"].is_string());
  EXPECT_TRUE(t["last_refresh"].is_string());
  EXPECT_TRUE(t["last_error"].is_null());

  RunResult text = run_mailbridge({"--config", config_, "auth", "status"}, {});
  EXPECT_EQ(text.exit_code, 0) << text.describe();
  EXPECT_THAT(text.out, HasSubstr("grant:         stored"));
  for (const std::string& s : {out, err, status.out, status.err, text.out, text.err}) {
    EXPECT_THAT(s, Not(HasSubstr(**refresh)));
    EXPECT_THAT(s, Not(HasSubstr(env_["MB_OAUTH_CLIENT_SECRET"])));
    EXPECT_THAT(s, Not(HasSubstr(base64_encode(std::string(32, 'z')))));
  }
}

TEST_F(AuthCliIntegrationTest, DeniedLoginIsAnAuthenticationFailure) {
  std::string out, err;
  int rc = login("denied@mailbridge.test", [&](const std::string& code) {
    admin_post("/device/deny", "user_code=" + code);
  }, out, err);
  EXPECT_EQ(rc, 3) << "stdout: " << out << "\nstderr: " << err;
  EXPECT_THAT(err, HasSubstr("access_denied"));
  EXPECT_THAT(out, Not(HasSubstr("Signed in")));
  RunResult status = run_mailbridge({"--config", config_, "auth", "status", "--json"}, {});
  ASSERT_EQ(status.exit_code, 0) << status.describe();
  nlohmann::json j = parse_json(status.out);
  ASSERT_TRUE(j.is_array()) << status.out;
  EXPECT_TRUE(j[0]["tokens"].empty());
}

}  // namespace
}  // namespace mb::itest
