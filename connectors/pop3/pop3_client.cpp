// File: connectors/pop3/pop3_client.cpp — the POP3 client: status lines, multi-line answers
// with dot-unstuffing, sign-in (USER/PASS, SASL over AUTH), and the mapping of -ERR and its
// RFC 2449/3206 response codes to Status kinds.
#include "connectors/pop3/pop3_client.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <charconv>

#include "auth/secrets.h"
#include "core/ascii.h"

namespace mb::pop3 {
namespace {

constexpr std::chrono::seconds kInUseRetry{60};
constexpr std::chrono::seconds kLoginDelayRetry{300};
constexpr std::chrono::seconds kTempRetry{60};

// Server text fit for a message: secrets removed, control bytes shown as '?', cut short.
std::string safe(std::string_view text, std::string_view secret = {}) {
  return sasl::excerpt(Redactor::instance().scrub(text, secret));
}

template <typename T>
std::optional<T> number(std::string_view s) {
  T v{};
  if (s.empty()) return std::nullopt;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}

// "a b  c" → {"a", "b", "c"}.
std::vector<std::string_view> words(std::string_view s) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && s[i] == ' ') ++i;
    size_t j = i;
    while (j < s.size() && s[j] != ' ') ++j;
    if (j > i) out.push_back(s.substr(i, j - i));
    i = j;
  }
  return out;
}

}  // namespace

const char* to_string(State s) {
  switch (s) {
    case State::kDisconnected: return "disconnected";
    case State::kAuthorization: return "authorization";
    case State::kTransaction: return "transaction";
    case State::kClosed: return "closed";
    default: return "unknown";
  }
}

Result<Reply> parse_reply(std::string_view line) {
  Reply r;
  std::string_view rest;
  if (line.rfind("+OK", 0) == 0) {
    r.ok = true;
    rest = line.substr(3);
  } else if (line.rfind("-ERR", 0) == 0) {
    rest = line.substr(4);
  } else {
    return protocol_violation("POP3 server sent an unexpected reply \"" + safe(line) + "\"");
  }
  if (!rest.empty() && rest.front() != ' ') {
    return protocol_violation("POP3 server sent an unexpected reply \"" + safe(line) + "\"");
  }
  while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
  if (!rest.empty() && rest.front() == '[') {
    size_t close = rest.find(']');
    if (close != std::string_view::npos) {
      r.code = ascii_upper(rest.substr(1, close - 1));
      rest.remove_prefix(close + 1);
      while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
    }
  }
  r.text = std::string(rest);
  return r;
}

Status err_status(const Reply& r, const std::string& what,
                  std::optional<std::chrono::seconds> login_delay) {
  std::string text = "POP3 " + what + " failed: " + (r.code.empty() ? "" : "[" + r.code + "] ") +
                     safe(r.text);
  // Hierarchical codes (RFC 3206 §4): "SYS/TEMP" and its extensions "SYS/TEMP/…".
  auto is = [&](std::string_view code) {
    return r.code == code || r.code.rfind(std::string(code) + "/", 0) == 0;
  };
  if (is("AUTH")) return Status(ErrorKind::kAuth, text, ErrorScope::kMailbox);
  if (is("IN-USE")) {
    return Status(ErrorKind::kThrottled, text + " (the maildrop is in use; retrying later)",
                  ErrorScope::kMailbox).with_retry_after(kInUseRetry);
  }
  if (is("LOGIN-DELAY")) {
    return Status(ErrorKind::kThrottled, text + " (signed in too recently; retrying later)",
                  ErrorScope::kMailbox).with_retry_after(login_delay.value_or(kLoginDelayRetry));
  }
  if (is("SYS/TEMP")) {
    return Status(ErrorKind::kThrottled, text + " (a temporary server problem)",
                  ErrorScope::kMailbox).with_retry_after(kTempRetry);
  }
  if (is("SYS/PERM")) return Status(ErrorKind::kRejected, text, ErrorScope::kMailbox);
  return Status(ErrorKind::kRejected, text, ErrorScope::kNone);
}

