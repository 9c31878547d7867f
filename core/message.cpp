// File: core/message.cpp — parse_message() on GMime 3: headers, bodies and attachments.
//
// GMime does the MIME work (tree, RFC 2231, transfer decodings); RFC 2047 encoded-words in
// headers, display names and file names are decoded by core/rfc2047.h from the headers as
// written, because GMime 3.2.13 cuts text short after a padded base64 word. This file walks
// the tree once, picks the bodies, converts charsets itself so that invalid bytes become
// U+FFFD instead of a failure, and copies everything out into plain structs before every GObject
// is released. Every string handed out is valid UTF-8 without NUL bytes (ingest stores
// them as JSON/SQLite); only attachment data is raw bytes.
#include "core/message.h"

#include <gmime/gmime.h>
#include <iconv.h>

#include <algorithm>
#include <cstring>
#include <exception>
#include <memory>
#include <mutex>
#include <new>
#include <set>
#include <string>

#include "core/ascii.h"
#include "core/internal/gobject.h"
#include "core/internal/utf8.h"
#include "core/rfc2047.h"

namespace mb {
namespace {

using internal::GCharPtr;
using internal::GPtr;

// Bounds on what one parse builds (see check_mime_bounds below). A message over one of them
// is hostile or broken beyond use; it fails to parse (kInvalidInput: skipped "malformed").
constexpr int kMaxDepth = 64;           // multiparts nested in multiparts
constexpr size_t kMaxParts = 10000;     // MIME parts in the whole message
constexpr size_t kMaxPartFields = 50000;  // header fields of all the parts together
constexpr size_t kMaxContentType = 16384;  // bytes of one block's Content-Type fields kept

GMimeParserOptions* g_options = nullptr;

GMimeParserOptions* parser_options() {
  init_mime();
  return g_options;
}

bool icontains(std::string_view hay, std::string_view needle) {
  auto it = std::search(hay.begin(), hay.end(), needle.begin(), needle.end(),
                        [](char x, char y) { return ascii_lower_char(x) == ascii_lower_char(y); });
  return it != hay.end();
}

std::string from_c(const char* s) {
  return s != nullptr ? internal::sanitized_utf8(ascii_trim(s)) : std::string();
}

// A header value on one line: the whitespace that folding leaves (tabs) becomes spaces.
std::string one_line(std::string_view s) {
  std::string out = internal::sanitized_utf8(ascii_trim(s));
  for (char& c : out) {
    if (c == '\t' || c == '\r' || c == '\n') c = ' ';
  }
  return out;
}

// A header value as written (folded, RFC 2047-encoded), decoded onto one line.
std::string decoded_line(const char* raw) {
  return raw != nullptr ? one_line(decode_header_text(raw)) : std::string();
}

// The raw value of the last header `name` of `object` (the one GMime itself goes by).
const char* last_raw_header(GMimeObject* object, const char* name) {
  GMimeHeaderList* list = g_mime_object_get_header_list(object);
  if (list == nullptr) return nullptr;
  const char* raw = nullptr;
  int count = g_mime_header_list_get_count(list);
  for (int i = 0; i < count; ++i) {
    GMimeHeader* h = g_mime_header_list_get_header_at(list, i);
    if (h != nullptr && g_ascii_strcasecmp(g_mime_header_get_name(h), name) == 0) {
      raw = g_mime_header_get_raw_value(h);
    }
  }
  return raw;
}

std::string message_subject(GMimeMessage* message) {
  return decoded_line(last_raw_header(GMIME_OBJECT(message), "Subject"));
}

bool is_utf8_family(const char* canon) {
  return g_ascii_strcasecmp(canon, "utf-8") == 0 || g_ascii_strcasecmp(canon, "us-ascii") == 0;
}

// Body bytes in `charset` (may be null) → UTF-8. Undeclared, ASCII-declared or unknown
// charsets are taken as UTF-8 when valid, else as Windows-1252 (what such mail is in
// practice); ISO-8859-1 is read as its superset Windows-1252, as browsers do.
std::string to_utf8(std::string_view bytes, const char* charset) {
  const char* canon = charset != nullptr ? g_mime_charset_canon_name(charset) : nullptr;
  const char* from = canon;
  if (canon == nullptr || is_utf8_family(canon)) {
    if (g_utf8_validate(bytes.data(), static_cast<gssize>(bytes.size()), nullptr)) {
      return std::string(bytes);
    }
    if (canon != nullptr && g_ascii_strcasecmp(canon, "utf-8") == 0) return internal::sanitized_utf8(bytes);
    from = "windows-1252";
  } else if (g_ascii_strcasecmp(canon, "iso-8859-1") == 0) {
    from = "windows-1252";
  }
  iconv_t cd = g_mime_iconv_open("UTF-8", from);
  if (cd == reinterpret_cast<iconv_t>(-1)) {  // unknown charset: treat it as undeclared
    return charset != nullptr ? to_utf8(bytes, nullptr) : internal::sanitized_utf8(bytes);
  }
  std::string out = internal::iconv_to_utf8(cd, bytes);
  g_mime_iconv_close(cd);
  if (out.find('\0') != std::string::npos) out = internal::sanitized_utf8(out);  // NUL breaks C consumers
  return out;
}

// Reads a part's content with its transfer encoding undone, straight into one string.
std::string decode_content(GMimePart* part) {
  GMimeDataWrapper* wrapper = g_mime_part_get_content(part);
  if (wrapper == nullptr) return {};
  GMimeStream* source = g_mime_data_wrapper_get_stream(wrapper);
  if (source == nullptr) return {};
  g_mime_stream_reset(source);
  GPtr<GMimeStream> filtered(g_mime_stream_filter_new(source));
  GMimeContentEncoding encoding = g_mime_data_wrapper_get_encoding(wrapper);
  switch (encoding) {
    case GMIME_CONTENT_ENCODING_BASE64:
    case GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE:
    case GMIME_CONTENT_ENCODING_UUENCODE: {
      GPtr<GMimeFilter> filter(g_mime_filter_basic_new(encoding, FALSE));
      g_mime_stream_filter_add(GMIME_STREAM_FILTER(filtered.get()), filter.get());
      break;
    }
    default:
      break;
  }
  std::string out;
  gint64 length = g_mime_stream_length(source);
  if (length > 0) out.reserve(static_cast<size_t>(length));
  // Read straight into `out`'s tail: no 64 KiB buffer on the stack, whose pages would stay
  // resident in every service worker that ever decoded an attachment.
  constexpr size_t kChunk = 16 * 1024;
  for (;;) {
    const size_t have = out.size();
    out.resize(have + kChunk);
    ssize_t n = g_mime_stream_read(filtered.get(), out.data() + have, kChunk);
    out.resize(have + static_cast<size_t>(n > 0 ? n : 0));
    if (n <= 0) break;
  }
  g_mime_stream_reset(source);
  return out;
}

std::string extension_for(std::string_view mime_type) {
  static const std::pair<std::string_view, std::string_view> kKnown[] = {
      {"image/png", ".png"},
      {"image/jpeg", ".jpg"},
      {"image/jpg", ".jpg"},
      {"image/gif", ".gif"},
      {"image/bmp", ".bmp"},
      {"image/webp", ".webp"},
      {"image/svg+xml", ".svg"},
      {"image/tiff", ".tif"},
      {"application/pdf", ".pdf"},
      {"application/zip", ".zip"},
      {"text/plain", ".txt"},
      {"text/html", ".html"},
      {"text/calendar", ".ics"},
      {"text/csv", ".csv"},
      {"message/rfc822", ".eml"},
      {"application/json", ".json"},
      {"application/xml", ".xml"},
      {"text/xml", ".xml"},
      {"message/delivery-status", ".txt"},
      {"text/rfc822-headers", ".txt"},
      {"application/msword", ".doc"},
      {"application/vnd.openxmlformats-officedocument.wordprocessingml.document", ".docx"},
      {"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", ".xlsx"},
      {"application/vnd.ms-excel", ".xls"},
      {"application/pkcs7-signature", ".p7s"},
      {"application/x-pkcs7-signature", ".p7s"},
  };
  for (const auto& [type, ext] : kKnown) {
    if (type == mime_type) return std::string(ext);
  }
  return ".bin";
}

// A decoded file name made safe to show and store: no directories, no control characters.
std::string clean_filename(std::string_view decoded) {
  std::string name = internal::sanitized_utf8(ascii_trim(decoded));
  size_t slash = name.find_last_of("/\\");
  if (slash != std::string::npos) name.erase(0, slash + 1);
  for (char& c : name) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '_';
  }
  name = std::string(ascii_trim(name));
  return (name == "." || name == "..") ? std::string() : name;
}

// A part's file name: Content-Disposition's filename, else Content-Type's name, as GMime
// decoded it (RFC 2231 included), except that a plain parameter holding RFC 2047 words
// (filename="=?UTF-8?B?…?=") is decoded here from the header as written.
std::string part_filename(GMimeObject* object) {
  static const std::pair<const char*, const char*> kSources[] = {
      {"Content-Disposition", "filename"}, {"Content-Type", "name"}};
  for (const auto& [header, param] : kSources) {
    const char* value = header == kSources[0].first
                            ? g_mime_object_get_content_disposition_parameter(object, param)
                            : g_mime_object_get_content_type_parameter(object, param);
    if (value == nullptr) continue;
    std::string name = clean_filename(value);
    const char* raw = last_raw_header(object, header);
    if (raw != nullptr && !has_rfc2231_parameter(raw, param)) {
      auto written = raw_parameter(raw, param);
      if (written && written->find("=?") != std::string::npos) {
        name = clean_filename(decode_header_text(*written));
      }
    }
    if (!name.empty()) return name;
  }
  return {};
}

std::string mime_type_of(GMimeObject* object) {
  GMimeContentType* type = g_mime_object_get_content_type(object);
  if (type == nullptr) return "application/octet-stream";
  GCharPtr s(g_mime_content_type_get_mime_type(type));
  return s ? ascii_lower(s.get()) : std::string("application/octet-stream");
}

struct Walk {
  ParsedMessage& out;
  bool have_text = false;
  bool have_html = false;
  bool recovered = false;  // a boundary was guessed once already (bounds the re-parsing)
  size_t parts = 0;        // parts walked below the top one
  Status bound;            // the first bound the tree passed
};

void add_attachment(Walk& walk, GMimeObject* object, std::string mime_type, std::string name,
                    std::string data) {
  Attachment a;
  if (name.empty()) {
    name = "attachment-" + std::to_string(walk.out.attachments.size() + 1);
    name += extension_for(mime_type);
  }
  a.filename = std::move(name);
  a.content_type = std::move(mime_type);
  a.content_id = from_c(g_mime_object_get_content_id(object));
  GMimeContentDisposition* disposition = g_mime_object_get_content_disposition(object);
  const char* d = disposition ? g_mime_content_disposition_get_disposition(disposition) : nullptr;
  a.inline_part = d != nullptr && g_ascii_strcasecmp(d, "inline") == 0;
  a.data = std::move(data);
  walk.out.attachments.push_back(std::move(a));
}

void take_leaf(Walk& walk, GMimePart* part) {
  GMimeObject* object = GMIME_OBJECT(part);
  std::string mime_type = mime_type_of(object);
  bool attached = g_mime_part_is_attachment(part);
  bool body_text = !attached && !walk.have_text && mime_type == "text/plain";
  bool body_html = !attached && !walk.have_html && mime_type == "text/html";
  std::string data = decode_content(part);
  if (body_text || body_html) {
    std::string utf8 = to_utf8(data, g_mime_object_get_content_type_parameter(object, "charset"));
    (body_text ? walk.out.text : walk.out.html) = std::move(utf8);
    (body_text ? walk.have_text : walk.have_html) = true;
    return;
  }
  add_attachment(walk, object, std::move(mime_type), part_filename(object), std::move(data));
}

// An attached message is kept whole, as a .eml file named after the part or its subject.
void take_message_part(Walk& walk, GMimeMessagePart* part) {
  GMimeObject* object = GMIME_OBJECT(part);
  GMimeMessage* inner = g_mime_message_part_get_message(part);
  std::string data;
  if (inner != nullptr) {
    GPtr<GMimeStream> sink(g_mime_stream_mem_new());
    if (g_mime_object_write_to_stream(GMIME_OBJECT(inner), nullptr, sink.get()) >= 0) {
      GByteArray* bytes = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(sink.get()));
      data.assign(reinterpret_cast<const char*>(bytes->data), bytes->len);
    }
  }
  std::string name = part_filename(object);
  if (name.empty() && inner != nullptr) {
    name = message_subject(inner);
    for (char& c : name) {
      if (std::strchr("/\\:*?\"<>|", c) != nullptr || static_cast<unsigned char>(c) < 0x20) c = '_';
    }
    if (name.size() > 100) {
      size_t cut = 100;
      while (cut > 0 && (static_cast<unsigned char>(name[cut]) & 0xC0) == 0x80) --cut;
      name.resize(cut);
    }
  }
  if (!name.empty() && (name.size() < 4 || !ascii_iequals(name.substr(name.size() - 4), ".eml"))) {
    name += ".eml";
  }
  add_attachment(walk, object, "message/rfc822", std::move(name), std::move(data));
}

