// File: connectors/imap/imap_client.cpp — the IMAP client: command senders, response
// dispatch, and the mapping of server answers to Status kinds.
#include "connectors/imap/imap_client.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>

#include "auth/secrets.h"
#include "connectors/imap/imap_syntax.h"
#include "core/ascii.h"

namespace mb::imap {

// One piece of a command: text (space-separated from its neighbours) or a literal.
struct Client::Part {
  std::string text;
  bool literal = false;
  bool secret = false;  // hidden in the trace
};

namespace {

constexpr size_t kLiteralMinusMax = 4096;    // RFC 7888: LITERAL- allows {N+} up to 4096

// Removes the password from server text before it reaches a message (a server that echoes
// the command back must not leak it, in plain or in base64), and every resolved secret.
std::string scrub(std::string text, const std::string& password) {
  return Redactor::instance().scrub(text, password);
}

std::optional<uint32_t> as_uid(const Value& v) {
  auto n = v.as_number();
  if (!n || *n == 0 || *n > UINT32_MAX) return std::nullopt;
  return static_cast<uint32_t>(*n);
}

// ESEARCH (RFC 4731): "(TAG "a3") UID ALL 1:3,7 COUNT 4" → the ALL set.
Status parse_esearch(const std::vector<Value>& args, std::vector<uint32_t>& out) {
  for (size_t i = 0; i + 1 < args.size(); ++i) {
    if (!args[i].is_atom("ALL")) continue;
    auto set = parse_uid_set(args[i + 1].text, 0);
    if (!set) return protocol_violation("malformed IMAP ESEARCH ALL set '" + args[i + 1].text + "'");
    out.insert(out.end(), set->begin(), set->end());
  }
  return Status::Ok();
}

// The command's name for messages: "UID FETCH", "SELECT", "LOGIN" (never an argument).
std::string command_name(const std::string& first_part) {
  size_t end = first_part.find(' ');
  if (first_part.compare(0, end, "UID") == 0 && end != std::string::npos) {
    end = first_part.find(' ', end + 1);
  }
  return first_part.substr(0, end);
}

Status too_large(uint32_t uid, uint64_t size, uint64_t limit, const std::string& how) {
  return Status(ErrorKind::kTooLarge,
                "message UID " + std::to_string(uid) + " is " + std::to_string(size) +
                    " bytes" + how + ", over max_message_bytes (" + std::to_string(limit) + ")",
                ErrorScope::kMessage);
}

// The FETCH items of an untagged FETCH response, or null.
std::vector<Value>* fetch_items(ImapResponse& r) {
  if (r.name != "FETCH" || r.args.empty() || r.args[0].type != Value::Type::kList) return nullptr;
  return &r.args[0].list;
}

}  // namespace

const char* to_string(State s) {
  switch (s) {
    case State::kDisconnected: return "disconnected";
    case State::kGreeting: return "greeting";
    case State::kNotAuthenticated: return "not authenticated";
    case State::kAuthenticated: return "authenticated";
    case State::kSelected: return "selected";
    case State::kLogout: return "logout";
    default: return "unknown";
  }
}

Status command_failure(const ImapResponse& r, const std::string& what) {
  const std::string& text = r.text;
  if (r.condition == Condition::kBad)
    return protocol_violation("IMAP server rejected " + what + " as invalid (BAD): " + text);
  if (r.code == "UNAVAILABLE")
    return Status(ErrorKind::kNetwork, "IMAP server is unavailable (" + what + "): " + text,
                  ErrorScope::kConnection);
  if (r.code == "NONEXISTENT" || r.code == "TRYCREATE")
    return Status(ErrorKind::kNotFound, "IMAP " + what + " failed: " + text, ErrorScope::kMailbox);
  return Status(ErrorKind::kRejected, "IMAP " + what + " failed: " + text, ErrorScope::kMailbox);
}

Client::Client(ClientOptions options) : options_(std::move(options)) {}

Client::~Client() { close(); }

std::vector<Client::Part> Client::astring_part(const std::string& s, bool secret) const {
  if (needs_literal(s)) return {Part{s, true, secret}};
  return {Part{quote(s), false, secret}};
}

Status Client::fail(Status s) {
  bool fatal = s.scope() == ErrorScope::kConnection || s.kind() == ErrorKind::kNetwork ||
               s.kind() == ErrorKind::kProtocol || s.kind() == ErrorKind::kTls;
  if (fatal) close();
  return s;
}

void Client::close() {
  if (channel_) channel_->close();
  channel_.reset();
  state_ = State::kDisconnected;
  idling_ = false;
}

bool Client::has_capability(const std::string& name) const {
  return caps_.count(ascii_upper(name)) > 0;
}


// OK only with a connection in one of `states`: a guard that can never pass without a
// channel.
Status Client::require(std::initializer_list<State> states, const char* command) const {
  if (!channel_) {
    return Status(ErrorKind::kNetwork, std::string("IMAP ") + command +
                                           ": the connection is closed",
                  ErrorScope::kConnection);
  }
  if (std::find(states.begin(), states.end(), state_) != states.end()) return Status::Ok();
  return Status(ErrorKind::kInternal, std::string("IMAP ") + command +
                                          " is not possible in state " + to_string(state_));
}

void Client::note_capabilities(const ImapResponse& r) {
  const std::vector<Value>* list = nullptr;
  if (r.code == "CAPABILITY") list = &r.code_args;
  if (r.kind == ImapResponse::Kind::kUntagged && r.name == "CAPABILITY") list = &r.args;
  if (list == nullptr) return;
  caps_.clear();
  for (const Value& v : *list) {
    if (!v.text.empty()) caps_.insert(ascii_upper(v.text));
  }
}

Status Client::note_untagged(ImapResponse& r) {
  note_capabilities(r);
  FolderNews news = folder_news(r, counts_);
  if (news == FolderNews::kNewMail) new_mail_ = true;
  if (r.code == "ALERT") spdlog::warn("{}: IMAP server alert: {}", options_.label, r.text);
  if (news == FolderNews::kBye && state_ != State::kLogout) {
    return fail(Status(ErrorKind::kNetwork, "IMAP server closed the connection: " + r.text,
                       ErrorScope::kConnection));
  }
  if (r.condition == Condition::kNo || r.condition == Condition::kBad) {
    spdlog::warn("{}: IMAP server warning: {} {}", options_.label, to_string(r.condition), r.text);
  }
  return Status::Ok();
}

Result<ImapResponse> Client::read_response() {
  body_fate_ = BodyFate::kNone;
  body_size_ = 0;
  while (true) {
    auto line = channel_->read_line();
    if (!line.ok()) return line.status();
    MB_RETURN_IF_ERROR(check_answer_bounds(0));
    ParseStep step = parser_.feed_line(*line);
    while (step.kind == ParseStep::kLiteral) {
      MB_RETURN_IF_ERROR(read_literal(step.literal_size));
      step = {ParseStep::kNeedMore, 0};
    }
    if (step.kind == ParseStep::kResponse) return parser_.take_response();
    if (step.kind == ParseStep::kError) return parser_.error();
  }
}

// Reads a literal. A BODY[] that the running UID FETCH asked for goes straight into a string
// reserved to its size; one over max_message_bytes, one not asked for, and any other literal
// over kMaxKeptUnrequested are read and dropped (the parser gets "", body_fate_ says why).
Status Client::read_literal(uint64_t size) {
  auto ctx = parser_.literal_context();
  bool body = ctx.name == "FETCH" && ctx.depth == 2 &&
              ascii_upper(std::string(ctx.key)).rfind("BODY[]", 0) == 0;
  bool keep = size <= kMaxKeptUnrequested;
  if (body) {
    keep = false;
    body_size_ = size;
    if (bodies_wanted_ == 0 || body_fate_ != BodyFate::kNone) {
      body_fate_ = BodyFate::kDropped;
    } else {
      --bodies_wanted_;
      body_bytes_ += size;  // asked for: not overhead, even when dropped as too large
      keep = size <= options_.max_message_bytes;
      body_fate_ = keep ? BodyFate::kKept : BodyFate::kTooLarge;
    }
  }
  if (!keep) MB_RETURN_IF_ERROR(check_answer_bounds(body_fate_ == BodyFate::kTooLarge ? 0 : size));
  std::string text;
  MB_RETURN_IF_ERROR(keep ? channel_->read_exact(static_cast<size_t>(size), text)
                          : channel_->skip(size));
  ParseStep s = parser_.supply_literal(std::move(text));
  if (s.kind == ParseStep::kError) return parser_.error();
  return Status::Ok();
}

// `coming`: bytes about to be read and dropped.
Status Client::check_answer_bounds(uint64_t coming) {
  uint64_t overhead = channel_->step_bytes() - std::min(channel_->step_bytes(), body_bytes_);
  if (overhead + coming > options_.max_answer_overhead) {
    return protocol_violation("IMAP server sent more than " + std::to_string(options_.max_answer_overhead >> 20) +
                    " MiB besides the message bodies asked for in its answer to " + command_);
  }
  if (untagged_ > options_.max_untagged) {
    return protocol_violation("IMAP server sent more than " + std::to_string(options_.max_untagged) +
                    " untagged responses in its answer to " + command_);
  }
  return Status::Ok();
}

Status Client::connect(std::unique_ptr<Stream> stream) {
  close();
  open_channel(std::move(stream), options_.max_line, trace_sink(options_));
  ParserLimits limits;
  limits.max_line = options_.max_line;
  parser_ = ResponseParser(limits);
  caps_.clear();
  counts_ = {};
  new_mail_ = false;
  next_tag_ = 1;
  state_ = State::kGreeting;
  command_ = "the greeting";
  untagged_ = 0;
  body_bytes_ = 0;
  auto r = read_greeting(options_.timeouts, [&] { return read_response(); });
  std::string from = "IMAP greeting from " + options_.host;
  if (!r.ok()) return fail(r.status().prefixed(from));
  if (r->kind != ImapResponse::Kind::kUntagged || !r->is_status())
    return fail(protocol_violation(from + " is not a greeting"));
  note_capabilities(*r);
  switch (r->condition) {
    case Condition::kOk: state_ = State::kNotAuthenticated; return Status::Ok();
    case Condition::kPreauth: state_ = State::kAuthenticated; return Status::Ok();
    case Condition::kBye:
      close();
      state_ = State::kLogout;
      return Status(ErrorKind::kNetwork, "IMAP server " + options_.host +
                                             " refused the connection: " + r->text,
                    ErrorScope::kConnection);
    default: return fail(protocol_violation(from + " is not OK, PREAUTH or BYE: " + r->text));
  }
}

Status Client::send_parts(const std::string& tag, const std::vector<Part>& parts,
                          const UntaggedHandler& on_untagged, std::optional<ImapResponse>& early) {
  std::string line = tag;
  size_t secret_from = std::string::npos, secret_len = std::string::npos;
  for (const Part& p : parts) {
    line += ' ';
    if (!p.literal) {
      if (p.secret) {
        secret_from = line.size();
        secret_len = p.text.size();
      }
      line += p.text;
      continue;
    }
    bool sync = !(has_capability("LITERAL+") ||
                  (has_capability("LITERAL-") && p.text.size() <= kLiteralMinusMax));
    line += "{" + std::to_string(p.text.size()) + (sync ? "}" : "+}");
    MB_RETURN_IF_ERROR(channel_->write_line(line, secret_from, secret_len));
    line.clear();
    secret_from = secret_len = std::string::npos;
    while (sync) {
      auto r = read_response();
      if (!r.ok()) return r.status();
      if (r->kind == ImapResponse::Kind::kContinuation) break;
      if (r->kind == ImapResponse::Kind::kTagged) {
        if (r->tag != tag) return protocol_violation("IMAP server answered unknown tag " + r->tag);
        early = std::move(*r);
        return Status::Ok();
      }
      ++untagged_;
      MB_RETURN_IF_ERROR(note_untagged(*r));
      if (on_untagged) MB_RETURN_IF_ERROR(on_untagged(*r));
    }
    MB_RETURN_IF_ERROR(channel_->write_raw(p.text));
  }
  return channel_->write_line(line, secret_from, secret_len);
}

Result<ImapResponse> Client::read_until_continuation(const std::string& tag) {
  while (true) {
    auto r = read_response();
    if (!r.ok()) return r.status();
    switch (r->kind) {
      case ImapResponse::Kind::kContinuation: return std::move(*r);
      case ImapResponse::Kind::kUntagged:
        ++untagged_;
        MB_RETURN_IF_ERROR(check_answer_bounds(0));
        MB_RETURN_IF_ERROR(note_untagged(*r));
        break;
      default:
        if (r->tag != tag) return protocol_violation("IMAP server answered unknown tag " + r->tag);
        note_capabilities(*r);
        return std::move(*r);
    }
  }
}

Result<ImapResponse> Client::read_until_tagged(const std::string& tag,
                                               const UntaggedHandler& on_untagged) {
  while (true) {
    auto r = read_response();
    if (!r.ok()) return r.status();
    switch (r->kind) {
      case ImapResponse::Kind::kContinuation:
        return protocol_violation("IMAP server sent an unexpected continuation");
      case ImapResponse::Kind::kUntagged:
        ++untagged_;
        MB_RETURN_IF_ERROR(check_answer_bounds(0));
        MB_RETURN_IF_ERROR(note_untagged(*r));
        if (on_untagged) MB_RETURN_IF_ERROR(on_untagged(*r));
        break;
      default:
        if (r->tag != tag) return protocol_violation("IMAP server answered unknown tag " + r->tag);
        note_capabilities(*r);
        return std::move(*r);
    }
  }
}

// Starts a command and its answer, one step with one deadline; returns its tag.
std::string Client::begin_command(const std::string& name) {
  command_ = name;
  untagged_ = 0;
  body_bytes_ = 0;
  channel_->begin_step("the answer to " + command_, options_.timeouts.response);
  return "a" + std::to_string(next_tag_++);
}

Result<ImapResponse> Client::run(const std::vector<Part>& parts,
                                 const UntaggedHandler& on_untagged) {
  if (!channel_) {
    return Status(ErrorKind::kNetwork, "IMAP connection is closed", ErrorScope::kConnection);
  }
  std::string tag =
      begin_command(parts.empty() ? std::string("a command") : command_name(parts[0].text));
  std::optional<ImapResponse> early;
  Status sent = send_parts(tag, parts, on_untagged, early);
  Result<ImapResponse> r = !sent.ok() ? Result<ImapResponse>(std::move(sent))
                           : early    ? Result<ImapResponse>(std::move(*early))
                                      : read_until_tagged(tag, on_untagged);
  if (channel_) channel_->end_step();
  if (!r.ok()) return fail(r.status());
  return r;
}

Status Client::simple(const std::vector<Part>& parts, const std::string& what) {
  auto r = run(parts, {});
  if (!r.ok()) return r.status();
  if (r->condition != Condition::kOk) return fail(command_failure(*r, what));
  return Status::Ok();
}

Status Client::capability() {
  MB_RETURN_IF_ERROR(
      require({State::kNotAuthenticated, State::kAuthenticated, State::kSelected}, "CAPABILITY"));
  return simple({Part{"CAPABILITY"}}, "CAPABILITY");
}

Status Client::starttls() {
  if (state_ == State::kAuthenticated && !is_tls()) {
    // A PREAUTH greeting leaves no moment for STARTTLS (RFC 9051 §6.2.1: valid only before
    // authentication): going on would run the whole session in plaintext.
    return fail(Status(ErrorKind::kTls,
                       "IMAP server " + options_.host +
                           " greeted with PREAUTH before STARTTLS, so the session could never "
                           "be encrypted; security = starttls refuses to go on in plaintext",
                       ErrorScope::kConnection));
  }
  MB_RETURN_IF_ERROR(require({State::kNotAuthenticated}, "STARTTLS"));
  if (caps_.empty()) MB_RETURN_IF_ERROR(capability());
  if (!has_capability("STARTTLS")) {
    return Status(ErrorKind::kTls,
                  "IMAP server " + options_.host +
                      " does not offer STARTTLS; security = starttls forbids going on in "
                      "plaintext",
                  ErrorScope::kConnection);
  }
  auto r = run({Part{"STARTTLS"}}, {});
  if (!r.ok()) return r.status();
  if (r->condition != Condition::kOk) {
    return fail(Status(ErrorKind::kTls, "IMAP server refused STARTTLS: " + r->text,
                       ErrorScope::kConnection));
  }
  Status tls = upgrade_to_tls(*channel_, options_);
  if (!tls.ok()) return fail(std::move(tls));
  caps_.clear();  // RFC 3501 §6.2.1: what was said before TLS is not to be trusted
  return capability();
}

Status Client::auth_failure(const ImapResponse& r, const std::string& user,
                            const std::string& password) const {
  std::string text = scrub(r.text, password);
  bool refused = r.condition == Condition::kNo || r.code == "AUTHENTICATIONFAILED" ||
                 r.code == "AUTHORIZATIONFAILED" || r.code == "EXPIRED";
  if (r.code == "UNAVAILABLE") {
    return Status(ErrorKind::kNetwork, "IMAP server cannot sign in user " + user +
                                           " right now: " + text, ErrorScope::kMailbox);
  }
  if (!refused) return protocol_violation("IMAP server rejected the sign-in as invalid (BAD): " + text);
  return Status(ErrorKind::kAuth, "IMAP server refused the login for user " + user + ": " + text,
                ErrorScope::kMailbox);
}

Status Client::after_sign_in(const ImapResponse& ok) {
  state_ = State::kAuthenticated;
  // Capabilities change with authentication; a server that did not restate them is asked.
  if (ok.code != "CAPABILITY") return capability();
  return Status::Ok();
}

Status Client::login(const std::string& user, const std::string& password) {
  MB_RETURN_IF_ERROR(require({State::kNotAuthenticated}, "LOGIN"));
  if (has_capability("LOGINDISABLED")) {
    return Status(ErrorKind::kConfig, "IMAP server " + options_.host +
                                          " has disabled LOGIN (LOGINDISABLED); it may "
                                          "require TLS (security = tls or starttls)");
  }
  std::vector<Part> parts{Part{"LOGIN"}};
  for (auto& p : astring_part(user)) parts.push_back(std::move(p));
  for (auto& p : astring_part(password, true)) parts.push_back(std::move(p));
  auto r = run(parts, {});
  if (!r.ok()) return r.status();
  if (r->condition != Condition::kOk) return fail(auth_failure(*r, user, password));
  return after_sign_in(*r);
}

Status Client::authenticate_plain(const std::string& user, const std::string& password) {
  sasl::Credentials creds;
  creds.user = user;
  creds.secret = password;
  auto mech = sasl::make_plain(creds);
  return authenticate(*mech, creds);
}

// AUTHENTICATE over this connection for sasl::authenticate: "+ " lines are challenges, the
// tagged response is the verdict.
class Client::SaslLink : public sasl::Link {
 public:
  SaslLink(Client& c, const sasl::Credentials& creds) : c_(c), creds_(creds) {}
  std::string server() const override { return "IMAP server"; }
  bool initial_response_allowed() const override { return c_.has_capability("SASL-IR"); }
  Status send_command(const std::string& line, size_t secret_from) override {
    tag_ = c_.begin_command("AUTHENTICATE");
    std::string tagged = tag_ + " " + line;
    size_t from = secret_from == std::string::npos ? secret_from : secret_from + tag_.size() + 1;
    return c_.fail(c_.channel_->write_line(tagged, from));
  }
  Status send_response(const sasl::Reply& reply) override {
    size_t n = reply.secret ? reply.line.size() : std::string::npos;
    return c_.fail(c_.channel_->write_line(reply.line, reply.secret ? 0 : n, n));
  }
  Result<sasl::Answer> read() override {
    auto r = c_.read_until_continuation(tag_);
    if (!r.ok()) return c_.fail(r.status());
    final_ = std::move(*r);
    if (final_.kind == ImapResponse::Kind::kContinuation) return sasl::Answer{'+', final_.text};
    return sasl::Answer{final_.condition == Condition::kOk ? 'O' : 'N', final_.text};
  }
  bool accepted(const sasl::Answer& a) const override { return a.code == 'O'; }
  Status refused(const sasl::Answer&) override {
    return c_.fail(c_.auth_failure(final_, creds_.user, creds_.secret));
  }
  Status fail(Status s) override { return c_.fail(std::move(s)); }
  const ImapResponse& final_response() const { return final_; }

