// File: core/status.h — Status and Result<T>: mailbridge's error values.
//
// Every fallible operation returns a [[nodiscard]] Status or Result<T>. An error carries a
// kind that tells the caller how to recover, a scope (what is broken: one message, one
// mailbox, or the connection), and a message fit for an administrator. Secrets never go
// into a message (see auth/secrets.h for redaction).
//
//   mb::Result<int> parse_port(std::string_view s);
//   auto r = parse_port("993");
//   if (!r.ok()) return r.status();
//   int port = *r;
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace mb {

// ErrorKind says how to recover. Keep every switch over it with a default: branch.
enum class ErrorKind {
  kOk = 0,
  // The credentials were refused (wrong password, revoked grant, AUTHENTICATIONFAILED).
  // Do not retry until reconfigured; counts toward the auth-failure alert.
  kAuth,
  // Connection refused or dropped, DNS failure, timeout. Transient: retry later with backoff.
  // Never counts as an authentication failure.
  kNetwork,
  // TLS handshake or certificate verification failed. `sync` reports it (exit 4); the
  // service retries it on the capped network backoff (a server certificate gets renewed).
  kTls,
  // The peer broke the protocol (unparsable or unexpected reply). Drop the connection;
  // retry later.
  kProtocol,
  // The server refused one command (IMAP NO/BAD, POP3 -ERR) and the connection is fine.
  kRejected,
  // The server asked us to slow down; retry after Status::retry_after().
  kThrottled,
  // The thing named (folder, message, ticket) does not exist.
  kNotFound,
  // The configuration is invalid; fix it and restart. CLI exit code 2.
  kConfig,
  // Input data (a message, a file) is malformed. Skip that input; keep going.
  kInvalidInput,
  // A message is over the configured size limit (`[ingest] max_message_bytes`). Not
  // retried: the message is recorded once as skipped "too-large" and left on the server.
  kTooLarge,
  // A bug or a local resource failure (disk full, SQLite error).
  kInternal,
  // The store was busy: SQLite said BUSY or LOCKED (another process held the write lock past
  // the busy time-out), or this process's writer queue of the store file (the writer gate,
  // core/internal/writer_gate.h) gave no turn within its wait. Local and transient: retry
  // soon (the service's backoff), never counted against the server. CLI exit code 1.
  kBusy,
  // A wait was woken by the service (core/cancel.h: shutdown, or a reload that stops this
  // mailbox's worker). Not a failure of the server: nothing is recorded, nothing counts;
  // the work is taken up again on the next start.
  kCancelled,
};

// Scope says what an error makes unusable, so that one bad message does not stall its
// mailbox and one failing mailbox does not stall the others.
enum class ErrorScope {
  kNone = 0,
  kMessage,     // only this message; go on with the next one
  kMailbox,     // this mailbox for this run; the connection may be reused for others
  kConnection,  // the connection is gone; reconnect before anything else
};

const char* to_string(ErrorKind kind);

class [[nodiscard]] Status {
 public:
  Status() = default;  // OK
  Status(ErrorKind kind, std::string message, ErrorScope scope = ErrorScope::kNone)
      : kind_(kind), scope_(scope), message_(std::move(message)) {}

  static Status Ok() { return Status(); }

  bool ok() const { return kind_ == ErrorKind::kOk; }
  ErrorKind kind() const { return kind_; }
  ErrorScope scope() const { return scope_; }
  const std::string& message() const { return message_; }
  std::optional<std::chrono::seconds> retry_after() const { return retry_after_; }

  Status& with_scope(ErrorScope s) & { scope_ = s; return *this; }
  Status&& with_scope(ErrorScope s) && { scope_ = s; return std::move(*this); }
  Status& with_retry_after(std::chrono::seconds s) & { retry_after_ = s; return *this; }
  Status&& with_retry_after(std::chrono::seconds s) && { retry_after_ = s; return std::move(*this); }
  // Prefixes context: Status(kNetwork,"timed out").prefixed("IMAP LOGIN") → "IMAP LOGIN: timed out".
  Status prefixed(const std::string& context) const;

  // "auth: <message>" — for logs and tests.
  std::string to_string() const;

  // Explicitly drop a status whose failure does not matter (e.g. LOGOUT on a dead link).
  void ignore() const {}

 private:
  ErrorKind kind_ = ErrorKind::kOk;
  ErrorScope scope_ = ErrorScope::kNone;
  std::string message_;
  std::optional<std::chrono::seconds> retry_after_;
};

// Failures that end the connection (ErrorScope::kConnection): the transport's, and a peer's
// violation of its protocol. Every client of a connection builds its errors from these.
inline Status network_error(std::string message) {
  return Status(ErrorKind::kNetwork, std::move(message), ErrorScope::kConnection);
}
inline Status protocol_violation(std::string message) {
  return Status(ErrorKind::kProtocol, std::move(message), ErrorScope::kConnection);
}

// Result<T> holds a T or a non-OK Status. Built from an OK Status (a bug: there is no value
// to hold), it holds a kInternal error saying so, never an "OK" without a value.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit on purpose
  Result(Status status)  // NOLINT: implicit on purpose
      : v_(status.ok() ? Status(ErrorKind::kInternal,
                                "internal error: a Result was built from an OK Status "
                                "without a value")
                       : std::move(status)) {}

  bool ok() const { return std::holds_alternative<T>(v_); }
  const Status& status() const {
    static const Status kOk;
    return ok() ? kOk : std::get<Status>(v_);
  }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace mb

// MB_RETURN_IF_ERROR(expr): returns the Status of expr when it is not OK.
#define MB_RETURN_IF_ERROR(expr)               \
  do {                                         \
    ::mb::Status mb_status_ = (expr);          \
    if (!mb_status_.ok()) return mb_status_;   \
  } while (0)
