// File: core/line.cpp — LineChannel (buffered lines and literals over a Stream) and the
// scripted in-memory Stream used by protocol tests.
#include "core/line.h"

#include <algorithm>
#include <cstring>

namespace mb {
namespace {

// Bytes asked of the stream per read: large enough that a big message costs few calls
// (a TLS record is 16 KiB), small enough to keep the buffer cheap per connection.
constexpr size_t kReadChunk = 32 * 1024;

Status protocol_error(std::string message) {
  return Status(ErrorKind::kProtocol, std::move(message), ErrorScope::kConnection);
}

}  // namespace

LineChannel::LineChannel(std::unique_ptr<Stream> stream, size_t max_line)
    : stream_(std::move(stream)), max_line_(max_line) {}

Status LineChannel::fill() {
  if (pos_ == end_) {
    pos_ = end_ = 0;
  } else if (pos_ > 0 && buf_.size() - end_ < kReadChunk) {
    // Move the unread tail to the front rather than grow: the storage stays about one
    // chunk plus the longest line, allocated once per connection.
    std::memmove(buf_.data(), buf_.data() + pos_, end_ - pos_);
    end_ -= pos_;
    pos_ = 0;
  }
  if (buf_.size() - end_ < kReadChunk) buf_.resize(end_ + kReadChunk);
  auto n = stream_->read_some(buf_.data() + end_, buf_.size() - end_);
  if (!n.ok()) return n.status();
  end_ += *n;
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
  return protocol_error("line too long: the server sent more than " +
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
    auto got = stream_->read_some(out.data() + done, start + n - done);
    if (!got.ok()) {
      out.resize(start);
      return got.status();
    }
    done += *got;
  }
  if (trace_) trace_("S: <" + std::to_string(n) + " bytes>");
  return Status::Ok();
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
  return stream_->write_all(wire);
}

Status LineChannel::write_raw(std::string_view data) {
  if (trace_) trace_("C: <" + std::to_string(data.size()) + " bytes>");
  return stream_->write_all(data);
}

Status LineChannel::start_tls(const std::string& host, const TlsOptions& options) {
  if (buffered()) {
    return protocol_error("the server sent " + std::to_string(end_ - pos_) +
                          " bytes after its STARTTLS reply, before the TLS handshake "
                          "(possible plaintext command injection); refusing to continue");
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
