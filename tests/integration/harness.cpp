// File: tests/integration/harness.cpp — the integration tests' access to the private
// Dovecot (DIR/env, Maildir delivery and inspection) and to the mailbridge binary.
#include "tests/integration/harness.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <sstream>
#include <thread>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "auth/secrets.h"
#include "core/config.h"
#include "core/http.h"

extern char** environ;

namespace mb::itest {
namespace fs = std::filesystem;

namespace {

// The secrets a case registers (its configuration's, the tokens it was given) are forgotten
// before the next case starts: the sanitizer build runs every case in one process, and a short
// secret of one case (its base64 pieces) must not redact another's expected text.
class ForgetSecretsBetweenCases : public ::testing::EmptyTestEventListener {
  void OnTestStart(const ::testing::TestInfo&) override { Redactor::instance().forget_all(); }
};

const bool kForgetSecretsInstalled = [] {
  ::testing::UnitTest::GetInstance()->listeners().Append(new ForgetSecretsBetweenCases);
  return true;
}();

std::string dovecot_dir() { return harness_dir("MB_HARNESS_DIR", MB_HARNESS_DIR); }

bool process_alive(pid_t pid) {
  if (pid <= 0) return false;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string pid_s, comm, state;
  if (!(stat >> pid_s >> comm >> state)) return false;
  return state != "Z";
}

// Stops, when the test program ends, the servers this process started itself (outside
// ctest's fixtures): each stop registered with stop_at_exit(), the last registered first.
class StopAtExit : public ::testing::Environment {
 public:
  void TearDown() override {
    std::vector<std::function<void()>> stops;
    {
      std::lock_guard lock(mu());
      stops = list();
    }
    for (auto it = stops.rbegin(); it != stops.rend(); ++it) (*it)();
  }
  static std::mutex& mu() {
    static std::mutex m;
    return m;
  }
  static std::vector<std::function<void()>>& list() {
    static std::vector<std::function<void()>> l;
    return l;
  }
};
::testing::Environment* const kStopAtExit = ::testing::AddGlobalTestEnvironment(new StopAtExit);

void stop_at_exit(std::function<void()> stop) {
  std::lock_guard lock(StopAtExit::mu());
  StopAtExit::list().push_back(std::move(stop));
}

// Maildir++ directory of a folder: INBOX is the Maildir itself, "A/B" is ".A.B".
std::string folder_dir(const HarnessEnv& env, const std::string& user,
                       const std::string& folder) {
  std::string base = env.mail_root + "/" + user + "/Maildir";
  std::string upper = folder;
  std::transform(upper.begin(), upper.end(), upper.begin(), ::toupper);
  if (upper == "INBOX") return base;
  std::string name = folder;
  std::replace(name.begin(), name.end(), '/', '.');
  return base + "/." + name;
}

// Creates dir (and missing parents) owned by the mail user when we run as root.
Status make_owned_dir(const HarnessEnv& env, const std::string& dir) {
  std::error_code ec;
  fs::path p(dir);
  std::vector<fs::path> created;
  for (fs::path cur = p; !cur.empty() && !fs::exists(cur, ec); cur = cur.parent_path()) {
    created.push_back(cur);
  }
  fs::create_directories(p, ec);
  if (ec) return Status(ErrorKind::kInternal, "mkdir " + dir + ": " + ec.message());
  for (const auto& c : created) {
    ::chmod(c.c_str(), 0700);
    if (::geteuid() == 0 && ::chown(c.c_str(), env.mail_uid, env.mail_gid) != 0) {
      return Status(ErrorKind::kInternal, "chown " + c.string() + ": " + std::strerror(errno));
    }
  }
  return Status::Ok();
}

std::string header_value(const std::string& raw, const std::string& name) {
  std::string lname = name + ":";
  std::istringstream in(raw);
  std::string line, value;
  bool in_header = false;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) break;
    if (in_header && (line[0] == ' ' || line[0] == '\t')) {
      value += line;
      continue;
    }
    if (in_header) break;
    if (line.size() >= lname.size() &&
        strncasecmp(line.c_str(), lname.c_str(), lname.size()) == 0) {
      in_header = true;
      value = line.substr(lname.size());
    }
  }
  size_t b = value.find_first_not_of(" \t");
  return b == std::string::npos ? "" : value.substr(b);
}

