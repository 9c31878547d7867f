// File: core/config.cpp — reads the TOML configuration into the structs of core/config.h and
// validates every value, naming file, line and key in every problem found.
#include "core/config.h"

#include <toml++/toml.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include <fmt/format.h>

#include "core/ascii.h"
#include "core/files.h"

namespace mb {
namespace {

namespace fs = std::filesystem;

constexpr int64_t kMaxTimeout = 32767;

struct Problem {
  int line = 0;
  std::string message;
};

// Collects errors and warnings; all errors are reported, in the order of the file, so that
// one run of check-config shows everything to fix.
class Checker {
 public:
  Checker(std::string origin, std::string base_dir, ConfigCheck check)
      : origin_(std::move(origin)), base_dir_(std::move(base_dir)), check_(check) {}

  // check-config: also what the file names (paths, environment), not only the file.
  bool deep() const { return check_ == ConfigCheck::kDeep; }

  void error(int line, const std::string& context, const std::string& msg) {
    errors_.push_back({line, format(line, context, msg)});
  }
  void warn(int line, const std::string& context, const std::string& msg) {
    warnings_.push_back(format(line, context, msg));
  }
  bool has_errors() const { return !errors_.empty(); }
  // Every error, one per line, in the order of the file.
  std::string all_errors() const {
    std::vector<Problem> sorted = errors_;
    std::stable_sort(sorted.begin(), sorted.end(),
                     [](const Problem& a, const Problem& b) { return a.line < b.line; });
    std::string out;
    for (const auto& p : sorted) out += (out.empty() ? "" : "\n") + p.message;
    return out;
  }
  std::vector<std::string> take_warnings() { return std::move(warnings_); }

  // A path from the file, made relative to the file's directory rather than the cwd.
  std::string resolve_path(const std::string& p) const {
    if (p.empty() || fs::path(p).is_absolute()) return p;
    return (fs::path(base_dir_) / p).lexically_normal().string();
  }

 private:
  std::string format(int line, const std::string& context, const std::string& msg) const {
    std::string where = line > 0 ? fmt::format("{}:{}: ", origin_, line) : origin_ + ": ";
    return context.empty() ? where + msg : where + context + ": " + msg;
  }

  std::string origin_;
  std::string base_dir_;
  ConfigCheck check_;
  std::vector<Problem> errors_;
  std::vector<std::string> warnings_;
};

int line_of(const toml::node& n) { return static_cast<int>(n.source().begin.line); }

// Edit distance with adjacent transpositions ("hots" is 1 from "host").
size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::vector<size_t>> d(a.size() + 1, std::vector<size_t>(b.size() + 1));
  for (size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[a.size()][b.size()];
}

// The key of `known` that `typo` most likely means, or "" when none is close.
std::string closest_key(const std::string& typo, const std::set<std::string>& known) {
  size_t limit = typo.size() >= 6 ? 2 : 1;
  std::string best;
  size_t best_distance = limit + 1;
  for (const auto& k : known) {
    size_t d = edit_distance(ascii_lower(typo), k);
    if (d < best_distance) best = k, best_distance = d;
  }
  return best;
}

const char* type_name(const toml::node& n) {
  switch (n.type()) {
    case toml::node_type::string: return "a string";
    case toml::node_type::integer: return "an integer";
    case toml::node_type::floating_point: return "a number";
    case toml::node_type::boolean: return "a boolean";
    case toml::node_type::array: return "an array";
    case toml::node_type::table: return "a table";
    default: return "a date or time";
  }
}

// One TOML table being read. Every key read is remembered, so that finish() can name the
// keys nobody asked for: a typo must not be silently ignored.
class Section {
 public:
  Section(const toml::table& t, std::string context, Checker& c, std::string prefix = "")
      : t_(t), ctx_(std::move(context)), prefix_(std::move(prefix)), c_(c) {}

  const std::string& context() const { return ctx_; }
  void set_context(std::string context) { ctx_ = std::move(context); }
  Checker& checker() { return c_; }
  int line() const { return line_of(t_); }
  int line(std::string_view key) const {
    const toml::node* n = t_.get(key);
    return n ? line_of(*n) : line_of(t_);
  }
  bool has(std::string_view key) {
    known_.insert(std::string(key));
    return t_.contains(key);
  }
  void error(std::string_view key, const std::string& msg) {
    c_.error(line(key), ctx_, prefix_ + std::string(key) + " " + msg);
  }
  void error_here(const std::string& msg) { c_.error(line(), ctx_, msg); }
  // An error about the section as a whole, placed on the line of `key` (or the table's).
  void error_at(std::string_view key, const std::string& msg) { c_.error(line(key), ctx_, msg); }
  void warn(std::string_view key, const std::string& msg) {
    c_.warn(line(key), ctx_, prefix_ + std::string(key) + " " + msg);
  }

  std::optional<std::string> str(std::string_view key) {
    const toml::node* n = get(key);
    if (!n) return std::nullopt;
    if (auto v = n->value<std::string>(); v && n->is_string()) return *v;
    wrong_type(key, *n, "a string");
    return std::nullopt;
  }
  std::optional<int64_t> integer(std::string_view key) {
    const toml::node* n = get(key);
    if (!n) return std::nullopt;
    if (n->is_integer()) return n->as_integer()->get();
    wrong_type(key, *n, "an integer");
    return std::nullopt;
  }
  std::optional<bool> boolean(std::string_view key) {
    const toml::node* n = get(key);
    if (!n) return std::nullopt;
    if (n->is_boolean()) return n->as_boolean()->get();
    wrong_type(key, *n, "true or false");
    return std::nullopt;
  }
  std::optional<std::vector<std::string>> strings(std::string_view key);
  const toml::table* table(std::string_view key) {
    const toml::node* n = get(key);
    if (!n) return nullptr;
    if (n->is_table()) return n->as_table();
    wrong_type(key, *n, "a table, e.g. { ... }");
    return nullptr;
  }
  // The node of `key` as is (for values that may be an integer or a string).
  const toml::node* node(std::string_view key) { return get(key); }
  std::string full_key(std::string_view key) const { return prefix_ + std::string(key); }

