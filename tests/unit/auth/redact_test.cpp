// File: tests/unit/auth/redact_test.cpp — the redaction component: secrets of 1–20 bytes in
// base64 at every byte alignment, whole and cut at every character, SASL credential messages
// of unknown secrets, registered blobs, bearer tokens, and what must stay untouched.
#include "auth/redact.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <random>
#include <set>

#include "auth/sasl.h"
#include "auth/secrets.h"

namespace mb::redact {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// Standard base64, written here independently of the implementation under test.
std::string b64(const std::string& in) {
  static const char* abc = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  int val = 0, bits = -6;
  for (unsigned char c : in) {
    val = (val << 8) + c;
    bits += 8;
    while (bits >= 0) {
      out.push_back(abc[(val >> bits) & 0x3F]);
      bits -= 6;
    }
  }
  if (bits > -6) out.push_back(abc[((val << 8) >> (bits + 8)) & 0x3F]);
  while (out.size() % 4) out.push_back('=');
  return out;
}

bool b64_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '/' || c == '-' ||
         c == '_';
}

// Every byte a reader can get out of the base64 runs of `text` by decoding each run from
// each of the four bit offsets a cut run can start at (independent of decode_run).
std::vector<std::string> decodable(const std::string& text) {
  static const std::string abc =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::vector<std::string> out;
  for (size_t i = 0; i < text.size();) {
    if (!b64_char(text[i])) {
      ++i;
      continue;
    }
    std::string bits;
    for (; i < text.size() && b64_char(text[i]); ++i) {
      char c = text[i] == '-' ? '+' : text[i] == '_' ? '/' : text[i];
      int v = static_cast<int>(abc.find(c));
      for (int b = 5; b >= 0; --b) bits.push_back(((v >> b) & 1) ? '1' : '0');
    }
    for (size_t shift = 0; shift < 8; shift += 2) {
      std::string bytes;
      for (size_t p = shift; p + 8 <= bits.size(); p += 8) {
        bytes.push_back(static_cast<char>(std::stoi(bits.substr(p, 8), nullptr, 2)));
      }
      out.push_back(bytes);
    }
  }
  return out;
}

// The 2-byte pieces of `secret` that a reader can decode from `text`. Ordinary words decode
// to bytes too, so a test compares against the same text without the secret in it.
std::set<std::string> pieces(const std::string& text, const std::string& secret) {
  std::set<std::string> found;
  for (const auto& bytes : decodable(text)) {
    for (size_t i = 0; i + 2 <= secret.size(); ++i) {
      if (bytes.find(secret.substr(i, 2)) != std::string::npos) found.insert(secret.substr(i, 2));
    }
  }
  return found;
}

// A piece of `secret` decodable from `text` but not from `baseline` (the words around it), or "".
std::string leaked_piece(const std::string& text, const std::string& secret,
                         const std::string& baseline) {
  std::set<std::string> before = pieces(baseline, secret);
  for (const auto& p : pieces(text, secret)) {
    if (!before.count(p)) return p;
  }
  return "";
}

// Not a word of prose: padding, a digit, '+', '/', or lower case with a capital inside.
bool encoded_looking(const std::string& run) {
  bool lower = false, capital_inside = false;
  for (size_t i = 0; i < run.size(); ++i) {
    char c = run[i];
    if (c >= 'a' && c <= 'z') lower = true;
    else if (c >= 'A' && c <= 'Z') capital_inside = capital_inside || i > 0;
    else return true;
  }
  return lower && capital_inside;
}

std::string scrub_with(const std::string& text, const std::string& secret) {
  Patterns p;
  p.add_secret(secret, /*literal=*/secret.size() >= 4);
  return scrub(text, {&p});
}

// Printable secret bytes, so that a PLAIN message holding it is a valid one.
std::string make_secret(size_t n, std::mt19937& rng) {
  static const std::string kChars =
      "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#%&*-_.";
  std::string s;
  for (size_t i = 0; i < n; ++i) s.push_back(kChars[rng() % kChars.size()]);
  return s;
}

std::string random_bytes(size_t n, std::mt19937& rng) {
  std::string s;
  for (size_t i = 0; i < n; ++i) s.push_back(static_cast<char>(0x80 | (rng() & 0x7F)));
  return s;
}