std::optional<std::string_view> unstuff(std::string_view line) {
  if (line == ".") return std::nullopt;
  if (!line.empty() && line.front() == '.') line.remove_prefix(1);
  return line;
}

// While a message body is read its lines stay out of the trace; one line gives its size.
struct Client::Quiet {
  Client& c;
  std::string what;
  Quiet(Client& client, std::string w) : c(client), what(std::move(w)) {
    c.quiet_body_ = true;
    c.body_traced_ = 0;
  }
  ~Quiet() {
    c.quiet_body_ = false;
    if (c.channel_ && c.body_traced_ > 0) {
      spdlog::trace("{}: S: <{} answer: {} bytes not traced>", c.options_.label, what,
                    c.body_traced_);
    }
  }
};

struct Client::SecretInTrace {
  Client& c;
  SecretInTrace(Client& client, const std::string& secret) : c(client) {
    c.trace_secret_ = secret.size() >= 4 ? secret : std::string();
  }
  ~SecretInTrace() { c.trace_secret_.clear(); }
};

Client::Client(ClientOptions options) : options_(std::move(options)) {}

Client::~Client() { close(); }

void Client::close() {
  if (channel_) channel_->close();
  channel_.reset();
  state_ = State::kDisconnected;
}

Status Client::fail(Status s) {
  bool fatal = s.scope() == ErrorScope::kConnection || s.kind() == ErrorKind::kNetwork ||
               s.kind() == ErrorKind::kProtocol || s.kind() == ErrorKind::kTls;
  if (fatal) close();
  return s;
}

// OK only with a connection in state `s`: a guard that can never pass without a channel.
Status Client::require(State s, const char* command) const {
  if (!channel_) {
    return Status(ErrorKind::kNetwork, std::string("POP3 ") + command +
                                           ": the connection is closed",
                  ErrorScope::kConnection);
  }
  if (state_ == s) return Status::Ok();
  return Status(ErrorKind::kInternal, std::string("POP3 ") + command +
                                          " is not possible in state " + to_string(state_));
}

bool Client::has_capability(const std::string& name) const {
  return caps_.count(ascii_upper(name)) > 0;
}


Result<Reply> Client::read_reply(const std::string& what) {
  auto line = channel_->read_line();
  if (!line.ok()) return fail(line.status().prefixed("POP3 " + what));
  auto r = parse_reply(*line);
  if (!r.ok()) return fail(r.status().prefixed("POP3 " + what));
  return r;
}

Result<Reply> Client::command(const std::string& line, const std::string& what,
                              size_t secret_from, size_t secret_len) {
  if (!channel_) {
    return Status(ErrorKind::kNetwork, "POP3 connection is closed", ErrorScope::kConnection);
  }
  // The command and its whole answer (multi-line too) form one step with one deadline.
  channel_->begin_step("the answer to " + what, options_.timeouts.response);
  Status w = channel_->write_line(line, secret_from, secret_len);
  if (!w.ok()) return fail(w.prefixed("POP3 " + what));
  return read_reply(what);
}

Status Client::simple(const std::string& line, const std::string& what) {
  auto r = command(line, what);
  if (!r.ok()) return r.status();
  if (!r->ok) return err_status(*r, what, login_delay_);
  return Status::Ok();
}

Status Client::read_multiline(const std::string& what,
                              const std::function<Status(std::string_view)>& on_line) {
  while (true) {
    auto line = channel_->read_line();
    if (!line.ok()) {
      return fail(Status(line.status().kind(),
                         "POP3 " + what + ": the answer ended before its terminating \".\": " +
                             line.status().message(),
                         ErrorScope::kConnection));
    }
    auto content = unstuff(*line);
    if (!content) return Status::Ok();
    Status s = on_line(*content);
    if (!s.ok()) return fail(std::move(s));
  }
}

