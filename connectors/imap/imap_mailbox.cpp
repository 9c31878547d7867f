// File: connectors/imap/imap_mailbox.cpp — Mailbox over the IMAP client: listing by
// post-action, batched fetches delivered in request order, idempotent post-actions, the
// sign-in with a password or an OAuth token, and the step-by-step connection test.
#include "connectors/imap/imap_mailbox.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>
#include <optional>
#include <thread>
#include <unordered_set>

#include "auth/token_cache.h"
#include "connectors/imap/imap_client.h"
#include "connectors/imap/imap_syntax.h"
#include "connectors/line_client.h"
#include "core/cancel.h"
#include "core/metrics.h"
#include "core/net.h"

namespace mb {
namespace {

using imap::Client;
using imap::SelectInfo;

constexpr size_t kFetchBatch = 25;     // UIDs per UID FETCH
constexpr size_t kApplyBatch = 1000;   // UIDs per STORE / COPY / MOVE / EXPUNGE

using Clock = std::chrono::steady_clock;

class ImapMailbox : public Mailbox {
 public:
  ImapMailbox(MailboxConfig config, SignIn sign_in, StreamFactory factory, ImapPushOptions push)
      : cfg_(std::move(config)),
        sign_in_(std::move(sign_in)),
        factory_(std::move(factory)),
        push_(push) {
    if (cfg_.port == 0) cfg_.port = default_port(ConnectorType::kImap, cfg_.security);
    caps_.push = true;  // IDLE, or NOOP polling where the server lacks it
  }
  ~ImapMailbox() override { close(); }

  ConnectionReport test_connection() override;
  Result<Pending> list_pending(size_t limit, const std::string& state) override;
  Result<Pending> list_once(size_t limit, const std::string& state);
  Status fetch(const std::vector<std::string>& keys, const FetchCallback& cb) override;
  Status apply(const std::vector<std::string>& keys, const PostAction& action) override;
  Capabilities capabilities() const override { return caps_; }
  Result<ChangeWait> wait_for_change(Clock::time_point deadline) override;
  void close() override;

 private:
  imap::ClientOptions client_options() const;
  Status connect_fresh();
  Status ensure_open();
  Status sign_in(std::string* how);
  Status sign_in_with_token(const std::string& token);
  Status sign_in_and_select(std::string* detail_sign_in = nullptr);
  Status check(Status s);
  Status fetch_batch(const std::vector<std::string>& keys, size_t begin, size_t end,
                     const FetchCallback& cb, size_t& next, bool& cb_failed);
  Status fetch_alone(const std::vector<std::string>& keys, size_t i, const FetchCallback& cb);
  Status apply_batch(const std::vector<uint32_t>& uids, const PostAction& action);
  Status with_create(const std::string& folder, const std::function<Status()>& op);
  Status expunge(const std::vector<uint32_t>& uids);
  uint32_t last_listed_uid(const std::string& state) const;
  bool take_new_mail();
  bool news_since_listing() const;
  Result<ChangeWait> idle_until(Clock::time_point deadline);
  Result<ChangeWait> noop_until(Clock::time_point deadline);

