// File: auth/redact.cpp — secrets in text: literal, in base64 runs at every alignment and cut
// short, SASL credential messages, bearer tokens.
#include "auth/redact.h"

#include <algorithm>
#include <cctype>

#include "core/ascii.h"

namespace mb::redact {
namespace {

constexpr size_t kGram = 4;            // a piece this long is evidence anywhere in a run
constexpr size_t kEdgeMin = 2;         // a piece this long is evidence at a run's edge
constexpr size_t kLongRun = 4096;      // runs longer than this need a longer piece...
constexpr size_t kLongRunGram = 8;     // ...this long, so big base64 data is not hit by chance
constexpr size_t kMinBearerToken = 16;  // "Bearer realm" is not a token

int b64_value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+' || c == '-') return 62;
  if (c == '/' || c == '_') return 63;
  return -1;
}

uint32_t pack(std::string_view four) {
  return (uint32_t(uint8_t(four[0])) << 24) | (uint32_t(uint8_t(four[1])) << 16) |
         (uint32_t(uint8_t(four[2])) << 8) | uint32_t(uint8_t(four[3]));
}

// A piece of `s` of at least kGram bytes (the whole of a shorter `s`) anywhere in `d`.
bool holds_piece(std::string_view d, const Patterns::Secret& s) {
  std::string_view v = s.value;
  if (v.size() <= kGram) return d.find(v) != std::string_view::npos;
  size_t need = d.size() > kLongRun ? std::min(v.size(), kLongRunGram) : kGram;
  for (size_t j = 0; j + kGram <= d.size(); ++j) {
    if (!s.grams.count(pack(d.substr(j, kGram)))) continue;
    if (need == kGram || (j + need <= d.size() && v.find(d.substr(j, need)) != v.npos)) {
      return true;
    }
  }
  return false;
}

// A short piece where a cut run would show one: the secret's end at the start of `d`, or its
// start at the end of `d`. Two bytes are weak evidence, so only in a run that looks encoded.
bool holds_edge(std::string_view d, std::string_view v) {
  size_t shorter = std::min(v.size(), kGram);  // longer pieces are holds_piece's
  for (size_t len = kEdgeMin; len < shorter && len <= d.size(); ++len) {
    if (d.substr(0, len) == v.substr(v.size() - len)) return true;
    if (d.substr(d.size() - len) == v.substr(0, len)) return true;
  }
  return false;
}

// Padding, a digit, '+', '/', '-', '_', or lower case with a capital inside: not a word of
// prose ("and", "NTP", "Trace"), whose bytes match 2-byte pieces by chance.
bool looks_encoded(std::string_view run) {
  bool lower = false, capital_inside = false;
  for (size_t i = 0; i < run.size(); ++i) {
    auto c = static_cast<unsigned char>(run[i]);
    if (std::islower(c)) lower = true;
    else if (std::isupper(c)) capital_inside = capital_inside || i > 0;
    else return true;  // a digit, '+', '/', '-', '_' or '='
  }
  return lower && capital_inside;
}

bool printable_name(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) {
    auto u = static_cast<unsigned char>(c);
    return u > 0x20 && u != 0x7F;
  });
}

// PLAIN ("authzid\0user\0password", possibly cut after the password's first byte) or an
// XOAUTH2/OAUTHBEARER message, whoever's secret it carries.
bool credential_message(std::string_view d) {
  for (std::string_view bearer : {"auth=Bearer ", "auth=bearer "}) {
    if (d.find(bearer) != std::string_view::npos) return true;
  }
  size_t first = d.find('\0');
  if (first == std::string_view::npos) return false;
  size_t second = d.find('\0', first + 1);
  if (second == std::string_view::npos || second == first + 1 || second + 1 >= d.size()) {
    return false;
  }
  std::string_view authzid = d.substr(0, first);
  std::string_view user = d.substr(first + 1, second - first - 1);
  std::string_view rest = d.substr(second + 1);
  return printable_name(authzid) && printable_name(user) &&
         rest.find('\0') == std::string_view::npos;
}

bool run_reveals(std::string_view run, const std::vector<const Patterns*>& patterns) {
  for (const Patterns* p : patterns) {
    if (p->blobs().count(std::string(run))) return true;
  }
  std::string_view chars = run.substr(0, run.find('='));
  bool encoded = looks_encoded(run);
  // A run cut anywhere has its bytes start at one of these bit offsets.
  for (size_t shift : {0, 2, 4, 6}) {
    if (chars.size() * 6 < shift + 16) break;  // not even two bytes
    std::string d = decode_run(chars, shift);
    if (credential_message(d)) return true;
    for (const Patterns* p : patterns) {
      for (const auto& s : p->secrets()) {
        if (s.value.size() < kEdgeMin) continue;
        if (holds_piece(d, s) || (encoded && holds_edge(d, s.value))) return true;
      }
    }
  }
  return false;
}