  // Reports every key that no reader asked for, with the known key it most likely means.
  void finish() {
    for (const auto& [k, v] : t_) {
      std::string key(k.str());
      if (!known_.count(key)) {
        std::string likely = closest_key(key, known_);
        std::string hint = likely.empty() ? "" : fmt::format(" (did you mean \"{}{}\"?)",
                                                             prefix_, likely);
        c_.error(line_of(v), ctx_, fmt::format("unknown key \"{}{}\"{}", prefix_, key, hint));
      }
    }
  }

 private:
  const toml::node* get(std::string_view key) {
    known_.insert(std::string(key));
    return t_.get(key);
  }
  void wrong_type(std::string_view key, const toml::node& n, const char* want) {
    c_.error(line_of(n), ctx_,
             fmt::format("{}{} must be {} (got {})", prefix_, key, want, type_name(n)));
  }

  const toml::table& t_;
  std::string ctx_;
  std::string prefix_;
  Checker& c_;
  std::set<std::string> known_;
};

std::optional<std::vector<std::string>> Section::strings(std::string_view key) {
  const toml::node* n = get(key);
  if (!n) return std::nullopt;
  const toml::array* a = n->as_array();
  if (!a) {
    wrong_type(key, *n, "an array of strings");
    return std::nullopt;
  }
  std::vector<std::string> out;
  for (const toml::node& e : *a) {
    if (!e.is_string()) {
      wrong_type(key, e, "an array of strings");
      return std::nullopt;
    }
    out.push_back(e.as_string()->get());
  }
  return out;
}

std::string dq(const std::string& s) { return "\"" + s + "\""; }

bool one_of(const std::string& v, std::initializer_list<const char*> allowed) {
  return std::any_of(allowed.begin(), allowed.end(), [&](const char* a) { return v == a; });
}

// Reads `key` as one of `allowed`; leaves `out` alone when absent.
void read_choice(Section& s, std::string_view key, std::initializer_list<const char*> allowed,
                 std::string& out) {
  auto v = s.str(key);
  if (!v) return;
  if (!one_of(*v, allowed)) {
    std::string list;
    for (const char* a : allowed) list += (list.empty() ? "" : " | ") + std::string(a);
    s.error(key, fmt::format("must be {} (got {})", list, dq(*v)));
    return;
  }
  out = *v;
}

// Reads a duration: a TOML integer (seconds) or a string such as "30s", "2m", "1h".
std::optional<std::chrono::seconds> read_duration(Section& s, std::string_view key, int64_t min,
                                                  int64_t max) {
  const toml::node* n = s.node(key);
  if (!n) return std::nullopt;
  std::optional<int64_t> secs;
  if (n->is_integer()) {
    secs = n->as_integer()->get();
  } else if (n->is_string()) {
    auto d = parse_duration(n->as_string()->get());
    if (!d.ok()) {
      s.error(key, fmt::format("must be a duration such as \"30s\", \"2m\", \"1h\" (got {})",
                               dq(n->as_string()->get())));
      return std::nullopt;
    }
    secs = d->count();
  } else {
    s.error(key, fmt::format("must be a duration such as \"30s\" (got {})", type_name(*n)));
    return std::nullopt;
  }
  if (*secs < min || *secs > max) {
    s.error(key, fmt::format("must be {}–{} seconds (got {})", min, max, *secs));
    return std::nullopt;
  }
  return std::chrono::seconds(*secs);
}

bool valid_env_name(std::string_view name) {
  if (name.empty() || std::isdigit(static_cast<unsigned char>(name[0]))) return false;
  return std::all_of(name.begin(), name.end(), [](unsigned char ch) {
    return std::isalnum(ch) || ch == '_';
  });
}

// check-config: a file: secret that cannot be read fails every connection that needs it.
void check_secret_file(Section& s, std::string_view key, const std::string& path) {
  auto data = read_regular_file(path, kMaxSecretFileBytes, s.full_key(key));
  if (!data.ok()) {
    s.error_at(key, data.status().message());
    return;
  }
  std::string v = *data;
  while (!v.empty() && (v.back() == '\n' || v.back() == '\r')) v.pop_back();
  if (v.empty()) s.error(key, fmt::format("file {} is empty", path));
}

// check-config: an unset variable is only a warning, as the service may run with another
// environment than the shell that checks its configuration.
void check_secret_env(Section& s, std::string_view key, const std::string& name) {
  const char* v = std::getenv(name.c_str());
  if (v == nullptr) {
    s.warn(key, fmt::format("names the environment variable {}, which is not set here (the "
                            "service needs it in its environment)", name));
  } else if (*v == '\0') {
    s.warn(key, fmt::format("names the environment variable {}, which is empty here", name));
  }
}

// Reads a secret reference. file: paths are made absolute against the config's directory;
// a literal is accepted with a warning that names the key and never the value.
void read_secret(Section& s, std::string_view key, SecretRef& out) {
  auto v = s.str(key);
  if (!v) return;
  if (v->rfind("env:", 0) == 0) {
    if (!valid_env_name(std::string_view(*v).substr(4))) {
      s.error(key, "must name an environment variable after env: (letters, digits, _)");
      return;
    }
    out.ref = *v;
    if (s.checker().deep()) check_secret_env(s, key, v->substr(4));
  } else if (v->rfind("file:", 0) == 0) {
    if (v->size() == 5) {
      s.error(key, "must name a file after file:");
      return;
    }
    out.ref = "file:" + s.checker().resolve_path(v->substr(5));
    if (s.checker().deep()) check_secret_file(s, key, out.ref.substr(5));
  } else if (v->empty()) {
    s.error(key, "must not be empty (write \"env:NAME\" or \"file:PATH\")");
  } else {
    s.warn(key, "is written literally in the file; prefer \"env:NAME\" or \"file:PATH\"");
    out.ref = *v;
  }
}

bool valid_pin(const std::string& pin) {
  if (pin.rfind("sha256/", 0) == 0) {
    std::string b64 = pin.substr(7);
    return b64.size() == 44 && b64.back() == '=' &&
           std::all_of(b64.begin(), b64.end() - 1, [](unsigned char ch) {
             return std::isalnum(ch) || ch == '+' || ch == '/';
           });
  }
  std::string hex;
  for (char ch : pin) {
    if (ch != ':') hex += ch;
  }
  return hex.size() == 64 && std::all_of(hex.begin(), hex.end(), [](unsigned char ch) {
           return std::isxdigit(ch);
         });
}

// check-config: tls.ca_file must be a readable file of PEM certificates, or every
// connection fails at the handshake.
void check_ca_file(Section& s, const std::string& path) {
  auto data = read_regular_file(path, kMaxCaFileBytes, s.full_key("ca_file"));
  if (!data.ok()) {
    s.error_at("ca_file", data.status().message());
  } else if (data->find("-----BEGIN CERTIFICATE-----") == std::string::npos &&
             data->find("-----BEGIN TRUSTED CERTIFICATE-----") == std::string::npos) {
    s.error("ca_file", fmt::format("file {} holds no PEM certificate (-----BEGIN "
                                   "CERTIFICATE-----)", path));
  }
}

void read_tls(Section& parent, TlsOptions& tls) {
  const toml::table* t = parent.table("tls");
  if (!t) return;
  Section s(*t, parent.context(), parent.checker(), "tls.");
  if (auto v = s.boolean("verify")) {
    tls.verify = *v;
    if (!*v) {
      s.warn("verify", "= false: server certificates and host names are NOT checked");
    }
  }
  if (auto v = s.str("ca_file")) {
    tls.ca_file = s.checker().resolve_path(*v);
    if (s.checker().deep() && tls.verify) check_ca_file(s, tls.ca_file);
  }
  if (auto v = s.str("min_version")) {
    if (*v == "1.2") tls.min_version = TlsVersion::k1_2;
    else if (*v == "1.3") tls.min_version = TlsVersion::k1_3;
    else s.error("min_version", fmt::format("must be \"1.2\" or \"1.3\" (got {})", dq(*v)));
  }
  if (auto v = s.strings("pins")) {
    for (const auto& pin : *v) {
      if (!valid_pin(pin)) {
        s.error("pins", fmt::format("entry {} is not \"sha256/BASE64\" or 64 hex digits",
                                    dq(pin)));
        return;
      }
    }
    tls.pins = *v;
  }
  s.finish();
}

void read_timeouts(Section& parent, Timeouts& out) {
  const toml::table* t = parent.table("timeouts");
  if (!t) return;
  Section s(*t, parent.context(), parent.checker(), "timeouts.");
  if (auto d = read_duration(s, "connect", 1, kMaxTimeout)) out.connect = *d;
  if (auto d = read_duration(s, "response", 1, kMaxTimeout)) out.response = *d;
  s.finish();
}

std::optional<uint16_t> read_port(Section& s) {
  auto v = s.integer("port");
  if (!v) return std::nullopt;
  if (*v < 1 || *v > 65535) {
    s.error("port", fmt::format("must be 1–65535 (got {})", *v));
    return std::nullopt;
  }
  return static_cast<uint16_t>(*v);
}

Security parse_security(const std::string& v) {
  if (v == "starttls") return Security::kStartTls;
  if (v == "none") return Security::kNone;
  return Security::kTls;
}

void read_endpoint(Section& s, std::string& out) {
  auto v = s.str("endpoint");
  if (!v) return;
  if (v->rfind("https://", 0) != 0) {
    s.error("endpoint", fmt::format("must be an https:// URL (got {})", dq(*v)));
    return;
  }
  out = *v;
}

// Names must be present and unique within their kind, as everything refers to them.
class NameRegistry {
 public:
  explicit NameRegistry(const char* kind) : kind_(kind) {}
  std::string read(Section& s) {
    auto v = s.str("name");
    if (!v && !s.has("name")) {
      s.error_here(fmt::format("{} has no name (add name = \"...\")", kind_));
      return {};
    }
    if (!v) return {};
    if (v->empty()) {
      s.error("name", "must not be empty");
      return {};
    }
    s.set_context(std::string(kind_) + " " + dq(*v));
    if (auto it = lines_.find(*v); it != lines_.end()) {
      s.error("name", fmt::format("{} is already used by the {} on line {}", dq(*v), kind_,
                                  it->second));
      return *v;
    }
    lines_[*v] = s.line("name");
    return *v;
  }

