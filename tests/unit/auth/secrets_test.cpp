// File: tests/unit/auth/secrets_test.cpp — resolve_secret (env:, file:, literal; errors that
// name the reference and never the value) and the Redactor (plain and base64 forms).
#include "auth/secrets.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "tests/status_matchers.h"

namespace mb {
namespace {

using ::mb::testing::IsOk;
using ::mb::testing::StatusIs;
using ::testing::AllOf;
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

class SecretsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("mb_secrets_test_" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override {
    std::filesystem::remove_all(dir_);
    ::unsetenv("MB_TEST_SECRET");
  }
  std::filesystem::path dir_;
};

TEST_F(SecretsTest, EnvReference) {
  ::setenv("MB_TEST_SECRET", "s3cret-from-env", 1);
  auto v = resolve_secret({"env:MB_TEST_SECRET"}, "mailbox support: password");
  ASSERT_THAT(v, IsOk());
  EXPECT_EQ(*v, "s3cret-from-env");
}

TEST_F(SecretsTest, MissingEnvIsAConfigErrorNamingTheReference) {
  ::unsetenv("MB_TEST_SECRET");
  EXPECT_THAT(resolve_secret({"env:MB_TEST_SECRET"}, "mailbox support: password"),
              StatusIs(ErrorKind::kConfig,
                       HasSubstr("mailbox support: password: environment variable "
                                 "MB_TEST_SECRET is not set")));
}

TEST_F(SecretsTest, EmptyEnvIsAConfigError) {
  ::setenv("MB_TEST_SECRET", "", 1);
  EXPECT_THAT(resolve_secret({"env:MB_TEST_SECRET"}, "app contoso: client_secret"),
              StatusIs(ErrorKind::kConfig, HasSubstr("MB_TEST_SECRET is empty")));
}

TEST_F(SecretsTest, FileReferenceDropsTrailingNewline) {
  auto path = dir_ / "pw";
  std::ofstream(path) << "file-secret-value\n";
  auto v = resolve_secret({"file:" + path.string()}, "mailbox support: password");
  ASSERT_THAT(v, IsOk());
  EXPECT_EQ(*v, "file-secret-value");
}

TEST_F(SecretsTest, FileKeepsInnerWhitespace) {
  auto path = dir_ / "pw";
  std::ofstream(path) << " two words\r\n";
  auto v = resolve_secret({"file:" + path.string()}, "x");
  ASSERT_THAT(v, IsOk());
  EXPECT_EQ(*v, " two words");
}

TEST_F(SecretsTest, UnreadableFileNamesThePathNotAValue) {
  auto path = dir_ / "absent";
  EXPECT_THAT(resolve_secret({"file:" + path.string()}, "mailbox support: password"),
              StatusIs(ErrorKind::kConfig,
                       HasSubstr("mailbox support: password: cannot read file " +
                                 path.string())));
}

TEST_F(SecretsTest, EmptyFileIsAConfigError) {
  auto path = dir_ / "empty";
  std::ofstream(path) << "\n";
  EXPECT_THAT(resolve_secret({"file:" + path.string()}, "x"),
              StatusIs(ErrorKind::kConfig, HasSubstr("is empty")));
}

// file: secrets are bounded (issue 13 item 14): /dev/zero used to fill memory, a FIFO hung
// and a directory was reported as "empty".
TEST_F(SecretsTest, DeviceFileIsRefusedNotRead) {
  EXPECT_THAT(resolve_secret({"file:/dev/zero"}, "mailbox support: password"),
              StatusIs(ErrorKind::kConfig,
                       AllOf(HasSubstr("mailbox support: password: cannot read file /dev/zero"),
                             HasSubstr("character device, not a regular file"))));
}

TEST_F(SecretsTest, FifoIsRefusedWithoutWaitingForAWriter) {
  auto path = dir_ / "fifo";
  ASSERT_EQ(::mkfifo(path.c_str(), 0600), 0);
  EXPECT_THAT(resolve_secret({"file:" + path.string()}, "[auth] key"),
              StatusIs(ErrorKind::kConfig, AllOf(HasSubstr("[auth] key: cannot read file " +
                                                           path.string()),
                                                 HasSubstr("a FIFO, not a regular file"))));
}

TEST_F(SecretsTest, DirectoryIsRefusedNotCalledEmpty) {
  EXPECT_THAT(resolve_secret({"file:" + dir_.string()}, "x"),
              StatusIs(ErrorKind::kConfig, AllOf(HasSubstr("a directory, not a regular file"),
                                                 Not(HasSubstr("empty")))));
}

TEST_F(SecretsTest, FileOver64KiBIsRefused) {
  auto path = dir_ / "big";
  std::ofstream(path) << std::string(64 * 1024, 'k');
  auto v = resolve_secret({"file:" + path.string()}, "x");
  ASSERT_THAT(v, IsOk());
  EXPECT_EQ(v->size(), 64u * 1024);
  std::ofstream(path, std::ios::app) << "k";
  EXPECT_THAT(resolve_secret({"file:" + path.string()}, "app contoso: certificate"),
              StatusIs(ErrorKind::kConfig,
                       AllOf(HasSubstr("app contoso: certificate: cannot read file " +
                                       path.string()),
                             HasSubstr("over the limit of 64 KiB"))));
}

TEST_F(SecretsTest, SymlinkToARegularFileIsRead) {
  auto target = dir_ / "pw";
  std::ofstream(target) << "linked-secret\n";
  auto link = dir_ / "link";
  std::filesystem::create_symlink(target, link);
  auto v = resolve_secret({"file:" + link.string()}, "x");
  ASSERT_THAT(v, IsOk());
  EXPECT_EQ(*v, "linked-secret");
}

TEST_F(SecretsTest, LiteralAndEmptyReference) {
  auto v = resolve_secret({"literal-pw-1"}, "x");
  ASSERT_THAT(v, IsOk());
  EXPECT_EQ(*v, "literal-pw-1");
  EXPECT_THAT(resolve_secret({""}, "mailbox support: password"),
              StatusIs(ErrorKind::kConfig, HasSubstr("mailbox support: password")));
}

TEST(SecretReferenceTest, Recognises) {
  EXPECT_TRUE(is_secret_reference("env:X"));
  EXPECT_TRUE(is_secret_reference("file:/x"));
  EXPECT_FALSE(is_secret_reference("hunter2"));
  EXPECT_FALSE(is_secret_reference("environment"));
}

TEST_F(SecretsTest, ResolvedSecretsAreRedacted) {
  ::setenv("MB_TEST_SECRET", "resolved-and-remembered", 1);
  ASSERT_THAT(resolve_secret({"env:MB_TEST_SECRET"}, "x"), IsOk());
  EXPECT_EQ(Redactor::instance().scrub("NO [AUTH] resolved-and-remembered rejected"),
            "NO [AUTH] <redacted> rejected");
}

TEST(RedactorTest, ScrubsEveryOccurrence) {
  Redactor::instance().add("correct horse");
  EXPECT_EQ(Redactor::instance().scrub("a correct horse, another correct horse."),
            "a <redacted>, another <redacted>.");
}

TEST(RedactorTest, ForgetAllForgetsEverySecret) {
  Redactor::instance().add("forgotten-secret-42");
  Redactor::instance().add_token("forgotten-token-42");
  EXPECT_EQ(Redactor::instance().scrub("forgotten-secret-42 forgotten-token-42"),
            "<redacted> <redacted>");
  Redactor::instance().forget_all();
  EXPECT_EQ(Redactor::instance().scrub("forgotten-secret-42 forgotten-token-42"),
            "forgotten-secret-42 forgotten-token-42");
  EXPECT_EQ(Redactor::instance().scrub("x forgotten-secret-42", "forgotten-secret-42"),
            "x <redacted>");  // what the caller holds is still scrubbed
}

TEST(RedactorTest, IgnoresVeryShortSecrets) {
  Redactor::instance().add("abc");
  EXPECT_EQ(Redactor::instance().scrub("abcabc"), "abcabc");
}

TEST(RedactorTest, ScrubsTheWholeBase64Form) {
  Redactor::instance().add("pa55word!");
  std::string encoded = b64("pa55word!");
  EXPECT_EQ(Redactor::instance().scrub("token " + encoded + " end"), "token <redacted> end");
}

// AUTHENTICATE PLAIN sends base64("\0user\0password"): the secret sits at any alignment
// inside a longer base64 string.
TEST(RedactorTest, ScrubsTheSecretInsideSaslPlain) {
  const std::string secret = "Tr0ub4dor&3-xyz";
  Redactor::instance().add(secret);
  for (const std::string user : {"u", "us", "usr", "support@example.com"}) {
    const std::string cmd = "A1 AUTHENTICATE PLAIN ";
    std::string line = cmd + b64(std::string("\0", 1) + user + std::string("\0", 1) + secret);
    std::string scrubbed = Redactor::instance().scrub(line);
    ASSERT_THAT(scrubbed, HasSubstr("<redacted>")) << user;
    // Left unredacted: the characters that encode "\0user\0" (plus the one group they share
    // with the secret) and the last group, which mixes the secret's tail with padding. So at
    // most a couple of the secret's bytes can be recovered, never the secret.
    size_t prefix_chars = (2 + user.size() + 2) / 3 * 4;
    size_t left = scrubbed.size() - cmd.size() - std::string("<redacted>").size();
    EXPECT_LE(left, prefix_chars + 4) << user << ": " << scrubbed;
  }
}

TEST(RedactorTest, ScrubsXoauth2Token) {
  const std::string token = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.payload.sig";
  Redactor::instance().add(token);
  std::string sasl = b64("user=a@b.c\x01" "auth=Bearer " + token + "\x01\x01");
  EXPECT_THAT(Redactor::instance().scrub(sasl), HasSubstr("<redacted>"));
  EXPECT_THAT(Redactor::instance().scrub("Authorization: Bearer " + token),
              AllOf(HasSubstr("Bearer <redacted>"), Not(HasSubstr("payload"))));
}

TEST(RedactorTest, IsThreadSafe) {
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([t] {
      for (int i = 0; i < 200; ++i) {
        std::string s = "thread-" + std::to_string(t) + "-secret-" + std::to_string(i);
        Redactor::instance().add(s);
        EXPECT_EQ(Redactor::instance().scrub("[" + s + "]"), "[<redacted>]");
      }
    });
  }
  for (auto& th : threads) th.join();
}

}  // namespace
}  // namespace mb
