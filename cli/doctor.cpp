// File: cli/doctor.cpp — `mailbridge doctor [MAILBOX] [--json]`: for each OAuth mailbox or
// sender (or the named one) acquires a token, decodes it (audience, roles or scopes, tenant,
// app — never the token itself), checks it against what the connector needs, tries the
// sign-in, and names the missing registration step with the command that fixes it. EWS
// mailboxes are checked whatever their sign-in (cli/doctor_ews.cpp: endpoint, sign-in,
// access, folder, each failure with its Exchange Management Shell fix).
// Exit 0 when all is well, 3 on an authentication problem, 4 on a connection problem.
#include "cli/doctor.h"

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <optional>

#include "auth/auth_context.h"
#include "auth/base64.h"
#include "auth/secrets.h"
#include "cli/auth_support.h"
#include "cli/cli.h"
#include "cli/terminal.h"
#include "connectors/registry.h"
#include "core/ascii.h"
#include "core/store.h"
#include "core/utc.h"

namespace mb::cli {
namespace doctor {
namespace {

constexpr const char* kExchangeName = "Office 365 Exchange Online";
constexpr const char* kGraphName = "Microsoft Graph";
// Microsoft's first-party resource app ids: some tokens carry these as aud.
constexpr const char* kExchangeAppId = "00000002-0000-0ff1-ce00-000000000000";
constexpr const char* kGraphAppId = "00000003-0000-0000-c000-000000000000";

std::string strip_slash(std::string s) {
  while (!s.empty() && s.back() == '/') s.pop_back();
  return s;
}

bool contains(const std::vector<std::string>& list, const std::string& item) {
  return std::find(list.begin(), list.end(), item) != list.end();
}

std::string join(const std::vector<std::string>& items, std::string_view sep = " ") {
  std::string out;
  for (const auto& i : items) out += (out.empty() ? "" : std::string(sep)) + i;
  return out;
}

std::string scrub(std::string_view text) { return Redactor::instance().scrub(text); }

// The fix for permissions the token lacks.
std::string permission_fix(const Report& report, const std::vector<std::string>& missing,
                           const Needs& needs, const TokenClaims& claims) {
  const Target& t = report.target;
  const std::string appid = claims.appid.empty() ? "the app" : "app " + claims.appid;
  if (t.delegated) {
    return fmt::format(
        "add the delegated permission{} {} ({}) to {} under API permissions, then sign in "
        "again: mailbridge auth login {}",
        missing.size() > 1 ? "s" : "", join(missing, ", "), needs.resource_name, appid, t.app);
  }
  return fmt::format(
      "add the application permission{} {} ({}) to {} under API permissions and grant admin "
      "consent for tenant {}",
      missing.size() > 1 ? "s" : "", join(missing, ", "), needs.resource_name, appid,
      claims.tid.empty() ? "(your tenant)" : claims.tid);
}

std::optional<std::string> base64url_decode(std::string_view text) {
  std::string s(text);
  std::replace(s.begin(), s.end(), '-', '+');
  std::replace(s.begin(), s.end(), '_', '/');
  while (s.size() % 4 != 0) s += '=';
  return base64_decode(s);
}

// The application roles and delegated scopes the target's connector needs.
void set_permissions(Needs& n, const Target& target) {
  switch (target.type) {
    case ConnectorType::kImap:
      n.roles = {"IMAP.AccessAsApp"};
      n.scopes = {"IMAP.AccessAsUser.All"};
      return;
    case ConnectorType::kPop3:
      n.roles = {"POP.AccessAsApp"};
      n.scopes = {"POP.AccessAsUser.All"};
      return;
    case ConnectorType::kSmtp:
      n.roles = {"SMTP.SendAsApp"};
      n.scopes = {"SMTP.Send"};
      return;
    case ConnectorType::kEws:
      n.roles = {"full_access_as_app"};
      n.scopes = {"EWS.AccessAsUser.All"};
      return;
    case ConnectorType::kGraph:
      // Sending (sendMail, a draft and its /send) needs Mail.Send alone (Microsoft Graph's
      // permissions reference for user: sendMail and message: send).
      n.roles = {target.sender ? "Mail.Send" : "Mail.ReadWrite"};
      n.scopes = n.roles;
      return;
  }
}

// "app-only", "delegated", or the password method of an EWS mailbox ("password", "ntlm").
std::string flow_of(const Target& t) {
  if (t.auth != AuthMethod::kOAuth2) return to_string(t.auth);
  return t.delegated ? "delegated" : "app-only";
}

}  // namespace

void Report::add(Step step, int code_on_failure) {
  if (!step.ok) exit_code = worse_exit_code(exit_code, code_on_failure);
  steps.push_back(std::move(step));
}

Needs needs_for(const Target& target, const std::string& audience) {
  Needs n;
  n.exchange = target.type != ConnectorType::kGraph;
  n.resource_name = n.exchange ? kExchangeName : kGraphName;
  if (!audience.empty()) n.audiences.push_back(strip_slash(audience));
  if (n.exchange) {
    // Exchange Online accepts both of its resource URIs and its app id as audience.
    for (const char* a : {"https://outlook.office365.com", "https://outlook.office.com",
                          kExchangeAppId}) {
      if (!audience.empty() && !contains(n.audiences, a)) n.audiences.push_back(a);
    }
  } else if (!audience.empty()) {
    n.audiences.push_back(kGraphAppId);
  }
  set_permissions(n, target);
  return n;
}

void check_claims(Report& report, const TokenClaims& claims, const std::string& object_id,
                  const Needs& needs) {
  const bool delegated = report.target.delegated;
  const auto& have = delegated ? claims.scp : claims.roles;
  std::string detail = fmt::format("aud {}, tid {}, appid {}", claims.aud, claims.tid,
                                   claims.appid);
  if (!object_id.empty()) detail += ", oid " + object_id;
  if (delegated && !claims.upn.empty()) detail += ", user " + claims.upn;
  detail += fmt::format(", {} {}", delegated ? "scp" : "roles", have.empty() ? "(none)" : join(have));
  report.add({"claims", true, detail, ""}, 0);

  if (needs.audiences.empty()) {
    report.add({"audience", true, claims.aud + " (not checked: custom scopes)", ""}, 0);
  } else if (contains(needs.audiences, strip_slash(claims.aud)) ||
             contains(needs.audiences, ascii_lower(strip_slash(claims.aud)))) {
    report.add({"audience", true, fmt::format("{} ({})", claims.aud, needs.resource_name), ""}, 0);
  } else {
    report.add({"audience", false,
                fmt::format("the token is for {}; {} needs {} ({})", claims.aud,
                            to_string(report.target.type), needs.audiences.front(), needs.resource_name),
                fmt::format("remove `scopes` from [[app]] \"{}\" (mailbridge then asks for {}/.default) "
                            "or set it to the {} resource",
                            report.target.app, needs.audiences.front(), needs.resource_name)},
               3);
  }

  const auto& required = delegated ? needs.scopes : needs.roles;
  std::vector<std::string> missing;
  for (const auto& r : required) {
    if (!contains(have, r)) missing.push_back(r);
  }
  if (missing.empty()) {
    report.add({"permission", true, join(required), ""}, 0);
    return;
  }
  std::string what = delegated ? "delegated permission" : "application permission (role)";
  report.add({"permission", false,
              fmt::format("the token lacks the {} {}{}", what, join(missing, ", "),
                          !delegated && claims.roles.empty()
                              ? " — it carries no roles at all: admin consent is missing"
                              : ""),
              permission_fix(report, missing, needs, claims)},
             3);
}

std::string sign_in_fix(const Target& target, const TokenClaims* claims,
                        const std::string& object_id, bool permission_missing) {
  const std::string appid = claims && !claims->appid.empty() ? claims->appid : "<application id>";
  const std::string oid = object_id.empty() ? "<service principal object id>" : object_id;
  const std::string mailbox = target.address.empty() ? "<mailbox>" : target.address;
  if (target.type == ConnectorType::kGraph && permission_missing) {
    // The 403 is the missing permission's (see the permission step), not a policy's.
    return fmt::format("Graph refused app {} for lack of the permission named above: add it "
                       "and grant admin consent, then run doctor again",
                       appid);
  }
  if (target.type == ConnectorType::kGraph) {
    // A 403 ErrorAccessDenied although the token carries the role: an application access
    // policy (or RBAC for Applications) keeps the app out of this mailbox.
    return fmt::format("Graph refused the token although it carries the permission: when an "
                       "application access policy limits app {} to chosen mailboxes, add {} to "
                       "its group (Test-ApplicationAccessPolicy -Identity {} -AppId {} shows "
                       "the verdict)",
                       appid, mailbox, mailbox, appid);
  }
  if (target.delegated) {
    const std::string user = claims && !claims->upn.empty() ? claims->upn : "<user>";
    return fmt::format(
        "Exchange refused the token of {}: make sure the protocol is enabled for the mailbox "
        "(Get-CASMailbox -Identity {} shows ImapEnabled/PopEnabled) and, when {} is not the "
        "user's own mailbox, run in Exchange Online PowerShell: Add-MailboxPermission -Identity "
        "{} -User {} -AccessRights FullAccess",
        user, mailbox, mailbox, mailbox, user);
  }
  if (target.type == ConnectorType::kEws) {
    return fmt::format("Exchange refused app {} for {}: an RBAC or application access policy may "
                       "exclude this mailbox (Test-ServicePrincipalAuthorization -Identity {} "
                       "-Resource {})",
                       appid, mailbox, oid, mailbox);
  }
  // Exchange app-only IMAP/POP/SMTP: Entra's consent is not enough, Exchange needs its own
  // service principal and a mailbox permission (Microsoft: "Authenticate an IMAP, POP or SMTP
  // connection using OAuth").
  return fmt::format(
      "Exchange does not let app {} into {}: register its service principal in Exchange and "
      "grant it the mailbox, in Exchange Online PowerShell: New-ServicePrincipal -AppId {} "
      "-ObjectId {} ; then Add-MailboxPermission -Identity {} -User {} -AccessRights FullAccess "
      "(the ObjectId is the Enterprise application's object id, not the app registration's)",
      appid, mailbox, appid, oid, mailbox, oid);
}

std::string token_object_id(std::string_view access_token) {
  size_t dot1 = access_token.find('.');
  size_t dot2 = dot1 == std::string_view::npos ? dot1 : access_token.find('.', dot1 + 1);
  if (dot2 == std::string_view::npos) return "";
  auto payload = base64url_decode(access_token.substr(dot1 + 1, dot2 - dot1 - 1));
  if (!payload) return "";
  auto j = nlohmann::json::parse(*payload, nullptr, false);
  if (!j.is_object()) return "";
  auto it = j.find("oid");
  return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}

nlohmann::ordered_json to_json(const Report& report) {
  nlohmann::ordered_json steps = nlohmann::ordered_json::array();
  for (const auto& s : report.steps) {
    steps.push_back({{"name", s.name},
                     {"ok", s.ok},
                     {"detail", scrub(s.detail)},
                     {"fix", s.fix.empty() ? nlohmann::ordered_json(nullptr)
                                           : nlohmann::ordered_json(scrub(s.fix))}});
  }
  const Target& t = report.target;
  return {{"name", t.name},
          {"kind", t.sender ? "sender" : "mailbox"},
          {"type", to_string(t.type)},
          {"app", t.app},
          {"flow", flow_of(t)},
          {"ok", report.ok()},
          {"exit_code", report.exit_code},
          {"steps", steps}};
}

std::string to_text(const Report& report) {
  const Target& t = report.target;
  std::string out =
      t.auth == AuthMethod::kOAuth2
          ? fmt::format("{} ({} {}, app {}, {})\n", t.name, to_string(t.type),
                        t.sender ? "sender" : "mailbox", t.app, flow_of(t))
          : fmt::format("{} ({} {}, {} as {})\n", t.name, to_string(t.type),
                        t.sender ? "sender" : "mailbox", flow_of(t), t.user);
  for (const auto& s : report.steps) {
    out += fmt::format("  {} {:<12} {}\n", s.ok ? "✓" : "✗", s.name, scrub(s.detail));
    if (!s.fix.empty()) out += fmt::format("    fix: {}\n", scrub(s.fix));
  }
  return out;
}

}  // namespace doctor

namespace {

using doctor::Report;
using doctor::Step;
using doctor::Target;

// The resource URI a scope string asks for: "https://outlook.office365.com/.default" →
// "https://outlook.office365.com"; "" for scopes without one.
std::string audience_of(const std::string& scope) {
  size_t start = 0;
  while (start < scope.size()) {
    size_t end = scope.find(' ', start);
    if (end == std::string::npos) end = scope.size();
    std::string item = scope.substr(start, end - start);
    size_t slash = item.rfind('/');
    if (item.find("://") != std::string::npos && slash > item.find("://") + 2) {
      return item.substr(0, slash);
    }
    start = end + 1;
  }
  return "";
}

std::string expiry_text(const TokenClaims* claims) {
  if (!claims || !claims->exp) return "";
  auto left = std::chrono::duration_cast<std::chrono::seconds>(*claims->exp -
                                                               std::chrono::system_clock::now());
  return fmt::format(", expires {} (in {} s)", format_utc(*claims->exp), left.count());
}

// The connection test of the mailbox (m) or sender (s), with the token machinery doctor
// already used.
Result<ConnectionReport> connection_test(const Config& cfg, const MailboxConfig* m,
                                         const SenderConfig* s, AuthContext& auth) {
  if (m != nullptr) {
    auto mbx = make_mailbox(*m, cfg, &auth);
    if (!mbx.ok()) return mbx.status();
    ConnectionReport cr = (*mbx)->test_connection();
    (*mbx)->close();
    return cr;
  }
  if (s == nullptr) return Status(ErrorKind::kInternal, "no mailbox or sender to test");
  auto snd = make_sender(*s, cfg, &auth);
  if (!snd.ok()) return snd.status();
  ConnectionReport cr = (*snd)->test_connection();
  (*snd)->close();
  return cr;
}

bool step_failed(const Report& report, const std::string& name) {
  return std::any_of(report.steps.begin(), report.steps.end(),
                     [&](const Step& s) { return s.name == name && !s.ok; });
}

// Tries the connection and sign-in of the mailbox (m) or sender (s).
void try_sign_in(Report& report, const Config& cfg, const MailboxConfig* m,
                 const SenderConfig* snd, AuthContext& auth,
                 const std::optional<TokenClaims>& claims, const std::string& oid) {
  auto tested = connection_test(cfg, m, snd, auth);
  if (!tested.ok()) {
    report.add({"sign-in", false, tested.status().message(), ""},
               exit_code(tested.status()));
    return;
  }
  const ConnectionReport& cr = *tested;
  if (report.target.type == ConnectorType::kEws && m != nullptr) {
    doctor::add_ews_steps(report, cr, doctor::ews_target(*m, claims ? claims->appid : ""));
    return;
  }
  const bool permission_missing = step_failed(report, "permission");
  bool failed_step = false;
  for (const auto& s : cr.steps) {
    // The connection test's own steps (resolve, connect, tls, sign-in, ...); its "token"
    // and "permission" steps would read as doctor's own checks here.
    std::string name = s.name == "token"        ? "sign-in token"
                       : s.name == "permission" ? "send permission"
                                                : s.name;
    Step step{name, s.ok, s.detail, ""};
    if (!s.ok && cr.status.kind() == ErrorKind::kAuth) {
      step.fix = doctor::sign_in_fix(report.target, claims ? &*claims : nullptr, oid,
                                     permission_missing);
    }
    failed_step = failed_step || !s.ok;
    report.add(std::move(step), exit_code(cr.status));
  }
  if (!cr.status.ok() && !failed_step) {
    Step step{"sign-in", false, cr.status.message(), ""};
    if (cr.status.kind() == ErrorKind::kAuth) {
      step.fix = doctor::sign_in_fix(report.target, claims ? &*claims : nullptr, oid,
                                     permission_missing);
    }
    report.add(std::move(step), exit_code(cr.status));
  }
}

// Token, claims and sign-in checks for one target (m is null for a sender).
Report diagnose(const Config& cfg, AuthContext& auth, const Target& target,
                const std::string& user, const MailboxConfig* m) {
  Report report{.target = target, .steps = {}, .exit_code = 0};
  const AppConfig* app = cfg.find_app(target.app);
  if (!app) {
    report.add({"app", false, fmt::format("no [[app]] named \"{}\"", target.app), ""}, 2);
    return report;
  }
  auto client = auth.client(app->name);
  if (!client.ok()) {
    report.add({"app", false, client.status().message(), ""}, exit_code(client.status()));
    return report;
  }
  report.add({"app", true,
              fmt::format("{} (client {}, {}, token endpoint {})", app->name, app->client_id,
                          app->flow, (*client)->endpoints().token),
              ""},
             0);
  const Resource resource =
      target.type == ConnectorType::kGraph ? Resource::kGraph : Resource::kExchange;
  const std::string scope = default_scope(*app, resource, to_string(target.type));
  auto key = auth.key_for(app->name, resource, to_string(target.type), user);
  auto token = key.ok() ? auth.token(*key) : Result<std::string>(key.status());
  if (!token.ok()) {
    report.add({"token", false, token.status().message(), ""}, exit_code(token.status()));
    return report;
  }
  auto claims = decode_token_claims(*token);
  const std::string oid = doctor::token_object_id(*token);
  report.add({"token", true, fmt::format("issued for {}{}", scope, expiry_text(claims ? &*claims : nullptr)), ""}, 0);
  if (claims) {
    doctor::check_claims(report, *claims, oid, doctor::needs_for(target, audience_of(scope)));
  } else {
    report.add({"claims", true, "an opaque token (not a JWT): audience and permissions not checked", ""}, 0);
  }
  try_sign_in(report, cfg, m, m ? nullptr : cfg.find_sender(target.name), auth, claims, oid);
  return report;
}

std::vector<std::pair<Target, std::pair<std::string, const MailboxConfig*>>> targets_of(
    const Config& cfg, const std::string& name) {
  std::vector<std::pair<Target, std::pair<std::string, const MailboxConfig*>>> out;
  auto delegated = [&](const std::string& app) {
    const AppConfig* a = cfg.find_app(app);
    return a && a->flow == "delegated";
  };
  for (const auto& m : cfg.mailboxes) {
    const bool ews = m.type == ConnectorType::kEws;
    if ((m.auth != AuthMethod::kOAuth2 && !ews) || (!name.empty() && m.name != name)) continue;
    Target t{m.name, m.type, false, m.address.empty() ? m.user : m.address, m.app,
             delegated(m.app), m.auth, m.user};
    out.push_back({t, {m.user, &m}});
  }
  for (const auto& s : cfg.senders) {
    if (s.auth != AuthMethod::kOAuth2 || (!name.empty() && s.name != name)) continue;
    Target t{s.name, s.type, true, s.user, s.app, delegated(s.app)};
    out.push_back({t, {s.user, nullptr}});
  }
  return out;
}

int run_doctor(Context& ctx, const std::string& name, bool as_json) {
  auto cfg = load(ctx, true);
  if (!cfg.ok()) return exit_code(cfg.status());
  auto targets = targets_of(*cfg, name);
  if (!name.empty() && targets.empty()) {
    if (cfg->find_mailbox(name) || cfg->find_sender(name)) {
      return fail(ctx, Status(ErrorKind::kConfig,
                              fmt::format("\"{}\" does not sign in with OAuth (auth = "
                                          "\"oauth2\") and is not an EWS mailbox; try "
                                          "`mailbridge test-connection {}`",
                                          name, name)));
    }
    return fail(ctx, Status(ErrorKind::kConfig,
                            fmt::format("no mailbox or sender \"{}\" in {}", name,
                                        ctx.config_path)));
  }
  if (targets.empty()) {
    return fail(ctx, Status(ErrorKind::kConfig,
                            "no mailbox or sender signs in with OAuth (auth = \"oauth2\"), and "
                            "there is no EWS mailbox"));
  }
  // Token outcomes are recorded for `auth status` when the store exists; doctor must not
  // create it.
  auto store = open_store(ctx, *cfg, StoreUse::kIfExists);
  if (!store.ok()) return exit_code(store.status());
  auto auth = open_auth(*cfg, store->get());
  if (!auth.ok()) return fail(ctx, auth.status());
  int code = 0;
  nlohmann::ordered_json results = nlohmann::ordered_json::array();
  for (const auto& [target, where] : targets) {
    Report report = target.auth == AuthMethod::kOAuth2
                        ? diagnose(*cfg, **auth, target, where.first, where.second)
                        : doctor::diagnose_ews_password(*cfg, *where.second, target);
    code = worse_exit_code(code, report.exit_code);
    if (as_json) {
      results.push_back(doctor::to_json(report));
    } else {
      ctx.out << doctor::to_text(report) << std::flush;
    }
  }
  if (as_json) {
    nlohmann::ordered_json doc = {{"ok", code == 0}, {"exit_code", code}, {"results", results}};
    ctx.out << safe_dump(doc, 2) << "\n";
  }
  return code;
}

}  // namespace

void add_doctor(CLI::App& app, Context& ctx) {
  auto* cmd = app.add_subcommand(
      "doctor", "check an OAuth mailbox's token, permissions and sign-in, and say how to fix them");
  auto name = std::make_shared<std::string>();
  auto as_json = std::make_shared<bool>(false);
  cmd->add_option("MAILBOX", *name, "mailbox or sender name (default: every OAuth one)");
  cmd->add_flag("--json", *as_json, "print JSON");
  cmd->callback([&ctx, name, as_json] {
    ctx.action = [&ctx, name, as_json] { return run_doctor(ctx, *name, *as_json); };
  });
}

}  // namespace mb::cli
