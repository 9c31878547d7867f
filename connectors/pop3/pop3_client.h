// File: connectors/pop3/pop3_client.h — a POP3 client (RFC 1939; CAPA and response codes of
// RFC 2449, STLS of RFC 2595, AUTH of RFC 5034, codes of RFC 3206) on the shared line layer.
//
// One function per command, blocking request/response over a LineChannel, an explicit
// state. Replies map to Status kinds:
//   unparsable reply (neither +OK nor -ERR) → kProtocol, scope kConnection, bytes shown safely
//   -ERR [AUTH], or any -ERR to PASS/AUTH  → kAuth (counts toward the auth-failure alert)
//   -ERR [IN-USE] / [LOGIN-DELAY] / [SYS/TEMP] → kThrottled with retry_after (retry later)
//   -ERR [SYS/PERM]                         → kRejected, scope kMailbox
//   other -ERR                              → kRejected (the connection is fine)
//   connection lost                         → kNetwork, scope kConnection
// Multi-line answers (UIDL, LIST, RETR, TOP, CAPA) end with "." and are dot-unstuffed.
// Every line is traced at spdlog trace level with PASS and AUTH payloads <redacted>;
// message bodies are never traced.
//
//   pop3::Client c(options);
//   MB_RETURN_IF_ERROR(c.connect(std::move(stream)));
//   auto how = c.sign_in(creds);
//   auto uidl = c.uidl();
//   std::string body; MB_RETURN_IF_ERROR(c.retr(1, body));
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "auth/sasl.h"
#include "connectors/line_client.h"
#include "core/config.h"
#include "core/line.h"
#include "core/net.h"
#include "core/status.h"

namespace mb::pop3 {

enum class State { kDisconnected, kAuthorization, kTransaction, kClosed };
const char* to_string(State s);

// host, tls, timeouts, label, trace and allow_plaintext_auth: connectors/line_client.h.
struct ClientOptions : LineClientOptions {
  // A larger message is not kept: retr() reads and drops the rest (up to
  // LineChannel::kMaxDrain more bytes, else it closes the connection) and returns kTooLarge
  // (scope kMessage).
  uint64_t max_message_bytes = 50ull << 20;
  // Longest status or listing line accepted; longer is kProtocol. Lines of a message body
  // (RETR, TOP) may be as long as max_message_bytes.
  size_t max_line = 1u << 20;
};

// A status line: "+OK text" or "-ERR [CODE] text".
struct Reply {
  bool ok = false;
  std::string code;  // the RFC 2449 response code, upper case, without brackets
  std::string text;  // the rest, code removed
};

// Parses a status line; kProtocol (scope kConnection) for anything else, the bytes quoted
// with non-printable characters shown as '?' and cut to 200 characters.
Result<Reply> parse_reply(std::string_view line);

// The Status for a -ERR to `what` ("RETR 3"): see the table above. `login_delay` is the
// LOGIN-DELAY capability's value when the server announced one.
Status err_status(const Reply& r, const std::string& what,
                  std::optional<std::chrono::seconds> login_delay = std::nullopt);

// Dot-unstuffing of one line of a multi-line answer: ".." → ".". nullopt for the
// terminating ".".
std::optional<std::string_view> unstuff(std::string_view line);

struct MaildropStat {
  uint64_t count = 0;
  uint64_t octets = 0;
};

struct UidlEntry {
  uint32_t number = 0;
  std::string uid;
};

struct ListEntry {
  uint32_t number = 0;
  uint64_t octets = 0;
};

class Client : public LineClient {
 public:
  explicit Client(ClientOptions options);
  ~Client();

  // Takes a connected stream (TLS already up for implicit TLS) and reads the greeting (its
  // APOP timestamp is ignored). A -ERR greeting is kNetwork, or what its code says.
  Status connect(std::unique_ptr<Stream> stream);
  // CAPA. A server without CAPA (-ERR) has no capabilities; that is not an error.
  Status capa();
  // STLS; kTls when the server does not offer it — never going on in plaintext.
  Status stls();
  Status user_pass(const std::string& user, const std::string& password);
  // AUTH with any SASL mechanism: the initial response on the command line when the line
  // stays within RFC 5034's 255 octets, else after the server's first "+" (Exchange
  // Online's XOAUTH2 form). Each further "+" challenge goes to the mechanism.
  Status authenticate(sasl::Mechanism& mechanism, const sasl::Credentials& creds);
  // Signs in with a password (SASL PLAIN when offered, else USER/PASS) or a token (XOAUTH2,
  // else OAUTHBEARER, in the one order of auth/sasl.h; XOAUTH2 when the server lists no token
  // mechanism): sasl::choose_mechanism(kPop3). Returns how, for test-connection
  // ("USER/PASS", "AUTH PLAIN", "AUTH XOAUTH2").
  Result<std::string> sign_in(const sasl::Credentials& creds);

