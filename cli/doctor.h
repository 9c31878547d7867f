// File: cli/doctor.h — the judgement of `mailbridge doctor [MAILBOX]` (cli/doctor.cpp), kept
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
#include "core/connector_types.h"
#include "core/status.h"

namespace mb::cli::doctor {

// A mailbox or sender that signs in with OAuth.
struct Target {
  std::string name;
  ConnectorType type = ConnectorType::kImap;  // of its [[mailbox]] or [[sender]]
  bool sender = false;
  std::string address;  // the mailbox whose access Exchange checks
  std::string app;      // [[app]] name
  bool delegated = false;
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

nlohmann::ordered_json to_json(const Report& report);
std::string to_text(const Report& report);

}  // namespace mb::cli::doctor
