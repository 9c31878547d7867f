// File: core/config_checks.cpp — what refers to other tables and is checked against them:
// [tracking] (its mailbox, sender and From address), [auth] (the key delegated apps need),
// and project references.
#include <algorithm>

#include <fmt/format.h>

#include "core/internal/config_readers.h"

namespace mb::config_internal {
namespace {

// [tracking] from and from_name: From must be a configured mailbox address (SPEC §4).
void read_tracking_from(Section& s, Config& cfg) {
  TrackingConfig& t = cfg.tracking;
  if (auto v = s.str("from")) {
    std::string want = ascii_lower(*v);
    bool known = std::any_of(cfg.mailboxes.begin(), cfg.mailboxes.end(), [&](const auto& m) {
      return ascii_lower(m.address.empty() ? m.user : m.address) == want;
    });
    if (!known) s.error("from", fmt::format("{} is not the address of any [[mailbox]]", dq(*v)));
    t.from = want;
  }
  if (auto v = s.str("from_name")) {
    if (v->find_first_of("\r\n") != std::string::npos) {
      s.error("from_name", "must be one line");
    } else {
      t.from_name = *v;
    }
  }
}

// No key under [auth] while an app is delegated: its refresh tokens could not be stored.
void check_auth_key(Section& s, const Config& cfg) {
  auto delegated = std::find_if(cfg.apps.begin(), cfg.apps.end(),
                                [](const AppConfig& a) { return a.flow == "delegated"; });
  if (delegated == cfg.apps.end()) return;
  constexpr const char* kHint =
      "make one with `openssl rand -base64 32 > /etc/mailbridge/token.key` (readable only by "
      "the service) and write key = \"file:/etc/mailbridge/token.key\" under [auth]";
  std::string why = fmt::format(
      "key is missing: app {} (line {}) is delegated, and refresh tokens are stored encrypted "
      "under that key; {}",
      dq(delegated->name), delegated->line_no, kHint);
  if (s.line() > 0) {
    s.checker().error(s.line(), "", "[auth] " + why);
  } else {
    // No [auth] table at all: point at the app that needs one.
    s.checker().error(delegated->line_no, "app " + dq(delegated->name), "[auth] " + why);
  }
}

}  // namespace

bool check_project_ref(Section& s, const Config& cfg, const std::string& project) {
  if (cfg.projects.empty() || cfg.find_project(project)) return true;
  s.error("project", fmt::format("{} is not defined by any [[project]]", dq(project)));
  return false;
}

void read_tracking(Section& s, Config& cfg) {
  TrackingConfig& t = cfg.tracking;
  read_secret(s, "secret", t.secret);
  if (auto v = s.str("mailbox")) {
    if (!cfg.find_mailbox(*v)) {
      s.error("mailbox", fmt::format("{} is not defined by any [[mailbox]]", dq(*v)));
    }
    t.mailbox = *v;
  }
  if (auto v = s.str("sender")) {
    if (!cfg.find_sender(*v)) {
      s.error("sender", fmt::format("{} is not defined by any [[sender]]", dq(*v)));
    }
    t.sender = *v;
  }
  if (auto v = s.boolean("delete_untracked")) t.delete_untracked = *v;
  if ((!t.mailbox.empty() || !t.sender.empty()) && t.secret.empty() && !s.has("secret")) {
    s.error_here("secret is missing (tracking cookies are signed with it)");
  }
  read_tracking_from(s, cfg);
}

void read_auth_section(Section& s, Config& cfg) {
  if (auto v = s.str("token_dir")) {
    if (v->empty()) s.error("token_dir", "must not be empty (leave it out for the default)");
    else cfg.auth.token_dir = s.checker().resolve_path(*v);
  }
  read_secret(s, "key", cfg.auth.key);
  if (!cfg.auth.key.empty() || s.has("key")) return;
  check_auth_key(s, cfg);
}


}  // namespace mb::config_internal
