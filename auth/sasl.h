// File: auth/sasl.h — SASL client mechanisms (PLAIN, LOGIN, XOAUTH2, OAUTHBEARER) behind one
// small interface, the choice of mechanism, and the one AUTH loop IMAP, POP3 and SMTP share.
//
// A Mechanism only turns server challenges into client responses (raw bytes; base64 is the
// protocol's business, done by Exchange). IMAP AUTHENTICATE, POP3 AUTH and SMTP AUTH all
// carry SASL the same way — base64 lines, "*" to cancel — so authenticate() drives any
// mechanism for any of them, configured by the protocol's const descriptor (kImap, kPop3,
// kSmtp: command word, continuation code, initial-response limit, mechanisms used), much as
// curl's SASLproto does; the protocol's client only moves lines (a Link):
//
//   auto name = sasl::choose_mechanism(sasl::kImap, server_mechs, creds.kind, prefs);
//   auto mech = sasl::make_mechanism(*name, creds);
//   MyLink link(...);   // sends lines, reads answers, maps a plain refusal to a Status
//   MB_RETURN_IF_ERROR(sasl::authenticate(sasl::kImap, link, **mech, creds));
//
// The one order of preference, for every protocol: with a token XOAUTH2, then OAUTHBEARER
// (Exchange Online, Gmail and Dovecot all take XOAUTH2; some servers list only OAUTHBEARER);
// with a password PLAIN, then LOGIN. A protocol may use fewer (POP3 signs in with USER/PASS
// where SASL LOGIN would do), never another order.
//
// No message built here holds a secret: errors name the mechanism and the user, never the
// password or token, and server text quoted in them is scrubbed.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace mb::sasl {

// ---- Pure message builders (the bytes before base64) ----

// RFC 4616: authzid NUL authcid NUL passwd. authzid is usually empty.
std::string plain_message(std::string_view authzid, std::string_view user,
                          std::string_view password);
// Google's XOAUTH2: "user=" user ^A "auth=Bearer " token ^A ^A.
std::string xoauth2_message(std::string_view user, std::string_view token);
// RFC 7628 §3.1: "n,a=" saslname "," ^A "host=" host ^A "port=" port ^A "auth=Bearer " token
// ^A ^A. host/port are left out when empty/0; user's ',' and '=' are escaped (RFC 5801).
std::string oauthbearer_message(std::string_view user, std::string_view host, uint16_t port,
                                std::string_view token);

// The error a server sends as an XOAUTH2/OAUTHBEARER challenge (RFC 7628 §3.2.2), e.g.
// {"status":"401","schemes":"Bearer","scope":"https://mail.google.com/"}.
struct BearerError {
  std::string status;
  std::string schemes;
  std::string scope;
  std::string openid_configuration;
};
// nullopt when `json` is not a JSON object.
std::optional<BearerError> parse_bearer_error(std::string_view json);
// "token rejected: status 401, scope https://mail.google.com/" — the text of the kAuth status
// (auth/token_cache treats "token rejected" as a 401: invalidate and retry once).
std::string describe(const BearerError& e);
// The kAuth status (scope kMailbox) for an error challenge: describe() of the decoded JSON, or
// a note that it was not JSON.
// `token` is replaced by <redacted> should the server echo it.
Status bearer_failure(std::string_view challenge, std::string_view token = {});
// `text` with every `secret` replaced by <redacted>, and every base64 run holding a piece of
// it or a SASL credential message (auth/redact.h); unchanged when `secret` is empty.
std::string without_secret(std::string_view text, std::string_view secret);
// Server text fit for a message: `secret` (when given) replaced by <redacted>, non-printable
// bytes turned into '?', cut at 200 characters.
std::string excerpt(std::string_view text, std::string_view secret = {});

// ---- Mechanisms ----

enum class CredentialKind { kPassword, kToken };

