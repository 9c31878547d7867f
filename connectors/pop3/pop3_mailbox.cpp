// File: connectors/pop3/pop3_mailbox.cpp — Mailbox over the POP3 client: one session per
// listing (a POP3 session sees a snapshot of the maildrop), UIDL → message-number mapping
// within the session, streamed RETR, DELE made final only by QUIT, the sign-in with a
// password or an OAuth token, and the step-by-step connection test.
#include "connectors/pop3/pop3_mailbox.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <functional>
#include <unordered_map>
#include <unordered_set>

#include "auth/token_cache.h"
#include "connectors/pop3/pop3_client.h"
#include "connectors/line_client.h"
#include "core/ascii.h"
#include "core/hash.h"
#include "core/net.h"

namespace mb {
namespace {

using pop3::Client;

// A message of the current session: its number (valid in this session only) and its key.
struct Entry {
  uint32_t number = 0;
  std::string key;
};

// State of a "leave" mailbox: "p1:N:SHA256" of the first N keys of the maildrop, all of
// which the ledger has. While the maildrop keeps that prefix (new mail is appended), the
// next listing starts after it, so a large maildrop left on the server costs one UIDL and
// no ledger look-ups per poll.
constexpr const char* kStatePrefix = "p1:";

std::string prefix_hash(const std::vector<Entry>& entries, size_t n) {
  std::string joined;
  for (size_t i = 0; i < n && i < entries.size(); ++i) {
    joined += entries[i].key;
    joined += '\n';
  }
  return sha256_hex(joined);
}

// The unfolded value of header `name` in `headers` (case-insensitive), "" when absent.
std::string header_value(const std::string& headers, std::string_view name) {
  size_t pos = 0;
  while (pos < headers.size()) {
    size_t eol = headers.find('\n', pos);
    if (eol == std::string::npos) eol = headers.size();
    std::string_view line(headers.data() + pos, eol - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) break;
    bool match = line.size() > name.size() && line[name.size()] == ':' &&
                 ascii_iequals(name, line.substr(0, name.size()));
    pos = eol + 1;
    if (!match) continue;
    std::string value(line.substr(name.size() + 1));
    while (pos < headers.size() && (headers[pos] == ' ' || headers[pos] == '\t')) {
      size_t next = headers.find('\n', pos);
      if (next == std::string::npos) next = headers.size();
      std::string_view cont(headers.data() + pos, next - pos);
      if (!cont.empty() && cont.back() == '\r') cont.remove_suffix(1);
      value += cont;
      pos = next + 1;
    }
    size_t b = value.find_first_not_of(" \t");
    size_t e = value.find_last_not_of(" \t");
    return b == std::string::npos ? std::string() : value.substr(b, e - b + 1);
  }
  return {};
}

class Pop3Mailbox : public Mailbox {
 public:
  Pop3Mailbox(MailboxConfig config, SignIn sign_in, StreamFactory factory)
      : cfg_(std::move(config)), sign_in_(std::move(sign_in)), factory_(std::move(factory)) {
    if (cfg_.port == 0) cfg_.port = default_port(ConnectorType::kPop3, cfg_.security);
  }
  ~Pop3Mailbox() override { close(); }

  ConnectionReport test_connection() override;
  Result<Pending> list_pending(size_t limit, const std::string& state) override;
  Status fetch(const std::vector<std::string>& keys, const FetchCallback& cb) override;
  Status fetch_from(const std::vector<std::string>& keys, size_t& next, const FetchCallback& cb,
                    bool& cb_failed);
  Status retry_alone(const std::string& key, const FetchCallback& cb);
  Status apply(const std::vector<std::string>& keys, const PostAction& action) override;
  Capabilities capabilities() const override { return {}; }
  void close() override;

 private:
  pop3::ClientOptions client_options() const;
  Status connect_fresh();
  Status sign_in(std::string* how);
  Status sign_in_with_token(const std::string& token, std::string* how);
  Status ensure_open();
  Status load_listing();
  Status load_header_keys();
  Result<std::string> header_identity(uint32_t number, uint64_t octets);
  Status key_repeated_uidls();
  size_t listed_prefix(const std::string& state) const;
  bool capability_steps(ConnectionSteps& step);
  bool uidl_step(ConnectionSteps& step);
  Status check(Status s);
  void drop();
  Status load_sizes();
  Status answered_without_retr(const std::string& key) const;

