// File: core/compose.cpp — compose_message() on GMime 3, and the From/Reply-To policy of
// tracked mail.
//
// Every header value is checked before GMime sees it: GMime encodes what it is given, and a
// CR or LF smuggled into a subject or a display name would otherwise become a header of its
// own (header injection). Bodies are normalised to LF and written quoted-printable, so that
// the CRLF output never has a bare CR or LF nor a line over 76 characters.
#include "core/compose.h"

#include <gmime/gmime.h>
#include <glib.h>
#include <openssl/rand.h>

#include <algorithm>
#include <cctype>
#include <memory>

#include "core/ascii.h"
#include "core/internal/gobject.h"
#include "core/tracking.h"  // base32_encode

namespace mb {
namespace {

using internal::GPtr;

bool has_line_break(std::string_view v) {
  return v.find_first_of(std::string_view("\r\n\0", 3)) != std::string_view::npos;
}

Status refuse(const std::string& what) {
  return Status(ErrorKind::kInvalidInput, what, ErrorScope::kMessage);
}

Status check_header_text(std::string_view value, const std::string& what) {
  if (has_line_break(value)) return refuse(what + " must not contain CR, LF or NUL");
  if (!g_utf8_validate(value.data(), static_cast<gssize>(value.size()), nullptr)) {
    return refuse(what + " is not valid UTF-8");
  }
  return Status::Ok();
}

Status check_address(const Address& a, const std::string& what) {
  MB_RETURN_IF_ERROR(check_header_text(a.name, what + " name"));
  if (has_line_break(a.email)) return refuse(what + " must not contain CR, LF or NUL");
  if (!is_plain_address(a.email)) return refuse(what + " is not a plain address: " + a.email);
  return Status::Ok();
}

bool is_header_name(std::string_view n) {
  if (n.empty()) return false;
  return std::all_of(n.begin(), n.end(), [](char c) {
    return c > 32 && c < 127 && c != ':';
  });
}

Status check_spec(const MailSpec& s) {
  MB_RETURN_IF_ERROR(check_address(s.from, "From"));
  if (s.to.empty() && s.cc.empty() && s.bcc.empty()) return refuse("no recipient");
  for (const auto& a : s.to) MB_RETURN_IF_ERROR(check_address(a, "To"));
  for (const auto& a : s.cc) MB_RETURN_IF_ERROR(check_address(a, "Cc"));
  for (const auto& a : s.bcc) MB_RETURN_IF_ERROR(check_address({"", a}, "Bcc"));
  if (!s.reply_to.empty()) MB_RETURN_IF_ERROR(check_address({"", s.reply_to}, "Reply-To"));
  MB_RETURN_IF_ERROR(check_header_text(s.subject, "Subject"));
  MB_RETURN_IF_ERROR(check_header_text(s.message_id, "Message-ID"));
  MB_RETURN_IF_ERROR(check_header_text(s.in_reply_to, "In-Reply-To"));
  for (const auto& [name, value] : s.headers) {
    if (!is_header_name(name)) return refuse("header name \"" + name + "\" is not valid");
    MB_RETURN_IF_ERROR(check_header_text(value, "header " + name));
  }
  for (const auto& a : s.attachments) {
    MB_RETURN_IF_ERROR(check_header_text(a.filename, "attachment file name"));
    MB_RETURN_IF_ERROR(check_header_text(a.content_type, "attachment content type"));
  }
  for (const std::string* body : {&s.text, &s.html}) {
    if (!g_utf8_validate(body->data(), static_cast<gssize>(body->size()), nullptr)) {
      return refuse("the message body is not valid UTF-8");
    }
  }
  return Status::Ok();
}

std::string to_lf(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\r') {
      out.push_back('\n');
      if (i + 1 < text.size() && text[i + 1] == '\n') ++i;
    } else {
      out.push_back(text[i]);
    }
  }
  return out;
}

GMimeObject* text_part(const char* subtype, const std::string& body) {
  GMimeTextPart* part = g_mime_text_part_new_with_subtype(subtype);
  g_mime_text_part_set_charset(part, "utf-8");
  std::string lf = to_lf(body);
  g_mime_text_part_set_text(part, lf.c_str());
  g_mime_part_set_content_encoding(GMIME_PART(part), GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE);
  return GMIME_OBJECT(part);
}

GMimeObject* attachment_part(const OutgoingAttachment& a) {
  std::string type = a.content_type.empty() ? content_type_for(a.filename) : a.content_type;
  GMimeContentType* ct = g_mime_content_type_parse(nullptr, type.c_str());
  GMimePart* part = g_mime_part_new_with_type(g_mime_content_type_get_media_type(ct),
                                              g_mime_content_type_get_media_subtype(ct));
  g_object_unref(ct);
  GPtr<GMimeStream> stream(g_mime_stream_mem_new_with_buffer(a.data.data(), a.data.size()));
  GPtr<GMimeDataWrapper> content(
      g_mime_data_wrapper_new_with_stream(stream.get(), GMIME_CONTENT_ENCODING_DEFAULT));
  g_mime_part_set_content(part, content.get());
  g_mime_part_set_filename(part, a.filename.c_str());
  g_mime_object_set_disposition(GMIME_OBJECT(part), "attachment");
  g_mime_part_set_content_encoding(part, GMIME_CONTENT_ENCODING_BASE64);
  return GMIME_OBJECT(part);
}