void walk_tree(Walk& walk, GMimeObject* object, int depth);

// The boundary a multipart's parts use when it declared none or another one: the first
// "--xyz" line of what GMime could only file as its prologue.
std::string guess_boundary(std::string_view prologue) {
  size_t pos = 0;
  while (pos < prologue.size()) {
    size_t eol = prologue.find('\n', pos);
    std::string_view line =
        ascii_trim(prologue.substr(pos, eol == std::string_view::npos ? eol : eol - pos));
    if (line.size() > 2 && line.size() <= 72 && line.starts_with("--") &&
        line.find_first_of("\"\\") == std::string_view::npos) {
      return std::string(line.substr(2));
    }
    if (eol == std::string_view::npos) break;
    pos = eol + 1;
  }
  return {};
}

// A multipart whose parts GMime could not find (missing or wrong boundary): re-parse its
// content once with a guessed boundary; failing that, keep the content as text.
void recover_multipart(Walk& walk, GMimeMultipart* multipart, int depth) {
  const char* prologue = g_mime_multipart_get_prologue(multipart);
  if (prologue == nullptr || *prologue == '\0') return;
  std::string boundary = walk.recovered ? std::string() : guess_boundary(prologue);
  if (!boundary.empty()) {
    walk.recovered = true;
    std::string wrapped = "Content-Type: " + mime_type_of(GMIME_OBJECT(multipart)) +
                          "; boundary=\"" + boundary + "\"\n\n" + prologue;
    GPtr<GMimeStream> stream(g_mime_stream_mem_new_with_buffer(wrapped.data(), wrapped.size()));
    GPtr<GMimeParser> parser(g_mime_parser_new_with_stream(stream.get()));
    GPtr<GMimeObject> part(g_mime_parser_construct_part(parser.get(), parser_options()));
    if (part && GMIME_IS_MULTIPART(part.get()) &&
        g_mime_multipart_get_count(GMIME_MULTIPART(part.get())) > 0) {
      walk_tree(walk, part.get(), depth + 1);
      return;
    }
  }
  if (!walk.have_text) {
    walk.out.text = to_utf8(prologue, nullptr);
    walk.have_text = true;
  }
}

