// File: tests/unit/auth/token_store_test.cpp — TokenKey's string form, key parsing, and the
// encrypted token files: round trip, permissions, atomic replace, and errors that keep the
// file (wrong key, tampering, a file moved onto another key's name) and never show a token.
#include "auth/token_store.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <vector>

#include "auth/crypto.h"
#include "core/hash.h"
#include "tests/status_matchers.h"

namespace mb {
namespace {

namespace fs = std::filesystem;
using ::mb::testing::IsOk;
using ::mb::testing::StatusIs;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;

// 32 bytes 0x00..0x1f, written independently in both accepted forms.
constexpr const char* kHexKey = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
constexpr const char* kB64Key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
constexpr const char* kRefresh = "rt-0.AVYAsecret-refresh-token-value";

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

mode_t mode_of(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
  return st.st_mode & 07777;
}

class TokenStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/mb_token_store_XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    dir_ = root_ + "/state/tokens";
    ::setenv("MB_TEST_TOKEN_KEY", kHexKey, 1);
  }
  void TearDown() override { fs::remove_all(root_); }

  std::unique_ptr<TokenStore> open_store(const std::string& key_text = kHexKey) {
    ::setenv("MB_TEST_TOKEN_KEY", key_text.c_str(), 1);
    auto store = TokenStore::open(dir_, SecretRef{"env:MB_TEST_TOKEN_KEY"});
    EXPECT_THAT(store, IsOk());
    return store.ok() ? std::move(*store) : nullptr;
  }

  std::string root_, dir_;
  TokenKey key_{"contoso", "https://outlook.office365.com/.default", "Support@Contoso.com"};
};

TEST(TokenKeyTest, StringFormIsAccountAppTargetNormalized) {
  TokenKey k{"contoso", "offline_access  IMAP.AccessAsUser.All offline_access", "Ann@Example.COM"};
  EXPECT_EQ(k.to_string(), "ann@example.com|contoso|IMAP.AccessAsUser.All offline_access");
  TokenKey app_only{"contoso", "https://graph.microsoft.com/.default", ""};
  EXPECT_EQ(app_only.to_string(), "|contoso|https://graph.microsoft.com/.default");
}

TEST(TokenKeyTest, SeparatorsInsideFieldsCannotMakeTwoKeysEqual) {
  TokenKey a{"x|y", "s", "u"};
  TokenKey b{"x", "s", "u|y"};  // would read "u|y|x|s" unescaped vs "u|x|y|s"
  TokenKey c{"x%7Cy", "s", "u"};
  EXPECT_NE(a.to_string(), b.to_string());
  EXPECT_NE(a.to_string(), c.to_string());
  EXPECT_EQ(a.to_string(), "u|x%7Cy|s");
}

TEST(CryptoTest, ParsesHexAndBase64Keys) {
  auto hex = parse_aes_key(kHexKey, "k");
  auto b64 = parse_aes_key(kB64Key, "k");
  auto unpadded = parse_aes_key(" AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8\n", "k");
  ASSERT_THAT(hex, IsOk());
  ASSERT_THAT(b64, IsOk());
  ASSERT_THAT(unpadded, IsOk());
  EXPECT_EQ(*hex, *b64);
  EXPECT_EQ(*hex, *unpadded);
  EXPECT_EQ((*hex)[0], 0);
  EXPECT_EQ((*hex)[31], 31);
}

TEST(CryptoTest, RejectsKeysOfOtherSizesWithoutEchoingThem) {
  const std::vector<std::string> bads = {
      "", "short-secret-passphrase", std::string(kHexKey).substr(2), std::string(63, 'a') + "g",
      "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8fIA=="};  // 33 bytes
  for (const std::string& bad : bads) {
    auto k = parse_aes_key(bad, "token store key");
    EXPECT_THAT(k, StatusIs(ErrorKind::kConfig, HasSubstr("32-byte key"))) << bad;
    if (!bad.empty()) {
      EXPECT_THAT(k.status().message(), Not(HasSubstr(bad)));
    }
  }
}