std::string base64(const std::string& data) {
  std::string out(4 * ((data.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(data.data()),
                          static_cast<int>(data.size()));
  out.resize(static_cast<size_t>(n));
  std::string wrapped;
  for (size_t i = 0; i < out.size(); i += 76) wrapped += out.substr(i, 76) + "\r\n";
  return wrapped;
}

std::string crlf(const std::string& text) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\n' && (i == 0 || text[i - 1] != '\r')) out += '\r';
    out += text[i];
  }
  return out;
}

}  // namespace

// ---- harness env ----

Result<HarnessEnv> read_harness_env(const std::string& dir) {
  auto lines = read_server_env(dir);
  if (!lines.ok()) return lines.status();
  const ServerEnv& kv = *lines;
  auto need = [&](const char* k) -> std::string {
    auto it = kv.find(k);
    return it == kv.end() ? "" : it->second;
  };
  for (const char* k : {"MB_IMAPS_PORT", "MB_IMAP_PORT", "MB_CA_FILE", "MB_PASSWORD",
                        "MB_MAIL_ROOT", "MB_DOVECOT_PID"}) {
    if (need(k).empty()) return Status(ErrorKind::kConfig, dir + "/env lacks " + k);
  }
  HarnessEnv e;
  e.dir = dir;
  e.imaps_port = static_cast<uint16_t>(std::stoi(need("MB_IMAPS_PORT")));
  e.imap_port = static_cast<uint16_t>(std::stoi(need("MB_IMAP_PORT")));
  e.pop3s_port = static_cast<uint16_t>(std::atoi(need("MB_POP3S_PORT").c_str()));
  e.pop3_port = static_cast<uint16_t>(std::atoi(need("MB_POP3_PORT").c_str()));
  e.ca_file = need("MB_CA_FILE");
  e.other_ca_file = need("MB_OTHER_CA_FILE");
  e.password = need("MB_PASSWORD");
  e.mail_root = need("MB_MAIL_ROOT");
  e.dovecot_pid = static_cast<pid_t>(std::stoi(need("MB_DOVECOT_PID")));
  e.dovecot_conf = need("MB_DOVECOT_CONF");
  e.log_file = dir + "/logs/dovecot.log";
  struct stat st {};
  if (::stat(e.mail_root.c_str(), &st) != 0) {
    return Status(ErrorKind::kConfig, "mail root " + e.mail_root + " is missing");
  }
  e.mail_uid = st.st_uid;
  e.mail_gid = st.st_gid;
  return e;
}

Result<HarnessEnv> load_harness() {
  static std::mutex mu;
  static std::optional<HarnessEnv> cached;
  static bool self_started = false;
  std::lock_guard lock(mu);
  if (cached && process_alive(cached->dovecot_pid)) return *cached;
  std::string dir = dovecot_dir();
  auto env = read_harness_env(dir);
  if (!env.ok() || !process_alive(env->dovecot_pid)) {
    // Not under ctest's fixture (or it died): start our own for this process.
    if (!run_harness_script("dovecot.sh", {"start", dir})) {
      return Status(ErrorKind::kInternal, "could not start Dovecot in " + dir);
    }
    if (!self_started) {
      self_started = true;
      stop_at_exit([] { run_harness_script("dovecot.sh", {"stop", dovecot_dir()}); });
    }
    env = read_harness_env(dir);
    if (!env.ok()) return env.status();
  }
  cached = *env;
  return *cached;
}

// ---- the servers of tests/harness/*.sh ----

std::string harness_dir(const char* env_name, const char* compiled_default) {
  if (const char* d = std::getenv(env_name); d && *d) return d;
  return compiled_default;
}

std::string oauth_harness_dir() {
  return harness_dir("MB_OAUTH_HARNESS_DIR", MB_OAUTH_HARNESS_DIR);
}

Result<ServerEnv> read_server_env(const std::string& dir) {
  auto text = read_file(dir + "/env");
  if (!text.ok()) return text.status();
  ServerEnv out;
  std::istringstream in(*text);
  for (std::string line; std::getline(in, line);) {
    auto eq = line.find('=');
    if (eq == std::string::npos || line[0] == '#') continue;
    out[line.substr(0, eq)] = line.substr(eq + 1);
  }
  return out;
}

bool server_running(const ServerEnv& env, const std::string& pid_key) {
  auto it = env.find(pid_key);
  return it != env.end() && ::access(("/proc/" + it->second).c_str(), F_OK) == 0;
}