TEST(RedactTest, IssueExamplePlainEchoLeavesNoPiece) {
  // The password ends in "YZ": the old redactor left "…AF<redacted>WVo=", "WVo=" being "YZ".
  const std::string password = "correct-horse-XYZ";
  std::string blob = b64(std::string("\0", 1) + "support@example.com" + std::string("\0", 1) +
                         password);
  std::string out = scrub_with("a1 NO [AUTHENTICATIONFAILED] echo " + blob + " rejected",
                               password);
  EXPECT_EQ(out, "a1 NO [AUTHENTICATIONFAILED] echo <redacted> rejected");
  EXPECT_EQ(leaked_piece(out, password, "a1 NO [AUTHENTICATIONFAILED] echo <redacted> rejected"),
            "");
}

// The class of the issue: a secret of every length 2–20 at every byte alignment inside a
// base64 blob (other bytes around it, or the blob ending with it and padded), the blob whole
// or cut at every character from either end. Whenever the run still holds 4 bytes of the
// secret, or 2 and it does not read as a word, the whole run is replaced and the words
// around it stay.
TEST(RedactTest, EveryAlignmentEveryCutEveryLength) {
  std::mt19937 rng(13);
  for (size_t n = 2; n <= 20; ++n) {
    for (size_t before = 0; before < 6; ++before) {  // alignments 0, 1, 2 mod 3, twice
      for (size_t after : {0, 1, 2, 5}) {
        std::string secret = make_secret(n, rng);
        std::string blob = random_bytes(before, rng) + secret + random_bytes(after, rng);
        std::string enc = b64(blob);
        std::string chars = enc.substr(0, enc.find('='));
        for (size_t cut = 0; cut < chars.size(); ++cut) {
          // Kept: the first `cut + 1` characters, or everything from character `cut` on.
          std::string head = chars.substr(0, cut + 1);
          std::string tail = enc.substr(cut);
          size_t head_bytes = head.size() * 6 / 8;          // whole bytes in the head
          size_t tail_first = (cut * 6 + 7) / 8;            // first whole byte in the tail
          auto secret_bytes = [&](size_t from, size_t to) {  // of blob[from, to)
            size_t lo = std::max(from, before), hi = std::min(to, before + n);
            return hi > lo ? hi - lo : 0;
          };
          for (auto [run, present] : {std::pair{head, secret_bytes(0, head_bytes)},
                                      std::pair{tail, secret_bytes(tail_first, blob.size())}}) {
            std::string out = scrub_with("NO echo: " + run + " rejected", secret);
            SCOPED_TRACE("n=" + std::to_string(n) + " before=" + std::to_string(before) +
                         " after=" + std::to_string(after) + " run=" + run);
            // 2–3 bytes are 16–24 bits: found only where the run does not read as a word.
            if (present >= 4 || (present >= 2 && encoded_looking(run))) {
              EXPECT_EQ(out, "NO echo: <redacted> rejected");
              EXPECT_EQ(leaked_piece(out, secret, "NO echo: <redacted> rejected"), "");
            }
          }
        }
      }
    }
  }
}

// Secrets of 1–20 bytes in a PLAIN message whose user name moves the password through all
// three alignments: the message is a credential message, found even when the secret is not
// known (1 byte is too short to find by itself).
TEST(RedactTest, PlainMessagesOfEveryLengthAndAlignmentAreRemovedWhole) {
  std::mt19937 rng(4711);
  for (size_t n = 1; n <= 20; ++n) {
    for (size_t user_len = 1; user_len <= 3; ++user_len) {
      std::string secret = make_secret(n, rng);
      std::string msg = std::string("\0", 1) + std::string(user_len, 'u') +
                        std::string("\0", 1) + secret;
      std::string text = "+ echo " + b64(msg) + " done";
      EXPECT_EQ(scrub_with(text, secret), "+ echo <redacted> done") << n << " " << user_len;
      EXPECT_EQ(scrub(text, {}), "+ echo <redacted> done") << "unknown secret, n=" << n;
    }
  }
}

TEST(RedactTest, UrlAlphabetAndSecretAtTheStart) {
  std::string secret = "\xfb\xff\xfe-binary-key";
  std::string enc = b64(secret + "tail");
  for (char& c : enc) c = c == '+' ? '-' : c == '/' ? '_' : c;
  std::string out = scrub_with("key " + enc + " end", secret);
  EXPECT_EQ(out, "key <redacted> end");
}

