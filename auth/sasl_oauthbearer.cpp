// File: auth/sasl_oauthbearer.cpp — OAUTHBEARER (RFC 7628): the GS2 header, host, port and
// bearer token in one client message; a failure comes back as a JSON challenge (§3.2.2),
// answered with a single ^A (§3.2.3), and the final NO follows.
#include "auth/sasl.h"

namespace mb::sasl {
namespace {

class OAuthBearer : public Mechanism {
 public:
  explicit OAuthBearer(const Credentials& c) : c_(c) {}
  std::string_view name() const override { return "OAUTHBEARER"; }
  bool supports_initial_response() const override { return true; }
  std::optional<std::string> initial_response() override {
    sent_ = true;
    return oauthbearer_message(c_.user, c_.host, c_.port, c_.secret);
  }
  Result<std::string> step(std::string_view challenge) override {
    if (!sent_) return *initial_response();
    if (!error_.ok()) {
      return Status(ErrorKind::kProtocol,
                    "the server sent another OAUTHBEARER challenge after its error",
                    ErrorScope::kConnection);
    }
    error_ = bearer_failure(challenge, c_.secret);
    return std::string("\x01");
  }
  bool is_done() const override { return sent_; }
  Status server_error() const override { return error_; }

 private:
  Credentials c_;
  bool sent_ = false;
  Status error_;
};

}  // namespace

std::unique_ptr<Mechanism> make_oauthbearer(const Credentials& c) {
  return std::make_unique<OAuthBearer>(c);
}

}  // namespace mb::sasl
