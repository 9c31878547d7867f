// File: connectors/ews/mime_stream.cpp — MimeContent decoded as it arrives (mime_stream.h).
#include "connectors/ews/mime_stream.h"

#include "core/ascii.h"

namespace mb::ews {
namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

std::string_view local(std::string_view name) {
  size_t colon = name.find(':');
  return colon == std::string_view::npos ? name : name.substr(colon + 1);
}

Status broken(const std::string& why) {
  return Status(ErrorKind::kProtocol, "EWS GetItem answer: MimeContent " + why,
                ErrorScope::kConnection);
}

}  // namespace

Status MimeStream::keep(char c) {
  if (envelope_.size() >= kMaxEnvelopeBytes) {
    return Status(ErrorKind::kProtocol,
                  "EWS GetItem answer: more than 1 MiB besides the MIME content",
                  ErrorScope::kConnection);
  }
  envelope_ += c;
  return Status::Ok();
}

Status MimeStream::content(char c) {
  if (c == '<') {
    if (have_ != 0) return broken("base64 ends mid-group");
    state_ = State::kAfter;
    return keep(c);
  }
  if (is_space(c)) return Status::Ok();
  if (ended_) return broken("has base64 after its padding");
  if (c == '=') {
    if (have_ < 2) return broken("has misplaced base64 padding");
    ++padding_;
    ++have_;
  } else {
    int v = ascii_base64_value(c);
    if (v < 0 || padding_ != 0) return broken("is not base64");
    quad_ = (quad_ << 6) | static_cast<uint32_t>(v);
    ++have_;
  }
  if (have_ < 4) return Status::Ok();
  quad_ <<= 6 * padding_;
  const int bytes = 3 - padding_;
  const char out[3] = {static_cast<char>(quad_ >> 16), static_cast<char>(quad_ >> 8),
                       static_cast<char>(quad_)};
  decoded_ += static_cast<uint64_t>(bytes);
  if (decoded_ > max_) {
    return Status(ErrorKind::kTooLarge,
                  "message is larger than the limit of " + std::to_string(max_) + " bytes",
                  ErrorScope::kMessage);
  }
  message_.append(out, static_cast<size_t>(bytes));
  quad_ = 0;
  have_ = 0;
  ended_ = padding_ != 0;  // after a padded group only the end tag may come
  padding_ = 0;
  return Status::Ok();
}

Status MimeStream::feed(std::string_view piece) {
  for (char c : piece) {
    switch (state_) {
      case State::kText:
        if (c == '<') {
          state_ = State::kTag;
          tag_.clear();
        }
        MB_RETURN_IF_ERROR(keep(c));
        break;
      case State::kTag:
        MB_RETURN_IF_ERROR(keep(c));
        if (c == '>') {
          state_ = local(tag_) == "MimeContent" ? State::kContent : State::kText;
        } else if (is_space(c)) {
          state_ = local(tag_) == "MimeContent" ? State::kAttributes : State::kText;
        } else if (c == '/') {
          state_ = State::kText;  // an end tag, or an empty element such as <t:MimeContent/>
        } else if (tag_.size() < 64) {
          tag_ += c;
        }
        break;
      case State::kAttributes:
        MB_RETURN_IF_ERROR(keep(c));
        if (c == '>') {
          bool empty = envelope_.size() >= 2 && envelope_[envelope_.size() - 2] == '/';
          state_ = empty ? State::kText : State::kContent;
        }
        break;
      case State::kContent:
        MB_RETURN_IF_ERROR(content(c));
        break;
      case State::kAfter:
        MB_RETURN_IF_ERROR(keep(c));
        break;
    }
  }
  return Status::Ok();
}

Status MimeStream::finish() {
  if (state_ == State::kContent) return broken("is cut off");
  return Status::Ok();
}

}  // namespace mb::ews