void walk_tree(Walk& walk, GMimeObject* object, int depth) {
  if (object == nullptr || !walk.bound.ok()) return;
  if (depth > kMaxDepth) {
    walk.bound = Status(ErrorKind::kInvalidInput,
                        "unreadable: MIME parts nested more than " + std::to_string(kMaxDepth) +
                            " deep",
                        ErrorScope::kMessage);
    return;
  }
  if (depth > 0 && ++walk.parts > kMaxParts) {  // the parts inside the message's body
    walk.bound = Status(ErrorKind::kInvalidInput,
                        "unreadable: more than " + std::to_string(kMaxParts) + " MIME parts",
                        ErrorScope::kMessage);
    return;
  }
  if (GMIME_IS_MULTIPART(object)) {
    GMimeMultipart* multipart = GMIME_MULTIPART(object);
    int count = g_mime_multipart_get_count(multipart);
    for (int i = 0; i < count; ++i)
      walk_tree(walk, g_mime_multipart_get_part(multipart, i), depth + 1);
    if (count == 0) recover_multipart(walk, multipart, depth);
  } else if (GMIME_IS_MESSAGE_PART(object)) {
    take_message_part(walk, GMIME_MESSAGE_PART(object));
  } else if (GMIME_IS_PART(object)) {
    take_leaf(walk, GMIME_PART(object));
  }
}