  MailboxConfig cfg_;
  SignIn sign_in_;
  StreamFactory factory_;
  std::unique_ptr<Client> client_;
  ImapPushOptions push_;
  SelectInfo box_;
  Capabilities caps_;
  // Whether the folder grew on this connection since its SELECT, and what the last listing
  // knew: the UIDNEXT of its SELECT when nothing had arrived since (nullopt: not known), so
  // that a wait on a new connection can tell whether mail came while none was open.
  bool grew_since_select_ = false;
  std::optional<uint32_t> listed_uidnext_;
  uint32_t listed_validity_ = 0;
};

imap::ClientOptions ImapMailbox::client_options() const {
  imap::ClientOptions o;
  fill_options(o, endpoint_of(cfg_), "mailbox " + cfg_.name);
  o.max_message_bytes = cfg_.max_message_bytes;
  return o;
}

// Drops the connection after an error that leaves it unusable, so the next call reconnects.
Status ImapMailbox::check(Status s) {
  if (s.ok()) return s;
  bool broken = s.scope() == ErrorScope::kConnection || !client_ ||
                client_->state() == imap::State::kDisconnected ||
                client_->state() == imap::State::kLogout;
  if (broken && client_) {
    client_->close();
    client_.reset();
  }
  return s;
}

// XOAUTH2 first (the one order of auth/sasl.h), else OAUTHBEARER, else an error naming what
// the server offers. The retry after a rejected token reuses the connection: IMAP allows
// another AUTHENTICATE.
Status ImapMailbox::sign_in_with_token(const std::string& token) {
  if (!client_ || client_->state() != imap::State::kNotAuthenticated) {
    return Status(ErrorKind::kNetwork, "IMAP server " + cfg_.host + " closed the connection "
                  "during the sign-in", ErrorScope::kConnection);
  }
  if (client_->capabilities().empty()) MB_RETURN_IF_ERROR(client_->capability());
  sasl::Credentials creds =
      credentials(endpoint_of(cfg_), cfg_.user, token, sasl::CredentialKind::kToken);
  return as_token_rejection(client_->sign_in(creds).status());
}

// Signs in with the password or a token; `how` gets the method for test-connection.
Status ImapMailbox::sign_in(std::string* how) {
  if (!sign_in_.oauth()) {
    sasl::Credentials creds = credentials(endpoint_of(cfg_), cfg_.user, sign_in_.password);
    auto method = client_->sign_in(creds);
    if (!method.ok()) return method.status();
    *how = "AUTHENTICATE " + client_->mechanism();
    if (*method == imap::SignInMethod::kPreauth) *how = "pre-authenticated by the server";
    if (*method == imap::SignInMethod::kLogin) *how = "LOGIN";
    return Status::Ok();
  }
  if (client_->state() == imap::State::kAuthenticated) {
    *how = "pre-authenticated by the server";
    return Status::Ok();
  }
  MB_RETURN_IF_ERROR(sign_in_.with_token(
      [&](const std::string& token) { return sign_in_with_token(token); }));
  *how = "AUTHENTICATE " + client_->mechanism() + " with an OAuth token";
  return Status::Ok();
}

Status ImapMailbox::sign_in_and_select(std::string* detail_sign_in) {
  std::string how;
  MB_RETURN_IF_ERROR(sign_in(&how));
  if (detail_sign_in != nullptr) *detail_sign_in = "signed in as " + cfg_.user + " (" + how + ")";
  caps_.move = client_->has_capability("MOVE");
  auto box = client_->select(cfg_.folder);
  if (!box.ok()) return box.status();
  box_ = *box;
  grew_since_select_ = false;
  return Status::Ok();
}

// A new connection, greeted and (for starttls) encrypted, not yet signed in.
Status ImapMailbox::connect_fresh() {
  if (client_) client_->close();
  client_ = std::make_unique<Client>(client_options());
  auto stream = open_stream(endpoint_of(cfg_), factory_);
  if (!stream.ok()) return stream.status();
  Status s = client_->connect(std::move(*stream));
  if (s.ok() && cfg_.security == Security::kStartTls) s = client_->starttls();
  return s;
}

Status ImapMailbox::ensure_open() {
  if (client_ && client_->state() == imap::State::kSelected) return Status::Ok();
  Status s = connect_fresh();
  if (s.ok()) s = sign_in_and_select();
  if (!s.ok() && client_) {
    // Whatever failed while opening, the next call starts from a fresh connection.
    client_->close();
    client_.reset();
  }
  return s;
}

void ImapMailbox::close() {
  if (!client_) return;
  client_->logout().ignore();
  client_.reset();
}

uint32_t ImapMailbox::last_listed_uid(const std::string& state) const {
  if (state.empty()) return 0;
  auto parsed = imap::parse_key(state, /*allow_zero_uid=*/true);
  if (!parsed) {
    spdlog::warn("mailbox {}: ignoring unreadable IMAP state '{}'", cfg_.name, state);
    return 0;
  }
  if (parsed->uidvalidity != box_.uidvalidity) {
    spdlog::info("mailbox {}: UIDVALIDITY changed from {} to {}; listing from the start",
                 cfg_.name, parsed->uidvalidity, box_.uidvalidity);
    return 0;
  }
  return parsed->uid;
}

// A kept connection may have been dropped by the server while idle between polls (an
// autologout BYE); listing is read-only, so it is retried once on a fresh connection.
Result<Pending> ImapMailbox::list_pending(size_t limit, const std::string& state) {
  bool reused = client_ && client_->state() == imap::State::kSelected;
  auto p = list_once(limit, state);
  if (!p.ok() && reused && p.status().scope() == ErrorScope::kConnection) {
    spdlog::info("mailbox {}: kept IMAP connection was lost ({}); reconnecting", cfg_.name,
                 p.status().message());
    p = list_once(limit, state);
  }
  return p;
}

Result<Pending> ImapMailbox::list_once(size_t limit, const std::string& state) {
  MB_RETURN_IF_ERROR(ensure_open());
  // Growth seen from here on (in the SEARCH answer or later) makes the next wait return
  // kChanged at once: the SEARCH may or may not have seen that mail.
  take_new_mail();
  listed_validity_ = box_.uidvalidity;
  listed_uidnext_ = grew_since_select_ || box_.uidnext == 0 ? std::nullopt
                                                             : std::optional(box_.uidnext);
  uint32_t last = 0;
  std::string criteria;
  switch (cfg_.after.kind) {
    case PostAction::Kind::kMarkRead: criteria = "UNSEEN"; break;
    case PostAction::Kind::kLeave:
      last = std::min<uint32_t>(last_listed_uid(state), UINT32_MAX - 1);
      criteria = "UID " + std::to_string(last + 1) + ":*";
      break;
    default: criteria = "UNDELETED"; break;
  }
  auto uids = client_->uid_search(criteria);
  if (!uids.ok()) return check(uids.status());
  // "n:*" always matches the highest UID, even below n.
  std::erase_if(*uids, [last](uint32_t u) { return u <= last; });
  Pending p;
  p.more = uids->size() > limit;
  if (p.more) uids->resize(limit);
  for (uint32_t u : *uids) p.keys.push_back(imap::format_key(box_.uidvalidity, u));
  p.next_state = imap::format_key(box_.uidvalidity, uids->empty() ? last : uids->back());
  return p;
}

bool ImapMailbox::take_new_mail() {
  bool grew = client_ && client_->take_new_mail();
  grew_since_select_ = grew_since_select_ || grew;
  return grew;
}

// On a connection just opened: may mail have come since the last listing, while no
// connection was there to hear of it? Not when the server gives no UIDNEXT (IDLE will tell).
bool ImapMailbox::news_since_listing() const {
  if (box_.uidnext == 0) return false;
  return !listed_uidnext_ || listed_validity_ != box_.uidvalidity ||
         box_.uidnext > *listed_uidnext_;
}

Result<ChangeWait> ImapMailbox::wait_for_change(Clock::time_point deadline) {
  bool fresh = !client_ || client_->state() != imap::State::kSelected;
  MB_RETURN_IF_ERROR(ensure_open());
  if (fresh && news_since_listing()) return ChangeWait::kChanged;
  if (take_new_mail()) return ChangeWait::kChanged;
  auto r = client_->has_capability("IDLE") ? idle_until(deadline) : noop_until(deadline);
  if (!r.ok() && r.status().kind() == ErrorKind::kCancelled && client_) {
    client_->close();  // a read cut short leaves the connection out of step
    client_.reset();
  }
  if (!r.ok()) return check(r.status().prefixed("mailbox " + cfg_.name));
  return r;
}

// IDLE until news or `deadline`, DONE and IDLE again every idle_refresh.
Result<ChangeWait> ImapMailbox::idle_until(Clock::time_point deadline) {
  while (true) {
    Clock::time_point now = Clock::now();
    if (now >= deadline) return ChangeWait::kTimedOut;
    Clock::time_point until = std::min(deadline, now + push_.idle_refresh);
    MB_RETURN_IF_ERROR(client_->idle_start());
    metrics::idle_connections().add(1);  // mailbridge_imap_idle_connections
    auto news = client_->idle_wait(until);
    metrics::idle_connections().add(-1);
    if (!news.ok()) return news.status();
    // A server that ends each IDLE itself at once would have us spin: NOOP polling instead.
    bool ended_early = !client_->idling() && Clock::now() < until;
    MB_RETURN_IF_ERROR(client_->idle_done());
    if (take_new_mail()) return ChangeWait::kChanged;
    if (ended_early) {
      spdlog::info("mailbox {}: the IMAP server ended IDLE by itself; polling with NOOP until "
                   "the next pass", cfg_.name);
      return noop_until(deadline);
    }
  }
}

// Without IDLE: a NOOP every noop_interval (the server reports new mail in its answer).
Result<ChangeWait> ImapMailbox::noop_until(Clock::time_point deadline) {
  while (true) {
    Clock::time_point next = std::min(deadline, Clock::now() + push_.noop_interval);
    const Cancel* cancel = CancelScope::current();
    if (cancel != nullptr ? cancel->wait_until(next) : (std::this_thread::sleep_until(next), false))
      return Cancel::cancelled("waiting for new mail");
    MB_RETURN_IF_ERROR(client_->noop());
    if (take_new_mail()) return ChangeWait::kChanged;
    if (Clock::now() >= deadline) return ChangeWait::kTimedOut;
  }
}

// A FETCH answer that could not be read, as opposed to a connection that failed: a line
// over every bound or broken framing (kProtocol), or bytes the client refused (kInvalidInput).
bool unreadable_answer(const Status& s) {
  return s.scope() != ErrorScope::kMessage &&
         (s.kind() == ErrorKind::kProtocol || s.kind() == ErrorKind::kInvalidInput);
}

// A batch whose answer could not be read ends the connection; which message broke it is
// not known (the server answers in its own order), so the keys not yet handed over are
// fetched one by one on new connections, and one that cannot be read alone either is handed
// to `cb` as kInvalidInput (the ingest skips it for good as "unreadable", core/mailbox.h).
Status ImapMailbox::fetch(const std::vector<std::string>& keys, const FetchCallback& cb) {
  if (keys.empty()) return Status::Ok();
  MB_RETURN_IF_ERROR(ensure_open());
  for (size_t begin = 0; begin < keys.size(); begin += kFetchBatch) {
    size_t end = std::min(keys.size(), begin + kFetchBatch);
    size_t next = begin;
    bool cb_failed = false;
    Status s = fetch_batch(keys, begin, end, cb, next, cb_failed);
    if (s.ok()) continue;
    if (cb_failed || !unreadable_answer(s)) return s;
    if (client_) {  // out of step with the server whatever the client made of it
      client_->close();
      client_.reset();
    }
    spdlog::warn("mailbox {}: a FETCH answer could not be read ({}); fetching its messages one "
                 "by one", cfg_.name, s.message());
    for (size_t i = next; i < end; ++i) MB_RETURN_IF_ERROR(fetch_alone(keys, i, cb));
  }
  return Status::Ok();
}

// keys[i] alone on a connection of its own: its body, or kInvalidInput when its answer
// cannot be read here either.
Status ImapMailbox::fetch_alone(const std::vector<std::string>& keys, size_t i,
                                const FetchCallback& cb) {
  MB_RETURN_IF_ERROR(ensure_open());
  size_t next = i;
  bool cb_failed = false;
  Status s = fetch_batch(keys, i, i + 1, cb, next, cb_failed);
  if (s.ok() || cb_failed || !unreadable_answer(s) || next > i) return s;
  if (client_) {
    client_->close();
    client_.reset();
  }
  spdlog::warn("mailbox {}: message {} cannot be read and is left on the server: {}", cfg_.name,
               keys[i], s.message());
  return cb(keys[i], Status(ErrorKind::kInvalidInput,
                            "message " + keys[i] + " cannot be read: " + s.message(),
                            ErrorScope::kMessage));
}

// One UID FETCH for keys[begin, end). Bodies are handed to `cb` in request order as soon as
// the order allows (the server answers in its own order), each key exactly once. `next` is
// the first key not handed over yet; `cb_failed` says the error returned is the callback's.
Status ImapMailbox::fetch_batch(const std::vector<std::string>& keys, size_t begin, size_t end,
                                const FetchCallback& cb, size_t& next, bool& cb_failed) {
  std::vector<std::optional<uint32_t>> want(end - begin);
  std::vector<uint32_t> uids;
  for (size_t i = begin; i < end; ++i) {
    auto k = imap::parse_key(keys[i]);
    if (k && k->uidvalidity == box_.uidvalidity) {
      want[i - begin] = k->uid;
      uids.push_back(k->uid);
    }
  }
  std::unordered_set<uint32_t> wanted(uids.begin(), uids.end());
  std::map<uint32_t, Result<std::string>> ready;
  next = begin;
  Status cb_status;
  auto missing = [&](size_t i, const Status& why) -> Result<std::string> {
    if (!want[i - begin]) {
      return Status(ErrorKind::kNotFound, "message " + keys[i] + " is from another UIDVALIDITY "
                    "of folder " + cfg_.folder + " (the folder was rebuilt)", ErrorScope::kMessage);
    }
    if (why.ok()) {
      return Status(ErrorKind::kNotFound, "message " + keys[i] + " is no longer in folder " +
                    cfg_.folder, ErrorScope::kMessage);
    }
    return Status(why.kind(), why.message(), ErrorScope::kMessage);
  };
  // Delivers what can go out in order; with `finish`, the keys still waiting get `why`.
  auto deliver = [&](bool finish, const Status& why) -> Status {
    while (next < end && cb_status.ok()) {
      auto& w = want[next - begin];
      auto it = w ? ready.find(*w) : ready.end();
      if (w && it == ready.end() && !finish) break;
      Result<std::string> body = it != ready.end() ? std::move(it->second) : missing(next, why);
      if (it != ready.end()) ready.erase(it);
      cb_status = cb(keys[next], std::move(body));
      ++next;
    }
    return cb_status;
  };
  auto sink = [&](uint32_t uid, Result<std::string> body) -> Status {
    if (!wanted.count(uid) || ready.count(uid)) return Status::Ok();
    ready.emplace(uid, std::move(body));
    return deliver(false, Status::Ok());
  };
  Status s = uids.empty() ? Status::Ok() : client_->uid_fetch(uids, sink);
  cb_failed = !cb_status.ok();
  if (cb_failed) return cb_status;
  if (!s.ok() && (s.scope() == ErrorScope::kConnection || !client_ ||
                  client_->state() != imap::State::kSelected)) {
    return check(s);
  }
  Status delivered = deliver(true, s);
  cb_failed = !delivered.ok();
  return delivered;
}

Status ImapMailbox::expunge(const std::vector<uint32_t>& uids) {
  if (!client_->has_capability("UIDPLUS")) {
    spdlog::warn("mailbox {}: the IMAP server lacks UIDPLUS, so processed messages stay flagged "
                 "\\Deleted: a plain EXPUNGE could also remove messages someone else flagged",
                 cfg_.name);
    return Status::Ok();
  }
  return client_->uid_expunge(uids);
}

// Runs `op`; when the server says the target folder is missing (TRYCREATE, or a plain NO),
// creates it and tries once more.
Status ImapMailbox::with_create(const std::string& folder, const std::function<Status()>& op) {
  Status s = op();
  if (s.kind() != ErrorKind::kNotFound && s.kind() != ErrorKind::kRejected) return s;
  Status created = client_->create(folder);
  if (!created.ok()) {
    spdlog::info("mailbox {}: could not create folder {}: {}", cfg_.name, folder,
                 created.message());
    if (created.scope() == ErrorScope::kConnection) return created;
  }
  return op();
}

Status ImapMailbox::apply_batch(const std::vector<uint32_t>& uids, const PostAction& action) {
  switch (action.kind) {
    case PostAction::Kind::kMarkRead: return client_->uid_store_add_flags(uids, "\\Seen");
    case PostAction::Kind::kDelete:
      MB_RETURN_IF_ERROR(client_->uid_store_add_flags(uids, "\\Deleted"));
      return expunge(uids);
    case PostAction::Kind::kMove: {
      const std::string folder = action.folder.empty() ? "Processed" : action.folder;
      if (client_->has_capability("MOVE")) {
        return with_create(folder, [&] { return client_->uid_move(uids, folder); });
      }
      MB_RETURN_IF_ERROR(with_create(folder, [&] { return client_->uid_copy(uids, folder); }));
      MB_RETURN_IF_ERROR(client_->uid_store_add_flags(uids, "\\Deleted"));
      return expunge(uids);
    }
    default: return Status::Ok();
  }
}

Status ImapMailbox::apply(const std::vector<std::string>& keys, const PostAction& action) {
  if (keys.empty() || action.kind == PostAction::Kind::kLeave) return Status::Ok();
  MB_RETURN_IF_ERROR(ensure_open());
  std::vector<uint32_t> uids;
  for (const std::string& key : keys) {
    auto k = imap::parse_key(key);
    // A key of another UIDVALIDITY names nothing any more: already gone is fine.
    if (k && k->uidvalidity == box_.uidvalidity) uids.push_back(k->uid);
  }
  std::sort(uids.begin(), uids.end());
  uids.erase(std::unique(uids.begin(), uids.end()), uids.end());
  for (size_t i = 0; i < uids.size(); i += kApplyBatch) {
    std::vector<uint32_t> batch(uids.begin() + static_cast<std::ptrdiff_t>(i),
                                uids.begin() + static_cast<std::ptrdiff_t>(
                                                   std::min(uids.size(), i + kApplyBatch)));
    Status s = apply_batch(batch, action);
    if (!s.ok()) return check(s.prefixed("mailbox " + cfg_.name + ": " + action.to_string()));
  }
  return Status::Ok();
}

// Runs the steps of a sign-in one by one on a fresh connection, reporting each; the
// connection is logged out at the end so nothing outlives the call.
ConnectionReport ImapMailbox::test_connection() {
  close();
  ConnectionSteps step;
  client_ = std::make_unique<Client>(client_options());
  auto greet = [&](std::unique_ptr<Stream> stream) { return client_->connect(std::move(stream)); };
  if (!step.open(endpoint_of(cfg_), factory_, greet, /*greeting_apart=*/false, nullptr)) {
    return step.report;
  }
  Status s;
  if (cfg_.security == Security::kStartTls) {
    s = client_->starttls();
    if (!step("starttls", s, "STARTTLS: " + client_->tls_summary())) return step.report;
  } else if (cfg_.security == Security::kNone) {
    const std::string what = sign_in_.oauth() ? "token" : "password";
    step("tls", s, "not used (security = none): the " + what + " travels in plaintext");
  }
  if (sign_in_.oauth() && !step.token(sign_in_)) {
    close();
    return step.report;
  }
  std::string signed_in;
  s = sign_in_and_select(&signed_in);
  if (!s.ok()) {
    // signed_in is only filled once the sign-in succeeded: then SELECT is what failed.
    bool in = !signed_in.empty();
    if (in) step("sign-in", Status::Ok(), signed_in);
    step(in ? "open-folder" : "sign-in", s, "");
    close();
    return step.report;
  }
  step("sign-in", s, signed_in);
  step("open-folder", s, cfg_.folder + " (UIDVALIDITY " + std::to_string(box_.uidvalidity) +
                             (box_.read_only ? ", read-only)" : ", read-write)"));
  step.report.message_count = box_.exists;
  step("count", s, std::to_string(box_.exists) + " messages in " + cfg_.folder);
  close();
  return step.report;
}

}  // namespace

std::unique_ptr<Mailbox> make_imap_mailbox(const MailboxConfig& config, SignIn sign_in,
                                           StreamFactory factory, ImapPushOptions push) {
  return std::make_unique<ImapMailbox>(config, std::move(sign_in), std::move(factory), push);
}

}  // namespace mb
