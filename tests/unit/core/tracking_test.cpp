// File: tests/unit/core/tracking_test.cpp — core/tracking: base32, signing and verifying
// tracking cookies, and finding them in subjects and bodies; forged, altered, truncated and
// wrong-secret cookies verify as nothing.
#include "core/tracking.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

namespace mb {
namespace {
using ::testing::HasSubstr;
using ::testing::Optional;
using ::testing::StartsWith;

const TrackingCookie kCookie{"IT", 17, 1042};

TEST(Base32Test, RoundTripsEveryLength) {
  std::string data;
  for (int n = 0; n < 40; ++n) {
    EXPECT_THAT(base32_decode(base32_encode(data)), Optional(data)) << n;
    data.push_back(static_cast<char>(n * 37 + 5));
  }
}

TEST(Base32Test, MatchesRfc4648Vectors) {
  // RFC 4648 §10, without the padding.
  EXPECT_EQ(base32_encode("f"), "MY");
  EXPECT_EQ(base32_encode("fo"), "MZXQ");
  EXPECT_EQ(base32_encode("foo"), "MZXW6");
  EXPECT_EQ(base32_encode("foob"), "MZXW6YQ");
  EXPECT_EQ(base32_encode("foobar"), "MZXW6YTBOI");
  EXPECT_THAT(base32_decode("mzxw6ytboi"), Optional(std::string("foobar")));
  EXPECT_EQ(base32_decode("MZXW6YTB0I"), std::nullopt);  // '0' is not in the alphabet
  EXPECT_EQ(base32_decode("M"), std::nullopt);           // no whole byte
}

TEST(TrackingTest, SignedCookieVerifiesToWhatItNames) {
  TrackingSigner signer("s3cret-key-for-tests");
  std::string token = signer.make(kCookie);
  EXPECT_THAT(token, StartsWith("MB-"));
  EXPECT_LE(token.size(), 40u);  // compact enough for a subject line
  EXPECT_THAT(signer.verify(token), Optional(kCookie));
  EXPECT_THAT(signer.verify(token.substr(3)), Optional(kCookie));
  std::string lower = token;
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  EXPECT_THAT(signer.verify(lower), Optional(kCookie));
}

TEST(TrackingTest, LargeIdsAndUnicodeProjectsSurvive) {
  TrackingSigner signer("k");
  TrackingCookie big{"Équipe support", 9007199254740993, 4611686018427387904};
  EXPECT_THAT(signer.verify(signer.make(big)), Optional(big));
}

TEST(TrackingTest, WrongSecretMatchesNothing) {
  TrackingSigner ours("secret-one");
  TrackingSigner theirs("secret-two");
  EXPECT_EQ(ours.verify(theirs.make(kCookie)), std::nullopt);
}

TEST(TrackingTest, EveryAlteredCharacterMatchesNothing) {
  TrackingSigner signer("s3cret");
  const std::string token = signer.make(kCookie);
  for (size_t i = 3; i < token.size(); ++i) {
    std::string altered = token;
    altered[i] = altered[i] == 'A' ? 'B' : 'A';
    EXPECT_EQ(signer.verify(altered), std::nullopt) << "position " << i;
  }
}

TEST(TrackingTest, TruncatedOrExtendedCookiesMatchNothing) {
  TrackingSigner signer("s3cret");
  const std::string token = signer.make(kCookie);
  for (size_t n = 0; n < token.size(); ++n) {
    EXPECT_EQ(signer.verify(token.substr(0, n)), std::nullopt) << n;
  }
  EXPECT_EQ(signer.verify(token + "A"), std::nullopt);
  EXPECT_EQ(signer.verify(token + "AA"), std::nullopt);
}

TEST(TrackingTest, ForgedCookieForAnotherTicketMatchesNothing) {
  // An attacker who knows the format but not the secret builds a cookie for ticket 1:
  // every MAC they can produce without the key fails.
  TrackingSigner signer("s3cret");
  TrackingSigner guess("");  // the empty key, the likeliest guess
  EXPECT_EQ(signer.verify(guess.make({"IT", 1, 1})), std::nullopt);
  // Re-using a genuine MAC with other ids does not work either.
  std::string genuine = signer.make(kCookie);
  std::string other = signer.make({"IT", 17, 1043});
  std::string spliced = other.substr(0, other.size() - 16) + genuine.substr(genuine.size() - 16);
  EXPECT_EQ(signer.verify(spliced), std::nullopt);
}

TEST(TrackingTest, FoundInSubjectOrQuotedBody) {
  TrackingSigner signer("s3cret");
  std::string bracketed = signer.bracketed(kCookie);
  EXPECT_THAT(signer.find_in("Re: AW: Printer on fire " + bracketed), Optional(kCookie));
  EXPECT_THAT(signer.find({"Re: no cookie here", "> Hello\n> Please keep " + bracketed + "\n"}),
              Optional(kCookie));
  EXPECT_THAT(signer.find({"", "", "<p>keep " + bracketed + "</p>"}), Optional(kCookie));
  // A genuine cookie after a bogus one is still found.
  EXPECT_THAT(signer.find_in("[#MB-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAA] and " + bracketed),
              Optional(kCookie));
}

TEST(TrackingTest, NotFoundInsideAnotherWordOrWhenAbsent) {
  TrackingSigner signer("s3cret");
  std::string token = signer.make(kCookie);
  EXPECT_EQ(signer.find_in("XMB-" + token.substr(3)), std::nullopt);
  EXPECT_EQ(signer.find({"Re: printer", "MB-", "MB-ZZZZ"}), std::nullopt);
}

}  // namespace
}  // namespace mb
