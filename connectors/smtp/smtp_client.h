// File: connectors/smtp/smtp_client.h — an SMTP client (RFC 5321) on the shared line layer:
// greeting, EHLO (HELO fallback), STARTTLS (RFC 3207), AUTH with any SASL mechanism
// (RFC 4954), and one mail transaction at a time with SIZE (RFC 1870), PIPELINING
// (RFC 2920), 8BITMIME (RFC 6152) and SMTPUTF8 (RFC 6531), dot-stuffing streamed.
//
// Replies map to a Status by their class, the server's words (enhanced status code
// included) kept in the message:
//   5xx                → kRejected (permanent), scope kMessage
//   4xx                → kThrottled (transient), scope kMessage; 421 scope kConnection
//   5xx to AUTH        → kAuth;  4xx to AUTH → kThrottled
//   connection dropped → kNetwork, scope kConnection;  unparsable reply → kProtocol
// Every line is traced at spdlog trace level; AUTH payloads show as <redacted>, the message
// body only as its size.
//
//   smtp::Client c(options);
//   MB_RETURN_IF_ERROR(c.connect(std::move(stream)));   // greeting + EHLO
//   MB_RETURN_IF_ERROR(c.starttls());                   // + EHLO again
//   MB_RETURN_IF_ERROR(c.sign_in(creds).status());
//   auto sent = c.send(envelope, raw, /*rset_first=*/false);
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "auth/sasl.h"
#include "connectors/line_client.h"
#include "core/config.h"
#include "core/line.h"
#include "core/net.h"
#include "core/sender.h"
#include "core/status.h"

namespace mb::smtp {

// One reply, single- or multi-line ("250-a", "250 b" → code 250, lines {"a", "b"}).
struct Reply {
  int code = 0;
  std::vector<std::string> lines;  // the text after "ddd-" / "ddd " of each line

  // "550 5.1.1 no such user" (continuation lines joined with "; ").
  std::string text() const;
  // "5.1.1" when the first line opens with an enhanced status code (RFC 3463), else "".
  std::string enhanced() const;
  bool positive() const { return code >= 200 && code < 400; }
};

// One line of a reply: its code, whether more lines follow, and its text. nullopt when the
// line is not "ddd", "ddd text" or "ddd-text" with ddd in 200–599.
struct ReplyLine {
  int code = 0;
  bool last = true;
  std::string text;
};
std::optional<ReplyLine> parse_reply_line(std::string_view line);

// What EHLO said the server supports, keywords upper-cased ("SIZE" → "10485760").
struct Extensions {
  bool esmtp = false;                       // EHLO answered (HELO fallback: false)
  std::map<std::string, std::string> keywords;

  bool has(const std::string& keyword) const;
  // SIZE's limit in bytes; 0 when not offered or no limit given.
  uint64_t size_limit() const;
  std::vector<std::string> auth_mechanisms() const;
  // "PIPELINING 8BITMIME SIZE=10485760 AUTH=PLAIN,LOGIN" — for test-connection.
  std::string describe() const;
};
Extensions parse_ehlo(const Reply& reply);

// What a message needs from the server.
struct MessageNeeds {
  bool eight_bit = false;  // any byte >= 0x80 in the message: BODY=8BITMIME
  bool smtputf8 = false;   // a non-ASCII address or header: SMTPUTF8
  bool utf8_address = false;  // a non-ASCII envelope address: SMTPUTF8 is indispensable
};
MessageNeeds analyze(const Envelope& envelope, std::string_view raw);

// Why the message cannot go to a server with `ext` (kRejected: permanent, or kInvalidInput
// for a message the server will never take), or OK.
Status check_fit(const MessageNeeds& needs, uint64_t size, const Extensions& ext,
                 const std::string& server);

// "MAIL FROM:<a@b> SIZE=123 BODY=8BITMIME SMTPUTF8".
std::string mail_command(const std::string& from, uint64_t size, const MessageNeeds& needs,
                         const Extensions& ext);

// An envelope address fit for MAIL FROM/RCPT TO: no CR, LF, NUL, '<', '>' or space; kInvalidInput
// otherwise. `from` may be empty (the null reverse-path "<>").
Status check_address(const std::string& address, bool allow_empty);

// Dot-stuffs a message chunk by chunk (RFC 5321 §4.5.2): a '.' opening a line gets another,
// bare LF or CR become CRLF, and finish() ends the text with CRLF "." CRLF.
class DotStuffer {
 public:
  void feed(std::string_view chunk, std::string& out);
  void finish(std::string& out);