TEST(CryptoTest, SealOpenRoundTripAndAadIsBound) {
  auto key = parse_aes_key(kHexKey, "k");
  ASSERT_THAT(key, IsOk());
  auto sealed = aes_gcm_seal(*key, "hello", "aad-1");
  ASSERT_THAT(sealed, IsOk());
  EXPECT_EQ(sealed->size(), kGcmNonceSize + 5 + kGcmTagSize);
  auto again = aes_gcm_seal(*key, "hello", "aad-1");
  ASSERT_THAT(again, IsOk());
  EXPECT_NE(*sealed, *again) << "a fresh nonce each time";
  auto plain = aes_gcm_open(*key, *sealed, "aad-1");
  ASSERT_THAT(plain, IsOk());
  EXPECT_EQ(*plain, "hello");
  EXPECT_THAT(aes_gcm_open(*key, *sealed, "aad-2"),
              StatusIs(ErrorKind::kInvalidInput, HasSubstr("authentication failed")));
}

TEST_F(TokenStoreTest, RoundTripAndMissingGrant) {
  auto store = open_store();
  ASSERT_NE(store, nullptr);
  auto none = store->load(key_);
  ASSERT_THAT(none, IsOk());
  EXPECT_FALSE(none->has_value());
  ASSERT_THAT(store->save(key_, kRefresh), IsOk());
  auto back = store->load(key_);
  ASSERT_THAT(back, IsOk());
  EXPECT_EQ(back->value_or(""), kRefresh);
  // A second process with the same key in base64 form reads it too.
  auto other = open_store(kB64Key);
  ASSERT_NE(other, nullptr);
  auto again = other->load(key_);
  ASSERT_THAT(again, IsOk());
  EXPECT_EQ(again->value_or(""), kRefresh);
}

TEST_F(TokenStoreTest, FileIsEncryptedNamedByHashAnd0600InA0700Dir) {
  auto store = open_store();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(mode_of(dir_), 0700u);
  ASSERT_THAT(store->save(key_, kRefresh), IsOk());
  std::string path = store->path_for(key_);
  EXPECT_EQ(fs::path(path).filename().string(), sha256_hex(key_.to_string()) + ".token");
  EXPECT_EQ(mode_of(path), 0600u);
  std::string bytes = slurp(path);
  EXPECT_EQ(bytes.substr(0, 4), "MBTK");
  EXPECT_EQ(bytes.size(), 5 + kGcmNonceSize + std::string(kRefresh).size() + kGcmTagSize);
  EXPECT_EQ(bytes.find("secret-refresh"), std::string::npos);
  EXPECT_EQ(bytes.find("contoso"), std::string::npos);
}

TEST_F(TokenStoreTest, SaveReplacesAtomicallyAndLeavesNoTemporaryFiles) {
  auto store = open_store();
  ASSERT_NE(store, nullptr);
  ASSERT_THAT(store->save(key_, "first-refresh-token"), IsOk());
  ASSERT_THAT(store->save(key_, "second-refresh-token"), IsOk());
  auto back = store->load(key_);
  ASSERT_THAT(back, IsOk());
  EXPECT_EQ(back->value_or(""), "second-refresh-token");
  int files = 0;
  for (const auto& f : fs::directory_iterator(dir_)) {
    ++files;
    EXPECT_EQ(f.path().extension(), ".token") << f.path();
  }
  EXPECT_EQ(files, 1);
}

TEST_F(TokenStoreTest, WrongKeyIsAnErrorNamingTheFileAndDeletesNothing) {
  auto store = open_store();
  ASSERT_NE(store, nullptr);
  ASSERT_THAT(store->save(key_, kRefresh), IsOk());
  std::string path = store->path_for(key_);
  std::string before = slurp(path);
  auto wrong = open_store(std::string(64, 'f'));
  ASSERT_NE(wrong, nullptr);
  auto r = wrong->load(key_);
  EXPECT_THAT(r, StatusIs(ErrorKind::kConfig,
                          AllOf(HasSubstr(path), HasSubstr("wrong key or corrupted"),
                                Not(HasSubstr(kRefresh)))));
  EXPECT_EQ(slurp(path), before);
  // Saving the right key's grant is still possible afterwards; nothing was lost.
  auto back = store->load(key_);
  ASSERT_THAT(back, IsOk());
  EXPECT_EQ(back->value_or(""), kRefresh);
}

