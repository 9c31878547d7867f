// File: connectors/smtp/smtp_syntax.cpp — the pure parts of the SMTP client: reply lines,
// EHLO keywords, what a message needs (8BITMIME, SMTPUTF8, SIZE), the MAIL command, and
// streamed dot-stuffing.
#include <cctype>
#include <charconv>

#include "connectors/smtp/smtp_client.h"
#include "core/ascii.h"

namespace mb::smtp {
namespace {

bool is_enhanced_code(std::string_view w) {
  // class "." subject "." detail: 2|4|5 . 1–3 digits . 1–3 digits (RFC 3463)
  if (w.size() < 5 || (w[0] != '2' && w[0] != '4' && w[0] != '5') || w[1] != '.') return false;
  size_t dots = 0, digits = 0;
  for (size_t i = 2; i < w.size(); ++i) {
    if (w[i] == '.') {
      if (digits == 0 || ++dots > 1) return false;
      digits = 0;
    } else if (std::isdigit(static_cast<unsigned char>(w[i])) && ++digits <= 3) {
      continue;
    } else {
      return false;
    }
  }
  return dots == 1 && digits > 0;
}

bool has_high_byte(std::string_view s) {
  for (char c : s) {
    if (static_cast<unsigned char>(c) >= 0x80) return true;
  }
  return false;
}

// The header block: everything before the first empty line.
std::string_view header_block(std::string_view raw) {
  size_t end = raw.find("\r\n\r\n");
  if (end == std::string_view::npos) end = raw.find("\n\n");
  return end == std::string_view::npos ? raw : raw.substr(0, end);
}

}  // namespace

std::string Reply::text() const {
  std::string out = std::to_string(code);
  for (size_t i = 0; i < lines.size(); ++i) {
    if (lines[i].empty()) continue;
    out += (i == 0 ? " " : "; ") + lines[i];
  }
  return out;
}

std::string Reply::enhanced() const {
  if (lines.empty()) return "";
  std::string_view first = lines.front();
  std::string_view word = first.substr(0, first.find(' '));
  return is_enhanced_code(word) ? std::string(word) : "";
}

std::optional<ReplyLine> parse_reply_line(std::string_view line) {
  if (line.size() < 3) return std::nullopt;
  for (size_t i = 0; i < 3; ++i) {
    if (!std::isdigit(static_cast<unsigned char>(line[i]))) return std::nullopt;
  }
  ReplyLine r;
  std::from_chars(line.data(), line.data() + 3, r.code);
  if (r.code < 200 || r.code > 599) return std::nullopt;
  if (line.size() == 3) return r;
  if (line[3] != ' ' && line[3] != '-') return std::nullopt;
  r.last = line[3] == ' ';
  r.text = std::string(line.substr(4));
  return r;
}

bool Extensions::has(const std::string& keyword) const {
  return keywords.count(ascii_upper(keyword)) > 0;
}

uint64_t Extensions::size_limit() const {
  auto it = keywords.find("SIZE");
  if (it == keywords.end()) return 0;
  uint64_t n = 0;
  auto [p, ec] = std::from_chars(it->second.data(), it->second.data() + it->second.size(), n);
  return ec == std::errc() ? n : 0;
}

std::vector<std::string> Extensions::auth_mechanisms() const {
  std::vector<std::string> out;
  auto it = keywords.find("AUTH");
  if (it == keywords.end()) return out;
  std::string_view rest = it->second;
  while (!rest.empty()) {
    size_t sp = rest.find(' ');
    std::string_view w = rest.substr(0, sp);
    if (!w.empty()) out.push_back(ascii_upper(std::string(w)));
    if (sp == std::string_view::npos) break;
    rest.remove_prefix(sp + 1);
  }
  return out;
}

std::string Extensions::describe() const {
  if (!esmtp) return "no ESMTP (HELO only)";
  std::string out;
  for (const auto& [k, v] : keywords) {
    if (!out.empty()) out += ' ';
    out += k;
    if (v.empty()) continue;
    std::string params = v;
    for (char& c : params) c = c == ' ' ? ',' : c;
    out += "=" + params;
  }
  return out.empty() ? "no extensions" : out;
}

Extensions parse_ehlo(const Reply& reply) {
  Extensions ext;
  ext.esmtp = true;
  // The first line is the server's name and greeting; every later one is a keyword.
  for (size_t i = 1; i < reply.lines.size(); ++i) {
    std::string_view l = reply.lines[i];
    size_t sp = l.find(' ');
    std::string key = ascii_upper(std::string(l.substr(0, sp)));
    std::string params = sp == std::string_view::npos ? "" : std::string(l.substr(sp + 1));
    // Old servers repeat AUTH as "AUTH=LOGIN PLAIN"; the standard form wins when both exist.
    if (key.rfind("AUTH=", 0) == 0) {
      if (!ext.keywords.count("AUTH")) {
        ext.keywords["AUTH"] = key.substr(5) + (params.empty() ? "" : " " + params);
      }
      continue;
    }
    if (!key.empty()) ext.keywords[key] = params;
  }
  return ext;
}

MessageNeeds analyze(const Envelope& envelope, std::string_view raw) {
  MessageNeeds n;
  n.utf8_address = has_high_byte(envelope.from);
  for (const auto& r : envelope.recipients) n.utf8_address = n.utf8_address || has_high_byte(r);
  n.eight_bit = has_high_byte(raw);
  n.smtputf8 = n.utf8_address || has_high_byte(header_block(raw));
  return n;
}

Status check_fit(const MessageNeeds& needs, uint64_t size, const Extensions& ext,
                 const std::string& server) {
  if (needs.utf8_address && !ext.has("SMTPUTF8")) {
    return Status(ErrorKind::kRejected,
                  server + " does not offer SMTPUTF8, which an address with non-ASCII "
                           "characters needs",
                  ErrorScope::kMessage);
  }
  // SMTPUTF8 implies 8BITMIME (RFC 6531 §3.1).
  if (needs.eight_bit && !ext.has("8BITMIME") && !ext.has("SMTPUTF8")) {
    return Status(ErrorKind::kRejected,
                  server + " does not offer 8BITMIME and the message holds 8-bit data; it "
                           "must be composed with a 7-bit transfer encoding",
                  ErrorScope::kMessage);
  }
  uint64_t limit = ext.size_limit();
  if (limit > 0 && size > limit) {
    return Status(ErrorKind::kRejected,
                  server + " takes messages of at most " + std::to_string(limit) +
                      " bytes (SIZE); this one has " + std::to_string(size),
                  ErrorScope::kMessage);
  }
  return Status::Ok();
}

std::string mail_command(const std::string& from, uint64_t size, const MessageNeeds& needs,
                         const Extensions& ext) {
  std::string cmd = "MAIL FROM:<" + from + ">";
  if (ext.has("SIZE")) cmd += " SIZE=" + std::to_string(size);
  if (needs.eight_bit && ext.has("8BITMIME")) cmd += " BODY=8BITMIME";
  if (needs.smtputf8 && ext.has("SMTPUTF8")) cmd += " SMTPUTF8";
  return cmd;
}

Status check_address(const std::string& address, bool allow_empty) {
  if (address.empty()) {
    if (allow_empty) return Status::Ok();
    return Status(ErrorKind::kInvalidInput, "an envelope recipient is empty");
  }
  for (char c : address) {
    if (c == '\r' || c == '\n' || c == '\0' || c == '<' || c == '>' || c == ' ' || c == '\t') {
      return Status(ErrorKind::kInvalidInput,
                    "envelope address holds a character SMTP cannot carry (CR, LF, NUL, "
                    "space or angle bracket)");
    }
  }
  if (address.find('@') == std::string::npos) {
    return Status(ErrorKind::kInvalidInput, "envelope address " + address + " has no '@'");
  }
  return Status::Ok();
}

void DotStuffer::feed(std::string_view chunk, std::string& out) {
  out.reserve(out.size() + chunk.size() + chunk.size() / 64 + 8);
  for (char c : chunk) {
    if (after_cr_) {
      after_cr_ = false;
      out += '\n';
      line_start_ = true;
      if (c == '\n') continue;  // CRLF complete
    }
    if (c == '\r') {
      out += '\r';
      after_cr_ = true;
      continue;
    }
    if (c == '\n') {  // a bare LF
      out += "\r\n";
      line_start_ = true;
      continue;
    }
    if (line_start_ && c == '.') out += '.';
    line_start_ = false;
    out += c;
  }
}

void DotStuffer::finish(std::string& out) {
  if (after_cr_) {
    out += '\n';
    after_cr_ = false;
    line_start_ = true;
  }
  if (!line_start_) out += "\r\n";
  out += ".\r\n";
  line_start_ = true;
}

std::string queued_id(const Reply& reply) {
  for (const auto& line : reply.lines) {
    std::string u = ascii_upper(line);
    size_t p = u.find("QUEUED AS ");
    if (p == std::string::npos) continue;
    std::string_view rest = std::string_view(line).substr(p + 10);
    size_t end = rest.find_first_of(" ;,)");
    return std::string(rest.substr(0, end));
  }
  return "";
}

}  // namespace mb::smtp