bool run_harness_script(const std::string& script, const std::vector<std::string>& args) {
  RunOptions opts;
  opts.timeout = std::chrono::seconds(60);
  std::vector<std::string> argv = {std::string(MB_SOURCE_DIR) + "/tests/harness/" + script};
  argv.insert(argv.end(), args.begin(), args.end());
  auto p = Process::start("/bin/bash", argv, opts);
  if (!p.ok()) return false;
  RunResult r = (*p)->wait(opts.timeout);
  if (r.exit_code != 0) {
    std::fprintf(stderr, "%s %s: %s\n", script.c_str(), args.empty() ? "" : args[0].c_str(),
                 r.describe().c_str());
  }
  return r.exit_code == 0;
}

Result<nlohmann::json> curl_json(const std::vector<std::string>& args) {
  RunOptions o;
  o.timeout = std::chrono::seconds(30);
  std::vector<std::string> full = {"-sS", "--max-time", "20"};
  full.insert(full.end(), args.begin(), args.end());
  auto p = Process::start("/usr/bin/curl", full, o);
  if (!p.ok()) return p.status();
  RunResult r = (*p)->wait(o.timeout);
  if (r.exit_code != 0) return Status(ErrorKind::kNetwork, "curl failed: " + r.err);
  nlohmann::json j = parse_json(r.out);
  if (j.is_discarded()) return Status(ErrorKind::kProtocol, "not JSON from curl");
  return j;
}

HarnessServer::HarnessServer(HarnessServerSpec spec) : spec_(std::move(spec)) {}
HarnessServer::~HarnessServer() = default;

std::string HarnessServer::dir() const { return harness_dir(spec_.dir_env, spec_.default_dir); }

Result<ServerEnv> HarnessServer::read_env() const { return read_server_env(dir()); }

bool HarnessServer::running(const ServerEnv& env) const {
  return server_running(env, spec_.pid_key);
}

bool HarnessServer::run_script(const std::string& action) const {
  std::vector<std::string> args = {action, dir()};
  if (action == "start" && spec_.start_args) {
    for (auto& a : spec_.start_args()) args.push_back(std::move(a));
  }
  return run_harness_script(spec_.script, args);
}

const ServerEnv& HarnessServer::env() {
  if (spec_.needs && !spec_.needs()) return cached_;
  std::lock_guard lock(mu_);
  if (!cached_.empty() && running(cached_)) return cached_;
  auto e = read_env();
  if (!e.ok() || !running(*e)) {
    started_ = run_script("start");
    if (started_ && !stop_registered_) {
      stop_registered_ = true;
      stop_at_exit([this] {
        if (started_) run_script("stop");
      });
    }
    e = read_env();
  }
  if (!e.ok()) {
    ADD_FAILURE() << spec_.what << " is not running: " << e.status().message();
    cached_.clear();
    return cached_;
  }
  cached_ = *e;
  return cached_;
}

std::string HarnessServer::at(const std::string& key) {
  const ServerEnv& e = env();
  auto it = e.find(key);
  return it == e.end() ? "" : it->second;
}

Result<nlohmann::json> HarnessServer::admin(const std::string& method, const std::string& path,
                                            const nlohmann::json& body) {
  std::call_once(http_once_, [this] {
    HttpOptions o;
    o.allow_plain_http = true;
    o.timeouts = Timeouts{std::chrono::seconds(10), spec_.admin_timeout};
    http_ = make_http_client(o);
  });
  HttpRequest req;
  req.method = method;
  req.url = at(spec_.admin_url_key) + path;
  if (method == "POST") {
    req.headers = {{"Content-Type", "application/json"}};
    req.body = body.dump();
  }
  auto r = http_->send(req);
  if (!r.ok()) return r.status();
  auto j = nlohmann::json::parse(r->body, nullptr, false);
  if (r->status != 200 || j.is_discarded()) {
    return Status(ErrorKind::kInternal, spec_.admin_what + " " + path + ": HTTP " +
                                            std::to_string(r->status) + " " + r->body);
  }
  return j;
}

std::string unique_user() {
  static std::atomic<int> counter{0};
  std::string hint = "u";
  if (const auto* info = ::testing::UnitTest::GetInstance()->current_test_info()) {
    hint = std::string(info->test_suite_name()) + "-" + info->name();
  }
  std::string name;
  for (char c : hint) {
    char l = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    name += std::isalnum(static_cast<unsigned char>(l)) ? l : '-';
  }
  if (name.size() > 60) name = name.substr(name.size() - 60);
  auto now = std::chrono::system_clock::now().time_since_epoch();
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now).count();
  return fmt::format("{}-{}-{}-{}", name, ::getpid(), ms % 100000000, counter++);
}

