// File: connectors/imap/imap_parser.cpp — the IMAP response parser (no I/O).
//
// A response is collected line by line. Each line is tokenized as soon as its CRLF arrives,
// with the stack of open lists carried across lines, so a literal `{N}` can sit anywhere in a
// nested list (a FETCH's BODY[] inside "( ... )"). Only the first line decides the shape:
// continuation, tagged or untagged, status (resp-text) or data.
#include "connectors/imap/imap_parser.h"

#include <algorithm>
#include <cctype>

#include "core/ascii.h"

namespace mb::imap {
namespace {

bool is_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(),
                                   [](char c) { return c >= '0' && c <= '9'; });
}

// Parses decimal digits; nullopt on overflow or a non-digit.
std::optional<uint64_t> parse_u64(std::string_view s) {
  if (!is_digits(s) || s.size() > 20) return std::nullopt;
  uint64_t v = 0;
  for (char c : s) {
    uint64_t d = static_cast<uint64_t>(c - '0');
    if (v > (UINT64_MAX - d) / 10) return std::nullopt;
    v = v * 10 + d;
  }
  return v;
}

Condition condition_of(std::string_view word) {
  std::string w = ascii_upper(word);
  if (w == "OK") return Condition::kOk;
  if (w == "NO") return Condition::kNo;
  if (w == "BAD") return Condition::kBad;
  if (w == "PREAUTH") return Condition::kPreauth;
  if (w == "BYE") return Condition::kBye;
  return Condition::kNone;
}

Status protocol_error(std::string reason) {
  return Status(ErrorKind::kProtocol, "malformed IMAP response: " + reason,
                ErrorScope::kConnection);
}

// Reads one word (up to a space or the end).
std::string_view read_word(std::string_view line, size_t& pos) {
  size_t end = line.find(' ', pos);
  if (end == std::string_view::npos) end = line.size();
  std::string_view w = line.substr(pos, end - pos);
  pos = end;
  return w;
}

// Tokenizes IMAP values into the innermost open list. Stops at the end of the line; a
// literal header there is reported through `literal`.
struct Tokenizer {
  std::vector<std::vector<Value>*>& stack;
  size_t max_depth;
  std::optional<uint64_t> literal;

  Status run(std::string_view line, size_t pos);

 private:
  Status quoted(std::string_view line, size_t& pos);
  Status literal_header(std::string_view line, size_t& pos);
  void atom(std::string_view line, size_t& pos);
  std::vector<Value>& top() { return *stack.back(); }
};

Status Tokenizer::run(std::string_view line, size_t pos) {
  while (pos < line.size()) {
    char c = line[pos];
    if (c == ' ') {
      ++pos;
    } else if (c == '(') {
      if (stack.size() > max_depth) return protocol_error("lists nested too deeply");
      top().push_back(Value{Value::Type::kList, {}, 0, false, {}});
      stack.push_back(&top().back().list);
      ++pos;
    } else if (c == ')') {
      if (stack.size() <= 1) return protocol_error("unexpected ')'");
      stack.pop_back();
      ++pos;
    } else if (c == '"') {
      MB_RETURN_IF_ERROR(quoted(line, pos));
    } else if (c == '{' || (c == '~' && pos + 1 < line.size() && line[pos + 1] == '{')) {
      MB_RETURN_IF_ERROR(literal_header(line, pos));
    } else if (c == '\0') {
      return protocol_error("NUL byte in a line");
    } else {
      atom(line, pos);
    }
  }
  return Status::Ok();
}

Status Tokenizer::quoted(std::string_view line, size_t& pos) {
  std::string s;
  for (size_t i = pos + 1; i < line.size(); ++i) {
    char c = line[i];
    if (c == '"') {
      top().push_back(Value{Value::Type::kString, std::move(s), 0, false, {}});
      pos = i + 1;
      return Status::Ok();
    }
    if (c == '\\') {
      if (i + 1 >= line.size()) break;
      char e = line[++i];
      if (e != '"' && e != '\\') return protocol_error("invalid escape in a quoted string");
      s.push_back(e);
    } else if (c == '\0') {
      return protocol_error("NUL byte in a quoted string");
    } else {
      s.push_back(c);
    }
  }
  return protocol_error("unterminated quoted string");
}