// An image the HTML shows through cid: is inline even when its part did not say so.
void mark_cid_references(ParsedMessage& m) {
  if (m.html.empty()) return;
  for (Attachment& a : m.attachments) {
    if (!a.inline_part && !a.content_id.empty() && icontains(m.html, "cid:" + a.content_id)) {
      a.inline_part = true;
    }
  }
}

void append_headers(GMimeHeaderList* list, std::vector<std::pair<gint64, GMimeHeader*>>& all) {
  if (list == nullptr) return;
  int count = g_mime_header_list_get_count(list);
  for (int i = 0; i < count; ++i) {
    GMimeHeader* h = g_mime_header_list_get_header_at(list, i);
    if (h != nullptr) all.emplace_back(g_mime_header_get_offset(h), h);
  }
}

// GMime files Content-* headers under the top MIME part; merge them back in stream order.
void collect_headers(GMimeMessage* message, ParsedMessage& m) {
  std::vector<std::pair<gint64, GMimeHeader*>> all;
  append_headers(g_mime_object_get_header_list(GMIME_OBJECT(message)), all);
  GMimeObject* body = g_mime_message_get_mime_part(message);
  if (body != nullptr) append_headers(g_mime_object_get_header_list(body), all);
  std::stable_sort(all.begin(), all.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  m.headers.reserve(all.size());
  for (const auto& [offset, h] : all) {
    const char* raw = g_mime_header_get_raw_value(h);
    std::string value =
        raw != nullptr ? decoded_line(raw) : one_line(from_c(g_mime_header_get_value(h)));
    m.headers.emplace_back(from_c(g_mime_header_get_name(h)), std::move(value));
  }
}

void append_addresses(InternetAddressList* list, const MaskedHeader& masked,
                      std::vector<Address>& out, int depth = 0) {
  if (list == nullptr || depth > kMaxDepth) return;
  int count = internet_address_list_length(list);
  for (int i = 0; i < count; ++i) {
    InternetAddress* ia = internet_address_list_get_address(list, i);
    if (INTERNET_ADDRESS_IS_GROUP(ia)) {
      append_addresses(internet_address_group_get_members(INTERNET_ADDRESS_GROUP(ia)), masked,
                       out, depth + 1);
    } else if (INTERNET_ADDRESS_IS_MAILBOX(ia)) {
      const char* addr = internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(ia));
      out.push_back(Address{one_line(masked.unmask(from_c(internet_address_get_name(ia)))),
                            ascii_lower(masked.unmask(from_c(addr), /*decoded=*/false))});
    }
  }
}

