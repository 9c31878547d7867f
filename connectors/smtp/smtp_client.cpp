// File: connectors/smtp/smtp_client.cpp — the SMTP client: replies, EHLO/HELO, STARTTLS,
// AUTH, and mail transactions (pipelined or step by step) with per-recipient answers.
#include "connectors/smtp/smtp_client.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "auth/secrets.h"
#include "core/failpoint.h"

namespace mb::smtp {
namespace {

constexpr size_t kMaxReplyLines = 1000;     // a reply longer than this is not SMTP
constexpr size_t kBodyChunk = 64 * 1024;    // the message goes out in pieces this large
constexpr auto kQuitWait = std::chrono::seconds(5);

// Removes a secret from server text before it reaches a message (a server that echoes a
// command back must not leak it, in plain or in base64), and every resolved secret.
std::string scrub(std::string_view text, const std::string& secret = {}) {
  return Redactor::instance().scrub(text, secret);
}

}  // namespace

Client::Client(ClientOptions options) : options_(std::move(options)) {}

Client::~Client() { close(); }


void Client::close() {
  if (!channel_) return;
  channel_->close();
  channel_.reset();
}

// A failure that leaves the connection unusable closes it, so connected() tells the truth.
Status Client::fail(Status s) {
  if (!s.ok() && s.scope() == ErrorScope::kConnection) close();
  return s;
}

Result<Reply> Client::read_reply() {
  if (!channel_) {
    return Status(ErrorKind::kNetwork, who() + ": not connected", ErrorScope::kConnection);
  }
  Reply reply;
  for (;;) {
    auto line = channel_->read_line();
    if (!line.ok()) {
      Status s = line.status();
      return fail(Status(s.kind(), who() + ": " + s.message(), ErrorScope::kConnection));
    }
    auto parsed = parse_reply_line(*line);
    if (!parsed) return fail(protocol_violation(who() + " sent a line that is not an SMTP reply: '" +
                                      sasl::excerpt(scrub(*line)) + "'"));
    if (reply.code != 0 && parsed->code != reply.code) {
      return fail(protocol_violation(who() + " changed the reply code within one reply (" +
                           std::to_string(reply.code) + ", then " +
                           std::to_string(parsed->code) + ")"));
    }
    reply.code = parsed->code;
    reply.lines.push_back(std::move(parsed->text));
    if (parsed->last) break;
    if (reply.lines.size() > kMaxReplyLines) {
      return fail(protocol_violation(who() + " sent a reply of more than 1000 lines"));
    }
  }
  // 421: the server is closing the connection whatever the command was.
  if (reply.code == 421) close();
  return reply;
}

Status Client::write_line(const std::string& line, size_t secret_from) {
  if (!channel_) {
    return Status(ErrorKind::kNetwork, who() + ": not connected", ErrorScope::kConnection);
  }
  Status s = channel_->write_line(line, secret_from);
  if (!s.ok()) return fail(Status(s.kind(), who() + ": " + s.message(), ErrorScope::kConnection));
  return s;
}

// Starts the step (command and whole reply) that must be over within timeouts.response
// plus the time its bytes take at LineChannel::kMinRate.
void Client::begin_step(const std::string& what) {
  if (channel_) channel_->begin_step("the answer to " + what, options_.timeouts.response);
}

Result<Reply> Client::command(const std::string& line) {
  begin_step(line.substr(0, line.find(' ')));  // the verb: never an argument or a secret
  MB_RETURN_IF_ERROR(write_line(line));
  return read_reply();
}

// A refusal, classified: 5xx permanent, 4xx transient; 421 also ends the connection.
Status Client::refused(const Reply& r, const std::string& what, Stage stage) {
  stage_ = stage;
  ErrorKind kind = r.code >= 500 ? ErrorKind::kRejected : ErrorKind::kThrottled;
  ErrorScope scope = r.code == 421 ? ErrorScope::kConnection : ErrorScope::kMessage;
  return Status(kind, who() + " refused " + what + ": " + sasl::excerpt(scrub(r.text())),
                scope);
}

Status Client::connect(std::unique_ptr<Stream> stream) {
  close();
  ext_ = Extensions{};
  transactions_ = 0;
  open_channel(std::move(stream), LineChannel::kDefaultMaxLine, trace_sink(options_, "smtp"));
  auto greeting = read_greeting(options_.timeouts, [&] { return read_reply(); });
  if (!greeting.ok()) return greeting.status();
  if (greeting->code != 220) {
    Status s = refused(*greeting, "the connection", Stage::kNone);
    close();
    return Status(s.kind(), s.message(), ErrorScope::kConnection);
  }
  greeting_ = greeting->text();
  return ehlo();
}

Status Client::ehlo() {
  std::string name = options_.helo_name.empty() ? "localhost" : options_.helo_name;
  auto r = command("EHLO " + name);
  if (!r.ok()) return r.status();
  if (r->code == 250) {
    ext_ = parse_ehlo(*r);
    return Status::Ok();
  }
  if (r->code == 421) return refused(*r, "EHLO", Stage::kNone);
  // A server without ESMTP: HELO, and no extensions at all.
  auto h = command("HELO " + name);
  if (!h.ok()) return h.status();
  if (h->code != 250) {
    Status s = refused(*h, "HELO", Stage::kNone);
    return Status(s.kind(), s.message(), ErrorScope::kConnection);
  }
  ext_ = Extensions{};
  return Status::Ok();
}

Status Client::starttls() {
  if (is_tls()) return Status::Ok();
  if (!ext_.has("STARTTLS")) {
    return fail(Status(ErrorKind::kTls,
                       who() + " does not offer STARTTLS; refusing to continue without "
                               "encryption (security = starttls)",
                       ErrorScope::kConnection));
  }
  auto r = command("STARTTLS");
  if (!r.ok()) return r.status();
  if (r->code != 220) {
    return fail(Status(ErrorKind::kTls,
                       who() + " refused STARTTLS: " + sasl::excerpt(scrub(r->text())),
                       ErrorScope::kConnection));
  }
  Status s = upgrade_to_tls(*channel_, options_);
  if (!s.ok()) return fail(Status(s.kind(), s.message(), ErrorScope::kConnection));
  // RFC 3207 §4.2: forget what was learned before TLS and ask again.
  return ehlo();
}

// AUTH over this connection for sasl::authenticate: 334 replies are challenges, any other
// reply is the verdict (235: signed in).
class Client::SaslLink : public sasl::Link {
 public:
  SaslLink(Client& c, const sasl::Credentials& creds, std::string what)
      : c_(c), creds_(creds), what_(std::move(what)) {}
  std::string server() const override { return c_.who(); }
  Status send_command(const std::string& line, size_t secret_from) override {
    c_.begin_step(what_);
    return c_.write_line(line, secret_from);
  }
  Status send_response(const sasl::Reply& reply) override {
    return c_.write_line(reply.line, reply.secret ? 0 : std::string::npos);
  }
  Result<sasl::Answer> read() override {
    auto r = c_.read_reply();
    if (!r.ok()) return r.status();
    if (r->code == 334) return sasl::Answer{334, r->lines.empty() ? "" : r->lines.front()};
    code_ = r->code;
    return sasl::Answer{r->code, r->text()};
  }
  bool accepted(const sasl::Answer& a) const override { return a.code == 235; }
  Status refused(const sasl::Answer& a) override {
    std::string text = sasl::excerpt(scrub(a.text, creds_.secret));
    if (code_ < 500) {
      return Status(ErrorKind::kThrottled,
                    c_.who() + " could not sign in user " + creds_.user + " for now: " + text,
                    code_ == 421 ? ErrorScope::kConnection : ErrorScope::kMailbox);
    }
    return Status(ErrorKind::kAuth, c_.who() + " refused the login for user " + creds_.user +
                                        " (" + what_ + "): " + text,
                  ErrorScope::kMailbox);
  }
  Status fail(Status s) override { return c_.fail(std::move(s)); }