Status Client::connect(std::unique_ptr<Stream> stream) {
  close();
  open_channel(std::move(stream), options_.max_line, {});
  if (auto sink = trace_sink(options_)) {
    // Message bodies are not traced (only their size), and a server that echoes the
    // password being sent has it replaced.
    channel_->set_trace([this, sink = std::move(sink)](const std::string& line) {
      if (quiet_body_ && line.rfind("S: ", 0) == 0) {
        body_traced_ += line.size() - 1;
        return;
      }
      sink(trace_secret_.empty() ? line : sasl::without_secret(line, trace_secret_));
    });
  }
  caps_.clear();
  capa_lines_.clear();
  sasl_.clear();
  capa_supported_ = false;
  capa_asked_ = false;
  login_delay_.reset();
  auto r = read_greeting(options_.timeouts,
                         [&] { return read_reply("greeting from " + options_.host); });
  if (!r.ok()) return r.status();
  if (!r->ok) {
    Status s = err_status(*r, "greeting from " + options_.host);
    close();
    if (s.kind() == ErrorKind::kRejected) {
      return Status(ErrorKind::kNetwork, "POP3 server " + options_.host +
                                             " refused the connection: " + safe(r->text),
                    ErrorScope::kConnection);
    }
    return s;
  }
  state_ = State::kAuthorization;
  return Status::Ok();
}

void Client::note_capabilities(const std::vector<std::string>& lines) {
  capa_lines_ = lines;
  caps_.clear();
  sasl_.clear();
  login_delay_.reset();
  for (const auto& line : lines) {
    auto w = words(line);
    if (w.empty()) continue;
    std::string name = ascii_upper(w[0]);
    caps_.insert(name);
    if (name == "SASL") {
      for (size_t i = 1; i < w.size(); ++i) sasl_.push_back(ascii_upper(w[i]));
    }
    if (name == "LOGIN-DELAY" && w.size() > 1) {
      if (auto n = number<int64_t>(w[1]); n && *n > 0) login_delay_ = std::chrono::seconds(*n);
    }
  }
}

Status Client::capa() {
  if (state_ != State::kAuthorization && state_ != State::kTransaction) {
    return require(State::kAuthorization, "CAPA");
  }
  auto r = command("CAPA", "CAPA");
  if (!r.ok()) return r.status();
  capa_asked_ = true;
  if (!r->ok) {
    capa_supported_ = false;
    note_capabilities({});
    return Status::Ok();
  }
  std::vector<std::string> lines;
  MB_RETURN_IF_ERROR(read_multiline("CAPA", [&](std::string_view l) {
    if (lines.size() >= 1000) return protocol_violation("POP3 CAPA answer is longer than 1000 lines");
    lines.emplace_back(l);
    return Status::Ok();
  }));
  capa_supported_ = true;
  note_capabilities(lines);
  return Status::Ok();
}

Status Client::stls() {
  MB_RETURN_IF_ERROR(require(State::kAuthorization, "STLS"));
  if (!capa_asked_) MB_RETURN_IF_ERROR(capa());
  if (!has_capability("STLS")) {
    return fail(Status(ErrorKind::kTls,
                       "POP3 server " + options_.host +
                           " does not offer STLS; security = starttls forbids going on in "
                           "plaintext",
                       ErrorScope::kConnection));
  }
  auto r = command("STLS", "STLS");
  if (!r.ok()) return r.status();
  if (!r->ok) {
    return fail(Status(ErrorKind::kTls, "POP3 server refused STLS: " + safe(r->text),
                       ErrorScope::kConnection));
  }
  Status tls = upgrade_to_tls(*channel_, options_);
  if (!tls.ok()) return fail(std::move(tls));
  // RFC 2595 §4: what the server said before TLS is not to be trusted; ask again.
  note_capabilities({});
  capa_asked_ = false;
  return capa();
}

Status Client::plaintext_refused(const std::string& what) const {
  return Status(ErrorKind::kConfig,
                "POP3 " + what + " would send credentials to " + options_.host +
                    " over a connection that is not encrypted; use security = tls or "
                    "starttls (or write security = none explicitly)");
}

