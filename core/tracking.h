// File: core/tracking.h — tracking cookies (SPEC §4): a short signed token that names the
// project, the email (its email-out note) and the ticket of a tracked email, so that a reply
// carrying it in its subject or quoted body finds its way back (SPEC §2 rule 2).
//
// The token is "MB-" followed by unpadded RFC 4648 base32 of
//   version (1 byte) ‖ varint ticket ‖ varint email ‖ project (UTF-8, ≤ 64 bytes) ‖ MAC
// where MAC is HMAC-SHA-256 under the [tracking] secret over a domain-separation label and
// everything before it, truncated to 10 bytes (80 bits). It is written "[#MB-…]" in the
// subject and in a body footer. Verification is constant-time; a forged, altered, truncated
// or wrong-secret token verifies as nothing.
//
//   mb::TrackingSigner signer(secret);
//   std::string token = signer.make({"IT", 17, 1042});      // "MB-AEQE…"
//   auto cookie = signer.find({subject, text, html});        // nullopt unless genuine
#pragma once

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mb {

struct TrackingCookie {
  std::string project;
  int64_t email = 0;   // the email-out note of the tracked email
  int64_t ticket = 0;
  bool operator==(const TrackingCookie&) const = default;
};

inline constexpr size_t kMaxCookieProject = 64;

class TrackingSigner {
 public:
  // `secret`: the resolved [tracking] secret (any length; HMAC hashes long keys).
  explicit TrackingSigner(std::string secret);

  // The token for `cookie` ("MB-…", base32 upper case). A project longer than
  // kMaxCookieProject bytes is truncated to it in the token (and verified so).
  std::string make(const TrackingCookie& cookie) const;
  // "[#MB-…]": the form put in subjects and footers.
  std::string bracketed(const TrackingCookie& cookie) const;

  // The cookie `token` (with or without "MB-", any letter case) names, if its MAC is ours.
  std::optional<TrackingCookie> verify(std::string_view token) const;

  // The first genuine cookie anywhere in `texts` (subject, text body, HTML body, …).
  std::optional<TrackingCookie> find(std::initializer_list<std::string_view> texts) const;
  std::optional<TrackingCookie> find_in(std::string_view text) const;

 private:
  std::string mac(std::string_view payload) const;
  std::string secret_;
};

// RFC 4648 base32 without padding, upper case; decode accepts either case and returns
// nullopt on any other character or an impossible length.
std::string base32_encode(std::string_view data);
std::optional<std::string> base32_decode(std::string_view text);

}  // namespace mb
