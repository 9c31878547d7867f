// File: auth/sasl_exchange.cpp — drives a Mechanism over base64 lines with "*" to cancel,
// the framing IMAP AUTHENTICATE, POP3 AUTH and SMTP AUTH share.
#include "auth/base64.h"
#include "auth/sasl.h"
#include "auth/secrets.h"

namespace mb::sasl {

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

}  // namespace mb::sasl
