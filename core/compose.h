// File: core/compose.h — building outgoing mail (GMime 3): the RFC 5322 bytes a Sender
// takes, with headers checked against injection, RFC 2047 encoding of non-ASCII text, text
// and HTML alternatives, base64 attachments, a fresh Message-ID and CRLF line endings.
//
// compose_message() is the pure builder; tracked_from() and tracking_footer() hold the
// policy of SPEC §4 (From must be a configured mailbox address; the cookie goes in the
// subject and in a footer the reply will quote).
//
//   mb::MailSpec spec{.from = {"Ann via Help Desk", "support@contoso.com"},
//                     .to = {{"", "user@example.com"}}, .subject = "Printer", .text = "…"};
//   auto mail = mb::compose_message(spec);   // mail->raw, mail->message_id, mail->envelope
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/config.h"
#include "core/message.h"  // Address
#include "core/sender.h"   // Envelope
#include "core/status.h"

namespace mb {

struct OutgoingAttachment {
  std::string filename;
  std::string content_type;  // empty: from the file name's extension
  std::string data;
};

struct MailSpec {
  Address from;                      // display name may be empty
  std::vector<Address> to;
  std::vector<Address> cc;
  std::vector<std::string> bcc;      // envelope only, never a header
  std::string reply_to;              // bare address; empty: none
  std::string subject;
  std::string text;                  // text/plain body (UTF-8)
  std::string html;                  // optional text/html alternative
  std::vector<OutgoingAttachment> attachments;
  std::string message_id;            // without angle brackets; empty: a new random one
  std::string in_reply_to;           // without angle brackets; empty: none
  // Extra headers (name, value), e.g. ("X-Mailbridge-Tracking", token). Checked like the rest.
  std::vector<std::pair<std::string, std::string>> headers;
};

struct ComposedMail {
  std::string raw;                   // RFC 5322, CRLF line endings
  std::string message_id;            // without angle brackets
  Envelope envelope;                 // From's address; To + Cc + Bcc, de-duplicated
};

// Builds the message. kInvalidInput when a header value (subject, names, addresses, extra
// headers) holds CR, LF or NUL, an address is not a plain addr-spec, there is no recipient,
// or the body is not valid UTF-8.
Result<ComposedMail> compose_message(const MailSpec& spec);

// A new Message-ID (no angle brackets): 128 random bits, base32, "@" the domain of `from`.
std::string new_message_id(std::string_view from_address);

// True when `address` is a plain addr-spec (local@domain) fit for a header and an SMTP
// envelope: no spaces, angle brackets, quotes, commas or control characters.
bool is_plain_address(std::string_view address);

// Content-Type for a file name by its extension ("application/octet-stream" if unknown).
std::string content_type_for(std::string_view filename);

// Every address SPEC §4 allows as From: each [[mailbox]]'s address (or user when it has
// none), lower-case.
std::vector<std::string> configured_addresses(const Config& config);

// The From address of tracked mail: [tracking] from when set, else the tracking sender's
// user when it is a configured mailbox address, else the tracking mailbox's address.
// kConfig when none is set or the result is not a configured mailbox address.
Result<std::string> tracked_from(const Config& config, const SenderConfig& sender);

// The address replies go to: the [tracking] mailbox's address; kConfig when not configured.
Result<std::string> tracking_reply_to(const Config& config);

// The footer appended to the text body (and, as a paragraph, to the HTML body) of tracked
// mail, carrying the bracketed cookie so that the quoted body keeps it.
std::string tracking_footer_text(const std::string& bracketed_cookie);
std::string tracking_footer_html(const std::string& bracketed_cookie);
// `html` with the footer paragraph inserted before </body> (appended when there is none).
std::string append_html_footer(const std::string& html, const std::string& bracketed_cookie);

}  // namespace mb
