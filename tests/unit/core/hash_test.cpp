// File: tests/unit/core/hash_test.cpp — SHA-256 and hex (core/hash.h), against FIPS 180-2's
// test vectors.
#include "core/hash.h"

#include <gtest/gtest.h>

#include <string>

namespace mb {
namespace {

TEST(HashTest, Sha256HexMatchesKnownVectors) {
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

TEST(HashTest, Sha256IsTheRawDigestOfTheHex) {
  const std::string digest = sha256("abc");
  ASSERT_EQ(digest.size(), 32u);
  EXPECT_EQ(static_cast<unsigned char>(digest[0]), 0xba);
  EXPECT_EQ(static_cast<unsigned char>(digest[31]), 0xad);
  EXPECT_EQ(hex_lower(digest), sha256_hex("abc"));
  // Binary input with NUL bytes is hashed whole.
  EXPECT_NE(sha256_hex(std::string("a\0b", 3)), sha256_hex("a"));
}

TEST(HashTest, HexLowerWritesTwoLowerCaseDigitsPerByte) {
  EXPECT_EQ(hex_lower(""), "");
  EXPECT_EQ(hex_lower(std::string("\x00\x0f\xa0\xff", 4)), "000fa0ff");
}

}  // namespace
}  // namespace mb