Status Tokenizer::literal_header(std::string_view line, size_t& pos) {
  size_t open = line[pos] == '~' ? pos + 1 : pos;
  size_t close = line.find('}', open);
  if (close == std::string_view::npos || close + 1 != line.size())
    return protocol_error("literal size is not at the end of the line");
  std::string_view digits = line.substr(open + 1, close - open - 1);
  if (!digits.empty() && digits.back() == '+') digits.remove_suffix(1);
  auto n = parse_u64(digits);
  if (!n) return protocol_error("bad literal size '" + std::string(digits) + "'");
  literal = *n;
  pos = line.size();
  return Status::Ok();
}

// An atom runs to a space or a paren; a '[' opens a section (BODY[HEADER.FIELDS (A B)]) whose
// spaces and parens belong to the atom up to the matching ']'.
void Tokenizer::atom(std::string_view line, size_t& pos) {
  size_t start = pos;
  int brackets = 0;
  while (pos < line.size()) {
    char c = line[pos];
    if (c == '[') {
      ++brackets;
    } else if (c == ']' && brackets > 0) {
      --brackets;
    } else if (brackets == 0 && (c == ' ' || c == '(' || c == ')' || c == '"')) {
      break;
    }
    ++pos;
  }
  std::string_view text = line.substr(start, pos - start);
  Value v{Value::Type::kAtom, std::string(text), 0, false, {}};
  if (auto n = parse_u64(text)) {
    v.type = Value::Type::kNumber;
    v.number = *n;
  } else if (ascii_upper(text) == "NIL") {
    v.type = Value::Type::kNil;
    v.text.clear();
  }
  top().push_back(std::move(v));
}

// Names of untagged data whose arguments must parse; other untagged data that does not
// tokenize is kept as text, so an odd extension cannot break the connection.
bool is_known_data(const std::string& name) {
  static const char* const kKnown[] = {"FETCH", "SEARCH", "ESEARCH", "CAPABILITY", "FLAGS",
                                       "LIST", "LSUB", "STATUS", "EXISTS", "RECENT",
                                       "EXPUNGE", "ENABLED", "VANISHED"};
  return std::any_of(std::begin(kKnown), std::end(kKnown),
                     [&](const char* k) { return name == k; });
}

// resp-text: an optional "[CODE args]" then free text.
void parse_resp_text(std::string_view line, size_t pos, ImapResponse& r, size_t max_depth) {
  while (pos < line.size() && line[pos] == ' ') ++pos;
  if (pos < line.size() && line[pos] == '[') {
    size_t close = line.find(']', pos);
    if (close != std::string_view::npos) {
      std::string_view inner = line.substr(pos + 1, close - pos - 1);
      size_t p = 0;
      r.code = ascii_upper(read_word(inner, p));
      std::vector<std::vector<Value>*> stack{&r.code_args};
      Tokenizer t{stack, max_depth, std::nullopt};
      // A code whose arguments do not tokenize keeps its name; its text is informative.
      if (!t.run(inner, p).ok() || t.literal || stack.size() != 1) r.code_args.clear();
      pos = close + 1;
      if (pos < line.size() && line[pos] == ' ') ++pos;
    }
  }
  r.text = std::string(line.substr(pos));
}

}  // namespace

bool Value::is_atom(std::string_view upper_name) const {
  return type == Type::kAtom && ascii_upper(text) == upper_name;
}

std::optional<uint64_t> Value::as_number() const {
  if (type == Type::kNumber) return number;
  if (type == Type::kAtom || type == Type::kString) return parse_u64(text);
  return std::nullopt;
}

const char* to_string(Condition c) {
  switch (c) {
    case Condition::kOk: return "OK";
    case Condition::kNo: return "NO";
    case Condition::kBad: return "BAD";
    case Condition::kPreauth: return "PREAUTH";
    case Condition::kBye: return "BYE";
    default: return "";
  }
}

ResponseParser::ResponseParser(ParserLimits limits) : limits_(limits) {}

