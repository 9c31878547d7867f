// File: core/ingest.cpp — decide(): the subject limit, filters (sender, subject, RFC 3834
// auto-replies, the accept-from policy) and the router of SPEC §2; build_message_commit(): what
// a decision writes.
#include "core/ingest.h"

#include <algorithm>
#include <cctype>

#include "core/ascii.h"
#include "core/hash.h"

namespace mb {
namespace {

std::string trim(std::string_view s) {
  size_t b = 0;
  size_t e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return std::string(s.substr(b, e - b));
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_alnum(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; }

// Parses 1–18 digits at text[pos] (no int64 overflow possible); advances pos.
std::optional<int64_t> parse_id(std::string_view text, size_t& pos) {
  size_t start = pos;
  int64_t v = 0;
  while (pos < text.size() && is_digit(text[pos]) && pos - start < 18) {
    v = v * 10 + (text[pos] - '0');
    ++pos;
  }
  if (pos == start || (pos < text.size() && is_digit(text[pos])) || v == 0) return std::nullopt;
  return v;
}

void skip_spaces(std::string_view text, size_t& pos) {
  while (pos < text.size() && (text[pos] == ' ' || text[pos] == '\t')) ++pos;
}

// "[<module> - <id>]" starting at text[open] == '['.
std::optional<int64_t> module_tag_at(std::string_view text, std::string_view lowered,
                                     size_t open, const std::vector<std::string>& modules) {
  for (const auto& module : modules) {
    if (module.empty()) continue;
    size_t pos = open + 1;
    skip_spaces(text, pos);
    std::string m = ascii_lower(module);
    if (lowered.compare(pos, m.size(), m) != 0) continue;
    pos += m.size();
    skip_spaces(text, pos);
    if (pos >= text.size() || text[pos] != '-') continue;
    ++pos;
    skip_spaces(text, pos);
    auto id = parse_id(text, pos);
    if (!id) continue;
    skip_spaces(text, pos);
    if (pos < text.size() && text[pos] == ']') return id;
  }
  return std::nullopt;
}

// The first rule (length > 1 code point) that is a case-insensitive substring of `haystack`.
std::optional<std::string> first_rule_in(const std::string& haystack,
                                         const std::vector<std::string>& defaults,
                                         const std::vector<std::string>& custom, bool use_defaults) {
  std::string h = ascii_lower(haystack);
  auto check = [&](const std::vector<std::string>& rules) -> std::optional<std::string> {
    for (const auto& rule : rules) {
      if (utf8_length(rule) <= 1) continue;  // one-character rules would match nearly all mail
      if (h.find(ascii_lower(rule)) != std::string::npos) return rule;
    }
    return std::nullopt;
  };
  if (use_defaults) {
    if (auto r = check(defaults)) return r;
  }
  return check(custom);
}

Decision skip(const char* reason, bool filtered) {
  Decision d;
  d.kind = Decision::Kind::kSkip;
  d.reason = reason;
  d.filtered = filtered;
  return d;
}

// A rule matched ticket `id`: a note when it exists, else a new ticket (no fall-through).
Result<Decision> note_or_new(int64_t id, const char* by, const RouteContext& ctx) {
  Decision d;
  if (!ctx.ticket_exists) return d;
  auto exists = ctx.ticket_exists(id);
  if (!exists.ok()) {
    return exists.status().prefixed("routing (" + std::string(by) + "): looking up ticket " +
                                    std::to_string(id));
  }
  if (*exists) {
    d.kind = Decision::Kind::kNote;
    d.ticket_id = id;
    d.matched_by = by;
  }
  return d;
}

std::vector<std::string> modules_of(const Config& config, const std::string& project) {
  for (const auto& p : config.projects) {
    if (p.name == project) return p.modules;
  }
  return ProjectConfig{}.modules;
}

// Rule 1; nullopt when no referenced Message-ID is one mailbridge sent.
Result<std::optional<Decision>> route_by_sent_message(const ParsedMessage& msg,
                                                      const RouteContext& ctx) {
  if (!ctx.ticket_for_message_id) return std::optional<Decision>();
  std::vector<std::string> ids;
  if (!msg.in_reply_to.empty()) ids.push_back(msg.in_reply_to);
  // The nearest ancestor is the last reference.
  ids.insert(ids.end(), msg.references.rbegin(), msg.references.rend());
  for (const auto& id : ids) {
    auto ticket = ctx.ticket_for_message_id(id);
    if (!ticket.ok()) {
      return ticket.status().prefixed("routing (in-reply-to): looking up Message-ID " + id);
    }
    if (!*ticket) continue;
    auto d = note_or_new(**ticket, "in-reply-to", ctx);
    if (!d.ok()) return d.status();
    if (d->kind == Decision::Kind::kNote) d->matched_message_id = id;
    return std::optional<Decision>(*d);
  }
  return std::optional<Decision>();
}

Result<Decision> route(const ParsedMessage& msg, const std::vector<std::string>& modules,
                       const RouteContext& ctx) {
  auto by_sent = route_by_sent_message(msg, ctx);
  if (!by_sent.ok()) return by_sent.status();
  if (*by_sent) return **by_sent;
  if (ctx.ticket_for_tracking_cookie) {
    auto id = ctx.ticket_for_tracking_cookie(msg);
    if (!id.ok()) return id.status().prefixed("routing (cookie)");
    if (*id) return note_or_new(**id, "cookie", ctx);
  }
  for (const std::string* text : {&msg.subject, &msg.text, &msg.html}) {
    if (auto id = find_module_tag(*text, modules)) return note_or_new(*id, "module-tag", ctx);
  }
  if (auto id = find_hash_id(msg.subject)) return note_or_new(*id, "hash-id", ctx);
  return Decision{};
}

}  // namespace

size_t utf8_length(std::string_view text) {
  // Count every byte that does not continue a sequence; invalid bytes count as one each.
  return static_cast<size_t>(std::count_if(text.begin(), text.end(), [](char c) {
    return (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  }));
}

const std::vector<std::string>& default_sender_filters() {
  static const std::vector<std::string> kSenders = {
      "Postmaster", "Mail Delivery Subsystem", "System Administrator", "Mailer-Daemon"};
  return kSenders;
}

const std::vector<std::string>& default_subject_filters() {
  static const std::vector<std::string> kSubjects = {
      "Undeliverable Mail",
      "Returned Mail",
      "Mail System Error",
      "Delivery Error",
      "Undeliverable:",
      "Failure Notice",
      "Nondeliverable Mail",
      "Mail Delivery Failure",
      "Message Status - undeliverable",
      "Warning: Could not send message",
      "Delivery Notification: Delivery has failed",
      "Mail Undeliverable: Failure Detected",
      "Message Status - opened",
      "Returned Mail: Service Unavailable",
      "Out of Office"};
  return kSubjects;
}

std::optional<std::string> sender_filter_match(const ParsedMessage& msg, const FilterConfig& f) {
  std::string sender = msg.from.name + " <" + msg.from.email + ">";
  return first_rule_in(sender, default_sender_filters(), f.senders, f.use_defaults);
}

std::optional<std::string> subject_filter_match(const ParsedMessage& msg, const FilterConfig& f) {
  return first_rule_in(msg.subject, default_subject_filters(), f.subjects, f.use_defaults);
}

bool is_auto_reply(const ParsedMessage& msg) {
  if (msg.has_header("Auto-Submitted")) {
    // RFC 3834 §5: "no" (possibly with parameters) is the only value of a human message.
    std::string v = ascii_lower(trim(msg.header("Auto-Submitted")));
    v = trim(v.substr(0, v.find(';')));
    if (v != "no") return true;
  }
  std::string precedence = ascii_lower(trim(msg.header("Precedence")));
  if (precedence == "bulk" || precedence == "junk" || precedence == "list") return true;
  if (msg.has_header("X-Autoreply") || msg.has_header("X-Autorespond")) return true;
  if (msg.has_return_path) {
    std::string rp;
    for (char c : msg.return_path) {
      if (!std::isspace(static_cast<unsigned char>(c))) rp.push_back(c);
    }
    if (rp == "<>" || rp.empty()) return true;
  }
  return false;
}

std::optional<int64_t> find_module_tag(const std::string& text,
                                       const std::vector<std::string>& modules) {
  std::string lowered = ascii_lower(text);
  for (size_t open = text.find('['); open != std::string::npos; open = text.find('[', open + 1)) {
    if (auto id = module_tag_at(text, lowered, open, modules)) return id;
  }
  return std::nullopt;
}

std::optional<int64_t> find_hash_id(const std::string& subject) {
  for (size_t h = subject.find('#'); h != std::string::npos; h = subject.find('#', h + 1)) {
    // "&#1234;" is an HTML entity, "abc#12" part of a word: neither names a ticket.
    if (h > 0 && (is_alnum(subject[h - 1]) || subject[h - 1] == '&')) continue;
    size_t pos = h + 1;
    auto id = parse_id(subject, pos);
    if (!id) continue;
    if (pos < subject.size() && (is_alnum(subject[pos]) || subject[pos] == '_')) continue;
    return id;
  }
  return std::nullopt;
}

bool is_restricted(const std::string& filename, const std::vector<std::string>& extensions) {
  std::string name = filename;
  while (!name.empty() && (name.back() == '.' || name.back() == ' ')) name.pop_back();
  size_t dot = name.rfind('.');
  if (dot == std::string::npos) return false;
  std::string ext = ascii_lower(name.substr(dot + 1));
  if (ext.empty()) return false;
  return std::any_of(extensions.begin(), extensions.end(), [&](const std::string& e) {
    std::string_view want = e;
    if (!want.empty() && want.front() == '.') want.remove_prefix(1);
    return ascii_lower(want) == ext;
  });
}

const UserConfig* find_technician(const Config& config, const std::string& email) {
  if (email.empty()) return nullptr;
  std::string e = ascii_lower(email);
  for (const auto& u : config.users) {
    if (u.role == "technician" && ascii_lower(u.email) == e) return &u;
  }
  return nullptr;
}

std::string sender_address(const ParsedMessage& msg) {
  return !msg.from.email.empty() ? msg.from.email : msg.reply_to;
}

bool sender_accepted(const std::string& sender, const Config& config) {
  const std::string& policy = config.filters.accept_from;
  if (policy == "everyone") return true;
  std::string e = ascii_lower(trim(sender));
  if (e.empty()) return false;
  for (const auto& u : config.users) {
    if (ascii_lower(trim(u.email)) != e) continue;
    if (policy == "requestors-and-technicians") return true;
    if (policy == "requestors") return u.role == "requestor";
    if (policy == "technicians") return u.role == "technician";
    return false;  // an unknown policy (load_config() rejects it) accepts no one
  }
  return false;
}

Result<Decision> decide(const ParsedMessage& msg, const Config& config,
                        const MailboxConfig& mailbox, const RouteContext& ctx) {
  if (utf8_length(msg.subject) > config.ingest.max_subject_length) {
    return skip(kSkipSubjectTooLong, /*filtered=*/false);
  }
  if (sender_filter_match(msg, config.filters)) return skip(kSkipSenderFilter, true);
  if (subject_filter_match(msg, config.filters)) return skip(kSkipSubjectFilter, true);
  if (config.filters.auto_replies && is_auto_reply(msg)) return skip(kSkipAutoReply, true);
  // Applies in every mailbox, the tracking mailbox included (SPEC §2 exempts none).
  if (!sender_accepted(sender_address(msg), config)) return skip(kSkipNotAccepted, true);
  auto d = route(msg, modules_of(config, mailbox.project), ctx);
  if (!d.ok()) return d.status();
  // The tracking mailbox takes replies to tracked mail only, when so configured.
  const bool tracked = d->matched_by == "in-reply-to" || d->matched_by == "cookie";
  if (config.tracking.delete_untracked && !config.tracking.mailbox.empty() &&
      mailbox.name == config.tracking.mailbox && !tracked) {
    return skip(kSkipUntracked, /*filtered=*/false);
  }
  return d;
}

namespace {

std::string email_received_text(const std::string& sender,
                                const std::vector<std::string>& dropped) {
  std::string text = "Email Received from " + (sender.empty() ? "unknown sender" : sender) +
                     ". Attachments not stored (restricted file type): ";
  for (size_t i = 0; i < dropped.size(); ++i) {
    if (i > 0) text += ", ";
    text += dropped[i];
  }
  return text;
}

void move_attachments(ParsedMessage& msg, const Config& config, MessageCommit& c) {
  for (auto& a : msg.attachments) {
    if (is_restricted(a.filename, config.ingest.restricted_extensions)) {
      c.note.dropped_attachments.push_back(a.filename);
      continue;
    }
    StoredAttachment s;
    s.filename = a.filename;
    s.content_type = a.content_type;
    s.content_id = a.content_id;
    s.inline_part = a.inline_part;
    s.size = static_cast<int64_t>(a.data.size());
    s.sha256 = sha256_hex(a.data);
    s.data = std::move(a.data);
    c.attachments.push_back(std::move(s));
  }
}

}  // namespace

MessageCommit build_message_commit(ParsedMessage msg, const Decision& decision,
                                   const MailboxConfig& mailbox, const Config& config) {
  MessageCommit c;
  c.mailbox = mailbox.name;
  if (decision.kind == Decision::Kind::kSkip) {
    c.skip = true;
    c.skip_reason = decision.reason;
    PostAction action = PostAction::leave();
    if (decision.filtered) action = mailbox.after_filtered.value_or(mailbox.after);
    if (decision.reason == kSkipUntracked) action = PostAction::remove();
    c.post_action = action.to_string();
    return c;
  }
  c.post_action = mailbox.after.to_string();
  std::string sender = sender_address(msg);
  const UserConfig* tech = find_technician(config, sender);
  c.note.kind = "email-in";
  c.note.author = sender.empty() ? "unknown" : sender;
  c.note.author_name = tech != nullptr && !tech->name.empty() ? tech->name : msg.from.name;
  c.note.text = std::move(msg.text);
  c.note.html = std::move(msg.html);
  c.note.message_id = msg.message_id;
  if (decision.kind == Decision::Kind::kNote) {
    c.ticket_id = decision.ticket_id;
  } else {
    c.new_ticket.project = mailbox.project;
    c.new_ticket.subject = msg.subject.empty() ? "(no subject)" : msg.subject;
    c.new_ticket.source = "email";
    c.new_ticket.requester = c.note.author;
    c.new_ticket.requester_name = c.note.author_name;
    c.new_ticket.mailbox = mailbox.name;
  }
  move_attachments(msg, config, c);
  if (!c.note.dropped_attachments.empty()) {
    Note system;
    system.kind = "system";
    system.author = "system";
    system.text = email_received_text(sender, c.note.dropped_attachments);
    c.extra_notes.push_back(std::move(system));
  }
  return c;
}

}  // namespace mb
