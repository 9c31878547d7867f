// File: cli/auth_support.h — the sign-in machinery as the CLI's commands use it: one
// AuthContext per process whose token refreshes are recorded in the store, so that
// `mailbridge auth status` (another process) can show what the sync runs did.
//
//   auto store = mb::Store::open(config.store.path);
//   auto auth = mb::open_auth(config, store->get());       // once, before the mailboxes
//   auto key = (*auth)->key_for(box.app, mb::Resource::kExchange, "imap", box.user);
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "auth/auth_context.h"
#include "auth/oauth.h"
#include "auth/token_cache.h"
#include "auth/token_store.h"
#include "core/config.h"
#include "core/status.h"
#include "core/store.h"

namespace mb {

// open_auth() creates the process's AuthContext (see auth/auth_context.h for what it checks)
// and, when `store` is not null, records every token request's outcome in it
// (Store::save_token_state). `store` must outlive the context. The recording runs on
// whichever thread refreshed a token, serialised by a lock of its own; give it a connection
// that is not inside another thread's transaction at that time (e.g. the main thread's,
// while it waits for the mailbox threads). A failure to record is logged, never returned:
// bookkeeping must not fail a sign-in.
Result<std::unique_ptr<AuthContext>> open_auth(const Config& config, Store* store,
                                               HttpClientFactory http = nullptr,
                                               OAuthClientOptions options = {});

// The TokenCacheOptions::on_change that open_auth installs: writes `state` to `store`,
// adding this process's counts to those earlier runs left, and keeping the last known expiry
// and refresh time when this process has none yet. Errors are scrubbed of known secrets.
std::function<void(const TokenState&)> token_state_recorder(Store* store);

// Records one successful token request made outside a TokenCache (the device-code sign-in of
// `mailbridge auth login`).
Status record_token_success(Store& store, const TokenKey& key, const TokenResponse& response);

// The fields of a TokenKey::to_string() ("user|app|scope", %7C and %25 escaped), or nullopt
// when `text` is not one.
std::optional<TokenKey> parse_token_key(std::string_view text);

// The signed-in user an access token names (upn, preferred_username, unique_name or email
// claim), or "" when the token is opaque or names nobody.
std::string user_from_token(std::string_view access_token);

}  // namespace mb