TEST(RedactTest, XOAuth2AndOAuthBearerMessagesAreRemovedWhole) {
  std::string token = "ya29.unknown-token-value";
  std::string x = b64(sasl::xoauth2_message("u@example.com", token));
  std::string o = b64(sasl::oauthbearer_message("u@example.com", "imap.example.com", 993, token));
  EXPECT_EQ(scrub("NO " + x + " bad", {}), "NO <redacted> bad");
  EXPECT_EQ(scrub("NO " + o + " bad", {}), "NO <redacted> bad");
}

TEST(RedactTest, RegisteredBlobIsRemovedWhole) {
  Patterns p;
  p.add_blob("cGFzcw==");  // LOGIN's password line for a password too short to look for
  EXPECT_EQ(scrub("BAD cGFzcw== was the answer", {&p}), "BAD <redacted> was the answer");
}

TEST(RedactTest, BearerTokensAreRemoved) {
  EXPECT_EQ(scrub("Authorization: Bearer eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln", {}),
            "Authorization: Bearer <redacted>");
  // Too short to be a token: a word in an error text.
  EXPECT_EQ(scrub("WWW-Authenticate: Bearer realm=\"x\"", {}),
            "WWW-Authenticate: Bearer realm=\"x\"");
}

TEST(RedactTest, LiteralSecretsLongestFirst) {
  Patterns p;
  p.add_secret("hunter22", true);
  p.add_secret("hunter22-and-more", true);
  EXPECT_EQ(scrub("pw hunter22-and-more / hunter22", {&p}), "pw <redacted> / <redacted>");
}

TEST(RedactTest, OrdinaryTextIsLeftAlone) {
  Patterns p;
  p.add_secret("correct-horse-XYZ", true);
  p.add_secret("ab", false);
  const std::string text =
      "a1 NO [AUTHENTICATIONFAILED] Authentication failed. (2026-12-07 08:00 UTC) "
      "Message-ID <20261207.abc@example.com> size=1048576 uid 4711";
  EXPECT_EQ(scrub(text, {&p}), text);
}

// Many and long secrets (a PEM key, tokens) must not make prose match by chance: a 2-byte
// piece counts only at the edge of a run that looks encoded.
TEST(RedactTest, ProseSurvivesManyLongSecrets) {
  std::mt19937 rng(65001);
  Patterns p;
  for (int i = 0; i < 64; ++i) p.add_secret(random_bytes(4096, rng), true, true);
  const std::string text =
      "the resource (API) of the requested scope is not found in the tenant - check the "
      "scope's resource URL and that its service (e.g. Exchange Online) is licensed; "
      "synchronise this server's clock (NTP) and try again. Trace ID "
      "255d1aef-8c98-452f-ac51-23d05124000f (AADSTS500011, invalid_resource)";
  EXPECT_EQ(scrub(text, {&p}), text);
}

TEST(RedactTest, DecodeRunFromEveryShift) {
  EXPECT_EQ(decode_run("SGVsbG8", 0), "Hello");
  // "Hello" from the second character on: the bytes start 2 bits into it.
  EXPECT_EQ(decode_run(std::string("SGVsbG8").substr(1), 2), "ello");
  EXPECT_EQ(decode_run("-_-_", 0), "\xfb\xff\xbf");  // the URL alphabet
}

TEST(RedactTest, RedactorAndWithoutSecretUseIt) {
  const std::string password = "resolved-WXYZ";  // "\0me\0" + 13 bytes: "YZ" ends alone
  Redactor::instance().add(password);
  std::string blob = b64(std::string("\0", 1) + "me" + std::string("\0", 1) + password);
  EXPECT_EQ(Redactor::instance().scrub("NO " + blob), "NO <redacted>");
  const std::string local = "only-here-AB";
  std::string echo = b64(std::string("\0me\0", 4) + local).substr(4);  // cut: no PLAIN shape
  EXPECT_EQ(Redactor::instance().scrub("NO " + echo, local), "NO <redacted>");
  EXPECT_EQ(sasl::without_secret("NO " + echo, local), "NO <redacted>");
  EXPECT_THAT(sasl::excerpt("NO " + echo + " x", local), Not(HasSubstr(echo.substr(4))));
}

}  // namespace
}  // namespace mb::redact