 private:
  Client& c_;
  const sasl::Credentials& creds_;
  std::string tag_;
  ImapResponse final_;
};

Status Client::authenticate(sasl::Mechanism& mechanism, const sasl::Credentials& creds) {
  MB_RETURN_IF_ERROR(require({State::kNotAuthenticated}, "AUTHENTICATE"));
  SaslLink link(*this, creds);
  Status s = sasl::authenticate(sasl::kImap, link, mechanism, creds);
  if (channel_) channel_->end_step();
  MB_RETURN_IF_ERROR(s);
  mechanism_ = std::string(mechanism.name());
  return after_sign_in(link.final_response());
}

std::vector<std::string> Client::sasl_mechanisms() const {
  std::vector<std::string> mechs;
  for (const auto& cap : caps_) {
    if (cap.rfind("AUTH=", 0) == 0) mechs.push_back(cap.substr(5));
  }
  return mechs;
}

Status Client::plaintext_refused(const std::string& what) const {
  return Status(ErrorKind::kConfig,
                "IMAP " + what + " would send the password to " + options_.host +
                    " over a connection that is not encrypted; use security = tls or "
                    "starttls (or write security = none explicitly)");
}

Result<SignInMethod> Client::sign_in(const sasl::Credentials& creds) {
  // The guard first: a PREAUTH state left without a connection is not a sign-in.
  MB_RETURN_IF_ERROR(require({State::kNotAuthenticated, State::kAuthenticated}, "sign-in"));
  if (state_ == State::kAuthenticated) return SignInMethod::kPreauth;
  if (caps_.empty()) MB_RETURN_IF_ERROR(capability());
  mechanism_.clear();
  sasl::Preferences prefs;
  prefs.tls = is_tls();
  prefs.plaintext_allowed = options_.allow_plaintext_auth;
  auto choice = sasl::choose_mechanism(sasl::kImap, sasl_mechanisms(), creds.kind, prefs);
  if (choice.ok()) {
    auto mech = sasl::make_mechanism(*choice, creds);
    if (!mech.ok()) return mech.status();
    MB_RETURN_IF_ERROR(authenticate(**mech, creds));
    return *choice == "PLAIN" ? SignInMethod::kAuthenticatePlain : SignInMethod::kAuthenticate;
  }
  std::string server = "IMAP server " + options_.host;
  if (creds.kind == sasl::CredentialKind::kToken) return choice.status().prefixed(server);
  // A password without a usable SASL mechanism still has the LOGIN command.
  if (!prefs.tls && !prefs.plaintext_allowed) return plaintext_refused("LOGIN");
  if (has_capability("LOGINDISABLED")) {
    return Status(ErrorKind::kConfig, server + " has disabled LOGIN (LOGINDISABLED) and " +
                                          "offers no SASL mechanism for a password: " +
                                          choice.status().message());
  }
  MB_RETURN_IF_ERROR(login(creds.user, creds.secret));
  return SignInMethod::kLogin;
}

Result<SignInMethod> Client::sign_in(const std::string& user, const std::string& password) {
  sasl::Credentials creds;
  creds.user = user;
  creds.secret = password;
  return sign_in(creds);
}

Result<SelectInfo> Client::select(const std::string& folder) {
  MB_RETURN_IF_ERROR(require({State::kAuthenticated, State::kSelected}, "SELECT"));
  SelectInfo info;
  auto on_untagged = [&](ImapResponse& r) {
    if (r.name == "EXISTS" && r.number) info.exists = *r.number;
    if (!r.code_args.empty()) {
      auto n = as_uid(r.code_args[0]);
      if (r.code == "UIDVALIDITY" && n) info.uidvalidity = *n;
      if (r.code == "UIDNEXT" && n) info.uidnext = *n;
    }
    return Status::Ok();
  };
  std::vector<Part> parts{Part{"SELECT"}};
  for (auto& p : astring_part(encode_mutf7(folder))) parts.push_back(std::move(p));
  auto r = run(parts, on_untagged);
  if (!r.ok()) return r.status();
  if (r->condition != Condition::kOk) {
    if (channel_) state_ = State::kAuthenticated;  // a failed SELECT deselects
    return fail(command_failure(*r, "SELECT " + folder));
  }
  if (info.uidvalidity == 0) {
    return Status(ErrorKind::kProtocol, "IMAP server sent no UIDVALIDITY for folder " + folder,
                  ErrorScope::kMailbox);
  }
  info.read_only = r->code == "READ-ONLY";
  if (info.read_only) {
    spdlog::warn("{}: IMAP folder {} is read-only; flags and moves will fail", options_.label,
                 folder);
  }
  state_ = State::kSelected;
  counts_.exists = info.exists;
  new_mail_ = false;  // what the folder holds now is what a listing will see
  return info;
}

Status Client::create(const std::string& folder) {
  MB_RETURN_IF_ERROR(require({State::kAuthenticated, State::kSelected}, "CREATE"));
  std::vector<Part> parts{Part{"CREATE"}};
  for (auto& p : astring_part(encode_mutf7(folder))) parts.push_back(std::move(p));
  auto r = run(parts, {});
  if (!r.ok()) return r.status();
  if (r->condition == Condition::kOk || r->code == "ALREADYEXISTS") return Status::Ok();
  return fail(command_failure(*r, "CREATE " + folder));
}

Result<std::vector<uint32_t>> Client::uid_search(const std::string& criteria) {
  MB_RETURN_IF_ERROR(require({State::kSelected}, "UID SEARCH"));
  std::vector<uint32_t> uids;
  auto on_untagged = [&](ImapResponse& r) -> Status {
    if (r.name == "ESEARCH") return parse_esearch(r.args, uids);
    if (r.name != "SEARCH") return Status::Ok();
    for (const Value& v : r.args) {
      auto uid = as_uid(v);
      if (!uid) return protocol_violation("IMAP SEARCH answer holds a bad UID '" + v.text + "'");
      uids.push_back(*uid);
    }
    return Status::Ok();
  };
  auto r = run({Part{"UID SEARCH " + criteria}}, on_untagged);
  if (!r.ok()) return r.status();
  if (r->condition != Condition::kOk) return fail(command_failure(*r, "UID SEARCH " + criteria));
  std::sort(uids.begin(), uids.end());
  uids.erase(std::unique(uids.begin(), uids.end()), uids.end());
  return uids;
}

// Hands one untagged FETCH to the sink: its UID and its BODY[] (moved, never copied).
Status Client::deliver_fetch(ImapResponse& r, const FetchSink& sink, Status& stop) {
  std::vector<Value>* items = fetch_items(r);
  if (items == nullptr) return Status::Ok();
  std::optional<uint32_t> uid;
  Value* body = nullptr;
  for (size_t i = 0; i + 1 < items->size(); i += 2) {
    if ((*items)[i].is_atom("UID")) uid = as_uid((*items)[i + 1]);
    if ((*items)[i].type == Value::Type::kAtom &&
        ascii_upper((*items)[i].text).rfind("BODY[]", 0) == 0)
      body = &(*items)[i + 1];
  }
  // A flag update, a body not asked for (dropped), or deliveries already stopped.
  if (!uid || body == nullptr || !stop.ok() || body_fate_ == BodyFate::kDropped)
    return Status::Ok();
  if (body->type == Value::Type::kNil) {
    stop = sink(*uid, Status(ErrorKind::kNotFound,
                             "IMAP server has no body for UID " + std::to_string(*uid),
                             ErrorScope::kMessage));
  } else if (body_fate_ == BodyFate::kTooLarge) {
    stop = sink(*uid, too_large(*uid, body_size_, options_.max_message_bytes,
                                " (found while downloading it)"));
  } else if (body->type == Value::Type::kString) {
    stop = sink(*uid, std::move(body->text));
  } else {
    return protocol_violation("IMAP FETCH BODY[] of UID " + std::to_string(*uid) + " is not a string");
  }
  return Status::Ok();
}

Result<std::map<uint32_t, uint64_t>> Client::uid_sizes(const std::vector<uint32_t>& uids) {
  MB_RETURN_IF_ERROR(require({State::kSelected}, "UID FETCH"));
  std::map<uint32_t, uint64_t> sizes;
  if (uids.empty()) return sizes;
  std::set<uint32_t> asked(uids.begin(), uids.end());
  auto on_untagged = [&](ImapResponse& r) {
    std::vector<Value>* items = fetch_items(r);
    if (items == nullptr) return Status::Ok();
    std::optional<uint32_t> uid;
    std::optional<uint64_t> size;
    for (size_t i = 0; i + 1 < items->size(); i += 2) {
      if ((*items)[i].is_atom("UID")) uid = as_uid((*items)[i + 1]);
      if ((*items)[i].is_atom("RFC822.SIZE")) size = (*items)[i + 1].as_number();
    }
    if (uid && size && asked.count(*uid)) sizes[*uid] = *size;
    return Status::Ok();
  };
  std::string set = format_uid_set(uids);
  auto r = run({Part{"UID FETCH " + set + " (UID RFC822.SIZE)"}}, on_untagged);
  if (!r.ok()) return r.status();
  if (r->condition != Condition::kOk) return fail(command_failure(*r, "UID FETCH " + set));
  return sizes;
}

Status Client::uid_fetch(const std::vector<uint32_t>& uids, const FetchSink& sink) {
  MB_RETURN_IF_ERROR(require({State::kSelected}, "UID FETCH"));
  if (uids.empty()) return Status::Ok();
  auto sizes = uid_sizes(uids);
  if (!sizes.ok()) return sizes.status();
  Status stop;
  std::vector<uint32_t> wanted;
  for (uint32_t uid : uids) {
    auto it = sizes->find(uid);
    // Without a size (a server that left it out) the body is fetched: its literal is bounded.
    if (it == sizes->end() || it->second <= options_.max_message_bytes) {
      wanted.push_back(uid);
    } else if (stop.ok()) {
      stop = sink(uid, too_large(uid, it->second, options_.max_message_bytes, ""));
    }
  }
  if (wanted.empty() || !stop.ok()) return stop;
  auto on_untagged = [&](ImapResponse& r) { return deliver_fetch(r, sink, stop); };
  std::string set = format_uid_set(wanted);
  bodies_wanted_ = wanted.size();
  auto r = run({Part{"UID FETCH " + set + " (UID BODY.PEEK[])"}}, on_untagged);
  bodies_wanted_ = 0;
  if (!r.ok()) return r.status();
  if (r->condition != Condition::kOk) return fail(command_failure(*r, "UID FETCH " + set));
  return stop;
}

Status Client::uid_store_add_flags(const std::vector<uint32_t>& uids, const std::string& flags) {
  MB_RETURN_IF_ERROR(require({State::kSelected}, "UID STORE"));
  if (uids.empty()) return Status::Ok();
  std::string set = format_uid_set(uids);
  return simple({Part{"UID STORE " + set + " +FLAGS.SILENT (" + flags + ")"}},
                "UID STORE " + set + " +FLAGS (" + flags + ")");
}

Status Client::uid_copy(const std::vector<uint32_t>& uids, const std::string& folder) {
  MB_RETURN_IF_ERROR(require({State::kSelected}, "UID COPY"));
  if (uids.empty()) return Status::Ok();
  std::vector<Part> parts{Part{"UID COPY " + format_uid_set(uids)}};
  for (auto& p : astring_part(encode_mutf7(folder))) parts.push_back(std::move(p));
  return simple(parts, "UID COPY to " + folder);
}

Status Client::uid_move(const std::vector<uint32_t>& uids, const std::string& folder) {
  MB_RETURN_IF_ERROR(require({State::kSelected}, "UID MOVE"));
  if (!has_capability("MOVE"))
    return Status(ErrorKind::kInternal, "IMAP server does not support MOVE");
  if (uids.empty()) return Status::Ok();
  std::vector<Part> parts{Part{"UID MOVE " + format_uid_set(uids)}};
  for (auto& p : astring_part(encode_mutf7(folder))) parts.push_back(std::move(p));
  return simple(parts, "UID MOVE to " + folder);
}

Status Client::uid_expunge(const std::vector<uint32_t>& uids) {
  MB_RETURN_IF_ERROR(require({State::kSelected}, "UID EXPUNGE"));
  if (!has_capability("UIDPLUS"))
    return Status(ErrorKind::kInternal, "IMAP server does not support UID EXPUNGE (UIDPLUS)");
  if (uids.empty()) return Status::Ok();
  std::string set = format_uid_set(uids);
  return simple({Part{"UID EXPUNGE " + set}}, "UID EXPUNGE " + set);
}

Status Client::noop() {
  MB_RETURN_IF_ERROR(require({State::kSelected}, "NOOP"));
  return simple({Part{"NOOP"}}, "NOOP");
}

Status Client::logout() {
  if (!channel_) return Status::Ok();
  bool live = state_ == State::kNotAuthenticated || state_ == State::kAuthenticated ||
              state_ == State::kSelected;
  Status s;
  if (live) {
    state_ = State::kLogout;  // the BYE that follows is expected
    auto r = run({Part{"LOGOUT"}}, {});
    if (!r.ok()) s = r.status();
  }
  close();
  state_ = State::kLogout;
  return s;
}

}  // namespace mb::imap