Status Client::auth_failed(const Reply& r, const sasl::Credentials& creds,
                           const std::string& what) {
  Status coded = err_status(r, what, login_delay_);
  if (coded.kind() == ErrorKind::kThrottled) return coded;
  std::string code = r.code.empty() ? "" : "[" + r.code + "] ";
  return Status(ErrorKind::kAuth,
                "POP3 server refused the login for user " + creds.user + " (" + what +
                    "): " + code + safe(r.text, creds.secret),
                ErrorScope::kMailbox);
}

Status Client::user_pass(const std::string& user, const std::string& password) {
  MB_RETURN_IF_ERROR(require(State::kAuthorization, "USER"));
  if (!is_tls() && !options_.allow_plaintext_auth) return plaintext_refused("USER/PASS");
  // A line end inside either would end the command early and start another one.
  if ((user + password).find_first_of("\r\n") != std::string::npos) {
    return Status(ErrorKind::kConfig, "POP3 user name or password holds a line break");
  }
  sasl::Credentials creds;
  creds.user = user;
  creds.secret = password;
  SecretInTrace hide(*this, password);
  auto u = command("USER " + user, "USER");
  if (!u.ok()) return u.status();
  if (!u->ok) return auth_failed(*u, creds, "USER");
  const std::string pass = "PASS " + password;
  auto p = command(pass, "PASS", 5, password.size());
  if (!p.ok()) return p.status();
  if (!p->ok) return auth_failed(*p, creds, "PASS");
  state_ = State::kTransaction;
  return Status::Ok();
}

// AUTH over this connection for sasl::authenticate: "+" and "+ " lines are challenges, a
// status line is the verdict.
class Client::SaslLink : public sasl::Link {
 public:
  SaslLink(Client& c, const sasl::Credentials& creds, std::string what)
      : c_(c), creds_(creds), what_(std::move(what)) {}
  std::string server() const override { return "POP3 server"; }
  Status send_command(const std::string& line, size_t secret_from) override {
    c_.channel_->begin_step("the answer to " + what_, c_.options_.timeouts.response);
    return write(c_.channel_->write_line(line, secret_from, std::string::npos));
  }
  Status send_response(const sasl::Reply& reply) override {
    size_t n = reply.secret ? reply.line.size() : std::string::npos;
    return write(c_.channel_->write_line(reply.line, reply.secret ? 0 : n, n));
  }
  Result<sasl::Answer> read() override {
    auto line = c_.channel_->read_line();
    if (!line.ok()) return c_.fail(line.status().prefixed("POP3 " + what_));
    const std::string& l = *line;
    if (l == "+" || (l.size() >= 2 && l[0] == '+' && l[1] == ' ')) {
      return sasl::Answer{'+', l.size() > 2 ? l.substr(2) : std::string()};
    }
    auto r = parse_reply(l);
    if (!r.ok()) return c_.fail(r.status().prefixed("POP3 " + what_));
    final_ = *r;
    return sasl::Answer{r->ok ? 'O' : 'E', r->text};
  }
  bool accepted(const sasl::Answer& a) const override { return a.code == 'O'; }
  Status refused(const sasl::Answer&) override { return c_.auth_failed(final_, creds_, what_); }
  Status fail(Status s) override { return c_.fail(std::move(s)); }

 private:
  Status write(Status s) { return s.ok() ? s : c_.fail(s.prefixed("POP3 " + what_)); }
  Client& c_;
  const sasl::Credentials& creds_;
  std::string what_;
  Reply final_;
};

Status Client::authenticate(sasl::Mechanism& mechanism, const sasl::Credentials& creds) {
  MB_RETURN_IF_ERROR(require(State::kAuthorization, "AUTH"));
  SecretInTrace hide(*this, creds.secret);
  SaslLink link(*this, creds, "AUTH " + std::string(mechanism.name()));
  MB_RETURN_IF_ERROR(sasl::authenticate(sasl::kPop3, link, mechanism, creds));
  state_ = State::kTransaction;
  return Status::Ok();
}

