// File: auth/sasl_plain.cpp — SASL PLAIN (RFC 4616): one client message, then the verdict.
#include "auth/sasl.h"

namespace mb::sasl {
namespace {

class Plain : public Mechanism {
 public:
  explicit Plain(const Credentials& c) : c_(c) {}
  std::string_view name() const override { return "PLAIN"; }
  bool supports_initial_response() const override { return true; }
  std::optional<std::string> initial_response() override {
    sent_ = true;
    return plain_message(c_.authzid, c_.user, c_.secret);
  }
  Result<std::string> step(std::string_view challenge) override {
    if (!sent_) return *initial_response();
    // PLAIN has nothing more to say; a challenge after the credentials is how some servers
    // report a failure.
    return Status(ErrorKind::kAuth,
                  "the server answered the PLAIN credentials with a challenge (" +
                      excerpt(challenge, c_.secret) + ")",
                  ErrorScope::kMailbox);
  }
  bool is_done() const override { return sent_; }

 private:
  Credentials c_;
  bool sent_ = false;
};

}  // namespace

std::unique_ptr<Mechanism> make_plain(const Credentials& c) { return std::make_unique<Plain>(c); }

}  // namespace mb::sasl