void ResponseParser::reset() {
  phase_ = Phase::kLine;
  line_.clear();
  cr_seen_ = false;
  first_line_ = true;
  literal_left_ = 0;
  literal_.clear();
  literal_count_ = 0;
  stack_.clear();
  response_ = ImapResponse{};
  error_ = Status::Ok();
}

ParseStep ResponseParser::fail(std::string reason) {
  return fail_with(protocol_error(std::move(reason)));
}

ParseStep ResponseParser::fail_with(Status s) {
  phase_ = Phase::kError;
  error_ = std::move(s);
  return {ParseStep::kError, 0};
}

ParseStep ResponseParser::feed(std::string_view& in) {
  if (phase_ == Phase::kError) return {ParseStep::kError, 0};
  if (phase_ == Phase::kDone) return {ParseStep::kResponse, 0};
  while (true) {
    if (phase_ == Phase::kLiteral) {
      size_t n = static_cast<size_t>(std::min<uint64_t>(literal_left_, in.size()));
      literal_.append(in.substr(0, n));
      in.remove_prefix(n);
      literal_left_ -= n;
      if (literal_left_ > 0) return {ParseStep::kNeedMore, 0};
      ParseStep s = supply_literal(std::move(literal_));
      literal_.clear();
      if (s.kind != ParseStep::kNeedMore) return s;
      continue;
    }
    if (in.empty()) return {ParseStep::kNeedMore, 0};
    size_t lf = in.find('\n');
    std::string_view chunk = in.substr(0, lf == std::string_view::npos ? in.size() : lf);
    for (char c : chunk) {
      if (cr_seen_) return fail("CR sent without LF");
      if (c == '\r') {
        cr_seen_ = true;
      } else {
        line_.push_back(c);
      }
    }
    if (line_.size() > limits_.max_line)
      return fail("line longer than " + std::to_string(limits_.max_line) + " bytes");
    if (lf == std::string_view::npos) {
      in.remove_prefix(in.size());
      return {ParseStep::kNeedMore, 0};
    }
    in.remove_prefix(lf + 1);
    ParseStep s = on_line_end();
    if (s.kind != ParseStep::kNeedMore) return s;
  }
}

ParseStep ResponseParser::feed_line(std::string_view line) {
  std::string_view crlf = "\r\n";
  ParseStep s = feed(line);
  if (s.kind != ParseStep::kNeedMore || !line.empty()) return s;
  return feed(crlf);
}

ParseStep ResponseParser::supply_literal(std::string body) {
  if (phase_ != Phase::kLiteral) return fail("a literal was supplied when none was due");
  std::vector<Value>& list = stack_.empty() ? response_.args : *stack_.back();
  list.push_back(Value{Value::Type::kString, std::move(body), 0, true, {}});
  phase_ = Phase::kLine;
  literal_left_ = 0;
  return {ParseStep::kNeedMore, 0};
}

ResponseParser::LiteralContext ResponseParser::literal_context() const {
  LiteralContext c;
  c.name = response_.name;
  c.depth = stack_.size();
  if (!stack_.empty() && !stack_.back()->empty() &&
      stack_.back()->back().type == Value::Type::kAtom) {
    c.key = stack_.back()->back().text;
  }
  return c;
}

ImapResponse ResponseParser::take_response() {
  ImapResponse r = std::move(response_);
  reset();
  return r;
}

ParseStep ResponseParser::on_line_end() {
  std::string line = std::move(line_);
  line_.clear();
  cr_seen_ = false;
  size_t pos = 0;
  if (first_line_) {
    first_line_ = false;
    if (line.empty()) return fail("empty line");
    bool done = false;
    Status s = parse_first_line(line, pos, done);
    if (!s.ok()) return fail_with(std::move(s));
    if (done) {
      phase_ = Phase::kDone;
      return {ParseStep::kResponse, 0};
    }
  }
  return tokenize_segment(line, pos);
}