// ---- Maildir ----

Status deliver(const HarnessEnv& env, const std::string& user, const std::string& raw,
               const std::string& folder) {
  static std::atomic<int> seq{0};
  std::string dir = folder_dir(env, user, folder);
  for (const char* sub : {"/tmp", "/new", "/cur"}) MB_RETURN_IF_ERROR(make_owned_dir(env, dir + sub));
  auto now = std::chrono::system_clock::now().time_since_epoch();
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(now).count();
  std::string name = fmt::format("{}.M{}P{}Q{}.mbtest", us / 1000000, us % 1000000, ::getpid(),
                                 seq++);
  std::string tmp = dir + "/tmp/" + name;
  MB_RETURN_IF_ERROR(write_file(tmp, raw));
  ::chmod(tmp.c_str(), 0600);
  if (::geteuid() == 0 && ::chown(tmp.c_str(), env.mail_uid, env.mail_gid) != 0) {
    return Status(ErrorKind::kInternal, "chown " + tmp + ": " + std::strerror(errno));
  }
  std::string dest = dir + "/new/" + name;
  if (::rename(tmp.c_str(), dest.c_str()) != 0) {
    return Status(ErrorKind::kInternal, "rename into " + dest + ": " + std::strerror(errno));
  }
  return Status::Ok();
}

Result<std::vector<ServerMessage>> list_folder(const HarnessEnv& env, const std::string& user,
                                               const std::string& folder) {
  std::vector<ServerMessage> out;
  std::string dir = folder_dir(env, user, folder);
  for (const char* sub : {"/new", "/cur"}) {
    std::error_code ec;
    if (!fs::is_directory(dir + sub, ec)) continue;
    for (const auto& entry : fs::directory_iterator(dir + sub, ec)) {
      ServerMessage m;
      m.file = entry.path().string();
      std::string name = entry.path().filename().string();
      auto info = name.find(":2,");
      if (info != std::string::npos) m.flags = name.substr(info + 3);
      m.seen = m.flags.find('S') != std::string::npos;
      m.deleted = m.flags.find('T') != std::string::npos;
      auto raw = read_file(m.file);
      if (!raw.ok()) continue;  // renamed by Dovecot between listing and reading
      m.raw = *raw;
      m.subject = header_value(m.raw, "Subject");
      out.push_back(std::move(m));
    }
    if (ec) return Status(ErrorKind::kInternal, "listing " + dir + sub + ": " + ec.message());
  }
  std::sort(out.begin(), out.end(),
            [](const auto& a, const auto& b) { return a.file < b.file; });
  return out;
}

int count_logins(const HarnessEnv& env, const std::string& user, bool tls) {
  auto log = read_file(env.log_file);
  if (!log.ok()) return 0;
  std::istringstream in(*log);
  std::string line, needle = "Login: user=<" + user + ">";
  int n = 0;
  while (std::getline(in, line)) {
    if (line.find(needle) == std::string::npos) continue;
    bool over_tls = line.find(", TLS") != std::string::npos;
    if (over_tls == tls) ++n;
  }
  return n;
}

// ---- messages ----

std::string sha256_hex(const std::string& data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr);
  std::string hex;
  for (unsigned int i = 0; i < len; ++i) hex += fmt::format("{:02x}", md[i]);
  return hex;
}

std::string test_bytes(size_t n, uint32_t seed) {
  std::mt19937 gen(seed);
  std::string out(n, '\0');
  for (auto& c : out) c = static_cast<char>(gen() & 0xff);
  return out;
}

namespace {

std::string body_part(const MessageSpec& spec, const std::string& boundary) {
  auto text_part = [](const std::string& type, const std::string& body) {
    return "Content-Type: " + type + "; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n" +
           crlf(body) + "\r\n";
  };
  if (spec.html.empty()) return text_part("text/plain", spec.text);
  if (spec.text.empty()) return text_part("text/html", spec.html);
  return "Content-Type: multipart/alternative; boundary=\"" + boundary + "\"\r\n\r\n--" +
         boundary + "\r\n" + text_part("text/plain", spec.text) + "--" + boundary + "\r\n" +
         text_part("text/html", spec.html) + "--" + boundary + "--\r\n";
}

std::string attachment_part(const Part& p) {
  std::string disp = p.content_id.empty() ? "attachment" : "inline";
  std::string s = "Content-Type: " + p.content_type + "; name=\"" + p.filename + "\"\r\n" +
                  "Content-Disposition: " + disp + "; filename=\"" + p.filename + "\"\r\n" +
                  "Content-Transfer-Encoding: base64\r\n";
  if (!p.content_id.empty()) s += "Content-ID: <" + p.content_id + ">\r\n";
  return s + "\r\n" + base64(p.data);
}

}  // namespace

