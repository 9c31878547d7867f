// File: core/config_apps.cpp — [[app]] (OAuth app registrations), [[project]] and [[user]]
// (the help desk's directory).
#include <algorithm>

#include <fmt/format.h>

#include "core/internal/config_readers.h"

namespace mb::config_internal {
namespace {

// An https:// URL with a host: what the token and device endpoints must be.
bool is_https_url(const std::string& v) {
  constexpr std::string_view kScheme = "https://";
  if (v.rfind(kScheme, 0) != 0 || v.size() == kScheme.size()) return false;
  char first = v[kScheme.size()];
  return first != '/' && first != ':' && v.find_first_of(" \t") == std::string::npos;
}

void read_app_urls(Section& s, AppConfig& a) {
  for (auto [key, field] : {std::pair<const char*, std::string*>{"authority", &a.authority},
                            {"token_endpoint", &a.token_endpoint},
                            {"device_endpoint", &a.device_endpoint}}) {
    if (auto v = s.str(key)) {
      if (!is_https_url(*v)) {
        s.error(key, fmt::format("must be an https:// URL (got {})", dq(*v)));
      }
      *field = *v;
    }
  }
}

// Scopes are sent space-separated, so one entry holding a space would silently become two.
void read_scopes(Section& s, AppConfig& a) {
  auto v = s.strings("scopes");
  if (!v) return;
  if (v->empty()) {
    s.error("scopes", "must list at least one scope (leave it out for the defaults)");
    return;
  }
  for (const auto& scope : *v) {
    if (scope.empty() || scope.find_first_of(" \t") != std::string::npos) {
      s.error("scopes", fmt::format("entry {} must be one non-empty scope without spaces",
                                    dq(scope)));
      return;
    }
  }
  a.scopes = *v;
}

// The flow follows from the credentials unless written: a confidential client signs in as
// itself, a public one needs a user's grant.
void read_flow(Section& s, AppConfig& a) {
  bool has_credential = !a.client_secret.empty() || !a.certificate.empty();
  a.flow = has_credential ? "app-only" : "delegated";
  read_choice(s, "flow", {"app-only", "delegated"}, a.flow);
  if (a.flow == "app-only" && !has_credential && !s.has("client_secret") &&
      !s.has("certificate")) {
    s.error_at(s.has("flow") ? "flow" : "name",
               "flow = \"app-only\" (client credentials) needs client_secret = \"env:NAME\" or "
               "certificate = \"file:PATH\"");
  }
}

// tenant and client_id (a tenant is not needed with a token_endpoint of another server).
void read_app_ids(Section& s, AppConfig& a) {
  if (auto v = s.str("tenant")) {
    if (v->empty()) s.error("tenant", "must not be empty");
    a.tenant = *v;
  }
  if (auto v = s.str("client_id")) {
    if (v->empty()) s.error("client_id", "must not be empty");
    a.client_id = *v;
  }
  if (a.client_id.empty() && !s.has("client_id")) s.error_here("client_id is missing");
  if (a.tenant.empty() && a.token_endpoint.empty() && !s.has("tenant")) {
    s.error_here("tenant is missing (or set token_endpoint for a non-Microsoft server)");
  }
}

}  // namespace

void read_app(const toml::table& t, size_t index, NameRegistry& names, Config& cfg, Checker& c) {
  Section s(t, fmt::format("app #{}", index + 1), c);
  AppConfig a;
  a.line_no = s.line();
  a.name = names.read(s);
  read_app_urls(s, a);
  read_app_ids(s, a);
  read_secret(s, "client_secret", a.client_secret);
  read_secret(s, "certificate", a.certificate);
  if (!a.client_secret.empty() && !a.certificate.empty()) {
    s.error("certificate", "and client_secret are exclusive; keep one");
  }
  read_flow(s, a);
  read_scopes(s, a);
  read_tls(s, a.tls);
  read_timeouts(s, a.timeouts);
  s.finish();
  cfg.apps.push_back(std::move(a));
}

void read_project(const toml::table& t, size_t index, NameRegistry& names, Config& cfg,
                  Checker& c) {
  Section s(t, fmt::format("project #{}", index + 1), c);
  ProjectConfig p;
  p.name = names.read(s);
  if (auto v = s.strings("modules")) {
    bool blank = std::any_of(v->begin(), v->end(), [](const auto& m) { return m.empty(); });
    if (v->empty() || blank) s.error("modules", "must list non-empty module names");
    else p.modules = *v;
  }
  s.finish();
  cfg.projects.push_back(std::move(p));
}

void read_user(const toml::table& t, size_t index, std::map<std::string, int>& seen, Config& cfg,
               Checker& c) {
  Section s(t, fmt::format("user #{}", index + 1), c);
  UserConfig u;
  if (auto v = s.str("email")) u.email = *v;
  if (u.email.find('@') == std::string::npos) {
    if (s.has("email")) s.error("email", fmt::format("must be an email address (got {})",
                                                     dq(u.email)));
    else s.error_here("email is missing");
  } else {
    s.set_context("user " + dq(u.email));
    auto [it, fresh] = seen.emplace(ascii_lower(u.email), s.line("email"));
    if (!fresh) s.error("email", fmt::format("is already listed on line {}", it->second));
  }
  if (auto v = s.str("name")) u.name = *v;
  read_choice(s, "role", {"requestor", "technician"}, u.role);
  s.finish();
  cfg.users.push_back(std::move(u));
}

}  // namespace mb::config_internal
