// File: tests/unit/connectors/pop3/pop3_test_util.h — scripted POP3 servers for the unit
// tests: a transcript builder (server lines, expected client lines) and a Stream the test
// can keep reading after the client dropped it.
#pragma once

#include <memory>
#include <string>
#include <utility>

#include "auth/base64.h"
#include "auth/sasl.h"
#include "core/line.h"
#include "core/net.h"

namespace mb::pop3::testing {

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
  // A multi-line +OK answer whose lines are sent as given (already stuffed), then ".".
  Script& multi(const std::string& first, const std::vector<std::string>& lines) {
    S(first);
    for (const auto& l : lines) S(l);
    return S(".");
  }
};

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

inline std::string plain_ir(const std::string& user, const std::string& password) {
  return base64_encode(sasl::plain_message("", user, password));
}

inline constexpr const char* kGreeting = "+OK Dovecot ready. <1896.697170952@dbc.mtview.ca.us>";

}  // namespace mb::pop3::testing