// The body tree: text, or text + HTML alternative, then mixed with the attachments.
GMimeObject* body_tree(const MailSpec& s) {
  GMimeObject* body = text_part("plain", s.text);
  if (!s.html.empty()) {
    GMimeMultipart* alt = g_mime_multipart_new_with_subtype("alternative");
    GPtr<GMimeObject> text(body);
    GPtr<GMimeObject> html(text_part("html", s.html));
    g_mime_multipart_add(alt, text.get());
    g_mime_multipart_add(alt, html.get());
    body = GMIME_OBJECT(alt);
  }
  if (s.attachments.empty()) return body;
  GMimeMultipart* mixed = g_mime_multipart_new_with_subtype("mixed");
  GPtr<GMimeObject> first(body);
  g_mime_multipart_add(mixed, first.get());
  for (const auto& a : s.attachments) {
    GPtr<GMimeObject> part(attachment_part(a));
    g_mime_multipart_add(mixed, part.get());
  }
  return GMIME_OBJECT(mixed);
}

void set_headers(GMimeMessage* m, const MailSpec& s, const std::string& message_id) {
  g_mime_message_add_mailbox(m, GMIME_ADDRESS_TYPE_FROM, s.from.name.c_str(),
                             s.from.email.c_str());
  for (const auto& a : s.to) {
    g_mime_message_add_mailbox(m, GMIME_ADDRESS_TYPE_TO, a.name.c_str(), a.email.c_str());
  }
  for (const auto& a : s.cc) {
    g_mime_message_add_mailbox(m, GMIME_ADDRESS_TYPE_CC, a.name.c_str(), a.email.c_str());
  }
  if (!s.reply_to.empty()) {
    g_mime_message_add_mailbox(m, GMIME_ADDRESS_TYPE_REPLY_TO, "", s.reply_to.c_str());
  }
  g_mime_message_set_subject(m, s.subject.c_str(), "utf-8");
  GDateTime* now = g_date_time_new_now_utc();
  g_mime_message_set_date(m, now);
  g_date_time_unref(now);
  g_mime_message_set_message_id(m, message_id.c_str());
  if (!s.in_reply_to.empty()) {
    std::string id = "<" + s.in_reply_to + ">";
    g_mime_object_set_header(GMIME_OBJECT(m), "In-Reply-To", id.c_str(), nullptr);
    g_mime_object_set_header(GMIME_OBJECT(m), "References", id.c_str(), nullptr);
  }
  for (const auto& [name, value] : s.headers) {
    g_mime_object_append_header(GMIME_OBJECT(m), name.c_str(), value.c_str(), "utf-8");
  }
}

Envelope envelope_of(const MailSpec& s) {
  Envelope e;
  e.from = ascii_lower(s.from.email);
  auto add = [&](const std::string& addr) {
    std::string a = ascii_lower(addr);
    if (std::find(e.recipients.begin(), e.recipients.end(), a) == e.recipients.end()) {
      e.recipients.push_back(std::move(a));
    }
  };
  for (const auto& a : s.to) add(a.email);
  for (const auto& a : s.cc) add(a.email);
  for (const auto& a : s.bcc) add(a);
  return e;
}

Result<ComposedMail> compose_checked(const MailSpec& spec) {
  MB_RETURN_IF_ERROR(check_spec(spec));
  init_mime();
  ComposedMail out;
  out.message_id = spec.message_id.empty() ? new_message_id(spec.from.email) : spec.message_id;
  GPtr<GMimeMessage> msg(g_mime_message_new(TRUE));
  set_headers(msg.get(), spec, out.message_id);
  GPtr<GMimeObject> body(body_tree(spec));
  g_mime_message_set_mime_part(msg.get(), body.get());
  GMimeFormatOptions* opts = g_mime_format_options_new();
  g_mime_format_options_set_newline_format(opts, GMIME_NEWLINE_FORMAT_DOS);
  char* text = g_mime_object_to_string(GMIME_OBJECT(msg.get()), opts);
  g_mime_format_options_free(opts);
  if (text == nullptr) return Status(ErrorKind::kInternal, "GMime could not write the message");
  out.raw = text;
  g_free(text);
  out.envelope = envelope_of(spec);
  return out;
}

}  // namespace

