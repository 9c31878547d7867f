// File: core/line.h — the line-protocol layer shared by IMAP, POP3 and SMTP.
//
// LineChannel owns the receive buffer over a Stream: it reads CRLF-terminated lines with a
// bounded length, reads exactly N bytes (IMAP literals, streamed in chunks into the
// caller's string), writes commands, and upgrades to TLS (STARTTLS) after checking that the
// server sent nothing beyond its STARTTLS reply (a plaintext-injection attack, as in curl's
// test981). Each protocol adds only its grammar and states on top.
//
// Every step of a protocol (the greeting; one command and its whole answer) runs under a
// deadline (begin_step): its budget plus the time its bytes take at kMinRate, so a server
// that trickles bytes or streams without end cannot hold a connection open for ever.
//
// Protocol tracing goes through a redacting hook: the protocol says which part of an
// outgoing line is secret (LOGIN password, AUTHENTICATE payload) and the trace shows
// "<redacted>" in its place.
//
//   LineChannel ch(std::move(stream));
//   MB_RETURN_IF_ERROR(ch.write_line("a1 CAPABILITY"));
//   auto line = ch.read_line();
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
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

  // The floor on throughput within a step: every byte read or written extends the step's
  // deadline by 1/kMinRate s (a 50 MB body gets 800 s on top of the budget). Slower than
  // this, a transfer counts as stalled.
  static constexpr uint64_t kMinRate = 64 * 1024;
  // A body over its size limit is read and dropped up to this many bytes past the limit, so
  // that the session stays usable; a longer one closes the connection instead.
  static constexpr uint64_t kMaxDrain = 16ull << 20;

  explicit LineChannel(std::unique_ptr<Stream> stream, size_t max_line = kDefaultMaxLine);

  // Starts a step that must be over within `budget` plus the time its bytes take at
  // kMinRate. Past that deadline every read and write fails with kNetwork (scope
  // kConnection) "timed out waiting for <what> after <budget>" — <what> such as "the
  // greeting" or "the answer to UID FETCH". The per-read timeout (set_timeout) still limits
  // silence within the step.
  void begin_step(std::string what, std::chrono::milliseconds budget);
  // Ends the step: no deadline until the next begin_step.
  void end_step();
  // Bytes read and written since begin_step.
  uint64_t step_bytes() const { return step_bytes_; }

  // Reads one line and returns it without the CRLF (a bare LF is accepted as end of line).
  Result<std::string> read_line();
  // One line appended to `out` as it arrives, so that a long line is never held twice: the
  // first `keep` bytes of it are appended, the rest read and dropped. kProtocol when the
  // line passes `max` bytes without ending.
  struct LineInfo {
    uint64_t size = 0;  // the whole line, line end excluded
    char first = 0;     // its first byte (0 for an empty line), kept or not
  };
  Result<LineInfo> read_line_into(std::string& out, uint64_t keep, uint64_t max);
  // Appends exactly n bytes to `out` (reads in chunks; reserves n up front).
  Status read_exact(size_t n, std::string& out);
  // Reads n bytes and drops them, holding no more than one buffer at a time.
  Status skip(uint64_t n);
  // Writes `line` + CRLF. `secret_from`/`secret_len` mark a secret part for the trace.
  Status write_line(std::string_view line, size_t secret_from = std::string_view::npos,
                    size_t secret_len = std::string_view::npos);
  // Writes raw bytes as they are (already CRLF-terminated), never traced in full.
  Status write_raw(std::string_view data);

  // TLS upgrade. Fails with kTls (scope kConnection) if bytes were buffered past the
  // STARTTLS reply.
  Status start_tls(const std::string& host, const TlsOptions& options);

  // Frees the receive buffer when it holds no unread bytes (else does nothing), and starts
  // the next read at the smallest chunk again: for a connection about to wait long for a
  // short line (IMAP IDLE), which then holds a few KiB instead of up to a line's maximum.
  void release_buffer();
  // Bytes of receive buffer held now (tests).
  size_t buffer_size() const { return buf_.size(); }

  // The per-read and per-write limit on silence (also within a step).
  void set_timeout(std::chrono::milliseconds t);
  bool buffered() const { return pos_ < end_; }
  Stream& stream() { return *stream_; }
  void close();

  // Receives "C: ..." and "S: ..." lines (secrets already redacted). Default: none.
  void set_trace(std::function<void(const std::string&)> trace) { trace_ = std::move(trace); }

 private:
  using Clock = std::chrono::steady_clock;
  Status fill();
  // Before a read or write: the stream's deadline from the step, or the step's time-out.
  Status arm();
  // After a failed read or write: the step's time-out when that is what happened.
  Status after_failure(Status s);
  Status write_chunked(std::string_view data);

  std::unique_ptr<Stream> stream_;
  size_t max_line_;
  bool in_step_ = false;
  std::string step_what_;
  std::chrono::milliseconds step_budget_{0};
  Clock::time_point step_start_;
  uint64_t step_bytes_ = 0;  // read and written in the step
  std::string buf_;  // storage; the unread bytes are [pos_, end_)
  size_t pos_ = 0;
  size_t end_ = 0;
  size_t chunk_;  // bytes asked of the stream per read: grows with the reads it fills
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
  void set_deadline(std::optional<std::chrono::steady_clock::time_point>) override {}
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
