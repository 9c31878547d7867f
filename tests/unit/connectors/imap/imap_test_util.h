// File: tests/unit/connectors/imap/imap_test_util.h — scripted-server helpers for the IMAP
// tests: a transcript builder (server lines, expected client lines) and a Stream that lets
// the test keep reading what the client wrote after the client dropped its stream.
#pragma once

#include <memory>
#include <string>
#include <utility>

#include "auth/base64.h"
#include "auth/sasl.h"
#include "core/line.h"
#include "core/net.h"

namespace mb::imap::testing {

// A scripted exchange: S() adds a server line, C() an expected client line, Literal() a
// server literal body (its "{N}" goes on the line before: see LiteralHeader()).
struct Script {
  std::string server;
  std::string client;

  Script& S(const std::string& line) {
    server += line + "\r\n";
    return *this;
  }
  Script& C(const std::string& line) {
    client += line + "\r\n";
    return *this;
  }
  Script& raw_client(const std::string& bytes) {
    client += bytes;
    return *this;
  }
  // "* 1 FETCH (UID 7 RFC822.SIZE N)": a line of the size check uid_fetch() sends first.
  Script& size(uint64_t seq, uint32_t uid, uint64_t bytes) {
    return S("* " + std::to_string(seq) + " FETCH (UID " + std::to_string(uid) +
             " RFC822.SIZE " + std::to_string(bytes) + ")");
  }
  // "* 1 FETCH (UID 7 BODY[] {N}" + CRLF + body + rest + CRLF.
  Script& fetch(uint64_t seq, uint32_t uid, const std::string& body) {
    server += "* " + std::to_string(seq) + " FETCH (UID " + std::to_string(uid) + " BODY[] {" +
              std::to_string(body.size()) + "}\r\n" + body + ")\r\n";
    return *this;
  }
};

// Forwards to a ScriptedStream the test still holds.
class SharedStream : public Stream {
 public:
  explicit SharedStream(std::shared_ptr<ScriptedStream> s) : s_(std::move(s)) {}
  Result<size_t> read_some(char* buf, size_t cap) override { return s_->read_some(buf, cap); }
  Status write_all(std::string_view data) override { return s_->write_all(data); }
  void set_timeout(std::chrono::milliseconds t) override { s_->set_timeout(t); }
  void set_deadline(std::optional<std::chrono::steady_clock::time_point> at) override {
    s_->set_deadline(at);
  }
  Status start_tls(const std::string& host, const TlsOptions& o) override {
    return s_->start_tls(host, o);
  }
  bool is_tls() const override { return s_->is_tls(); }
  std::string tls_summary() const override { return s_->tls_summary(); }
  void close() override { s_->close(); }

 private:
  std::shared_ptr<ScriptedStream> s_;
};

inline std::shared_ptr<ScriptedStream> scripted(const Script& script, size_t chunk = 4096) {
  auto s = std::make_shared<ScriptedStream>(script.server);
  s->set_chunk(chunk);
  return s;
}

// The base64 SASL PLAIN initial response for user/password, as the client must send it.
inline std::string plain_ir(const std::string& user, const std::string& password) {
  return base64_encode(sasl::plain_message("", user, password));
}

// A Dovecot-like greeting and the capabilities it advertises after login.
inline constexpr const char* kGreeting =
    "* OK [CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ AUTH=PLAIN] "
    "Dovecot ready.";
inline constexpr const char* kPostLoginCaps =
    "[CAPABILITY IMAP4rev1 SASL-IR ID ENABLE IDLE SORT UIDPLUS MOVE LITERAL+]";

}  // namespace mb::imap::testing
