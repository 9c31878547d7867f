// File: auth/sasl_xoauth2.cpp — Google's XOAUTH2: the bearer token in one client message; a
// failure comes back as a base64 JSON challenge, answered with an empty response, and the
// final NO follows.
#include "auth/sasl.h"

namespace mb::sasl {
namespace {

class XOAuth2 : public Mechanism {
 public:
  explicit XOAuth2(const Credentials& c) : c_(c) {}
  std::string_view name() const override { return "XOAUTH2"; }
  bool supports_initial_response() const override { return true; }
  std::optional<std::string> initial_response() override {
    sent_ = true;
    return xoauth2_message(c_.user, c_.secret);
  }
  Result<std::string> step(std::string_view challenge) override {
    if (!sent_) return *initial_response();
    if (!error_.ok()) {
      return Status(ErrorKind::kProtocol,
                    "the server sent another XOAUTH2 challenge after its error",
                    ErrorScope::kConnection);
    }
    error_ = bearer_failure(challenge, c_.secret);
    return std::string();
  }
  bool is_done() const override { return sent_; }
  Status server_error() const override { return error_; }

 private:
  Credentials c_;
  bool sent_ = false;
  Status error_;
};

}  // namespace

std::unique_ptr<Mechanism> make_xoauth2(const Credentials& c) {
  return std::make_unique<XOAuth2>(c);
}

}  // namespace mb::sasl