// Tokenizes the rest of a line into the open lists; then the response is either complete
// or waits for a literal.
ParseStep ResponseParser::tokenize_segment(std::string_view line, size_t pos) {
  if (stack_.empty()) stack_.push_back(&response_.args);
  Tokenizer t{stack_, limits_.max_depth, std::nullopt};
  Status s = t.run(line, pos);
  if (!s.ok()) {
    bool lenient = literal_count_ == 0 && !is_known_data(response_.name);
    if (!lenient) return fail_with(std::move(s));
    response_.args.clear();
    stack_.clear();
    response_.text = std::string(line.substr(pos));
    phase_ = Phase::kDone;
    return {ParseStep::kResponse, 0};
  }
  if (t.literal) {
    if (*t.literal > limits_.max_literal)
      return fail("literal of " + std::to_string(*t.literal) + " bytes exceeds the limit");
    if (++literal_count_ > limits_.max_literals) return fail("too many literals");
    phase_ = Phase::kLiteral;
    literal_left_ = *t.literal;
    literal_.clear();
    return {ParseStep::kLiteral, *t.literal};
  }
  if (stack_.size() != 1) return fail("unterminated list");
  stack_.clear();
  phase_ = Phase::kDone;
  return {ParseStep::kResponse, 0};
}

Status ResponseParser::parse_first_line(std::string_view line, size_t& pos, bool& done) {
  ImapResponse& r = response_;
  if (line[0] == '+') {
    r.kind = ImapResponse::Kind::kContinuation;
    r.text = std::string(line.substr(line.size() > 1 && line[1] == ' ' ? 2 : 1));
    done = true;
    return Status::Ok();
  }
  std::string_view first = read_word(line, pos);
  if (pos < line.size()) ++pos;
  std::string_view word = read_word(line, pos);
  if (first == "*") {
    r.kind = ImapResponse::Kind::kUntagged;
    if (auto n = parse_u64(word)) {
      r.number = *n;
      if (pos < line.size()) ++pos;
      word = read_word(line, pos);
    }
  } else {
    r.kind = ImapResponse::Kind::kTagged;
    r.tag = std::string(first);
    if (r.tag.empty()) return protocol_error("empty tag");
  }
  if (word.empty()) return protocol_error("missing response name in '" + std::string(line) + "'");
  r.condition = r.number ? Condition::kNone : condition_of(word);
  if (r.kind == ImapResponse::Kind::kTagged &&
      (r.condition == Condition::kNone || r.condition == Condition::kPreauth ||
       r.condition == Condition::kBye))
    return protocol_error("tagged response is not OK, NO or BAD");
  if (r.is_status()) {
    parse_resp_text(line, pos, r, limits_.max_depth);
    done = true;
    return Status::Ok();
  }
  r.name = ascii_upper(word);
  if (pos < line.size() && line[pos] == ' ') ++pos;
  return Status::Ok();
}

Result<ImapResponse> parse_response(std::string_view bytes, ParserLimits limits) {
  ResponseParser p(limits);
  while (true) {
    ParseStep s = p.feed(bytes);
    if (s.kind == ParseStep::kResponse) return p.take_response();
    if (s.kind == ParseStep::kError) return p.error();
    if (s.kind == ParseStep::kNeedMore && bytes.empty())
      return protocol_error("response is incomplete");
  }
}

FolderNews folder_news(const ImapResponse& r, FolderCounts& counts) {
  if (r.kind != ImapResponse::Kind::kUntagged) return FolderNews::kNone;
  if (r.condition == Condition::kBye) return FolderNews::kBye;
  if (!r.number) return FolderNews::kNone;
  uint64_t n = *r.number;
  if (r.name == "EXISTS") {
    bool grew = n > counts.exists;
    counts.exists = n;
    return grew ? FolderNews::kNewMail : FolderNews::kNone;
  }
  if (r.name == "RECENT") {
    bool grew = n > counts.recent;
    counts.recent = n;
    return grew ? FolderNews::kNewMail : FolderNews::kNone;
  }
  if (r.name == "EXPUNGE" && n > 0) {
    if (counts.exists > 0) --counts.exists;
    if (counts.recent > counts.exists) counts.recent = counts.exists;
  }
  return FolderNews::kNone;
}

}  // namespace mb::imap
