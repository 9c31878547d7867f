// File: auth/sasl.h — SASL client mechanisms (PLAIN, LOGIN, XOAUTH2, OAUTHBEARER) behind one
// small interface, the choice of mechanism, and a protocol-independent exchange driver.
//
// A Mechanism only turns server challenges into client responses (raw bytes; base64 is the
// protocol's business, done by Exchange). IMAP AUTHENTICATE, POP3 AUTH and SMTP AUTH all
// carry SASL the same way — base64 lines, "*" to cancel — so Exchange drives any mechanism
// for any of them; each protocol sends the lines and reads the replies.
//
//   auto name = sasl::choose_mechanism(server_mechs, sasl::CredentialKind::kToken, {});
//   auto mech = sasl::make_mechanism(*name, creds);
//   sasl::Exchange ex(**mech);
//   send("AUTHENTICATE " + ex.name() + (ir ? " " + *ir : ""));   // ir = ex.initial_response()
//   on "+ <text>":  auto reply = ex.answer(text); send(reply->line);
//   on the final reply: MB_RETURN_IF_ERROR(ex.failure()); then map the server's NO as usual.
//
// No message built here holds a secret: errors name the mechanism and the user, never the
// password or token, and server text quoted in them is scrubbed.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
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
  // Mechanisms the configuration allows; empty: all we implement. Strength still decides.
  std::vector<std::string> allowed;
  bool tls = true;                // the connection is encrypted
  bool plaintext_allowed = false;  // security = none was configured explicitly
};

// The strongest mechanism both sides support for this kind of credential: for a token
// OAUTHBEARER > XOAUTH2, for a password PLAIN > LOGIN (password mechanisms only over TLS
// unless prefs.plaintext_allowed). Otherwise kConfig explaining why: the server offers no
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

}  // namespace mb::sasl