bool is_plain_address(std::string_view a) {
  size_t at = a.rfind('@');
  if (at == std::string_view::npos || at == 0 || at + 1 >= a.size() || a.size() > 254) {
    return false;
  }
  if (a.find('@') != at) return false;
  return std::all_of(a.begin(), a.end(), [](char c) {
    auto u = static_cast<unsigned char>(c);
    return u > 32 && u != 127 && std::string_view("<>()[],;:\"\\").find(c) == std::string_view::npos;
  });
}

std::string new_message_id(std::string_view from_address) {
  unsigned char bytes[16];
  if (RAND_bytes(bytes, sizeof bytes) != 1) {
    // The CSPRNG failing is extraordinary; uniqueness, not secrecy, is what matters here.
    for (auto& b : bytes) b = static_cast<unsigned char>(g_random_int());
  }
  std::string id = ascii_lower(base32_encode(std::string_view(reinterpret_cast<char*>(bytes), 16)));
  size_t at = from_address.rfind('@');
  std::string domain = at == std::string_view::npos ? "mailbridge.invalid"
                                                     : ascii_lower(from_address.substr(at + 1));
  return "mb." + id + "@" + domain;
}

std::string content_type_for(std::string_view filename) {
  static const std::pair<const char*, const char*> kTypes[] = {
      {"txt", "text/plain"},       {"csv", "text/csv"},           {"htm", "text/html"},
      {"html", "text/html"},       {"pdf", "application/pdf"},    {"png", "image/png"},
      {"jpg", "image/jpeg"},       {"jpeg", "image/jpeg"},        {"gif", "image/gif"},
      {"svg", "image/svg+xml"},    {"webp", "image/webp"},        {"zip", "application/zip"},
      {"json", "application/json"}, {"xml", "application/xml"},   {"eml", "message/rfc822"},
      {"log", "text/plain"},       {"ics", "text/calendar"},
      {"doc", "application/msword"},
      {"docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"},
      {"xls", "application/vnd.ms-excel"},
      {"xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"},
      {"pptx", "application/vnd.openxmlformats-officedocument.presentationml.presentation"},
  };
  size_t dot = filename.rfind('.');
  if (dot == std::string_view::npos) return "application/octet-stream";
  std::string ext = ascii_lower(filename.substr(dot + 1));
  for (const auto& [e, type] : kTypes) {
    if (ext == e) return type;
  }
  return "application/octet-stream";
}

Result<ComposedMail> compose_message(const MailSpec& spec) {
  try {
    return compose_checked(spec);
  } catch (const std::exception& e) {
    return Status(ErrorKind::kInternal, std::string("composing the message: ") + e.what());
  }
}

std::vector<std::string> configured_addresses(const Config& config) {
  std::vector<std::string> out;
  for (const auto& m : config.mailboxes) {
    std::string a = ascii_lower(m.address.empty() ? m.user : m.address);
    if (!a.empty()) out.push_back(a);
  }
  return out;
}

Result<std::string> tracked_from(const Config& config, const SenderConfig& sender) {
  auto allowed = configured_addresses(config);
  auto is_allowed = [&](const std::string& a) {
    return std::find(allowed.begin(), allowed.end(), ascii_lower(a)) != allowed.end();
  };
  std::string from = config.tracking.from;
  if (from.empty() && is_allowed(sender.user)) from = sender.user;
  if (from.empty()) {
    auto reply_to = tracking_reply_to(config);
    if (!reply_to.ok()) return reply_to.status();
    from = *reply_to;
  }
  if (!is_allowed(from)) {
    return Status(ErrorKind::kConfig, "From address " + from +
                                          " is not the address of any [[mailbox]] (SPEC §4: "
                                          "tracked mail comes from a configured mailbox)");
  }
  return ascii_lower(from);
}

Result<std::string> tracking_reply_to(const Config& config) {
  const MailboxConfig* m = config.find_mailbox(config.tracking.mailbox);
  if (m == nullptr) {
    return Status(ErrorKind::kConfig,
                  "[tracking] mailbox is not set: tracked mail needs a mailbox for replies");
  }
  return ascii_lower(m->address.empty() ? m->user : m->address);
}

std::string tracking_footer_text(const std::string& bracketed_cookie) {
  return "\n\n-- \nPlease keep " + bracketed_cookie +
         " in your reply so that it reaches the right ticket.\n";
}

std::string tracking_footer_html(const std::string& bracketed_cookie) {
  return "<p style=\"color:#888;font-size:smaller\">Please keep " + bracketed_cookie +
         " in your reply so that it reaches the right ticket.</p>";
}

std::string append_html_footer(const std::string& html, const std::string& bracketed_cookie) {
  std::string footer = tracking_footer_html(bracketed_cookie);
  std::string low = ascii_lower(html);
  size_t pos = low.rfind("</body>");
  if (pos == std::string::npos) return html + footer;
  return html.substr(0, pos) + footer + html.substr(pos);
}

}  // namespace mb