 private:
  bool line_start_ = true;
  bool after_cr_ = false;
};

// The server's id of an accepted message from the reply to the final dot: what follows
// "queued as" (Postfix, Exim, smtp-server), or "" when the reply has no such phrase.
std::string queued_id(const Reply& reply);

// host, tls, timeouts, label, trace and allow_plaintext_auth: connectors/line_client.h.
struct ClientOptions : LineClientOptions {
  std::string helo_name;  // our name in EHLO/HELO
};

// How far the last send() got, so the Sender knows whether a failure is safe to repeat on a
// new connection (nothing after RSET was answered) or what the server refused.
// kEnd: the end of the data has been written; only the server's answer is awaited.
enum class Stage { kNone, kRset, kMail, kRcpt, kData, kBody, kEnd, kDone };

// Called when the end of the data has been written (OutgoingMail::on_handed_over).
using HandedOver = std::function<void(const SendResult& so_far)>;

class Client : public LineClient {
 public:
  explicit Client(ClientOptions options);
  ~Client();

  // Takes a connected stream (TLS already up for implicit TLS), reads the greeting and
  // says EHLO (HELO when EHLO is refused).
  Status connect(std::unique_ptr<Stream> stream);
  Status ehlo();
  // STARTTLS and EHLO again; kTls when the server does not offer it — never plaintext.
  Status starttls();
  // AUTH with one SASL mechanism: the initial response on the command line when the
  // mechanism has one, each 334 challenge to the mechanism, "*" to cancel.
  Status authenticate(sasl::Mechanism& mechanism, const sasl::Credentials& creds);
  // The first mechanism both sides support in the one order of auth/sasl.h (XOAUTH2 first for
  // a token); returns its name.
  Result<std::string> sign_in(const sasl::Credentials& creds);
  // One transaction: [RSET] MAIL, RCPT for each recipient, DATA, the dot-stuffed message —
  // in one flight when the server offers PIPELINING. OK when at least one recipient took
  // the message; the per-recipient answers are in the result.
  // `on_handed_over` is called once the end of the data is written, before its answer.
  Result<SendResult> send(const Envelope& envelope, std::string_view raw, bool rset_first,
                          HandedOver on_handed_over = {});
  Status rset();
  Status noop();
  // QUIT (its answer is not waited for long) and close.
  void quit();
  void close();

  bool connected() const { return channel_ != nullptr; }
  const Extensions& extensions() const { return ext_; }
  const std::string& greeting() const { return greeting_; }
  int transactions() const { return transactions_; }  // MAIL commands on this connection
  Stage stage() const { return stage_; }               // of the last send()
  int mail_reply_code() const { return mail_code_; }   // of the last send(); 0 if none
  const std::string& mechanism() const { return mechanism_; }

 private:
  Result<Reply> read_reply();
  Status write_line(const std::string& line, size_t secret_from = std::string::npos);
  Result<Reply> command(const std::string& line);
  void begin_step(const std::string& what);
  Status fail(Status s);
  Status refused(const Reply& r, const std::string& what, Stage stage);
  class SaslLink;
  Result<SendResult> send_pipelined(const Envelope& env, std::string_view raw, bool rset_first,
                                    const std::string& mail);
  Result<SendResult> send_stepwise(const Envelope& env, std::string_view raw, bool rset_first,
                                   const std::string& mail);
  Status send_body(std::string_view raw);
  Result<SendResult> finish_data(SendResult result, std::string_view raw);
  Status none_accepted(const SendResult& result) const;
  std::string who() const { return "SMTP server " + options_.host; }

  ClientOptions options_;
  Extensions ext_;
  std::string greeting_;
  std::string mechanism_;
  int transactions_ = 0;
  Stage stage_ = Stage::kNone;
  int mail_code_ = 0;
  HandedOver on_handed_over_;
};

}  // namespace mb::smtp