 private:
  const char* kind_;
  std::map<std::string, int> lines_;
};

}  // namespace
namespace {

// auth, app, user and password: shared by [[mailbox]] and [[sender]].
struct AuthFields {
  std::string& auth;
  std::string& app;
  std::string& user;
  SecretRef& password;
};

void read_auth(Section& s, const Config& cfg, const std::string& type, bool allow_none,
               AuthFields f) {
  if (auto v = s.str("app")) f.app = *v;
  if (auto v = s.str("user")) {
    if (v->empty()) s.error("user", "must not be empty");
    f.user = *v;
  }
  read_secret(s, "password", f.password);
  f.auth = (type == "graph" || !f.app.empty()) ? "oauth2" : "password";
  if (allow_none) read_choice(s, "auth", {"password", "oauth2", "none"}, f.auth);
  else read_choice(s, "auth", {"password", "oauth2"}, f.auth);
  std::string_view at = s.has("auth") ? "auth" : "name";
  if (type == "graph" && f.auth != "oauth2") {
    s.error("auth", "must be \"oauth2\" for type = \"graph\"");
    return;
  }
  if (f.auth == "oauth2") {
    if (f.app.empty()) {
      s.error_at(at, "auth = \"oauth2\" needs app = \"<name of an [[app]]>\"");
    } else if (!cfg.find_app(f.app)) {
      s.error("app", fmt::format("{} is not defined by any [[app]]", dq(f.app)));
    }
    if (!f.password.empty()) s.error("password", "is not used with auth = \"oauth2\"");
  } else if (f.auth == "password" && f.password.empty() && !s.has("password")) {
    s.error_at(at, "auth = \"password\" needs password = \"env:NAME\" or \"file:PATH\"");
  }
  if (f.auth != "none" && f.user.empty() && !s.has("user")) {
    s.error_here("user is missing (the login name)");
  }
}

// type, host, port, security, endpoint, tls, timeouts: shared by [[mailbox]] and [[sender]].
struct ConnectionFields {
  std::string& type;
  std::string& host;
  uint16_t& port;
  Security& security;
  std::string& endpoint;
  TlsOptions& tls;
  Timeouts& timeouts;
};

void read_connection(Section& s, std::initializer_list<const char*> types, const char* security,
                     ConnectionFields f) {
  read_choice(s, "type", types, f.type);
  if (!s.has("type")) {
    std::string list;
    for (const char* t : types) list += (list.empty() ? "" : " | ") + std::string(t);
    s.error_here("type is missing (" + list + ")");
  }
  std::string sec = security;
  read_choice(s, "security", {"tls", "starttls", "none"}, sec);
  f.security = parse_security(sec);
  if (sec == "none" && s.has("security")) {
    s.warn("security", "= \"none\": mail and credentials travel unencrypted");
  }
  if (auto v = s.str("host")) {
    if (v->empty()) s.error("host", "must not be empty");
    f.host = *v;
  }
  bool needs_host = f.type == "imap" || f.type == "pop3" || f.type == "smtp";
  if (needs_host && !s.has("host")) s.error_here("host is missing");
  auto port = read_port(s);
  f.port = port ? *port : default_port(f.type, f.security);
  read_endpoint(s, f.endpoint);
  read_tls(s, f.tls);
  read_timeouts(s, f.timeouts);
}

std::optional<PostAction> read_after(Section& s, std::string_view key, const std::string& type) {
  auto v = s.str(key);
  if (!v) return std::nullopt;
  auto a = parse_post_action(*v);
  if (!a.ok()) {
    s.error(key, fmt::format("must be mark-read | delete | move:FOLDER | leave (got {})", dq(*v)));
    return std::nullopt;
  }
  if (type == "pop3" && a->kind == PostAction::Kind::kMove) {
    s.error(key, "cannot be move: for pop3, which has no folders (use delete or leave)");
    return std::nullopt;
  }
  if (type == "pop3" && a->kind == PostAction::Kind::kMarkRead) {
    s.error(key, "cannot be mark-read for pop3: POP3 has no read flag, a message is either "
                 "deleted or left on the server (use delete or leave)");
    return std::nullopt;
  }
  return *a;
}

void read_mailbox_processing(Section& s, const Config& cfg, MailboxConfig& m) {
  if (auto v = s.str("folder")) {
    if (v->empty()) s.error("folder", "must not be empty");
    else m.folder = *v;
  }
  // POP3 cannot mark a message read; "leave" is the nearest non-destructive default (the
  // ledger imports each message once), so a misconfigured mailbox never loses mail.
  if (m.type == "pop3") m.after = PostAction::leave();
  if (auto a = read_after(s, "after", m.type)) m.after = *a;
  if (auto a = read_after(s, "after_filtered", m.type)) m.after_filtered = *a;
  if (auto d = read_duration(s, "poll_interval", 1, 86400)) m.poll_interval = *d;
  if (auto v = s.integer("max_per_poll")) {
    if (*v < 1 || *v > 9999) {
      s.error("max_per_poll", fmt::format("must be 1–9999 (got {})", *v));
    } else {
      m.max_per_poll = static_cast<uint32_t>(*v);
    }
  }
  m.project = cfg.projects.empty() ? "IT" : cfg.projects.front().name;
  if (auto v = s.str("project")) {
    if (!cfg.projects.empty() && !cfg.find_project(*v)) {
      s.error("project", fmt::format("{} is not defined by any [[project]]", dq(*v)));
    }
    m.project = *v;
  }
  if (auto v = s.integer("max_concurrency")) {
    if (m.type != "graph") {
      s.error("max_concurrency", "is only used with type = \"graph\"");
    } else if (*v < 1 || *v > 4) {
      s.error("max_concurrency", fmt::format("must be 1–4 (got {})", *v));
    } else {
      m.max_concurrency = static_cast<uint32_t>(*v);
    }
  }
  if (auto v = s.boolean("enabled")) m.enabled = *v;
  if (auto v = s.str("address")) {
    if (v->find('@') == std::string::npos) {
      s.error("address", fmt::format("must be an email address (got {})", dq(*v)));
    }
    m.address = *v;
  }
  if (m.address.empty()) m.address = m.user;
}

// check-config: a type the configuration accepts but no connector implements yet would fail
// at every poll or send.
void check_supported(Section& s, const std::string& type, const char* what) {
  if (!s.checker().deep() || type != "ews") return;
  s.error("type", fmt::format("= \"ews\": EWS is not supported yet by this version of "
                              "mailbridge, so this {} would fail every time (use type = "
                              "\"graph\" for Exchange Online{})",
                              what, std::string(what) == "mailbox" ? ", or enabled = false" : ""));
}

void read_mailbox(const toml::table& t, size_t index, NameRegistry& names, Config& cfg,
                  Checker& c) {
  Section s(t, fmt::format("mailbox #{}", index + 1), c);
  MailboxConfig m;
  m.line_no = s.line();
  m.name = names.read(s);
  if (!m.name.empty()) s.set_context("mailbox " + dq(m.name));
  read_connection(s, {"imap", "pop3", "ews", "graph"}, "tls",
                  {m.type, m.host, m.port, m.security, m.endpoint, m.tls, m.timeouts});
  read_auth(s, cfg, m.type, false, {m.auth, m.app, m.user, m.password});
  read_mailbox_processing(s, cfg, m);
  if (m.enabled) check_supported(s, m.type, "mailbox");
  s.finish();
  cfg.mailboxes.push_back(std::move(m));
}

void read_sender(const toml::table& t, size_t index, NameRegistry& names, Config& cfg,
                 Checker& c) {
  Section s(t, fmt::format("sender #{}", index + 1), c);
  SenderConfig snd;
  snd.name = names.read(s);
  if (!snd.name.empty()) s.set_context("sender " + dq(snd.name));
  read_connection(s, {"smtp", "graph", "ews"}, "starttls",
                  {snd.type, snd.host, snd.port, snd.security, snd.endpoint, snd.tls,
                   snd.timeouts});
  read_auth(s, cfg, snd.type, snd.type == "smtp", {snd.auth, snd.app, snd.user, snd.password});
  check_supported(s, snd.type, "sender");
  if (auto v = s.boolean("one_message_per_connection")) snd.one_message_per_connection = *v;
  if (auto v = s.str("helo_name")) {
    bool ok = !v->empty() && v->size() <= 255;
    for (char ch : *v) ok = ok && (std::isalnum(static_cast<unsigned char>(ch)) || ch == '.' ||
                                   ch == '-' || ch == '[' || ch == ']' || ch == ':');
    if (snd.type != "smtp") s.error("helo_name", "is only used with type = \"smtp\"");
    else if (!ok) s.error("helo_name", fmt::format("must be a host name or [address] (got {})", dq(*v)));
    snd.helo_name = *v;
  }
  if (auto v = s.boolean("save_to_sent_items")) {
    if (snd.type != "graph") s.error("save_to_sent_items", "is only used with type = \"graph\"");
    snd.save_to_sent_items = *v;
  }
  s.finish();
  cfg.senders.push_back(std::move(snd));
}

// An https:// URL with a host: what the token and device endpoints must be.
bool is_https_url(const std::string& v) {
  constexpr std::string_view kScheme = "https://";
  if (v.rfind(kScheme, 0) != 0 || v.size() == kScheme.size()) return false;
  char first = v[kScheme.size()];
  return first != '/' && first != ':' && v.find_first_of(" \t") == std::string::npos;
}

void read_app_urls(Section& s, AppConfig& a) {
  for (auto [key, field] : {std::pair<const char*, std::string*>{"authority", &a.authority},
                            {"token_endpoint", &a.token_endpoint},
                            {"device_endpoint", &a.device_endpoint}}) {
    if (auto v = s.str(key)) {
      if (!is_https_url(*v)) {
        s.error(key, fmt::format("must be an https:// URL (got {})", dq(*v)));
      }
      *field = *v;
    }
  }
}

// Scopes are sent space-separated, so one entry holding a space would silently become two.
void read_scopes(Section& s, AppConfig& a) {
  auto v = s.strings("scopes");
  if (!v) return;
  if (v->empty()) {
    s.error("scopes", "must list at least one scope (leave it out for the defaults)");
    return;
  }
  for (const auto& scope : *v) {
    if (scope.empty() || scope.find_first_of(" \t") != std::string::npos) {
      s.error("scopes", fmt::format("entry {} must be one non-empty scope without spaces",
                                    dq(scope)));
      return;
    }
  }
  a.scopes = *v;
}

// The flow follows from the credentials unless written: a confidential client signs in as
// itself, a public one needs a user's grant.
void read_flow(Section& s, AppConfig& a) {
  bool has_credential = !a.client_secret.empty() || !a.certificate.empty();
  a.flow = has_credential ? "app-only" : "delegated";
  read_choice(s, "flow", {"app-only", "delegated"}, a.flow);
  if (a.flow == "app-only" && !has_credential && !s.has("client_secret") &&
      !s.has("certificate")) {
    s.error_at(s.has("flow") ? "flow" : "name",
               "flow = \"app-only\" (client credentials) needs client_secret = \"env:NAME\" or "
               "certificate = \"file:PATH\"");
  }
}

void read_app(const toml::table& t, size_t index, NameRegistry& names, Config& cfg, Checker& c) {
  Section s(t, fmt::format("app #{}", index + 1), c);
  AppConfig a;
  a.line_no = s.line();
  a.name = names.read(s);
  if (!a.name.empty()) s.set_context("app " + dq(a.name));
  read_app_urls(s, a);
  if (auto v = s.str("tenant")) {
    if (v->empty()) s.error("tenant", "must not be empty");
    a.tenant = *v;
  }
  if (auto v = s.str("client_id")) {
    if (v->empty()) s.error("client_id", "must not be empty");
    a.client_id = *v;
  }
  if (a.client_id.empty() && !s.has("client_id")) s.error_here("client_id is missing");
  if (a.tenant.empty() && a.token_endpoint.empty() && !s.has("tenant")) {
    s.error_here("tenant is missing (or set token_endpoint for a non-Microsoft server)");
  }
  read_secret(s, "client_secret", a.client_secret);
  read_secret(s, "certificate", a.certificate);
  if (!a.client_secret.empty() && !a.certificate.empty()) {
    s.error("certificate", "and client_secret are exclusive; keep one");
  }
  read_flow(s, a);
  read_scopes(s, a);
  read_tls(s, a.tls);
  read_timeouts(s, a.timeouts);
  s.finish();
  cfg.apps.push_back(std::move(a));
}

void read_project(const toml::table& t, size_t index, NameRegistry& names, Config& cfg,
                  Checker& c) {
  Section s(t, fmt::format("project #{}", index + 1), c);
  ProjectConfig p;
  p.name = names.read(s);
  if (!p.name.empty()) s.set_context("project " + dq(p.name));
  if (auto v = s.strings("modules")) {
    bool blank = std::any_of(v->begin(), v->end(), [](const auto& m) { return m.empty(); });
    if (v->empty() || blank) s.error("modules", "must list non-empty module names");
    else p.modules = *v;
  }
  s.finish();
  cfg.projects.push_back(std::move(p));
}

void read_user(const toml::table& t, size_t index, std::map<std::string, int>& seen, Config& cfg,
               Checker& c) {
  Section s(t, fmt::format("user #{}", index + 1), c);
  UserConfig u;
  if (auto v = s.str("email")) u.email = *v;
  if (u.email.find('@') == std::string::npos) {
    if (s.has("email")) s.error("email", fmt::format("must be an email address (got {})",
                                                     dq(u.email)));
    else s.error_here("email is missing");
  } else {
    s.set_context("user " + dq(u.email));
    auto [it, fresh] = seen.emplace(ascii_lower(u.email), s.line("email"));
    if (!fresh) s.error("email", fmt::format("is already listed on line {}", it->second));
  }
  if (auto v = s.str("name")) u.name = *v;
  read_choice(s, "role", {"requestor", "technician"}, u.role);
  s.finish();
  cfg.users.push_back(std::move(u));
}

}  // namespace
namespace {

// check-config: the store is created on first use, but its directory must exist.
void check_store_path(Section& s, const std::string& path) {
  std::error_code ec;
  fs::path dir = fs::path(path).parent_path();
  if (dir.empty()) dir = ".";
  if (fs::is_directory(path, ec)) {
    s.error_at("path", fmt::format("path {} is a directory; name the database file in it, e.g. "
                                   "{}/mailbridge.db", path, path));
  } else if (!fs::exists(dir, ec)) {
    s.error_at("path", fmt::format("path {}: the directory {} does not exist", path,
                                   dir.string()));
  } else if (!fs::is_directory(dir, ec)) {
    s.error_at("path", fmt::format("path {}: {} is not a directory", path, dir.string()));
  }
}

void read_store(Section& s, Config& cfg) {
  if (auto v = s.str("path")) {
    if (v->empty()) s.error("path", "must not be empty");
    else cfg.store.path = *v;
  }
  cfg.store.path = s.checker().resolve_path(cfg.store.path);
  if (s.checker().deep()) check_store_path(s, cfg.store.path);
}

// [tracking] from and from_name: From must be a configured mailbox address (SPEC §4).
void read_tracking_from(Section& s, Config& cfg) {
  TrackingConfig& t = cfg.tracking;
  if (auto v = s.str("from")) {
    std::string want = ascii_lower(*v);
    bool known = std::any_of(cfg.mailboxes.begin(), cfg.mailboxes.end(), [&](const auto& m) {
      return ascii_lower(m.address.empty() ? m.user : m.address) == want;
    });
    if (!known) s.error("from", fmt::format("{} is not the address of any [[mailbox]]", dq(*v)));
    t.from = want;
  }
  if (auto v = s.str("from_name")) {
    if (v->find_first_of("\r\n") != std::string::npos) {
      s.error("from_name", "must be one line");
    } else {
      t.from_name = *v;
    }
  }
}

void read_tracking(Section& s, Config& cfg) {
  TrackingConfig& t = cfg.tracking;
  read_secret(s, "secret", t.secret);
  if (auto v = s.str("mailbox")) {
    if (!cfg.find_mailbox(*v)) {
      s.error("mailbox", fmt::format("{} is not defined by any [[mailbox]]", dq(*v)));
    }
    t.mailbox = *v;
  }
  if (auto v = s.str("sender")) {
    if (!cfg.find_sender(*v)) {
      s.error("sender", fmt::format("{} is not defined by any [[sender]]", dq(*v)));
    }
    t.sender = *v;
  }
  if (auto v = s.boolean("delete_untracked")) t.delete_untracked = *v;
  if ((!t.mailbox.empty() || !t.sender.empty()) && t.secret.empty() && !s.has("secret")) {
    s.error_here("secret is missing (tracking cookies are signed with it)");
  }
  read_tracking_from(s, cfg);
}

// [outbox]: the retry schedule of outgoing mail.
void read_outbox(Section& s, Config& cfg) {
  OutboxConfig& o = cfg.outbox;
  if (auto d = read_duration(s, "retry_initial", 1, 86400)) o.retry_initial = *d;
  if (auto d = read_duration(s, "retry_max", 1, 7 * 86400)) o.retry_max = *d;
  if (o.retry_max < o.retry_initial) {
    s.error("retry_max", "must not be shorter than retry_initial");
  }
  if (auto v = s.integer("max_attempts")) {
    if (*v < 1 || *v > 100) s.error("max_attempts", fmt::format("must be 1–100 (got {})", *v));
    else o.max_attempts = static_cast<uint32_t>(*v);
  }
  if (auto v = s.integer("batch")) {
    if (*v < 1 || *v > 10000) s.error("batch", fmt::format("must be 1–10000 (got {})", *v));
    else o.batch = static_cast<uint32_t>(*v);
  }
  std::string in_doubt = "sent";
  read_choice(s, "in_doubt", {"sent", "resend", "park"}, in_doubt);
  o.in_doubt = in_doubt == "resend" ? InDoubt::kResend
               : in_doubt == "park" ? InDoubt::kPark
                                    : InDoubt::kSent;
}

// "50MB", "512k", or a plain number of bytes.
std::optional<int64_t> parse_size(const std::string& text) {
  size_t pos = 0;
  while (pos < text.size() && std::isdigit(static_cast<unsigned char>(text[pos]))) ++pos;
  if (pos == 0 || pos > 12) return std::nullopt;
  int64_t n = std::stoll(text.substr(0, pos));
  std::string unit = ascii_lower(text.substr(pos));
  if (unit.empty() || unit == "b") return n;
  if (unit == "k" || unit == "kb") return n * 1024;
  if (unit == "m" || unit == "mb") return n * 1024 * 1024;
  if (unit == "g" || unit == "gb") return n * 1024 * 1024 * 1024;
  return std::nullopt;
}

void read_ingest(Section& s, Config& cfg) {
  IngestConfig& in = cfg.ingest;
  if (auto v = s.strings("restricted_extensions")) {
    in.restricted_extensions.clear();
    for (std::string ext : *v) {
      if (!ext.empty() && ext.front() == '.') ext.erase(0, 1);
      if (ext.empty()) {
        s.error("restricted_extensions", "must not contain an empty extension");
        break;
      }
      in.restricted_extensions.push_back(ascii_lower(ext));
    }
  }
  if (auto v = s.integer("max_subject_length")) {
    if (*v < 1 || *v > 100000) {
      s.error("max_subject_length", fmt::format("must be 1–100000 (got {})", *v));
    } else {
      in.max_subject_length = static_cast<size_t>(*v);
    }
  }
  if (const toml::node* n = s.node("max_message_bytes")) {
    std::optional<int64_t> size;
    if (n->is_integer()) size = n->as_integer()->get();
    else if (n->is_string()) size = parse_size(n->as_string()->get());
    if (!size || *size < 1024) {
      s.error("max_message_bytes", "must be a size of at least 1024 bytes, e.g. 52428800 or "
                                   "\"50MB\"");
    } else {
      in.max_message_bytes = static_cast<size_t>(*size);
    }
  }
}

void read_filter_list(Section& s, std::string_view key, std::vector<std::string>& out) {
  auto v = s.strings(key);
  if (!v) return;
  for (const auto& rule : *v) {
    if (rule.size() < 2) {
      s.error(key, fmt::format("entry {} is too short (rules need at least 2 characters)",
                               dq(rule)));
      return;
    }
  }
  out = *v;
}

void read_filters(Section& s, Config& cfg) {
  FilterConfig& f = cfg.filters;
  if (auto v = s.boolean("use_defaults")) f.use_defaults = *v;
  if (auto v = s.boolean("auto_replies")) f.auto_replies = *v;
  read_filter_list(s, "senders", f.senders);
  read_filter_list(s, "subjects", f.subjects);
  read_choice(s, "accept_from",
              {"everyone", "requestors", "technicians", "requestors-and-technicians"},
              f.accept_from);
}

// The {name} placeholders a text uses that the alert template does not know, e.g. "{mailbx}".
std::string unknown_placeholder(const std::string& text) {
  static const std::set<std::string> kKnown = {"mailbox", "user", "host", "error", "failures"};
  for (size_t open = text.find('{'); open != std::string::npos; open = text.find('{', open + 1)) {
    size_t close = text.find('}', open);
    if (close == std::string::npos) break;
    std::string name = text.substr(open + 1, close - open - 1);
    bool word = !name.empty() && std::all_of(name.begin(), name.end(), [](unsigned char ch) {
      return std::isalnum(ch) || ch == '_';
    });
    if (word && !kKnown.count(name)) return "{" + name + "}";
  }
  return "";
}

void read_alert_text(Section& s, std::string_view key, std::string& out) {
  auto v = s.str(key);
  if (!v) return;
  if (v->empty()) {
    s.error(key, "must not be empty (leave it out for the default)");
    return;
  }
  if (std::string bad = unknown_placeholder(*v); !bad.empty()) {
    s.error(key, fmt::format("uses the unknown placeholder {} (known: {{mailbox}} {{user}} "
                             "{{host}} {{error}} {{failures}})", bad));
    return;
  }
  out = *v;
}

void read_alert(Section& parent, const Config& cfg, AlertTemplate& alert) {
  const toml::table* t = parent.table("alert");
  if (!t) return;
  Section s(*t, "[monitor.alert]", parent.checker());
  if (auto v = s.str("project")) {
    if (!cfg.projects.empty() && !cfg.find_project(*v)) {
      s.error("project", fmt::format("{} is not defined by any [[project]]", dq(*v)));
    } else if (v->empty()) {
      s.error("project", "must not be empty (leave it out for the mailbox's project)");
    } else {
      alert.project = *v;
    }
  }
  read_alert_text(s, "subject", alert.subject);
  read_alert_text(s, "body", alert.body);
  read_alert_text(s, "requester", alert.requester);
  s.finish();
}

// Read after [[project]], which alert.project refers to.
void read_monitor(Section& s, Config& cfg) {
  if (auto v = s.integer("auth_failure_threshold")) {
    if (*v < 1 || *v > 100) {
      s.error("auth_failure_threshold", fmt::format("must be 1–100 (got {})", *v));
    } else {
      cfg.monitor.auth_failure_threshold = static_cast<uint32_t>(*v);
    }
  }
  // At least a minute, so that a paused mailbox can never be driven into a lock-out.
  if (auto d = read_duration(s, "auth_retry_interval", 60, 7 * 24 * 3600)) {
    cfg.monitor.auth_retry_interval = *d;
  }
  read_alert(s, cfg, cfg.monitor.alert);
}

// [auth], read after [[app]]: delegated apps keep refresh tokens that must be encrypted.
void read_auth_section(Section& s, Config& cfg) {
  if (auto v = s.str("token_dir")) {
    if (v->empty()) s.error("token_dir", "must not be empty (leave it out for the default)");
    else cfg.auth.token_dir = s.checker().resolve_path(*v);
  }
  read_secret(s, "key", cfg.auth.key);
  if (!cfg.auth.key.empty() || s.has("key")) return;
  auto delegated = std::find_if(cfg.apps.begin(), cfg.apps.end(),
                                [](const AppConfig& a) { return a.flow == "delegated"; });
  if (delegated == cfg.apps.end()) return;
  constexpr const char* kHint =
      "make one with `openssl rand -base64 32 > /etc/mailbridge/token.key` (readable only by "
      "the service) and write key = \"file:/etc/mailbridge/token.key\" under [auth]";
  std::string why = fmt::format(
      "key is missing: app {} (line {}) is delegated, and refresh tokens are stored encrypted "
      "under that key; {}",
      dq(delegated->name), delegated->line_no, kHint);
  if (s.line() > 0) {
    s.checker().error(s.line(), "", "[auth] " + why);
  } else {
    // No [auth] table at all: point at the app that needs one.
    s.checker().error(delegated->line_no, "app " + dq(delegated->name), "[auth] " + why);
  }
}

using TableReader = void (*)(Section&, Config&);
using ArrayReader = void (*)(const toml::table&, size_t, NameRegistry&, Config&, Checker&);

// A top-level [table]; absent tables still run their reader so that defaults get resolved.
void read_table(const toml::table& root, const char* key, TableReader reader, Config& cfg,
                Checker& c) {
  static const toml::table kEmpty;
  const toml::node* n = root.get(key);
  if (n && !n->is_table()) {
    c.error(line_of(*n), "", fmt::format("{} must be a table: write [{}]", key, key));
    return;
  }
  Section s(n ? *n->as_table() : kEmpty, fmt::format("[{}]", key), c);
  reader(s, cfg);
  s.finish();
}

// Each element of an [[array]] of tables.
template <typename Fn>
void read_array(const toml::table& root, const char* key, Checker& c, Fn&& each) {
  const toml::node* n = root.get(key);
  if (!n) return;
  const toml::array* a = n->as_array();
  if (!a || !a->is_array_of_tables()) {
    c.error(line_of(*n), "", fmt::format("{} must be an array of tables: write [[{}]]", key, key));
    return;
  }
  for (size_t i = 0; i < a->size(); ++i) each(*(*a)[i].as_table(), i);
}

void read_document(const toml::table& root, Config& cfg, Checker& c) {
  static const std::set<std::string> kKnown = {"store",   "tracking", "ingest", "filters",
                                               "monitor", "auth",     "app",     "mailbox",
                                               "sender",  "project",  "user",
                                               "outbox"};
  for (const auto& [k, v] : root) {
    std::string key(k.str());
    if (!kKnown.count(key)) {
      std::string likely = closest_key(key, kKnown);
      std::string hint = likely.empty() ? "" : fmt::format(" (did you mean [{}]?)", likely);
      c.error(line_of(v), "", fmt::format("unknown key \"{}\"{}", key, hint));
    }
  }
  read_table(root, "store", read_store, cfg, c);
  read_table(root, "ingest", read_ingest, cfg, c);
  read_table(root, "filters", read_filters, cfg, c);
  // Referenced kinds first, so that references can be checked as they are read.
  NameRegistry apps("app"), projects("project"), mailboxes("mailbox"), senders("sender");
  std::map<std::string, int> users;
  read_array(root, "app", c, [&](auto& t, size_t i) { read_app(t, i, apps, cfg, c); });
  read_table(root, "auth", read_auth_section, cfg, c);
  read_array(root, "project", c, [&](auto& t, size_t i) { read_project(t, i, projects, cfg, c); });
  read_array(root, "user", c, [&](auto& t, size_t i) { read_user(t, i, users, cfg, c); });
  read_array(root, "mailbox", c, [&](auto& t, size_t i) { read_mailbox(t, i, mailboxes, cfg, c); });
  read_array(root, "sender", c, [&](auto& t, size_t i) { read_sender(t, i, senders, cfg, c); });
  read_table(root, "monitor", read_monitor, cfg, c);
  read_table(root, "tracking", read_tracking, cfg, c);
  read_table(root, "outbox", read_outbox, cfg, c);
}

}  // namespace

const MailboxConfig* Config::find_mailbox(const std::string& name) const {
  for (const auto& m : mailboxes) {
    if (m.name == name) return &m;
  }
  return nullptr;
}

const AppConfig* Config::find_app(const std::string& name) const {
  for (const auto& a : apps) {
    if (a.name == name) return &a;
  }
  return nullptr;
}

const ProjectConfig* Config::find_project(const std::string& name) const {
  for (const auto& p : projects) {
    if (p.name == name) return &p;
  }
  return nullptr;
}

const SenderConfig* Config::find_sender(const std::string& name) const {
  for (const auto& s : senders) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

Result<Config> parse_config(const std::string& text, const std::string& origin,
                            const std::string& base_dir, ConfigCheck check) {
  Checker checker(origin, base_dir, check);
  Config cfg;
  cfg.path = origin;
  try {
    toml::table root = toml::parse(text, std::string_view(origin));
    read_document(root, cfg, checker);
  } catch (const toml::parse_error& e) {
    return Status(ErrorKind::kConfig, fmt::format("{}:{}: {}", origin, e.source().begin.line,
                                                  e.description()));
  } catch (const std::exception& e) {
    return Status(ErrorKind::kConfig, fmt::format("{}: {}", origin, e.what()));
  }
  if (checker.has_errors()) return Status(ErrorKind::kConfig, checker.all_errors());
  cfg.warnings = checker.take_warnings();
  return cfg;
}

Result<Config> load_config(const std::string& path, ConfigCheck check) {
  auto text = read_regular_file(path, kMaxConfigFileBytes, "configuration");
  if (!text.ok()) return text.status();
  std::error_code ec;
  fs::path dir = fs::absolute(fs::path(path), ec).parent_path();
  if (ec) dir = fs::path(path).parent_path();
  auto cfg = parse_config(*text, path, dir.lexically_normal().string(), check);
  if (cfg.ok()) cfg->path = path;
  return cfg;
}

Result<std::chrono::seconds> parse_duration(const std::string& text) {
  static const std::map<std::string, int64_t> kUnits = {
      {"", 1}, {"s", 1}, {"m", 60}, {"h", 3600}, {"d", 86400}};
  size_t pos = 0;
  while (pos < text.size() && std::isdigit(static_cast<unsigned char>(text[pos]))) ++pos;
  auto unit = kUnits.find(text.substr(pos));
  if (pos == 0 || pos > 9 || unit == kUnits.end()) {
    return Status(ErrorKind::kConfig,
                  fmt::format("invalid duration \"{}\" (write e.g. 30s, 2m, 1h)", text));
  }
  return std::chrono::seconds(std::stoll(text.substr(0, pos)) * unit->second);
}

Result<PostAction> parse_post_action(const std::string& text) {
  if (text == "mark-read") return PostAction::mark_read();
  if (text == "delete") return PostAction::remove();
  if (text == "leave") return PostAction::leave();
  if (text == "move") return PostAction::move("Processed");
  if (text.rfind("move:", 0) == 0 && text.size() > 5) return PostAction::move(text.substr(5));
  return Status(ErrorKind::kConfig,
                fmt::format("invalid action \"{}\" (mark-read | delete | move:FOLDER | leave)",
                            text));
}

uint16_t default_port(const std::string& type, Security security) {
  bool implicit = security == Security::kTls;
  if (type == "imap") return implicit ? 993 : 143;
  if (type == "pop3") return implicit ? 995 : 110;
  if (type == "smtp") {
    if (implicit) return 465;
    return security == Security::kStartTls ? 587 : 25;
  }
  return 443;  // graph, ews: HTTPS
}

}  // namespace mb
