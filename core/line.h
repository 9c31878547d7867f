// File: core/line.h — the line-protocol layer shared by IMAP, POP3 and SMTP.
//
// LineChannel owns the receive buffer over a Stream: it reads CRLF-terminated lines with a
// bounded length, reads exactly N bytes (IMAP literals, streamed in chunks into the
// caller's string), writes commands, and upgrades to TLS (STARTTLS) after checking that the
// server sent nothing beyond its STARTTLS reply (a plaintext-injection attack, as in curl's
// test981). Each protocol adds only its grammar and states on top.
//
// Protocol tracing goes through a redacting hook: the protocol says which part of an
// outgoing line is secret (LOGIN password, AUTHENTICATE payload) and the trace shows
// "<redacted>" in its place.
//
//   LineChannel ch(std::move(stream));
//   MB_RETURN_IF_ERROR(ch.write_line("a1 CAPABILITY"));
//   auto line = ch.read_line();
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "core/net.h"
#include "core/status.h"

namespace mb {

class LineChannel {
 public:
  // Longest accepted line, CRLF excluded; longer lines are a kProtocol error.
  static constexpr size_t kDefaultMaxLine = 64 * 1024;

  explicit LineChannel(std::unique_ptr<Stream> stream, size_t max_line = kDefaultMaxLine);

  // Reads one line and returns it without the CRLF (a bare LF is accepted as end of line).
  Result<std::string> read_line();
  // Appends exactly n bytes to `out` (reads in chunks; reserves n up front).
  Status read_exact(size_t n, std::string& out);
  // Writes `line` + CRLF. `secret_from`/`secret_len` mark a secret part for the trace.
  Status write_line(std::string_view line, size_t secret_from = std::string_view::npos,
                    size_t secret_len = std::string_view::npos);
  // Writes raw bytes as they are (already CRLF-terminated), never traced in full.
  Status write_raw(std::string_view data);

  // TLS upgrade. Fails with kProtocol if bytes were buffered past the STARTTLS reply.
  Status start_tls(const std::string& host, const TlsOptions& options);

  void set_timeout(std::chrono::milliseconds t);
  bool buffered() const { return pos_ < end_; }
  Stream& stream() { return *stream_; }
  void close();

  // Receives "C: ..." and "S: ..." lines (secrets already redacted). Default: none.
  void set_trace(std::function<void(const std::string&)> trace) { trace_ = std::move(trace); }

 private:
  Status fill();

  std::unique_ptr<Stream> stream_;
  size_t max_line_;
  std::string buf_;  // storage; the unread bytes are [pos_, end_)
  size_t pos_ = 0;
  size_t end_ = 0;
  std::function<void(const std::string&)> trace_;
};

// An in-memory Stream for tests: serves `script` as the server's bytes, records what the
// client wrote. When the script runs out, read_some fails with kNetwork ("connection
// closed by server").
class ScriptedStream : public Stream {
 public:
  explicit ScriptedStream(std::string server_bytes) : in_(std::move(server_bytes)) {}
  Result<size_t> read_some(char* buf, size_t cap) override;
  Status write_all(std::string_view data) override;
  void set_timeout(std::chrono::milliseconds) override {}
  Status start_tls(const std::string&, const TlsOptions&) override;
  bool is_tls() const override { return tls_; }
  std::string tls_summary() const override { return tls_ ? "scripted TLS" : ""; }
  void close() override { closed_ = true; }

  const std::string& written() const { return out_; }
  // Bytes served per read_some call (1 exercises byte-at-a-time parsing).
  void set_chunk(size_t n) { chunk_ = n; }

 private:
  std::string in_;
  size_t pos_ = 0;
  size_t chunk_ = 4096;
  std::string out_;
  bool tls_ = false;
  bool closed_ = false;
};

}  // namespace mb