Result<std::string> Client::sign_in(const sasl::Credentials& creds) {
  MB_RETURN_IF_ERROR(require(State::kAuthorization, "sign-in"));
  if (!capa_asked_) MB_RETURN_IF_ERROR(capa());
  bool token = creds.kind == sasl::CredentialKind::kToken;
  sasl::Preferences prefs;
  prefs.tls = is_tls();
  prefs.plaintext_allowed = options_.allow_plaintext_auth;
  auto choice = sasl::choose_mechanism(sasl::kPop3, sasl_, creds.kind, prefs);
  if (!prefs.tls && !prefs.plaintext_allowed) {
    return plaintext_refused(token && choice.ok() ? *choice + " token" : "sign-in");
  }
  if (choice.ok()) {
    auto mech = sasl::make_mechanism(*choice, creds);
    if (!mech.ok()) return mech.status();
    MB_RETURN_IF_ERROR(authenticate(**mech, creds));
    return "AUTH " + *choice;
  }
  if (token) return choice.status().prefixed("POP3 server " + options_.host);
  // A password without SASL PLAIN: USER/PASS.
  MB_RETURN_IF_ERROR(user_pass(creds.user, creds.secret));
  return std::string("USER/PASS");
}

Result<MaildropStat> Client::stat() {
  MB_RETURN_IF_ERROR(require(State::kTransaction, "STAT"));
  auto r = command("STAT", "STAT");
  if (!r.ok()) return r.status();
  if (!r->ok) return err_status(*r, "STAT", login_delay_);
  auto w = words(r->text);
  auto count = w.size() >= 2 ? number<uint64_t>(w[0]) : std::nullopt;
  auto octets = w.size() >= 2 ? number<uint64_t>(w[1]) : std::nullopt;
  if (!count || !octets) return fail(protocol_violation("POP3 STAT answer is malformed: \"" + safe(r->text) + "\""));
  return MaildropStat{*count, *octets};
}

Result<std::vector<UidlEntry>> Client::uidl() {
  MB_RETURN_IF_ERROR(require(State::kTransaction, "UIDL"));
  auto r = command("UIDL", "UIDL");
  if (!r.ok()) return r.status();
  if (!r->ok) return err_status(*r, "UIDL", login_delay_);
  std::vector<UidlEntry> out;
  Status s = read_multiline("UIDL", [&](std::string_view l) -> Status {
    auto w = words(l);
    auto n = w.size() == 2 ? number<uint32_t>(w[0]) : std::nullopt;
    // RFC 1939 §7: 1 to 70 characters in the range 0x21 to 0x7E.
    bool valid = n && *n > 0 && !w[1].empty() && w[1].size() <= 70 &&
                 std::all_of(w[1].begin(), w[1].end(), [](char c) { return c >= 0x21 && c <= 0x7E; });
    if (!valid) return protocol_violation("POP3 UIDL answer holds a malformed line \"" + safe(l) + "\"");
    out.push_back(UidlEntry{*n, std::string(w[1])});
    return Status::Ok();
  });
  if (!s.ok()) return s;
  return out;
}

Result<std::vector<ListEntry>> Client::list() {
  MB_RETURN_IF_ERROR(require(State::kTransaction, "LIST"));
  auto r = command("LIST", "LIST");
  if (!r.ok()) return r.status();
  if (!r->ok) return err_status(*r, "LIST", login_delay_);
  std::vector<ListEntry> out;
  Status s = read_multiline("LIST", [&](std::string_view l) -> Status {
    auto w = words(l);
    auto n = w.size() >= 2 ? number<uint32_t>(w[0]) : std::nullopt;
    auto octets = w.size() >= 2 ? number<uint64_t>(w[1]) : std::nullopt;
    if (!n || !octets) return protocol_violation("POP3 LIST answer holds a malformed line \"" + safe(l) + "\"");
    out.push_back(ListEntry{*n, *octets});
    return Status::Ok();
  });
  if (!s.ok()) return s;
  return out;
}

