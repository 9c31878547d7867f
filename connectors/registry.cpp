// File: connectors/registry.cpp — configured mailbox or sender type → connector.
#include "connectors/registry.h"

#include <fmt/format.h>

#include "auth/auth_context.h"
#include "auth/secrets.h"
#include "connectors/ews/ews_config.h"
#include "connectors/graph/graph.h"
#include "connectors/imap/imap_mailbox.h"
#include "connectors/pop3/pop3_mailbox.h"
#include "connectors/smtp/smtp_sender.h"
#include "core/utc.h"

namespace mb {
namespace {

// test-connection's "token" detail: which app and endpoint gave the token and until when
// it is good; nothing that would let a reader use it.
std::string describe_token(AuthContext& auth, const AppConfig& app, const TokenKey& key) {
  std::string text = fmt::format("app {} ({}, client {})", app.name, app.flow, app.client_id);
  auto client = auth.client(app.name);
  if (client.ok()) text += ", token endpoint " + (*client)->endpoints().token;
  const std::string id = key.to_string();
  for (const TokenState& st : auth.cache().describe()) {
    if (st.key != id || !st.expires_at) continue;
    const auto left = std::chrono::duration_cast<std::chrono::seconds>(
        *st.expires_at - std::chrono::system_clock::now());
    text += fmt::format(", access token expires {} (in {} s)", format_utc(*st.expires_at),
                        left.count());
  }
  return text;
}

// What a connector needs to know of its configuration to sign in.
struct SignInSpec {
  std::string who;       // "mailbox support", "sender outgoing"
  ConnectorType type;
  AuthMethod auth;
  std::string app;
  std::string user;
  const SecretRef* password = nullptr;
};

Result<SignIn> make_sign_in(const SignInSpec& spec, const Config& config, AuthContext* auth) {
  SignIn sign_in;
  if (spec.auth == AuthMethod::kNone) {
    sign_in.none = true;
    return sign_in;
  }
  if (spec.auth == AuthMethod::kPassword || spec.auth == AuthMethod::kNtlm) {
    auto password = resolve_secret(*spec.password, spec.who + ": password");
    if (!password.ok()) return password.status();
    sign_in.password = std::move(*password);
    return sign_in;
  }
  if (auth == nullptr) {
    return Status(ErrorKind::kConfig, spec.who + ": auth oauth2 needs the OAuth sign-in "
                                                 "machinery, which this command did not set up");
  }
  const AppConfig* app = config.find_app(spec.app);
  if (app == nullptr) {
    return Status(ErrorKind::kConfig, spec.who + ": auth oauth2 names app \"" + spec.app +
                                          "\", which no [[app]] defines");
  }
  const Resource resource =
      spec.type == ConnectorType::kGraph ? Resource::kGraph : Resource::kExchange;
  auto key = auth->key_for(app->name, resource, to_string(spec.type), spec.user);
  if (!key.ok()) return key.status().prefixed(spec.who);
  sign_in.with_token = [auth, key = *key](const std::function<Status(const std::string&)>& fn) {
    return auth->with_token(key, fn);
  };
  sign_in.describe = [auth, app = *app, key = *key] { return describe_token(*auth, app, key); };
  return sign_in;
}

// Placeholders of connectors still being built return null.
template <typename T>
Result<std::unique_ptr<T>> built(std::unique_ptr<T> connector, const std::string& who,
                                 ConnectorType type) {
  if (!connector) {
    return Status(ErrorKind::kConfig, who + ": type " + to_string(type) + " is not supported yet");
  }
  return connector;
}

// kConfig unless this version builds `type` for a [[mailbox]] (`mailbox`) or [[sender]].
Status check_built(ConnectorType type, bool mailbox, const std::string& who) {
  const ConnectorSpec& spec = connector_spec(type);
  if (mailbox ? spec.mailbox_implemented && spec.mailbox_rank > 0
              : spec.sender_implemented && spec.sender_rank > 0) {
    return Status();
  }
  return Status(ErrorKind::kConfig, who + ": type " + to_string(type) + " is not supported yet");
}

}  // namespace

std::string graph_service_url(const std::string& endpoint, const AppConfig* app) {
  std::string url = endpoint;
  if (url.empty() && app != nullptr) {
    if (const CloudProfile* cloud = cloud_for_authority(app->authority)) url = cloud->graph;
  }
  if (url.empty()) url = "https://graph.microsoft.com";
  while (!url.empty() && url.back() == '/') url.pop_back();
  return url;
}

Result<std::unique_ptr<Mailbox>> make_mailbox(const MailboxConfig& configured,
                                              const Config& config, AuthContext* auth) {
  MailboxConfig mailbox = configured;
  mailbox.max_message_bytes = config.ingest.max_message_bytes;
  const std::string who = "mailbox " + mailbox.name;
  MB_RETURN_IF_ERROR(check_built(mailbox.type, true, who));
  auto sign_in = make_sign_in(
      {who, mailbox.type, mailbox.auth, mailbox.app, mailbox.user, &mailbox.password}, config,
      auth);
  if (!sign_in.ok()) return sign_in.status();
  if (mailbox.type == ConnectorType::kPop3) {
    return built(make_pop3_mailbox(mailbox, std::move(*sign_in)), who, mailbox.type);
  }
  if (mailbox.type == ConnectorType::kGraph) {
    const std::string service = graph_service_url(mailbox.endpoint, config.find_app(mailbox.app));
    return built(make_graph_mailbox(mailbox, service, std::move(*sign_in)), who, mailbox.type);
  }
  if (mailbox.type == ConnectorType::kEws) {
    auto options = ews::mailbox_options(mailbox);
    if (!options.ok()) return options.status();
    return built(ews::make_ews_mailbox(std::move(*options), std::move(*sign_in)), who,
                 mailbox.type);
  }
  return built(make_imap_mailbox(mailbox, std::move(*sign_in)), who, mailbox.type);
}

Result<std::unique_ptr<Sender>> make_sender(const SenderConfig& sender, const Config& config,
                                            AuthContext* auth) {
  const std::string who = "sender " + sender.name;
  MB_RETURN_IF_ERROR(check_built(sender.type, false, who));
  auto sign_in = make_sign_in(
      {who, sender.type, sender.auth, sender.app, sender.user, &sender.password}, config, auth);
  if (!sign_in.ok()) return sign_in.status();
  if (sender.type == ConnectorType::kGraph) {
    const std::string service = graph_service_url(sender.endpoint, config.find_app(sender.app));
    return built(make_graph_sender(sender, service, std::move(*sign_in)), who, sender.type);
  }
  if (sender.type == ConnectorType::kEws) {
    auto options = ews::sender_options(sender);
    if (!options.ok()) return options.status();
    return built(ews::make_ews_sender(std::move(*options), std::move(*sign_in)), who,
                 sender.type);
  }
  return built(make_smtp_sender(sender, std::move(*sign_in)), who, sender.type);
}

}  // namespace mb
