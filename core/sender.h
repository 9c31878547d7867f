// File: core/sender.h — the one interface every mail-sending connector implements: SMTP
// and Graph sendMail today, EWS CreateItem when that connector lands.
//
// A Sender takes a message already composed (core/compose: headers, tracking cookie,
// Message-ID, CRLF line endings) and its envelope, and hands it to the server. It knows
// nothing of tickets or the outbox: retrying, backoff and parking are core/outbox's job,
// which decides from the Status kind whether a failure is worth another attempt
// (is_permanent_send_failure).
//
// Threading: a Sender is used by one thread at a time; it may keep its connection open
// between send() calls (SMTP RSET between messages) unless configured not to.
//
//   auto sender = mb::make_sender(cfg.senders[0], cfg, auth);   // connectors/registry.h
//   auto sent = (*sender)->send({.envelope = {from, {to}}, .raw = mime, .on_handed_over = {}});
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "core/mailbox.h"  // ConnectionReport, StepReport
#include "core/status.h"

namespace mb {

struct Envelope {
  std::string from;                     // bare addr-spec (SMTP MAIL FROM)
  std::vector<std::string> recipients;  // bare addr-specs (RCPT TO), To + Cc + Bcc
};

struct SendResult;

struct OutgoingMail {
  std::string id;                       // the outbox id, for logs ("" outside the outbox)
  Envelope envelope;
  std::string raw;                      // RFC 5322 bytes, CRLF line endings
  // Called once the step that hands the message over for good has been written to the
  // server (SMTP: the "." that ends DATA; Graph: the whole sendMail or draft /send request)
  // and before its answer is read; `so_far` holds the recipients' answers known then. From
  // here the server may keep the message whatever happens to us, so the outbox records the
  // moment (docs/reliability.md). It may run on another thread than send()'s while send()
  // waits (Graph: the HTTP client's I/O thread).
  std::function<void(const SendResult& so_far)> on_handed_over;
};

// What the server said of one recipient.
struct RecipientResult {
  std::string address;
  bool accepted = false;
  bool permanent = false;               // refused for good (SMTP 5xx); else retry later
  std::string reply;                    // the server's words, e.g. "550 5.1.1 no such user"
};

struct SendResult {
  std::vector<RecipientResult> recipients;  // in envelope order
  // The server's id of the accepted message where it gives one (SMTP "queued as", Graph
  // request-id), for the log and `outbox list`.
  std::string server_id;
  // Accepted for delivery but not yet delivered (Graph answers 202 Accepted): recorded so,
  // never reported as "delivered".
  bool queued_only = false;
};

class Sender {
 public:
  virtual ~Sender() = default;

  // Connects if needed, signs in, and sends `mail`. OK when the server took the message
  // for at least one recipient (the others are in SendResult::recipients, refused). An
  // error when no recipient accepted it or the transaction failed; its kind says whether
  // to retry (is_permanent_send_failure).
  virtual Result<SendResult> send(const OutgoingMail& mail) = 0;

  // resolve, connect, tls, sign-in (and for Graph the mailbox) — no message is sent.
  virtual ConnectionReport test_connection() = 0;

  // Ends the session (SMTP QUIT) and closes the connection; safe to call more than once.
  virtual void close() = 0;
};

// Whether a failed send() is the server's own refusal (SMTP 4xx/5xx: kThrottled, kRejected;
// Graph 429/503: kThrottled, 400: kRejected, 401/403: kAuth, 404: kConfig, 413:
// kInvalidInput), as opposed to a lost connection, a time-out, a garbled reply or a Graph
// 500/502/504 (kNetwork, kProtocol, kTls, kInternal). After on_handed_over, only a refusal
// says the message was not kept; anything else leaves it in doubt.
inline bool is_server_answer(const Status& status) {
  switch (status.kind()) {
    case ErrorKind::kRejected:
    case ErrorKind::kThrottled:
    case ErrorKind::kAuth:
    case ErrorKind::kNotFound:
    case ErrorKind::kConfig:
    case ErrorKind::kInvalidInput:
    case ErrorKind::kTooLarge:
      return true;
    default:
      return false;
  }
}

// A failure no retry will cure: the server refused the message or every recipient for good
// (kRejected: SMTP 5xx, Graph 400) or the message itself is unusable (kInvalidInput,
// kConfig). Everything else — kNetwork, kThrottled (SMTP 4xx, Graph 429/503), kProtocol,
// kTls, kAuth — is retried with backoff until the outbox's attempt limit parks it.
inline bool is_permanent_send_failure(const Status& status) {
  switch (status.kind()) {
    case ErrorKind::kRejected:
    case ErrorKind::kInvalidInput:
    case ErrorKind::kConfig:
      return true;
    default:
      return false;
  }
}

}  // namespace mb