  MailboxConfig cfg_;
  SignIn sign_in_;
  StreamFactory factory_;
  std::unique_ptr<Client> client_;
  std::vector<Entry> entries_;
  std::unordered_map<std::string, size_t> index_;  // key → entries_ position
  bool listed_ = false;
  bool warned_no_uidl_ = false;
  std::unordered_set<std::string> warned_uidls_;  // repeated UIDLs already warned about
  std::unordered_map<uint32_t, uint64_t> sizes_;  // message number → LIST size, this session
  bool sizes_loaded_ = false;
};

pop3::ClientOptions Pop3Mailbox::client_options() const {
  pop3::ClientOptions o;
  fill_options(o, endpoint_of(cfg_), "mailbox " + cfg_.name);
  o.max_message_bytes = cfg_.max_message_bytes;
  return o;
}

// Drops the session without QUIT: whatever DELE marked stays on the server (RFC 1939 §6).
void Pop3Mailbox::drop() {
  if (client_) client_->close();
  client_.reset();
  entries_.clear();
  index_.clear();
  listed_ = false;
  sizes_.clear();
  sizes_loaded_ = false;
}

Status Pop3Mailbox::check(Status s) {
  if (s.ok()) return s;
  if (s.scope() == ErrorScope::kConnection || !client_ ||
      client_->state() != pop3::State::kTransaction) {
    drop();
  }
  return s;
}

void Pop3Mailbox::close() {
  if (!client_) return;
  // No DELE is ever pending here (apply() ends with its own QUIT), so QUIT deletes nothing.
  if (client_->state() != pop3::State::kDisconnected) client_->quit().ignore();
  drop();
}

// A new connection, greeted and (for starttls) encrypted, not yet signed in.
Status Pop3Mailbox::connect_fresh() {
  drop();
  client_ = std::make_unique<Client>(client_options());
  auto stream = open_stream(endpoint_of(cfg_), factory_);
  if (!stream.ok()) return stream.status();
  Status s = client_->connect(std::move(*stream));
  if (s.ok()) s = client_->capa();
  if (s.ok() && cfg_.security == Security::kStartTls) s = client_->stls();
  return s;
}

// A server may close the session after a refused AUTH; the retry with a fresh token then
// starts on a new connection.
Status Pop3Mailbox::sign_in_with_token(const std::string& token, std::string* how) {
  if (!client_ || client_->state() != pop3::State::kAuthorization) {
    MB_RETURN_IF_ERROR(connect_fresh());
  }
  sasl::Credentials creds =
      credentials(endpoint_of(cfg_), cfg_.user, token, sasl::CredentialKind::kToken);
  auto method = client_->sign_in(creds);
  if (!method.ok()) return as_token_rejection(method.status());
  *how = *method + " with an OAuth token";
  return Status::Ok();
}

Status Pop3Mailbox::sign_in(std::string* how) {
  if (sign_in_.oauth()) {
    return sign_in_.with_token(
        [&](const std::string& token) { return sign_in_with_token(token, how); });
  }
  sasl::Credentials creds = credentials(endpoint_of(cfg_), cfg_.user, sign_in_.password);
  auto method = client_->sign_in(creds);
  if (!method.ok()) return method.status();
  *how = *method;
  return Status::Ok();
}

// What identifies message `number` of `octets` bytes when its UIDL cannot: a hash of its
// Message-ID, Date, From and Subject (TOP n 0) and its size. Nothing in it depends on the
// message's number, so it stays the same when messages before it are deleted.
Result<std::string> Pop3Mailbox::header_identity(uint32_t number, uint64_t octets) {
  auto head = client_->top(number, 0);
  if (!head.ok()) return head.status();
  std::string ident;
  for (const char* h : {"Message-ID", "Date", "From", "Subject"}) {
    ident += header_value(*head, h) + "\n";
  }
  ident += std::to_string(octets);
  return "hdr-" + sha256_hex(ident).substr(0, 40);
}

// Without UIDL a message is keyed by what its headers say (header_identity). Identical
// messages collapse into one key; the ledger's duplicate check would skip the second anyway.
Status Pop3Mailbox::load_header_keys() {
  if (!warned_no_uidl_) {
    spdlog::warn("mailbox {}: the POP3 server does not support UIDL; messages are keyed by a "
                 "hash of their headers (TOP), which costs one command per message and poll",
                 cfg_.name);
    warned_no_uidl_ = true;
  }
  auto sizes = client_->list();
  if (!sizes.ok()) return sizes.status();
  for (const auto& m : *sizes) {
    auto key = header_identity(m.number, m.octets);
    if (!key.ok()) {
      if (key.status().kind() != ErrorKind::kRejected) return key.status();
      return Status(ErrorKind::kRejected,
                    "POP3 server " + cfg_.host + " supports neither UIDL nor TOP, so mailbridge "
                    "cannot tell its messages apart: " + key.status().message(),
                    ErrorScope::kMailbox);
    }
    entries_.push_back(Entry{m.number, std::move(*key)});
  }
  return Status::Ok();
}

// RFC 1939 says a UIDL is never given to two messages; some servers do. The first message
// (lowest number) with such a UIDL keeps it as its key; each later one is keyed
// "UIDL/hdr-HASH" by header_identity (or "UIDL/size-N" without TOP). Not by its number or
// position: those change when an earlier message is deleted, and a later message would then
// take a key the ledger already has and be lost. So every message is imported once, across
// polls and restarts; when the first is deleted, the next one takes over the plain UIDL,
// which the ledger already has, and is not imported again.
Status Pop3Mailbox::key_repeated_uidls() {
  std::unordered_map<std::string, size_t> seen;
  bool repeated = false;
  for (const auto& e : entries_) repeated |= ++seen[e.key] > 1;
  if (!repeated) return Status::Ok();
  auto sizes = client_->list();
  if (!sizes.ok()) return sizes.status();
  std::unordered_map<uint32_t, uint64_t> octets;
  for (const auto& m : *sizes) octets[m.number] = m.octets;
  std::unordered_map<std::string, size_t> taken;
  for (auto& e : entries_) {
    if (seen[e.key] < 2 || taken[e.key]++ == 0) continue;
    auto ident = header_identity(e.number, octets[e.number]);
    if (!ident.ok() && ident.status().kind() != ErrorKind::kRejected) return ident.status();
    std::string suffix = ident.ok() ? *ident : "size-" + std::to_string(octets[e.number]);
    if (warned_uidls_.insert(e.key).second) {
      spdlog::warn("mailbox {}: the POP3 server gives UIDL \"{}\" to {} messages; the later "
                   "ones are keyed by UIDL, headers and size", cfg_.name, e.key, seen[e.key]);
    }
    e.key += "/" + suffix;
  }
  return Status::Ok();
}

Status Pop3Mailbox::load_listing() {
  entries_.clear();
  index_.clear();
  auto uidl = client_->uidl();
  if (uidl.ok()) {
    entries_.reserve(uidl->size());
    for (auto& u : *uidl) entries_.push_back(Entry{u.number, std::move(u.uid)});
  } else if (uidl.status().kind() == ErrorKind::kRejected) {
    MB_RETURN_IF_ERROR(load_header_keys());
  } else {
    return uidl.status();
  }
  std::stable_sort(entries_.begin(), entries_.end(),
                   [](const Entry& a, const Entry& b) { return a.number < b.number; });
  if (uidl.ok()) MB_RETURN_IF_ERROR(key_repeated_uidls());
  std::vector<Entry> unique;
  unique.reserve(entries_.size());
  for (auto& e : entries_) {
    if (index_.emplace(e.key, unique.size()).second) {
      unique.push_back(std::move(e));
    } else {
      // Same UIDL, headers and size: the same message twice, as far as can be told.
      spdlog::warn("mailbox {}: POP3 message {} has the same key as an earlier one ({}) and "
                   "is taken for the same message", cfg_.name, e.number, e.key);
    }
  }
  entries_ = std::move(unique);
  listed_ = true;
  return Status::Ok();
}

Status Pop3Mailbox::ensure_open() {
  if (client_ && client_->state() == pop3::State::kTransaction && listed_) return Status::Ok();
  std::string how;
  Status s = connect_fresh();
  if (s.ok()) s = sign_in(&how);
  if (s.ok()) s = load_listing();
  if (!s.ok()) drop();
  return s;
}

// How many leading keys of the maildrop the stored state vouches for (0: none).
size_t Pop3Mailbox::listed_prefix(const std::string& state) const {
  if (state.rfind(kStatePrefix, 0) != 0) return 0;
  std::string_view rest(state);
  rest.remove_prefix(std::char_traits<char>::length(kStatePrefix));
  size_t colon = rest.find(':');
  size_t n = 0;
  if (colon == std::string_view::npos) return 0;
  auto [p, ec] = std::from_chars(rest.data(), rest.data() + colon, n);
  if (ec != std::errc() || p != rest.data() + colon || n > entries_.size()) return 0;
  if (prefix_hash(entries_, n) != rest.substr(colon + 1)) {
    spdlog::debug("mailbox {}: the maildrop changed below the last listing; listing it all",
                  cfg_.name);
    return 0;
  }
  return n;
}

// Each listing is a new session: a POP3 session never shows mail that arrived after it
// began.
Result<Pending> Pop3Mailbox::list_pending(size_t limit, const std::string& state) {
  close();
  MB_RETURN_IF_ERROR(ensure_open());
  const bool leave = cfg_.after.kind == PostAction::Kind::kLeave;
  size_t start = leave ? listed_prefix(state) : 0;
  Pending p;
  size_t end = std::min(entries_.size(), start + limit);
  p.more = entries_.size() - start > limit;
  p.keys.reserve(end - start);
  for (size_t i = start; i < end; ++i) p.keys.push_back(entries_[i].key);
  if (leave) p.next_state = kStatePrefix + std::to_string(end) + ":" + prefix_hash(entries_, end);
  return p;
}

// An answer to RETR that could not be read, as opposed to a connection that failed: a line
// over every bound or broken framing (kProtocol), or bytes the client refused (kInvalidInput).
// The session is out of step afterwards.
bool unreadable_answer(const Status& s) {
  return s.scope() != ErrorScope::kMessage &&
         (s.kind() == ErrorKind::kProtocol || s.kind() == ErrorKind::kInvalidInput);
}

// LIST, once per session: the size of each message, checked before it is retrieved. A
// server that refuses LIST (it is not optional in RFC 1939) only loses the early check.
Status Pop3Mailbox::load_sizes() {
  if (sizes_loaded_) return Status::Ok();
  auto sizes = client_->list();
  if (!sizes.ok() && sizes.status().kind() != ErrorKind::kRejected) return check(sizes.status());
  if (sizes.ok()) {
    for (const auto& m : *sizes) sizes_[m.number] = m.octets;
  }
  sizes_loaded_ = true;
  return Status::Ok();
}

// Why `key` gets no RETR: not in this session's maildrop (kNotFound), or larger than
// max_message_bytes by LIST (kTooLarge); OK when it is to be retrieved.
Status Pop3Mailbox::answered_without_retr(const std::string& key) const {
  auto it = index_.find(key);
  if (it == index_.end()) {
    return Status(ErrorKind::kNotFound, "message " + key + " is no longer in the POP3 maildrop",
                  ErrorScope::kMessage);
  }
  auto size = sizes_.find(entries_[it->second].number);
  if (size != sizes_.end() && size->second > cfg_.max_message_bytes) {
    return Status(ErrorKind::kTooLarge,
                  "POP3 message " + key + " is " + std::to_string(size->second) +
                      " bytes by LIST, over max_message_bytes (" +
                      std::to_string(cfg_.max_message_bytes) + "); not downloaded",
                  ErrorScope::kMessage);
  }
  return Status::Ok();
}

// Keys not in this session's maildrop get kNotFound and those too large by LIST kTooLarge;
// the rest are retrieved in one pipelined batch and handed to `cb` in the order asked. A
// message whose answer cannot be
// read leaves the session out of step: it is retried alone on a new session, and when it
// fails the same way there it is handed to `cb` as kInvalidInput (the ingest skips it for
// good as "unreadable", core/mailbox.h); the keys after it follow on another new session.
Status Pop3Mailbox::fetch(const std::vector<std::string>& keys, const FetchCallback& cb) {
  size_t next = 0;  // keys[next] is the next one owed to cb
  while (next < keys.size()) {
    bool cb_failed = false;
    Status s = fetch_from(keys, next, cb, cb_failed);
    if (s.ok() || cb_failed || !unreadable_answer(s)) return s;
    spdlog::warn("mailbox {}: message {} could not be read ({}); trying it alone on a new "
                 "connection", cfg_.name, keys[next], s.message());
    MB_RETURN_IF_ERROR(retry_alone(keys[next], cb));
    ++next;
  }
  return Status::Ok();
}

// One pass of fetch() over keys[next..]. On an unreadable answer, every key before the one
// that failed has been handed to `cb` and `next` names the failed one.
Status Pop3Mailbox::fetch_from(const std::vector<std::string>& keys, size_t& next,
                               const FetchCallback& cb, bool& cb_failed) {
  MB_RETURN_IF_ERROR(ensure_open());
  MB_RETURN_IF_ERROR(load_sizes());
  std::vector<uint32_t> numbers;
  std::vector<size_t> for_key;  // numbers[i] answers keys[for_key[i]]
  for (size_t k = next; k < keys.size(); ++k) {
    if (!answered_without_retr(keys[k]).ok()) continue;
    numbers.push_back(entries_[index_.at(keys[k])].number);
    for_key.push_back(k);
  }
  auto missing_until = [&](size_t end) -> Status {
    for (; next < end; ++next) {
      MB_RETURN_IF_ERROR(cb(keys[next], answered_without_retr(keys[next])));
    }
    return Status::Ok();
  };
  Status cb_status;
  size_t answered = 0;
  Status s = client_->retr_many(numbers, [&](size_t i, Result<std::string> raw) -> Status {
    answered = i + 1;
    cb_status = missing_until(for_key[i]);
    if (cb_status.ok()) {
      ++next;
      cb_status = cb(keys[for_key[i]], std::move(raw));
    }
    return cb_status;
  });
  cb_failed = !cb_status.ok();
  if (cb_failed) {
    if (!client_ || client_->state() != pop3::State::kTransaction) drop();
    return cb_status;
  }
  if (!s.ok() && unreadable_answer(s) && answered < for_key.size()) {
    drop();
    cb_status = missing_until(for_key[answered]);
    cb_failed = !cb_status.ok();
    return cb_failed ? cb_status : s.prefixed("mailbox " + cfg_.name);
  }
  if (!s.ok()) return check(s.prefixed("mailbox " + cfg_.name));
  cb_status = missing_until(keys.size());
  cb_failed = !cb_status.ok();
  return cb_status;
}

// `key`, whose answer could not be read in a batch, alone on a new session: its body, or
// kInvalidInput when it cannot be read there either (the session is then dropped, so that
// the next key starts on one that is in step).
Status Pop3Mailbox::retry_alone(const std::string& key, const FetchCallback& cb) {
  drop();
  MB_RETURN_IF_ERROR(ensure_open());
  MB_RETURN_IF_ERROR(load_sizes());
  if (Status without = answered_without_retr(key); !without.ok()) return cb(key, without);
  std::string body;
  Status s = client_->retr(entries_[index_.at(key)].number, body);
  if (s.ok()) return cb(key, std::move(body));
  if (s.scope() == ErrorScope::kMessage) return cb(key, s);
  if (!unreadable_answer(s)) return check(s.prefixed("mailbox " + cfg_.name));
  drop();
  spdlog::warn("mailbox {}: message {} cannot be read and is left on the server: {}", cfg_.name,
               key, s.message());
  return cb(key, Status(ErrorKind::kInvalidInput,
                        "message " + key + " cannot be read: " + s.message(),
                        ErrorScope::kMessage));
}

// DELE marks, and only QUIT's +OK makes the deletions real; success is reported only then.
// A connection lost before that deletes nothing, and the ledger (not done) asks again.
Status Pop3Mailbox::apply(const std::vector<std::string>& keys, const PostAction& action) {
  if (keys.empty() || action.kind == PostAction::Kind::kLeave) return Status::Ok();
  if (action.kind != PostAction::Kind::kDelete) {
    spdlog::warn("mailbox {}: post-action {} is not possible over POP3; the messages are left "
                 "on the server", cfg_.name, action.to_string());
    return Status::Ok();
  }
  MB_RETURN_IF_ERROR(ensure_open());
  Status refused;
  for (const auto& key : keys) {
    auto it = index_.find(key);
    if (it == index_.end()) continue;  // already gone: deleted by an earlier session
    Status s = client_->dele(entries_[it->second].number);
    if (s.ok()) continue;
    if (s.scope() == ErrorScope::kConnection || client_->state() != pop3::State::kTransaction) {
      return check(s.prefixed("mailbox " + cfg_.name + ": delete"));
    }
    if (refused.ok()) refused = Status(s).with_scope(ErrorScope::kMessage);
  }
  Status q = client_->quit();
  drop();
  if (!q.ok()) {
    return Status(q.kind(), "mailbox " + cfg_.name + ": delete not confirmed by QUIT (nothing "
                  "is deleted until it is): " + q.message(), ErrorScope::kConnection);
  }
  return refused;
}

// test-connection up to a greeted connection: resolve, TCP, and for implicit TLS the
// handshake as its own step, so that a failure names its layer.
// CAPA (with a warning when the server expires mail that "leave" means to keep), then STLS.
bool Pop3Mailbox::capability_steps(ConnectionSteps& step) {
  Status s = client_->capa();
  std::string caps;
  for (const auto& c : client_->capabilities()) caps += (caps.empty() ? "" : ", ") + c;
  bool expires = std::any_of(client_->capabilities().begin(), client_->capabilities().end(),
                             [](const std::string& c) {
                               return c.size() > 7 && c.compare(0, 7, "EXPIRE ") == 0 &&
                                      c.find("NEVER") == std::string::npos;
                             });
  if (expires && cfg_.after.kind == PostAction::Kind::kLeave) {
    // RFC 2449 §6.7: the server removes retrieved messages itself, whatever "leave" says.
    caps += "; warning: the server announces EXPIRE, so it deletes messages after they are "
            "retrieved (or after some days) even with after = \"leave\"";
  }
  if (!step("capabilities", s, client_->capa_supported() ? caps : "the server does not support "
            "CAPA (RFC 2449); signing in with USER/PASS")) {
    return false;
  }
  if (cfg_.security == Security::kStartTls) {
    s = client_->stls();
    return step("starttls", s, "STLS: " + client_->tls_summary());
  }
  if (cfg_.security == Security::kNone) {
    const std::string what = sign_in_.oauth() ? "token" : "password";
    step("tls", s, "not used (security = none): the " + what + " travels in plaintext");
  }
  return true;
}

// UIDL supported, or the warning that keys come from headers (and "leave" is unreliable).
bool Pop3Mailbox::uidl_step(ConnectionSteps& step) {
  auto uidl = client_->uidl();
  if (uidl.ok()) return step("uidl", Status::Ok(), "UIDL supported: messages are keyed by their unique ids");
  if (uidl.status().kind() != ErrorKind::kRejected) return step("uidl", uidl.status(), "");
  std::string warn = "warning: the server does not support UIDL; messages are keyed by a hash "
                     "of their headers (slower, and identical messages count as one)";
  if (cfg_.after.kind == PostAction::Kind::kLeave) {
    warn += "; after = \"leave\" needs UIDL to be reliable — prefer after = \"delete\"";
  }
  spdlog::warn("mailbox {}: {}", cfg_.name, warn);
  return step("uidl", Status::Ok(), warn);
}

ConnectionReport Pop3Mailbox::test_connection() {
  close();
  ConnectionSteps step;
  client_ = std::make_unique<Client>(client_options());
  auto greet = [&](std::unique_ptr<Stream> stream) { return client_->connect(std::move(stream)); };
  bool ok = step.open(endpoint_of(cfg_), factory_, greet, /*greeting_apart=*/false, nullptr) &&
            capability_steps(step);
  if (ok && sign_in_.oauth()) ok = step.token(sign_in_);
  if (ok) {
    std::string how;
    Status s = sign_in(&how);
    ok = step("sign-in", s, "signed in as " + cfg_.user + " (" + how + ")");
  }
  if (ok && uidl_step(step)) {
    auto st = client_->stat();
    if (st.ok()) step.report.message_count = st->count;
    step("count", st.status(), st.ok() ? std::to_string(st->count) + " messages (" +
                                             std::to_string(st->octets) + " bytes) in the maildrop"
                                       : "");
  }
  close();
  return step.report;
}

}  // namespace

std::unique_ptr<Mailbox> make_pop3_mailbox(const MailboxConfig& config, SignIn sign_in,
                                           StreamFactory factory) {
  return std::make_unique<Pop3Mailbox>(config, std::move(sign_in), std::move(factory));
}

}  // namespace mb
