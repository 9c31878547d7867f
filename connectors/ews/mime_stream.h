// File: connectors/ews/mime_stream.h — GetItem's MimeContent decoded as the answer arrives,
// so that a large message costs its decoded bytes once and never the base64 text or a DOM
// of it. A pure parser (no I/O): feed it the HTTP body piece by piece; the text of the first
// element whose local name is MimeContent (any prefix) is base64-decoded into message();
// everything else of the answer is kept, with that element emptied, for parse_response
// (ews_soap.h) to read the response message. Both parts are bounded: the decoded message by
// `max_message_bytes` (past it: kTooLarge, scope message; the caller drops the transfer),
// the rest of the answer by kMaxEnvelopeBytes (kProtocol).
//
//   MimeStream mime(max_bytes);
//   request.body_sink = [&](std::string_view piece) { return mime.feed(piece); };
//   ... then: MB_RETURN_IF_ERROR(mime.finish());  parse_response(status, mime.envelope());
//   std::string raw = mime.take_message();
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "core/status.h"

namespace mb::ews {

class MimeStream {
 public:
  static constexpr size_t kMaxEnvelopeBytes = 1 << 20;

  explicit MimeStream(uint64_t max_message_bytes) : max_(max_message_bytes) {}

  // Forgets everything fed so far (a retried request starts over).
  void reset() { *this = MimeStream(max_); }

  // Takes the next piece of the answer.
  Status feed(std::string_view piece);
  // After the last piece: kProtocol when MimeContent was cut off or its base64 was broken.
  Status finish();

  // The answer without MimeContent's text.
  const std::string& envelope() const { return envelope_; }
  bool found() const { return state_ == State::kAfter; }
  uint64_t decoded_bytes() const { return decoded_; }
  std::string take_message() { return std::move(message_); }

 private:
  enum class State { kText, kTag, kAttributes, kContent, kAfter };
  Status keep(char c);
  Status content(char c);

  uint64_t max_;
  State state_ = State::kText;
  std::string tag_;  // the name of the tag being read
  std::string envelope_;
  uint32_t quad_ = 0;  // base64 bits not yet output
  int have_ = 0;       // base64 characters in quad_
  int padding_ = 0;
  bool ended_ = false;  // a padded group was the last
  std::string message_;  // decoded
  uint64_t decoded_ = 0;
};

}  // namespace mb::ews
