// File: auth/redact.h — finding secrets in text bound for a log, an error or a report.
//
// A secret leaks in more shapes than its own bytes. A server that echoes an AUTHENTICATE
// PLAIN blob ("\0user\0password", base64) shows the password at any of the three byte
// alignments of base64, and a reply cut short shows a piece of it. So besides the literal
// secret, scrub() reads every base64 run of the text (standard and URL alphabet, from each of
// its four possible byte alignments) and replaces the whole run when its bytes hold:
//   - a piece of a secret of 4 bytes or more (the whole secret when it is shorter), anywhere;
//   - a piece of 2 or 3 bytes at the run's start (the end of a secret: the run was cut
//     before it) or at its end (the start of a secret: cut after it), when the run looks
//     encoded (padding, a digit, '+', '/', '-', '_', or mixed case) rather than like a word;
//   - a SASL credential message, known or not: PLAIN's "authzid\0user\0password" or an
//     XOAUTH2/OAUTHBEARER "auth=Bearer …";
//   - exactly a registered blob (the base64 lines a SASL exchange sent).
// Text after "Bearer " that looks like a token is replaced as well. Pure: the process-wide
// Redactor (auth/secrets.h) keeps the Patterns of every secret it was told about.
//
//   redact::Patterns p;
//   p.add_secret("hunter22", /*literal=*/true);
//   redact::scrub("NO echo AGpvaG4AaHVudGVyMjI=", {&p});  // "NO echo <redacted>"
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

namespace mb::redact {

inline constexpr std::string_view kMark = "<redacted>";

// The secrets and blobs to look for. Not thread-safe: the Redactor guards its own.
class Patterns {
 public:
  // `literal`: also replace the secret's own bytes wherever they appear (callers skip this
  // for secrets too short to be told apart from ordinary text). Secrets under 2 bytes are
  // looked for literally only. `transient` secrets (access and refresh tokens) are the
  // ones trim() may forget.
  void add_secret(std::string_view secret, bool literal, bool transient = false);
  // A base64 line that carried credentials, replaced where it appears whole.
  void add_blob(std::string_view blob);
  // Keeps only the newest `max` blobs and `max` transient secrets (tokens and blobs change
  // with every refresh; configured secrets stay).
  void trim(size_t max);
  bool empty() const { return secrets_.empty() && blobs_.empty(); }

  struct Secret {
    std::string value;
    bool literal = false;
    bool transient = false;
    std::unordered_set<uint32_t> grams;  // every 4-byte piece, packed (for secrets > 4 bytes)
  };
  const std::vector<Secret>& secrets() const { return secrets_; }
  const std::set<std::string>& blobs() const { return blobs_; }

 private:
  std::vector<Secret> secrets_;  // in the order added
  std::set<std::string> blobs_;
  std::vector<std::string> blob_order_;
};

// `text` with everything the Patterns (and any credential message or bearer token) reveal
// replaced by kMark.
std::string scrub(std::string_view text, const std::vector<const Patterns*>& patterns);

// The bytes of a base64 run after skipping its first `shift` bits (0, 2, 4 or 6: where a
// byte starts in a run cut anywhere): whole bytes only, either alphabet, '=' ignored.
std::string decode_run(std::string_view run, size_t shift);

}  // namespace mb::redact