// The addresses of the last header `name`. GMime's parser would decode the display names
// itself (and cut them short), so it is given the header with every run of encoded-words
// masked, and the names get our decoding of those runs back.
void append_header_addresses(GMimeMessage* message, const char* name, std::vector<Address>& out) {
  const char* raw = last_raw_header(GMIME_OBJECT(message), name);
  if (raw == nullptr) return;
  MaskedHeader masked = mask_encoded_words(raw);
  GPtr<InternetAddressList> list(
      internet_address_list_parse(parser_options(), masked.text.c_str()));
  append_addresses(list.get(), masked, out);
}

std::vector<std::string> message_ids(const std::string& value) {
  std::vector<std::string> ids;
  GMimeReferences* refs = g_mime_references_parse(parser_options(), value.c_str());
  if (refs != nullptr) {
    int count = g_mime_references_length(refs);
    for (int i = 0; i < count; ++i)
      ids.push_back(from_c(g_mime_references_get_message_id(refs, i)));
    g_mime_references_free(refs);
  }
  return ids;
}

void fill_envelope(GMimeMessage* message, ParsedMessage& m) {
  m.subject = message_subject(message);
  std::vector<Address> from;
  append_header_addresses(message, "From", from);
  if (!from.empty()) m.from = std::move(from.front());
  append_header_addresses(message, "To", m.to);
  append_header_addresses(message, "Cc", m.cc);
  std::vector<Address> reply_to;
  append_header_addresses(message, "Reply-To", reply_to);
  if (!reply_to.empty()) m.reply_to = reply_to.front().email;
  m.message_id = from_c(g_mime_message_get_message_id(message));
  m.date = m.header("Date");
  if (m.has_header("Return-Path")) {
    m.has_return_path = true;
    m.return_path = m.header("Return-Path");
    std::string squeezed;
    for (char c : m.return_path) {
      if (c != ' ' && c != '\t') squeezed += c;
    }
    if (squeezed == "<>") m.return_path = "<>";
  }
  std::string in_reply_to = m.header("In-Reply-To");
  std::vector<std::string> ids = message_ids(in_reply_to);
  if (!ids.empty()) m.in_reply_to = ids.front();
  m.references = message_ids(m.header("References"));
}

