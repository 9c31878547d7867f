// File: auth/entra.cpp — the Entra ID profile: clouds, the v2.0 endpoints of an authority and
// tenant, and the default scopes of SPEC §3.
//
// Hosts per cloud, from Microsoft's "National clouds" (learn.microsoft.com/entra/
// identity-platform/authentication-national-cloud) and "Microsoft Graph national cloud
// deployments" (learn.microsoft.com/graph/deployments): Entra ID login.microsoftonline.com,
// login.microsoftonline.us, login.chinacloudapi.cn (now also login.partner.microsoftonline.cn);
// Graph graph.microsoft.com, graph.microsoft.us (L4), dod-graph.microsoft.us (L5 DoD),
// microsoftgraph.chinacloudapi.cn. Exchange Online: outlook.office365.com, outlook.office365.us
// (GCC High), outlook-dod.office365.us (DoD), partner.outlook.cn (21Vianet).
#include <algorithm>
#include <array>
#include <cctype>

#include "auth/internal/oauth_util.h"
#include "auth/oauth.h"
#include "core/ascii.h"

namespace mb {
namespace {

constexpr std::array<CloudProfile, 4> kClouds{{
    {"global", "login.microsoftonline.com", "https://graph.microsoft.com",
     "https://outlook.office365.com"},
    {"usgov", "login.microsoftonline.us", "https://graph.microsoft.us",
     "https://outlook.office365.us"},
    // Same sign-in host as usgov, so an authority alone never selects it: DoD tenants set
    // `scopes` (e.g. "https://outlook-dod.office365.us/.default").
    {"usgov-dod", "login.microsoftonline.us", "https://dod-graph.microsoft.us",
     "https://outlook-dod.office365.us"},
    {"china", "login.chinacloudapi.cn", "https://microsoftgraph.chinacloudapi.cn",
     "https://partner.outlook.cn"},
}};

// Other names of the same sign-in service.
struct HostAlias {
  std::string_view host;
  size_t cloud;
};
constexpr std::array<HostAlias, 3> kAliases{{
    {"login.microsoft.com", 0},
    {"login.windows.net", 0},
    {"login.partner.microsoftonline.cn", 3},
}};

// "https://Login.MicrosoftOnline.us:443/tenant" → "login.microsoftonline.us".
std::string host_of(std::string_view authority) {
  if (auto p = authority.find("://"); p != std::string_view::npos) authority.remove_prefix(p + 3);
  authority = authority.substr(0, authority.find_first_of("/?#"));
  if (auto at = authority.rfind('@'); at != std::string_view::npos) authority.remove_prefix(at + 1);
  if (auto colon = authority.rfind(':'); colon != std::string_view::npos &&
                                         authority.find(']') == std::string_view::npos) {
    authority = authority.substr(0, colon);
  }
  return ascii_lower(authority);
}

bool starts_with_ci(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && ascii_lower(s.substr(0, prefix.size())) == prefix;
}

std::string app_label(const AppConfig& app) {
  std::string label = "app \"" + app.name + "\"";
  if (app.line_no > 0) label += " (line " + std::to_string(app.line_no) + ")";
  return label;
}

std::string_view delegated_permissions(ConnectorType type) {
  switch (type) {
    case ConnectorType::kImap: return "IMAP.AccessAsUser.All";
    case ConnectorType::kPop3: return "POP.AccessAsUser.All";
    case ConnectorType::kSmtp: return "SMTP.Send";
    case ConnectorType::kEws: return "EWS.AccessAsUser.All";
    case ConnectorType::kGraph: return "Mail.ReadWrite Mail.Send";
  }
  return ".default";
}

std::string_view delegated_permissions(Resource resource, std::string_view protocol) {
  if (resource == Resource::kGraph) return delegated_permissions(ConnectorType::kGraph);
  const ConnectorSpec* spec = find_connector(protocol);
  // Unknown: every delegated permission consented for the app.
  return spec ? delegated_permissions(spec->type) : ".default";
}

}  // namespace

namespace oauth_internal {

bool is_app_only(const AppConfig& app) {
  if (!app.flow.empty()) return app.flow == "app-only";
  return !app.client_secret.empty() || !app.certificate.empty();
}

}  // namespace oauth_internal

const CloudProfile* cloud_for_authority(std::string_view authority) {
  std::string host = host_of(authority);
  if (host.empty()) return nullptr;
  for (const CloudProfile& cloud : kClouds) {
    if (cloud.authority_host == host) return &cloud;  // usgov before usgov-dod
  }
  for (const HostAlias& alias : kAliases) {
    if (alias.host == host) return &kClouds[alias.cloud];
  }
  return nullptr;
}

Result<OAuthEndpoints> resolve_endpoints(const AppConfig& app) {
  auto is_url = [](std::string_view url) {
    return starts_with_ci(url, "https://") || starts_with_ci(url, "http://");
  };
  OAuthEndpoints out;
  out.device_authorization = app.device_endpoint;
  if (!app.device_endpoint.empty() && !is_url(app.device_endpoint)) {
    return Status(ErrorKind::kConfig, app_label(app) + ": device_endpoint \"" +
                                          app.device_endpoint + "\" is not an https:// URL");
  }
  if (!app.token_endpoint.empty()) {
    if (!is_url(app.token_endpoint)) {
      return Status(ErrorKind::kConfig, app_label(app) + ": token_endpoint \"" +
                                            app.token_endpoint + "\" is not an https:// URL");
    }
    out.token = app.token_endpoint;
    return out;
  }
  std::string authority = app.authority;
  while (!authority.empty() && authority.back() == '/') authority.pop_back();
  if (!starts_with_ci(authority, "https://") || host_of(authority).empty() || app.tenant.empty()) {
    return Status(ErrorKind::kConfig,
                  app_label(app) + ": set tenant (with authority, an https:// URL such as "
                                   "https://login.microsoftonline.com), or token_endpoint");
  }
  std::string base = authority + "/" + app.tenant + "/oauth2/v2.0/";
  out.token = base + "token";
  if (out.device_authorization.empty()) out.device_authorization = base + "devicecode";
  return out;
}

std::string admin_consent_url(const AppConfig& app) {
  std::string authority = app.authority;
  while (!authority.empty() && authority.back() == '/') authority.pop_back();
  const std::string tenant = app.tenant.empty() ? "organizations" : app.tenant;
  return authority + "/" + url_encode(tenant) + "/adminconsent?client_id=" +
         url_encode(app.client_id);
}

std::string default_scope(const AppConfig& app, Resource resource, std::string_view protocol) {
  if (!app.scopes.empty()) {
    std::string joined;
    for (const auto& s : app.scopes) joined += (joined.empty() ? "" : " ") + s;
    return joined;
  }
  const CloudProfile* cloud = cloud_for_authority(app.authority);
  if (cloud == nullptr) cloud = &kClouds[0];
  std::string base(resource == Resource::kGraph ? cloud->graph : cloud->exchange);
  if (oauth_internal::is_app_only(app)) return base + "/.default";
  std::string out;
  std::string_view perms = delegated_permissions(resource, protocol);
  while (!perms.empty()) {
    auto sp = perms.find(' ');
    out += base + "/" + std::string(perms.substr(0, sp)) + " ";
    perms = sp == std::string_view::npos ? std::string_view() : perms.substr(sp + 1);
  }
  return out + "offline_access";
}

}  // namespace mb