std::string make_message(const MessageSpec& spec) {
  static std::atomic<int> seq{0};
  int n = seq++;
  std::string mid = spec.message_id.empty()
                        ? fmt::format("<itest.{}.{}@example.com>", ::getpid(), n)
                        : spec.message_id;
  std::string h = "From: " + spec.from + "\r\nTo: " + spec.to + "\r\nSubject: " +
                  spec.subject + "\r\nDate: Mon, 23 Nov 2026 06:00:00 +0000\r\nMessage-ID: " +
                  mid + "\r\nMIME-Version: 1.0\r\n";
  for (const auto& [k, v] : spec.extra_headers) h += k + ": " + v + "\r\n";
  std::string b_alt = fmt::format("=_alt_{}", n), b_mix = fmt::format("=_mix_{}", n),
              b_rel = fmt::format("=_rel_{}", n);
  std::string body = body_part(spec, b_alt);
  std::vector<const Part*> inlines, attachments;
  for (const auto& p : spec.parts) (p.content_id.empty() ? attachments : inlines).push_back(&p);
  if (!inlines.empty()) {
    std::string rel = "Content-Type: multipart/related; boundary=\"" + b_rel + "\"\r\n\r\n--" +
                      b_rel + "\r\n" + body;
    for (const Part* p : inlines) rel += "--" + b_rel + "\r\n" + attachment_part(*p);
    body = rel + "--" + b_rel + "--\r\n";
  }
  if (!attachments.empty()) {
    std::string mix = "Content-Type: multipart/mixed; boundary=\"" + b_mix + "\"\r\n\r\n--" +
                      b_mix + "\r\n" + body;
    for (const Part* p : attachments) mix += "--" + b_mix + "\r\n" + attachment_part(*p);
    body = mix + "--" + b_mix + "--\r\n";
  }
  return h + body;  // body starts with its own Content-Type header, then the blank line
}

// ---- configuration ----

std::string toml_quote(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

std::string imap_mailbox_toml(const HarnessEnv& env, const ImapBox& box) {
  uint16_t port = box.security == "tls" ? env.imaps_port : env.imap_port;
  std::string ca = box.ca_file.empty() ? env.ca_file : box.ca_file;
  return fmt::format(
      "[[mailbox]]\nname = {}\ntype = \"imap\"\nhost = {}\nport = {}\nsecurity = {}\n"
      "auth = \"password\"\nuser = {}\npassword = {}\nfolder = \"INBOX\"\nafter = {}\n"
      "max_per_poll = {}\npoll_interval = \"1m\"\n"
      "tls = {{ verify = true, ca_file = {}, min_version = \"1.2\" }}\n"
      "timeouts = {{ connect = \"15s\", response = \"30s\" }}\n",
      toml_quote(box.name), toml_quote(box.host), port, toml_quote(box.security),
      toml_quote(box.user), toml_quote(box.password_ref), toml_quote(box.after),
      box.max_per_poll, toml_quote(ca));
}

std::string config_toml(const std::string& store_path, const std::string& tables) {
  return "# Generated by the integration tests.\n[store]\npath = " + toml_quote(store_path) +
         "\n\n" + tables;
}

TempDir::TempDir() {
  std::string tmpl = (fs::temp_directory_path() / "mb-itest.XXXXXX").string();
  if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  path_ = tmpl;
}

TempDir::~TempDir() {
  if (keep_) return;
  std::error_code ec;
  fs::remove_all(path_, ec);
}

Status write_file(const std::string& path, const std::string& content) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(content.data(), static_cast<std::streamsize>(content.size()));
  f.close();
  if (!f) return Status(ErrorKind::kInternal, "cannot write " + path);
  return Status::Ok();
}

Result<std::string> read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return Status(ErrorKind::kNotFound, "cannot read " + path);
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// ---- processes ----