bool is_header_line(std::string_view line) {
  size_t i = 0;
  while (i < line.size() && line[i] > ' ' && line[i] < 0x7f && line[i] != ':') ++i;
  if (i == 0) return false;
  while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
  return i < line.size() && line[i] == ':';
}

// True when the input opens with a header block holding at least one "Name: value" line
// (an mbox "From " separator line is allowed before it).
bool has_header_block(std::string_view raw) {
  size_t pos = 0;
  bool first = true;
  while (pos < raw.size()) {
    size_t eol = raw.find('\n', pos);
    std::string_view line = raw.substr(pos, eol == std::string_view::npos ? eol : eol - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) return false;
    if (is_header_line(line)) return true;
    if (!(first && line.starts_with("From "))) return false;
    if (eol == std::string_view::npos) return false;
    pos = eol + 1;
    first = false;
  }
  return false;
}

// Owns the GMime objects of one parse; releases them (message first) before the borrowed
// input buffer's wrapper goes away.
struct ParseSession {
  GByteArray* array = nullptr;
  GPtr<GMimeStream> stream;
  GPtr<GMimeParser> parser;
  GPtr<GMimeMessage> message;
  ~ParseSession() {
    message.reset();
    parser.reset();
    stream.reset();
    if (array != nullptr) g_byte_array_free(array, FALSE);  // FALSE: the bytes are the caller's
  }
};

// What GMime may be asked to build for one message: every header field costs it some 2 KB
// of objects (50 MB of small fields took 2.18 GB), so the top header block is bounded before
// GMime sees it. Real mail stays far below (a Received chain and DKIM: tens of KB).
constexpr size_t kMaxHeaderBlock = 4u << 20;
constexpr size_t kMaxHeaderFields = 20000;

// The top header block's size and field count, without building anything.
Status check_header_bounds(std::string_view raw) {
  size_t pos = 0;
  size_t fields = 0;
  while (pos < raw.size()) {
    size_t eol = raw.find('\n', pos);
    size_t end = eol == std::string_view::npos ? raw.size() : eol;
    size_t len = end - pos - (end > pos && raw[end - 1] == '\r' ? 1 : 0);
    if (len == 0) break;  // the blank line that ends the header block
    if (raw[pos] != ' ' && raw[pos] != '\t') ++fields;
    if (end > kMaxHeaderBlock || fields > kMaxHeaderFields) {
      return Status(ErrorKind::kInvalidInput,
                    end > kMaxHeaderBlock
                        ? "unreadable: header block over " + std::to_string(kMaxHeaderBlock >> 20) +
                              " MiB"
                        : "unreadable: header block over " + std::to_string(kMaxHeaderFields) +
                              " fields",
                    ErrorScope::kMessage);
    }
    pos = end + 1;
  }
  return Status::Ok();
}

