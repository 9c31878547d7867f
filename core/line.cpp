// File: core/line.cpp — LineChannel (buffered lines and literals over a Stream) and the
// scripted in-memory Stream used by protocol tests.
#include "core/line.h"

#include <algorithm>
#include <cstring>

#include "core/utc.h"

namespace mb {
namespace {

// Bytes asked of the stream per read. A channel starts at kMinReadChunk, and each read that
// fills all it was offered doubles that up to kReadChunk: a big answer costs few calls (a TLS
// record is 16 KiB), while a connection that only exchanges short lines — one waiting in
// IMAP IDLE, of which the service holds one per mailbox — keeps a small buffer.
constexpr size_t kMinReadChunk = 2 * 1024;
constexpr size_t kReadChunk = 32 * 1024;

// Bytes written per call while a step runs, so that its deadline grows with the progress.
constexpr size_t kWriteChunk = 64 * 1024;

}  // namespace

LineChannel::LineChannel(std::unique_ptr<Stream> stream, size_t max_line)
    : stream_(std::move(stream)), max_line_(max_line), chunk_(kMinReadChunk) {}

void LineChannel::release_buffer() {
  if (buffered()) return;
  std::string().swap(buf_);
  pos_ = end_ = 0;
  chunk_ = kMinReadChunk;
}

void LineChannel::begin_step(std::string what, std::chrono::milliseconds budget) {
  in_step_ = true;
  step_what_ = std::move(what);
  step_budget_ = budget;
  step_start_ = Clock::now();
  step_bytes_ = 0;
}

void LineChannel::end_step() {
  in_step_ = false;
  stream_->set_deadline(std::nullopt);
}

Status LineChannel::arm() {
  if (!in_step_) return Status::Ok();
  auto extra = std::chrono::duration_cast<Clock::duration>(
      std::chrono::duration<double>(static_cast<double>(step_bytes_) / kMinRate));
  Clock::time_point deadline = step_start_ + step_budget_ + extra;
  if (Clock::now() >= deadline) {
    return Status(ErrorKind::kNetwork,
                  "timed out waiting for " + step_what_ + " after " +
                      format_duration(step_budget_) +
                      (step_bytes_ > 0 ? " (" + std::to_string(step_bytes_) +
                                             " bytes arrived, slower than the minimum of " +
                                             std::to_string(kMinRate / 1024) + " KiB/s)"
                                       : ""),
                  ErrorScope::kConnection);
  }
  stream_->set_deadline(deadline);
  return Status::Ok();
}

Status LineChannel::after_failure(Status s) {
  if (!in_step_ || s.kind() != ErrorKind::kNetwork) return s;
  Status late = arm();
  return late.ok() ? s : late;
}

Status LineChannel::fill() {
  if (pos_ == end_) {
    pos_ = end_ = 0;
  } else if (pos_ > 0 && buf_.size() - end_ < chunk_) {
    // Move the unread tail to the front rather than grow: the storage stays about one
    // chunk plus the longest line.
    std::memmove(buf_.data(), buf_.data() + pos_, end_ - pos_);
    end_ -= pos_;
    pos_ = 0;
  }
  if (buf_.size() - end_ < chunk_) buf_.resize(end_ + chunk_);
  MB_RETURN_IF_ERROR(arm());
  size_t room = buf_.size() - end_;
  auto n = stream_->read_some(buf_.data() + end_, room);
  if (!n.ok()) return after_failure(n.status());
  if (*n == room && chunk_ < kReadChunk) chunk_ *= 2;  // more was waiting: read more at once
  end_ += *n;
  step_bytes_ += *n;
  return Status::Ok();
}

Result<std::string> LineChannel::read_line() {
  size_t scanned = 0;  // bytes after pos_ already known to hold no LF
  for (;;) {
    size_t start = pos_ + scanned;
    const char* lf = static_cast<const char*>(
        std::memchr(buf_.data() + start, '\n', end_ - start));
    if (lf != nullptr) {
      size_t end = static_cast<size_t>(lf - buf_.data());
      size_t len = end - pos_;
      if (len > 0 && buf_[end - 1] == '\r') --len;
      if (len > max_line_) break;
      std::string line(buf_.data() + pos_, len);
      pos_ = end + 1;
      if (trace_) trace_("S: " + line);
      return line;
    }
    scanned = end_ - pos_;
    if (scanned > max_line_ + 1) break;  // +1: a CR may still be followed by its LF
    MB_RETURN_IF_ERROR(fill());
  }
  return protocol_violation("line too long: the server sent more than " +
                        std::to_string(max_line_) + " bytes without a line end");
}

Status LineChannel::read_exact(size_t n, std::string& out) {
  size_t start = out.size();
  size_t from_buffer = std::min(n, end_ - pos_);
  out.reserve(start + n);
  out.append(buf_.data() + pos_, from_buffer);
  pos_ += from_buffer;
  // The rest goes straight from the stream into the caller's string: a large literal is
  // copied once, not through our buffer.
  size_t done = start + from_buffer;
  out.resize(start + n);
  while (done < start + n) {
    Status armed = arm();
    auto got = armed.ok() ? stream_->read_some(out.data() + done, start + n - done)
                          : Result<size_t>(armed);
    if (!got.ok()) {
      out.resize(start);
      return after_failure(got.status());
    }
    done += *got;
    step_bytes_ += *got;
  }
  if (trace_) trace_("S: <" + std::to_string(n) + " bytes>");
  return Status::Ok();
}

Status LineChannel::skip(uint64_t n) {
  uint64_t left = n;
  while (left > 0) {
    if (pos_ == end_) MB_RETURN_IF_ERROR(fill());
    size_t take = static_cast<size_t>(std::min<uint64_t>(left, end_ - pos_));
    pos_ += take;
    left -= take;
  }
  if (trace_) trace_("S: <" + std::to_string(n) + " bytes, dropped>");
  return Status::Ok();
}

Result<LineChannel::LineInfo> LineChannel::read_line_into(std::string& out, uint64_t keep,
                                                          uint64_t max) {
  const size_t start = out.size();
  LineInfo info;
  bool held_cr = false;  // the last byte seen was a CR: a line end if an LF follows
  auto add = [&](const char* p, size_t n) {
    if (n == 0) return;
    if (info.size == 0) info.first = p[0];
    uint64_t room = keep > info.size ? keep - info.size : 0;
    out.append(p, static_cast<size_t>(std::min<uint64_t>(n, room)));
    info.size += n;
  };
  for (;;) {
    const char* base = buf_.data() + pos_;
    size_t avail = end_ - pos_;
    const char* lf = static_cast<const char*>(std::memchr(base, '\n', avail));
    size_t take = lf != nullptr ? static_cast<size_t>(lf - base) : avail;
    if (held_cr && !(lf != nullptr && take == 0)) add("\r", 1);
    if (avail > 0) held_cr = false;
    size_t body = take;
    if (body > 0 && base[body - 1] == '\r') {
      --body;
      held_cr = lf == nullptr;  // at the chunk's end the CR's meaning is not known yet
    }
    add(base, body);
    pos_ += take + (lf != nullptr ? 1 : 0);
    if (info.size > max) {
      return protocol_violation("line too long: the server sent more than " + std::to_string(max) +
                            " bytes without a line end");
    }
    if (lf != nullptr) {
      if (trace_) trace_("S: " + out.substr(start));
      return info;
    }
    MB_RETURN_IF_ERROR(fill());
  }
}

Status LineChannel::write_line(std::string_view line, size_t secret_from, size_t secret_len) {
  std::string wire;
  wire.reserve(line.size() + 2);
  wire.append(line);
  wire.append("\r\n");
  if (trace_) {
    std::string shown(line);
    if (secret_from < shown.size()) shown.replace(secret_from, secret_len, "<redacted>");
    trace_("C: " + shown);
  }
  return write_chunked(wire);
}

Status LineChannel::write_raw(std::string_view data) {
  if (trace_) trace_("C: <" + std::to_string(data.size()) + " bytes>");
  return write_chunked(data);
}

Status LineChannel::write_chunked(std::string_view data) {
  do {
    std::string_view piece = data.substr(0, in_step_ ? kWriteChunk : data.size());
    MB_RETURN_IF_ERROR(arm());
    Status s = stream_->write_all(piece);
    if (!s.ok()) return after_failure(std::move(s));
    step_bytes_ += piece.size();
    data.remove_prefix(piece.size());
  } while (!data.empty());
  return Status::Ok();
}

Status LineChannel::start_tls(const std::string& host, const TlsOptions& options) {
  if (buffered()) {
    // A TLS-security refusal (kTls, exit 4), like a failed handshake: what follows the reply
    // in the clear could be an attacker's, and is never read as if it came over TLS.
    return Status(ErrorKind::kTls,
                  "the server sent " + std::to_string(end_ - pos_) +
                      " bytes after its STARTTLS reply, before the TLS handshake (possible "
                      "plaintext command injection); refusing to continue",
                  ErrorScope::kConnection);
  }
  pos_ = end_ = 0;
  MB_RETURN_IF_ERROR(stream_->start_tls(host, options));
  if (trace_) trace_("TLS: " + stream_->tls_summary());
  return Status::Ok();
}

void LineChannel::set_timeout(std::chrono::milliseconds t) { stream_->set_timeout(t); }

void LineChannel::close() {
  pos_ = end_ = 0;
  stream_->close();
}

Result<size_t> ScriptedStream::read_some(char* buf, size_t cap) {
  if (closed_) return Status(ErrorKind::kNetwork, "connection is closed", ErrorScope::kConnection);
  if (pos_ >= in_.size()) {
    return Status(ErrorKind::kNetwork, "connection closed by server", ErrorScope::kConnection);
  }
  size_t n = std::min({cap, chunk_, in_.size() - pos_});
  std::memcpy(buf, in_.data() + pos_, n);
  pos_ += n;
  return n;
}

Status ScriptedStream::write_all(std::string_view data) {
  if (closed_) return Status(ErrorKind::kNetwork, "connection is closed", ErrorScope::kConnection);
  out_.append(data);
  return Status::Ok();
}

Status ScriptedStream::start_tls(const std::string&, const TlsOptions&) {
  if (tls_) return Status(ErrorKind::kInternal, "scripted stream is already TLS");
  tls_ = true;
  return Status::Ok();
}

}  // namespace mb
