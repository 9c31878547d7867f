// File: cli/auth.cpp — `mailbridge auth login APP` (the device-code sign-in of a delegated
// app, its refresh token stored encrypted) and `mailbridge auth status` (per app and token:
// stored grant, expiry, last refresh, last error — never a token or secret).
#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <iostream>
#include <set>

#include "auth/secrets.h"
#include "cli/auth_support.h"
#include "cli/cli.h"
#include "cli/json_output.h"
#include "cli/terminal.h"
#include "core/ascii.h"
#include "core/store.h"

namespace mb::cli {
namespace {

// ---- auth login ---------------------------------------------------------------------------

struct LoginOptions {
  std::string app;
  std::string scope;  // empty: the app's default for IMAP
  std::string user;   // needed only when the token does not name its user
  bool json = false;
};

void print_instructions(Context& ctx, const LoginOptions& o, const DeviceAuthorization& da) {
  if (o.json) {
    json event = {{"event", "device_code"},
                  {"app", o.app},
                  {"verification_uri", da.verification_uri},
                  {"verification_uri_complete", null_if_empty(da.verification_uri_complete)},
                  {"user_code", da.user_code},
                  {"expires_in", da.expires_in.count()},
                  {"message", null_if_empty(da.message)}};
    ctx.out << safe_dump(event) << "\n";
  } else if (!da.message.empty()) {
    ctx.out << da.message << "\n";
  } else {
    ctx.out << fmt::format("To sign in, open {} and enter the code {}\n", da.verification_uri,
                           da.user_code);
  }
  // The person at the terminal acts on this while we poll: it must not sit in a buffer.
  ctx.out.flush();
}

// Who signed in: the token's own claim, else --user. Empty (after printing why) when unknown.
std::string signed_in_user(Context& ctx, const LoginOptions& o, const TokenResponse& tr) {
  std::string claimed = user_from_token(tr.access_token);
  if (claimed.empty()) {
    if (o.user.empty()) {
      print_error(ctx, fmt::format("app \"{}\": the access token does not say who signed in; "
                                   "run `mailbridge auth login {} --user ADDRESS` with the "
                                   "address of the account that approves the code",
                                   o.app, o.app));
    }
    return o.user;
  }
  if (!o.user.empty() && ascii_lower(o.user) != ascii_lower(claimed)) {
    spdlog::warn("--user {} differs from the account that signed in ({}); the grant is stored "
                 "for {}", o.user, claimed, claimed);
  }
  return claimed;
}

int save_grant(Context& ctx, AuthContext& auth, Store& store, const LoginOptions& o,
               const TokenKey& key, const TokenResponse& tr) {
  if (!tr.refresh_token || tr.refresh_token->empty()) {
    return fail(ctx, Status(ErrorKind::kAuth,
                            fmt::format("app \"{}\": the server issued no refresh token; the "
                                        "scope must include offline_access (asked for: {})",
                                        o.app, key.scope)));
  }
  TokenStore* tokens = auth.store();
  if (tokens == nullptr) {
    return fail(ctx, Status(ErrorKind::kConfig, "no [auth] token store is configured"));
  }
  if (Status saved = tokens->save(key, *tr.refresh_token); !saved.ok()) return fail(ctx, saved);
  Status recorded = record_token_success(store, key, tr);
  if (!recorded.ok()) spdlog::warn("cannot record the token state: {}", recorded.message());
  if (o.json) {
    json event = {{"event", "signed_in"},
                  {"app", o.app},
                  {"user", key.user},
                  {"scope", key.scope},
                  {"token_dir", tokens->dir()}};
    ctx.out << safe_dump(event) << "\n";
  } else {
    ctx.out << fmt::format("Signed in as {}; the grant is stored in {}\n", key.user,
                           tokens->dir());
  }
  return 0;
}

int run_login(Context& ctx, const LoginOptions& o) {
  auto cfg = load(ctx, /*connects=*/true);
  if (!cfg.ok()) return exit_code(cfg.status());
  const AppConfig* app = cfg->find_app(o.app);
  if (app == nullptr) {
    return fail(ctx, Status(ErrorKind::kConfig,
                            fmt::format("no [[app]] is named \"{}\" in {}", o.app, cfg->path)));
  }
  if (app->flow != "delegated") {
    return fail(ctx, Status(ErrorKind::kConfig,
                            fmt::format("{} uses client credentials; no sign-in is needed — "
                                        "try `mailbridge doctor`", o.app)));
  }
  auto store = open_store(ctx, *cfg);
  if (!store.ok()) return exit_code(store.status());
  auto auth = open_auth(*cfg, store->get());
  if (!auth.ok()) return fail(ctx, auth.status());
  auto client = (*auth)->client(o.app);
  if (!client.ok()) return fail(ctx, client.status());
  std::string scope = o.scope.empty() ? default_scope(*app, Resource::kExchange, to_string(ConnectorType::kImap)) : o.scope;
  auto da = (*client)->start_device_login(scope);
  if (!da.ok()) return fail(ctx, da.status());
  print_instructions(ctx, o, *da);
  auto tr = (*client)->finish_device_login(*da);
  if (!tr.ok()) return fail(ctx, tr.status());
  std::string user = signed_in_user(ctx, o, *tr);
  if (user.empty()) return 2;
  TokenKey key{o.app, scope, user};
  return save_grant(ctx, **auth, **store, o, key, *tr);
}

// ---- auth status --------------------------------------------------------------------------

// The TokenKeys the configuration will ask for with `app`: one per mailbox or sender using it
// (as AuthContext::key_for makes them: app-only tokens belong to no user).
std::vector<TokenKey> configured_keys(const Config& cfg, const AppConfig& app) {
  std::vector<TokenKey> keys;
  auto add = [&](ConnectorType type, const std::string& user) {
    Resource resource = type == ConnectorType::kGraph ? Resource::kGraph : Resource::kExchange;
    keys.push_back(TokenKey{app.name, default_scope(app, resource, to_string(type)),
                            app.flow == "delegated" ? user : std::string()});
  };
  for (const auto& m : cfg.mailboxes) {
    if (m.auth == AuthMethod::kOAuth2 && m.app == app.name) add(m.type, m.user);
  }
  for (const auto& s : cfg.senders) {
    if (s.auth == AuthMethod::kOAuth2 && s.app == app.name) add(s.type, s.user);
  }
  return keys;
}

// Where delegated grants are, or why they cannot be read.
struct Grants {
  TokenStore* store = nullptr;
  std::string error;
};

// "stored", "missing", "cannot decrypt (wrong [auth] key?)", or "not needed" (app-only).
std::string grant_of(const Grants& grants, const AppConfig& app, const TokenKey& key) {
  if (app.flow != "delegated") return "not needed";
  if (grants.store == nullptr) return "unknown (" + grants.error + ")";
  auto loaded = grants.store->load(key);  // never deletes, whatever it finds
  if (!loaded.ok()) {
    spdlog::debug("{}", loaded.status().message());
    return "cannot decrypt (wrong [auth] key?)";
  }
  return loaded->has_value() ? "stored" : "missing";
}

struct KeyStatus {
  TokenStateRecord record;  // defaults when no run has used this key yet
  std::string grant;
};

std::vector<KeyStatus> key_statuses(const Grants& grants, const Config& cfg,
                                    const AppConfig& app,
                                    const std::vector<TokenStateRecord>& states) {
  std::vector<KeyStatus> out;
  std::set<std::string> seen;
  auto add = [&](const TokenKey& key, const TokenStateRecord* known) {
    std::string name = key.to_string();
    if (!seen.insert(name).second) return;
    KeyStatus ks;
    if (known != nullptr) ks.record = *known;
    ks.record.key = name;
    ks.record.app = key.app;
    if (auto parsed = parse_token_key(name)) {
      ks.record.user = parsed->user;
      ks.record.scope = parsed->scope;
    }
    ks.grant = grant_of(grants, app, key);
    out.push_back(std::move(ks));
  };
  for (const auto& st : states) {
    if (st.app != app.name) continue;
    if (auto key = parse_token_key(st.key)) add(*key, &st);
  }
  for (const auto& key : configured_keys(cfg, app)) add(key, nullptr);
  return out;
}

json key_json(const KeyStatus& ks) {
  const TokenStateRecord& r = ks.record;
  return {{"user", null_if_empty(r.user)},
          {"scope", r.scope},
          {"grant", ks.grant},
          {"expires_at", null_if_empty(r.expires_at)},
          {"last_refresh", null_if_empty(r.last_refresh)},
          {"last_error", null_if_empty(Redactor::instance().scrub(r.last_error))},
          {"refreshes", r.refreshes},
          {"failures", r.failures},
          {"updated_at", null_if_empty(r.updated_at)}};
}

void print_key(Context& ctx, const KeyStatus& ks) {
  const TokenStateRecord& r = ks.record;
  ctx.out << fmt::format("  {} — {}\n", r.user.empty() ? "(the app itself)" : r.user, r.scope);
  ctx.out << fmt::format("    grant:         {}\n", ks.grant);
  ctx.out << fmt::format("    token expires: {}\n", r.expires_at.empty() ? "unknown"
                                                                          : r.expires_at);
  ctx.out << fmt::format("    last refresh:  {}\n", r.last_refresh.empty() ? "never"
                                                                            : r.last_refresh);
  std::string error = Redactor::instance().scrub(r.last_error);
  ctx.out << fmt::format("    last error:    {}\n", error.empty() ? "none" : error);
  ctx.out << fmt::format("    refreshes:     {}, failures: {}\n", r.refreshes, r.failures);
}

json app_status(Context& ctx, const Grants& grants, const Config& cfg, const AppConfig& app,
                const std::vector<TokenStateRecord>& states, bool as_json) {
  auto endpoints = resolve_endpoints(app);
  std::string token_url = endpoints.ok() ? endpoints->token : "";
  std::vector<KeyStatus> keys = key_statuses(grants, cfg, app, states);
  if (!as_json) {
    ctx.out << fmt::format("app \"{}\" ({}), token endpoint {}\n", app.name, app.flow,
                           endpoints.ok() ? token_url : endpoints.status().message());
    if (keys.empty()) {
      ctx.out << (app.flow == "delegated"
                      ? fmt::format("  no sign-in yet: run `mailbridge auth login {}`\n", app.name)
                      : std::string("  no token requested yet\n"));
    }
    for (const auto& ks : keys) print_key(ctx, ks);
    return json();
  }
  json tokens = json::array();
  for (const auto& ks : keys) tokens.push_back(key_json(ks));
  return {{"app", app.name},
          {"flow", app.flow},
          {"token_endpoint", null_if_empty(token_url)},
          {"tokens", tokens}};
}

int run_auth_status(Context& ctx, bool as_json) {
  auto opened = open_config_and_store(ctx);
  if (!opened.ok()) return exit_code(opened.status());
  const Config& cfg = opened->config;
  auto states = opened->store->token_states();
  if (!states.ok()) return fail(ctx, states.status());
  // Builds no client and connects nowhere: only the token store is opened. Without it the
  // recorded state is still worth showing.
  auto auth = open_auth(cfg, nullptr);
  Grants grants;
  if (auth.ok()) {
    grants.store = (*auth)->store();
  } else {
    print_error(ctx, auth.status().message());
    grants.error = "the token store cannot be opened";
  }
  json apps = json::array();
  for (const auto& app : cfg.apps) {
    apps.push_back(app_status(ctx, grants, cfg, app, *states, as_json));
  }
  if (as_json) ctx.out << safe_dump(apps, 2) << "\n";
  else if (cfg.apps.empty()) ctx.out << "no [[app]] is configured\n";
  return 0;
}

}  // namespace

void add_auth(CLI::App& app, Context& ctx) {
  auto* cmd = app.add_subcommand("auth", "OAuth sign-in: device-code login and token state");
  cmd->require_subcommand(1);
  auto login = std::make_shared<LoginOptions>();
  auto* l = cmd->add_subcommand("login", "sign a user in to a delegated [[app]] (device code)");
  l->add_option("APP", login->app, "the [[app]] name")->required();
  l->add_option("--scope", login->scope, "scopes to ask for (default: the app's IMAP scopes)");
  l->add_option("--user", login->user,
                "the account that signs in, when the token does not name it");
  l->add_flag("--json", login->json, "print JSON lines");
  l->callback([&ctx, login] { ctx.action = [&ctx, login] { return run_login(ctx, *login); }; });
  auto json_status = std::make_shared<bool>(false);
  auto* s = cmd->add_subcommand("status", "per app: token expiry, last refresh, last error");
  s->add_flag("--json", *json_status, "print JSON");
  s->callback([&ctx, json_status] {
    ctx.action = [&ctx, json_status] { return run_auth_status(ctx, *json_status); };
  });
}

}  // namespace mb::cli