// The boundary parameters of a Content-Type value, added to `out`. A boundary in RFC 2231
// form (boundary*, boundary*0, ...) may be split into pieces: then `any` is set, and every
// "--" line counts as a delimiter (more than GMime would find, never fewer).
void note_boundaries(std::string_view value, std::set<std::string, std::less<>>& out,
                     bool& any) {
  size_t pos = 0;
  while (pos < value.size()) {
    size_t at = pos;
    while (at < value.size() && ascii_lower_char(value[at]) != 'b') ++at;
    if (at + 8 > value.size()) return;
    pos = at + 1;
    if (!ascii_iequals(value.substr(at, 8), "boundary")) continue;
    size_t i = at + 8;
    if (i < value.size() && value[i] == '*') {
      any = true;
      return;
    }
    while (i < value.size() && (value[i] == ' ' || value[i] == '\t')) ++i;
    if (i >= value.size() || value[i] != '=') continue;
    ++i;
    while (i < value.size() && (value[i] == ' ' || value[i] == '\t')) ++i;
    std::string b;
    if (i < value.size() && value[i] == '"') {
      for (++i; i < value.size() && value[i] != '"'; ++i) {
        if (value[i] == '\\' && i + 1 < value.size()) ++i;
        b += value[i];
      }
    } else {
      while (i < value.size() && value[i] != ';' && value[i] != ' ' && value[i] != '\t') {
        b += value[i++];
      }
    }
    if (!b.empty()) out.insert(std::move(b));
    pos = i;
  }
}

// What GMime would build for the MIME parts, counted on the raw bytes before it builds
// anything: a hostile message of tiny parts ("--b" lines) or of part header blocks full of
// small fields would otherwise cost far more memory than its size. Follows the parser's
// structure closely enough to never count fewer: a header block starts the message, follows
// every delimiter line of a declared boundary, and follows a header block whose Content-Type
// is message/*; a delimiter is "--" + boundary (+ "--" to close), then only white space.
Status check_mime_bounds(std::string_view raw) {
  std::set<std::string, std::less<>> boundaries;
  bool any_boundary = false;
  bool in_header = true;
  bool in_content_type = false;
  std::string content_type;
  size_t parts = 0;
  size_t fields = 0;
  // The Content-Type fields of the block (all of them: GMime takes the last).
  auto end_of_block = [&] {
    note_boundaries(content_type, boundaries, any_boundary);
    in_header = ascii_lower(content_type).find("message/") != std::string::npos;
    content_type.clear();
    in_content_type = false;
  };
  auto add_content_type = [&](std::string_view piece) {
    if (content_type.size() + piece.size() > kMaxContentType) {
      any_boundary = true;  // a boundary past what is kept could not be known
      return;
    }
    content_type.append(piece);
    content_type += ' ';
  };
  size_t pos = 0;
  while (pos < raw.size()) {
    size_t eol = raw.find('\n', pos);
    size_t end = eol == std::string_view::npos ? raw.size() : eol;
    std::string_view line = raw.substr(pos, end - pos);
    pos = end + 1;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.size() > 2 && line[0] == '-' && line[1] == '-') {
      std::string_view rest = line.substr(2);
      while (!rest.empty() && (rest.back() == ' ' || rest.back() == '\t')) rest.remove_suffix(1);
      // An opening delimiter first: a boundary may itself end in "--".
      const bool open = any_boundary || boundaries.count(rest) > 0;
      const bool close = !open && rest.size() >= 2 && rest.substr(rest.size() - 2) == "--" &&
                         boundaries.count(rest.substr(0, rest.size() - 2)) > 0;
      if (open || close) {
        if (in_header) end_of_block();
        if (open && ++parts > kMaxParts) {
          return Status(ErrorKind::kInvalidInput,
                        "unreadable: more than " + std::to_string(kMaxParts) + " MIME parts",
                        ErrorScope::kMessage);
        }
        in_header = open;  // a part's header block, or the epilogue after the closing one
        continue;
      }
    }
    if (!in_header) continue;
    if (line.empty()) {
      end_of_block();
      continue;
    }
    if (line[0] == ' ' || line[0] == '\t') {
      if (in_content_type) add_content_type(line);
      continue;
    }
    if (++fields > kMaxPartFields) {
      return Status(ErrorKind::kInvalidInput,
                    "unreadable: more than " + std::to_string(kMaxPartFields) +
                        " header fields in the message and its parts",
                    ErrorScope::kMessage);
    }
    size_t colon = line.find(':');
    in_content_type = colon != std::string_view::npos &&
                      ascii_iequals(ascii_trim(line.substr(0, colon)), "content-type");
    if (in_content_type) add_content_type(line.substr(colon + 1));
  }
  return Status::Ok();
}

