// File: auth/sasl_login.cpp — SASL LOGIN (draft-murchison-sasl-login): the server asks for
// the user name, then the password. The prompts' text varies between servers ("Username:",
// "User Name"), so only their order counts.
#include "auth/sasl.h"

namespace mb::sasl {
namespace {

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

std::unique_ptr<Mechanism> make_login(const Credentials& c) { return std::make_unique<Login>(c); }

}  // namespace mb::sasl
