// File: connectors/smtp/smtp_sender.cpp — the SMTP Sender: opens and signs in a connection
// (implicit TLS or STARTTLS; password, OAuth token or none), keeps it between messages
// (RSET first) unless one_message_per_connection, recovers a kept connection the server
// closed while idle or a server that takes one message per connection (503 to a second
// MAIL), and reports test-connection step by step.
#include "connectors/smtp/smtp_sender.h"

#include <netdb.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <cctype>

#include "auth/token_cache.h"
#include "connectors/smtp/smtp_client.h"
#include "connectors/line_client.h"
#include "core/net.h"

namespace mb {
namespace {

using smtp::Client;
using smtp::Stage;

// Our name in EHLO: the host's canonical name when it has one, else its short name. RFC 5321
// wants an FQDN; many servers only log it.
std::string local_helo_name() {
  char host[256] = {};
  if (::gethostname(host, sizeof(host) - 1) != 0 || host[0] == '\0') return "localhost";
  std::string name = host;
  addrinfo hints{};
  hints.ai_flags = AI_CANONNAME;
  addrinfo* res = nullptr;
  if (name.find('.') == std::string::npos && ::getaddrinfo(host, nullptr, &hints, &res) == 0) {
    if (res != nullptr && res->ai_canonname != nullptr) name = res->ai_canonname;
    ::freeaddrinfo(res);
  }
  for (char c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-') return "localhost";
  }
  return name;
}

class SmtpSender : public Sender {
 public:
  SmtpSender(SenderConfig config, SignIn sign_in, StreamFactory factory)
      : cfg_(std::move(config)), sign_in_(std::move(sign_in)), factory_(std::move(factory)) {
    if (cfg_.port == 0) cfg_.port = default_port(ConnectorType::kSmtp, cfg_.security);
    helo_name_ = cfg_.helo_name.empty() ? local_helo_name() : cfg_.helo_name;
  }
  ~SmtpSender() override { close(); }

  Result<SendResult> send(const OutgoingMail& mail) override;
  ConnectionReport test_connection() override;
  void close() override;

 private:
  smtp::ClientOptions client_options() const;
  Status connect_fresh();
  Status sign_in(std::string* how);
  Status sign_in_with_token(const std::string& token);
  Status open();
  Result<SendResult> attempt(const OutgoingMail& mail);
  bool retry_on_new_connection(const Status& s, bool reused);
  std::string who() const { return "sender " + cfg_.name; }

