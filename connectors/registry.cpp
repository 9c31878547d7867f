// File: connectors/registry.cpp — configured mailbox type → connector.
#include "connectors/registry.h"

#include <fmt/format.h>

#include "auth/auth_context.h"
#include "auth/secrets.h"
#include "connectors/imap/imap_mailbox.h"
#include "core/monitor.h"

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

Result<std::unique_ptr<Mailbox>> make_imap_oauth(const MailboxConfig& mailbox,
                                                 const Config& config, AuthContext* auth) {
  const std::string who = "mailbox " + mailbox.name;
  if (auth == nullptr) {
    return Status(ErrorKind::kConfig, who + ": auth oauth2 needs the OAuth sign-in machinery, "
                                            "which this command did not set up");
  }
  const AppConfig* app = config.find_app(mailbox.app);
  if (app == nullptr) {
    return Status(ErrorKind::kConfig, who + ": auth oauth2 names app \"" + mailbox.app +
                                          "\", which no [[app]] defines");
  }
  auto key = auth->key_for(app->name, Resource::kExchange, "imap", mailbox.user);
  if (!key.ok()) return key.status().prefixed(who);
  ImapOAuth oauth;
  oauth.with_token = [auth, key = *key](const std::function<Status(const std::string&)>& fn) {
    return auth->with_token(key, fn);
  };
  oauth.describe = [auth, app = *app, key = *key] { return describe_token(*auth, app, key); };
  return make_imap_oauth_mailbox(mailbox, std::move(oauth));
}

}  // namespace

Result<std::unique_ptr<Mailbox>> make_mailbox(const MailboxConfig& mailbox, const Config& config,
                                              AuthContext* auth) {
  const std::string who = "mailbox " + mailbox.name;
  if (mailbox.type != "imap") {
    return Status(ErrorKind::kConfig, who + ": type " + mailbox.type + " is not supported yet");
  }
  if (mailbox.auth == "oauth2") return make_imap_oauth(mailbox, config, auth);
  if (mailbox.auth != "password") {
    return Status(ErrorKind::kConfig,
                  who + ": auth " + mailbox.auth + " for type imap is not supported yet");
  }
  auto password = resolve_secret(mailbox.password, who + ": password");
  if (!password.ok()) return password.status();
  return make_imap_mailbox(mailbox, std::move(*password));
}

}  // namespace mb