TEST_F(TokenStoreTest, TamperedTruncatedOrMovedFilesDoNotDecrypt) {
  auto store = open_store();
  ASSERT_NE(store, nullptr);
  ASSERT_THAT(store->save(key_, kRefresh), IsOk());
  std::string path = store->path_for(key_);
  std::string good = slurp(path);
  auto write = [&](const std::string& p, const std::string& bytes) {
    std::ofstream(p, std::ios::binary | std::ios::trunc) << bytes;
  };
  for (size_t pos : {size_t{4}, size_t{10}, good.size() / 2 + 3, good.size() - 1}) {
    std::string bad = good;
    bad[pos] = static_cast<char>(bad[pos] ^ 0x01);
    write(path, bad);
    EXPECT_THAT(store->load(key_), StatusIs(ErrorKind::kConfig, HasSubstr("wrong key or corrupted")))
        << "byte " << pos;
    EXPECT_EQ(slurp(path), bad) << "the file is left as it was";
  }
  write(path, good.substr(0, 20));
  EXPECT_THAT(store->load(key_), StatusIs(ErrorKind::kConfig, HasSubstr("wrong key or corrupted")));
  // A valid file copied onto another grant's name: the key string is authenticated.
  TokenKey other{"contoso", key_.scope, "mallory@contoso.com"};
  write(store->path_for(other), good);
  EXPECT_THAT(store->load(other), StatusIs(ErrorKind::kConfig, HasSubstr("wrong key or corrupted")));
}

TEST_F(TokenStoreTest, EraseRemovesTheGrantAndIsIdempotent) {
  auto store = open_store();
  ASSERT_NE(store, nullptr);
  ASSERT_THAT(store->save(key_, kRefresh), IsOk());
  ASSERT_THAT(store->erase(key_), IsOk());
  EXPECT_FALSE(fs::exists(store->path_for(key_)));
  EXPECT_THAT(store->erase(key_), IsOk());
  auto none = store->load(key_);
  ASSERT_THAT(none, IsOk());
  EXPECT_FALSE(none->has_value());
}

TEST_F(TokenStoreTest, FileSystemErrorsAreInternalAndShowNoToken) {
  auto store = open_store();
  ASSERT_NE(store, nullptr);
  fs::remove_all(dir_);
  EXPECT_THAT(store->save(key_, kRefresh),
              StatusIs(ErrorKind::kInternal, AllOf(HasSubstr(dir_), Not(HasSubstr(kRefresh)))));
}

TEST_F(TokenStoreTest, BadKeyReferencesAreConfigErrors) {
  ::setenv("MB_TEST_TOKEN_KEY", "not-a-key-at-all", 1);
  EXPECT_THAT(TokenStore::open(dir_, SecretRef{"env:MB_TEST_TOKEN_KEY"}),
              StatusIs(ErrorKind::kConfig,
                       AllOf(HasSubstr("env:MB_TEST_TOKEN_KEY"), Not(HasSubstr("not-a-key")))));
  ::unsetenv("MB_TEST_TOKEN_KEY");
  EXPECT_THAT(TokenStore::open(dir_, SecretRef{"env:MB_TEST_TOKEN_KEY"}),
              StatusIs(ErrorKind::kConfig, HasSubstr("not set")));
  std::string key_file = root_ + "/key";
  std::ofstream(key_file) << kB64Key << "\n";
  EXPECT_THAT(TokenStore::open(dir_, SecretRef{"file:" + key_file}), IsOk());
}

}  // namespace
}  // namespace mb