Status Client::retr(uint32_t number, std::string& out, uint64_t size_hint) {
  MB_RETURN_IF_ERROR(require(State::kTransaction, "RETR"));
  const std::string what = "RETR " + std::to_string(number);
  auto r = command(what, what);
  if (!r.ok()) return r.status();
  return read_retr(*r, number, out, size_hint);
}

// The answer to one RETR whose status line `r` was read: the -ERR, or the body.
Status Client::read_retr(const Reply& r, uint32_t number, std::string& out, uint64_t size_hint) {
  const std::string what = "RETR " + std::to_string(number);
  out.clear();
  if (!r.ok) {
    Status s = err_status(r, what, login_delay_);
    if (s.scope() == ErrorScope::kNone) s.with_scope(ErrorScope::kMessage);
    return s;
  }
  // LIST sizes count CRLF line ends, as the unstuffed body does; a little slack for servers
  // that count LF only.
  if (size_hint > 0 && size_hint <= options_.max_message_bytes) {
    out.reserve(static_cast<size_t>(size_hint + size_hint / 32 + 64));
  }
  uint64_t total = 0;
  Quiet quiet(*this, what);
  MB_RETURN_IF_ERROR(read_body(what, out, total));
  if (total > options_.max_message_bytes) {
    return Status(ErrorKind::kTooLarge,
                  "POP3 message " + std::to_string(number) + " is " + std::to_string(total) +
                      " bytes, over max_message_bytes (" +
                      std::to_string(options_.max_message_bytes) + ")",
                  ErrorScope::kMessage);
  }
  return Status::Ok();
}

// A RETR or TOP body into `out`: each line straight into `out` (a long line is held once),
// dot-unstuffed, with CRLF line ends; `total` gets its size. Past max_message_bytes nothing
// more is kept and the rest is read and dropped, up to LineChannel::kMaxDrain more bytes;
// beyond that the connection is closed and the answer is kTooLarge (scope kMessage).
Status Client::read_body(const std::string& what, std::string& out, uint64_t& total) {
  const uint64_t limit = options_.max_message_bytes;
  const uint64_t drain_end = limit + LineChannel::kMaxDrain;
  total = 0;
  for (;;) {
    size_t start = out.size();
    uint64_t keep = total <= limit ? limit - total + 1 : 0;
    auto line = channel_->read_line_into(out, keep, drain_end - std::min(total, drain_end));
    if (!line.ok() && line.status().kind() == ErrorKind::kProtocol) {
      close();  // more than kMaxDrain past the limit in one line: not worth reading
      total = drain_end + 1;
      return Status(ErrorKind::kTooLarge,
                    "POP3 " + what + ": the message passed max_message_bytes (" +
                        std::to_string(limit) + ") by more than " +
                        std::to_string(LineChannel::kMaxDrain >> 20) +
                        " MiB; the connection was closed instead of reading the rest",
                    ErrorScope::kMessage);
    }
    if (!line.ok()) {
      return fail(Status(line.status().kind(),
                         "POP3 " + what + ": the answer ended before its terminating \".\": " +
                             line.status().message(),
                         ErrorScope::kConnection));
    }
    uint64_t size = line->size;
    if (line->first == '.') {
      if (size == 1) {
        out.resize(start);
        return Status::Ok();
      }
      if (out.size() > start) out.erase(start, 1);
      --size;
    }
    total += size + 2;
    if (total <= limit) {
      out.append("\r\n");
    } else if (!out.empty()) {
      out.clear();
      out.shrink_to_fit();
    }
    if (total > drain_end) {
      close();
      return Status(ErrorKind::kTooLarge,
                    "POP3 " + what + ": the message passed max_message_bytes (" +
                        std::to_string(limit) + ") by more than " +
                        std::to_string(LineChannel::kMaxDrain >> 20) +
                        " MiB; the connection was closed instead of reading the rest",
                    ErrorScope::kMessage);
    }
  }
}