  Result<MaildropStat> stat();
  // UIDL for every message; kRejected when the server does not support it.
  Result<std::vector<UidlEntry>> uidl();
  Result<std::vector<ListEntry>> list();
  // RETR n into `out` (replaced), dot-unstuffed with CRLF line ends. `size_hint` (from
  // LIST) reserves memory up front. Each command and its whole answer must be over within
  // timeouts.response plus the time its bytes take at LineChannel::kMinRate.
  Status retr(uint32_t number, std::string& out, uint64_t size_hint = 0);
  // RETR of several messages, pipelined when the server offers PIPELINING. `sink` gets each
  // answer in order: the body, or the -ERR as a kMessage-scoped error. A non-OK from `sink`
  // stops the deliveries (the answers already asked for are still read) and is returned.
  using RetrSink = std::function<Status(size_t index, Result<std::string> body)>;
  Status retr_many(const std::vector<uint32_t>& numbers, const RetrSink& sink);
  // TOP n lines: the headers (and `lines` body lines).
  Result<std::string> top(uint32_t number, uint32_t lines);
  Status dele(uint32_t number);
  Status rset();
  Status noop();
  // QUIT: in the TRANSACTION state the server deletes what DELE marked (UPDATE state) and
  // only its +OK says it did. The connection is closed afterwards, whatever the outcome.
  Status quit();
  // Drops the connection without QUIT: nothing marked by DELE is deleted.
  void close();

  State state() const { return state_; }
  // Case-insensitive; "SASL" capability arguments are in sasl_mechanisms().
  bool has_capability(const std::string& name) const;
  bool capa_supported() const { return capa_supported_; }
  const std::vector<std::string>& capabilities() const { return capa_lines_; }
  const std::vector<std::string>& sasl_mechanisms() const { return sasl_; }
  std::optional<std::chrono::seconds> login_delay() const { return login_delay_; }

 private:
  friend struct ClientTestPeer;  // tests/unit: states no call sequence reaches today
  struct Quiet;
  struct SecretInTrace;
  class SaslLink;
  Result<Reply> command(const std::string& line, const std::string& what,
                        size_t secret_from = std::string::npos,
                        size_t secret_len = std::string::npos);
  Result<Reply> read_reply(const std::string& what);
  Status read_retr(const Reply& r, uint32_t number, std::string& out, uint64_t size_hint = 0);
  Status read_body(const std::string& what, std::string& out, uint64_t& total);
  // Reads the body of a multi-line answer, calling `on_line` with each unstuffed line.
  Status read_multiline(const std::string& what,
                        const std::function<Status(std::string_view)>& on_line);
  Status simple(const std::string& line, const std::string& what);
  Status require(State s, const char* command) const;
  Status fail(Status s);
  Status plaintext_refused(const std::string& what) const;
  Status auth_failed(const Reply& r, const sasl::Credentials& creds, const std::string& what);
  void note_capabilities(const std::vector<std::string>& lines);

  ClientOptions options_;
  State state_ = State::kDisconnected;
  bool capa_supported_ = false;
  bool capa_asked_ = false;  // CAPA was sent on this connection (since STLS)
  std::vector<std::string> capa_lines_;
  std::set<std::string> caps_;  // first word of each CAPA line, upper case
  std::vector<std::string> sasl_;
  std::optional<std::chrono::seconds> login_delay_;
  bool quiet_body_ = false;   // a RETR/TOP answer is being read
  size_t body_traced_ = 0;    // bytes of it kept out of the trace
  std::string trace_secret_;  // the secret being sent, hidden from traced server lines
};

}  // namespace mb::pop3
