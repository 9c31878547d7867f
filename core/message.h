// File: core/message.h — a parsed email (GMime 3), everything SPEC §2 says is kept.
//
// parse_message() turns raw RFC 5322 bytes into plain data: decoded UTF-8 headers
// (RFC 2047), text and HTML bodies converted to UTF-8 from their declared charsets, every
// attachment and inline image (RFC 2231 file names decoded, content id kept), and the
// headers ingest needs for routing and auto-reply detection. It does no I/O and never
// throws; input GMime cannot make sense of still yields a message with what could be read,
// or kInvalidInput when there is nothing (no header block at all) or too much: a top
// header block over 4 MiB or 20000 fields ("unreadable: header block over …"), which would
// cost GMime gigabytes.
//
//   auto m = mb::parse_message(raw);
//   if (m.ok()) std::cout << m->subject;
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/status.h"

namespace mb {

struct Address {
  std::string name;   // decoded display name, may be empty
  std::string email;  // lower-case addr-spec, may be empty for groups
};

struct Attachment {
  std::string filename;      // decoded; "attachment-N.bin" style when the part had none
  std::string content_type;  // "image/png"
  std::string content_id;    // without angle brackets; empty when none
  bool inline_part = false;  // Content-Disposition: inline (or referenced by cid:)
  std::string data;          // decoded bytes
};

struct ParsedMessage {
  std::string subject;                  // decoded UTF-8, folding removed
  Address from;
  std::vector<Address> to;
  std::vector<Address> cc;
  std::string reply_to;                 // first Reply-To address, lower-case
  std::string return_path;              // as written, "<>" for a null return path
  bool has_return_path = false;
  std::string message_id;               // without angle brackets
  std::string in_reply_to;              // first id, without angle brackets
  std::vector<std::string> references;  // ids, without angle brackets, in order
  std::string date;                     // as written
  std::string text;                     // UTF-8 text/plain body (first one), may be empty
  std::string html;                     // UTF-8 text/html body (first one), kept as HTML
  std::vector<Attachment> attachments;
  // Every header as (name, decoded value), in order — for auto-reply checks and display.
  std::vector<std::pair<std::string, std::string>> headers;

  // Case-insensitive lookup of the first header named `name`; "" when absent.
  std::string header(std::string_view name) const;
  bool has_header(std::string_view name) const;
};

// Parses raw message bytes. Bytes that cannot be parsed are kInvalidInput (the same bytes
// fail the same way every time); only running out of memory is kInternal (transient).
Result<ParsedMessage> parse_message(std::string_view raw);

// Initializes GMime once per process (thread-safe, idempotent). parse_message calls it.
void init_mime();

}  // namespace mb