  SenderConfig cfg_;
  SignIn sign_in_;
  StreamFactory factory_;
  std::unique_ptr<Client> client_;
  std::string helo_name_;
  // Learned from a 503 to a second MAIL: this server takes one message per connection.
  bool server_one_per_connection_ = false;
};

smtp::ClientOptions SmtpSender::client_options() const {
  smtp::ClientOptions o;
  fill_options(o, endpoint_of(cfg_), who());
  o.helo_name = helo_name_;
  return o;
}

// A new connection, greeted, EHLO said and (for starttls) encrypted; not yet signed in.
Status SmtpSender::connect_fresh() {
  if (client_) client_->close();
  client_ = std::make_unique<Client>(client_options());
  auto stream = open_stream(endpoint_of(cfg_), factory_);
  if (!stream.ok()) return stream.status();
  Status s = client_->connect(std::move(*stream));
  if (s.ok() && cfg_.security == Security::kStartTls) s = client_->starttls();
  return s;
}

Status SmtpSender::sign_in_with_token(const std::string& token) {
  if (!client_ || !client_->connected()) {
    return Status(ErrorKind::kNetwork, "SMTP server " + cfg_.host + " closed the connection "
                  "during the sign-in", ErrorScope::kConnection);
  }
  sasl::Credentials creds =
      credentials(endpoint_of(cfg_), cfg_.user, token, sasl::CredentialKind::kToken);
  return as_token_rejection(client_->sign_in(creds).status());
}

// Signs in with the password or a token, or not at all (auth = none, a relay); `how` gets
// the method for test-connection.
Status SmtpSender::sign_in(std::string* how) {
  if (sign_in_.none) {
    *how = "no sign-in (auth = none: the server relays for this host)";
    return Status::Ok();
  }
  if (sign_in_.oauth()) {
    MB_RETURN_IF_ERROR(sign_in_.with_token(
        [&](const std::string& token) { return sign_in_with_token(token); }));
    *how = "signed in as " + cfg_.user + " (AUTH " + client_->mechanism() +
           " with an OAuth token)";
    return Status::Ok();
  }
  sasl::Credentials creds = credentials(endpoint_of(cfg_), cfg_.user, sign_in_.password);
  auto mech = client_->sign_in(creds);
  if (!mech.ok()) return mech.status();
  *how = "signed in as " + cfg_.user + " (AUTH " + *mech + ")";
  return Status::Ok();
}

Status SmtpSender::open() {
  Status s = connect_fresh();
  std::string how;
  if (s.ok()) s = sign_in(&how);
  if (!s.ok() && client_) {
    // Whatever failed while opening, the next call starts from a fresh connection.
    client_->close();
    client_.reset();
  }
  return s;
}

void SmtpSender::close() {
  if (!client_) return;
  client_->quit();
  client_.reset();
}

// On a kept connection, two failures mean "this connection", not "this message": the
// server closed it while idle (nothing after RSET was answered), or it takes one message
// per connection (503 to MAIL). Either way the message goes again on a new connection.
bool SmtpSender::retry_on_new_connection(const Status& s, bool reused) {
  if (!reused || !client_) return false;
  if (client_->stage() == Stage::kRset &&
      (s.kind() == ErrorKind::kNetwork || s.scope() == ErrorScope::kConnection)) {
    spdlog::debug("{}: the kept connection was closed by the server; reconnecting", who());
    return true;
  }
  if (client_->stage() == Stage::kMail && client_->mail_reply_code() == 503) {
    spdlog::info("{}: SMTP server {} refused a second message on one connection (503); "
                 "sending one message per connection from now on",
                 who(), cfg_.host);
    server_one_per_connection_ = true;
    return true;
  }
  return false;
}

Result<SendResult> SmtpSender::attempt(const OutgoingMail& mail) {
  bool reused = client_ && client_->connected() && client_->transactions() > 0;
  if (!client_ || !client_->connected()) MB_RETURN_IF_ERROR(open());
  auto sent = client_->send(mail.envelope, mail.raw, /*rset_first=*/reused,
                            mail.on_handed_over);
  if (!sent.ok() && retry_on_new_connection(sent.status(), reused)) {
    close();
    MB_RETURN_IF_ERROR(open());
    sent = client_->send(mail.envelope, mail.raw, /*rset_first=*/false, mail.on_handed_over);
  }
  return sent;
}

Result<SendResult> SmtpSender::send(const OutgoingMail& mail) {
  auto sent = attempt(mail);
  bool one_shot = cfg_.one_message_per_connection || server_one_per_connection_;
  if (client_ && (one_shot || !client_->connected())) close();
  std::string id = mail.id.empty() ? "" : " " + mail.id;
  if (!sent.ok()) return sent.status().prefixed(who() + ": message" + id);
  for (const auto& r : sent->recipients) {
    if (!r.accepted) spdlog::info("{}: message{}: {} refused: {}", who(), id, r.address, r.reply);
  }
  return sent;
}

// Runs the steps of a connection one by one, reporting each; the connection is ended
// (QUIT) at the end so nothing outlives the call. No message is sent.
ConnectionReport SmtpSender::test_connection() {
  close();
  ConnectionSteps step;
  client_ = std::make_unique<Client>(client_options());
  auto greet = [&](std::unique_ptr<Stream> stream) { return client_->connect(std::move(stream)); };
  Status s;  // the greeting and EHLO: the "ehlo" step
  if (!step.open(endpoint_of(cfg_), factory_, greet, /*greeting_apart=*/true, &s)) {
    client_.reset();
    return step.report;
  }
  if (s.ok() && cfg_.security == Security::kStartTls) {
    s = client_->starttls();
    if (!step("starttls", s, "STARTTLS: " + client_->tls_summary())) {
      client_.reset();
      return step.report;
    }
  } else if (s.ok() && cfg_.security == Security::kNone) {
    step("tls", s, "not used (security = none): mail and credentials travel in plaintext");
  }
  std::string ehlo = client_->greeting() + "; " + client_->extensions().describe();
  if (!step("ehlo", s, ehlo)) {
    close();
    return step.report;
  }
  if (sign_in_.oauth() && !step.token(sign_in_)) {
    close();
    return step.report;
  }
  std::string how;
  s = sign_in(&how);
  step("sign-in", s, how);
  close();
  return step.report;
}

}  // namespace

std::unique_ptr<Sender> make_smtp_sender(const SenderConfig& config, SignIn sign_in,
                                         StreamFactory factory) {
  return std::make_unique<SmtpSender>(config, std::move(sign_in), std::move(factory));
}

}  // namespace mb
