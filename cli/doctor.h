// File: cli/doctor.h — the judgement of `mailbridge doctor [MAILBOX]` (cli/doctor.cpp, EWS in
// cli/doctor_ews.cpp), kept
// apart from the command's I/O so that tests can hand it prepared token claims and sign-in
// results: what a connector needs from an access token (audience, application roles or
// delegated scopes), which of it the token lacks, and — for each failure — the registration
// step that is missing with the exact command or portal step to fix it, ids filled in.
//
//   doctor::Target t{.name = "support", .type = mb::ConnectorType::kImap, .address = "support@contoso.com",
//                    .app = "contoso", .delegated = false};
//   doctor::Needs needs = doctor::needs_for(t, "https://outlook.office365.com");
//   doctor::Report report{.target = t};
//   doctor::check_claims(report, claims, "<service principal object id>", needs);
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "auth/oauth.h"
#include "core/config.h"
#include "core/connector_types.h"
#include "core/mailbox.h"
#include "core/status.h"

namespace mb::cli::doctor {

// A mailbox or sender that signs in with OAuth, or an EWS mailbox (any auth).
struct Target {
  std::string name;
  ConnectorType type = ConnectorType::kImap;  // of its [[mailbox]] or [[sender]]
  bool sender = false;
  std::string address;  // the mailbox whose access Exchange checks
  std::string app;      // [[app]] name
  bool delegated = false;
  AuthMethod auth = AuthMethod::kOAuth2;  // EWS: also password (Basic) or ntlm
  std::string user{};                     // the login name (EWS with a password)
};

// What the connector of a target needs from its access token.
struct Needs {
  std::vector<std::string> audiences;  // the token's aud must be one of these
  std::string resource_name;           // "Office 365 Exchange Online" | "Microsoft Graph"
  std::vector<std::string> roles;      // app-only: every one of these application permissions
  std::vector<std::string> scopes;     // delegated: every one of these delegated permissions
  bool exchange = true;                // Exchange (IMAP/POP/SMTP/EWS) rather than Graph
};

// `audience` is the resource the app asks for (default_scope() without "/.default").
Needs needs_for(const Target& target, const std::string& audience);

struct Step {
  std::string name;    // "token", "audience", "permission", "sign-in", ...
  bool ok = true;
  std::string detail;  // what was found (never a token or secret)
  std::string fix;     // for a failure: the missing step and how to do it; may be empty
};

struct Report {
  Target target;
  std::vector<Step> steps;
  int exit_code = 0;  // 0 good, 2 configuration, 3 authentication, 4 connection

  void add(Step step, int code_on_failure);
  bool ok() const { return exit_code == 0; }
};

// Adds the "claims", "audience" and "permission" steps for a decoded token; `object_id` is the
// token's oid (for app-only tokens, the service principal's object id).
void check_claims(Report& report, const TokenClaims& claims, const std::string& object_id,
                  const Needs& needs);

// The fix for a sign-in the server refused although the token was issued (and, when
// `claims` is set, carried the right audience and permissions): for Exchange app-only, the
// service principal and mailbox permission that Exchange Online needs besides Entra's
// consent, with appid, object id and mailbox filled in. For Graph, the application access
// policy only when the token carries the permission (`permission_missing` false); else
// the missing permission is the cause.
std::string sign_in_fix(const Target& target, const TokenClaims* claims,
                        const std::string& object_id, bool permission_missing = false);

// The "oid" claim of a JWT access token, or "" (decode_token_claims does not carry it).
std::string token_object_id(std::string_view access_token);

// ---- EWS (cli/doctor_ews.cpp) ----

// What the fixes for an EWS mailbox name.
struct EwsTarget {
  std::string endpoint;
  AuthMethod auth = AuthMethod::kPassword;
  std::string account;   // `user`: "CORP\svc-mailbridge", a UPN (unused with oauth2)
  MailboxAccess access = MailboxAccess::kOwn;
  std::string mailbox;   // the SMTP address worked on
  std::string folder;
  std::string appid;     // the token's app id (oauth2), when known
};
EwsTarget ews_target(const MailboxConfig& m, const std::string& appid);

// The fix for the failed step `step` (connectors/ews/ews_report.h: endpoint, sign-in,
// access, open-folder) of an EWS mailbox's connection test that ended with `failure`: the
// cause in Exchange's terms and the Exchange Management Shell command that fixes it
// (ApplicationImpersonation, FullAccess, the EWS virtual directory's authentication,
// Exchange Online's EwsEnabled/EwsAllowedAppIDs); "" when there is none to give.
std::string ews_fix(const EwsTarget& target, const std::string& step, const Status& failure);

// Adds the steps of an EWS connection test to `report`, each failed one with its fix.
void add_ews_steps(Report& report, const ConnectionReport& tested, const EwsTarget& target);

// doctor for an EWS mailbox that signs in with a password (Basic or NTLM): no token to
// check, only its connection test with the fixes.
Report diagnose_ews_password(const Config& cfg, const MailboxConfig& m, const Target& target);

nlohmann::ordered_json to_json(const Report& report);
std::string to_text(const Report& report);

}  // namespace mb::cli::doctor