std::string RunResult::describe() const {
  std::string how = timed_out ? "timed out and was killed"
                    : signal ? fmt::format("killed by signal {}", signal)
                             : fmt::format("exit code {}", exit_code);
  return how + "\n--- stdout ---\n" + out + "\n--- stderr ---\n" + err;
}

Result<std::unique_ptr<Process>> Process::start(const std::string& program,
                                                const std::vector<std::string>& args,
                                                const RunOptions& options) {
  std::unique_ptr<Process> p(new Process());
  p->dir_ = std::make_unique<TempDir>();
  p->out_path_ = p->dir_->file("stdout");
  p->err_path_ = p->dir_->file("stderr");

  std::map<std::string, std::string> env_map;
  for (char** e = environ; *e; ++e) {
    std::string kv = *e;
    auto eq = kv.find('=');
    if (eq != std::string::npos) env_map[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  for (const auto& [k, v] : options.env) env_map[k] = v;
  std::vector<std::string> env_strs;
  for (const auto& [k, v] : env_map) env_strs.push_back(k + "=" + v);
  std::vector<char*> envp, argv;
  for (auto& s : env_strs) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<std::string> arg_strs = {program};
  arg_strs.insert(arg_strs.end(), args.begin(), args.end());
  for (auto& s : arg_strs) argv.push_back(s.data());
  argv.push_back(nullptr);

  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, p->out_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_addopen(&fa, 2, p->err_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (!options.cwd.empty()) posix_spawn_file_actions_addchdir_np(&fa, options.cwd.c_str());
  pid_t pid = -1;
  int rc = ::posix_spawn(&pid, program.c_str(), &fa, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) {
    return Status(ErrorKind::kInternal, "cannot start " + program + ": " + std::strerror(rc));
  }
  p->pid_ = pid;
  return p;
}

Process::~Process() {
  if (pid_ > 0 && !reaped_) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, &wait_status_, 0);
  }
}

bool Process::running() {
  if (reaped_) return false;
  pid_t r = ::waitpid(pid_, &wait_status_, WNOHANG);
  if (r == pid_) reaped_ = true;
  return !reaped_;
}

void Process::kill(int sig) {
  if (!reaped_) ::kill(pid_, sig);
}

RunResult Process::wait(std::chrono::seconds timeout) {
  RunResult r;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (running()) {
    if (std::chrono::steady_clock::now() > deadline) {
      r.timed_out = true;
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, &wait_status_, 0);
      reaped_ = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  if (WIFEXITED(wait_status_)) r.exit_code = WEXITSTATUS(wait_status_);
  if (WIFSIGNALED(wait_status_)) r.signal = WTERMSIG(wait_status_);
  r.out = read_file(out_path_).ok() ? *read_file(out_path_) : "";
  r.err = read_file(err_path_).ok() ? *read_file(err_path_) : "";
  return r;
}

std::string mailbridge_bin() {
  if (const char* b = std::getenv("MB_MAILBRIDGE_BIN"); b && *b) return b;
  return MB_MAILBRIDGE_BIN;
}

bool wait_for(const std::function<bool()>& done, std::chrono::seconds limit) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return true;
}

RunResult run_mailbridge(const std::vector<std::string>& args, const RunOptions& options) {
  auto p = Process::start(mailbridge_bin(), args, options);
  if (!p.ok()) {
    RunResult r;
    r.err = p.status().to_string();
    return r;
  }
  return (*p)->wait(options.timeout);
}

nlohmann::json parse_json(const std::string& text) {
  return nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
}

Result<int64_t> count_tickets_readonly(const std::string& db_path) {
  std::error_code ec;
  if (!fs::exists(db_path, ec)) return Status(ErrorKind::kNotFound, db_path + " not created yet");
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(db_path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr);
  std::unique_ptr<sqlite3, decltype(&sqlite3_close)> guard(db, &sqlite3_close);
  if (rc != SQLITE_OK) return Status(ErrorKind::kInternal, "open " + db_path);
  sqlite3_busy_timeout(db, 2000);
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db, "SELECT count(*) FROM tickets", -1, &st, nullptr) != SQLITE_OK) {
    return Status(ErrorKind::kNotFound, std::string("query: ") + sqlite3_errmsg(db));
  }
  int64_t n = -1;
  if (sqlite3_step(st) == SQLITE_ROW) n = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  if (n < 0) return Status(ErrorKind::kInternal, std::string("step: ") + sqlite3_errmsg(db));
  return n;
}

}  // namespace mb::itest