struct Credentials {
  CredentialKind kind = CredentialKind::kPassword;
  std::string user;
  std::string secret;   // the password, or the OAuth access token
  std::string authzid;  // PLAIN only: act as this user (empty: as `user`)
  std::string host;     // OAUTHBEARER only: the server's name and port (may be empty/0)
  uint16_t port = 0;
};

// One authentication attempt with one mechanism. Not reusable: make a new one per attempt.
class Mechanism {
 public:
  virtual ~Mechanism() = default;
  // The IANA name, upper case ("OAUTHBEARER").
  virtual std::string_view name() const = 0;
  // True when the client speaks first, so the first message can travel with the command
  // (SASL-IR) or answer the server's first, empty challenge.
  virtual bool supports_initial_response() const = 0;
  // The first client message; nullopt for mechanisms where the server speaks first.
  virtual std::optional<std::string> initial_response() = 0;
  // The response to a server challenge (decoded bytes). An error means "cancel the
  // exchange"; report that error once the server has answered the cancellation.
  virtual Result<std::string> step(std::string_view challenge) = 0;
  // True once the mechanism has said all it has to; only the server's verdict is left.
  virtual bool is_done() const = 0;
  // The failure the server explained in a challenge (the XOAUTH2/OAUTHBEARER error JSON),
  // reported once the final NO arrives; OK when there was none.
  virtual Status server_error() const { return Status::Ok(); }
};

std::unique_ptr<Mechanism> make_plain(const Credentials& c);
std::unique_ptr<Mechanism> make_login(const Credentials& c);
std::unique_ptr<Mechanism> make_xoauth2(const Credentials& c);
std::unique_ptr<Mechanism> make_oauthbearer(const Credentials& c);
// By name (case-insensitive). kConfig for a mechanism we do not implement, or one that does
// not fit the credential kind (a token for PLAIN, a password for XOAUTH2).
Result<std::unique_ptr<Mechanism>> make_mechanism(std::string_view name, const Credentials& c);

// ---- Choosing ----

struct Preferences {
  // Mechanisms the configuration allows; empty: all we implement. The one order still decides.
  std::vector<std::string> allowed;
  bool tls = true;                // the connection is encrypted
  bool plaintext_allowed = false;  // security = none was configured explicitly
};

// The first mechanism in the one order (above) that both sides support for this kind of
// credential: for a token XOAUTH2 > OAUTHBEARER, for a password PLAIN > LOGIN (password
// mechanisms only over TLS unless prefs.plaintext_allowed). Otherwise kConfig explaining why: the server offers no
// mechanism, no overlap (listing both sides), the token is missing (the server only takes
// OAuth), or the connection is not encrypted.
Result<std::string> choose_mechanism(const std::vector<std::string>& server_mechs,
                                     CredentialKind kind, const Preferences& prefs);

// ---- Driving an exchange ----

// One response line and whether it carries credentials (traces show it as <redacted>).
struct Reply {
  std::string line;
  bool secret = false;
};

// Drives one Mechanism over a protocol whose SASL lines are base64 and whose cancel line is
// "*" (IMAP, POP3, SMTP). Holds a reference: the mechanism must outlive the exchange.
class Exchange {
 public:
  explicit Exchange(Mechanism& mechanism) : mech_(mechanism) {}

  std::string name() const { return std::string(mech_.name()); }
  // The base64 initial response to send with the command when the protocol allows it
  // (SASL-IR); "=" stands for an empty one (RFC 4959). nullopt: wait for a challenge.
  std::optional<std::string> initial_response();
  // The line answering a server challenge `text` (base64 as received). Undecodable or
  // refused challenges give "*" and leave the reason in failure().
  Reply answer(std::string_view text);
  // Why the exchange cannot succeed (the mechanism refused a challenge, the challenge was
  // not base64, or the server explained a failure in a challenge); OK otherwise. Once the
  // server's final reply is in, a non-OK failure() is the error to report.
  Status failure() const;
  bool cancelled() const { return cancelled_; }