Result<ParsedMessage> parse_checked(std::string_view raw) {
  if (!has_header_block(raw)) {
    return Status(ErrorKind::kInvalidInput, "message has no header block", ErrorScope::kMessage);
  }
  if (raw.size() > G_MAXUINT) {
    return Status(ErrorKind::kInvalidInput, "message is larger than 4 GiB", ErrorScope::kMessage);
  }
  GMimeParserOptions* options = parser_options();
  ParseSession s;
  // The parser only reads, and with a persistent stream every part's content stays a window
  // onto this buffer, so a large message is not copied: wrap the caller's bytes and never
  // let GLib own (free) them.
  s.array =
      g_byte_array_new_take(reinterpret_cast<guint8*>(const_cast<char*>(raw.data())), raw.size());
  s.stream.reset(g_mime_stream_mem_new_with_byte_array(s.array));
  g_mime_stream_mem_set_owner(GMIME_STREAM_MEM(s.stream.get()), FALSE);
  s.parser.reset(g_mime_parser_new_with_stream(s.stream.get()));
  g_mime_parser_set_persist_stream(s.parser.get(), TRUE);
  s.message.reset(g_mime_parser_construct_message(s.parser.get(), options));
  if (!s.message) {
    return Status(ErrorKind::kInvalidInput, "message headers could not be parsed",
                  ErrorScope::kMessage);
  }
  ParsedMessage m;
  collect_headers(s.message.get(), m);
  fill_envelope(s.message.get(), m);
  Walk walk{m, false, false, false, 0, Status::Ok()};
  walk_tree(walk, g_mime_message_get_mime_part(s.message.get()), 0);
  if (!walk.bound.ok()) return walk.bound;
  mark_cid_references(m);
  return m;
}

}  // namespace

std::string ParsedMessage::header(std::string_view name) const {
  for (const auto& [n, v] : headers) {
    if (ascii_iequals(n, name)) return v;
  }
  return {};
}

bool ParsedMessage::has_header(std::string_view name) const {
  return std::any_of(headers.begin(), headers.end(),
                     [&](const auto& h) { return ascii_iequals(h.first, name); });
}

void init_mime() {
  static std::once_flag once;
  std::call_once(once, [] {
    g_mime_init();
    // Undeclared 8-bit header text: UTF-8 when it is valid, else the Western charsets that
    // such mail is nearly always in.
    static const char* kFallback[] = {"utf-8", "windows-1252", "iso-8859-1", nullptr};
    g_options = g_mime_parser_options_new();
    g_mime_parser_options_set_fallback_charsets(g_options, kFallback);
  });
}

Result<ParsedMessage> parse_message(std::string_view raw) {
  // Running out of memory is transient (retried next pass); any other exception is caused
  // by these bytes and would recur on every try, so they are input that cannot be parsed.
  try {
    MB_RETURN_IF_ERROR(check_header_bounds(raw));
    MB_RETURN_IF_ERROR(check_mime_bounds(raw));
    return parse_checked(raw);
  } catch (const std::bad_alloc&) {
    return Status(ErrorKind::kInternal, "out of memory while parsing the message",
                  ErrorScope::kMessage);
  } catch (const std::exception& e) {
    return Status(ErrorKind::kInvalidInput, std::string("message parse failed: ") + e.what(),
                  ErrorScope::kMessage);
  }
}

}  // namespace mb
