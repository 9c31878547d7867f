// File: auth/sasl_mechanisms.cpp — the four SASL mechanisms. PLAIN (RFC 4616), XOAUTH2
// (Google's) and OAUTHBEARER (RFC 7628) speak first: one client message, then the verdict.
// The two bearer mechanisms differ only in that message and in the answer to the error
// challenge a refused token brings (XOAUTH2: an empty response; OAUTHBEARER: a single ^A,
// §3.2.3); the final NO follows it. LOGIN (draft-murchison-sasl-login) lets the server ask
// for the user name, then the password; the prompts' text varies between servers
// ("Username:", "User Name"), so only their order counts.
#include "auth/sasl.h"

namespace mb::sasl {
namespace {

// A mechanism whose whole say is its first message.
class ClientFirst : public Mechanism {
 public:
  explicit ClientFirst(const Credentials& c) : c_(c) {}
  bool supports_initial_response() const override { return true; }
  std::optional<std::string> initial_response() override {
    sent_ = true;
    return message();
  }
  bool is_done() const override { return sent_; }

 protected:
  virtual std::string message() const = 0;
  Credentials c_;
  bool sent_ = false;
};

class Plain : public ClientFirst {
 public:
  using ClientFirst::ClientFirst;
  std::string_view name() const override { return "PLAIN"; }
  Result<std::string> step(std::string_view challenge) override {
    if (!sent_) return *initial_response();
    // PLAIN has nothing more to say; a challenge after the credentials is how some servers
    // report a failure.
    return Status(ErrorKind::kAuth,
                  "the server answered the PLAIN credentials with a challenge (" +
                      excerpt(challenge, c_.secret) + ")",
                  ErrorScope::kMailbox);
  }

 private:
  std::string message() const override { return plain_message(c_.authzid, c_.user, c_.secret); }
};

// XOAUTH2 and OAUTHBEARER: the token in the first message; a refusal comes back as a JSON
// error challenge, answered with `error_answer`.
class Bearer : public ClientFirst {
 public:
  Bearer(const Credentials& c, bool oauthbearer) : ClientFirst(c), oauthbearer_(oauthbearer) {}
  std::string_view name() const override { return oauthbearer_ ? "OAUTHBEARER" : "XOAUTH2"; }
  Result<std::string> step(std::string_view challenge) override {
    if (!sent_) return *initial_response();
    if (!error_.ok()) {
      return Status(ErrorKind::kProtocol,
                    "the server sent another " + std::string(name()) +
                        " challenge after its error",
                    ErrorScope::kConnection);
    }
    error_ = bearer_failure(challenge, c_.secret);
    return oauthbearer_ ? std::string("\x01") : std::string();
  }
  Status server_error() const override { return error_; }

 private:
  std::string message() const override {
    return oauthbearer_ ? oauthbearer_message(c_.user, c_.host, c_.port, c_.secret)
                        : xoauth2_message(c_.user, c_.secret);
  }
  bool oauthbearer_;
  Status error_;
};

class Login : public Mechanism {
 public:
  explicit Login(const Credentials& c) : c_(c) {}
  std::string_view name() const override { return "LOGIN"; }
  bool supports_initial_response() const override { return false; }
  std::optional<std::string> initial_response() override { return std::nullopt; }
  Result<std::string> step(std::string_view challenge) override {
    switch (answered_++) {
      case 0: return c_.user;
      case 1: return c_.secret;
      default:
        return Status(ErrorKind::kAuth,
                      "the server answered the LOGIN password with another challenge (" +
                          excerpt(challenge, c_.secret) + ")",
                      ErrorScope::kMailbox);
    }
  }
  bool is_done() const override { return answered_ >= 2; }

 private:
  Credentials c_;
  int answered_ = 0;
};

}  // namespace

std::unique_ptr<Mechanism> make_plain(const Credentials& c) { return std::make_unique<Plain>(c); }
std::unique_ptr<Mechanism> make_login(const Credentials& c) { return std::make_unique<Login>(c); }
std::unique_ptr<Mechanism> make_xoauth2(const Credentials& c) {
  return std::make_unique<Bearer>(c, /*oauthbearer=*/false);
}
std::unique_ptr<Mechanism> make_oauthbearer(const Credentials& c) {
  return std::make_unique<Bearer>(c, /*oauthbearer=*/true);
}

}  // namespace mb::sasl