// Replaces each base64 run (with its '=' padding) that reveals a secret.
std::string scrub_runs(std::string_view text, const std::vector<const Patterns*>& patterns) {
  std::string out;
  out.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    if (b64_value(text[i]) < 0) {
      out.push_back(text[i++]);
      continue;
    }
    size_t end = i;
    while (end < text.size() && b64_value(text[end]) >= 0) ++end;
    for (int pad = 0; pad < 2 && end < text.size() && text[end] == '='; ++pad) ++end;
    std::string_view run = text.substr(i, end - i);
    if (run.size() >= 3 && run_reveals(run, patterns)) out.append(kMark);
    else out.append(run);
    i = end;
  }
  return out;
}

void replace_all(std::string& text, std::string_view what) {
  if (what.empty()) return;
  for (size_t p = text.find(what); p != std::string::npos; p = text.find(what, p)) {
    text.replace(p, what.size(), kMark);
    p += kMark.size();  // past the mark, which may itself contain `what`
  }
}

bool token_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_' ||
         c == '~' || c == '+' || c == '/';
}

// "Bearer <token68>" (RFC 6750): the token, when it is long enough to be one.
void scrub_bearer(std::string& text) {
  static constexpr std::string_view kWord = "bearer";
  for (size_t p = 0; p + kWord.size() < text.size(); ++p) {
    bool word = std::equal(kWord.begin(), kWord.end(), text.begin() + p, [](char a, char b) {
      return a == ascii_lower_char(b);
    });
    if (!word) continue;
    size_t start = p + kWord.size();
    while (start < text.size() && (text[start] == ' ' || text[start] == '\t')) ++start;
    if (start == p + kWord.size()) continue;
    size_t end = start;
    while (end < text.size() && token_char(text[end])) ++end;
    while (end < text.size() && text[end] == '=') ++end;
    if (end - start < kMinBearerToken) continue;
    text.replace(start, end - start, kMark);
    p = start + kMark.size() - 1;
  }
}

}  // namespace

void Patterns::add_secret(std::string_view secret, bool literal, bool transient) {
  if (secret.empty()) return;
  for (auto& s : secrets_) {
    if (s.value == secret) {
      s.literal = s.literal || literal;
      s.transient = s.transient && transient;
      return;
    }
  }
  Secret s;
  s.value = std::string(secret);
  s.literal = literal;
  s.transient = transient;
  if (secret.size() > kGram) {
    for (size_t j = 0; j + kGram <= secret.size(); ++j) {
      s.grams.insert(pack(secret.substr(j, kGram)));
    }
  }
  secrets_.push_back(std::move(s));
}

void Patterns::add_blob(std::string_view blob) {
  if (blob.size() < 4 || !blobs_.insert(std::string(blob)).second) return;
  blob_order_.emplace_back(blob);
}

void Patterns::trim(size_t max) {
  while (blob_order_.size() > max) {
    blobs_.erase(blob_order_.front());
    blob_order_.erase(blob_order_.begin());
  }
  size_t transient = std::count_if(secrets_.begin(), secrets_.end(),
                                   [](const Secret& s) { return s.transient; });
  for (auto it = secrets_.begin(); transient > max && it != secrets_.end();) {
    if (it->transient) {
      it = secrets_.erase(it);
      --transient;
    } else {
      ++it;
    }
  }
}

std::string decode_run(std::string_view run, size_t shift) {
  std::string out;
  uint32_t bits = 0;
  size_t nbits = 0;
  size_t skip = shift;
  for (char c : run) {
    int v = b64_value(c);
    if (v < 0) continue;
    bits = (bits << 6) | static_cast<uint32_t>(v);
    nbits += 6;
    if (skip > 0) {
      size_t drop = std::min(skip, nbits);
      nbits -= drop;
      skip -= drop;
      bits &= (1u << nbits) - 1;
    }
    if (nbits >= 8) {
      nbits -= 8;
      out.push_back(static_cast<char>((bits >> nbits) & 0xFF));
      bits &= (1u << nbits) - 1;
    }
  }
  return out;
}

std::string scrub(std::string_view text, const std::vector<const Patterns*>& patterns) {
  std::string out = scrub_runs(text, patterns);
  // Longest first, so a secret that contains another is replaced whole.
  std::vector<std::string_view> literal;
  for (const Patterns* p : patterns) {
    for (const auto& s : p->secrets()) {
      if (s.literal) literal.push_back(s.value);
    }
    for (const auto& b : p->blobs()) literal.push_back(b);
  }
  std::sort(literal.begin(), literal.end(),
            [](std::string_view a, std::string_view b) { return a.size() > b.size(); });
  for (std::string_view s : literal) replace_all(out, s);
  scrub_bearer(out);
  return out;
}

}  // namespace mb::redact