// With PIPELINING (RFC 2449 §6.6) every RETR goes out before the first answer is read, so a
// batch costs one round trip instead of one per message.
Status Client::retr_many(const std::vector<uint32_t>& numbers, const RetrSink& sink) {
  MB_RETURN_IF_ERROR(require(State::kTransaction, "RETR"));
  std::string body;
  if (!has_capability("PIPELINING")) {
    for (size_t i = 0; i < numbers.size(); ++i) {
      Status s = retr(numbers[i], body);
      if (!s.ok() && s.scope() != ErrorScope::kMessage) return s;
      MB_RETURN_IF_ERROR(sink(i, s.ok() ? Result<std::string>(std::move(body)) : Result<std::string>(s)));
      body = std::string();
    }
    return Status::Ok();
  }
  channel_->begin_step("sending RETR commands", options_.timeouts.response);
  for (uint32_t n : numbers) {
    Status w = channel_->write_line("RETR " + std::to_string(n));
    if (!w.ok()) return fail(w.prefixed("POP3 RETR"));
  }
  Status stopped;
  for (size_t i = 0; i < numbers.size(); ++i) {
    const std::string what = "RETR " + std::to_string(numbers[i]);
    channel_->begin_step("the answer to " + what, options_.timeouts.response);
    auto r = read_reply(what);
    if (!r.ok()) return r.status();
    Status s = read_retr(*r, numbers[i], body);
    if (!s.ok() && s.scope() != ErrorScope::kMessage) {
      close();  // answers to the other commands are still on the way: out of step
      return s;
    }
    // After the caller stops, the answers still coming are read so the session stays usable.
    if (stopped.ok()) {
      stopped = sink(i, s.ok() ? Result<std::string>(std::move(body)) : Result<std::string>(s));
    }
    body = std::string();
    if (!channel_) {
      // A body far over the limit closed the connection; the rest cannot be read.
      return stopped.ok() ? Status(ErrorKind::kNetwork, "POP3 connection closed after " + what +
                                                            ": " + s.message(),
                                   ErrorScope::kConnection)
                          : stopped;
    }
  }
  return stopped;
}

Result<std::string> Client::top(uint32_t number, uint32_t lines) {
  MB_RETURN_IF_ERROR(require(State::kTransaction, "TOP"));
  const std::string what = "TOP " + std::to_string(number) + " " + std::to_string(lines);
  auto r = command(what, what);
  if (!r.ok()) return r.status();
  if (!r->ok) return err_status(*r, what, login_delay_);
  std::string out;
  uint64_t total = 0;
  Quiet quiet(*this, what);
  MB_RETURN_IF_ERROR(read_body(what, out, total));
  if (total > options_.max_message_bytes) {
    return Status(ErrorKind::kTooLarge, "POP3 " + what + " answer is over max_message_bytes",
                  ErrorScope::kMessage);
  }
  return out;
}

Status Client::dele(uint32_t number) {
  MB_RETURN_IF_ERROR(require(State::kTransaction, "DELE"));
  const std::string what = "DELE " + std::to_string(number);
  return simple(what, what);
}

Status Client::rset() {
  MB_RETURN_IF_ERROR(require(State::kTransaction, "RSET"));
  return simple("RSET", "RSET");
}

Status Client::noop() {
  MB_RETURN_IF_ERROR(require(State::kTransaction, "NOOP"));
  return simple("NOOP", "NOOP");
}

Status Client::quit() {
  if (!channel_) {
    return Status(ErrorKind::kNetwork, "POP3 connection is closed before QUIT",
                  ErrorScope::kConnection);
  }
  auto r = command("QUIT", "QUIT");
  Status s;
  if (!r.ok()) {
    s = r.status();
  } else if (!r->ok) {
    // RFC 1939 §6: -ERR to QUIT in the UPDATE state means some deletions were not made.
    s = Status(ErrorKind::kRejected, "POP3 QUIT failed: " + safe(r->text), ErrorScope::kMailbox);
  }
  close();
  state_ = State::kClosed;
  return s;
}

}  // namespace mb::pop3