 private:
  Client& c_;
  const sasl::Credentials& creds_;
  std::string what_;
  int code_ = 0;
};

Status Client::authenticate(sasl::Mechanism& mechanism, const sasl::Credentials& creds) {
  SaslLink link(*this, creds, "AUTH " + std::string(mechanism.name()));
  MB_RETURN_IF_ERROR(sasl::authenticate(sasl::kSmtp, link, mechanism, creds));
  mechanism_ = std::string(mechanism.name());
  return Status::Ok();
}

Result<std::string> Client::sign_in(const sasl::Credentials& creds) {
  mechanism_.clear();
  sasl::Preferences prefs;
  prefs.tls = is_tls();
  prefs.plaintext_allowed = options_.allow_plaintext_auth;
  auto choice = sasl::choose_mechanism(sasl::kSmtp, ext_.auth_mechanisms(), creds.kind, prefs);
  if (!choice.ok()) return choice.status().prefixed(who());
  auto mech = sasl::make_mechanism(*choice, creds);
  if (!mech.ok()) return mech.status();
  MB_RETURN_IF_ERROR(authenticate(**mech, creds));
  return *choice;
}

Status Client::rset() {
  auto r = command("RSET");
  if (!r.ok()) return r.status();
  if (r->code != 250) return refused(*r, "RSET", Stage::kRset);
  return Status::Ok();
}

Status Client::noop() {
  auto r = command("NOOP");
  if (!r.ok()) return r.status();
  if (r->code != 250) return refused(*r, "NOOP", Stage::kNone);
  return Status::Ok();
}

void Client::quit() {
  if (!channel_) return;
  // The answer to QUIT changes nothing; waiting for it long would only delay the caller.
  auto wait = std::min<std::chrono::milliseconds>(options_.timeouts.response, kQuitWait);
  channel_->set_timeout(wait);
  channel_->begin_step("the answer to QUIT", wait);
  if (channel_->write_line("QUIT").ok()) read_reply().status().ignore();
  close();
}

// The body, dot-stuffed in pieces so a large message is never copied whole. The end of
// the data (CRLF "." CRLF) is written on its own, last: until it reaches the server, the
// server discards the transaction if we vanish (RFC 5321 §4.1.1.4), so a crash before it
// can never have delivered the message.
Status Client::send_body(std::string_view raw) {
  begin_step("the message data");
  DotStuffer stuffer;
  std::string out;
  auto write = [&]() -> Status {
    Status s = channel_->write_raw(out);
    if (!s.ok()) return fail(Status(s.kind(), who() + ": " + s.message(), ErrorScope::kConnection));
    return s;
  };
  for (size_t pos = 0; pos < raw.size(); pos += kBodyChunk) {
    out.clear();
    stuffer.feed(raw.substr(pos, kBodyChunk), out);
    MB_RETURN_IF_ERROR(write());
  }
  out.clear();
  stuffer.finish(out);
  failpoint("smtp.before-end");
  return write();
}

// When no recipient took the message: transient if any refusal was (worth another try
// later), else permanent. The message names every recipient's answer.
Status Client::none_accepted(const SendResult& result) const {
  bool any_transient = false;
  std::string detail;
  for (const auto& r : result.recipients) {
    any_transient = any_transient || !r.permanent;
    detail += (detail.empty() ? "" : "; ") + r.address + ": " + r.reply;
  }
  return Status(any_transient ? ErrorKind::kThrottled : ErrorKind::kRejected,
                who() + " refused every recipient (" + detail + ")", ErrorScope::kMessage);
}

Result<SendResult> Client::send(const Envelope& env, std::string_view raw, bool rset_first,
                                HandedOver on_handed_over) {
  stage_ = Stage::kNone;
  mail_code_ = 0;
  on_handed_over_ = std::move(on_handed_over);
  if (!channel_) {
    return Status(ErrorKind::kNetwork, who() + ": not connected", ErrorScope::kConnection);
  }
  MB_RETURN_IF_ERROR(check_address(env.from, /*allow_empty=*/true));
  if (env.recipients.empty()) {
    return Status(ErrorKind::kInvalidInput, "the message has no envelope recipient");
  }
  for (const auto& r : env.recipients) MB_RETURN_IF_ERROR(check_address(r, false));
  MessageNeeds needs = analyze(env, raw);
  MB_RETURN_IF_ERROR(check_fit(needs, raw.size(), ext_, who()));
  std::string mail = mail_command(env.from, raw.size(), needs, ext_);
  ++transactions_;
  if (ext_.has("PIPELINING")) return send_pipelined(env, raw, rset_first, mail);
  return send_stepwise(env, raw, rset_first, mail);
}

// RFC 2920: [RSET] MAIL, every RCPT and DATA leave in one write; the replies come back in
// the same order and are read in full, whatever they say, so the connection stays in step.
Result<SendResult> Client::send_pipelined(const Envelope& env, std::string_view raw,
                                          bool rset_first, const std::string& mail) {
  std::string flight;
  if (rset_first) flight += "RSET\r\n";
  flight += mail + "\r\n";
  for (const auto& r : env.recipients) flight += "RCPT TO:<" + r + ">\r\n";
  flight += "DATA\r\n";
  stage_ = rset_first ? Stage::kRset : Stage::kMail;
  begin_step("MAIL, RCPT and DATA");
  Status w = channel_->write_raw(flight);
  if (!w.ok()) return fail(Status(w.kind(), who() + ": " + w.message(), ErrorScope::kConnection));
  if (rset_first) {
    auto r = read_reply();
    if (!r.ok()) return r.status();
    if (r->code != 250) {
      Status s = refused(*r, "RSET", Stage::kRset);
      close();  // the rest of the flight's replies are not worth reading
      return Status(s.kind(), s.message(), ErrorScope::kConnection);
    }
  }
  stage_ = Stage::kMail;
  auto m = read_reply();
  if (!m.ok()) return m.status();
  mail_code_ = m->code;
  SendResult result;
  for (const auto& addr : env.recipients) {
    auto r = read_reply();
    if (!r.ok()) return r.status();
    result.recipients.push_back(
        RecipientResult{addr, r->code == 250 || r->code == 251, r->code >= 500, r->text()});
  }
  stage_ = Stage::kData;
  auto d = read_reply();
  if (!d.ok()) return d.status();
  if (m->code != 250) {
    if (d->code == 354) MB_RETURN_IF_ERROR(send_body(""));  // refused anyway; keep in step
    return refused(*m, "MAIL FROM:<" + env.from + ">", Stage::kMail);
  }
  bool any = std::any_of(result.recipients.begin(), result.recipients.end(),
                         [](const RecipientResult& r) { return r.accepted; });
  if (!any) {
    stage_ = Stage::kRcpt;
    // A server that answered DATA with 354 anyway gets an empty message, which it refuses.
    if (d->code == 354) {
      MB_RETURN_IF_ERROR(send_body(""));
      read_reply().status().ignore();
    }
    return none_accepted(result);
  }
  if (d->code != 354) return refused(*d, "DATA", Stage::kData);
  return finish_data(std::move(result), raw);
}

Result<SendResult> Client::send_stepwise(const Envelope& env, std::string_view raw,
                                         bool rset_first, const std::string& mail) {
  if (rset_first) {
    stage_ = Stage::kRset;
    Status s = rset();
    if (!s.ok()) {
      close();
      return Status(s.kind(), s.message(), ErrorScope::kConnection);
    }
  }
  stage_ = Stage::kMail;
  auto m = command(mail);
  if (!m.ok()) return m.status();
  mail_code_ = m->code;
  if (m->code != 250) return refused(*m, "MAIL FROM:<" + env.from + ">", Stage::kMail);
  SendResult result;
  stage_ = Stage::kRcpt;
  for (const auto& addr : env.recipients) {
    auto r = command("RCPT TO:<" + addr + ">");
    if (!r.ok()) return r.status();
    result.recipients.push_back(
        RecipientResult{addr, r->code == 250 || r->code == 251, r->code >= 500, r->text()});
    if (r->code == 421) return refused(*r, "RCPT TO:<" + addr + ">", Stage::kRcpt);
  }
  bool any = std::any_of(result.recipients.begin(), result.recipients.end(),
                         [](const RecipientResult& r) { return r.accepted; });
  if (!any) {
    // End the transaction so the connection can carry the next message.
    rset().ignore();
    return none_accepted(result);
  }
  stage_ = Stage::kData;
  auto d = command("DATA");
  if (!d.ok()) return d.status();
  if (d->code != 354) return refused(*d, "DATA", Stage::kData);
  return finish_data(std::move(result), raw);
}

// After 354 the message goes out dot-stuffed; its fate is the reply to the final dot. A
// connection lost after the end was written leaves it unknown whether the server kept the
// message (kNetwork at Stage::kEnd; is_server_answer() is false).
Result<SendResult> Client::finish_data(SendResult result, std::string_view raw) {
  stage_ = Stage::kBody;
  MB_RETURN_IF_ERROR(send_body(raw));
  stage_ = Stage::kEnd;
  failpoint("smtp.end-written");
  if (on_handed_over_) on_handed_over_(result);
  auto r = read_reply();
  if (!r.ok()) {
    Status s = r.status();
    return Status(s.kind(), s.message() + " after the message was sent; the server may or may "
                  "not have kept it", s.scope());
  }
  if (r->code != 250) return refused(*r, "the message", Stage::kEnd);
  stage_ = Stage::kDone;
  result.server_id = queued_id(*r);
  return result;
}

}  // namespace mb::smtp