 private:
  Mechanism& mech_;
  bool started_ = false;  // the client's first message is out
  bool cancelled_ = false;
  Status failure_;
};

// ---- One AUTH loop for IMAP, POP3 and SMTP ----

// What sets one protocol's SASL command apart (the const descriptor authenticate() follows).
struct Protocol {
  std::string_view name;     // "IMAP": opens messages
  std::string_view command;  // "AUTHENTICATE" or "AUTH"
  // Answer::code of a challenge: '+' for IMAP and POP3 ("+ <base64>"), 334 for SMTP.
  int continuation = '+';
  // Longest command line that may carry the initial response; a longer one sends it after
  // the server's first, empty challenge (POP3: 255, RFC 5034 §4). 0: no limit.
  size_t max_command_line = 0;
  // More challenges than this in one exchange is a protocol error.
  int max_challenges = 10;
  // The mechanisms used over SASL, each list a part of the one order; empty: all of it.
  std::span<const std::string_view> password_mechanisms;
  std::span<const std::string_view> token_mechanisms;
  // Tried with a token when the server lists no token mechanism at all (POP3: Exchange
  // Online takes XOAUTH2 without always listing it, and RFC 5034 allows AUTH with an unlisted
  // mechanism); empty: none.
  std::string_view unlisted_token_mechanism;
};

extern const Protocol kImap;  // AUTHENTICATE; the initial response only with SASL-IR
extern const Protocol kPop3;  // AUTH, 255-octet lines; PLAIN, else USER/PASS; XOAUTH2 unlisted
extern const Protocol kSmtp;  // AUTH, 334 challenges

// choose_mechanism() limited to the mechanisms `protocol` uses over SASL (prefs.allowed, when
// set, narrows them further), with its unlisted token mechanism as the last resort.
Result<std::string> choose_mechanism(const Protocol& protocol,
                                     const std::vector<std::string>& server_mechs,
                                     CredentialKind kind, Preferences prefs);

// One answer of the server, read by the protocol: a challenge when `code` is the protocol's
// continuation (`text`: the base64 after "+ " or "334 "), else the final reply (`text`: the
// server's words, quoted in messages).
struct Answer {
  int code = 0;
  std::string text;
};

// How authenticate() talks over one protocol's connection.
class Link {
 public:
  virtual ~Link() = default;
  // "IMAP server", "SMTP server mail.example": opens messages.
  virtual std::string server() const = 0;
  // Whether the initial response may ride on the command line (IMAP: SASL-IR advertised).
  virtual bool initial_response_allowed() const { return true; }
  // Sends the command ("AUTH PLAIN <ir>"); the secret, if any, starts at `secret_from`.
  virtual Status send_command(const std::string& line, size_t secret_from) = 0;
  // Sends the response to a challenge; a secret one shows as <redacted> in traces.
  virtual Status send_response(const Reply& reply) = 0;
  virtual Result<Answer> read() = 0;
  // Whether the final reply says the client is signed in.
  virtual bool accepted(const Answer& final_reply) const = 0;
  // The Status for a refusal the exchange did not explain: the protocol's own codes.
  virtual Status refused(const Answer& final_reply) = 0;
  // Closes the connection when `s` leaves it unusable; returns `s`.
  virtual Status fail(Status s) = 0;
};

// The AUTH loop: the command with the initial response when `protocol` and `link` allow it,
// each challenge answered through an Exchange (the held initial response first when it did
// not fit the command line), at most protocol.max_challenges of them (else kProtocol). The
// final reply decides: accepted → OK, unless the exchange was cancelled or the server
// reported an error in a challenge (kProtocol: the server cannot be trusted); refused after
// an error the exchange knows (an error challenge, a refused challenge) → that error, which
// outranks the server's terse final NO (kept as "(server: …)"); otherwise link.refused().
Status authenticate(const Protocol& protocol, Link& link, Mechanism& mechanism,
                    const Credentials& creds);

}  // namespace mb::sasl
