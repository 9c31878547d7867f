// File: auth/sasl_exchange.cpp — drives a Mechanism over base64 lines with "*" to cancel,
// the framing IMAP AUTHENTICATE, POP3 AUTH and SMTP AUTH share: the Exchange, the one AUTH
// loop (authenticate) and the three protocols' descriptors.
#include "auth/base64.h"
#include "auth/sasl.h"
#include "auth/secrets.h"

namespace mb::sasl {
namespace {

constexpr std::string_view kBothPassword[] = {"PLAIN", "LOGIN"};
constexpr std::string_view kPlainOnly[] = {"PLAIN"};  // POP3: USER/PASS instead of LOGIN
constexpr std::string_view kBothToken[] = {"XOAUTH2", "OAUTHBEARER"};

// Server text fit for a message: secrets removed, control bytes shown as '?', cut short.
std::string quoted(std::string_view text, std::string_view secret) {
  return excerpt(Redactor::instance().scrub(text, secret));
}

// The verdict once the final reply is in (see authenticate() in sasl.h).
Status verdict(const Protocol& p, Link& link, const Exchange& ex, const Credentials& creds,
               const Answer& final_reply) {
  const std::string what = std::string(p.command) + " " + ex.name();
  Status known = ex.failure();
  if (link.accepted(final_reply)) {
    if (known.ok() && !ex.cancelled()) return Status::Ok();
    return link.fail(protocol_violation(link.server() + " accepted an " + what +
                                    (ex.cancelled() ? " that was cancelled"
                                                    : " after reporting an error")));
  }
  if (known.ok()) return link.refused(final_reply);
  std::string detail =
      final_reply.text.empty() ? "" : " (server: " + quoted(final_reply.text, creds.secret) + ")";
  std::string reason = Redactor::instance().scrub(known.message(), creds.secret);
  if (known.kind() != ErrorKind::kAuth) {
    return link.fail(Status(known.kind(), std::string(p.name) + " " + what + ": " + reason + detail,
                            known.scope()));
  }
  return Status(ErrorKind::kAuth,
                link.server() + " refused the login for user " + creds.user + ": " + reason +
                    detail,
                known.scope());
}

}  // namespace

const Protocol kImap{"IMAP", "AUTHENTICATE", '+', 0, 10, kBothPassword, kBothToken, {}};
const Protocol kPop3{"POP3", "AUTH", '+', 255, 10, kPlainOnly, kBothToken, "XOAUTH2"};
const Protocol kSmtp{"SMTP", "AUTH", 334, 0, 10, kBothPassword, kBothToken, {}};

std::optional<std::string> Exchange::initial_response() {
  if (started_ || !mech_.supports_initial_response()) return std::nullopt;
  auto first = mech_.initial_response();
  if (!first) return std::nullopt;
  started_ = true;
  if (first->empty()) return std::string("=");
  std::string line = base64_encode(*first);
  Redactor::instance().add_blob(line);  // a server may echo it whole
  return line;
}

Reply Exchange::answer(std::string_view text) {
  if (cancelled_) return Reply{"*", false};
  if (!started_ && mech_.supports_initial_response()) {
    // The server's first challenge asks for the initial response; whatever text it holds
    // ("+ go ahead") carries nothing for a client-first mechanism.
    started_ = true;
    auto first = mech_.initial_response();
    std::string line = base64_encode(first.value_or(""));
    Redactor::instance().add_blob(line);
    return Reply{line, true};
  }
  started_ = true;
  auto challenge = base64_decode(text);
  if (!challenge) {
    cancelled_ = true;
    // Not quoted: undecoded text might be anything, the secret included.
    failure_ = Status(ErrorKind::kProtocol,
                      "the server sent a " + name() + " challenge that is not base64 (" +
                          std::to_string(text.size()) + " characters)",
                      ErrorScope::kConnection);
    return Reply{"*", false};
  }
  auto response = mech_.step(*challenge);
  if (!response.ok()) {
    cancelled_ = true;
    failure_ = response.status();
    return Reply{"*", false};
  }
  // The answers to an error challenge (empty, ^A) hold nothing secret; the rest may.
  bool secret = mech_.server_error().ok() && !response->empty();
  std::string line = base64_encode(*response);
  if (secret) Redactor::instance().add_blob(line);
  return Reply{line, secret};
}

Status Exchange::failure() const {
  if (!failure_.ok()) return failure_;
  return mech_.server_error();
}

Status authenticate(const Protocol& p, Link& link, Mechanism& mechanism,
                    const Credentials& creds) {
  Exchange ex(mechanism);
  const std::string what = std::string(p.command) + " " + ex.name();
  std::string line = what;
  size_t secret_from = std::string::npos;
  std::optional<std::string> held;
  if (link.initial_response_allowed()) held = ex.initial_response();
  if (held && (p.max_command_line == 0 || what.size() + 1 + held->size() <= p.max_command_line)) {
    secret_from = line.size() + 1;
    line += " " + *held;
    held.reset();
  }
  MB_RETURN_IF_ERROR(link.send_command(line, secret_from));
  for (int challenges = 0;;) {
    auto answer = link.read();
    if (!answer.ok()) return answer.status();
    if (answer->code != p.continuation) return verdict(p, link, ex, creds, *answer);
    if (++challenges > p.max_challenges) {
      return link.fail(protocol_violation(link.server() + " sent more than " +
                                      std::to_string(p.max_challenges) + " " + what +
                                      " challenges"));
    }
    std::string_view text = answer->text;
    while (!text.empty() && text.back() == ' ') text.remove_suffix(1);
    // The initial response that did not fit the command line answers the first challenge.
    Reply reply = held ? Reply{*held, true} : ex.answer(text);
    held.reset();
    MB_RETURN_IF_ERROR(link.send_response(reply));
  }
}

}  // namespace mb::sasl
